//! Patches as kubectl sends them for the built-in kinds.

use patch::{apply_patch, list_strategies, supports_strategic, PatchType, Strategy};
use serde_json::{json, Value};

fn smp(kind: &str, original: &Value, patch: Value) -> Value {
    apply_patch(
        kind,
        original,
        PatchType::StrategicMerge,
        patch.to_string().as_bytes(),
    )
    .unwrap()
}

fn web_service() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "old"},
            "finalizers": ["service.kubernetes.io/load-balancer-cleanup"]
        },
        "spec": {
            "clusterIP": "10.96.0.10",
            "clusterIPs": ["10.96.0.10"],
            "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}],
            "selector": {"app": "web"},
            "type": "ClusterIP"
        }
    })
}

#[test]
fn kubectl_apply_adds_a_service_port() {
    let patched = smp(
        "Service",
        &web_service(),
        json!({
            "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "new"}},
            "spec": {
                "$setElementOrder/ports": [{"port": 80}, {"port": 443}],
                "ports": [{"name": "https", "port": 443, "targetPort": 8443}]
            }
        }),
    );
    assert_eq!(
        patched["spec"]["ports"],
        json!([
            {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080},
            {"name": "https", "port": 443, "targetPort": 8443}
        ])
    );
    assert_eq!(
        patched["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"],
        "new"
    );
    assert_eq!(patched["spec"]["clusterIP"], "10.96.0.10");
}

#[test]
fn kubectl_apply_removes_a_service_port_and_reorders() {
    let mut svc = web_service();
    svc["spec"]["ports"] = json!([
        {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080},
        {"name": "https", "port": 443, "protocol": "TCP", "targetPort": 8443},
        {"name": "metrics", "port": 9090, "protocol": "TCP", "targetPort": 9090}
    ]);
    let patched = smp(
        "Service",
        &svc,
        json!({"spec": {
            "$setElementOrder/ports": [{"port": 9090}, {"port": 443}],
            "ports": [{"$patch": "delete", "port": 80}]
        }}),
    );
    assert_eq!(
        patched["spec"]["ports"],
        json!([
            {"name": "metrics", "port": 9090, "protocol": "TCP", "targetPort": 9090},
            {"name": "https", "port": 443, "protocol": "TCP", "targetPort": 8443}
        ])
    );
}

#[test]
fn service_ports_merge_by_port_number() {
    // Upstream's merge key is `port`, so changing the targetPort of port 80 merges in place.
    let patched = smp(
        "Service",
        &web_service(),
        json!({"spec": {"ports": [{"port": 80, "targetPort": 9000}], "type": "NodePort"}}),
    );
    assert_eq!(
        patched["spec"]["ports"],
        json!([{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 9000}])
    );
    assert_eq!(patched["spec"]["type"], "NodePort");
}

#[test]
fn kubectl_label_and_annotate() {
    let labelled = smp(
        "Service",
        &web_service(),
        json!({"metadata": {"labels": {"tier": "frontend"}}}),
    );
    assert_eq!(labelled["metadata"]["labels"], json!({"tier": "frontend"}));
    let unlabelled = smp(
        "Service",
        &labelled,
        json!({"metadata": {"labels": {"tier": null}, "annotations": {"note": "x"}}}),
    );
    assert_eq!(unlabelled["metadata"]["labels"], json!({}));
    assert_eq!(unlabelled["metadata"]["annotations"]["note"], "x");
}

#[test]
fn finalizers_merge_and_delete_from_primitive_list() {
    let added = smp(
        "Service",
        &web_service(),
        json!({"metadata": {"finalizers": ["example.com/hold"]}}),
    );
    // Upstream order: an item new to the list goes before the server-only items.
    assert_eq!(
        added["metadata"]["finalizers"],
        json!([
            "example.com/hold",
            "service.kubernetes.io/load-balancer-cleanup"
        ])
    );
    let removed = smp(
        "Service",
        &added,
        json!({"metadata": {
            "$deleteFromPrimitiveList/finalizers": ["service.kubernetes.io/load-balancer-cleanup"]
        }}),
    );
    assert_eq!(
        removed["metadata"]["finalizers"],
        json!(["example.com/hold"])
    );
}

