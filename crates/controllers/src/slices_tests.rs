use std::collections::BTreeMap;

use k8s_openapi::api::discovery::v1::{EndpointHints, EndpointSlice, ForNode, ForZone};

use super::*;
use crate::model::{NamedPort, PodInfo, TargetPort};
use crate::testutil::{pod, pods, svc};

fn nodes() -> NodeZones {
    NodeZones::from([
        ("node-a".to_string(), Some("zone-a".to_string())),
        ("node-b".to_string(), None),
    ])
}

fn refs(p: &[PodInfo]) -> Vec<&PodInfo> {
    p.iter().collect()
}

/// Applies a plan as the API server would (names for creates, new resourceVersions) and returns the
/// resulting slices.
fn apply(existing: &[EndpointSlice], plan: &SlicePlan, counter: &mut u32) -> Vec<EndpointSlice> {
    let mut by_name: BTreeMap<String, EndpointSlice> = existing
        .iter()
        .map(|s| (s.metadata.name.clone().unwrap(), s.clone()))
        .collect();
    for s in &plan.delete {
        by_name.remove(s.metadata.name.as_deref().unwrap());
    }
    for s in &plan.update {
        let name = s.metadata.name.clone().unwrap();
        assert!(
            by_name.contains_key(&name),
            "update of unknown slice {name}"
        );
        let mut s = s.clone();
        *counter += 1;
        s.metadata.resource_version = Some(counter.to_string());
        by_name.insert(name, s);
    }
    for s in &plan.create {
        let mut s = s.clone();
        *counter += 1;
        let name = format!("{}{counter:05}", s.metadata.generate_name.clone().unwrap());
        s.metadata.name = Some(name.clone());
        s.metadata.resource_version = Some(counter.to_string());
        by_name.insert(name, s);
    }
    by_name.into_values().collect()
}

fn converge(
    s: &ServiceInfo,
    p: &[PodInfo],
    existing: &[EndpointSlice],
    max: usize,
) -> (Vec<EndpointSlice>, SlicePlan) {
    let mut counter = 100;
    let plan = reconcile(s, &refs(p), &nodes(), existing, max);
    let after = apply(existing, &plan, &mut counter);
    (after, plan)
}

fn web() -> ServiceInfo {
    let mut s = svc("web");
    s.labels = BTreeMap::from([("team".to_string(), "a".to_string())]);
    s
}

#[test]
fn one_slice_with_upstream_metadata_and_endpoint_fields() {
    let s = web();
    let p = pods(3);
    let (after, plan) = converge(&s, &p, &[], 100);
    assert_eq!(
        (plan.create.len(), plan.update.len(), plan.delete.len()),
        (1, 0, 0)
    );
    let slice = &after[0];
    assert_eq!(slice.address_type, "IPv4");
    assert_eq!(slice.metadata.generate_name.as_deref(), Some("web-"));
    let labels = slice.metadata.labels.clone().unwrap();
    assert_eq!(
        labels.get(LABEL_SERVICE_NAME).map(String::as_str),
        Some("web")
    );
    assert_eq!(
        labels.get(LABEL_MANAGED_BY).map(String::as_str),
        Some(CONTROLLER_NAME)
    );
    assert_eq!(labels.get("team").map(String::as_str), Some("a"));
    assert!(!labels.contains_key(LABEL_HEADLESS));
    let owner = &slice.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (
            owner.api_version.as_str(),
            owner.kind.as_str(),
            owner.name.as_str(),
            owner.uid.as_str()
        ),
        ("v1", "Service", "web", "uid-web")
    );
    assert_eq!(
        (owner.controller, owner.block_owner_deletion),
        (Some(true), Some(true))
    );
    let port = &slice.ports.as_ref().unwrap()[0];
    assert_eq!(
        (port.name.as_deref(), port.port, port.protocol.as_deref()),
        (Some("http"), Some(8080), Some("TCP"))
    );
    assert_eq!(slice.endpoints.len(), 3);
    let ep = &slice.endpoints[0];
    assert_eq!(ep.addresses, vec!["10.0.0.1"]);
    let c = ep.conditions.clone().unwrap();
    assert_eq!(
        (c.ready, c.serving, c.terminating),
        (Some(true), Some(true), Some(false))
    );
    assert_eq!(ep.node_name.as_deref(), Some("node-a"));
    assert_eq!(ep.zone.as_deref(), Some("zone-a"));
    let tr = ep.target_ref.clone().unwrap();
    assert_eq!(
        (
            tr.kind.as_deref(),
            tr.namespace.as_deref(),
            tr.name.as_deref(),
            tr.uid.as_deref()
        ),
        (
            Some("Pod"),
            Some("default"),
            Some("web-0000"),
            Some("uid-web-0000")
        )
    );
    assert_eq!(ep.hostname, None);
    assert_eq!(ep.hints, None);
    assert_eq!(plan.endpoints_desired, 3);
}

