//! Node rows: NAME STATUS ROLES AGE VERSION INTERNAL-IP EXTERNAL-IP OS-IMAGE KERNEL-VERSION
//! CONTAINER-RUNTIME.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::duration::age_since;
use crate::json::{arr_at, bool_at, creation_timestamp, name, obj_at, str_at};

const ROLE_LABEL_PREFIX: &str = "node-role.kubernetes.io/";
const LEGACY_ROLE_LABEL: &str = "kubernetes.io/role";

pub(crate) fn cells(node: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let info = |field: &str| match str_at(node, &["status", "nodeInfo", field]) {
        "" => "<unknown>".to_string(),
        v => v.to_string(),
    };
    vec![
        json!(name(node)),
        json!(status(node)),
        json!(roles(node)),
        json!(age_since(creation_timestamp(node), now)),
        json!(str_at(node, &["status", "nodeInfo", "kubeletVersion"])),
        json!(address(node, "InternalIP")),
        json!(address(node, "ExternalIP")),
        json!(info("osImage")),
        json!(info("kernelVersion")),
        json!(info("containerRuntimeVersion")),
    ]
}

/// Only the Ready condition is reported (the last one wins if it is listed twice);
/// cordoned nodes get `SchedulingDisabled` appended.
fn status(node: &Value) -> String {
    let ready = arr_at(node, &["status", "conditions"])
        .iter()
        .rfind(|c| str_at(c, &["type"]) == "Ready");
    let mut parts = vec![match ready {
        Some(c) if str_at(c, &["status"]) == "True" => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    }];
    if bool_at(node, &["spec", "unschedulable"]) {
        parts.push("SchedulingDisabled");
    }
    parts.join(",")
}

/// Roles from `node-role.kubernetes.io/<role>` label keys and the legacy
/// `kubernetes.io/role=<role>` label, sorted and de-duplicated.
fn roles(node: &Value) -> String {
    let mut roles = BTreeSet::new();
    for (key, value) in obj_at(node, &["metadata", "labels"]).into_iter().flatten() {
        if let Some(role) = key.strip_prefix(ROLE_LABEL_PREFIX) {
            if !role.is_empty() {
                roles.insert(role.to_string());
            }
        } else if key == LEGACY_ROLE_LABEL {
            if let Some(role) = value.as_str().filter(|r| !r.is_empty()) {
                roles.insert(role.to_string());
            }
        }
    }
    if roles.is_empty() {
        return "<none>".to_string();
    }
    roles.into_iter().collect::<Vec<_>>().join(",")
}

fn address(node: &Value, kind: &str) -> String {
    arr_at(node, &["status", "addresses"])
        .iter()
        .find(|a| str_at(a, &["type"]) == kind)
        .map(|a| str_at(a, &["address"]).to_string())
        .unwrap_or_else(|| "<none>".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 5, 1, 12, 0, 0).unwrap()
    }

    fn node(labels: Value, spec: Value, status: Value) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "node-a", "labels": labels, "creationTimestamp": "2025-04-20T12:00:00Z"},
            "spec": spec,
            "status": status,
        })
    }

    #[test]
    fn ready_control_plane_node() {
        let n = node(
            json!({"kubernetes.io/hostname": "node-a", "node-role.kubernetes.io/control-plane": ""}),
            json!({}),
            json!({
                "conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
                "addresses": [{"type": "InternalIP", "address": "192.168.1.10"}, {"type": "Hostname", "address": "node-a"}],
                "nodeInfo": {"kubeletVersion": "v1.33.1", "osImage": "Debian GNU/Linux 12 (bookworm)",
                             "kernelVersion": "6.1.0-18-amd64", "containerRuntimeVersion": "containerd://1.7.13"}
            }),
        );
        assert_eq!(
            cells(&n, now()),
            vec![
                json!("node-a"),
                json!("Ready"),
                json!("control-plane"),
                json!("11d"),
                json!("v1.33.1"),
                json!("192.168.1.10"),
                json!("<none>"),
                json!("Debian GNU/Linux 12 (bookworm)"),
                json!("6.1.0-18-amd64"),
                json!("containerd://1.7.13")
            ]
        );
    }

    #[test]
    fn not_ready_and_unschedulable() {
        let n = node(
            json!({"kubernetes.io/role": "worker", "node-role.kubernetes.io/ingress": "true", "node-role.kubernetes.io/": ""}),
            json!({"unschedulable": true}),
            json!({"conditions": [{"type": "Ready", "status": "Unknown"}]}),
        );
        let c = cells(&n, now());
        assert_eq!(c[1], json!("NotReady,SchedulingDisabled"));
        assert_eq!(c[2], json!("ingress,worker"));
        assert_eq!(c[4], json!(""));
        assert_eq!(c[7], json!("<unknown>"));
        assert_eq!(c[8], json!("<unknown>"));
        assert_eq!(c[9], json!("<unknown>"));
    }

    #[test]
    fn no_conditions_is_unknown() {
        let n = node(json!({}), json!({"unschedulable": true}), json!({}));
        let c = cells(&n, now());
        assert_eq!(c[1], json!("Unknown,SchedulingDisabled"));
        assert_eq!(c[2], json!("<none>"));
        assert_eq!(c[5], json!("<none>"));
    }
}
