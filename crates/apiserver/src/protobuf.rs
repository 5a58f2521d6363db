//! Request bodies in Kubernetes' protobuf encoding (`application/vnd.kubernetes.protobuf`), which
//! client-go's typed clients send for built-in kinds (`kubectl create namespace`, `kubectl create
//! service ...`). Decoded with k8s-pb's generated messages and turned into the same JSON the rest of
//! the server handles. Responses are always JSON: clients that ask for protobuf accept JSON too.

use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use prost::Message;
use serde_json::{json, Map, Value};

const MAGIC: &[u8] = b"k8s\x00";

#[derive(Debug, thiserror::Error)]
pub enum ProtobufError {
    #[error("protobuf body does not start with the Kubernetes magic number")]
    Magic,
    #[error("invalid protobuf body: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("protobuf bodies of kind {0:?} are not supported; send application/json")]
    Kind(String),
    /// A field this decoder does not translate was set: refusing beats dropping it silently.
    #[error("protobuf {0} bodies with field {1} are not supported; send application/json")]
    Field(&'static str, &'static str),
}

/// A JSON object under construction that skips absent and empty values, as Go's omitempty does.
#[derive(Default)]
struct Obj(Map<String, Value>);

impl Obj {
    fn s(mut self, k: &str, v: &Option<String>) -> Self {
        if let Some(v) = v {
            self.0.insert(k.into(), json!(v));
        }
        self
    }
    fn i(mut self, k: &str, v: Option<impl Into<i64>>) -> Self {
        if let Some(v) = v {
            self.0.insert(k.into(), json!(v.into()));
        }
        self
    }
    fn b(mut self, k: &str, v: Option<bool>) -> Self {
        if let Some(v) = v {
            self.0.insert(k.into(), json!(v));
        }
        self
    }
    fn list(mut self, k: &str, v: &[String]) -> Self {
        if !v.is_empty() {
            self.0.insert(k.into(), json!(v));
        }
        self
    }
    fn map(mut self, k: &str, v: &std::collections::BTreeMap<String, String>) -> Self {
        if !v.is_empty() {
            self.0.insert(k.into(), json!(v));
        }
        self
    }
    fn v(mut self, k: &str, v: Option<Value>) -> Self {
        if let Some(v) = v.filter(|v| !v.is_null()) {
            self.0.insert(k.into(), v);
        }
        self
    }
    fn done(self) -> Value {
        Value::Object(self.0)
    }
}

fn time(t: &Option<meta::Time>) -> Option<Value> {
    let t = t.as_ref()?;
    let dt = chrono::DateTime::from_timestamp(t.seconds.unwrap_or(0), 0)?;
    Some(json!(dt.format("%Y-%m-%dT%H:%M:%SZ").to_string()))
}

fn object_meta(m: &Option<meta::ObjectMeta>) -> Value {
    let Some(m) = m else { return json!({}) };
    let owners: Vec<Value> = m
        .owner_references
        .iter()
        .map(|o| {
            Obj::default()
                .s("apiVersion", &o.api_version)
                .s("kind", &o.kind)
                .s("name", &o.name)
                .s("uid", &o.uid)
                .b("controller", o.controller)
                .b("blockOwnerDeletion", o.block_owner_deletion)
                .done()
        })
        .collect();
    Obj::default()
        .s("name", &m.name)
        .s("generateName", &m.generate_name)
        .s("namespace", &m.namespace)
        .s("uid", &m.uid)
        .s("resourceVersion", &m.resource_version)
        .i("generation", m.generation)
        .v("creationTimestamp", time(&m.creation_timestamp))
        .map("labels", &m.labels)
        .map("annotations", &m.annotations)
        .v(
            "ownerReferences",
            (!owners.is_empty()).then(|| json!(owners)),
        )
        .list("finalizers", &m.finalizers)
        .done()
}

fn int_or_string(
    v: &Option<k8s_pb::apimachinery::pkg::util::intstr::IntOrString>,
) -> Option<Value> {
    let v = v.as_ref()?;
    Some(match v.r#type {
        Some(1) => json!(v.str_val.clone().unwrap_or_default()),
        _ => json!(v.int_val.unwrap_or(0)),
    })
}

