//! Table of invalid Services: each is refused with 422 and the field path kube-apiserver reports, and
//! afterwards nothing is stored and nothing is allocated.

mod common;

use common::ApiServer;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::{json, Value};

/// (name, spec, expected field path in the error message). Paths are kube-apiserver's, quirks included
/// (it reports source ranges under `spec.LoadBalancerSourceRanges`).
fn cases() -> Vec<(&'static str, Value, &'static str)> {
    let p80 = json!([{"port": 80}]);
    vec![
        (
            "port-zero",
            json!({"ports": [{"port": 0}]}),
            "spec.ports[0].port",
        ),
        (
            "port-too-big",
            json!({"ports": [{"port": 70000}]}),
            "spec.ports[0].port",
        ),
        (
            "bad-protocol",
            json!({"ports": [{"port": 80, "protocol": "FOO"}]}),
            "spec.ports[0].protocol",
        ),
        (
            "lowercase-protocol",
            json!({"ports": [{"port": 80, "protocol": "tcp"}]}),
            "spec.ports[0].protocol",
        ),
        (
            "unnamed-ports",
            json!({"ports": [{"port": 80}, {"port": 81}]}),
            "spec.ports[0].name",
        ),
        (
            "dup-port-names",
            json!({"ports": [{"name": "a", "port": 80}, {"name": "a", "port": 81}]}),
            "spec.ports[1].name",
        ),
        (
            "bad-port-name",
            json!({"ports": [{"name": "HTTP_", "port": 80}]}),
            "spec.ports[0].name",
        ),
        (
            "target-too-big",
            json!({"ports": [{"port": 80, "targetPort": 70000}]}),
            "spec.ports[0].targetPort",
        ),
        (
            "bad-target-name",
            json!({"ports": [{"port": 80, "targetPort": "-bad-"}]}),
            "spec.ports[0].targetPort",
        ),
        (
            "dup-port-proto",
            json!({"ports": [{"name": "a", "port": 80}, {"name": "b", "port": 80}]}),
            "spec.ports[1]",
        ),
        ("no-ports", json!({"ports": []}), "spec.ports"),
        (
            "bad-type",
            json!({"type": "Foo", "ports": p80}),
            "spec.type",
        ),
        (
            "extname-missing",
            json!({"type": "ExternalName"}),
            "spec.externalName",
        ),
        (
            "extname-invalid",
            json!({"type": "ExternalName", "externalName": "bad_name!"}),
            "spec.externalName",
        ),
        (
            "extname-with-ip",
            json!({"type": "ExternalName", "externalName": "a.example", "clusterIP": "10.96.0.50"}),
            "spec.clusterIPs",
        ),
        (
            "nodeport-on-clusterip",
            json!({"ports": [{"port": 80, "nodePort": 30001}]}),
            "spec.ports[0].nodePort",
        ),
        (
            "dup-nodeport",
            json!({"type": "NodePort", "ports": [{"name": "a", "port": 80, "nodePort": 30001}, {"name": "b", "port": 81, "nodePort": 30001}]}),
            "spec.ports[1].nodePort",
        ),
        (
            "nodeport-out-of-range",
            json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 80}]}),
            "spec.ports[0].nodePort",
        ),
        (
            "bad-affinity",
            json!({"sessionAffinity": "Sticky", "ports": p80}),
            "spec.sessionAffinity",
        ),
        (
            "affinity-timeout-zero",
            json!({"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 0}}, "ports": p80}),
            "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
        ),
        (
            "affinity-timeout-huge",
            json!({"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 86401}}, "ports": p80}),
            "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
        ),
        (
            "lb-ranges-on-clusterip",
            json!({"loadBalancerSourceRanges": ["10.0.0.0/8"], "ports": p80}),
            "spec.LoadBalancerSourceRanges",
        ),
        (
            "lb-ranges-bad-cidr",
            json!({"type": "LoadBalancer", "loadBalancerSourceRanges": ["10.0.0.0/33"], "ports": p80}),
            "spec.LoadBalancerSourceRanges[0]",
        ),
        (
            "bad-etp",
            json!({"type": "NodePort", "externalTrafficPolicy": "Foo", "ports": p80}),
            "spec.externalTrafficPolicy",
        ),
        (
            "etp-on-clusterip",
            json!({"externalTrafficPolicy": "Local", "ports": p80}),
            "spec.externalTrafficPolicy",
        ),
        (
            "hcnp-on-clusterip",
            json!({"healthCheckNodePort": 30100, "ports": p80}),
            "spec.healthCheckNodePort",
        ),
        (
            "bad-itp",
            json!({"internalTrafficPolicy": "Foo", "ports": p80}),
            "spec.internalTrafficPolicy",
        ),
        (
            "bad-cluster-ip",
            json!({"clusterIP": "not-an-ip", "ports": p80}),
            "spec.clusterIPs[0]",
        ),
        (
            "headless-nodeport",
            json!({"type": "NodePort", "clusterIP": "None", "ports": p80}),
            "spec.clusterIPs[0]",
        ),
        (
            "cluster-ip-out-of-range",
            json!({"clusterIP": "192.168.7.7", "ports": p80}),
            "spec.clusterIPs",
        ),
        (
            "bad-family-policy",
            json!({"ipFamilyPolicy": "Foo", "ports": p80}),
            "spec.ipFamilyPolicy",
        ),
        (
            "bad-family",
            json!({"ipFamilies": ["IPv5"], "ports": p80}),
            "spec.ipFamilies[0]",
        ),
        (
            "dup-family",
            json!({"ipFamilyPolicy": "PreferDualStack", "ipFamilies": ["IPv4", "IPv4"], "ports": p80}),
            "spec.ipFamilies[1]",
        ),
        (
            "require-dual-on-single",
            json!({"ipFamilyPolicy": "RequireDualStack", "ports": p80}),
            "spec.ipFamilyPolicy",
        ),
        (
            "alloc-lb-ports-on-clusterip",
            json!({"allocateLoadBalancerNodePorts": true, "ports": p80}),
            "spec.allocateLoadBalancerNodePorts",
        ),
        (
            "lb-class-on-clusterip",
            json!({"loadBalancerClass": "example.com/lb", "ports": p80}),
            "spec.loadBalancerClass",
        ),
        (
            "lb-class-invalid",
            json!({"type": "LoadBalancer", "loadBalancerClass": "bad class", "ports": p80}),
            "spec.loadBalancerClass",
        ),
        (
            "external-ip-invalid",
            json!({"externalIPs": ["not-an-ip"], "ports": p80}),
            "spec.externalIPs[0]",
        ),
        (
            "bad-traffic-distribution",
            json!({"trafficDistribution": "Foo", "ports": p80}),
            "spec.trafficDistribution",
        ),
        (
            "bad-selector-value",
            json!({"selector": {"app": "bad value!"}, "ports": p80}),
            "spec.selector",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_services_get_422_with_field_paths_and_leave_nothing() {
    let s = ApiServer::start();
    let kc = Kubeconfig::read_from(s.kubeconfig()).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    let client = kube::Client::try_from(cfg).unwrap();
    let api: Api<Service> = Api::namespaced(client.clone(), "default");
    let mut failures = Vec::new();
    let all = cases();
    assert!(
        all.len() >= 40,
        "the table must cover at least 40 invalid Services"
    );
    for (name, spec, path) in &all {
        let svc: Service = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec,
        }))
        .unwrap();
        match api.create(&PostParams::default(), &svc).await {
            Err(kube::Error::Api(e)) if e.code == 422 && e.reason == "Invalid" => {
                let want = format!("{path}:");
                if !e.message.contains(&want) && !e.message.contains(&format!("{path}[")) {
                    failures.push(format!("{name}: wanted field {path}, got: {}", e.message));
                }
            }
            other => failures.push(format!("{name}: wanted 422, got {other:?}")),
        }
    }
    // Metadata rules.
    for (name, path) in [("Bad_Name", "metadata.name"), ("a.b", "metadata.name")] {
        let svc: Service = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": {"ports": [{"port": 80}]},
        }))
        .unwrap();
        match api.create(&PostParams::default(), &svc).await {
            Err(kube::Error::Api(e)) if e.code == 422 && e.message.contains(path) => {}
            other => failures.push(format!("{name}: wanted 422 on {path}, got {other:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} cases wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // Nothing stored: only the `kubernetes` Service exists, and only its IP is allocated.
    let names: Vec<String> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|s| s.metadata.name)
        .collect();
    assert_eq!(names, ["kubernetes"]);
    let ips = s.kubectl_ok(&["get", "ipaddresses", "-o", "name"]);
    assert_eq!(ips.trim(), "ipaddress.networking.k8s.io/10.96.0.1");
    // Node ports: the one every invalid NodePort case asked for is still free.
    let ok: Service = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "ok"},
        "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 30001}]},
    }))
    .unwrap();
    api.create(&PostParams::default(), &ok).await.unwrap();
}
