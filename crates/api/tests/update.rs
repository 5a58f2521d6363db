//! Update and status-update rules.

mod common;

use api::service::default_service_status_update;
use api::validate_service_status_update;
use common::{dual, pairs, stored, svc_json, update_errors, v4};
use serde_json::json;

fn base_old() -> k8s_openapi::api::core::v1::Service {
    stored(
        svc_json(json!({"selector": {"app": "web"}, "ports": [{"port": 80}]})),
        &v4(),
        &["10.0.0.10"],
        &[],
    )
}

fn with_rv(mut manifest: serde_json::Value) -> serde_json::Value {
    manifest["metadata"]["resourceVersion"] = json!("1");
    manifest["metadata"]["uid"] = json!("uid-1");
    manifest
}

#[test]
fn resubmitting_the_manifest_is_valid() {
    let errs = update_errors(
        with_rv(svc_json(
            json!({"selector": {"app": "web"}, "ports": [{"port": 80}]}),
        )),
        &base_old(),
        &v4(),
    );
    assert!(errs.is_empty(), "{errs:?}");
}

#[test]
fn cluster_ip_may_not_change() {
    let errs = update_errors(
        with_rv(svc_json(
            json!({"clusterIP": "10.0.0.11", "ports": [{"port": 80}]}),
        )),
        &base_old(),
        &v4(),
    );
    assert_eq!(
        pairs(&errs),
        vec![("spec.clusterIPs[0]".to_string(), "FieldValueInvalid")]
    );
    assert_eq!(
        errs[0].to_string(),
        r#"spec.clusterIPs[0]: Invalid value: ["10.0.0.11"]: may not change once set"#
    );
}

#[test]
fn resource_version_is_required() {
    let mut manifest = svc_json(json!({"ports": [{"port": 80}]}));
    manifest["metadata"]["uid"] = json!("uid-1");
    let errs = update_errors(manifest, &base_old(), &v4());
    assert_eq!(errs.len(), 1);
    assert_eq!(
        errs[0].to_string(),
        r#"metadata.resourceVersion: Invalid value: "": must be specified for an update"#
    );
}

#[test]
fn name_and_uid_are_immutable() {
    let mut manifest = with_rv(svc_json(json!({"ports": [{"port": 80}]})));
    manifest["metadata"]["name"] = json!("other");
    manifest["metadata"]["uid"] = json!("uid-2");
    let errs = update_errors(manifest, &base_old(), &v4());
    let got: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        got,
        vec![
            r#"metadata.name: Invalid value: "other": field is immutable"#,
            r#"metadata.uid: Invalid value: "uid-2": field is immutable"#,
        ]
    );
}

#[test]
fn health_check_node_port_is_immutable() {
    let lb =
        json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "ports": [{"port": 80}]});
    let mut old = stored(svc_json(lb), &v4(), &["10.0.0.10"], &[30080]);
    old.spec.as_mut().unwrap().health_check_node_port = Some(31000);
    let errs = update_errors(
        with_rv(svc_json(
            json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local",
                                "healthCheckNodePort": 31001, "ports": [{"port": 80}]}),
        )),
        &old,
        &v4(),
    );
    assert_eq!(
        pairs(&errs),
        vec![(
            "spec.healthCheckNodePort".to_string(),
            "FieldValueForbidden"
        )]
    );
    assert_eq!(errs[0].message(), "Forbidden: field is immutable");
}

#[test]
fn load_balancer_class_is_immutable() {
    let lb = json!({"type": "LoadBalancer", "loadBalancerClass": "example.com/a", "ports": [{"port": 80}]});
    let old = stored(svc_json(lb), &v4(), &["10.0.0.10"], &[30080]);
    let errs = update_errors(
        with_rv(svc_json(
            json!({"type": "LoadBalancer", "loadBalancerClass": "example.com/b", "ports": [{"port": 80}]}),
        )),
        &old,
        &v4(),
    );
    assert_eq!(errs.len(), 1);
    assert_eq!(
        errs[0].to_string(),
        r#"spec.loadBalancerClass: Invalid value: "example.com/b": may not change once set"#
    );
}

#[test]
fn releasing_secondary_ip_needs_single_stack() {
    let ds = json!({"ipFamilyPolicy": "RequireDualStack", "ports": [{"port": 80}]});
    let old = stored(svc_json(ds), &dual(), &["10.0.0.10", "fd00::10"], &[]);
    let errs = update_errors(
        with_rv(svc_json(
            json!({"clusterIP": "10.0.0.10", "clusterIPs": ["10.0.0.10"], "ports": [{"port": 80}]}),
        )),
        &old,
        &dual(),
    );
    let got: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        got,
        vec![
            r#"spec.ipFamilyPolicy: Invalid value: "RequireDualStack": must be 'SingleStack' to release the secondary cluster IP"#
        ]
    );
}

#[test]
fn upgrade_to_dual_stack_is_allowed() {
    let old = stored(
        svc_json(json!({"ports": [{"port": 80}]})),
        &dual(),
        &["10.0.0.10"],
        &[],
    );
    let errs = update_errors(
        with_rv(svc_json(
            json!({"ipFamilyPolicy": "RequireDualStack", "ports": [{"port": 80}]}),
        )),
        &old,
        &dual(),
    );
    assert!(errs.is_empty(), "{errs:?}");
}

#[test]
fn status_update_rules() {
    let lb = stored(
        svc_json(json!({"type": "LoadBalancer", "ports": [{"port": 80}]})),
        &v4(),
        &["10.0.0.10"],
        &[30080],
    );
    let status_of = |ingress: serde_json::Value, old: &k8s_openapi::api::core::v1::Service| {
        let mut new = old.clone();
        new.status =
            Some(serde_json::from_value(json!({"loadBalancer": {"ingress": ingress}})).unwrap());
        default_service_status_update(&mut new, old);
        validate_service_status_update(&new, old)
    };

    assert!(
        status_of(json!([{"ip": "192.0.2.1"}]), &lb).is_empty(),
        "ipMode defaults to VIP"
    );
    assert!(status_of(json!([{"hostname": "lb.example.com"}]), &lb).is_empty());

    let errs = status_of(json!([{"ip": "192.0.2.300", "ipMode": "VIP"}]), &lb);
    assert_eq!(
        pairs(&errs),
        vec![(
            "status.loadBalancer.ingress[0].ip".to_string(),
            "FieldValueInvalid"
        )]
    );

    let errs = status_of(json!([{"ip": "192.0.2.1", "ipMode": "Magic"}]), &lb);
    assert_eq!(
        errs[0].to_string(),
        r#"status.loadBalancer.ingress[0].ipMode: Unsupported value: "Magic": supported values: "Proxy", "VIP""#
    );

    let errs = status_of(
        json!([{"hostname": "lb.example.com", "ipMode": "VIP"}]),
        &lb,
    );
    assert_eq!(
        pairs(&errs),
        vec![(
            "status.loadBalancer.ingress[0].ipMode".to_string(),
            "FieldValueForbidden"
        )]
    );

    let errs = status_of(json!([{"hostname": "192.0.2.1"}]), &lb);
    assert_eq!(
        errs.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
        vec![
            r#"status.loadBalancer.ingress[0].hostname: Invalid value: "192.0.2.1": must be a DNS name, not an IP address"#
        ]
    );

    let cip = base_old();
    let errs = status_of(json!([{"ip": "192.0.2.1", "ipMode": "VIP"}]), &cip);
    assert_eq!(
        errs.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
        vec!["status.loadBalancer.ingress: Forbidden: may only be used when `spec.type` is 'LoadBalancer'"]
    );
}
