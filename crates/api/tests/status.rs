//! The exact 422 Status body kube-apiserver returns for invalid Services.

mod common;

use api::invalid_status;
use common::{create_errors, svc_json, v4};
use serde_json::json;

#[test]
fn one_error() {
    let errs = create_errors(
        svc_json(json!({"type": "Foo", "ports": [{"port": 80}]})),
        &v4(),
    );
    let status = invalid_status("", "Service", "web", &errs);
    assert_eq!(
        status,
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "Service \"web\" is invalid: spec.type: Unsupported value: \"Foo\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"",
            "reason": "Invalid",
            "details": {
                "name": "web",
                "kind": "Service",
                "causes": [{
                    "reason": "FieldValueNotSupported",
                    "message": "Unsupported value: \"Foo\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"",
                    "field": "spec.type"
                }]
            },
            "code": 422
        })
    );
    // Field order matters to byte-comparing clients.
    let keys: Vec<&String> = status.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "kind",
            "apiVersion",
            "metadata",
            "status",
            "message",
            "reason",
            "details",
            "code"
        ]
    );
}

#[test]
fn two_errors() {
    let errs = create_errors(svc_json(json!({"ports": [{"port": 0}]})), &v4());
    let status = invalid_status("", "Service", "web", &errs);
    assert_eq!(
        status["message"],
        "Service \"web\" is invalid: [spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive, spec.ports[0].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive]"
    );
    assert_eq!(
        status["details"]["causes"],
        json!([
            {"reason": "FieldValueInvalid", "message": "Invalid value: 0: must be between 1 and 65535, inclusive", "field": "spec.ports[0].port"},
            {"reason": "FieldValueInvalid", "message": "Invalid value: 0: must be between 1 and 65535, inclusive", "field": "spec.ports[0].targetPort"}
        ])
    );
    assert_eq!(status["code"], 422);
}

#[test]
fn bad_name_message() {
    let mut manifest = svc_json(json!({"ports": [{"port": 80}]}));
    manifest["metadata"]["name"] = json!("Web");
    let errs = create_errors(manifest, &v4());
    let status = invalid_status("", "Service", "Web", &errs);
    assert_eq!(
        status["message"],
        // v1.36 (RelaxedServiceNameValidation on): an RFC 1123 label, as kube-apiserver prints it.
        "Service \"Web\" is invalid: metadata.name: Invalid value: \"Web\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
    );
}

#[test]
fn grouped_kind_and_no_errors() {
    let status = invalid_status("networking.k8s.io", "Ingress", "x", &[]);
    assert_eq!(
        status["message"],
        "Ingress.networking.k8s.io \"x\" is invalid"
    );
    assert_eq!(
        status["details"],
        json!({"name": "x", "group": "networking.k8s.io", "kind": "Ingress"})
    );
}
