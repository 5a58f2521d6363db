//! Golden tests: representative Services rendered to `nft -f` text and compared with the files under
//! `tests/golden/`. `SVCPLANE_UPDATE_GOLDEN=1 cargo test -p proxy --test golden` rewrites them; review the
//! change like code. When `nft` is installed and we may use it, every file is also checked by the kernel in
//! check mode (`nft -c -f`: nothing is changed).

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;
use proxy::render::{ruleset, transaction, Mode};
use proxy::{Family, ProxyModel};
use serde_json::json;

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.nft"))
}

fn check_golden(name: &str, text: &str) {
    let path = golden_path(name);
    if std::env::var_os("SVCPLANE_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with SVCPLANE_UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    });
    if want != text {
        let got = path.with_extension("nft.got");
        std::fs::write(&got, text).unwrap();
        panic!(
            "{name}: rendering differs from {} (new text in {})",
            path.display(),
            got.display()
        );
    }
}

fn full(model: &ProxyModel) -> String {
    ruleset(model, Mode::Replace)
}

#[test]
fn clusterip_three_endpoints() {
    let mut m = model(Family::V4);
    m.upsert_service(&cluster_ip("web", "10.96.0.10")).unwrap();
    m.upsert_endpoint_slice(&http_slice(
        "web",
        "web-abc",
        vec![
            ready("10.244.1.5", NODE),
            ready("10.244.2.5", "node-2"),
            ready("10.244.3.5", "node-3"),
        ],
    ));
    check_golden("clusterip", &full(&m));
}

#[test]
fn nodeport() {
    let mut m = model(Family::V4);
    m.upsert_service(&service(json!({
        "metadata": {"namespace": "default", "name": "web"},
        "spec": {"type": "NodePort", "clusterIP": "10.96.0.11", "clusterIPs": ["10.96.0.11"],
                 "externalTrafficPolicy": "Cluster",
                 "ports": [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080}]}
    })))
    .unwrap();
    m.upsert_endpoint_slice(&http_slice(
        "web",
        "web-1",
        vec![ready("10.244.2.5", "node-2"), ready("10.244.3.5", "node-3")],
    ));
    check_golden("nodeport", &full(&m));
}

#[test]
fn loadbalancer_with_source_ranges() {
    let mut m = model(Family::V4);
    m.upsert_service(&service(json!({
        "metadata": {"namespace": "default", "name": "web"},
        "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.12", "clusterIPs": ["10.96.0.12"],
                 "externalIPs": ["198.51.100.7"],
                 "loadBalancerSourceRanges": ["192.168.0.0/16", "203.0.113.0/24", "192.168.5.0/24", "2001:db8::/32"],
                 "ports": [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30081}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.10"}, {"ip": "203.0.113.11", "ipMode": "Proxy"},
                                                {"hostname": "lb.example.com"}]}}
    })))
    .unwrap();
    m.upsert_endpoint_slice(&http_slice(
        "web",
        "web-1",
        vec![ready("10.244.2.5", "node-2")],
    ));
    check_golden("loadbalancer", &full(&m));
}

#[test]
fn externalname_and_headless_are_ignored() {
    let mut m = model(Family::V4);
    m.upsert_service(&service(json!({
        "metadata": {"namespace": "default", "name": "ext"},
        "spec": {"type": "ExternalName", "externalName": "example.com"}
    })))
    .unwrap();
    m.upsert_service(&service(json!({
        "metadata": {"namespace": "default", "name": "headless"},
        "spec": {"type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"],
                 "ports": [{"name": "http", "port": 80}]}
    })))
    .unwrap();
    m.upsert_endpoint_slice(&http_slice(
        "headless",
        "headless-1",
        vec![ready("10.244.1.9", NODE)],
    ));
    assert!(m.elements().is_empty());
    check_golden("ignored", &full(&m));
}

