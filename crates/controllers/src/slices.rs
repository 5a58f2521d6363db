//! The EndpointSlices a Service should have, and the fewest writes that get its existing slices there: the
//! rules of upstream's `k8s.io/endpointslice` reconciler (one address family and one port mapping per slice,
//! in-place updates, filling the fullest slices first, reusing slices that would be deleted, a placeholder
//! slice when there is nothing to publish). Pure: no I/O, so every rule is unit-tested.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::discovery::v1::{
    Endpoint, EndpointConditions, EndpointHints, EndpointPort, EndpointSlice, ForNode, ForZone,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::model::{PodInfo, ServiceInfo, TargetPort};

pub const LABEL_SERVICE_NAME: &str = "kubernetes.io/service-name";
pub const LABEL_MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
pub const LABEL_HEADLESS: &str = "service.kubernetes.io/headless";
/// The managed-by value of upstream's controller: we take over its slices, and it would take over ours.
pub const CONTROLLER_NAME: &str = "endpointslice-controller.k8s.io";
pub const DEFAULT_MAX_ENDPOINTS_PER_SLICE: usize = 100;

pub const IPV4: &str = "IPv4";
pub const IPV6: &str = "IPv6";

/// Which nodes exist, and their zone.
pub type NodeZones = HashMap<String, Option<String>>;

/// Writes that take a Service's slices from what exists to what should.
#[derive(Debug, Default)]
pub struct SlicePlan {
    /// New slices (metadata.generateName set, no name).
    pub create: Vec<EndpointSlice>,
    /// Full replacements of existing slices (by name).
    pub update: Vec<EndpointSlice>,
    pub delete: Vec<EndpointSlice>,
    /// Pods left out because their Node does not exist; upstream reports this as a sync error and retries.
    pub missing_nodes: Vec<String>,
    /// Service ports whose named targetPort none of the candidate pods defines.
    pub unresolved_ports: Vec<String>,
    /// Endpoints the Service should have, over all slices.
    pub endpoints_desired: usize,
}

impl SlicePlan {
    pub fn writes(&self) -> usize {
        self.create.len() + self.update.len() + self.delete.len()
    }
}

/// Address types a Service's slices carry, from spec.ipFamilies (upstream `getAddressTypesForService`).
pub fn address_types(svc: &ServiceInfo) -> Vec<&'static str> {
    let mut out = Vec::new();
    for f in &svc.ip_families {
        let at = match f.as_str() {
            "IPv4" => IPV4,
            "IPv6" => IPV6,
            _ => continue,
        };
        if !out.contains(&at) {
            out.push(at);
        }
    }
    if !out.is_empty() {
        out.sort();
        return out;
    }
    // Families not defaulted (an old API server): the ClusterIP's family, or both for headless.
    if svc.ip_set() {
        return match svc.cluster_ip.parse::<IpAddr>() {
            Ok(IpAddr::V6(_)) => vec![IPV6],
            _ => vec![IPV4],
        };
    }
    vec![IPV4, IPV6]
}

/// Upstream `ShouldPodBeInEndpoints`.
pub fn should_be_in_endpoints(pod: &PodInfo, include_terminating: bool) -> bool {
    !pod.terminal && !pod.ips.is_empty() && (include_terminating || !pod.terminating)
}

/// Upstream `ShouldSetHostname`: the pod names a hostname and its subdomain is this Service.
pub fn should_set_hostname(pod: &PodInfo, svc: &ServiceInfo) -> bool {
    !pod.hostname.is_empty() && pod.subdomain == svc.name && *pod.namespace == *svc.namespace
}

/// The container port a Service port targets on this pod (upstream `FindPort`).
pub fn find_port(pod: &PodInfo, target: &TargetPort, protocol: &str) -> Option<i32> {
    match target {
        TargetPort::Number(n) => Some(*n),
        TargetPort::Name(name) => pod
            .ports
            .iter()
            .find(|p| &p.name == name && p.protocol == protocol)
            .map(|p| p.port),
    }
}