#[test]
fn owner_references_merge_by_uid() {
    let original = json!({"metadata": {"name": "s", "ownerReferences": [
        {"apiVersion": "v1", "kind": "Service", "name": "a", "uid": "1"}
    ]}});
    let patched = smp(
        "EndpointSlice",
        &original,
        json!({"metadata": {"ownerReferences": [
            {"apiVersion": "v1", "kind": "Service", "name": "b", "uid": "2"}
        ]}}),
    );
    let uids: Vec<&str> = patched["metadata"]["ownerReferences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["uid"].as_str().unwrap())
        .collect();
    assert_eq!(uids.len(), 2);
    assert!(uids.contains(&"1") && uids.contains(&"2"));
}

#[test]
fn pod_status_patch_merges_conditions_by_type() {
    let pod = json!({
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "app", "image": "nginx"}]},
        "status": {
            "phase": "Pending",
            "conditions": [
                {"type": "PodScheduled", "status": "True"},
                {"type": "Ready", "status": "False", "reason": "ContainersNotReady"}
            ]
        }
    });
    let patched = smp(
        "Pod",
        &pod,
        json!({"status": {
            "$setElementOrder/conditions": [
                {"type": "Initialized"}, {"type": "Ready"}, {"type": "PodScheduled"}
            ],
            "conditions": [
                {"type": "Initialized", "status": "True"},
                {"type": "Ready", "status": "True", "reason": null}
            ],
            "phase": "Running",
            "podIP": "10.0.0.5",
            "podIPs": [{"ip": "10.0.0.5"}]
        }}),
    );
    assert_eq!(
        patched["status"]["conditions"],
        json!([
            {"type": "Initialized", "status": "True"},
            {"type": "Ready", "status": "True"},
            {"type": "PodScheduled", "status": "True"}
        ])
    );
    assert_eq!(patched["status"]["phase"], "Running");
    assert_eq!(patched["spec"], pod["spec"]);
}

#[test]
fn pod_containers_env_ports_and_volumes() {
    let pod = json!({
        "metadata": {"name": "p"},
        "spec": {
            "containers": [{
                "name": "app",
                "image": "nginx:1",
                "args": ["a", "b"],
                "env": [{"name": "A", "value": "1"}],
                "ports": [{"containerPort": 80, "protocol": "TCP"}]
            }],
            "volumes": [{"name": "data", "emptyDir": {}}]
        }
    });
    let patched = smp(
        "Pod",
        &pod,
        json!({"spec": {
            "containers": [{
                "name": "app",
                "image": "nginx:2",
                "args": ["c"],
                "env": [{"name": "B", "value": "2"}],
                "ports": [{"containerPort": 80, "name": "http"}]
            }],
            "$setElementOrder/volumes": [{"name": "data"}],
            "volumes": [{"$retainKeys": ["configMap", "name"], "name": "data",
                         "configMap": {"name": "cm"}}]
        }}),
    );
    let app = &patched["spec"]["containers"][0];
    assert_eq!(app["image"], "nginx:2");
    assert_eq!(app["args"], json!(["c"]), "args has no strategy: replaced");
    assert_eq!(
        app["env"],
        json!([{"name": "B", "value": "2"}, {"name": "A", "value": "1"}])
    );
    assert_eq!(
        app["ports"],
        json!([{"containerPort": 80, "protocol": "TCP", "name": "http"}])
    );
    assert_eq!(
        patched["spec"]["volumes"],
        json!([{"name": "data", "configMap": {"name": "cm"}}]),
        "retainKeys drops the emptyDir source"
    );
}

#[test]
fn node_addresses_and_pod_cidrs() {
    let node = json!({
        "metadata": {"name": "n1"},
        "spec": {"podCIDRs": ["10.244.0.0/24"]},
        "status": {"addresses": [
            {"type": "InternalIP", "address": "192.168.1.10"},
            {"type": "Hostname", "address": "n1"}
        ]}
    });
    let patched = smp(
        "Node",
        &node,
        json!({
            "spec": {"podCIDRs": ["fd00::/64"]},
            "status": {"addresses": [{"type": "InternalIP", "address": "192.168.1.11"}]}
        }),
    );
    assert_eq!(
        patched["spec"]["podCIDRs"],
        json!(["fd00::/64", "10.244.0.0/24"])
    );
    assert_eq!(
        patched["status"]["addresses"],
        json!([
            {"type": "InternalIP", "address": "192.168.1.11"},
            {"type": "Hostname", "address": "n1"}
        ])
    );
}

#[test]
fn endpointslice_endpoints_are_atomic() {
    let slice = json!({
        "metadata": {"name": "web-abc"},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2"]}],
        "ports": [{"name": "http", "port": 8080}]
    });
    let patched = smp(
        "EndpointSlice",
        &slice,
        json!({"endpoints": [{"addresses": ["10.0.0.3"]}]}),
    );
    assert_eq!(patched["endpoints"], json!([{"addresses": ["10.0.0.3"]}]));
    assert_eq!(patched["ports"], slice["ports"]);
}

