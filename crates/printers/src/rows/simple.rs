//! Rows for resources with one or two plain fields: Namespaces, Leases, ServiceCIDRs,
//! IPAddresses, and the generic default for resources without a printer.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use crate::duration::age_since;
use crate::json::{arr_at, creation_timestamp, get, name, str_at};

pub(crate) fn namespace_cells(ns: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        json!(name(ns)),
        json!(str_at(ns, &["status", "phase"])),
        json!(age_since(creation_timestamp(ns), now)),
    ]
}

pub(crate) fn lease_cells(lease: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        json!(name(lease)),
        json!(str_at(lease, &["spec", "holderIdentity"])),
        json!(age_since(creation_timestamp(lease), now)),
    ]
}

pub(crate) fn service_cidr_cells(cidr: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let cidrs: Vec<&str> = arr_at(cidr, &["spec", "cidrs"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    vec![
        json!(name(cidr)),
        json!(cidrs.join(",")),
        json!(age_since(creation_timestamp(cidr), now)),
    ]
}

/// A LoadBalancerIPPool row. Fields the pool lacks (no IPv6 block, no status yet) are null cells, which
/// kubectl prints as `<none>`, as it does for a CRD column whose JSONPath finds nothing.
pub(crate) fn lb_ip_pool_cells(pool: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let cidrs: Vec<&str> = arr_at(pool, &["spec", "cidrs"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let field = |path: &[&str]| get(pool, path).cloned().unwrap_or(Value::Null);
    vec![
        json!(name(pool)),
        json!(cidrs.join(",")),
        field(&["spec", "autoAssign"]),
        field(&["spec", "priority"]),
        field(&["status", "ipv4", "used"]),
        field(&["status", "ipv4", "total"]),
        field(&["status", "ipv6", "used"]),
        field(&["status", "ipv6", "total"]),
        json!(age_since(creation_timestamp(pool), now)),
    ]
}

/// Upstream emits an age cell although IPAddress declares only Name and ParentRef columns;
/// kept so clients see the same rows.
pub(crate) fn ip_address_cells(ip: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        json!(name(ip)),
        json!(parent_ref(ip)),
        json!(age_since(creation_timestamp(ip), now)),
    ]
}

/// `resource[.group][/namespace]/name`, lower-cased, or `<none>`.
fn parent_ref(ip: &Value) -> String {
    let Some(parent) = get(ip, &["spec", "parentRef"]).filter(|p| p.is_object()) else {
        return "<none>".to_string();
    };
    let resource = str_at(parent, &["resource"]);
    let group = str_at(parent, &["group"]);
    let mut out = if group.is_empty() {
        resource.to_lowercase()
    } else {
        format!("{resource}.{group}").to_lowercase()
    };
    let namespace = str_at(parent, &["namespace"]);
    if !namespace.is_empty() {
        out.push('/');
        out.push_str(namespace);
    }
    out.push('/');
    out.push_str(str_at(parent, &["name"]));
    out
}

/// The generic convertor prints the creation time itself (RFC 3339, UTC), not an age; an
/// unset time prints as Go's zero time.
pub(crate) fn default_cells(obj: &Value) -> Vec<Value> {
    let created = creation_timestamp(obj)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".to_string());
    vec![json!(name(obj)), json!(created)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 5, 1, 12, 0, 0).unwrap()
    }

    #[test]
    fn namespace() {
        let ns = json!({"metadata": {"name": "kube-system", "creationTimestamp": "2025-04-01T12:00:00Z"},
                        "status": {"phase": "Active"}});
        assert_eq!(
            namespace_cells(&ns, now()),
            vec![json!("kube-system"), json!("Active"), json!("30d")]
        );
        let deleting = json!({"metadata": {"name": "x"}, "status": {"phase": "Terminating"}});
        assert_eq!(namespace_cells(&deleting, now())[1], json!("Terminating"));
    }

    #[test]
    fn lease_with_and_without_holder() {
        let l = json!({"metadata": {"name": "svcplane-announcer-10-0-0-1", "creationTimestamp": "2025-05-01T11:50:00Z"},
                       "spec": {"holderIdentity": "node-a", "leaseDurationSeconds": 15}});
        assert_eq!(
            lease_cells(&l, now()),
            vec![
                json!("svcplane-announcer-10-0-0-1"),
                json!("node-a"),
                json!("10m")
            ]
        );
        let free = json!({"metadata": {"name": "x"}, "spec": {}});
        assert_eq!(lease_cells(&free, now())[1], json!(""));
    }

    #[test]
    fn service_cidr_dual_stack() {
        let c = json!({"metadata": {"name": "kubernetes", "creationTimestamp": "2025-05-01T11:00:00Z"},
                       "spec": {"cidrs": ["10.96.0.0/16", "fd00:10:96::/108"]}});
        assert_eq!(
            service_cidr_cells(&c, now()),
            vec![
                json!("kubernetes"),
                json!("10.96.0.0/16,fd00:10:96::/108"),
                json!("60m")
            ]
        );
    }

    #[test]
    fn ip_address_parent_ref() {
        let ip = json!({"metadata": {"name": "10.96.0.10", "creationTimestamp": "2025-05-01T11:59:58Z"},
                        "spec": {"parentRef": {"group": "", "resource": "services", "namespace": "kube-system", "name": "kube-dns"}}});
        assert_eq!(
            ip_address_cells(&ip, now()),
            vec![
                json!("10.96.0.10"),
                json!("services/kube-system/kube-dns"),
                json!("2s")
            ]
        );
        let grouped = json!({"metadata": {"name": "192.0.2.1"},
                             "spec": {"parentRef": {"group": "Gateway.Networking.k8s.io", "resource": "Gateways", "name": "gw"}}});
        assert_eq!(
            ip_address_cells(&grouped, now())[1],
            json!("gateways.gateway.networking.k8s.io/gw")
        );
        let orphan = json!({"metadata": {"name": "192.0.2.2"}, "spec": {}});
        assert_eq!(ip_address_cells(&orphan, now())[1], json!("<none>"));
    }

    #[test]
    fn lb_ip_pool_row() {
        let p = json!({"metadata": {"name": "default", "creationTimestamp": "2025-05-01T11:59:00Z"},
                       "spec": {"cidrs": ["192.0.2.0/24", "192.0.3.1-192.0.3.9"], "autoAssign": true, "priority": 0},
                       "status": {"ipv4": {"total": 263, "used": 2}}});
        assert_eq!(
            lb_ip_pool_cells(&p, now()),
            vec![
                json!("default"),
                json!("192.0.2.0/24,192.0.3.1-192.0.3.9"),
                json!(true),
                json!(0),
                json!(2),
                json!(263),
                Value::Null,
                Value::Null,
                json!("60s")
            ]
        );
    }

    #[test]
    fn default_prints_created_at() {
        let obj =
            json!({"metadata": {"name": "cfg", "creationTimestamp": "2025-05-01T13:00:00+01:00"}});
        assert_eq!(
            default_cells(&obj),
            vec![json!("cfg"), json!("2025-05-01T12:00:00Z")]
        );
        let unset = json!({"metadata": {"name": "cfg"}});
        assert_eq!(default_cells(&unset)[1], json!("0001-01-01T00:00:00Z"));
    }
}