#[test]
fn local_traffic_policies() {
    let mut m = model(Family::V4);
    // eTP:Local LoadBalancer with a local and a remote endpoint, and a health check.
    m.upsert_service(&service(json!({
        "metadata": {"namespace": "default", "name": "etp-local"},
        "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.20", "clusterIPs": ["10.96.0.20"],
                 "externalTrafficPolicy": "Local", "healthCheckNodePort": 32000,
                 "ports": [{"name": "http", "port": 80, "nodePort": 30090}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.20"}]}}
    })))
    .unwrap();
    m.upsert_endpoint_slice(&http_slice(
        "etp-local",
        "etp-local-1",
        vec![ready("10.244.1.20", NODE), ready("10.244.2.20", "node-2")],
    ));
    // eTP:Local NodePort with endpoints on other nodes only: external traffic dropped here.
    m.upsert_service(&service(json!({
        "metadata": {"namespace": "default", "name": "etp-remote"},
        "spec": {"type": "NodePort", "clusterIP": "10.96.0.21", "clusterIPs": ["10.96.0.21"],
                 "externalTrafficPolicy": "Local",
                 "ports": [{"name": "http", "port": 80, "nodePort": 30091}]}
    })))
    .unwrap();
    m.upsert_endpoint_slice(&http_slice(
        "etp-remote",
        "etp-remote-1",
        vec![ready("10.244.2.21", "node-2")],
    ));
    // iTP:Local with one local endpoint, and one with none here.
    for (name, ip, ep, node) in [
        ("itp-local", "10.96.0.22", "10.244.1.22", NODE),
        ("itp-remote", "10.96.0.23", "10.244.2.23", "node-2"),
    ] {
        m.upsert_service(&service(json!({
            "metadata": {"namespace": "default", "name": name},
            "spec": {"type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip], "internalTrafficPolicy": "Local",
                     "ports": [{"name": "http", "port": 80}]}
        })))
        .unwrap();
        m.upsert_endpoint_slice(&http_slice(
            name,
            &format!("{name}-1"),
            vec![ready(ep, node), ready("10.244.3.99", "node-3")],
        ));
    }
    let checks = m.health_checks();
    assert_eq!(checks.len(), 1);
    assert_eq!((checks[0].node_port, checks[0].local_endpoints), (32000, 1));
    check_golden("local-policies", &full(&m));
}

#[test]
fn terminating_fallback() {
    let mut m = model(Family::V4);
    m.upsert_service(&cluster_ip("web", "10.96.0.30")).unwrap();
    m.upsert_endpoint_slice(&http_slice(
        "web",
        "web-1",
        vec![
            endpoint("10.244.1.30", NODE, false, true, true),
            endpoint("10.244.2.30", "node-2", false, false, true),
            endpoint("10.244.3.30", "node-3", false, false, false),
        ],
    ));
    check_golden("terminating", &full(&m));
}

#[test]
fn udp_and_sctp() {
    let mut m = model(Family::V4);
    m.upsert_service(&service(json!({
        "metadata": {"namespace": "kube-system", "name": "kube-dns"},
        "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                 "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
                           {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
                           {"name": "sig", "port": 3868, "protocol": "SCTP"}]}
    })))
    .unwrap();
    m.upsert_endpoint_slice(&slice(json!({
        "metadata": {"namespace": "kube-system", "name": "kube-dns-1",
                     "labels": {"kubernetes.io/service-name": "kube-dns"}},
        "addressType": "IPv4",
        "endpoints": [ready("10.244.1.53", NODE), ready("10.244.2.53", "node-2")],
        "ports": [{"name": "dns", "port": 5353, "protocol": "UDP"},
                  {"name": "dns-tcp", "port": 5353, "protocol": "TCP"},
                  {"name": "sig", "port": 3868, "protocol": "SCTP"}]
    })));
    check_golden("udp-sctp", &full(&m));
}

#[test]
fn ipv6() {
    let mut m = model(Family::V6);
    m.upsert_service(&service(json!({
        "metadata": {"namespace": "default", "name": "web"},
        "spec": {"type": "NodePort", "clusterIP": "10.96.0.40", "clusterIPs": ["10.96.0.40", "fd00:10:96::40"],
                 "ipFamilies": ["IPv4", "IPv6"], "ipFamilyPolicy": "PreferDualStack",
                 "externalIPs": ["192.0.2.1", "2001:db8::1"],
                 "ports": [{"name": "http", "port": 80, "nodePort": 30040}]}
    })))
    .unwrap();
    m.upsert_endpoint_slice(&http_slice(
        "web",
        "web-v4",
        vec![ready("10.244.1.40", NODE)],
    ));
    m.upsert_endpoint_slice(&http_slice(
        "web",
        "web-v6",
        vec![
            ready("fd00:10:244:1::40", NODE),
            ready("fd00:10:244:2::40", "node-2"),
        ],
    ));
    check_golden("ipv6", &full(&m));
}

#[test]
fn session_affinity() {
    let mut m = model(Family::V4);
    m.upsert_service(&service(json!({
        "metadata": {"namespace": "default", "name": "sticky"},
        "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.50", "clusterIPs": ["10.96.0.50"],
                 "sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 600}},
                 "ports": [{"name": "http", "port": 80}]}
    })))
    .unwrap();
    m.upsert_endpoint_slice(&http_slice(
        "sticky",
        "sticky-1",
        vec![
            ready("10.244.1.50", NODE),
            ready("10.244.2.50", "node-2"),
            ready("10.244.3.50", "node-3"),
        ],
    ));
    check_golden("affinity", &full(&m));
}