/// The slice ports this pod gives the Service; ports the pod cannot resolve are left out.
pub fn endpoint_ports(svc: &ServiceInfo, pod: &PodInfo) -> Vec<EndpointPort> {
    svc.ports
        .iter()
        .filter_map(|sp| {
            let port = find_port(pod, &sp.target, &sp.protocol)?;
            Some(EndpointPort {
                name: Some(sp.name.clone()),
                port: Some(port),
                protocol: Some(sp.protocol.clone()),
                app_protocol: sp.app_protocol.clone(),
            })
        })
        .collect()
}

fn is_v6(ip: &IpAddr) -> bool {
    matches!(ip, IpAddr::V6(_))
}

/// Upstream `podToEndpoint`.
pub fn pod_to_endpoint(
    pod: &PodInfo,
    zone: Option<&str>,
    svc: &ServiceInfo,
    address_type: &str,
) -> Endpoint {
    let want_v6 = address_type == IPV6;
    let serving = pod.ready;
    let terminating = pod.terminating;
    // Ready is never true for a terminating pod, unless the Service publishes not-ready addresses.
    let ready = svc.publish_not_ready || (serving && !terminating);
    Endpoint {
        addresses: pod
            .ips
            .iter()
            .filter(|ip| is_v6(ip) == want_v6)
            .map(|ip| ip.to_string())
            .collect(),
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            serving: Some(serving),
            terminating: Some(terminating),
        }),
        target_ref: Some(ObjectReference {
            kind: Some("Pod".into()),
            namespace: Some(pod.namespace.to_string()),
            name: Some(pod.name.to_string()),
            uid: Some(pod.uid.clone()),
            ..Default::default()
        }),
        node_name: (!pod.node_name.is_empty()).then(|| pod.node_name.to_string()),
        zone: zone.filter(|z| !z.is_empty()).map(str::to_string),
        hostname: should_set_hostname(pod, svc).then(|| pod.hostname.clone()),
        ..Default::default()
    }
}

/// Identifies a set of ports regardless of order (upstream `PortMapKey`).
pub fn port_map_key(ports: &[EndpointPort]) -> String {
    let mut parts: Vec<String> = ports
        .iter()
        .map(|p| {
            format!(
                "{}\u{0}{}\u{0}{}\u{0}{}",
                p.name.as_deref().unwrap_or(""),
                p.port.map(|n| n.to_string()).unwrap_or_default(),
                p.protocol.as_deref().unwrap_or(""),
                p.app_protocol.as_deref().unwrap_or("")
            )
        })
        .collect();
    parts.sort();
    parts.join("\u{1}")
}

/// What makes an endpoint the same endpoint (upstream `hashEndpoint`): addresses, hostname and the pod it
/// points at; everything else can change in place.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct EndpointKey {
    addresses: Vec<String>,
    hostname: String,
    namespace: String,
    name: String,
}

fn endpoint_key(ep: &Endpoint) -> EndpointKey {
    let mut addresses = ep.addresses.clone();
    addresses.sort();
    let tr = ep.target_ref.as_ref();
    EndpointKey {
        addresses,
        hostname: ep.hostname.clone().unwrap_or_default(),
        namespace: tr.and_then(|t| t.namespace.clone()).unwrap_or_default(),
        name: tr.and_then(|t| t.name.clone()).unwrap_or_default(),
    }
}

fn strip_rv(r: &Option<ObjectReference>) -> Option<ObjectReference> {
    r.clone().map(|mut r| {
        r.resource_version = None;
        r
    })
}

/// Upstream `EndpointsEqualBeyondHash`: hints are not compared here (the traffic-distribution pass does).
fn equal_beyond_hash(a: &Endpoint, b: &Endpoint) -> bool {
    let cond = |e: &Endpoint| {
        let c = e.conditions.clone().unwrap_or_default();
        (c.ready, c.serving, c.terminating)
    };
    a.node_name == b.node_name
        && a.zone == b.zone
        && cond(a) == cond(b)
        && strip_rv(&a.target_ref) == strip_rv(&b.target_ref)
}

fn is_reserved_label(k: &str) -> bool {
    k == LABEL_SERVICE_NAME || k == LABEL_MANAGED_BY || k == LABEL_HEADLESS
}