#[test]
fn unknown_kind_replaces_lists() {
    assert!(!supports_strategic("Widget"));
    let obj = json!({"metadata": {"finalizers": ["a"]}, "spec": {"items": [{"name": "x"}]}});
    let patched = smp(
        "Widget",
        &obj,
        json!({"metadata": {"finalizers": ["b"]}, "spec": {"items": [{"name": "y"}]}}),
    );
    assert_eq!(patched["metadata"]["finalizers"], json!(["b"]));
    assert_eq!(patched["spec"]["items"], json!([{"name": "y"}]));
}

#[test]
fn strategic_body_must_be_an_object() {
    let err =
        apply_patch("Service", &web_service(), PatchType::StrategicMerge, b"[1]").unwrap_err();
    assert_eq!(err.status().code, 400);
    assert_eq!(
        err.to_string(),
        "json: cannot unmarshal array into Go value of type map[string]interface {}"
    );
    let err = apply_patch("Service", &web_service(), PatchType::StrategicMerge, b"{").unwrap_err();
    assert_eq!(err.status().reason, "BadRequest");
    // A `null` body is an empty patch.
    let same = apply_patch(
        "Service",
        &web_service(),
        PatchType::StrategicMerge,
        b"null",
    )
    .unwrap();
    assert_eq!(same, web_service());
}

#[test]
fn strategies_table() {
    let find = |kind: &str, path: &str| {
        list_strategies(kind)
            .into_iter()
            .find(|f| f.path == path)
            .map(|f| (f.strategy, f.merge_key, f.definition))
    };
    assert_eq!(
        find("Service", "spec.ports"),
        Some((
            Strategy::Merge,
            Some("port"),
            "io.k8s.api.core.v1.ServiceSpec"
        ))
    );
    assert_eq!(
        find("Pod", "spec.containers"),
        Some((Strategy::Merge, Some("name"), "io.k8s.api.core.v1.PodSpec"))
    );
    assert_eq!(
        find("Pod", "spec.containers[].ports").map(|f| f.1),
        Some(Some("containerPort"))
    );
    assert_eq!(
        find("Pod", "spec.volumes").map(|f| (f.0, f.0.as_str())),
        Some((Strategy::MergeRetainKeys, "merge,retainKeys"))
    );
    assert_eq!(
        find("Node", "status.addresses").map(|f| f.1),
        Some(Some("type"))
    );
    assert_eq!(find("Node", "spec.podCIDRs").map(|f| f.1), Some(None));
    assert_eq!(
        find("*", "metadata.ownerReferences").map(|f| f.1),
        Some(Some("uid"))
    );
    assert_eq!(find("*", "metadata.finalizers").map(|f| f.1), Some(None));
    assert_eq!(
        find("Deployment", "spec.strategy").map(|f| f.0),
        Some(Strategy::RetainKeys)
    );
    assert_eq!(
        find("Deployment", "spec.template.spec.containers[].env").map(|f| f.1),
        Some(Some("name"))
    );
    assert_eq!(
        find("ServiceCIDR", "status.conditions").map(|f| f.1),
        Some(Some("type"))
    );
    let slice: Vec<String> = list_strategies("EndpointSlice")
        .into_iter()
        .map(|f| f.path)
        .collect();
    assert_eq!(slice, ["metadata.ownerReferences", "metadata.finalizers"]);
    assert!(list_strategies("Widget").is_empty());
    for kind in [
        "Service",
        "Pod",
        "Node",
        "Namespace",
        "Endpoints",
        "EndpointSlice",
        "Event",
        "Lease",
        "ServiceCIDR",
        "IPAddress",
    ] {
        assert!(supports_strategic(kind), "{kind}");
    }
}

#[test]
fn content_types() {
    assert_eq!(
        PatchType::from_content_type("application/strategic-merge-patch+json"),
        Some(PatchType::StrategicMerge)
    );
    assert_eq!(
        PatchType::from_content_type("application/merge-patch+json; charset=utf-8"),
        Some(PatchType::Merge)
    );
    assert_eq!(
        PatchType::from_content_type("Application/JSON-Patch+JSON"),
        Some(PatchType::Json)
    );
    assert_eq!(
        PatchType::from_content_type("application/apply-patch+yaml"),
        None
    );
    assert_eq!(PatchType::from_content_type("application/json"), None);
    assert_eq!(
        PatchType::Merge.content_type(),
        "application/merge-patch+json"
    );
}
