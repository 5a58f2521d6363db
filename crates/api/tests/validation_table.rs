//! Table of invalid Services: manifest → the (field path, reason) pairs
//! kube-apiserver v1.33 answers with, after defaulting.

mod common;

use api::service::ClusterNetworkConfig;
use common::{create_errors, dual, pairs, svc_json, v4};
use serde_json::{json, Value};

const INV: &str = "FieldValueInvalid";
const REQ: &str = "FieldValueRequired";
const DUP: &str = "FieldValueDuplicate";
const NS: &str = "FieldValueNotSupported";
const FORB: &str = "FieldValueForbidden";
const LONG: &str = "FieldValueTooLong";

struct Case {
    name: &'static str,
    cfg: fn() -> ClusterNetworkConfig,
    manifest: Value,
    want: Vec<(&'static str, &'static str)>,
}

fn case(name: &'static str, spec: Value, want: Vec<(&'static str, &'static str)>) -> Case {
    Case {
        name,
        cfg: v4,
        manifest: svc_json(spec),
        want,
    }
}

fn case_dual(name: &'static str, spec: Value, want: Vec<(&'static str, &'static str)>) -> Case {
    Case {
        name,
        cfg: dual,
        manifest: svc_json(spec),
        want,
    }
}

fn with_meta(name: &'static str, metadata: Value, want: Vec<(&'static str, &'static str)>) -> Case {
    let mut manifest = svc_json(json!({"selector": {"app": "web"}, "ports": [{"port": 80}]}));
    manifest["metadata"] = metadata;
    Case {
        name,
        cfg: v4,
        manifest,
        want,
    }
}

