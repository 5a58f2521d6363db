//! From one Service (for one family) and its endpoints to the frontends it exposes on this node and the
//! elements that implement them; the translation of kube-proxy's `syncProxyRules` per Service port into
//! the element vocabulary of [`crate::shape`].

use foldhash::HashSet;
use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

use crate::config::{Config, NodeInfo};
use crate::endpoints::{categorize, port_endpoints, SliceInfo, Topology};
use crate::service::{ServiceInfo, ServicePortInfo};
use crate::shape::{Element, Group, Key, Masquerade, PickChain, SetName, Target, Value, Verdict};
use crate::types::{Frontend, FrontendKind, ServiceKey, ServicePortName};

/// What one frontend leads to, as reported in a diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontendState {
    pub service: ServicePortName,
    pub kind: FrontendKind,
    /// Every endpoint this node may send the frontend's traffic to (Cluster and Local), sorted.
    pub endpoints: Vec<SocketAddr>,
}

/// The computed state of one Service port: its endpoint slots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PortPlan {
    pub name: String,
    pub protocol: Option<crate::types::Protocol>,
    /// Slot i of the Cluster group holds `cluster[i]`.
    pub cluster: Vec<SocketAddr>,
    pub local: Vec<SocketAddr>,
}

/// What the model keeps of a Service's plan between changes: the slots (so the next plan keeps them) and
/// the keys it claimed (so the next plan can release what it no longer has). The claimed values live in the
/// model's claim maps only: a second copy per Service was most of the model's memory.
#[derive(Debug, Clone, Default)]
pub(crate) struct StoredPlan {
    pub ports: Vec<PortPlan>,
    /// Sorted.
    pub elements: Box<[Element]>,
    /// Sorted.
    pub frontends: Box<[Frontend]>,
    pub health_check: Option<(u16, usize)>,
}

/// Everything one Service contributes.
#[derive(Debug, Clone, Default)]
pub(crate) struct ServicePlan {
    pub ports: Vec<PortPlan>,
    /// Sorted by element.
    pub elements: Vec<(Element, Value)>,
    /// Sorted by frontend.
    pub frontends: Vec<(Frontend, FrontendState)>,
    pub health_check: Option<(u16, usize)>,
}

pub(crate) struct Context<'a> {
    pub config: &'a Config,
    pub node: &'a NodeInfo,
    pub nodeport_ips: &'a [IpAddr],
}

/// Builds the plan of a Service, keeping the slot of every endpoint that stays (so a change moves as few
/// elements as possible and affinity entries keep pointing at the same endpoint).
pub(crate) fn build(
    key: &ServiceKey,
    info: &ServiceInfo,
    slices: &[&SliceInfo],
    previous: &[PortPlan],
    ctx: &Context<'_>,
) -> ServicePlan {
    let topology = Topology {
        node_name: &ctx.config.node_name,
        zone: ctx.node.zone(),
        prefer_same_node_hints: ctx.config.prefer_same_node_hints,
    };
    let mut plan = ServicePlan::default();
    let mut local_ready_ips: BTreeSet<IpAddr> = BTreeSet::new();
    for port in &info.ports {
        let endpoints = port_endpoints(slices.iter().copied(), &port.name, port.protocol);
        let cat = categorize(
            &endpoints,
            port.uses_cluster_endpoints(),
            port.uses_local_endpoints(),
            &topology,
        );
        for e in &endpoints {
            if e.info.ready && e.info.node_name.as_deref() == Some(ctx.config.node_name.as_str()) {
                local_ready_ips.insert(e.addr.ip());
            }
        }
        let old = previous
            .iter()
            .find(|o| o.name == port.name && o.protocol == Some(port.protocol));
        let port_plan = PortPlan {
            name: port.name.clone(),
            protocol: Some(port.protocol),
            cluster: stable_slots(
                old.map(|o| o.cluster.as_slice()).unwrap_or(&[]),
                &cat.cluster,
            ),
            local: stable_slots(old.map(|o| o.local.as_slice()).unwrap_or(&[]), &cat.local),
        };
        // A pod reaching itself through the Service must be masqueraded, or its reply would not come back
        // through the DNAT. Only pods of this node can do that here; an endpoint whose node is unknown might
        // be one. A loopback endpoint (the `kubernetes` Service of an API server bound to 127.0.0.1) is not:
        // masquerade has no address to give a packet leaving through `lo` and drops it, so a hairpin entry for
        // it would drop every new loopback connection of the node.
        let hairpin: Vec<IpAddr> = endpoints
            .iter()
            .filter(|e| {
                !e.addr.ip().is_loopback()
                    && e.info
                        .node_name
                        .as_deref()
                        .is_none_or(|n| n == ctx.config.node_name)
            })
            .map(|e| e.addr.ip())
            .collect();
        let name = ServicePortName {
            service: key.clone(),
            port: port.name.clone(),
            protocol: port.protocol,
        };
        port_elements(
            port,
            &port_plan,
            cat.has_any,
            &hairpin,
            name,
            ctx,
            &mut plan,
        );
        plan.ports.push(port_plan);
    }
    if let Some(node_port) = info.health_check_node_port {
        plan.health_check = Some((node_port, local_ready_ips.len()));
    }
    plan.elements.sort();
    plan.elements.dedup_by(|a, b| a.0 == b.0);
    plan.frontends.sort_by_key(|a| a.0);
    plan.frontends.dedup_by(|a, b| a.0 == b.0);
    plan
}

