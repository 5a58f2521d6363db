//! Pod rows: NAME READY STATUS RESTARTS AGE IP NODE NOMINATED-NODE READINESS-GATES.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::duration::age_since;
use crate::json::{arr_at, bool_at, creation_timestamp, get, i64_at, name, str_at, time_at};

/// Reason a pod on an unreachable node is given by the node lifecycle controller.
const NODE_UNREACHABLE_REASON: &str = "NodeLost";

pub(crate) fn cells(pod: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let status = summarize(pod);
    let restarts = match status.last_restart {
        Some(at) if status.restarts != 0 => {
            format!("{} ({} ago)", status.restarts, age_since(Some(at), now))
        }
        _ => status.restarts.to_string(),
    };
    vec![
        json!(name(pod)),
        json!(format!("{}/{}", status.ready, status.total)),
        json!(status.reason),
        json!(restarts),
        json!(age_since(creation_timestamp(pod), now)),
        json!(or_none(pod_ip(pod))),
        json!(or_none(str_at(pod, &["spec", "nodeName"]))),
        json!(or_none(str_at(pod, &["status", "nominatedNodeName"]))),
        json!(readiness_gates(pod)),
    ]
}

/// Row conditions let clients tell finished pods apart (`kubectl get` hides them only with
/// `--show-all=false` in old versions, but the Table still carries them).
pub(crate) fn conditions(pod: &Value) -> Option<Value> {
    let (reason, message) = match str_at(pod, &["status", "phase"]) {
        "Succeeded" => ("Succeeded", "The pod has completed successfully."),
        "Failed" => ("Failed", "The pod failed."),
        _ => return None,
    };
    Some(json!([{
        "type": "Completed",
        "status": "True",
        "reason": reason,
        "message": message,
    }]))
}

struct Summary {
    ready: usize,
    total: usize,
    reason: String,
    restarts: i64,
    last_restart: Option<DateTime<Utc>>,
}

fn or_none(s: &str) -> &str {
    if s.is_empty() {
        "<none>"
    } else {
        s
    }
}

/// The v1→internal conversion makes `podIP` authoritative over `podIPs[0]`.
fn pod_ip(pod: &Value) -> &str {
    let single = str_at(pod, &["status", "podIP"]);
    if !single.is_empty() {
        return single;
    }
    arr_at(pod, &["status", "podIPs"])
        .first()
        .map(|ip| str_at(ip, &["ip"]))
        .unwrap_or("")
}