fn cases() -> Vec<Case> {
    let p80 = json!([{"port": 80}]);
    vec![
        // --- metadata ---
        with_meta(
            "name not a DNS-1035 label",
            json!({"name": "Web", "namespace": "default"}),
            vec![("metadata.name", INV)],
        ),
        with_meta(
            // v1.36 accepts a leading digit (RelaxedServiceNameValidation), not a dot.
            "name with a dot",
            json!({"name": "web.a", "namespace": "default"}),
            vec![("metadata.name", INV)],
        ),
        with_meta(
            "name missing",
            json!({"namespace": "default"}),
            vec![("metadata.name", REQ)],
        ),
        with_meta(
            "namespace missing",
            json!({"name": "web"}),
            vec![("metadata.namespace", REQ)],
        ),
        with_meta(
            "bad generateName",
            json!({"name": "web", "generateName": "Web-", "namespace": "default"}),
            vec![("metadata.generateName", INV)],
        ),
        with_meta(
            "bad label key",
            json!({"name": "web", "namespace": "default", "labels": {"bad key": "x"}}),
            vec![("metadata.labels", INV)],
        ),
        with_meta(
            "bad label value",
            json!({"name": "web", "namespace": "default", "labels": {"app": "-x-"}}),
            vec![("metadata.labels", INV)],
        ),
        with_meta(
            "bad annotation key",
            json!({"name": "web", "namespace": "default", "annotations": {"a/b/c": "x"}}),
            vec![("metadata.annotations", INV)],
        ),
        with_meta(
            "annotations too large",
            json!({"name": "web", "namespace": "default", "annotations": {"big": "x".repeat(262_142)}}),
            vec![("metadata.annotations", LONG)],
        ),
        with_meta(
            "non-standard finalizer",
            json!({"name": "web", "namespace": "default", "finalizers": ["cleanup"]}),
            vec![("metadata.finalizers[0]", INV)],
        ),
        with_meta(
            "topology annotations disagree",
            json!({"name": "web", "namespace": "default", "annotations": {
                "service.kubernetes.io/topology-mode": "Auto",
                "service.kubernetes.io/topology-aware-hints": "Disabled"}}),
            vec![(
                "metadata.annotations[service.kubernetes.io/topology-mode]",
                INV,
            )],
        ),
        // --- ports ---
        case(
            "no ports",
            json!({"selector": {"app": "web"}}),
            vec![("spec.ports", REQ)],
        ),
        case(
            "several ports need names",
            json!({"ports": [{"port": 80}, {"port": 443}]}),
            vec![("spec.ports[0].name", REQ), ("spec.ports[1].name", REQ)],
        ),
        case(
            "port name not a DNS label",
            json!({"ports": [{"name": "HTTP", "port": 80}]}),
            vec![("spec.ports[0].name", INV)],
        ),
        case(
            "duplicate port names",
            json!({"ports": [{"name": "http", "port": 80}, {"name": "http", "port": 81}]}),
            vec![("spec.ports[1].name", DUP)],
        ),
        case(
            "port zero (targetPort defaults to it)",
            json!({"ports": [{"port": 0}]}),
            vec![
                ("spec.ports[0].port", INV),
                ("spec.ports[0].targetPort", INV),
            ],
        ),
        case(
            "port too large",
            json!({"ports": [{"port": 70000, "targetPort": 80}]}),
            vec![("spec.ports[0].port", INV)],
        ),
        case(
            "unknown protocol",
            json!({"ports": [{"port": 80, "protocol": "HTTP"}]}),
            vec![("spec.ports[0].protocol", NS)],
        ),
        case(
            "targetPort out of range",
            json!({"ports": [{"port": 80, "targetPort": 70000}]}),
            vec![("spec.ports[0].targetPort", INV)],
        ),
        case(
            "targetPort not an IANA name",
            json!({"ports": [{"port": 80, "targetPort": "Web_Port"}]}),
            vec![("spec.ports[0].targetPort", INV)],
        ),
        case(
            "appProtocol not a qualified name",
            json!({"ports": [{"port": 80, "appProtocol": "a/b/c"}]}),
            vec![("spec.ports[0].appProtocol", INV)],
        ),
        case(
            "nodePort on ClusterIP",
            json!({"ports": [{"port": 80, "nodePort": 30080}]}),
            vec![("spec.ports[0].nodePort", FORB)],
        ),
        case(
            "duplicate port and protocol",
            json!({"ports": [{"name": "a", "port": 80}, {"name": "b", "port": 80, "targetPort": 81}]}),
            vec![("spec.ports[1]", DUP)],
        ),
        case(
            "duplicate nodePort",
            json!({"type": "NodePort", "ports": [
                {"name": "a", "port": 80, "nodePort": 30080},
                {"name": "b", "port": 81, "nodePort": 30080}]}),
            vec![("spec.ports[1].nodePort", DUP)],
        ),
        // --- type ---
        case(
            "unknown type",
            json!({"type": "Foo", "ports": p80}),
            vec![("spec.type", NS)],
        ),
        // --- ExternalName ---
        case(
            "ExternalName without name",
            json!({"type": "ExternalName"}),
            vec![("spec.externalName", REQ)],
        ),
        case(
            "ExternalName not a subdomain",
            json!({"type": "ExternalName", "externalName": "Bad_Host.example.com"}),
            vec![("spec.externalName", INV)],
        ),
        case(
            "ExternalName with clusterIP",
            json!({"type": "ExternalName", "externalName": "db.example.com", "clusterIP": "10.0.0.10"}),
            vec![("spec.clusterIPs", FORB)],
        ),
        case(
            "ExternalName with ipFamilyPolicy",
            json!({"type": "ExternalName", "externalName": "db.example.com", "ipFamilyPolicy": "SingleStack"}),
            vec![("spec.ipFamilyPolicy", FORB)],
        ),
        case(
            "ExternalName with ipFamilies",
            json!({"type": "ExternalName", "externalName": "db.example.com", "ipFamilies": ["IPv4"]}),
            vec![("spec.ipFamilies", FORB)],
        ),
        // --- headless ---
        case(
            "headless NodePort",
            json!({"type": "NodePort", "clusterIP": "None", "selector": {"app": "web"}, "ports": p80}),
            vec![("spec.clusterIPs[0]", INV)],
        ),
        case(
            "headless LoadBalancer",
            json!({"type": "LoadBalancer", "clusterIP": "None", "selector": {"app": "web"}, "ports": p80}),
            vec![("spec.clusterIPs[0]", INV)],
        ),
        case(
            "None not alone",
            json!({"clusterIP": "None", "clusterIPs": ["None", "10.0.0.1"], "ports": p80}),
            vec![("spec.clusterIPs", INV)],
        ),
        // --- clusterIP / clusterIPs / families ---
        case(
            "clusterIP not an IP",
            json!({"clusterIP": "10.0.0.300", "ports": p80}),
            vec![("spec.clusterIPs[0]", INV)],
        ),
        case(
            "clusterIPs[0] differs from clusterIP",
            json!({"clusterIP": "10.0.0.10", "clusterIPs": ["10.0.0.11"], "ports": p80}),
            vec![("spec.clusterIPs", INV)],
        ),
        case(
            "clusterIPs without clusterIP",
            json!({"clusterIPs": ["10.0.0.11"], "ports": p80}),
            vec![("spec.clusterIPs", INV)],
        ),
        case_dual(
            "two IPv4 cluster IPs",
            json!({"ipFamilyPolicy": "RequireDualStack", "clusterIP": "10.0.0.10",
                   "clusterIPs": ["10.0.0.10", "10.0.0.11"], "ports": p80}),
            vec![("spec.clusterIPs", INV)],
        ),
        case_dual(
            "three cluster IPs",
            json!({"ipFamilyPolicy": "RequireDualStack", "clusterIP": "10.0.0.10",
                   "clusterIPs": ["10.0.0.10", "fd00::10", "10.0.0.11"], "ports": p80}),
            vec![("spec.clusterIPs", INV)],
        ),
        case(
            "unknown ipFamily",
            json!({"ipFamilies": ["IPv5"], "ports": p80}),
            vec![("spec.ipFamilies[0]", NS)],
        ),
        case_dual(
            "duplicate ipFamilies",
            json!({"ipFamilyPolicy": "PreferDualStack", "ipFamilies": ["IPv4", "IPv4"], "ports": p80}),
            vec![("spec.ipFamilies[1]", DUP)],
        ),
        case(
            "unknown ipFamilyPolicy",
            json!({"ipFamilyPolicy": "Bogus", "ports": p80}),
            vec![("spec.ipFamilyPolicy", NS)],
        ),
        case(
            "RequireDualStack on a single-stack cluster",
            json!({"ipFamilyPolicy": "RequireDualStack", "ports": p80}),
            vec![("spec.ipFamilyPolicy", INV)],
        ),
        case(
            "family not configured",
            json!({"ipFamilies": ["IPv6"], "ports": p80}),
            vec![("spec.ipFamilies[0]", INV)],
        ),
        case(
            "IPv6 clusterIP on IPv4 cluster",
            json!({"clusterIP": "fd00::10", "ports": p80}),
            vec![("spec.clusterIPs[0]", INV)],
        ),
        case_dual(
            "clusterIP disagrees with ipFamilies",
            json!({"clusterIP": "10.0.0.10", "ipFamilies": ["IPv6"], "ports": p80}),
            vec![("spec.clusterIPs[0]", INV)],
        ),
        case_dual(
            "SingleStack with two cluster IPs",
            json!({"ipFamilyPolicy": "SingleStack", "clusterIP": "10.0.0.10",
                   "clusterIPs": ["10.0.0.10", "fd00::10"], "ports": p80}),
            vec![("spec.ipFamilyPolicy", INV)],
        ),
        // --- session affinity ---
        case(
            "unknown sessionAffinity",
            json!({"sessionAffinity": "Sticky", "ports": p80}),
            vec![("spec.sessionAffinity", NS)],
        ),
        case(
            "affinity timeout zero",
            json!({"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 0}}, "ports": p80}),
            vec![("spec.sessionAffinityConfig.clientIP.timeoutSeconds", INV)],
        ),
        case(
            "affinity timeout above a day",
            json!({"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 86401}}, "ports": p80}),
            vec![("spec.sessionAffinityConfig.clientIP.timeoutSeconds", INV)],
        ),
        // --- load balancer fields ---
        case(
            "source ranges on ClusterIP",
            json!({"loadBalancerSourceRanges": ["10.0.0.0/8"], "ports": p80}),
            vec![("spec.LoadBalancerSourceRanges", FORB)],
        ),
        case(
            "source range not a CIDR",
            json!({"type": "LoadBalancer", "loadBalancerSourceRanges": ["10.0.0.0/33"], "ports": p80}),
            vec![("spec.LoadBalancerSourceRanges[0]", INV)],
        ),
        Case {
            name: "source-ranges annotation on ClusterIP",
            cfg: v4,
            manifest: json!({"metadata": {"name": "web", "namespace": "default", "annotations": {
                "service.beta.kubernetes.io/load-balancer-source-ranges": "10.0.0.0/8"}},
                "spec": {"ports": [{"port": 80}]}}),
            want: vec![(
                "metadata.annotations[service.beta.kubernetes.io/load-balancer-source-ranges]",
                FORB,
            )],
        },
        Case {
            name: "bad source-ranges annotation",
            cfg: v4,
            manifest: json!({"metadata": {"name": "web", "namespace": "default", "annotations": {
                "service.beta.kubernetes.io/load-balancer-source-ranges": "10.0.0.0/8, nope"}},
                "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}}),
            want: vec![(
                "metadata.annotations[service.beta.kubernetes.io/load-balancer-source-ranges]",
                INV,
            )],
        },
        case(
            "allocateLoadBalancerNodePorts on ClusterIP",
            json!({"allocateLoadBalancerNodePorts": false, "ports": p80}),
            vec![("spec.allocateLoadBalancerNodePorts", FORB)],
        ),
        case(
            "loadBalancerClass on ClusterIP",
            json!({"loadBalancerClass": "example.com/lb", "ports": p80}),
            vec![("spec.loadBalancerClass", FORB)],
        ),
        case(
            "loadBalancerClass not a qualified name",
            json!({"type": "LoadBalancer", "loadBalancerClass": "a/b/c", "ports": p80}),
            vec![("spec.loadBalancerClass", INV)],
        ),
        // --- traffic policies ---
        case(
            "externalTrafficPolicy on internal service",
            json!({"externalTrafficPolicy": "Local", "ports": p80}),
            vec![("spec.externalTrafficPolicy", INV)],
        ),
        case(
            "unknown externalTrafficPolicy",
            json!({"type": "NodePort", "externalTrafficPolicy": "Bogus", "ports": p80}),
            vec![("spec.externalTrafficPolicy", NS)],
        ),
        case(
            "healthCheckNodePort without Local",
            json!({"type": "NodePort", "healthCheckNodePort": 30100, "ports": p80}),
            vec![("spec.healthCheckNodePort", INV)],
        ),
        case(
            "healthCheckNodePort out of range",
            json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "healthCheckNodePort": 70000, "ports": p80}),
            vec![("spec.healthCheckNodePort", INV)],
        ),
        case(
            "unknown internalTrafficPolicy",
            json!({"internalTrafficPolicy": "Bogus", "ports": p80}),
            vec![("spec.internalTrafficPolicy", NS)],
        ),
        case(
            "unknown trafficDistribution",
            json!({"trafficDistribution": "Anywhere", "ports": p80}),
            vec![("spec.trafficDistribution", NS)],
        ),
        // --- externalIPs and selector ---
        case(
            "externalIP not an IP",
            json!({"externalIPs": ["1.2.3"], "ports": p80}),
            vec![("spec.externalIPs[0]", INV)],
        ),
        case(
            "loopback externalIP",
            json!({"externalIPs": ["127.0.0.1"], "ports": p80}),
            vec![("spec.externalIPs[0]", INV)],
        ),
        case(
            "link-local externalIP",
            json!({"externalIPs": ["169.254.1.1"], "ports": p80}),
            vec![("spec.externalIPs[0]", INV)],
        ),
        case(
            "selector key invalid",
            json!({"selector": {"bad key": "web"}, "ports": p80}),
            vec![("spec.selector", INV)],
        ),
        case(
            "selector value invalid",
            json!({"selector": {"app": "web!"}, "ports": p80}),
            vec![("spec.selector", INV)],
        ),
    ]
}

#[test]
fn invalid_services_are_rejected_like_upstream() {
    let cases = cases();
    assert!(
        cases.len() >= 45,
        "table must cover at least 45 invalid services"
    );
    let mut failures = Vec::new();
    for c in cases {
        let errs = create_errors(c.manifest.clone(), &(c.cfg)());
        let got = pairs(&errs);
        let want: Vec<(String, &str)> = c.want.iter().map(|(f, r)| (f.to_string(), *r)).collect();
        if got != want {
            let msgs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
            failures.push(format!(
                "{}:\n  want {want:?}\n  got  {got:?}\n  msgs {msgs:#?}",
                c.name
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn valid_services_pass() {
    let ok = [
        json!({"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}),
        json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}),
        json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "ports": [{"port": 80}],
               "loadBalancerSourceRanges": [" 10.0.0.0/8 "], "loadBalancerClass": "example.com/lb"}),
        json!({"type": "ExternalName", "externalName": "db.example.com."}),
        json!({"clusterIP": "None"}),
        json!({"clusterIP": "10.0.0.10", "externalIPs": ["192.0.2.10"], "ports": [{"port": 80}],
               "sessionAffinity": "ClientIP", "trafficDistribution": "PreferClose"}),
    ];
    for spec in ok {
        let errs = create_errors(svc_json(spec.clone()), &v4());
        assert!(
            errs.is_empty(),
            "{spec}: {:?}",
            errs.iter().map(|e| e.to_string()).collect::<Vec<_>>()
        );
    }
    let dual_ok = json!({"ipFamilyPolicy": "RequireDualStack", "clusterIP": "10.0.0.10",
                         "clusterIPs": ["10.0.0.10", "fd00::10"], "ports": [{"port": 80}]});
    assert!(create_errors(svc_json(dual_ok), &dual()).is_empty());
}

#[test]
fn session_affinity_config_with_none_is_forbidden_without_defaulting() {
    // Defaulting drops the config for None, so only a raw object shows this.
    let mut svc = common::defaulted(svc_json(json!({"ports": [{"port": 80}]})), &v4());
    let spec = svc.spec.as_mut().unwrap();
    spec.session_affinity_config = Some(Default::default());
    let errs = api::service::validate_service(&svc);
    assert_eq!(
        pairs(&errs),
        vec![("spec.sessionAffinityConfig".to_string(), FORB)]
    );
    assert_eq!(
        errs[0].message(),
        "Forbidden: must not be set when session affinity is None"
    );
}

#[test]
fn messages_match_upstream_text() {
    let msg = |spec: Value| -> Vec<String> {
        create_errors(svc_json(spec), &v4())
            .iter()
            .map(|e| e.to_string())
            .collect()
    };
    assert_eq!(
        msg(json!({"ports": [{"port": 80, "nodePort": 30080}]})),
        vec!["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"]
    );
    assert_eq!(
        msg(json!({"ports": [{"name": "a", "port": 80}, {"name": "b", "port": 80}]})),
        vec![
            r#"spec.ports[1]: Duplicate value: {"Name":"","Protocol":"TCP","AppProtocol":null,"Port":80,"TargetPort":0,"NodePort":0}"#
        ]
    );
    assert_eq!(
        msg(
            json!({"type": "NodePort", "clusterIP": "None", "selector": {"a": "b"}, "ports": [{"port": 80}]})
        ),
        vec![
            r#"spec.clusterIPs[0]: Invalid value: "None": may not be set to 'None' for NodePort services"#
        ]
    );
    assert_eq!(
        msg(
            json!({"clusterIP": "10.0.0.10", "clusterIPs": ["10.0.0.11"], "ports": [{"port": 80}]})
        ),
        vec![
            r#"spec.clusterIPs: Invalid value: ["10.0.0.11"]: first value must match `clusterIP`"#
        ]
    );
    assert_eq!(
        msg(json!({"ipFamilyPolicy": "RequireDualStack", "ports": [{"port": 80}]})),
        vec![
            r#"spec.ipFamilyPolicy: Invalid value: "RequireDualStack": this cluster is not configured for dual-stack services"#
        ]
    );
    assert_eq!(
        msg(json!({"clusterIP": "fd00::10", "ports": [{"port": 80}]})),
        vec![
            r#"spec.clusterIPs[0]: Invalid value: ["fd00::10"]: IPv6 is not configured on this cluster"#
        ]
    );
    assert_eq!(
        msg(json!({"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 0}}, "ports": [{"port": 80}]})),
        vec!["spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 0: must be greater than 0 and less than 86400"]
    );
    assert_eq!(
        msg(json!({"loadBalancerSourceRanges": ["10.0.0.0/8"], "ports": [{"port": 80}]})),
        vec!["spec.LoadBalancerSourceRanges: Forbidden: may only be used when `type` is 'LoadBalancer'"]
    );
    assert_eq!(
        msg(json!({"externalIPs": ["127.0.0.1"], "ports": [{"port": 80}]})),
        vec![
            r#"spec.externalIPs[0]: Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)"#
        ]
    );
    assert_eq!(
        msg(json!({"type": "ExternalName"})),
        vec!["spec.externalName: Required value"]
    );
    assert_eq!(
        msg(json!({"ports": [{"port": 80, "targetPort": "8080"}]})),
        vec![
            r#"spec.ports[0].targetPort: Invalid value: "8080": must contain at least one letter (a-z)"#
        ]
    );
}