#[test]
fn no_endpoints_reject() {
    let mut m = model(Family::V4);
    m.upsert_service(&service(json!({
        "metadata": {"namespace": "default", "name": "empty"},
        "spec": {"type": "NodePort", "clusterIP": "10.96.0.60", "clusterIPs": ["10.96.0.60"],
                 "ports": [{"name": "http", "port": 80, "nodePort": 30060}]}
    })))
    .unwrap();
    // A slice with only unready endpoints is no endpoint at all.
    m.upsert_endpoint_slice(&http_slice(
        "empty",
        "empty-1",
        vec![endpoint("10.244.1.60", NODE, false, false, false)],
    ));
    check_golden("no-endpoints", &full(&m));
}

#[test]
fn topology_hints() {
    let mut m = model(Family::V4);
    m.upsert_service(&cluster_ip("zonal", "10.96.0.70"))
        .unwrap();
    let hinted = |ip: &str, node: &str, zone: &str| {
        let mut e = ready(ip, node);
        e["zone"] = json!(zone);
        e["hints"] = json!({"forZones": [{"name": zone}]});
        e
    };
    m.upsert_endpoint_slice(&http_slice(
        "zonal",
        "zonal-1",
        vec![
            hinted("10.244.1.70", NODE, "zone-a"),
            hinted("10.244.2.70", "node-2", "zone-a"),
            hinted("10.244.3.70", "node-3", "zone-b"),
        ],
    ));
    check_golden("topology", &full(&m));
}

/// The transactions of a sequence of changes, starting from an empty table.
#[test]
fn incremental_transactions() {
    let mut m = model(Family::V4);
    let config = m.config().clone();
    // Starting from the cold-start table keeps the file loadable as a whole by `nft -c -f`.
    let mut text = format!("# cold start: the table without Services\n{}", full(&m));
    m.mark_synced();
    let step = |m: &mut ProxyModel, title: &str, text: &mut String| {
        let diff = m.take_diff();
        text.push_str(&format!("# {title}\n{}", transaction(&config, &diff)));
    };
    m.upsert_service(&cluster_ip("web", "10.96.0.10")).unwrap();
    step(&mut m, "service without endpoints", &mut text);
    m.upsert_endpoint_slice(&http_slice(
        "web",
        "web-1",
        vec![ready("10.244.1.5", NODE), ready("10.244.2.5", "node-2")],
    ));
    step(&mut m, "two endpoints", &mut text);
    m.upsert_endpoint_slice(&http_slice(
        "web",
        "web-1",
        vec![
            ready("10.244.1.5", NODE),
            ready("10.244.2.5", "node-2"),
            ready("10.244.3.5", "node-3"),
        ],
    ));
    step(&mut m, "third endpoint", &mut text);
    m.upsert_endpoint_slice(&http_slice(
        "web",
        "web-1",
        vec![ready("10.244.2.5", "node-2"), ready("10.244.3.5", "node-3")],
    ));
    step(
        &mut m,
        "first endpoint removed: the last slot moves into its place",
        &mut text,
    );
    m.upsert_service(&cluster_ip("api", "10.96.0.11")).unwrap();
    m.upsert_endpoint_slice(&http_slice(
        "api",
        "api-1",
        vec![ready("10.244.3.5", "node-3"), ready("10.244.3.6", "node-3")],
    ));
    step(
        &mut m,
        "a second service with two endpoints reuses the chain",
        &mut text,
    );
    m.delete_service("default", "web");
    step(&mut m, "first service deleted", &mut text);
    m.delete_endpoint_slice("default", "api-1");
    step(
        &mut m,
        "second service loses its slice: reject, chain deleted",
        &mut text,
    );
    check_golden("incremental", &text);
}

/// Every golden file loads in the kernel in check mode (nothing is changed). Runs when `nft` is installed and
/// usable (root); otherwise says so.
#[test]
fn golden_files_pass_nft_check() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let probe = Command::new("nft").args(["-c", "-f", "/dev/null"]).output();
    if !probe.as_ref().is_ok_and(|o| o.status.success()) {
        eprintln!("skipping: `nft -c` is not usable here ({probe:?})");
        return;
    }
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "nft") {
            let out = Command::new("nft")
                .arg("-c")
                .arg("-f")
                .arg(&path)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} golden files found");
}
