//! Pods as the EndpointSlice controller decodes them: only the fields endpoints are made of. A full `Pod`
//! is dozens of allocations (containers, images, env, volumes, managedFields) built and dropped again for
//! each of 100,000 pods in a list; serde skips, without building, every field this type does not name.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde::{Deserialize, Deserializer};

/// A Pod with only what [`crate::model::PodInfo`] is made of; watched like the real type (same path).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct SlimPod {
    #[serde(default, deserialize_with = "slim_meta")]
    pub metadata: ObjectMeta,
    pub spec: Option<SlimPodSpec>,
    pub status: Option<SlimPodStatus>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SlimPodSpec {
    pub node_name: Option<String>,
    pub hostname: Option<String>,
    pub subdomain: Option<String>,
    pub containers: Option<Vec<SlimContainer>>,
    pub init_containers: Option<Vec<SlimContainer>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SlimContainer {
    pub restart_policy: Option<String>,
    pub ports: Option<Vec<SlimContainerPort>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SlimContainerPort {
    pub name: Option<String>,
    pub protocol: Option<String>,
    pub container_port: i32,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SlimPodStatus {
    #[serde(rename = "podIPs")]
    pub pod_ips: Option<Vec<SlimPodIp>>,
    #[serde(rename = "podIP")]
    pub pod_ip: Option<String>,
    pub phase: Option<String>,
    pub conditions: Option<Vec<SlimCondition>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct SlimPodIp {
    pub ip: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct SlimCondition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
}

/// The metadata fields endpoints and the watch need; annotations, ownerReferences and managedFields
/// (often the largest part of a Pod) are skipped.
fn slim_meta<'de, D: Deserializer<'de>>(d: D) -> Result<ObjectMeta, D::Error> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Fields {
        name: Option<String>,
        namespace: Option<String>,
        uid: Option<String>,
        resource_version: Option<String>,
        labels: Option<BTreeMap<String, String>>,
        deletion_timestamp: Option<Time>,
    }
    let f = Option::<Fields>::deserialize(d)?;
    Ok(f.map(|f| ObjectMeta {
        name: f.name,
        namespace: f.namespace,
        uid: f.uid,
        resource_version: f.resource_version,
        labels: f.labels,
        deletion_timestamp: f.deletion_timestamp,
        ..Default::default()
    })
    .unwrap_or_default())
}

impl kube::Resource for SlimPod {
    type DynamicType = ();
    type Scope = k8s_openapi::NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "Pod".into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        "".into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        "v1".into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "pods".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::json;

    #[test]
    fn decodes_a_full_pod_and_keeps_only_what_endpoints_need() {
        let full = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-1", "namespace": "default", "uid": "u1", "resourceVersion": "9",
                "labels": {"app": "web"}, "annotations": {"big": "x"}, "deletionTimestamp": "2026-01-01T00:00:00Z",
                "managedFields": [{"manager": "kubectl"}], "ownerReferences": [{"apiVersion": "v1", "kind": "X", "name": "o", "uid": "o1"}]},
            "spec": {"nodeName": "n1", "hostname": "h", "subdomain": "s",
                "containers": [{"name": "c", "image": "i", "env": [{"name": "A", "value": "1"}],
                    "ports": [{"name": "http", "containerPort": 8080}]}],
                "initContainers": [{"name": "side", "image": "i", "restartPolicy": "Always",
                    "ports": [{"name": "m", "containerPort": 9090, "protocol": "UDP"}]}],
                "volumes": [{"name": "v", "emptyDir": {}}]},
            "status": {"phase": "Running", "podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}],
                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": null}],
                "containerStatuses": [{"name": "c", "ready": true}]}});
        // The real type accepts it too: the slim one reads a subset of a valid Pod.
        serde_json::from_value::<Pod>(full.clone()).unwrap();
        let p: SlimPod = serde_json::from_value(full).unwrap();
        assert_eq!(p.metadata.name.as_deref(), Some("web-1"));
        assert!(p.metadata.annotations.is_none() && p.metadata.managed_fields.is_none());
        assert!(p.metadata.deletion_timestamp.is_some());
        let spec = p.spec.unwrap();
        assert_eq!(
            spec.containers.unwrap()[0].ports.as_ref().unwrap()[0].container_port,
            8080
        );
        assert_eq!(
            spec.init_containers.unwrap()[0].restart_policy.as_deref(),
            Some("Always")
        );
        let status = p.status.unwrap();
        assert_eq!(status.pod_ips.unwrap().len(), 2);
        assert_eq!(status.conditions.unwrap()[0].type_, "Ready");
        let empty: SlimPod =
            serde_json::from_value(json!({"metadata": null, "spec": null})).unwrap();
        assert!(empty.metadata.name.is_none() && empty.spec.is_none());
    }
}