#[test]
fn conditions_follow_readiness_termination_and_publish_not_ready() {
    let mut s = web();
    let unready = pod("u", &["10.0.0.1"], false);
    let mut term_ready = pod("t", &["10.0.0.2"], true);
    term_ready.terminating = true;
    let mut term_unready = pod("x", &["10.0.0.3"], false);
    term_unready.terminating = true;
    let all = vec![unready, term_ready, term_unready];
    let cond = |s: &ServiceInfo, name: &str| {
        let plan = reconcile(s, &refs(&all), &nodes(), &[], 100);
        let ep = plan.create[0]
            .endpoints
            .iter()
            .find(|e| e.target_ref.as_ref().unwrap().name.as_deref() == Some(name))
            .unwrap()
            .clone();
        let c = ep.conditions.unwrap();
        (c.ready.unwrap(), c.serving.unwrap(), c.terminating.unwrap())
    };
    assert_eq!(cond(&s, "u"), (false, false, false));
    assert_eq!(cond(&s, "t"), (false, true, true));
    assert_eq!(cond(&s, "x"), (false, false, true));
    s.publish_not_ready = true;
    assert_eq!(cond(&s, "u"), (true, false, false));
    assert_eq!(cond(&s, "t"), (true, true, true));
}

#[test]
fn terminal_pods_and_pods_without_ips_are_left_out() {
    let s = web();
    let mut done = pod("done", &["10.0.0.1"], true);
    done.terminal = true;
    let no_ip = pod("pending", &[], false);
    let ok = pod("ok", &["10.0.0.3"], true);
    let all = vec![done, no_ip, ok];
    let plan = reconcile(&s, &refs(&all), &nodes(), &[], 100);
    assert_eq!(plan.create.len(), 1);
    assert_eq!(plan.create[0].endpoints.len(), 1);
    assert_eq!(plan.create[0].endpoints[0].addresses, vec!["10.0.0.3"]);
}

#[test]
fn slices_hold_at_most_max_endpoints() {
    let s = web();
    let p = pods(250);
    let (after, plan) = converge(&s, &p, &[], 100);
    assert_eq!(plan.create.len(), 3);
    let mut sizes: Vec<usize> = after.iter().map(|s| s.endpoints.len()).collect();
    sizes.sort();
    assert_eq!(sizes, vec![50, 100, 100]);
    let (_, plan) = converge(&s, &p, &[], 7);
    assert_eq!(plan.create.len(), 36);
}

#[test]
fn dual_stack_gives_one_slice_per_family() {
    let mut s = web();
    s.ip_families = vec!["IPv6".into(), "IPv4".into()];
    let p = vec![
        pod("a", &["10.0.0.1", "fd00::1"], true),
        pod("b", &["10.0.0.2", "fd00::2"], true),
    ];
    let plan = reconcile(&s, &refs(&p), &nodes(), &[], 100);
    assert_eq!(plan.create.len(), 2);
    for slice in &plan.create {
        let want_v6 = slice.address_type == "IPv6";
        assert_eq!(slice.endpoints.len(), 2);
        for ep in &slice.endpoints {
            assert_eq!(ep.addresses.len(), 1);
            assert_eq!(ep.addresses[0].contains(':'), want_v6);
        }
    }
    // A single-stack Service drops the slices of the family it no longer has.
    let (after, _) = converge(&s, &p, &[], 100);
    s.ip_families = vec!["IPv4".into()];
    let plan = reconcile(&s, &refs(&p), &nodes(), &after, 100);
    assert_eq!(plan.delete.len(), 1);
    assert_eq!(plan.delete[0].address_type, "IPv6");
    assert_eq!(plan.writes(), 1);
}