fn conditions(c: &[meta::Condition]) -> Option<Value> {
    (!c.is_empty()).then(|| {
        json!(c
            .iter()
            .map(|c| Obj::default()
                .s("type", &c.r#type)
                .s("status", &c.status)
                .i("observedGeneration", c.observed_generation)
                .v("lastTransitionTime", time(&c.last_transition_time))
                .s("reason", &c.reason)
                .s("message", &c.message)
                .done())
            .collect::<Vec<_>>())
    })
}

fn service(s: core::Service) -> Value {
    let spec = s.spec.map(|p| {
        let ports: Vec<Value> = p
            .ports
            .iter()
            .map(|sp| {
                Obj::default()
                    .s("name", &sp.name)
                    .s("protocol", &sp.protocol)
                    .s("appProtocol", &sp.app_protocol)
                    .i("port", sp.port)
                    .v("targetPort", int_or_string(&sp.target_port))
                    .i("nodePort", sp.node_port)
                    .done()
            })
            .collect();
        let affinity = p.session_affinity_config.as_ref().map(|c| {
            Obj::default()
                .v(
                    "clientIP",
                    c.client_ip.as_ref().map(|ci| {
                        Obj::default()
                            .i("timeoutSeconds", ci.timeout_seconds)
                            .done()
                    }),
                )
                .done()
        });
        Obj::default()
            .v("ports", (!ports.is_empty()).then(|| json!(ports)))
            .map("selector", &p.selector)
            .s("clusterIP", &p.cluster_ip)
            .list("clusterIPs", &p.cluster_ips)
            .s("type", &p.r#type)
            .list("externalIPs", &p.external_ips)
            .s("sessionAffinity", &p.session_affinity)
            .s("loadBalancerIP", &p.load_balancer_ip)
            .list("loadBalancerSourceRanges", &p.load_balancer_source_ranges)
            .s("externalName", &p.external_name)
            .s("externalTrafficPolicy", &p.external_traffic_policy)
            .i("healthCheckNodePort", p.health_check_node_port)
            .b("publishNotReadyAddresses", p.publish_not_ready_addresses)
            .v("sessionAffinityConfig", affinity)
            .list("ipFamilies", &p.ip_families)
            .s("ipFamilyPolicy", &p.ip_family_policy)
            .b(
                "allocateLoadBalancerNodePorts",
                p.allocate_load_balancer_node_ports,
            )
            .s("loadBalancerClass", &p.load_balancer_class)
            .s("internalTrafficPolicy", &p.internal_traffic_policy)
            .s("trafficDistribution", &p.traffic_distribution)
            .done()
    });
    let status = s.status.map(|st| {
        let ingress: Vec<Value> = st
            .load_balancer
            .iter()
            .flat_map(|lb| lb.ingress.iter())
            .map(|i| {
                let ports: Vec<Value> = i
                    .ports
                    .iter()
                    .map(|p| {
                        Obj::default()
                            .i("port", p.port)
                            .s("protocol", &p.protocol)
                            .s("error", &p.error)
                            .done()
                    })
                    .collect();
                Obj::default()
                    .s("ip", &i.ip)
                    .s("hostname", &i.hostname)
                    .s("ipMode", &i.ip_mode)
                    .v("ports", (!ports.is_empty()).then(|| json!(ports)))
                    .done()
            })
            .collect();
        Obj::default()
            .v(
                "loadBalancer",
                Some(
                    Obj::default()
                        .v("ingress", (!ingress.is_empty()).then(|| json!(ingress)))
                        .done(),
                ),
            )
            .v("conditions", conditions(&st.conditions))
            .done()
    });
    Obj::default()
        .v("apiVersion", Some(json!("v1")))
        .v("kind", Some(json!("Service")))
        .v("metadata", Some(object_meta(&s.metadata)))
        .v("spec", spec)
        .v("status", status)
        .done()
}

fn namespace(n: core::Namespace) -> Value {
    Obj::default()
        .v("apiVersion", Some(json!("v1")))
        .v("kind", Some(json!("Namespace")))
        .v("metadata", Some(object_meta(&n.metadata)))
        .v(
            "spec",
            n.spec
                .map(|s| Obj::default().list("finalizers", &s.finalizers).done()),
        )
        .v(
            "status",
            n.status.map(|s| Obj::default().s("phase", &s.phase).done()),
        )
        .done()
}

fn quantities(
    m: &std::collections::BTreeMap<String, k8s_pb::apimachinery::pkg::api::resource::Quantity>,
) -> Option<Value> {
    (!m.is_empty()).then(|| {
        Value::Object(
            m.iter()
                .map(|(k, q)| (k.clone(), json!(q.string.clone().unwrap_or_default())))
                .collect(),
        )
    })
}

/// One container, with the fields `kubectl run` and typical typed clients set; anything else is refused.
fn container(c: &core::Container) -> Result<Value, ProtobufError> {
    let mut rest = c.clone();
    rest.name = None;
    rest.image = None;
    rest.command.clear();
    rest.args.clear();
    rest.working_dir = None;
    rest.ports.clear();
    rest.env.clear();
    rest.resources = None;
    rest.image_pull_policy = None;
    rest.stdin = None;
    rest.stdin_once = None;
    rest.tty = None;
    rest.termination_message_path = None;
    rest.termination_message_policy = None;
    if rest != core::Container::default() {
        return Err(ProtobufError::Field("Pod", "spec.containers[*] (beyond name, image, command, args, workingDir, ports, env values, resources, imagePullPolicy, stdin, tty)"));
    }
    let ports: Vec<Value> = c
        .ports
        .iter()
        .map(|p| {
            Obj::default()
                .s("name", &p.name)
                .i("containerPort", p.container_port)
                .s("protocol", &p.protocol)
                .i("hostPort", p.host_port)
                .s("hostIP", &p.host_ip)
                .done()
        })
        .collect();
    let mut env = Vec::new();
    for e in &c.env {
        if e.value_from.is_some() {
            return Err(ProtobufError::Field(
                "Pod",
                "spec.containers[*].env[*].valueFrom",
            ));
        }
        env.push(
            Obj::default()
                .s("name", &e.name)
                .s("value", &e.value)
                .done(),
        );
    }
    let resources = c.resources.as_ref().map(|r| {
        Obj::default()
            .v("limits", quantities(&r.limits))
            .v("requests", quantities(&r.requests))
            .done()
    });
    if c.resources.as_ref().is_some_and(|r| !r.claims.is_empty()) {
        return Err(ProtobufError::Field(
            "Pod",
            "spec.containers[*].resources.claims",
        ));
    }
    Ok(Obj::default()
        .s("name", &c.name)
        .s("image", &c.image)
        .list("command", &c.command)
        .list("args", &c.args)
        .s("workingDir", &c.working_dir)
        .v("ports", (!ports.is_empty()).then(|| json!(ports)))
        .v("env", (!env.is_empty()).then(|| json!(env)))
        .v("resources", resources)
        .s("terminationMessagePath", &c.termination_message_path)
        .s("terminationMessagePolicy", &c.termination_message_policy)
        .s("imagePullPolicy", &c.image_pull_policy)
        .b("stdin", c.stdin)
        .b("stdinOnce", c.stdin_once)
        .b("tty", c.tty)
        .done())
}

/// A Pod as `kubectl run` sends it (typed client, protobuf). Status is ignored on create, as the API server
/// ignores it; spec fields outside the translated set are refused rather than dropped.
fn pod(p: core::Pod) -> Result<Value, ProtobufError> {
    let spec = match &p.spec {
        None => None,
        Some(spec) => {
            let mut rest = spec.clone();
            rest.containers.clear();
            rest.restart_policy = None;
            rest.dns_policy = None;
            rest.node_name = None;
            rest.node_selector.clear();
            rest.hostname = None;
            rest.subdomain = None;
            rest.service_account_name = None;
            rest.termination_grace_period_seconds = None;
            rest.scheduler_name = None;
            rest.enable_service_links = None;
            if rest != core::PodSpec::default() {
                return Err(ProtobufError::Field("Pod", "spec (beyond containers, restartPolicy, dnsPolicy, nodeName, nodeSelector, hostname, subdomain, serviceAccountName, terminationGracePeriodSeconds)"));
            }
            let containers = spec
                .containers
                .iter()
                .map(container)
                .collect::<Result<Vec<_>, _>>()?;
            Some(
                Obj::default()
                    .v("containers", Some(json!(containers)))
                    .s("restartPolicy", &spec.restart_policy)
                    .i(
                        "terminationGracePeriodSeconds",
                        spec.termination_grace_period_seconds,
                    )
                    .s("dnsPolicy", &spec.dns_policy)
                    .map("nodeSelector", &spec.node_selector)
                    .s("serviceAccountName", &spec.service_account_name)
                    .s("nodeName", &spec.node_name)
                    .s("hostname", &spec.hostname)
                    .s("subdomain", &spec.subdomain)
                    .s("schedulerName", &spec.scheduler_name)
                    .b("enableServiceLinks", spec.enable_service_links)
                    .done(),
            )
        }
    };
    Ok(Obj::default()
        .v("apiVersion", Some(json!("v1")))
        .v("kind", Some(json!("Pod")))
        .v("metadata", Some(object_meta(&p.metadata)))
        .v("spec", spec)
        .done())
}

/// Decodes a protobuf request body into the JSON form of the object.
pub fn decode(body: &[u8]) -> Result<Value, ProtobufError> {
    let raw = body.strip_prefix(MAGIC).ok_or(ProtobufError::Magic)?;
    let unknown = k8s_pb::apimachinery::pkg::runtime::Unknown::decode(raw)?;
    let kind = unknown
        .type_meta
        .as_ref()
        .and_then(|t| t.kind.clone())
        .unwrap_or_default();
    let inner = unknown.raw.unwrap_or_default();
    match kind.as_str() {
        "Service" => Ok(service(core::Service::decode(inner.as_slice())?)),
        "Namespace" => Ok(namespace(core::Namespace::decode(inner.as_slice())?)),
        "Pod" => pod(core::Pod::decode(inner.as_slice())?),
        other => Err(ProtobufError::Kind(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(kind: &str, raw: Vec<u8>) -> Vec<u8> {
        let u = k8s_pb::apimachinery::pkg::runtime::Unknown {
            type_meta: Some(k8s_pb::apimachinery::pkg::runtime::TypeMeta {
                api_version: Some("v1".into()),
                kind: Some(kind.into()),
            }),
            raw: Some(raw),
            content_encoding: Some(String::new()),
            content_type: Some(String::new()),
        };
        let mut out = MAGIC.to_vec();
        out.extend(u.encode_to_vec());
        out
    }

    #[test]
    fn decodes_a_service_as_kubectl_create_sends_it() {
        let svc = core::Service {
            metadata: Some(meta::ObjectMeta {
                name: Some("web".into()),
                labels: [("app".to_string(), "web".to_string())].into(),
                ..Default::default()
            }),
            spec: Some(core::ServiceSpec {
                ports: vec![core::ServicePort {
                    name: Some("80-8080".into()),
                    protocol: Some("TCP".into()),
                    port: Some(80),
                    target_port: Some(k8s_pb::apimachinery::pkg::util::intstr::IntOrString {
                        r#type: Some(0),
                        int_val: Some(8080),
                        str_val: None,
                    }),
                    ..Default::default()
                }],
                r#type: Some("NodePort".into()),
                ..Default::default()
            }),
            status: None,
        };
        let v = decode(&envelope("Service", svc.encode_to_vec())).unwrap();
        assert_eq!(
            v,
            json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "web", "labels": {"app": "web"}},
                "spec": {"ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}], "type": "NodePort"}})
        );
    }

    #[test]
    fn rejects_garbage_and_unsupported_kinds() {
        assert!(matches!(decode(b"nope"), Err(ProtobufError::Magic)));
        assert!(decode(b"k8s\x00\xff\xff\xff").is_err());
        assert!(matches!(
            decode(&envelope("Deployment", vec![])),
            Err(ProtobufError::Kind(_))
        ));
    }

    #[test]
    fn decodes_a_pod_as_kubectl_run_sends_it_and_refuses_what_it_cannot_translate() {
        let mut pod = core::Pod {
            metadata: Some(meta::ObjectMeta {
                name: Some("web".into()),
                labels: [("run".to_string(), "web".to_string())].into(),
                ..Default::default()
            }),
            spec: Some(core::PodSpec {
                containers: vec![core::Container {
                    name: Some("web".into()),
                    image: Some("nginx".into()),
                    ports: vec![core::ContainerPort {
                        container_port: Some(8080),
                        ..Default::default()
                    }],
                    resources: Some(Default::default()),
                    ..Default::default()
                }],
                restart_policy: Some("Always".into()),
                dns_policy: Some("ClusterFirst".into()),
                ..Default::default()
            }),
            status: Some(Default::default()),
        };
        let v = decode(&envelope("Pod", pod.encode_to_vec())).unwrap();
        assert_eq!(
            v,
            json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "web", "labels": {"run": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 8080}], "resources": {}}],
                         "restartPolicy": "Always", "dnsPolicy": "ClusterFirst"}})
        );
        if let Some(spec) = pod.spec.as_mut() {
            spec.host_network = Some(true);
        }
        assert!(matches!(
            decode(&envelope("Pod", pod.encode_to_vec())),
            Err(ProtobufError::Field("Pod", _))
        ));
    }
}
