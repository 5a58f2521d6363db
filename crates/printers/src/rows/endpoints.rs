//! Endpoints rows (NAME ENDPOINTS AGE) and EndpointSlice rows
//! (NAME ADDRESSTYPE PORTS ENDPOINTS AGE).

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::duration::age_since;
use crate::json::{arr_at, creation_timestamp, get, i64_at, name, str_at};

/// How many entries a list cell shows before "+ N more...".
const SHOWN: usize = 3;

pub(crate) fn endpoints_cells(ep: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        json!(name(ep)),
        json!(format_endpoints(ep)),
        json!(age_since(creation_timestamp(ep), now)),
    ]
}

pub(crate) fn slice_cells(slice: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        json!(name(slice)),
        json!(str_at(slice, &["addressType"])),
        json!(slice_ports(arr_at(slice, &["ports"]))),
        json!(slice_endpoints(arr_at(slice, &["endpoints"]))),
        json!(age_since(creation_timestamp(slice), now)),
    ]
}

/// Go's `net.JoinHostPort`: IPv6 literals are bracketed.
fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Ready addresses as `ip:port` for every port of every subset (bare IPs for port-less
/// headless subsets). `count` keeps counting past the shown entries so the suffix is exact.
fn format_endpoints(ep: &Value) -> String {
    let subsets = arr_at(ep, &["subsets"]);
    if subsets.is_empty() {
        return "<none>".to_string();
    }
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0;
    let mut push = |list: &mut Vec<String>, entry: String| {
        if list.len() == SHOWN {
            more = true;
            false
        } else {
            list.push(entry);
            true
        }
    };
    for subset in subsets {
        let addresses = arr_at(subset, &["addresses"]);
        let ports = arr_at(subset, &["ports"]);
        if ports.is_empty() {
            count += addresses.len();
            for addr in addresses {
                if !push(&mut list, str_at(addr, &["ip"]).to_string()) {
                    break;
                }
            }
            continue;
        }
        for port in ports {
            count += addresses.len();
            let number = i64_at(port, &["port"]);
            for addr in addresses {
                if !push(&mut list, join_host_port(str_at(addr, &["ip"]), number)) {
                    break;
                }
            }
        }
    }
    with_more(list, more, count, "")
}

fn with_more(list: Vec<String>, more: bool, count: usize, empty: &str) -> String {
    let joined = list.join(",");
    if more {
        return format!("{joined} + {} more...", count - SHOWN);
    }
    if joined.is_empty() {
        return empty.to_string();
    }
    joined
}

/// Port numbers, or the port name when the number is unset, or `*` for "all ports".
fn slice_ports(ports: &[Value]) -> String {
    let shown = ports
        .iter()
        .take(SHOWN)
        .map(|p| {
            if let Some(n) = get(p, &["port"]).and_then(Value::as_i64) {
                n.to_string()
            } else if let Some(name) = get(p, &["name"]).and_then(Value::as_str) {
                name.to_string()
            } else {
                "*".to_string()
            }
        })
        .collect();
    with_more(shown, ports.len() > SHOWN, ports.len(), "<unset>")
}

fn slice_endpoints(endpoints: &[Value]) -> String {
    let addresses: Vec<&str> = endpoints
        .iter()
        .flat_map(|e| arr_at(e, &["addresses"]))
        .filter_map(Value::as_str)
        .collect();
    let shown = addresses
        .iter()
        .take(SHOWN)
        .map(|a| a.to_string())
        .collect();
    with_more(shown, addresses.len() > SHOWN, addresses.len(), "<unset>")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 5, 1, 12, 0, 0).unwrap()
    }

    fn endpoints(subsets: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Endpoints",
               "metadata": {"name": "web", "creationTimestamp": "2025-05-01T11:00:00Z"},
               "subsets": subsets})
    }

    #[test]
    fn no_subsets_is_none() {
        assert_eq!(
            endpoints_cells(&endpoints(json!(null)), now()),
            vec![json!("web"), json!("<none>"), json!("60m")]
        );
    }

    #[test]
    fn subsets_without_ready_addresses_print_empty() {
        let ep = endpoints(
            json!([{"notReadyAddresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]),
        );
        assert_eq!(endpoints_cells(&ep, now())[1], json!(""));
    }

    #[test]
    fn ports_times_addresses_truncated_with_count() {
        let ep = endpoints(json!([{
            "addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}],
            "ports": [{"name": "http", "port": 80, "protocol": "TCP"}, {"name": "https", "port": 443, "protocol": "TCP"}]
        }, {
            "addresses": [{"ip": "fd00::3"}],
            "ports": [{"port": 8080}]
        }]));
        // 2 addresses × 2 ports + 1 = 5 endpoints, 3 shown.
        assert_eq!(
            endpoints_cells(&ep, now())[1],
            json!("10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 2 more...")
        );
    }

    #[test]
    fn exactly_three_is_not_truncated_and_ipv6_is_bracketed() {
        let ep = endpoints(json!([{
            "addresses": [{"ip": "10.0.0.1"}, {"ip": "fd00::2"}, {"ip": "10.0.0.3"}],
            "ports": [{"port": 53, "protocol": "UDP"}]
        }]));
        assert_eq!(
            endpoints_cells(&ep, now())[1],
            json!("10.0.0.1:53,[fd00::2]:53,10.0.0.3:53")
        );
    }

    #[test]
    fn headless_without_ports_lists_bare_ips() {
        let ep = endpoints(json!([{
            "addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}, {"ip": "10.0.0.3"}, {"ip": "10.0.0.4"}]
        }]));
        assert_eq!(
            endpoints_cells(&ep, now())[1],
            json!("10.0.0.1,10.0.0.2,10.0.0.3 + 1 more...")
        );
    }

    #[test]
    fn endpoint_slice_cells() {
        let slice = json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "web-abcde", "creationTimestamp": "2025-05-01T11:59:00Z"},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}, {"name": "metrics"}, {}, {"port": 9}],
            "endpoints": [
                {"addresses": ["10.244.1.2"], "conditions": {"ready": true}},
                {"addresses": ["10.244.1.3"]},
                {"addresses": ["10.244.1.4"]},
                {"addresses": ["10.244.1.5"]},
                {"addresses": ["10.244.1.6"]}
            ]
        });
        assert_eq!(
            slice_cells(&slice, now()),
            vec![
                json!("web-abcde"),
                json!("IPv4"),
                json!("8080,metrics,* + 1 more..."),
                json!("10.244.1.2,10.244.1.3,10.244.1.4 + 2 more..."),
                json!("60s")
            ]
        );
    }

    #[test]
    fn empty_endpoint_slice_is_unset() {
        let slice = json!({"metadata": {"name": "s"}, "addressType": "IPv6", "ports": [], "endpoints": null});
        let c = slice_cells(&slice, now());
        assert_eq!(c[2], json!("<unset>"));
        assert_eq!(c[3], json!("<unset>"));
        assert_eq!(c[4], json!("<unknown>"));
    }
}