#[test]
fn address_types_fall_back_to_cluster_ip_or_both_when_families_are_missing() {
    let mut s = web();
    s.ip_families.clear();
    assert_eq!(address_types(&s), vec![IPV4]);
    s.cluster_ip = "fd00::10".into();
    assert_eq!(address_types(&s), vec![IPV6]);
    s.cluster_ip = "None".into();
    assert_eq!(address_types(&s), vec![IPV4, IPV6]);
}

#[test]
fn named_target_port_resolves_per_pod_and_splits_slices() {
    let mut s = web();
    s.ports[0].target = TargetPort::Name("http".into());
    let a = pod("a", &["10.0.0.1"], true);
    let mut b = pod("b", &["10.0.0.2"], true);
    b.ports = vec![NamedPort {
        name: "http".into(),
        protocol: "TCP".into(),
        port: 9090,
    }];
    let mut c = pod("c", &["10.0.0.3"], true);
    c.ports.clear();
    let all = vec![a, b, c];
    let plan = reconcile(&s, &refs(&all), &nodes(), &[], 100);
    assert_eq!(plan.create.len(), 3);
    let mut seen: Vec<(Option<i32>, usize)> = plan
        .create
        .iter()
        .map(|sl| {
            (
                sl.ports.as_ref().unwrap().first().and_then(|p| p.port),
                sl.endpoints.len(),
            )
        })
        .collect();
    seen.sort();
    // The pod without the port still gets an endpoint, in a slice without that port (as upstream).
    assert_eq!(seen, vec![(None, 1), (Some(8080), 1), (Some(9090), 1)]);
    assert!(plan.unresolved_ports.is_empty());

    // The protocol must match too; and when no pod defines the name, it is reported.
    s.ports[0].target = TargetPort::Name("metrics".into());
    let plan = reconcile(&s, &refs(&all), &nodes(), &[], 100);
    assert_eq!(plan.unresolved_ports.len(), 1);
    assert!(plan.unresolved_ports[0].contains("\"metrics\""));
}

#[test]
fn hostname_only_when_subdomain_names_the_service() {
    let mut s = web();
    s.cluster_ip = "None".into();
    let mut a = pod("a", &["10.0.0.1"], true);
    a.hostname = "web-0".into();
    a.subdomain = "web".into();
    let mut b = pod("b", &["10.0.0.2"], true);
    b.hostname = "web-1".into();
    b.subdomain = "other".into();
    let all = vec![a, b];
    let plan = reconcile(&s, &refs(&all), &nodes(), &[], 100);
    let slice = &plan.create[0];
    let hosts: Vec<Option<String>> = slice.endpoints.iter().map(|e| e.hostname.clone()).collect();
    assert_eq!(hosts, vec![Some("web-0".to_string()), None]);
    let labels = slice.metadata.labels.clone().unwrap();
    assert_eq!(labels.get(LABEL_HEADLESS).map(String::as_str), Some(""));
}

#[test]
fn prefer_close_sets_zone_hints_on_ready_endpoints_only() {
    let mut s = web();
    s.traffic_distribution = Some("PreferClose".into());
    let a = pod("a", &["10.0.0.1"], true);
    let b = pod("b", &["10.0.0.2"], false);
    let mut c = pod("c", &["10.0.0.3"], true);
    c.node_name = "node-b".into(); // no zone label
    let all = vec![a, b, c];
    let (after, plan) = converge(&s, &all, &[], 100);
    let hints: Vec<Option<EndpointHints>> = plan.create[0]
        .endpoints
        .iter()
        .map(|e| e.hints.clone())
        .collect();
    assert_eq!(
        hints,
        vec![
            Some(EndpointHints {
                for_zones: Some(vec![ForZone {
                    name: "zone-a".into()
                }]),
                for_nodes: None
            }),
            None,
            None
        ]
    );
    // Stable: nothing to write again.
    assert_eq!(
        reconcile(&s, &refs(&all), &nodes(), &after, 100).writes(),
        0
    );
    // Dropping trafficDistribution removes the hints with one update.
    s.traffic_distribution = None;
    let plan = reconcile(&s, &refs(&all), &nodes(), &after, 100);
    assert_eq!((plan.update.len(), plan.writes()), (1, 1));
    assert!(plan.update[0].endpoints.iter().all(|e| e.hints.is_none()));
}

