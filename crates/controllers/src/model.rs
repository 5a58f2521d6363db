//! Slim projections of the objects the EndpointSlice controller reads. Keeping only what endpoints are made
//! of (not whole Pods) is what lets one controller hold 100,000 pods in tens of megabytes.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::slimpod::{SlimContainer, SlimPod};

/// Node label holding the zone (`v1.LabelTopologyZone`).
pub const LABEL_TOPOLOGY_ZONE: &str = "topology.kubernetes.io/zone";

/// A named container port; only named ports matter, numbers are used as given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedPort {
    pub name: String,
    pub protocol: String,
    pub port: i32,
}

/// What of a Pod decides its endpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodInfo {
    /// Shared with the cache's indexes (and, for namespace and node, with every pod naming them).
    pub namespace: Arc<str>,
    pub name: Arc<str>,
    pub uid: String,
    /// Shared between pods with identical labels (the cache interns them): pods of one ReplicaSet carry
    /// the same set, and a map per pod would be the largest part of the projection.
    pub labels: Arc<BTreeMap<String, String>>,
    /// From `status.podIPs` (or `status.podIP` when the list is missing), in status order.
    pub ips: Vec<IpAddr>,
    pub ready: bool,
    /// `metadata.deletionTimestamp` is set.
    pub terminating: bool,
    /// Phase Succeeded or Failed.
    pub terminal: bool,
    pub node_name: Arc<str>,
    pub hostname: String,
    pub subdomain: String,
    /// Named ports of the containers, then of sidecar init containers (restartPolicy Always), as upstream's
    /// FindPort searches them.
    pub ports: Vec<NamedPort>,
}

fn named_ports<'a>(containers: impl Iterator<Item = &'a SlimContainer>, out: &mut Vec<NamedPort>) {
    for c in containers {
        for p in c.ports.iter().flatten() {
            if let Some(name) = p.name.as_ref().filter(|n| !n.is_empty()) {
                out.push(NamedPort {
                    name: name.clone(),
                    protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                    port: p.container_port,
                });
            }
        }
    }
}

/// Parses an IP as Go's ParseIPSloppy + String() would print it: IPv4-mapped IPv6 counts as IPv4.
fn parse_ip(s: &str) -> Option<IpAddr> {
    let ip: IpAddr = s.trim().parse().ok()?;
    Some(match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    })
}

impl PodInfo {
    /// The projection of a Pod; `None` when it has no name or namespace.
    pub fn from_pod(pod: SlimPod) -> Option<Self> {
        let meta = pod.metadata;
        let spec = pod.spec.unwrap_or_default();
        let status = pod.status.unwrap_or_default();
        let mut ips: Vec<IpAddr> = status
            .pod_ips
            .iter()
            .flatten()
            .filter_map(|p| parse_ip(&p.ip))
            .collect();
        if ips.is_empty() {
            ips.extend(status.pod_ip.as_deref().and_then(parse_ip));
        }
        let ready = status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Ready")
            .is_some_and(|c| c.status == "True");
        let phase = status.phase.as_deref().unwrap_or_default();
        let mut ports = Vec::new();
        named_ports(spec.containers.iter().flatten(), &mut ports);
        named_ports(
            spec.init_containers
                .iter()
                .flatten()
                .filter(|c| c.restart_policy.as_deref() == Some("Always")),
            &mut ports,
        );
        Some(Self {
            namespace: meta.namespace?.into(),
            name: meta.name?.into(),
            uid: meta.uid.unwrap_or_default(),
            labels: Arc::new(meta.labels.unwrap_or_default()),
            ips,
            ready,
            terminating: meta.deletion_timestamp.is_some(),
            terminal: phase == "Succeeded" || phase == "Failed",
            node_name: spec.node_name.unwrap_or_default().into(),
            hostname: spec.hostname.unwrap_or_default(),
            subdomain: spec.subdomain.unwrap_or_default(),
            ports,
        })
    }
}

