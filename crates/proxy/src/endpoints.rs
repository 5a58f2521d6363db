//! EndpointSlices as the data plane sees them, and the choice of usable endpoints for one Service port with
//! kube-proxy's semantics (`pkg/proxy/topology.go`: ready endpoints, else serving-terminating ones (KEP-1669);
//! Local traffic policies; topology hints only when every ready endpoint carries one).

use foldhash::HashMap;
use std::net::{IpAddr, SocketAddr};

use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::types::{Family, Protocol, ServiceKey};

/// The label that ties an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// One EndpointSlice, reduced to what the data plane uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SliceInfo {
    pub service: ServiceKey,
    pub ports: Vec<SlicePort>,
    pub endpoints: Vec<EndpointInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SlicePort {
    pub name: String,
    pub protocol: Protocol,
    pub port: u16,
}

/// One endpoint address and its conditions (absent conditions read as the API documents them: ready and
/// serving unless said otherwise, not terminating).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EndpointInfo {
    pub ip: IpAddr,
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
    pub node_name: Option<String>,
    pub zone_hints: Vec<String>,
    pub node_hints: Vec<String>,
}

/// Reads a slice for one family; `None` for slices of another address type and slices that name no Service.
pub(crate) fn slice_info(slice: &EndpointSlice, family: Family) -> Option<SliceInfo> {
    if slice.address_type != family.address_type() {
        return None;
    }
    let service_name = slice.metadata.labels.as_ref()?.get(SERVICE_NAME_LABEL)?;
    if service_name.is_empty() {
        return None;
    }
    let service = ServiceKey::new(
        slice.metadata.namespace.clone().unwrap_or_default(),
        service_name.clone(),
    );
    let ports = slice
        .ports
        .iter()
        .flatten()
        .filter_map(|p| {
            Some(SlicePort {
                name: p.name.clone().unwrap_or_default(),
                protocol: Protocol::from_api(p.protocol.as_deref())?,
                port: p
                    .port
                    .and_then(|n| u16::try_from(n).ok())
                    .filter(|n| *n != 0)?,
            })
        })
        .collect();
    let endpoints = slice
        .endpoints
        .iter()
        .filter_map(|e| {
            // kube-proxy uses the first address only; the API requires exactly one.
            let ip: IpAddr = e.addresses.first()?.trim().parse().ok()?;
            if !family.matches(&ip) {
                return None;
            }
            let conditions = e.conditions.as_ref();
            let ready = conditions.and_then(|c| c.ready).unwrap_or(true);
            let hints = e.hints.as_ref();
            Some(EndpointInfo {
                ip,
                ready,
                serving: conditions.and_then(|c| c.serving).unwrap_or(ready),
                terminating: conditions.and_then(|c| c.terminating).unwrap_or(false),
                node_name: e.node_name.clone(),
                zone_hints: hints
                    .and_then(|h| h.for_zones.as_ref())
                    .into_iter()
                    .flatten()
                    .map(|z| z.name.clone())
                    .collect(),
                node_hints: hints
                    .and_then(|h| h.for_nodes.as_ref())
                    .into_iter()
                    .flatten()
                    .map(|n| n.name.clone())
                    .collect(),
            })
        })
        .collect();
    Some(SliceInfo {
        service,
        ports,
        endpoints,
    })
}

/// An endpoint of one Service port: an address, a port and the conditions of its address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint<'a> {
    pub addr: SocketAddr,
    pub info: &'a EndpointInfo,
}

impl Endpoint<'_> {
    fn is_local(&self, node_name: &str) -> bool {
        self.info.node_name.as_deref() == Some(node_name)
    }
    fn serving_terminating(&self) -> bool {
        self.info.serving && self.info.terminating
    }
}

/// The endpoints of one Service port, gathered over its slices. The same address and port in two slices
/// (a slice being replaced) counts once, preferring a ready copy.
pub(crate) fn port_endpoints<'a>(
    slices: impl Iterator<Item = &'a SliceInfo>,
    port_name: &str,
    protocol: Protocol,
) -> Vec<Endpoint<'a>> {
    let mut out: Vec<Endpoint<'a>> = Vec::new();
    let mut seen: HashMap<SocketAddr, usize> = HashMap::default();
    for slice in slices {
        for port in slice
            .ports
            .iter()
            .filter(|p| p.name == port_name && p.protocol == protocol)
        {
            for info in &slice.endpoints {
                let addr = SocketAddr::new(info.ip, port.port);
                match seen.get(&addr) {
                    Some(&i) => {
                        if info.ready && !out[i].info.ready {
                            out[i] = Endpoint { addr, info };
                        }
                    }
                    None => {
                        seen.insert(addr, out.len());
                        out.push(Endpoint { addr, info });
                    }
                }
            }
        }
    }
    out
}

/// The result of [`categorize`].
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Categorized {
    /// Endpoints for Cluster traffic policy (after topology), sorted.
    pub cluster: Vec<SocketAddr>,
    /// Endpoints on this node for Local traffic policy, sorted.
    pub local: Vec<SocketAddr>,
    /// Whether the Service port has a usable endpoint anywhere in the cluster.
    pub has_any: bool,
}

