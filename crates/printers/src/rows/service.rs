//! Service rows: NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE SELECTOR.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::duration::age_since;
use crate::json::{arr_at, creation_timestamp, format_labels, i64_at, name, obj_at, str_at};

pub(crate) fn cells(svc: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let ports = port_string(arr_at(svc, &["spec", "ports"]));
    vec![
        json!(name(svc)),
        json!(str_at(svc, &["spec", "type"])),
        json!(cluster_ip(svc)),
        json!(external_ip(svc)),
        json!(if ports.is_empty() {
            "<none>".to_string()
        } else {
            ports
        }),
        json!(age_since(creation_timestamp(svc), now)),
        json!(format_labels(obj_at(svc, &["spec", "selector"]))),
    ]
}

/// The primary cluster IP. The v1→internal conversion treats `clusterIP` as authoritative
/// over `clusterIPs[0]`, so objects written by older clients print the same way.
fn cluster_ip(svc: &Value) -> String {
    let single = str_at(svc, &["spec", "clusterIP"]);
    if !single.is_empty() {
        return single.to_string();
    }
    arr_at(svc, &["spec", "clusterIPs"])
        .first()
        .and_then(Value::as_str)
        .unwrap_or("<none>")
        .to_string()
}

fn external_ips(svc: &Value) -> Vec<&str> {
    arr_at(svc, &["spec", "externalIPs"])
        .iter()
        .filter_map(Value::as_str)
        .collect()
}

/// `getServiceExternalIP`, with the server-side (wide, never truncated) load-balancer list.
fn external_ip(svc: &Value) -> String {
    let external = external_ips(svc);
    match str_at(svc, &["spec", "type"]) {
        "ClusterIP" | "NodePort" => {
            if external.is_empty() {
                "<none>".to_string()
            } else {
                external.join(",")
            }
        }
        "LoadBalancer" => {
            let mut all = load_balancer_ingress(svc);
            if all.is_empty() && external.is_empty() {
                return "<pending>".to_string();
            }
            all.extend(external);
            all.join(",")
        }
        "ExternalName" => str_at(svc, &["spec", "externalName"]).to_string(),
        _ => "<unknown>".to_string(),
    }
}

/// Ingress IPs (or hostnames when an entry has no IP), sorted and de-duplicated.
fn load_balancer_ingress(svc: &Value) -> Vec<&str> {
    let set: BTreeSet<&str> = arr_at(svc, &["status", "loadBalancer", "ingress"])
        .iter()
        .filter_map(|ing| {
            let ip = str_at(ing, &["ip"]);
            let host = str_at(ing, &["hostname"]);
            if !ip.is_empty() {
                Some(ip)
            } else if !host.is_empty() {
                Some(host)
            } else {
                None
            }
        })
        .collect();
    set.into_iter().collect()
}