fn later(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

fn last_termination(container_status: &Value) -> Option<DateTime<Utc>> {
    time_at(container_status, &["lastState", "terminated", "finishedAt"])
}

fn terminated_reason(terminated: &Value, prefix: &str) -> String {
    let reason = str_at(terminated, &["reason"]);
    if !reason.is_empty() {
        return format!("{prefix}{reason}");
    }
    let signal = i64_at(terminated, &["signal"]);
    if signal != 0 {
        format!("{prefix}Signal:{signal}")
    } else {
        format!("{prefix}ExitCode:{}", i64_at(terminated, &["exitCode"]))
    }
}

fn has_condition(pod: &Value, kind: &str) -> bool {
    arr_at(pod, &["status", "conditions"])
        .iter()
        .find(|c| str_at(c, &["type"]) == kind)
        .is_some_and(|c| str_at(c, &["status"]) == "True")
}

fn any_condition_true(pod: &Value, kind: &str) -> bool {
    arr_at(pod, &["status", "conditions"])
        .iter()
        .any(|c| str_at(c, &["type"]) == kind && str_at(c, &["status"]) == "True")
}

/// The aggregate pod status upstream computes in `printPod`, step by step.
fn summarize(pod: &Value) -> Summary {
    let phase = str_at(pod, &["status", "phase"]);
    let mut reason = match str_at(pod, &["status", "reason"]) {
        "" => phase.to_string(),
        r => r.to_string(),
    };
    let scheduling_gated = arr_at(pod, &["status", "conditions"]).iter().any(|c| {
        str_at(c, &["type"]) == "PodScheduled" && str_at(c, &["reason"]) == "SchedulingGated"
    });
    if scheduling_gated {
        reason = "SchedulingGated".to_string();
    }

    let init_specs = arr_at(pod, &["spec", "initContainers"]);
    // Sidecars are init containers with restartPolicy Always; they count as regular containers.
    let sidecars: HashSet<&str> = init_specs
        .iter()
        .filter(|c| str_at(c, &["restartPolicy"]) == "Always")
        .map(|c| str_at(c, &["name"]))
        .collect();
    let total = arr_at(pod, &["spec", "containers"]).len() + sidecars.len();

    let mut ready = 0;
    let mut restarts = 0;
    let mut last_restart = None;
    let mut sidecar_restarts = 0;
    let mut last_sidecar_restart = None;
    let mut initializing = false;

    for (i, cs) in arr_at(pod, &["status", "initContainerStatuses"])
        .iter()
        .enumerate()
    {
        let count = i64_at(cs, &["restartCount"]);
        restarts += count;
        last_restart = later(last_restart, last_termination(cs));
        let is_sidecar = sidecars.contains(str_at(cs, &["name"]));
        if is_sidecar {
            sidecar_restarts += count;
            last_sidecar_restart = later(last_sidecar_restart, last_termination(cs));
        }
        let terminated = get(cs, &["state", "terminated"]).filter(|t| t.is_object());
        let waiting_reason = str_at(cs, &["state", "waiting", "reason"]);
        if terminated.is_some_and(|t| i64_at(t, &["exitCode"]) == 0) {
            continue;
        }
        if is_sidecar && bool_at(cs, &["started"]) {
            if bool_at(cs, &["ready"]) {
                ready += 1;
            }
            continue;
        }
        if let Some(t) = terminated {
            reason = terminated_reason(t, "Init:");
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            reason = format!("Init:{waiting_reason}");
        } else {
            reason = format!("Init:{}/{}", i, init_specs.len());
        }
        initializing = true;
        break;
    }

    if !initializing || has_condition(pod, "Initialized") {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        for cs in arr_at(pod, &["status", "containerStatuses"]).iter().rev() {
            restarts += i64_at(cs, &["restartCount"]);
            last_restart = later(last_restart, last_termination(cs));
            let waiting_reason = str_at(cs, &["state", "waiting", "reason"]);
            let terminated = get(cs, &["state", "terminated"]).filter(|t| t.is_object());
            if !waiting_reason.is_empty() {
                reason = waiting_reason.to_string();
            } else if let Some(t) = terminated {
                reason = terminated_reason(t, "");
            } else if bool_at(cs, &["ready"])
                && get(cs, &["state", "running"]).is_some_and(Value::is_object)
            {
                has_running = true;
                ready += 1;
            }
        }
        // A pod whose last container finished but others still run is not "Completed".
        if reason == "Completed" && has_running {
            reason = if any_condition_true(pod, "Ready") {
                "Running".to_string()
            } else {
                "NotReady".to_string()
            };
        }
    }

    let deleting = get(pod, &["metadata", "deletionTimestamp"]).is_some_and(|v| !v.is_null());
    if deleting && str_at(pod, &["status", "reason"]) == NODE_UNREACHABLE_REASON {
        reason = "Unknown".to_string();
    } else if deleting && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".to_string();
    }

    Summary {
        ready,
        total,
        reason,
        restarts,
        last_restart,
    }
}

