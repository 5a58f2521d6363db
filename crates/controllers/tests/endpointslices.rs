//! The EndpointSlice controller against svcplane's real API server: slices and Endpoints follow pods and
//! Services through their whole lives.

mod common;

use std::collections::BTreeMap;

use common::*;
use controllers::set_pod_ready;
use k8s_openapi::api::core::v1::{Event, Pod, Service};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::Api;
use serde_json::json;

fn web_service() -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "labels": {"team": "a"}},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slices_follow_a_pod_through_its_life() {
    let env = env().await;
    let c = &env.client;
    node(c, "node-a", Some("zone-a")).await;
    service(c, web_service()).await;
    let ctl = start(c, opts());

    // No pods yet: one placeholder slice, and an empty Endpoints.
    let placeholder = eventually("placeholder slice", 20, || async {
        let s = slices(c, "web").await;
        (s.len() == 1).then(|| s[0].clone())
    })
    .await;
    assert!(placeholder.endpoints.is_empty());
    let labels = placeholder.metadata.labels.clone().unwrap();
    assert_eq!(
        labels["endpointslice.kubernetes.io/managed-by"],
        "endpointslice-controller.k8s.io"
    );
    assert_eq!(labels["team"], "a");
    assert!(placeholder.metadata.name.unwrap().starts_with("web-"));
    eventually("Endpoints object", 20, || async {
        endpoints(c, "web").await
    })
    .await;

    pod(
        c,
        "web-1",
        json!({"app": "web"}),
        "node-a",
        &[("http", 8080)],
    )
    .await;
    set_pod_ready(c, "default", "web-1", false, Some("10.244.0.5"))
        .await
        .unwrap();
    eventually("unready endpoint", 20, || async {
        (endpoint_states(c, "web").await == vec![("10.244.0.5".into(), false, false, false)])
            .then_some(())
    })
    .await;

    set_pod_ready(c, "default", "web-1", true, None)
        .await
        .unwrap();
    eventually("ready endpoint", 20, || async {
        (endpoint_states(c, "web").await == vec![("10.244.0.5".into(), true, true, false)])
            .then_some(())
    })
    .await;
    let s = &slices(c, "web").await[0];
    let ep = &s.endpoints[0];
    assert_eq!(ep.node_name.as_deref(), Some("node-a"));
    assert_eq!(ep.zone.as_deref(), Some("zone-a"));
    assert_eq!(
        ep.target_ref.as_ref().unwrap().name.as_deref(),
        Some("web-1")
    );
    assert_eq!(s.ports.as_ref().unwrap()[0].port, Some(8080));
    let eps = eventually("ready address in Endpoints", 20, || async {
        let e = endpoints(c, "web").await?;
        let sub = e.subsets.clone()?.first()?.clone();
        (sub.addresses.as_ref()?.first()?.ip == "10.244.0.5").then_some(e)
    })
    .await;
    assert_eq!(eps.metadata.labels.unwrap()["team"], "a");

    set_pod_ready(c, "default", "web-1", false, None)
        .await
        .unwrap();
    eventually("unready again", 20, || async {
        (endpoint_states(c, "web").await == vec![("10.244.0.5".into(), false, false, false)])
            .then_some(())
    })
    .await;
    eventually("not-ready address in Endpoints", 20, || async {
        let e = endpoints(c, "web").await?;
        let sub = e.subsets?.first()?.clone();
        (sub.not_ready_addresses?.first()?.ip == "10.244.0.5" && sub.addresses.is_none())
            .then_some(())
    })
    .await;

    // Ready, then deleted with a grace period: terminating (serving but not ready) until it is gone.
    set_pod_ready(c, "default", "web-1", true, None)
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    pods.delete(
        "web-1",
        &DeleteParams {
            grace_period_seconds: Some(30),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    eventually("terminating endpoint", 20, || async {
        (endpoint_states(c, "web").await == vec![("10.244.0.5".into(), false, true, true)])
            .then_some(())
    })
    .await;
    pods.delete(
        "web-1",
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    eventually("endpoint removed", 20, || async {
        let s = slices(c, "web").await;
        (s.len() == 1 && s[0].endpoints.is_empty()).then_some(())
    })
    .await;
    eventually("Endpoints emptied", 20, || async {
        endpoints(c, "web").await?.subsets.is_none().then_some(())
    })
    .await;
    ctl.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_a_hundred_pods_split_across_slices_and_rejoin() {
    let env = env().await;
    let c = &env.client;
    node(c, "node-a", None).await;
    service(c, web_service()).await;
    let ctl = start(c, opts());
    for i in 0..230 {
        let name = format!("web-{i}");
        pod(c, &name, json!({"app": "web"}), "node-a", &[]).await;
        let ip = format!("10.244.{}.{}", i / 200, i % 200 + 1);
        set_pod_ready(c, "default", &name, true, Some(&ip))
            .await
            .unwrap();
    }
    let sizes = eventually("230 endpoints", 60, || async {
        let s = slices(c, "web").await;
        let mut sizes: Vec<usize> = s.iter().map(|s| s.endpoints.len()).collect();
        sizes.sort();
        (sizes.iter().sum::<usize>() == 230).then_some(sizes)
    })
    .await;
    // At most 100 per slice. The exact packing depends on how pod events batch into syncs: like upstream's
    // reconciler, a batch that does not fit the room left in an unchanged slice goes to a new slice, so
    // [30, 100, 100] is the usual outcome but [31, 99, 100] is as correct.
    assert!(sizes.iter().all(|n| (1..=100).contains(n)), "{sizes:?}");
    assert!(sizes.len() >= 3, "{sizes:?}");

    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    for i in 0..150 {
        pods.delete(
            &format!("web-{i}"),
            &DeleteParams {
                grace_period_seconds: Some(0),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    }
    let s = eventually("80 endpoints left", 60, || async {
        let s = slices(c, "web").await;
        (s.iter().map(|s| s.endpoints.len()).sum::<usize>() == 80).then_some(s)
    })
    .await;
    assert!(s
        .iter()
        .all(|s| !s.endpoints.is_empty() && s.endpoints.len() <= 100));
    ctl.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_target_port_resolves_per_pod_and_warns_when_undefined() {
    let env = env().await;
    let c = &env.client;
    node(c, "node-a", None).await;
    service(
        c,
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
        }),
    )
    .await;
    let ctl = start(c, opts());
    pod(c, "a", json!({"app": "web"}), "node-a", &[("http", 8080)]).await;
    pod(c, "b", json!({"app": "web"}), "node-a", &[("http", 9090)]).await;
    set_pod_ready(c, "default", "a", true, Some("10.244.0.1"))
        .await
        .unwrap();
    set_pod_ready(c, "default", "b", true, Some("10.244.0.2"))
        .await
        .unwrap();
    let ports = eventually("one slice per port number", 20, || async {
        let s = slices(c, "web").await;
        let mut ports: Vec<(i32, String)> = s
            .iter()
            .filter(|s| !s.endpoints.is_empty())
            .map(|s| {
                (
                    s.ports.as_ref().unwrap()[0].port.unwrap(),
                    s.endpoints[0].addresses[0].clone(),
                )
            })
            .collect();
        ports.sort();
        (ports.len() == 2).then_some(ports)
    })
    .await;
    assert_eq!(
        ports,
        vec![(8080, "10.244.0.1".into()), (9090, "10.244.0.2".into())]
    );

    // A port name no pod defines: an event on the Service.
    let svcs: Api<Service> = Api::namespaced(c.clone(), "default");
    svcs.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(
            json!({"spec": {"ports": [{"name": "http", "port": 80, "targetPort": "metrics"}]}}),
        ),
    )
    .await
    .unwrap();
    let events: Api<Event> = Api::namespaced(c.clone(), "default");
    let ev = eventually("warning event", 20, || async {
        events
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("FailedToResolveTargetPort"))
    })
    .await;
    assert_eq!(ev.involved_object.name.as_deref(), Some("web"));
    assert_eq!(ev.type_.as_deref(), Some("Warning"));
    ctl.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_service_publishes_pod_hostnames() {
    let env = env().await;
    let c = &env.client;
    node(c, "node-a", None).await;
    service(
        c,
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "db"},
            "spec": {"clusterIP": "None", "selector": {"app": "db"}, "ports": [{"name": "pg", "port": 5432}]},
        }),
    )
    .await;
    let ctl = start(c, opts());
    for (name, sub) in [("db-0", "db"), ("db-1", "other")] {
        create::<Pod>(
            c,
            None,
            json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "labels": {"app": "db"}},
                "spec": {"hostname": name, "subdomain": sub, "nodeName": "node-a",
                         "containers": [{"name": "pg", "image": "postgres"}]},
            }),
        )
        .await;
    }
    set_pod_ready(c, "default", "db-0", true, Some("10.244.1.1"))
        .await
        .unwrap();
    set_pod_ready(c, "default", "db-1", true, Some("10.244.1.2"))
        .await
        .unwrap();
    let hosts = eventually("hostnames", 20, || async {
        let s = slices(c, "db").await;
        let mut h: Vec<(String, Option<String>)> = s
            .iter()
            .flat_map(|s| s.endpoints.iter())
            .map(|e| (e.addresses[0].clone(), e.hostname.clone()))
            .collect();
        h.sort();
        (h.len() == 2).then_some(h)
    })
    .await;
    assert_eq!(
        hosts,
        vec![
            ("10.244.1.1".into(), Some("db-0".into())),
            ("10.244.1.2".into(), None)
        ]
    );
    let s = &slices(c, "db").await[0];
    assert_eq!(
        s.metadata.labels.as_ref().unwrap()["service.kubernetes.io/headless"],
        ""
    );
    ctl.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dual_stack_pods_give_one_slice_per_family() {
    let env = env_with(|cfg| {
        cfg.service_cluster_ip_range = vec![
            "10.96.0.0/16".parse().unwrap(),
            "fd00:10:96::/112".parse().unwrap(),
        ];
    })
    .await;
    let c = &env.client;
    node(c, "node-a", None).await;
    service(
        c,
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web"},
            "spec": {"ipFamilyPolicy": "RequireDualStack", "selector": {"app": "web"},
                     "ports": [{"port": 80, "targetPort": 8080}]},
        }),
    )
    .await;
    let ctl = start(c, opts());
    pod(c, "a", json!({"app": "web"}), "node-a", &[]).await;
    set_pod_ready(c, "default", "a", true, Some("10.244.0.1,fd00:244::1"))
        .await
        .unwrap();
    let by_family = eventually("two families", 20, || async {
        let s = slices(c, "web").await;
        let mut f: Vec<(String, Vec<String>)> = s
            .iter()
            .map(|s| {
                (
                    s.address_type.clone(),
                    s.endpoints
                        .iter()
                        .flat_map(|e| e.addresses.clone())
                        .collect(),
                )
            })
            .collect();
        f.sort();
        (f.len() == 2 && f.iter().all(|(_, a)| a.len() == 1)).then_some(f)
    })
    .await;
    assert_eq!(
        by_family,
        vec![
            ("IPv4".into(), vec!["10.244.0.1".into()]),
            ("IPv6".into(), vec!["fd00:244::1".into()])
        ]
    );
    ctl.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selector_change_moves_endpoints_and_deletion_removes_everything() {
    let env = env().await;
    let c = &env.client;
    node(c, "node-a", None).await;
    service(c, web_service()).await;
    let ctl = start(c, opts());
    pod(
        c,
        "blue",
        json!({"app": "web", "color": "blue"}),
        "node-a",
        &[],
    )
    .await;
    pod(
        c,
        "green",
        json!({"app": "canary", "color": "green"}),
        "node-a",
        &[],
    )
    .await;
    set_pod_ready(c, "default", "blue", true, Some("10.244.0.1"))
        .await
        .unwrap();
    set_pod_ready(c, "default", "green", true, Some("10.244.0.2"))
        .await
        .unwrap();
    eventually("blue selected", 20, || async {
        (endpoint_states(c, "web").await == vec![("10.244.0.1".into(), true, true, false)])
            .then_some(())
    })
    .await;
    let svcs: Api<Service> = Api::namespaced(c.clone(), "default");
    svcs.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"selector": {"app": null, "color": "green"}}})),
    )
    .await
    .unwrap();
    eventually("green selected", 20, || async {
        (endpoint_states(c, "web").await == vec![("10.244.0.2".into(), true, true, false)])
            .then_some(())
    })
    .await;
    // Relabelling a pod moves it too.
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    pods.patch(
        "blue",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"color": "green"}}})),
    )
    .await
    .unwrap();
    eventually("both selected", 20, || async {
        (endpoint_states(c, "web").await.len() == 2).then_some(())
    })
    .await;

    svcs.delete("web", &DeleteParams::default()).await.unwrap();
    eventually("slices and Endpoints gone", 20, || async {
        (slices(c, "web").await.is_empty() && endpoints(c, "web").await.is_none()).then_some(())
    })
    .await;
    ctl.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_without_selector_are_left_alone() {
    let env = env().await;
    let c = &env.client;
    service(
        c,
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "ext"},
            "spec": {"ports": [{"port": 80}]},
        }),
    )
    .await;
    create::<k8s_openapi::api::discovery::v1::EndpointSlice>(
        c,
        None,
        json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "ext-manual", "labels": {"kubernetes.io/service-name": "ext"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["192.0.2.10"]}],
            "ports": [{"port": 80}],
        }),
    )
    .await;
    let user_rv = slices(c, "ext").await[0].metadata.resource_version.clone();
    service(c, web_service()).await;
    let ctl = start(c, opts());
    // The selector Service is handled (a sign the controller has worked through the queue)...
    eventually("web placeholder", 20, || async {
        (slices(c, "web").await.len() == 1).then_some(())
    })
    .await;
    eventually("web Endpoints", 20, || async { endpoints(c, "web").await }).await;
    // ...and the selectorless one keeps exactly its user slice, with no Endpoints written for it.
    let s = slices(c, "ext").await;
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].metadata.name.as_deref(), Some("ext-manual"));
    assert_eq!(s[0].metadata.resource_version, user_rv);
    assert!(endpoints(c, "ext").await.is_none());
    ctl.stop().await;
}