#[test]
fn prefer_same_zone_hints_as_prefer_close_and_prefer_same_node_adds_the_node() {
    let mut s = web();
    let a = pod("a", &["10.0.0.1"], true);
    let mut c = pod("c", &["10.0.0.3"], true);
    c.node_name = "node-b".into(); // no zone label
    let all = vec![a, c];
    let hints_of = |plan: &SlicePlan| -> Vec<Option<EndpointHints>> {
        plan.create[0]
            .endpoints
            .iter()
            .map(|e| e.hints.clone())
            .collect()
    };
    let zone_a = || {
        Some(vec![ForZone {
            name: "zone-a".into(),
        }])
    };

    s.traffic_distribution = Some("PreferSameZone".into());
    let (_, plan) = converge(&s, &all, &[], 100);
    let same_zone = EndpointHints {
        for_zones: zone_a(),
        for_nodes: None,
    };
    assert_eq!(hints_of(&plan), vec![Some(same_zone), None]);

    s.traffic_distribution = Some("PreferSameNode".into());
    let (after, plan) = converge(&s, &all, &[], 100);
    let node = |n: &str| Some(vec![ForNode { name: n.into() }]);
    assert_eq!(
        hints_of(&plan),
        vec![
            Some(EndpointHints {
                for_zones: zone_a(),
                for_nodes: node("node-a")
            }),
            Some(EndpointHints {
                for_zones: None,
                for_nodes: node("node-b")
            }),
        ]
    );
    assert_eq!(
        reconcile(&s, &refs(&all), &nodes(), &after, 100).writes(),
        0
    );
}

#[test]
fn converged_slices_need_no_writes_and_one_change_one_update() {
    let s = web();
    let mut p = pods(250);
    let (after, _) = converge(&s, &p, &[], 100);
    assert_eq!(reconcile(&s, &refs(&p), &nodes(), &after, 100).writes(), 0);

    p[120].ready = false;
    let plan = reconcile(&s, &refs(&p), &nodes(), &after, 100);
    assert_eq!((plan.update.len(), plan.writes()), (1, 1));
    let (after, _) = converge(&s, &p, &after, 100);

    // A pod's resourceVersion in targetRef does not count as a change.
    let mut with_rv = after.clone();
    with_rv[0].endpoints[0]
        .target_ref
        .as_mut()
        .unwrap()
        .resource_version = Some("77".into());
    assert_eq!(
        reconcile(&s, &refs(&p), &nodes(), &with_rv, 100).writes(),
        0
    );
}

#[test]
fn service_label_change_updates_slices_in_place() {
    let mut s = web();
    let p = pods(3);
    let (after, _) = converge(&s, &p, &[], 100);
    s.labels.insert("tier".into(), "frontend".into());
    let plan = reconcile(&s, &refs(&p), &nodes(), &after, 100);
    assert_eq!((plan.update.len(), plan.writes()), (1, 1));
    let labels = plan.update[0].metadata.labels.clone().unwrap();
    assert_eq!(labels.get("tier").map(String::as_str), Some("frontend"));
    assert_eq!(
        labels.get(LABEL_SERVICE_NAME).map(String::as_str),
        Some("web")
    );
}

#[test]
fn new_endpoints_fill_the_unchanged_slice_closest_to_full() {
    let s = web();
    let p = pods(195);
    let (after, _) = converge(&s, &p, &[], 100);
    let more = pods(198);
    let plan = reconcile(&s, &refs(&more), &nodes(), &after, 100);
    assert_eq!(
        (plan.create.len(), plan.update.len(), plan.delete.len()),
        (0, 1, 0)
    );
    assert_eq!(plan.update[0].endpoints.len(), 98);
}

