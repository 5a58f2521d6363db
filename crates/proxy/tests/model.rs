//! Behaviour of the incremental model: what a change puts in the diff.

mod common;

use common::*;
use proxy::render::{ruleset, Mode};
use proxy::shape::{Element, Key, SetName, Value};
use proxy::{Family, Frontend, Op, Protocol};
use serde_json::json;

fn frontend(ip: &str, protocol: Protocol, port: u16) -> Frontend {
    Frontend {
        ip: ip.parse().unwrap(),
        protocol,
        port,
    }
}

#[test]
fn unchanged_objects_produce_empty_diffs() {
    let mut m = model(Family::V4);
    m.upsert_service(&cluster_ip("web", "10.96.0.10")).unwrap();
    m.upsert_endpoint_slice(&http_slice(
        "web",
        "web-1",
        vec![ready("10.244.2.5", "node-2")],
    ));
    assert!(!m.take_diff().is_empty());
    m.upsert_service(&cluster_ip("web", "10.96.0.10")).unwrap();
    m.upsert_endpoint_slice(&http_slice(
        "web",
        "web-1",
        vec![ready("10.244.2.5", "node-2")],
    ));
    m.set_node(&node(&["192.168.1.10", "fd00:1::10"], Some("zone-a")));
    assert!(m.take_diff().is_empty());
}

#[test]
fn one_endpoint_among_many_services_is_a_handful_of_ops() {
    let mut m = model(Family::V4);
    for i in 0..500u32 {
        let name = format!("svc-{i}");
        m.upsert_service(&cluster_ip(
            &name,
            &format!("10.96.{}.{}", i / 250, i % 250 + 1),
        ))
        .unwrap();
        let eps = (0..10)
            .map(|e| ready(&format!("10.245.{}.{}", i % 250, e + 1), "node-2"))
            .collect();
        m.upsert_endpoint_slice(&http_slice(&name, &format!("{name}-1"), eps));
    }
    m.take_diff();
    let eps = (0..11)
        .map(|e| ready(&format!("10.245.7.{}", e + 1), "node-2"))
        .collect();
    m.upsert_endpoint_slice(&http_slice("svc-7", "svc-7-1", eps));
    let diff = m.take_diff();
    // New chain (11 endpoints), verdict replaced (delete + add), one slot added.
    assert_eq!(diff.ops.len(), 4, "{:#?}", diff.ops);
    assert!(matches!(diff.ops[0], Op::AddChain(c) if c.endpoints == 11));
    assert_eq!(diff.frontends.len(), 1);
}

#[test]
fn udp_endpoint_removal_asks_for_conntrack_cleanup() {
    let mut m = model(Family::V4);
    m.upsert_service(&service(json!({
        "metadata": {"namespace": "default", "name": "dns"},
        "spec": {"clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"], "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]}
    })))
    .unwrap();
    let dns_slice = |ips: &[&str]| {
        slice(json!({
            "metadata": {"namespace": "default", "name": "dns-1", "labels": {"kubernetes.io/service-name": "dns"}},
            "addressType": "IPv4",
            "endpoints": ips.iter().map(|ip| ready(ip, "node-2")).collect::<Vec<_>>(),
            "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]
        }))
    };
    let diff = m.take_diff();
    assert_eq!(diff.frontends.len(), 1);
    assert!(
        !diff.frontends[0].needs_udp_conntrack_cleanup(),
        "no endpoints before nor after"
    );

    m.upsert_endpoint_slice(&dns_slice(&["10.244.2.1", "10.244.2.2"]));
    let diff = m.take_diff();
    assert!(
        diff.frontends[0].needs_udp_conntrack_cleanup(),
        "first endpoints after rejecting"
    );

    m.upsert_endpoint_slice(&dns_slice(&["10.244.2.2"]));
    let diff = m.take_diff();
    let change = &diff.frontends[0];
    assert_eq!(change.frontend, frontend("10.96.0.10", Protocol::Udp, 53));
    assert_eq!(
        change.removed_endpoints(),
        vec!["10.244.2.1:53".parse().unwrap()]
    );
    assert!(change.needs_udp_conntrack_cleanup());
}

#[test]
fn node_addresses_move_nodeports() {
    let mut m = model(Family::V4);
    m.upsert_service(&service(json!({
        "metadata": {"namespace": "default", "name": "np"},
        "spec": {"type": "NodePort", "clusterIP": "10.96.0.5", "clusterIPs": ["10.96.0.5"],
                 "ports": [{"name": "http", "port": 80, "nodePort": 30005}]}
    })))
    .unwrap();
    m.upsert_endpoint_slice(&http_slice(
        "np",
        "np-1",
        vec![ready("10.244.2.5", "node-2")],
    ));
    m.take_diff();
    m.set_node(&node(&["192.168.1.20"], Some("zone-a")));
    let diff = m.take_diff();
    let old = Element {
        set: SetName::ServiceIps,
        key: Key::Frontend(frontend("192.168.1.10", Protocol::Tcp, 30005)),
    };
    assert!(diff.ops.contains(&Op::DeleteElement(old)));
    assert!(diff.ops.iter().any(|op| matches!(op,
        Op::AddElement(Element { set: SetName::ServiceIps, key: Key::Frontend(f) }, Value::Verdict(_))
            if *f == frontend("192.168.1.20", Protocol::Tcp, 30005))));
}