/// New slot order: endpoints that stay keep their slot when it still exists; the others fill the holes
/// (endpoints from beyond the new end first, then new ones in address order).
fn stable_slots(old: &[SocketAddr], new_sorted: &[SocketAddr]) -> Vec<SocketAddr> {
    if old.is_empty() {
        return new_sorted.to_vec();
    }
    let wanted: HashSet<&SocketAddr> = new_sorted.iter().collect();
    let n = new_sorted.len();
    let mut slots: Vec<Option<SocketAddr>> = vec![None; n];
    let mut placed: HashSet<SocketAddr> = HashSet::default();
    for (i, addr) in old.iter().enumerate().take(n) {
        if wanted.contains(addr) {
            slots[i] = Some(*addr);
            placed.insert(*addr);
        }
    }
    let movers = old.iter().skip(n).filter(|a| wanted.contains(a)).copied();
    let fresh = new_sorted.iter().filter(|a| !old.contains(a)).copied();
    let mut fill = movers.chain(fresh).filter(|a| !placed.contains(a));
    slots
        .into_iter()
        .map(|s| s.or_else(|| fill.next()))
        .collect::<Option<Vec<_>>>()
        .unwrap_or_else(|| new_sorted.to_vec())
}

fn port_elements(
    port: &ServicePortInfo,
    slots: &PortPlan,
    has_endpoints: bool,
    hairpin: &[IpAddr],
    name: ServicePortName,
    ctx: &Context<'_>,
    plan: &mut ServicePlan,
) {
    let config = ctx.config;
    let out = &mut plan.elements;
    let mut push = |set: SetName, key: Key, value: Value| out.push((Element { set, key }, value));
    let pick = |group: Group, masquerade: Masquerade| PickChain {
        group,
        endpoints: match group {
            Group::Cluster => slots.cluster.len(),
            Group::Local => slots.local.len(),
        } as u32,
        masquerade,
        affinity: port.affinity,
    };
    let reject = if has_endpoints {
        Verdict::Drop
    } else {
        Verdict::Goto(Target::Reject)
    };
    let mut all_endpoints: Vec<SocketAddr> =
        slots.cluster.iter().chain(&slots.local).copied().collect();
    all_endpoints.sort();
    all_endpoints.dedup();

    // Internal traffic: the ClusterIP.
    let internal_group = if port.internal_local {
        Group::Local
    } else {
        Group::Cluster
    };
    let internal_slots = if port.internal_local {
        &slots.local
    } else {
        &slots.cluster
    };
    let internal_masq = if config.masquerade_all {
        Masquerade::All
    } else if config.family_cidrs(&config.cluster_cidrs).next().is_some() {
        Masquerade::OffCluster
    } else {
        // Without a pod CIDR there is no telling pods from the rest, and kube-proxy then masquerades nothing.
        Masquerade::No
    };
    let cluster_frontend = Frontend {
        ip: port.cluster_ip,
        protocol: port.protocol,
        port: port.port,
    };
    push(SetName::ClusterIps, Key::Addr(port.cluster_ip), Value::None);
    if has_endpoints && !internal_slots.is_empty() {
        push(
            SetName::ServiceIps,
            Key::Frontend(cluster_frontend),
            Value::Verdict(Verdict::Goto(Target::Pick(pick(
                internal_group,
                internal_masq,
            )))),
        );
        push_slots(&mut push, internal_group, cluster_frontend, internal_slots);
    } else {
        push(
            SetName::NoEndpointServices,
            Key::Frontend(cluster_frontend),
            Value::Verdict(reject),
        );
    }
    plan.frontends.push((
        cluster_frontend,
        FrontendState {
            service: name.clone(),
            kind: FrontendKind::ClusterIp,
            endpoints: if has_endpoints {
                sorted(internal_slots)
            } else {
                Vec::new()
            },
        },
    ));

    // External traffic: external IPs, LoadBalancer IPs, NodePorts on the node's addresses.
    let mut externals: Vec<(Frontend, FrontendKind)> = Vec::new();
    let with_port = |ip: IpAddr, port_number: u16| Frontend {
        ip,
        protocol: port.protocol,
        port: port_number,
    };
    externals.extend(
        port.external_ips
            .iter()
            .map(|ip| (with_port(*ip, port.port), FrontendKind::ExternalIp)),
    );
    externals.extend(
        port.load_balancer_ips
            .iter()
            .map(|ip| (with_port(*ip, port.port), FrontendKind::LoadBalancer)),
    );
    if let Some(node_port) = port.node_port {
        externals.extend(
            ctx.nodeport_ips
                .iter()
                .map(|ip| (with_port(*ip, node_port), FrontendKind::NodePort)),
        );
    }
    let has_external_endpoints = has_endpoints && (!port.external_local || !slots.local.is_empty());
    for (frontend, kind) in &externals {
        let (frontend, kind) = (*frontend, *kind);
        if has_endpoints {
            if port.external_local {
                push(
                    SetName::ServiceIps,
                    Key::Frontend(frontend),
                    Value::Verdict(Verdict::Goto(Target::ExternalLocal)),
                );
                if !slots.cluster.is_empty() {
                    push(
                        SetName::ExternalLocalCluster,
                        Key::Frontend(frontend),
                        Value::Verdict(Verdict::Goto(Target::Pick(pick(
                            Group::Cluster,
                            Masquerade::No,
                        )))),
                    );
                    push_slots(&mut push, Group::Cluster, frontend, &slots.cluster);
                }
                if !slots.local.is_empty() {
                    push(
                        SetName::ExternalLocalLocal,
                        Key::Frontend(frontend),
                        Value::Verdict(Verdict::Goto(Target::Pick(pick(
                            Group::Local,
                            Masquerade::No,
                        )))),
                    );
                    push_slots(&mut push, Group::Local, frontend, &slots.local);
                }
            } else if !slots.cluster.is_empty() {
                push(
                    SetName::ServiceIps,
                    Key::Frontend(frontend),
                    Value::Verdict(Verdict::Goto(Target::Pick(pick(
                        Group::Cluster,
                        Masquerade::All,
                    )))),
                );
                push_slots(&mut push, Group::Cluster, frontend, &slots.cluster);
            }
        }
        if !has_external_endpoints {
            // No endpoints at all: reject. eTP:Local without one here: drop what was not short-circuited.
            push(
                SetName::NoEndpointServices,
                Key::Frontend(frontend),
                Value::Verdict(reject),
            );
        }
        if kind == FrontendKind::LoadBalancer && !port.source_ranges.is_empty() {
            push(SetName::FirewallIps, Key::Frontend(frontend), Value::None);
            for net in &port.source_ranges {
                push(
                    SetName::FirewallAllow,
                    Key::Source(frontend, *net),
                    Value::None,
                );
            }
            // A node sending to a LoadBalancer IP that is also local to it appears to come from that IP.
            let from_node = ctx
                .node
                .primary(config.family)
                .is_some_and(|ip| port.source_ranges.iter().any(|n| n.contains(&ip)));
            // (Unless a range holds it already: intervals of one frontend must not overlap.)
            if from_node && !port.source_ranges.iter().any(|n| n.contains(&frontend.ip)) {
                push(
                    SetName::FirewallAllow,
                    Key::Source(frontend, IpNet::from(frontend.ip)),
                    Value::None,
                );
            }
        }
        let endpoints = if !has_endpoints {
            Vec::new()
        } else if port.external_local {
            all_endpoints.clone()
        } else {
            sorted(&slots.cluster)
        };
        plan.frontends.push((
            frontend,
            FrontendState {
                service: name.clone(),
                kind,
                endpoints,
            },
        ));
    }

    let in_use: HashSet<IpAddr> = all_endpoints.iter().map(|a| a.ip()).collect();
    for ip in hairpin.iter().filter(|ip| in_use.contains(ip)) {
        push(SetName::Hairpin, Key::Hairpin(*ip), Value::None);
    }
}