/// The labels a slice of this Service carries: the Service's own labels plus the reserved ones; and
/// whether the slice's non-reserved labels differ from the Service's (upstream `setEndpointSliceLabels`).
pub fn slice_labels(
    existing: Option<&BTreeMap<String, String>>,
    svc: &ServiceInfo,
) -> (BTreeMap<String, String>, bool) {
    let ep: BTreeMap<&String, &String> = existing
        .into_iter()
        .flatten()
        .filter(|(k, _)| !is_reserved_label(k))
        .collect();
    let mut labels: BTreeMap<String, String> = svc
        .labels
        .iter()
        .filter(|(k, _)| !is_reserved_label(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let changed = ep.len() != labels.len() || ep.iter().any(|(k, v)| labels.get(*k) != Some(*v));
    if !svc.ip_set() {
        labels.insert(LABEL_HEADLESS.into(), String::new());
    }
    labels.insert(LABEL_SERVICE_NAME.into(), svc.name.clone());
    labels.insert(LABEL_MANAGED_BY.into(), CONTROLLER_NAME.into());
    (labels, changed)
}

/// `<service>-`, or the bare name when the dash would make an invalid prefix (upstream
/// `getEndpointSlicePrefix`).
pub fn slice_prefix(service: &str) -> String {
    if service.len() + 1 > 253 {
        service.to_string()
    } else {
        format!("{service}-")
    }
}

pub fn owner_reference(svc: &ServiceInfo) -> OwnerReference {
    OwnerReference {
        api_version: "v1".into(),
        kind: "Service".into(),
        name: svc.name.clone(),
        uid: svc.uid.clone(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

fn new_slice(svc: &ServiceInfo, ports: &[EndpointPort], address_type: &str) -> EndpointSlice {
    EndpointSlice {
        metadata: ObjectMeta {
            generate_name: Some(slice_prefix(&svc.name)),
            namespace: Some(svc.namespace.clone()),
            labels: Some(slice_labels(None, svc).0),
            owner_references: Some(vec![owner_reference(svc)]),
            ..Default::default()
        },
        address_type: address_type.into(),
        endpoints: Vec::new(),
        ports: Some(ports.to_vec()),
    }
}

/// Upstream `ownedBy`.
pub fn owned_by(slice: &EndpointSlice, svc: &ServiceInfo) -> bool {
    slice
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.uid == svc.uid && o.kind == "Service" && o.api_version == "v1")
}

/// The placeholder comparison of upstream: namespace, labels, owner references and content.
fn same_placeholder(a: &EndpointSlice, b: &EndpointSlice) -> bool {
    a.metadata.namespace == b.metadata.namespace
        && a.metadata.labels.clone().unwrap_or_default()
            == b.metadata.labels.clone().unwrap_or_default()
        && a.metadata.owner_references.clone().unwrap_or_default()
            == b.metadata.owner_references.clone().unwrap_or_default()
        && a.address_type == b.address_type
        && a.endpoints == b.endpoints
        && a.ports.clone().unwrap_or_default() == b.ports.clone().unwrap_or_default()
}

fn slice_name(s: &EndpointSlice) -> &str {
    s.metadata.name.as_deref().unwrap_or("")
}

/// How endpoints are hinted (upstream `trafficdist`, KEP-3015): PreferClose and its newer name PreferSameZone
/// put each ready endpoint's own zone in `hints.forZones`; PreferSameNode puts its node in `hints.forNodes`
/// and its zone in `hints.forZones` (so that proxies that only know zones fall back to the same zone);
/// without a traffic distribution no endpoint carries hints. Not-ready endpoints are left as they are.
#[derive(Clone, Copy)]
enum Hinting {
    SameZone,
    SameNode,
    None,
}

impl Hinting {
    fn of(svc: &ServiceInfo) -> Hinting {
        if svc.topology_hints_annotation {
            return Hinting::None;
        }
        match svc.traffic_distribution.as_deref() {
            Some("PreferClose") | Some("PreferSameZone") => Hinting::SameZone,
            Some("PreferSameNode") => Hinting::SameNode,
            _ => Hinting::None,
        }
    }

    /// The hints a ready endpoint should carry.
    fn hints_for(self, e: &Endpoint) -> Option<EndpointHints> {
        let zones = e.zone.as_ref().map(|z| vec![ForZone { name: z.clone() }]);
        let nodes = match self {
            Hinting::None => return None,
            Hinting::SameZone => None,
            Hinting::SameNode => e
                .node_name
                .as_ref()
                .map(|n| vec![ForNode { name: n.clone() }]),
        };
        if zones.is_none() && nodes.is_none() {
            return None;
        }
        Some(EndpointHints {
            for_zones: zones,
            for_nodes: nodes,
        })
    }

    fn needs_update(self, slice: &EndpointSlice) -> bool {
        match self {
            Hinting::None => slice.endpoints.iter().any(|e| e.hints.is_some()),
            _ => slice.endpoints.iter().any(|e| {
                e.conditions.as_ref().and_then(|c| c.ready) == Some(true)
                    && e.hints != self.hints_for(e)
            }),
        }
    }

    fn update(self, slice: &mut EndpointSlice) {
        for e in &mut slice.endpoints {
            match self {
                Hinting::None => e.hints = None,
                _ => {
                    if e.conditions.as_ref().and_then(|c| c.ready) != Some(true) {
                        continue;
                    }
                    e.hints = self.hints_for(e);
                }
            }
        }
    }
}

/// Pods selected by the Service (already filtered by selector and namespace), the nodes they run on, and the
/// Service's existing slices managed by this controller → the writes to make.
pub fn reconcile(
    svc: &ServiceInfo,
    pods: &[&PodInfo],
    nodes: &NodeZones,
    existing: &[EndpointSlice],
    max_per_slice: usize,
) -> SlicePlan {
    let max = max_per_slice.max(1);
    let mut plan = SlicePlan::default();
    let supported = address_types(svc);
    let mut by_type: BTreeMap<&str, Vec<&EndpointSlice>> = BTreeMap::new();
    let mut sorted: Vec<&EndpointSlice> = existing.iter().collect();
    sorted.sort_by(|a, b| slice_name(a).cmp(slice_name(b)));
    let mut unsupported = Vec::new();
    for s in sorted {
        if supported.contains(&s.address_type.as_str()) {
            by_type.entry(s.address_type.as_str()).or_default().push(s);
        } else {
            unsupported.push(s.clone());
        }
    }
    let mut pods: Vec<&PodInfo> = pods.to_vec();
    pods.sort_by(|a, b| a.name.cmp(&b.name));
    for at in &supported {
        let existing = by_type.get(at).cloned().unwrap_or_default();
        reconcile_address_type(svc, &pods, nodes, &existing, max, at, &mut plan);
    }
    plan.delete.extend(unsupported);
    plan.missing_nodes.sort();
    plan.missing_nodes.dedup();
    plan.unresolved_ports = unresolved_ports(svc, &pods);
    plan
}

/// Named targetPorts that no candidate pod defines (only reported when there are candidates).
fn unresolved_ports(svc: &ServiceInfo, pods: &[&PodInfo]) -> Vec<String> {
    let candidates: Vec<&&PodInfo> = pods
        .iter()
        .filter(|p| should_be_in_endpoints(p, true))
        .collect();
    if candidates.is_empty() {
        return Vec::new();
    }
    svc.ports
        .iter()
        .filter_map(|sp| match &sp.target {
            TargetPort::Name(n)
                if candidates
                    .iter()
                    .all(|p| find_port(p, &sp.target, &sp.protocol).is_none()) =>
            {
                Some(format!(
                    "no selected Pod defines a {} container port named {n:?} (targetPort of Service port {:?})",
                    sp.protocol, sp.name
                ))
            }
            _ => None,
        })
        .collect()
}

struct PortGroup {
    ports: Vec<EndpointPort>,
    desired: BTreeMap<EndpointKey, Endpoint>,
}

fn reconcile_address_type(
    svc: &ServiceInfo,
    pods: &[&PodInfo],
    nodes: &NodeZones,
    existing: &[&EndpointSlice],
    max: usize,
    address_type: &str,
    plan: &mut SlicePlan,
) {
    let mut to_create: Vec<EndpointSlice> = Vec::new();
    let mut to_update: Vec<EndpointSlice> = Vec::new();
    let mut to_delete: Vec<EndpointSlice> = Vec::new();

    let mut existing_by_pm: BTreeMap<String, Vec<&EndpointSlice>> = BTreeMap::new();
    for s in existing {
        if owned_by(s, svc) {
            existing_by_pm
                .entry(port_map_key(s.ports.as_deref().unwrap_or_default()))
                .or_default()
                .push(s);
        } else {
            to_delete.push((*s).clone());
        }
    }

    let mut desired_by_pm: BTreeMap<String, PortGroup> = BTreeMap::new();
    for pod in pods {
        if !should_be_in_endpoints(pod, true) {
            continue;
        }
        let ports = endpoint_ports(svc, pod);
        let key = port_map_key(&ports);
        let zone = if pod.node_name.is_empty() {
            // Deviation from upstream: without a kubelet, pods may carry IPs without being bound to a
            // node; upstream would look up node "" and skip them. On a real cluster this case never occurs.
            None
        } else {
            match nodes.get(&*pod.node_name) {
                Some(z) => z.as_deref(),
                None if svc.publish_not_ready => None,
                None => {
                    plan.missing_nodes.push(format!(
                        "skipping Pod {} for Service {}/{}: Node {} Not Found",
                        pod.name, svc.namespace, svc.name, pod.node_name
                    ));
                    continue;
                }
            }
        };
        let group = desired_by_pm.entry(key).or_insert_with(|| PortGroup {
            ports: ports.clone(),
            desired: BTreeMap::new(),
        });
        let ep = pod_to_endpoint(pod, zone, svc, address_type);
        if !ep.addresses.is_empty() {
            group.desired.insert(endpoint_key(&ep), ep);
        }
    }

    for (pm, group) in desired_by_pm.iter_mut() {
        plan.endpoints_desired += group.desired.len();
        let ex = existing_by_pm.get(pm).cloned().unwrap_or_default();
        let (c, u, d) = reconcile_port_mapping(svc, &ex, group, max, address_type);
        to_create.extend(c);
        to_update.extend(u);
        to_delete.extend(d);
    }
    for (pm, slices) in &existing_by_pm {
        if !desired_by_pm.contains_key(pm) {
            to_delete.extend(slices.iter().map(|s| (*s).clone()));
        }
    }

    // With nothing to publish, a Service still has one (empty) slice per address type.
    if existing.len() == to_delete.len() && to_create.is_empty() {
        let placeholder = new_slice(svc, &[], address_type);
        if to_delete.len() == 1 && same_placeholder(&to_delete[0], &placeholder) {
            to_delete.clear();
        } else {
            to_create.push(placeholder);
        }
    }

    // Hints: unchanged slices with wrong hints become updates; new and updated slices get them set.
    let hinting = Hinting::of(svc);
    let changed: BTreeSet<String> = to_update
        .iter()
        .chain(to_delete.iter())
        .map(|s| slice_name(s).to_string())
        .collect();
    for s in existing {
        if !changed.contains(slice_name(s)) && hinting.needs_update(s) {
            to_update.push((*s).clone());
        }
    }
    for s in to_create.iter_mut().chain(to_update.iter_mut()) {
        hinting.update(s);
    }

    // Rather than create one slice and delete another, rewrite the one that would go.
    let mut i = 0;
    while i < to_delete.len() && !to_create.is_empty() {
        let d = &to_delete[i];
        let fits = to_create
            .last()
            .is_some_and(|c| c.address_type == d.address_type)
            && owned_by(d, svc);
        if fits {
            if let Some(mut c) = to_create.pop() {
                c.metadata.name = d.metadata.name.clone();
                to_update.push(c);
            }
            to_delete.remove(i);
        } else {
            i += 1;
        }
    }

    // A Service being deleted gets no new slices: the garbage collector is removing them.
    if svc.deleting {
        to_create.clear();
    }
    plan.create.extend(to_create);
    plan.update.extend(to_update);
    plan.delete.extend(to_delete);
}

/// Upstream `reconcileByPortMapping`: keep endpoints in the slices they are in, update in place, fill the
/// fullest changed slices first, then the unchanged slice closest to full, then new slices.
fn reconcile_port_mapping(
    svc: &ServiceInfo,
    existing: &[&EndpointSlice],
    group: &mut PortGroup,
    max: usize,
    address_type: &str,
) -> (Vec<EndpointSlice>, Vec<EndpointSlice>, Vec<EndpointSlice>) {
    let mut by_name: BTreeMap<String, EndpointSlice> = BTreeMap::new();
    let mut unchanged: BTreeSet<String> = BTreeSet::new();
    let mut to_update: BTreeSet<String> = BTreeSet::new();
    let mut to_delete: BTreeSet<String> = BTreeSet::new();
    let desired = &mut group.desired;

    for s in existing {
        let name = slice_name(s).to_string();
        let mut kept = Vec::new();
        let mut updated = false;
        for ep in &s.endpoints {
            if let Some(want) = desired.remove(&endpoint_key(ep)) {
                if !equal_beyond_hash(&want, ep) {
                    updated = true;
                }
                kept.push(want);
            }
        }
        let (labels, labels_changed) = slice_labels(s.metadata.labels.as_ref(), svc);
        if updated || kept.len() != s.endpoints.len() {
            if kept.is_empty() {
                to_delete.insert(name.clone());
                by_name.insert(name, (*s).clone());
            } else {
                let mut copy = (*s).clone();
                copy.endpoints = kept;
                copy.metadata.labels = Some(labels);
                to_update.insert(name.clone());
                by_name.insert(name, copy);
            }
        } else if labels_changed {
            let mut copy = (*s).clone();
            copy.metadata.labels = Some(labels);
            to_update.insert(name.clone());
            by_name.insert(name, copy);
        } else {
            unchanged.insert(name.clone());
            by_name.insert(name, (*s).clone());
        }
    }

    let pop = |desired: &mut BTreeMap<EndpointKey, Endpoint>| desired.pop_first().map(|(_, e)| e);

    if !desired.is_empty() && !to_update.is_empty() {
        let mut names: Vec<String> = to_update.iter().cloned().collect();
        names.sort_by_key(|n| std::cmp::Reverse(by_name.get(n).map_or(0, |s| s.endpoints.len())));
        for n in names {
            if let Some(s) = by_name.get_mut(&n) {
                while !desired.is_empty() && s.endpoints.len() < max {
                    if let Some(e) = pop(desired) {
                        s.endpoints.push(e);
                    }
                }
            }
        }
    }

    let mut to_create = Vec::new();
    while !desired.is_empty() {
        let mut fill: Option<String> = None;
        if desired.len() < max && !unchanged.is_empty() {
            // The unchanged slice that ends up closest to full.
            let mut closest = max;
            for n in &unchanged {
                let len = by_name.get(n).map_or(0, |s| s.endpoints.len());
                if len + desired.len() <= max {
                    let diff = max - (len + desired.len());
                    if diff < closest {
                        closest = diff;
                        fill = Some(n.clone());
                        if diff == 0 {
                            break;
                        }
                    }
                }
            }
        }
        match fill.and_then(|n| by_name.get_mut(&n).map(|s| (n, s))) {
            Some((n, s)) => {
                while !desired.is_empty() && s.endpoints.len() < max {
                    if let Some(e) = pop(desired) {
                        s.endpoints.push(e);
                    }
                }
                unchanged.remove(&n);
                to_update.insert(n);
            }
            None => {
                let mut s = new_slice(svc, &group.ports, address_type);
                while !desired.is_empty() && s.endpoints.len() < max {
                    if let Some(e) = pop(desired) {
                        s.endpoints.push(e);
                    }
                }
                to_create.push(s);
            }
        }
    }

    let take = |names: &BTreeSet<String>, by_name: &BTreeMap<String, EndpointSlice>| {
        names
            .iter()
            .filter_map(|n| by_name.get(n).cloned())
            .collect::<Vec<_>>()
    };
    (
        to_create,
        take(&to_update, &by_name),
        take(&to_delete, &by_name),
    )
}

#[cfg(test)]
#[path = "slices_tests.rs"]
mod tests;
