//! The manifests in `deploy/` (for running svcplane's agent and DNS on an existing cluster) are well-formed
//! Kubernetes objects, field for field (each document survives a round trip through its k8s-openapi type,
//! so a misspelled field fails), and every svcplane container's arguments are accepted by the binary.

use std::path::PathBuf;
use std::process::Command;

use serde::Deserialize;
use serde_json::Value;

fn deploy_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
    let mut out = Vec::new();
    for sub in [dir.clone(), dir.join("crds")] {
        for e in std::fs::read_dir(&sub).expect("deploy/").flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "yaml") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The first path where two documents differ (numbers compare by value: 0 and 0.0 are the same).
fn first_difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            (x.as_f64() != y.as_f64()).then(|| path.to_string())
        }
        (Value::Object(x), Value::Object(y)) => {
            x.keys()
                .chain(y.keys())
                .find_map(|k| match (x.get(k), y.get(k)) {
                    (Some(u), Some(v)) => first_difference(u, v, &format!("{path}.{k}")),
                    _ => Some(format!("{path}.{k}")),
                })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (u, v))| first_difference(u, v, &format!("{path}[{i}]"))),
        _ => (a != b).then(|| path.to_string()),
    }
}

fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(doc: &Value) -> Value {
    let typed: T = serde_json::from_value(doc.clone()).expect("typed");
    serde_json::to_value(typed).expect("serialize")
}

#[test]
fn deploy_manifests_are_exact_objects_and_their_arguments_parse() {
    use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
    use k8s_openapi::api::core::v1::ServiceAccount;
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let files = deploy_files();
    assert!(files.len() >= 4, "{files:?}");
    let mut kinds = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read");
        for de in serde_yaml::Deserializer::from_str(&text) {
            let doc = Value::deserialize(de).expect("yaml");
            if doc.is_null() {
                continue;
            }
            let kind = doc["kind"].as_str().unwrap_or_default().to_string();
            let back = match kind.as_str() {
                "DaemonSet" => round_trip::<DaemonSet>(&doc),
                "Deployment" => round_trip::<Deployment>(&doc),
                "ServiceAccount" => round_trip::<ServiceAccount>(&doc),
                "ClusterRole" => round_trip::<ClusterRole>(&doc),
                "ClusterRoleBinding" => round_trip::<ClusterRoleBinding>(&doc),
                "Role" => round_trip::<Role>(&doc),
                "RoleBinding" => round_trip::<RoleBinding>(&doc),
                "CustomResourceDefinition" => round_trip::<CustomResourceDefinition>(&doc),
                other => panic!("{}: unexpected kind {other:?}", file.display()),
            };
            if let Some(at) = first_difference(&doc, &back, "") {
                panic!(
                    "{}: {kind}: field {at} is not one its type knows",
                    file.display()
                );
            }
            for c in doc
                .pointer("/spec/template/spec/containers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let args: Vec<String> = c["args"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|a| a.as_str())
                    .map(|a| a.replace("$(NODE_NAME)", "node-1"))
                    .collect();
                // clap validates every argument before it reaches the trailing --help.
                let out = Command::new(env!("CARGO_BIN_EXE_svcplane"))
                    .args(&args)
                    .arg("--help")
                    .output()
                    .expect("svcplane");
                assert!(
                    out.status.success(),
                    "{}: {args:?}: {}",
                    file.display(),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            kinds.push(kind);
        }
    }
    for want in [
        "DaemonSet",
        "Deployment",
        "ClusterRole",
        "CustomResourceDefinition",
    ] {
        assert!(
            kinds.iter().any(|k| k == want),
            "no {want} in deploy/: {kinds:?}"
        );
    }
}