/// A Service port's target: a number, or a container port name resolved per pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetPort {
    Number(i32),
    Name(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SvcPort {
    pub name: String,
    pub protocol: String,
    pub port: i32,
    pub target: TargetPort,
    pub app_protocol: Option<String>,
}

/// What of a Service decides its endpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceInfo {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub labels: BTreeMap<String, String>,
    /// `None` for no selector. An empty selector counts as none: it does not survive a real API server's
    /// protobuf storage, where it is read back as nil.
    /// Pairs in key order. A slice, not a `BTreeMap`: a B-tree allocates a node for eleven pairs even for
    /// the one pair most selectors have, which was a third of each cached Service.
    pub selector: Option<Box<[(String, String)]>>,
    pub ports: Vec<SvcPort>,
    /// `spec.clusterIP`: "", "None" or an address.
    pub cluster_ip: String,
    pub ip_families: Vec<String>,
    pub publish_not_ready: bool,
    pub traffic_distribution: Option<String>,
    /// The topology-aware-hints annotation is set to Auto (upstream then ignores trafficDistribution).
    pub topology_hints_annotation: bool,
    pub external_name: bool,
    pub deleting: bool,
}

impl ServiceInfo {
    pub fn from_service(svc: &Service) -> Option<Self> {
        let meta = &svc.metadata;
        let spec = svc.spec.clone().unwrap_or_default();
        let ports = spec
            .ports
            .iter()
            .flatten()
            .map(|p| SvcPort {
                name: p.name.clone().unwrap_or_default(),
                protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                port: p.port,
                target: match &p.target_port {
                    // As in Go, a string target is a port name even when it looks numeric.
                    Some(IntOrString::String(s)) => TargetPort::Name(s.clone()),
                    Some(IntOrString::Int(n)) => TargetPort::Number(*n),
                    // The API server defaults targetPort to port.
                    None => TargetPort::Number(p.port),
                },
                app_protocol: p.app_protocol.clone(),
            })
            .collect();
        let annotations = meta.annotations.clone().unwrap_or_default();
        let hints = annotations
            .get("service.kubernetes.io/topology-aware-hints")
            .or_else(|| annotations.get("service.kubernetes.io/topology-mode"))
            .is_some_and(|v| v == "Auto" || v == "auto");
        Some(Self {
            namespace: meta.namespace.clone()?,
            name: meta.name.clone()?,
            uid: meta.uid.clone().unwrap_or_default(),
            labels: meta.labels.clone().unwrap_or_default(),
            selector: spec
                .selector
                .filter(|s| !s.is_empty())
                .map(|s| s.into_iter().collect()),
            ports,
            cluster_ip: spec.cluster_ip.unwrap_or_default(),
            ip_families: spec.ip_families.unwrap_or_default(),
            publish_not_ready: spec.publish_not_ready_addresses.unwrap_or(false),
            traffic_distribution: spec.traffic_distribution,
            topology_hints_annotation: hints,
            external_name: spec.type_.as_deref() == Some("ExternalName"),
            deleting: meta.deletion_timestamp.is_some(),
        })
    }

    /// Whether the selector matches these labels (a missing selector matches nothing).
    pub fn selects(&self, labels: &BTreeMap<String, String>) -> bool {
        self.selector
            .as_ref()
            .is_some_and(|sel| sel.iter().all(|(k, v)| labels.get(k) == Some(v)))
    }

    /// ClusterIP is neither "" nor "None" (upstream `isServiceIPSet`).
    pub fn ip_set(&self) -> bool {
        !self.cluster_ip.is_empty() && self.cluster_ip != "None"
    }

    pub fn headless(&self) -> bool {
        self.cluster_ip == "None"
    }
}

/// A node's zone, if it has one; only nodes' existence and zone matter to endpoints.
pub fn node_zone(node: &Node) -> Option<String> {
    node.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(LABEL_TOPOLOGY_ZONE))
        .filter(|z| !z.is_empty())
        .cloned()
}
