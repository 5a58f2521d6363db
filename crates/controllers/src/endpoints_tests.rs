use k8s_openapi::api::core::v1::{EndpointAddress, EndpointSubset};

use super::*;
use crate::model::{NamedPort, PodInfo, TargetPort};
use crate::testutil::{pod, pods, svc};

fn refs(p: &[PodInfo]) -> Vec<&PodInfo> {
    p.iter().collect()
}

fn ips(list: &Option<Vec<EndpointAddress>>) -> Vec<String> {
    list.iter().flatten().map(|a| a.ip.clone()).collect()
}

#[test]
fn ready_and_not_ready_addresses_share_one_subset_per_port_set() {
    let s = svc("web");
    let p = vec![
        pod("a", &["10.0.0.2"], true),
        pod("b", &["10.0.0.1"], false),
    ];
    let ep = plan(&s, &refs(&p), None).unwrap();
    let subsets = ep.subsets.clone().unwrap();
    assert_eq!(subsets.len(), 1);
    assert_eq!(ips(&subsets[0].addresses), vec!["10.0.0.2"]);
    assert_eq!(ips(&subsets[0].not_ready_addresses), vec!["10.0.0.1"]);
    let port = &subsets[0].ports.as_ref().unwrap()[0];
    assert_eq!((port.name.as_deref(), port.port), (Some("http"), 8080));
    let a = &subsets[0].addresses.as_ref().unwrap()[0];
    assert_eq!(a.node_name.as_deref(), Some("node-a"));
    assert_eq!(a.target_ref.as_ref().unwrap().name.as_deref(), Some("a"));
    assert_eq!(ep.metadata.name.as_deref(), Some("web"));
    assert!(ep.metadata.annotations.is_none());
    // Written once, it is right: no second write.
    assert!(plan(&s, &refs(&p), Some(&ep)).is_none());
}

#[test]
fn pods_resolving_a_port_name_differently_get_separate_subsets() {
    let mut s = svc("web");
    s.ports[0].target = TargetPort::Name("http".into());
    let a = pod("a", &["10.0.0.1"], true);
    let mut b = pod("b", &["10.0.0.2"], true);
    b.ports = vec![NamedPort {
        name: "http".into(),
        protocol: "TCP".into(),
        port: 9090,
    }];
    let all = vec![a, b];
    let ep = plan(&s, &refs(&all), None).unwrap();
    assert_eq!(ep.subsets.unwrap().len(), 2);
}

#[test]
fn terminating_pods_only_with_publish_not_ready_addresses() {
    let mut s = svc("web");
    let mut t = pod("t", &["10.0.0.1"], true);
    t.terminating = true;
    let all = vec![t];
    assert!(plan(&s, &refs(&all), None).unwrap().subsets.is_none());
    s.publish_not_ready = true;
    let ep = plan(&s, &refs(&all), None).unwrap();
    assert_eq!(ips(&ep.subsets.unwrap()[0].addresses), vec!["10.0.0.1"]);
}

#[test]
fn headless_without_ports_lists_addresses_and_hostnames() {
    let mut s = svc("web");
    s.cluster_ip = "None".into();
    s.ports.clear();
    let mut a = pod("a", &["10.0.0.1"], true);
    a.hostname = "a".into();
    a.subdomain = "web".into();
    let all = vec![a];
    let ep = plan(&s, &refs(&all), None).unwrap();
    let sub = &ep.subsets.clone().unwrap()[0];
    assert!(sub.ports.is_none());
    assert_eq!(
        sub.addresses.as_ref().unwrap()[0].hostname.as_deref(),
        Some("a")
    );
    assert_eq!(
        ep.metadata
            .labels
            .unwrap()
            .get(crate::slices::LABEL_HEADLESS)
            .map(String::as_str),
        Some("")
    );
}

#[test]
fn primary_family_address_only() {
    let mut s = svc("web");
    s.ip_families = vec!["IPv6".into(), "IPv4".into()];
    let all = vec![pod("a", &["10.0.0.1", "fd00::1"], true)];
    let ep = plan(&s, &refs(&all), None).unwrap();
    assert_eq!(ips(&ep.subsets.unwrap()[0].addresses), vec!["fd00::1"]);
}

#[test]
fn over_capacity_is_truncated_and_annotated_then_stable() {
    let s = svc("web");
    let mut p = pods(1200);
    for x in p.iter_mut().skip(1100) {
        x.ready = false;
    }
    let ep = plan(&s, &refs(&p), None).unwrap();
    let subsets = ep.subsets.clone().unwrap();
    let ready: usize = subsets.iter().map(|s| ips(&s.addresses).len()).sum();
    let not_ready: usize = subsets
        .iter()
        .map(|s| ips(&s.not_ready_addresses).len())
        .sum();
    assert_eq!((ready, not_ready), (1000, 0));
    assert_eq!(
        ep.metadata
            .annotations
            .clone()
            .unwrap()
            .get(ANNOTATION_OVER_CAPACITY)
            .map(String::as_str),
        Some("truncated")
    );
    assert!(plan(&s, &refs(&p), Some(&ep)).is_none());
    // Back under capacity: the annotation goes.
    let fewer = &p[..900];
    let ep2 = plan(&s, &refs(fewer), Some(&ep)).unwrap();
    assert!(ep2.metadata.annotations.is_none());
}

#[test]
fn truncation_keeps_ready_and_cuts_not_ready_first() {
    let s = svc("web");
    let mut p = pods(1100);
    for x in p.iter_mut().skip(900) {
        x.ready = false;
    }
    let ep = plan(&s, &refs(&p), None).unwrap();
    let subsets = ep.subsets.unwrap();
    let ready: usize = subsets.iter().map(|s| ips(&s.addresses).len()).sum();
    let not_ready: usize = subsets
        .iter()
        .map(|s| ips(&s.not_ready_addresses).len())
        .sum();
    assert_eq!((ready, not_ready), (900, 100));
}

#[test]
fn equal_content_in_another_layout_needs_no_write_but_labels_do() {
    let mut s = svc("web");
    let p = vec![pod("a", &["10.0.0.1"], true), pod("b", &["10.0.0.2"], true)];
    let mut ep = plan(&s, &refs(&p), None).unwrap();
    // The same addresses split over two subsets, in another order, with pod resourceVersions.
    let sub = ep.subsets.clone().unwrap()[0].clone();
    let mut addrs = sub.addresses.clone().unwrap();
    addrs.reverse();
    addrs[0].target_ref.as_mut().unwrap().resource_version = Some("9".into());
    ep.subsets = Some(
        addrs
            .into_iter()
            .map(|a| EndpointSubset {
                addresses: Some(vec![a]),
                not_ready_addresses: None,
                ports: sub.ports.clone(),
            })
            .collect(),
    );
    assert!(plan(&s, &refs(&p), Some(&ep)).is_none());
    s.labels.insert("team".into(), "a".into());
    let ep2 = plan(&s, &refs(&p), Some(&ep)).unwrap();
    assert_eq!(
        ep2.metadata.labels.unwrap().get("team").map(String::as_str),
        Some("a")
    );
}
