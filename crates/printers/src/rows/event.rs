//! Event rows: LAST SEEN TYPE REASON OBJECT SUBOBJECT SOURCE MESSAGE FIRST SEEN COUNT NAME.
//!
//! Both core/v1 and events.k8s.io/v1 Events are printed with the core printer upstream (the
//! latter after conversion), so events.k8s.io field names are read as their core equivalents.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::duration::age_since;
use crate::json::{get, i64_at, name, str_at, time_at};

/// Field names of one Event API version.
struct Fields {
    first: &'static str,
    last: &'static str,
    count: &'static str,
    object: &'static str,
    message: &'static str,
    source: &'static str,
}

const CORE: Fields = Fields {
    first: "firstTimestamp",
    last: "lastTimestamp",
    count: "count",
    object: "involvedObject",
    message: "message",
    source: "source",
};

const EVENTS_API: Fields = Fields {
    first: "deprecatedFirstTimestamp",
    last: "deprecatedLastTimestamp",
    count: "deprecatedCount",
    object: "regarding",
    message: "note",
    source: "deprecatedSource",
};

pub(crate) fn cells(event: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let f = if str_at(event, &["apiVersion"]).starts_with("events.k8s.io/") {
        &EVENTS_API
    } else {
        &CORE
    };

    let first_seen = match time_at(event, &[f.first]) {
        Some(t) => age_since(Some(t), now),
        None => age_since(time_at(event, &["eventTime"]), now),
    };
    let mut last_seen = match time_at(event, &[f.last]) {
        Some(t) => age_since(Some(t), now),
        None => first_seen.clone(),
    };
    let mut count = i64_at(event, &[f.count]);
    if let Some(series) = get(event, &["series"]).filter(|s| s.is_object()) {
        last_seen = age_since(time_at(series, &["lastObservedTime"]), now);
        count = i64_at(series, &["count"]);
    } else if count == 0 {
        // Singleton events don't carry a count in the new API.
        count = 1;
    }

    let kind = str_at(event, &[f.object, "kind"]).to_lowercase();
    let object_name = str_at(event, &[f.object, "name"]);
    let target = if object_name.is_empty() {
        kind
    } else {
        format!("{kind}/{object_name}")
    };

    let component = first_non_empty(
        str_at(event, &[f.source, "component"]),
        str_at(event, &["reportingComponent"]),
    );
    // core/v1 names the field reportingComponent but the internal type calls it
    // ReportingController; events.k8s.io/v1 calls it reportingController.
    let component = first_non_empty(component, str_at(event, &["reportingController"]));
    let instance = first_non_empty(
        str_at(event, &[f.source, "host"]),
        str_at(event, &["reportingInstance"]),
    );
    let source = if instance.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {instance}")
    };

    vec![
        json!(last_seen),
        json!(str_at(event, &["type"])),
        json!(str_at(event, &["reason"])),
        json!(target),
        json!(str_at(event, &[f.object, "fieldPath"])),
        json!(source),
        json!(str_at(event, &[f.message]).trim()),
        json!(first_seen),
        json!(count),
        json!(name(event)),
    ]
}

fn first_non_empty<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.is_empty() {
        b
    } else {
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 5, 1, 12, 0, 0).unwrap()
    }

    #[test]
    fn core_event_with_timestamps() {
        let e = json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": "web-0.17c2", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "web-0", "fieldPath": "spec.containers{app}"},
            "reason": "BackOff", "type": "Warning",
            "message": "Back-off restarting failed container\n",
            "source": {"component": "kubelet", "host": "node-a"},
            "firstTimestamp": "2025-05-01T11:00:00Z", "lastTimestamp": "2025-05-01T11:59:50Z",
            "count": 12
        });
        assert_eq!(
            cells(&e, now()),
            vec![
                json!("10s"),
                json!("Warning"),
                json!("BackOff"),
                json!("pod/web-0"),
                json!("spec.containers{app}"),
                json!("kubelet, node-a"),
                json!("Back-off restarting failed container"),
                json!("60m"),
                json!(12),
                json!("web-0.17c2")
            ]
        );
    }

    #[test]
    fn new_style_event_uses_event_time_and_reporting_fields() {
        let e = json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": "svc.1"},
            "involvedObject": {"kind": "Service"},
            "reason": "IPAllocated", "type": "Normal", "message": "ok",
            "eventTime": "2025-05-01T11:57:00.123456Z",
            "reportingComponent": "svcplane-apiserver", "reportingInstance": "",
            "source": {}
        });
        let c = cells(&e, now());
        assert_eq!(c[0], json!("2m59s"));
        assert_eq!(c[3], json!("service"));
        assert_eq!(c[5], json!("svcplane-apiserver"));
        assert_eq!(c[7], json!("2m59s"));
        assert_eq!(c[8], json!(1));
    }

    #[test]
    fn series_overrides_last_seen_and_count() {
        let e = json!({
            "metadata": {"name": "e"},
            "involvedObject": {"kind": "Node", "name": "node-a"},
            "eventTime": "2025-05-01T10:00:00.000000Z",
            "series": {"count": 5, "lastObservedTime": "2025-05-01T11:59:00.000000Z"}
        });
        let c = cells(&e, now());
        assert_eq!(c[0], json!("60s"));
        assert_eq!(c[7], json!("120m"));
        assert_eq!(c[8], json!(5));
    }

    #[test]
    fn no_times_at_all_is_unknown() {
        let e = json!({"metadata": {"name": "e"}, "involvedObject": {}});
        let c = cells(&e, now());
        assert_eq!(c[0], json!("<unknown>"));
        assert_eq!(c[3], json!(""));
        assert_eq!(c[7], json!("<unknown>"));
    }

    #[test]
    fn events_api_version_fields() {
        let e = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e2"},
            "regarding": {"kind": "Pod", "name": "p"},
            "note": " scheduled ", "reason": "Scheduled", "type": "Normal",
            "reportingController": "default-scheduler", "reportingInstance": "sched-1",
            "eventTime": "2025-05-01T11:59:00.000000Z"
        });
        let c = cells(&e, now());
        assert_eq!(c[3], json!("pod/p"));
        assert_eq!(c[5], json!("default-scheduler, sched-1"));
        assert_eq!(c[6], json!("scheduled"));
        assert_eq!(c[0], json!("60s"));
    }
}