/// `80/TCP`, or `80:30080/TCP` when a node port is allocated, comma separated.
fn port_string(ports: &[Value]) -> String {
    ports
        .iter()
        .map(|p| {
            let port = i64_at(p, &["port"]);
            let node_port = i64_at(p, &["nodePort"]);
            // Stored Services always carry a protocol (defaulted to TCP).
            let protocol = match str_at(p, &["protocol"]) {
                "" => "TCP",
                other => other,
            };
            if node_port > 0 {
                format!("{port}:{node_port}/{protocol}")
            } else {
                format!("{port}/{protocol}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 5, 1, 12, 0, 0).unwrap()
    }

    fn svc(spec: Value, status: Value) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "default", "creationTimestamp": "2025-05-01T11:55:00Z"},
            "spec": spec,
            "status": status,
        })
    }

    #[test]
    fn cluster_ip_service() {
        let s = svc(
            json!({"type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                   "selector": {"app": "web", "tier": "fe"},
                   "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]}),
            json!({"loadBalancer": {}}),
        );
        assert_eq!(
            cells(&s, now()),
            vec![
                json!("web"),
                json!("ClusterIP"),
                json!("10.96.0.10"),
                json!("<none>"),
                json!("80/TCP"),
                json!("5m"),
                json!("app=web,tier=fe")
            ]
        );
    }

    #[test]
    fn headless_without_selector_or_ports() {
        let s = svc(
            json!({"type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"]}),
            json!({}),
        );
        let c = cells(&s, now());
        assert_eq!(c[2], json!("None"));
        assert_eq!(c[4], json!("<none>"));
        assert_eq!(c[6], json!("<none>"));
    }

    #[test]
    fn node_port_multi_port_with_external_ips() {
        let s = svc(
            json!({"type": "NodePort", "clusterIP": "10.96.1.1", "clusterIPs": ["10.96.1.1"],
                   "externalIPs": ["192.0.2.10", "192.0.2.11"],
                   "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"},
                             {"port": 53, "nodePort": 30053, "protocol": "UDP"},
                             {"port": 443}]}),
            json!({}),
        );
        let c = cells(&s, now());
        assert_eq!(c[3], json!("192.0.2.10,192.0.2.11"));
        assert_eq!(c[4], json!("80:30080/TCP,53:30053/UDP,443/TCP"));
    }

    #[test]
    fn load_balancer_pending() {
        let s = svc(
            json!({"type": "LoadBalancer", "clusterIP": "10.96.2.2", "clusterIPs": ["10.96.2.2"],
                   "ports": [{"port": 443, "nodePort": 31443, "protocol": "TCP"}]}),
            json!({"loadBalancer": {}}),
        );
        let c = cells(&s, now());
        assert_eq!(c[3], json!("<pending>"));
        assert_eq!(c[4], json!("443:31443/TCP"));
    }

    #[test]
    fn load_balancer_ingress_sorted_deduped_then_external_ips() {
        let s = svc(
            json!({"type": "LoadBalancer", "clusterIP": "10.96.2.2", "externalIPs": ["198.51.100.1"],
                   "ports": [{"port": 80, "nodePort": 30000, "protocol": "TCP"}]}),
            json!({"loadBalancer": {"ingress": [
                {"ip": "203.0.113.9"}, {"hostname": "lb.example.com"}, {"ip": "203.0.113.10"},
                {"ip": "203.0.113.9", "hostname": "ignored.example.com"}, {}
            ]}}),
        );
        assert_eq!(
            cells(&s, now())[3],
            json!("203.0.113.10,203.0.113.9,lb.example.com,198.51.100.1")
        );
        let only_external = svc(
            json!({"type": "LoadBalancer", "externalIPs": ["198.51.100.1"]}),
            json!({}),
        );
        assert_eq!(cells(&only_external, now())[3], json!("198.51.100.1"));
    }

    #[test]
    fn long_load_balancer_list_is_not_truncated_server_side() {
        let s = svc(
            json!({"type": "LoadBalancer"}),
            json!({"loadBalancer": {"ingress": [{"hostname": "a-very-long-hostname.example.com"}]}}),
        );
        assert_eq!(
            cells(&s, now())[3],
            json!("a-very-long-hostname.example.com")
        );
    }

    #[test]
    fn external_name() {
        let s = svc(
            json!({"type": "ExternalName", "externalName": "db.example.com"}),
            json!({}),
        );
        let c = cells(&s, now());
        assert_eq!(c[1], json!("ExternalName"));
        assert_eq!(c[2], json!("<none>"));
        assert_eq!(c[3], json!("db.example.com"));
        assert_eq!(c[4], json!("<none>"));
    }

    #[test]
    fn unknown_type_and_dual_stack() {
        let s = svc(
            json!({"type": "Weird", "clusterIPs": ["fd00::10", "10.96.0.3"]}),
            json!({}),
        );
        let c = cells(&s, now());
        assert_eq!(c[2], json!("fd00::10"));
        assert_eq!(c[3], json!("<unknown>"));
    }

    #[test]
    fn missing_creation_timestamp_is_unknown_age() {
        let s = json!({"metadata": {"name": "x"}, "spec": {"type": "ClusterIP"}});
        assert_eq!(cells(&s, now())[5], json!("<unknown>"));
    }
}
