//! JSON patch and JSON merge patch, including the statuses kube-apiserver answers on failure.

use patch::{apply_patch, PatchError, PatchType, MAX_JSON_PATCH_OPERATIONS};
use serde_json::{json, Value};

fn svc() -> Value {
    json!({
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"type": "ClusterIP", "ports": [{"port": 80}, {"port": 443}]}
    })
}

fn json_patch(original: &Value, ops: Value) -> Result<Value, PatchError> {
    apply_patch(
        "Service",
        original,
        PatchType::Json,
        ops.to_string().as_bytes(),
    )
}

fn merge_patch(original: &Value, body: &[u8]) -> Result<Value, PatchError> {
    apply_patch("Service", original, PatchType::Merge, body)
}

#[test]
fn json_patch_operations_apply_in_order() {
    let out = json_patch(
        &svc(),
        json!([
            {"op": "test", "path": "/spec/type", "value": "ClusterIP"},
            {"op": "replace", "path": "/spec/type", "value": "NodePort"},
            {"op": "add", "path": "/spec/ports/-", "value": {"port": 8080}},
            {"op": "remove", "path": "/spec/ports/0"},
            {"op": "copy", "from": "/metadata/labels", "path": "/spec/selector"},
            {"op": "move", "from": "/metadata/labels/app", "path": "/metadata/labels/name"}
        ]),
    )
    .unwrap();
    assert_eq!(
        out,
        json!({
            "metadata": {"name": "web", "labels": {"name": "web"}},
            "spec": {
                "type": "NodePort",
                "ports": [{"port": 443}, {"port": 8080}],
                "selector": {"app": "web"}
            }
        })
    );
}

#[test]
fn json_patch_failed_test_is_422() {
    let err = json_patch(
        &svc(),
        json!([{"op": "test", "path": "/spec/type", "value": "LoadBalancer"},
               {"op": "replace", "path": "/spec/type", "value": "NodePort"}]),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "testing value /spec/type failed: test failed"
    );
    let status = err.status();
    assert_eq!(status.code, 422);
    assert_eq!(status.reason, "Invalid");
    assert_eq!(
        status.message,
        "the server rejected our request due to an error in our request"
    );
}

#[test]
fn json_patch_bad_path_is_422() {
    let err = json_patch(
        &svc(),
        json!([{"op": "add", "path": "/spec/nothere/x", "value": 1}]),
    )
    .unwrap_err();
    assert!(matches!(err, PatchError::JsonPatch(_)));
    assert!(err.to_string().contains("doc is missing path"), "{err}");
    assert_eq!(err.status().code, 422);

    let err = json_patch(&svc(), json!([{"op": "remove", "path": "/spec/ports/7"}])).unwrap_err();
    assert_eq!(err.status().code, 422);
    let err = json_patch(&svc(), json!([{"op": "add", "path": "", "value": {}}])).unwrap_err();
    assert_eq!(err.status().code, 422);
}

#[test]
fn json_patch_unknown_op_is_422() {
    let err = json_patch(&svc(), json!([{"op": "frob", "path": "/a"}])).unwrap_err();
    assert_eq!(err.to_string(), "Unexpected kind: frob");
    assert_eq!(err.status().code, 422);
}

#[test]
fn json_patch_replace_of_missing_member_adds_it() {
    let out = json_patch(
        &svc(),
        json!([{"op": "replace", "path": "/spec/externalName", "value": "x.example"}]),
    )
    .unwrap();
    assert_eq!(out["spec"]["externalName"], "x.example");
}

#[test]
fn json_patch_body_must_be_a_list_of_objects() {
    let err = json_patch(&svc(), json!({"op": "add"})).unwrap_err();
    assert_eq!(
        err.to_string(),
        "json: cannot unmarshal object into Go value of type jsonpatch.Patch"
    );
    assert_eq!(err.status().code, 400);
    let err = json_patch(&svc(), json!(["add"])).unwrap_err();
    assert_eq!(err.status().code, 400);
    let err = apply_patch("Service", &svc(), PatchType::Json, b"not json").unwrap_err();
    assert_eq!(err.status().reason, "BadRequest");
}

#[test]
fn json_patch_operation_limit_is_413() {
    let ops: Vec<Value> = (0..=MAX_JSON_PATCH_OPERATIONS)
        .map(|_| json!({"op": "test", "path": "/spec/type", "value": "ClusterIP"}))
        .collect();
    let err = json_patch(&svc(), Value::Array(ops)).unwrap_err();
    let status = err.status();
    assert_eq!(status.code, 413);
    assert_eq!(
        status.message,
        "Request entity too large: The allowed maximum operations in a JSON patch is 10000, got 10001"
    );
}

#[test]
fn merge_patch_merges_objects_and_replaces_lists() {
    let out = merge_patch(
        &svc(),
        br#"{"metadata":{"labels":{"app":null,"tier":"fe"}},"spec":{"ports":[{"port":8080,"name":null}],"selector":{"app":"web","x":null}}}"#,
    )
    .unwrap();
    assert_eq!(
        out,
        json!({
            "metadata": {"name": "web", "labels": {"tier": "fe"}},
            "spec": {"type": "ClusterIP", "ports": [{"port": 8080}], "selector": {"app": "web"}}
        })
    );
}

#[test]
fn merge_patch_status_subresource_shape() {
    let original = json!({"metadata": {"name": "web"}, "status": {"loadBalancer": {}}});
    let out = merge_patch(
        &original,
        br#"{"status":{"loadBalancer":{"ingress":[{"ip":"192.0.2.10","ipMode":"VIP"}]}}}"#,
    )
    .unwrap();
    assert_eq!(
        out["status"]["loadBalancer"]["ingress"][0]["ip"],
        "192.0.2.10"
    );
}

#[test]
fn merge_patch_errors() {
    for body in [&b"{"[..], b"null", b"42", b"\"x\""] {
        let err = merge_patch(&svc(), body).unwrap_err();
        assert_eq!(err.to_string(), "Invalid JSON Patch");
        // kube-apiserver answers json-patch's ErrBadJSONPatch with 400 BadRequest.
        assert_eq!(err.status().code, 400);
        assert_eq!(err.status().reason, "BadRequest");
    }
    let err = merge_patch(&svc(), b"[1]").unwrap_err();
    assert!(matches!(err, PatchError::NotAnObject(_)));
    assert_eq!(err.status().code, 422);
}