pub(crate) struct Topology<'a> {
    pub node_name: &'a str,
    pub zone: Option<&'a str>,
    pub prefer_same_node_hints: bool,
}

/// kube-proxy's `CategorizeEndpoints`.
pub(crate) fn categorize(
    endpoints: &[Endpoint<'_>],
    uses_cluster: bool,
    uses_local: bool,
    topology: &Topology<'_>,
) -> Categorized {
    let mut out = Categorized::default();
    if endpoints.is_empty() {
        return out;
    }
    if uses_cluster {
        let mode = topology_mode(endpoints, topology);
        out.cluster = endpoints
            .iter()
            .filter(|e| e.info.ready && available_for(e, mode, topology))
            .map(|e| e.addr)
            .collect();
        // No ready endpoint anywhere (topology never filters them all: it is only used when one matches).
        if out.cluster.is_empty() {
            out.cluster = endpoints
                .iter()
                .filter(|e| e.serving_terminating())
                .map(|e| e.addr)
                .collect();
        }
        out.has_any = !out.cluster.is_empty();
    }
    if uses_local {
        let node = topology.node_name;
        let mut local_ready = false;
        let mut local_terminating = false;
        for e in endpoints {
            if e.info.ready {
                out.has_any = true;
                local_ready |= e.is_local(node);
            } else if e.serving_terminating() {
                out.has_any = true;
                local_terminating |= e.is_local(node);
            }
        }
        if local_ready {
            out.local = endpoints
                .iter()
                .filter(|e| e.is_local(node) && e.info.ready)
                .map(|e| e.addr)
                .collect();
        } else if local_terminating {
            out.local = endpoints
                .iter()
                .filter(|e| e.is_local(node) && e.serving_terminating())
                .map(|e| e.addr)
                .collect();
        }
    }
    out.cluster.sort();
    out.local.sort();
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TopologyMode {
    None,
    SameZone,
    SameNode,
}

/// kube-proxy's `topologyModeFromHints`: hints are used only if every ready endpoint has one and at least
/// one is for this node (or zone); otherwise all endpoints are used, so hints never strand traffic.
fn topology_mode(endpoints: &[Endpoint<'_>], topology: &Topology<'_>) -> TopologyMode {
    let mut any_ready = false;
    let (mut all_node_hints, mut for_node) = (true, false);
    let (mut all_zone_hints, mut for_zone) = (true, false);
    for e in endpoints.iter().filter(|e| e.info.ready) {
        any_ready = true;
        if e.info.node_hints.is_empty() {
            all_node_hints = false;
        } else if e.info.node_hints.iter().any(|n| n == topology.node_name) {
            for_node = true;
        }
        if e.info.zone_hints.is_empty() {
            all_zone_hints = false;
        } else if topology
            .zone
            .is_some_and(|z| e.info.zone_hints.iter().any(|h| h == z))
        {
            for_zone = true;
        }
    }
    if !any_ready {
        return TopologyMode::None;
    }
    if topology.prefer_same_node_hints && all_node_hints && for_node {
        return TopologyMode::SameNode;
    }
    if all_zone_hints && for_zone {
        return TopologyMode::SameZone;
    }
    TopologyMode::None
}

fn available_for(e: &Endpoint<'_>, mode: TopologyMode, topology: &Topology<'_>) -> bool {
    match mode {
        TopologyMode::None => true,
        TopologyMode::SameNode => e.info.node_hints.iter().any(|n| n == topology.node_name),
        TopologyMode::SameZone => topology
            .zone
            .is_some_and(|z| e.info.zone_hints.iter().any(|h| h == z)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(
        ip: &str,
        ready: bool,
        serving: bool,
        terminating: bool,
        node: &str,
        zones: &[&str],
    ) -> EndpointInfo {
        EndpointInfo {
            ip: ip.parse().unwrap(),
            ready,
            serving,
            terminating,
            node_name: Some(node.to_string()),
            zone_hints: zones.iter().map(|z| z.to_string()).collect(),
            node_hints: Vec::new(),
        }
    }

    fn eps(infos: &[EndpointInfo]) -> Vec<Endpoint<'_>> {
        infos
            .iter()
            .map(|i| Endpoint {
                addr: SocketAddr::new(i.ip, 80),
                info: i,
            })
            .collect()
    }

    const TOPO: Topology<'static> = Topology {
        node_name: "n1",
        zone: Some("a"),
        prefer_same_node_hints: false,
    };

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter()
            .map(|a| SocketAddr::new(a.parse().unwrap(), 80))
            .collect()
    }

    #[test]
    fn ready_only_then_serving_terminating() {
        let infos = [
            info("10.0.0.1", true, true, false, "n1", &[]),
            info("10.0.0.2", false, true, true, "n2", &[]),
            info("10.0.0.3", false, false, true, "n2", &[]),
        ];
        let c = categorize(&eps(&infos), true, false, &TOPO);
        assert_eq!(c.cluster, addrs(&["10.0.0.1"]));
        assert!(c.has_any);

        let infos = [
            info("10.0.0.2", false, true, true, "n2", &[]),
            info("10.0.0.3", false, false, true, "n2", &[]),
        ];
        let c = categorize(&eps(&infos), true, false, &TOPO);
        assert_eq!(c.cluster, addrs(&["10.0.0.2"]));

        let infos = [
            info("10.0.0.3", false, false, true, "n2", &[]),
            info("10.0.0.4", false, false, false, "n1", &[]),
        ];
        let c = categorize(&eps(&infos), true, true, &TOPO);
        assert!(c.cluster.is_empty() && c.local.is_empty() && !c.has_any);
    }

    #[test]
    fn local_falls_back_independently() {
        // Ready endpoints elsewhere, only a terminating one here: Local uses the terminating local one.
        let infos = [
            info("10.0.0.1", true, true, false, "n2", &[]),
            info("10.0.0.2", false, true, true, "n1", &[]),
        ];
        let c = categorize(&eps(&infos), true, true, &TOPO);
        assert_eq!(c.cluster, addrs(&["10.0.0.1"]));
        assert_eq!(c.local, addrs(&["10.0.0.2"]));
        // Nothing here at all: no local endpoints, but the Service has endpoints.
        let infos = [info("10.0.0.1", true, true, false, "n2", &[])];
        let c = categorize(&eps(&infos), false, true, &TOPO);
        assert!(c.local.is_empty() && c.cluster.is_empty() && c.has_any);
    }

    #[test]
    fn zone_hints_need_every_ready_endpoint_hinted_and_one_for_us() {
        let infos = [
            info("10.0.0.1", true, true, false, "n1", &["a"]),
            info("10.0.0.2", true, true, false, "n2", &["b"]),
            info("10.0.0.3", false, false, false, "n3", &[]),
        ];
        let c = categorize(&eps(&infos), true, false, &TOPO);
        assert_eq!(c.cluster, addrs(&["10.0.0.1"]));
        // One ready endpoint without a hint: hints ignored.
        let infos = [
            info("10.0.0.1", true, true, false, "n1", &["a"]),
            info("10.0.0.2", true, true, false, "n2", &[]),
        ];
        assert_eq!(
            categorize(&eps(&infos), true, false, &TOPO).cluster,
            addrs(&["10.0.0.1", "10.0.0.2"])
        );
        // No endpoint for our zone: hints ignored.
        let infos = [
            info("10.0.0.1", true, true, false, "n1", &["b"]),
            info("10.0.0.2", true, true, false, "n2", &["c"]),
        ];
        assert_eq!(
            categorize(&eps(&infos), true, false, &TOPO).cluster,
            addrs(&["10.0.0.1", "10.0.0.2"])
        );
        // Node without a zone label: hints ignored.
        let no_zone = Topology { zone: None, ..TOPO };
        let infos = [
            info("10.0.0.1", true, true, false, "n1", &["a"]),
            info("10.0.0.2", true, true, false, "n2", &["b"]),
        ];
        assert_eq!(
            categorize(&eps(&infos), true, false, &no_zone).cluster,
            addrs(&["10.0.0.1", "10.0.0.2"])
        );
    }

    #[test]
    fn node_hints_only_when_enabled() {
        let mut a = info("10.0.0.1", true, true, false, "n1", &["a"]);
        a.node_hints = vec!["n1".into()];
        let mut b = info("10.0.0.2", true, true, false, "n2", &["a"]);
        b.node_hints = vec!["n2".into()];
        let infos = [a, b];
        assert_eq!(
            categorize(&eps(&infos), true, false, &TOPO).cluster,
            addrs(&["10.0.0.1", "10.0.0.2"])
        );
        let same_node = Topology {
            prefer_same_node_hints: true,
            ..TOPO
        };
        assert_eq!(
            categorize(&eps(&infos), true, false, &same_node).cluster,
            addrs(&["10.0.0.1"])
        );
    }

    #[test]
    fn duplicate_across_slices_prefers_ready() {
        let port = SlicePort {
            name: "http".into(),
            protocol: Protocol::Tcp,
            port: 80,
        };
        let s1 = SliceInfo {
            service: ServiceKey::new("ns", "s"),
            ports: vec![port.clone()],
            endpoints: vec![info("10.0.0.1", false, false, false, "n1", &[])],
        };
        let s2 = SliceInfo {
            service: ServiceKey::new("ns", "s"),
            ports: vec![port],
            endpoints: vec![info("10.0.0.1", true, true, false, "n1", &[])],
        };
        let eps = port_endpoints([&s1, &s2].into_iter(), "http", Protocol::Tcp);
        assert_eq!(eps.len(), 1);
        assert!(eps[0].info.ready);
        assert!(port_endpoints([&s1].into_iter(), "http", Protocol::Udp).is_empty());
    }
}