#[test]
fn emptied_slices_are_reused_rather_than_deleted_and_created() {
    let s = web();
    let p = pods(5);
    let (after, _) = converge(&s, &p, &[], 100);
    // All pods replaced by new ones: the old slice is rewritten, not deleted + created.
    let replaced: Vec<PodInfo> = (0..5)
        .map(|i| {
            pod(
                &format!("new-{i}"),
                &[format!("10.1.0.{}", i + 1).as_str()],
                true,
            )
        })
        .collect();
    let plan = reconcile(&s, &refs(&replaced), &nodes(), &after, 100);
    assert_eq!(
        (plan.create.len(), plan.update.len(), plan.delete.len()),
        (0, 1, 0)
    );
    assert_eq!(plan.update[0].metadata.name, after[0].metadata.name);
}

#[test]
fn no_pods_means_one_placeholder_slice_kept_as_is() {
    let s = web();
    let (after, plan) = converge(&s, &[], &[], 100);
    assert_eq!(plan.create.len(), 1);
    assert!(after[0].endpoints.is_empty());
    assert!(after[0].ports.as_ref().is_none_or(Vec::is_empty));
    assert_eq!(reconcile(&s, &[], &nodes(), &after, 100).writes(), 0);
    // Pods arriving turn the placeholder into a real slice.
    let p = pods(2);
    let plan = reconcile(&s, &refs(&p), &nodes(), &after, 100);
    assert_eq!(
        (plan.create.len(), plan.update.len(), plan.delete.len()),
        (0, 1, 0)
    );
    // And when they go, the last slice becomes the placeholder again (an update, not delete + create).
    let (after, _) = converge(&s, &p, &after, 100);
    let plan = reconcile(&s, &[], &nodes(), &after, 100);
    assert_eq!(
        (plan.create.len(), plan.update.len(), plan.delete.len()),
        (0, 1, 0)
    );
    assert!(plan.update[0].endpoints.is_empty());
}

#[test]
fn slices_of_another_service_with_the_same_name_are_deleted() {
    let s = web();
    let p = pods(2);
    let (mut after, _) = converge(&s, &p, &[], 100);
    after[0].metadata.owner_references.as_mut().unwrap()[0].uid = "old-uid".into();
    let plan = reconcile(&s, &refs(&p), &nodes(), &after, 100);
    assert_eq!((plan.create.len(), plan.delete.len()), (1, 1));
}

#[test]
fn pods_on_missing_nodes_are_skipped_unless_not_ready_addresses_are_published() {
    let mut s = web();
    let mut p = pods(2);
    p[1].node_name = "gone".into();
    let plan = reconcile(&s, &refs(&p), &nodes(), &[], 100);
    assert_eq!(plan.create[0].endpoints.len(), 1);
    assert_eq!(plan.missing_nodes.len(), 1);
    s.publish_not_ready = true;
    let plan = reconcile(&s, &refs(&p), &nodes(), &[], 100);
    assert_eq!(plan.create[0].endpoints.len(), 2);
    assert!(plan.missing_nodes.is_empty());
}

#[test]
fn a_service_being_deleted_gets_no_new_slices() {
    let mut s = web();
    s.deleting = true;
    let plan = reconcile(&s, &refs(&pods(2)), &nodes(), &[], 100);
    assert!(plan.create.is_empty());
}

#[test]
fn headless_service_without_ports_publishes_addresses_without_ports() {
    let mut s = web();
    s.cluster_ip = "None".into();
    s.ports.clear();
    let plan = reconcile(&s, &refs(&pods(2)), &nodes(), &[], 100);
    assert_eq!(plan.create.len(), 1);
    assert!(plan.create[0].ports.as_ref().unwrap().is_empty());
    assert_eq!(plan.create[0].endpoints.len(), 2);
}

#[test]
fn slice_prefix_drops_the_dash_only_when_too_long() {
    assert_eq!(slice_prefix("web"), "web-");
    let long = "a".repeat(253);
    assert_eq!(slice_prefix(&long), long);
}