/// `true/total` readiness gates, counting the first status condition of each gate's type.
fn readiness_gates(pod: &Value) -> String {
    let gates = arr_at(pod, &["spec", "readinessGates"]);
    if gates.is_empty() {
        return "<none>".to_string();
    }
    let conditions = arr_at(pod, &["status", "conditions"]);
    let satisfied = gates
        .iter()
        .filter(|gate| {
            let kind = str_at(gate, &["conditionType"]);
            conditions
                .iter()
                .find(|c| str_at(c, &["type"]) == kind)
                .is_some_and(|c| str_at(c, &["status"]) == "True")
        })
        .count();
    format!("{}/{}", satisfied, gates.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 5, 1, 12, 0, 0).unwrap()
    }

    fn running(name: &str, ready: bool, restarts: i64) -> Value {
        json!({"name": name, "ready": ready, "restartCount": restarts, "started": true,
               "state": {"running": {"startedAt": "2025-05-01T10:00:00Z"}}})
    }

    fn pod(spec: Value, status: Value) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-0", "namespace": "default", "creationTimestamp": "2025-05-01T09:00:00Z"},
            "spec": spec,
            "status": status,
        })
    }

    #[test]
    fn running_pod_wide_cells() {
        let p = pod(
            json!({"nodeName": "node-a", "containers": [{"name": "app"}, {"name": "log"}]}),
            json!({"phase": "Running", "podIP": "10.244.0.5", "podIPs": [{"ip": "10.244.0.5"}],
                   "conditions": [{"type": "Ready", "status": "True"}],
                   "containerStatuses": [running("app", true, 0), running("log", true, 0)]}),
        );
        assert_eq!(
            cells(&p, now()),
            vec![
                json!("web-0"),
                json!("2/2"),
                json!("Running"),
                json!("0"),
                json!("3h"),
                json!("10.244.0.5"),
                json!("node-a"),
                json!("<none>"),
                json!("<none>")
            ]
        );
        assert_eq!(conditions(&p), None);
    }

    #[test]
    fn pending_pod_has_placeholders() {
        let p = pod(
            json!({"containers": [{"name": "app"}]}),
            json!({"phase": "Pending"}),
        );
        let c = cells(&p, now());
        assert_eq!(c[1], json!("0/1"));
        assert_eq!(c[2], json!("Pending"));
        assert_eq!(c[5], json!("<none>"));
        assert_eq!(c[6], json!("<none>"));
    }

    #[test]
    fn restarts_show_time_of_last_restart() {
        let mut cs = running("app", true, 3);
        cs["lastState"] =
            json!({"terminated": {"exitCode": 1, "finishedAt": "2025-05-01T11:58:00Z"}});
        let p = pod(
            json!({"containers": [{"name": "app"}]}),
            json!({"phase": "Running", "containerStatuses": [cs]}),
        );
        assert_eq!(cells(&p, now())[3], json!("3 (2m ago)"));
    }

    #[test]
    fn crash_loop_waiting_reason_wins() {
        let p = pod(
            json!({"containers": [{"name": "app"}]}),
            json!({"phase": "Running", "containerStatuses": [
                {"name": "app", "ready": false, "restartCount": 7,
                 "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}),
        );
        let c = cells(&p, now());
        assert_eq!(c[1], json!("0/1"));
        assert_eq!(c[2], json!("CrashLoopBackOff"));
        assert_eq!(c[3], json!("7"));
    }

    #[test]
    fn terminated_without_reason_shows_signal_or_exit_code() {
        let signal = pod(
            json!({"containers": [{"name": "app"}]}),
            json!({"phase": "Running", "containerStatuses": [
                {"name": "app", "state": {"terminated": {"exitCode": 137, "signal": 9}}}]}),
        );
        assert_eq!(cells(&signal, now())[2], json!("Signal:9"));
        let code = pod(
            json!({"containers": [{"name": "app"}]}),
            json!({"phase": "Failed", "containerStatuses": [
                {"name": "app", "state": {"terminated": {"exitCode": 2}}}]}),
        );
        assert_eq!(cells(&code, now())[2], json!("ExitCode:2"));
        assert_eq!(
            conditions(&code),
            Some(
                json!([{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}])
            )
        );
    }

    #[test]
    fn terminating_pod() {
        let mut p = pod(
            json!({"containers": [{"name": "app"}]}),
            json!({"phase": "Running", "containerStatuses": [running("app", true, 0)]}),
        );
        p["metadata"]["deletionTimestamp"] = json!("2025-05-01T11:59:30Z");
        assert_eq!(cells(&p, now())[2], json!("Terminating"));

        // A finished pod being deleted keeps its terminal status.
        let mut done = pod(
            json!({"containers": [{"name": "app"}]}),
            json!({"phase": "Succeeded", "containerStatuses": [
                {"name": "app", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}),
        );
        done["metadata"]["deletionTimestamp"] = json!("2025-05-01T11:59:30Z");
        assert_eq!(cells(&done, now())[2], json!("Completed"));
        assert!(conditions(&done).is_some());

        let mut lost = pod(
            json!({"containers": [{"name": "app"}]}),
            json!({"phase": "Running", "reason": "NodeLost"}),
        );
        lost["metadata"]["deletionTimestamp"] = json!("2025-05-01T11:59:30Z");
        assert_eq!(cells(&lost, now())[2], json!("Unknown"));
    }

    #[test]
    fn init_containers_progress_and_failures() {
        let spec = json!({"initContainers": [{"name": "a"}, {"name": "b"}], "containers": [{"name": "app"}]});
        let waiting_second = pod(
            spec.clone(),
            json!({"phase": "Pending", "initContainerStatuses": [
                {"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                {"name": "b", "state": {"running": {}}}],
                "containerStatuses": [{"name": "app", "state": {"waiting": {"reason": "PodInitializing"}}}]}),
        );
        assert_eq!(cells(&waiting_second, now())[2], json!("Init:1/2"));

        let failed = pod(
            spec.clone(),
            json!({"phase": "Pending", "initContainerStatuses": [
                {"name": "a", "restartCount": 2, "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]}),
        );
        let c = cells(&failed, now());
        assert_eq!(c[2], json!("Init:Error"));
        assert_eq!(c[3], json!("2"));

        let backoff = pod(
            spec,
            json!({"phase": "Pending", "initContainerStatuses": [
                {"name": "a", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}),
        );
        assert_eq!(cells(&backoff, now())[2], json!("Init:CrashLoopBackOff"));
    }

    #[test]
    fn sidecars_count_as_containers() {
        let p = pod(
            json!({"initContainers": [{"name": "proxy", "restartPolicy": "Always"}],
                   "containers": [{"name": "app"}]}),
            json!({"phase": "Running",
                   "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
                   "initContainerStatuses": [running("proxy", true, 1)],
                   "containerStatuses": [running("app", true, 2)]}),
        );
        let c = cells(&p, now());
        assert_eq!(c[1], json!("2/2"));
        assert_eq!(c[2], json!("Running"));
        assert_eq!(c[3], json!("3"));
    }

    #[test]
    fn completed_container_with_running_sibling() {
        let p = pod(
            json!({"containers": [{"name": "app"}, {"name": "job"}]}),
            json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}],
                   "containerStatuses": [
                       {"name": "job", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                       running("app", true, 0)]}),
        );
        // Statuses are walked last to first, so the terminated container is seen last.
        assert_eq!(cells(&p, now())[2], json!("NotReady"));
    }

    #[test]
    fn scheduling_gated_and_readiness_gates() {
        let p = pod(
            json!({"containers": [{"name": "app"}],
                   "readinessGates": [{"conditionType": "example.com/lb"}, {"conditionType": "example.com/dns"}]}),
            json!({"phase": "Pending", "nominatedNodeName": "node-b",
                   "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"},
                                  {"type": "example.com/lb", "status": "True"}]}),
        );
        let c = cells(&p, now());
        assert_eq!(c[2], json!("SchedulingGated"));
        assert_eq!(c[7], json!("node-b"));
        assert_eq!(c[8], json!("1/2"));
    }
}