fn versions(s: &[k8s_openapi::api::discovery::v1::EndpointSlice]) -> BTreeMap<String, String> {
    s.iter()
        .map(|s| {
            (
                s.metadata.name.clone().unwrap(),
                s.metadata.resource_version.clone().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_controller_changes_nothing_that_is_right() {
    let env = env().await;
    let c = &env.client;
    node(c, "node-a", Some("zone-a")).await;
    for svc in ["a", "b", "c"] {
        service(
            c,
            json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": svc},
                "spec": {"selector": {"app": svc}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
                         "trafficDistribution": "PreferClose"},
            }),
        )
        .await;
        for i in 0..3 {
            let name = format!("{svc}-{i}");
            pod(
                c,
                &name,
                json!({"app": svc}),
                "node-a",
                &[("http", 8080 + i)],
            )
            .await;
            let ip = format!("10.244.{}.{}", svc.as_bytes()[0], i + 1);
            set_pod_ready(c, "default", &name, i != 2, Some(&ip))
                .await
                .unwrap();
        }
    }
    let lease = |id: &str| controllers::EndpointSliceOptions {
        workers: 1,
        leader_election: Some(fast_lease(id)),
        ..Default::default()
    };
    let ctl = start(c, lease("first"));
    eventually("all converged", 30, || async {
        for svc in ["a", "b", "c"] {
            if endpoint_states(c, svc).await.len() != 3 {
                return None;
            }
            endpoints(c, svc).await?;
        }
        Some(())
    })
    .await;
    // Let the watch deliver our own writes before taking the picture.
    let before = eventually("stable versions", 30, || async {
        let mut all = BTreeMap::new();
        for svc in ["a", "b", "c"] {
            all.extend(versions(&slices(c, svc).await));
            let e = endpoints(c, svc).await?;
            all.insert(format!("ep/{svc}"), e.metadata.resource_version.unwrap());
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let mut again = BTreeMap::new();
        for svc in ["a", "b", "c"] {
            again.extend(versions(&slices(c, svc).await));
            again.insert(
                format!("ep/{svc}"),
                endpoints(c, svc).await?.metadata.resource_version.unwrap(),
            );
        }
        (all == again).then_some(all)
    })
    .await;
    ctl.stop().await;

    let ctl = start(c, lease("second"));
    // Once the new replica holds the lease it has queued every Service; with one worker, a change made
    // after that is handled after all of them.
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(c.clone(), "kube-system");
    eventually("second holds the lease", 20, || async {
        let l = leases
            .get_opt("svcplane-endpointslice-controller")
            .await
            .unwrap()?;
        (l.spec?.holder_identity.as_deref() == Some("second")).then_some(())
    })
    .await;
    service(
        c,
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "sentinel"},
               "spec": {"selector": {"app": "sentinel"}, "ports": [{"port": 80}]}}),
    )
    .await;
    eventually("sentinel handled", 20, || async {
        (slices(c, "sentinel").await.len() == 1).then_some(())
    })
    .await;
    let mut after = BTreeMap::new();
    for svc in ["a", "b", "c"] {
        after.extend(versions(&slices(c, svc).await));
        after.insert(
            format!("ep/{svc}"),
            endpoints(c, svc)
                .await
                .unwrap()
                .metadata
                .resource_version
                .unwrap(),
        );
    }
    assert_eq!(
        before, after,
        "a restart must not rewrite slices or Endpoints"
    );
    ctl.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_replica_takes_over_when_the_leader_dies() {
    let env = env().await;
    let c = &env.client;
    node(c, "node-a", None).await;
    service(c, web_service()).await;
    let one = start(
        c,
        controllers::EndpointSliceOptions {
            leader_election: Some(fast_lease("one")),
            ..opts()
        },
    );
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(c.clone(), "kube-system");
    eventually("one leads", 20, || async {
        let l = leases
            .get_opt("svcplane-endpointslice-controller")
            .await
            .unwrap()?;
        (l.spec?.holder_identity.as_deref() == Some("one")).then_some(())
    })
    .await;
    let two = start(
        c,
        controllers::EndpointSliceOptions {
            leader_election: Some(fast_lease("two")),
            ..opts()
        },
    );
    pod(c, "web-1", json!({"app": "web"}), "node-a", &[]).await;
    set_pod_ready(c, "default", "web-1", true, Some("10.244.0.9"))
        .await
        .unwrap();
    eventually("endpoint from the leader", 20, || async {
        (endpoint_states(c, "web").await.len() == 1).then_some(())
    })
    .await;
    // The standby has not taken the lease while the leader renews it.
    let l = leases
        .get("svcplane-endpointslice-controller")
        .await
        .unwrap();
    assert_eq!(l.spec.unwrap().holder_identity.as_deref(), Some("one"));

    one.kill();
    let t0 = std::time::Instant::now();
    eventually("two takes over", 20, || async {
        let l = leases
            .get_opt("svcplane-endpointslice-controller")
            .await
            .unwrap()?;
        (l.spec?.holder_identity.as_deref() == Some("two")).then_some(())
    })
    .await;
    let took = t0.elapsed();
    assert!(took.as_secs_f64() < 10.0, "takeover took {took:?}");
    let l = leases
        .get("svcplane-endpointslice-controller")
        .await
        .unwrap();
    assert!(l.spec.unwrap().lease_transitions.unwrap_or(0) >= 1);
    set_pod_ready(c, "default", "web-1", false, None)
        .await
        .unwrap();
    eventually("new leader writes", 20, || async {
        (endpoint_states(c, "web").await == vec![("10.244.0.9".into(), false, false, false)])
            .then_some(())
    })
    .await;
    two.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_that_existed_before_the_controller_are_followed_after_it_starts() {
    let env = env().await;
    let c = &env.client;
    node(c, "node-a", None).await;
    service(c, web_service()).await;
    pod(c, "web-1", json!({"app": "web"}), "node-a", &[]).await;
    set_pod_ready(c, "default", "web-1", true, Some("10.244.0.7"))
        .await
        .unwrap();
    let ctl = start(c, opts());
    eventually("ready endpoint", 20, || async {
        (endpoint_states(c, "web").await == vec![("10.244.0.7".into(), true, true, false)])
            .then_some(())
    })
    .await;
    set_pod_ready(c, "default", "web-1", false, None)
        .await
        .unwrap();
    eventually("unready endpoint", 20, || async {
        (endpoint_states(c, "web").await == vec![("10.244.0.7".into(), false, false, false)])
            .then_some(())
    })
    .await;
    ctl.stop().await;
}
