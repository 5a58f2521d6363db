//! A Service as the data plane of one family sees it (kube-proxy's `servicePortInfo`), read from the API
//! object once per change.

use std::net::IpAddr;

use ipnet::IpNet;
use k8s_openapi::api::core::v1::Service;
use tracing::warn;

use crate::config::DEFAULT_AFFINITY_TIMEOUT_SECONDS;
use crate::error::ServiceError;
use crate::types::{Family, Protocol, ServiceKey};

/// The parts of one Service that shape rules, for one family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServiceInfo {
    pub ports: Vec<ServicePortInfo>,
    /// `spec.healthCheckNodePort` when the Service needs a health check (LoadBalancer with eTP:Local).
    pub health_check_node_port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServicePortInfo {
    pub name: String,
    pub protocol: Protocol,
    pub port: u16,
    pub node_port: Option<u16>,
    pub cluster_ip: IpAddr,
    pub external_ips: Vec<IpAddr>,
    pub load_balancer_ips: Vec<IpAddr>,
    pub source_ranges: Vec<IpNet>,
    pub internal_local: bool,
    pub external_local: bool,
    /// ClientIP session affinity timeout, in seconds.
    pub affinity: Option<u32>,
}

impl ServicePortInfo {
    /// Whether anything but the ClusterIP leads to this port (kube-proxy's `ExternallyAccessible`).
    pub fn externally_accessible(&self) -> bool {
        self.node_port.is_some()
            || !self.load_balancer_ips.is_empty()
            || !self.external_ips.is_empty()
    }

    /// Whether some traffic uses Cluster-policy endpoints: ClusterIP traffic under iTP:Cluster, and any
    /// external frontend (even under eTP:Local, pods and the node itself are short-circuited to them).
    pub fn uses_cluster_endpoints(&self) -> bool {
        !self.internal_local || self.externally_accessible()
    }

    pub fn uses_local_endpoints(&self) -> bool {
        self.internal_local || (self.external_local && self.externally_accessible())
    }
}

/// Reads a Service for one family. `Ok(None)` for what kube-proxy skips: ExternalName, headless, a Service
/// without a ClusterIP of this family; also for a Service without a spec.
pub(crate) fn service_info(
    service: &Service,
    family: Family,
) -> Result<Option<ServiceInfo>, ServiceError> {
    let key = ServiceKey::new(
        service.metadata.namespace.clone().unwrap_or_default(),
        service.metadata.name.clone().unwrap_or_default(),
    );
    let Some(spec) = service.spec.as_ref() else {
        return Ok(None);
    };
    let service_type = spec.type_.as_deref().unwrap_or("ClusterIP");
    if service_type == "ExternalName" {
        return Ok(None);
    }
    let cluster_ips: Vec<&str> = match (&spec.cluster_ips, &spec.cluster_ip) {
        (Some(ips), _) if !ips.is_empty() => ips.iter().map(String::as_str).collect(),
        (_, Some(ip)) => vec![ip.as_str()],
        _ => Vec::new(),
    };
    if cluster_ips
        .first()
        .is_none_or(|ip| ip.is_empty() || *ip == "None")
    {
        return Ok(None);
    }
    let mut cluster_ip = None;
    for text in &cluster_ips {
        let ip: IpAddr = text.trim().parse().map_err(|_| ServiceError::ClusterIp {
            service: key.clone(),
            value: text.to_string(),
        })?;
        if family.matches(&ip) {
            cluster_ip = Some(ip);
            break;
        }
    }
    let Some(cluster_ip) = cluster_ip else {
        return Ok(None);
    };

    // kube-proxy ignores (and logs) addresses it cannot parse and those of the other family.
    let external_ips = parse_ips(
        &key,
        "externalIPs",
        spec.external_ips.iter().flatten().map(String::as_str),
        family,
    );
    let ingress = service
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref());
    let load_balancer_ips = parse_ips(
        &key,
        "status.loadBalancer.ingress",
        ingress
            .into_iter()
            .flatten()
            // An ingress in "Proxy" mode is reached through the load balancer, never directly: the node must
            // not capture its IP.
            .filter(|i| i.ip_mode.as_deref().unwrap_or("VIP") == "VIP")
            .filter_map(|i| i.ip.as_deref()),
        family,
    );
    let mut source_ranges = Vec::new();
    for text in spec.load_balancer_source_ranges.iter().flatten() {
        match text.trim().parse::<IpNet>() {
            Ok(net) if family.matches(&net.addr()) => source_ranges.push(net.trunc()),
            Ok(_) => {}
            Err(_) => {
                warn!(service = %key, value = %text, "ignoring unparsable loadBalancerSourceRanges entry")
            }
        }
    }

    // Overlapping ranges would be overlapping intervals of one frontend, which nftables refuses.
    let source_ranges = IpNet::aggregate(&source_ranges);

    let externally_reachable = matches!(service_type, "NodePort" | "LoadBalancer")
        || spec
            .external_ips
            .as_ref()
            .is_some_and(|ips| !ips.is_empty());
    let external_local =
        externally_reachable && spec.external_traffic_policy.as_deref() == Some("Local");
    let internal_local = spec.internal_traffic_policy.as_deref() == Some("Local");
    let affinity = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
        spec.session_affinity_config
            .as_ref()
            .and_then(|c| c.client_ip.as_ref())
            .and_then(|c| c.timeout_seconds)
            .and_then(|t| u32::try_from(t).ok())
            .filter(|t| *t > 0)
            .unwrap_or(DEFAULT_AFFINITY_TIMEOUT_SECONDS)
    });
    let health_check_node_port = if service_type == "LoadBalancer" && external_local {
        spec.health_check_node_port
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p != 0)
    } else {
        None
    };

    let mut ports = Vec::new();
    for port in spec.ports.iter().flatten() {
        let Some(protocol) = Protocol::from_api(port.protocol.as_deref()) else {
            warn!(service = %key, protocol = ?port.protocol, "ignoring Service port with an unknown protocol");
            continue;
        };
        let Some(number) = u16::try_from(port.port).ok().filter(|p| *p != 0) else {
            warn!(service = %key, port = port.port, "ignoring Service port with an invalid number");
            continue;
        };
        ports.push(ServicePortInfo {
            name: port.name.clone().unwrap_or_default(),
            protocol,
            port: number,
            node_port: port
                .node_port
                .and_then(|p| u16::try_from(p).ok())
                .filter(|p| *p != 0),
            cluster_ip,
            external_ips: external_ips.clone(),
            load_balancer_ips: load_balancer_ips.clone(),
            source_ranges: source_ranges.clone(),
            internal_local,
            external_local,
            affinity,
        });
    }
    Ok(Some(ServiceInfo {
        ports,
        health_check_node_port,
    }))
}

fn parse_ips<'a>(
    key: &ServiceKey,
    field: &str,
    texts: impl Iterator<Item = &'a str>,
    family: Family,
) -> Vec<IpAddr> {
    let mut ips = Vec::new();
    for text in texts {
        match text.trim().parse::<IpAddr>() {
            Ok(ip) if family.matches(&ip) => {
                if !ips.contains(&ip) {
                    ips.push(ip);
                }
            }
            Ok(_) => {}
            Err(_) => warn!(service = %key, field, value = %text, "ignoring unparsable address"),
        }
    }
    ips
}