#[test]
fn conflicting_external_ip_goes_to_one_service_whatever_the_order() {
    let with_external = |name: &str, cluster: &str| {
        service(json!({
            "metadata": {"namespace": "default", "name": name},
            "spec": {"clusterIP": cluster, "clusterIPs": [cluster], "externalIPs": ["198.51.100.1"],
                     "ports": [{"name": "http", "port": 80}]}
        }))
    };
    let build = |order: &[&str]| {
        let mut m = model(Family::V4);
        for name in order {
            let cluster = if *name == "a" {
                "10.96.0.1"
            } else {
                "10.96.0.2"
            };
            m.upsert_service(&with_external(name, cluster)).unwrap();
            m.upsert_endpoint_slice(&http_slice(
                name,
                &format!("{name}-1"),
                vec![ready(&format!("10.244.2.{}", cluster.len()), "node-2")],
            ));
        }
        ruleset(&m, Mode::Dump)
    };
    assert_eq!(build(&["a", "b"]), build(&["b", "a"]));
}

#[test]
fn deleting_everything_leaves_an_empty_table() {
    let mut m = model(Family::V4);
    m.upsert_service(&cluster_ip("web", "10.96.0.10")).unwrap();
    m.upsert_endpoint_slice(&http_slice("web", "web-1", vec![ready("10.244.1.5", NODE)]));
    m.take_diff();
    m.delete_endpoint_slice("default", "web-1");
    m.delete_service("default", "web");
    let diff = m.take_diff();
    assert!(diff
        .ops
        .iter()
        .all(|op| matches!(op, Op::DeleteElement(_) | Op::DeleteChain(_))));
    assert!(m.elements().is_empty() && m.pick_chains().is_empty());
    assert_eq!(m.stats().chains, 0);
}

#[test]
fn unreadable_cluster_ip_is_reported_and_left_out() {
    let mut m = model(Family::V4);
    let err = m
        .upsert_service(&cluster_ip("bad", "10.96.0.300"))
        .unwrap_err();
    assert!(err.to_string().contains("default/bad"), "{err}");
    assert!(m.elements().is_empty());
}

/// The health checks follow each Service's policy and lifetime (the agent reads them after every sync, from
/// an index rather than a walk over every Service).
#[test]
fn health_checks_follow_policy_changes_and_deletion() {
    let lb = |name: &str, ip: &str, policy: &str, port: u16| {
        service(json!({
            "metadata": {"namespace": "default", "name": name},
            "spec": {"type": "LoadBalancer", "clusterIP": ip, "clusterIPs": [ip],
                     "externalTrafficPolicy": policy, "healthCheckNodePort": port,
                     "ports": [{"name": "http", "port": 80, "nodePort": port - 1000}]},
        }))
    };
    let mut m = model(Family::V4);
    m.upsert_service(&lb("b", "10.96.0.41", "Local", 32001))
        .unwrap();
    m.upsert_service(&lb("a", "10.96.0.40", "Local", 32000))
        .unwrap();
    m.upsert_endpoint_slice(&http_slice("a", "a-1", vec![ready("10.244.1.40", NODE)]));
    let checks = m.health_checks();
    let seen: Vec<(&str, u16, usize)> = checks
        .iter()
        .map(|c| (c.service.name.as_str(), c.node_port, c.local_endpoints))
        .collect();
    assert_eq!(seen, [("a", 32000, 1), ("b", 32001, 0)]);
    // Cluster policy has no health check; deletion removes it too.
    m.upsert_service(&lb("a", "10.96.0.40", "Cluster", 32000))
        .unwrap();
    m.delete_service("default", "b");
    assert!(m.health_checks().is_empty());
    m.upsert_service(&lb("b", "10.96.0.41", "Local", 32001))
        .unwrap();
    assert_eq!(m.health_checks().len(), 1);
}

#[test]
fn a_loopback_endpoint_gets_no_hairpin_entry() {
    // `svcplane up` publishes the API server's 127.0.0.1 as the `kubernetes` Service's endpoint: a hairpin
    // entry for it would masquerade (and so drop) every new loopback connection of the node.
    let mut m = model(Family::V4);
    m.upsert_service(&cluster_ip("kubernetes", "10.96.0.1"))
        .unwrap();
    m.upsert_endpoint_slice(&http_slice(
        "kubernetes",
        "kubernetes",
        vec![ready("127.0.0.1", "node-1"), ready("10.244.1.5", "node-1")],
    ));
    let hairpin: Vec<Key> = m
        .take_diff()
        .ops
        .iter()
        .filter_map(|op| match op {
            Op::AddElement(e, _) if e.set == SetName::Hairpin => Some(e.key),
            _ => None,
        })
        .collect();
    assert_eq!(hairpin, [Key::Hairpin("10.244.1.5".parse().unwrap())]);
    // The loopback endpoint is still an endpoint (DNAT to it works for the node's own connections).
    let text = ruleset(&m, Mode::Replace);
    assert!(text.contains("127.0.0.1 . 80"), "{text}");
}