fn sorted(addrs: &[SocketAddr]) -> Vec<SocketAddr> {
    let mut out = addrs.to_vec();
    out.sort();
    out
}

fn push_slots(
    push: &mut impl FnMut(SetName, Key, Value),
    group: Group,
    frontend: Frontend,
    slots: &[SocketAddr],
) {
    let set = match group {
        Group::Cluster => SetName::ClusterEndpoints(frontend.protocol),
        Group::Local => SetName::LocalEndpoints(frontend.protocol),
    };
    for (i, addr) in slots.iter().enumerate() {
        push(set, Key::Slot(frontend, i as u32), Value::Endpoint(*addr));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(list: &[&str]) -> Vec<SocketAddr> {
        list.iter()
            .map(|s| format!("{s}:80").parse().unwrap())
            .collect()
    }

    #[test]
    fn stable_slots_keep_survivors_in_place() {
        let old = a(&["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"]);
        // Remove one in the middle: the last one moves into the hole.
        assert_eq!(
            stable_slots(&old, &a(&["10.0.0.1", "10.0.0.3", "10.0.0.4"])),
            a(&["10.0.0.1", "10.0.0.4", "10.0.0.3"])
        );
        // Add one: appended.
        assert_eq!(
            stable_slots(
                &old,
                &a(&["10.0.0.0", "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"])
            ),
            a(&["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.0"])
        );
        // Replace one: the new one takes its slot.
        assert_eq!(
            stable_slots(&old, &a(&["10.0.0.1", "10.0.0.2", "10.0.0.4", "10.0.0.9"])),
            a(&["10.0.0.1", "10.0.0.2", "10.0.0.9", "10.0.0.4"])
        );
        assert!(stable_slots(&old, &[]).is_empty());
        assert_eq!(
            stable_slots(&[], &a(&["10.0.0.2", "10.0.0.1"])),
            a(&["10.0.0.2", "10.0.0.1"])
        );
    }
}
