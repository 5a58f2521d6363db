//! The v1 Endpoints object of a Service, as upstream's endpoints controller writes it: one address per pod
//! (the Service's primary family), ready and not-ready addresses, subsets packed by identical port sets,
//! and at most 1000 addresses with the over-capacity annotation past that. Pure.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::model::{PodInfo, ServiceInfo};
use crate::slices::{find_port, should_be_in_endpoints, should_set_hostname, LABEL_HEADLESS};

/// Addresses an Endpoints object holds at most.
pub const MAX_CAPACITY: usize = 1000;
pub const ANNOTATION_OVER_CAPACITY: &str = "endpoints.kubernetes.io/over-capacity";
pub const ANNOTATION_LAST_CHANGE_TRIGGER_TIME: &str =
    "endpoints.kubernetes.io/last-change-trigger-time";

/// The address of this pod for the Service's primary family (upstream `podToEndpointAddressForService`).
fn pod_address(svc: &ServiceInfo, pod: &PodInfo) -> Option<EndpointAddress> {
    let want_v6 = match svc.ip_families.first() {
        Some(f) => f == "IPv6",
        None if svc.ip_set() => svc
            .cluster_ip
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_ipv6()),
        None => pod.ips.first().is_some_and(|ip| ip.is_ipv6()),
    };
    let ip = pod.ips.iter().find(|ip| ip.is_ipv6() == want_v6)?;
    Some(EndpointAddress {
        ip: ip.to_string(),
        // An empty nodeName would not validate; on a real cluster a pod with an IP always has a node.
        node_name: (!pod.node_name.is_empty()).then(|| pod.node_name.to_string()),
        hostname: should_set_hostname(pod, svc).then(|| pod.hostname.clone()),
        target_ref: Some(ObjectReference {
            kind: Some("Pod".into()),
            namespace: Some(pod.namespace.to_string()),
            name: Some(pod.name.to_string()),
            uid: Some(pod.uid.clone()),
            ..Default::default()
        }),
    })
}

/// Identity of an address when packing (upstream: IP + target UID).
type AddrKey = (String, String);

fn addr_key(a: &EndpointAddress) -> AddrKey {
    (
        a.ip.clone(),
        a.target_ref
            .as_ref()
            .and_then(|t| t.uid.clone())
            .unwrap_or_default(),
    )
}

/// Port identity; `None` stands for "no ports" (a headless Service without ports).
type PortKey = Option<(String, i32, String, Option<String>)>;

fn port_key(p: &EndpointPort) -> PortKey {
    Some((
        p.name.clone().unwrap_or_default(),
        p.port,
        p.protocol.clone().unwrap_or_else(|| "TCP".into()),
        p.app_protocol.clone(),
    ))
}

/// Puts subsets into one canonical layout: each distinct set of (address, readiness) gets one subset with
/// all the ports it serves; a not-ready mention of an address wins over a ready one. Addresses are ordered
/// by IP then UID (as upstream); ports and subsets in a fixed order of our own (upstream orders them by a
/// hash), so two layouts of the same content compare equal after repacking.
pub fn repack(subsets: &[EndpointSubset]) -> Vec<EndpointSubset> {
    let mut addrs: BTreeMap<AddrKey, EndpointAddress> = BTreeMap::new();
    let mut by_port: BTreeMap<PortKey, BTreeMap<AddrKey, bool>> = BTreeMap::new();
    for s in subsets {
        let ports: Vec<PortKey> = match s.ports.as_deref() {
            Some(p) if !p.is_empty() => p.iter().map(port_key).collect(),
            _ => vec![None],
        };
        for (list, ready) in [(&s.addresses, true), (&s.not_ready_addresses, false)] {
            for a in list.iter().flatten() {
                let mut a = a.clone();
                if let Some(t) = a.target_ref.as_mut() {
                    t.resource_version = None;
                }
                let k = addr_key(&a);
                addrs.entry(k.clone()).or_insert(a);
                for p in &ports {
                    let e = by_port.entry(p.clone()).or_default();
                    let prev = e.get(&k).copied().unwrap_or(true);
                    e.insert(k.clone(), prev && ready);
                }
            }
        }
    }
    let mut groups: BTreeMap<Vec<(AddrKey, bool)>, BTreeSet<PortKey>> = BTreeMap::new();
    for (p, set) in by_port {
        groups
            .entry(set.into_iter().collect())
            .or_default()
            .insert(p);
    }
    groups
        .into_iter()
        .map(|(members, ports)| {
            let pick = |want: bool| -> Option<Vec<EndpointAddress>> {
                let v: Vec<EndpointAddress> = members
                    .iter()
                    .filter(|(_, r)| *r == want)
                    .filter_map(|(k, _)| addrs.get(k).cloned())
                    .collect();
                (!v.is_empty()).then_some(v)
            };
            let ports: Vec<EndpointPort> = ports
                .into_iter()
                .flatten()
                .map(|(name, port, protocol, app_protocol)| EndpointPort {
                    name: Some(name),
                    port,
                    protocol: Some(protocol),
                    app_protocol,
                })
                .collect();
            EndpointSubset {
                addresses: pick(true),
                not_ready_addresses: pick(false),
                ports: (!ports.is_empty()).then_some(ports),
            }
        })
        .collect()
}

/// The subsets the Service's Endpoints should have, before truncation.
pub fn desired_subsets(svc: &ServiceInfo, pods: &[&PodInfo]) -> Vec<EndpointSubset> {
    let mut raw = Vec::new();
    for pod in pods {
        if !should_be_in_endpoints(pod, svc.publish_not_ready) {
            continue;
        }
        let Some(addr) = pod_address(svc, pod) else {
            continue;
        };
        let ready = svc.publish_not_ready || pod.ready;
        let subset = |ports: Option<Vec<EndpointPort>>| EndpointSubset {
            addresses: ready.then(|| vec![addr.clone()]),
            not_ready_addresses: (!ready).then(|| vec![addr.clone()]),
            ports,
        };
        if svc.ports.is_empty() {
            if svc.headless() {
                raw.push(subset(None));
            }
            continue;
        }
        for sp in &svc.ports {
            let Some(port) = find_port(pod, &sp.target, &sp.protocol) else {
                continue;
            };
            raw.push(subset(Some(vec![EndpointPort {
                name: Some(sp.name.clone()),
                port,
                protocol: Some(sp.protocol.clone()),
                app_protocol: sp.app_protocol.clone(),
            }])));
        }
    }
    repack(&raw)
}

fn count(subsets: &[EndpointSubset]) -> (usize, usize) {
    subsets.iter().fold((0, 0), |(r, n), s| {
        (
            r + s.addresses.as_ref().map_or(0, Vec::len),
            n + s.not_ready_addresses.as_ref().map_or(0, Vec::len),
        )
    })
}

/// Cuts subsets down to [`MAX_CAPACITY`] addresses, ready ones first, each subset keeping its share
/// (upstream `truncateEndpoints`). Returns whether anything was cut.
pub fn truncate(subsets: &mut [EndpointSubset]) -> bool {
    let (ready, not_ready) = count(subsets);
    if ready + not_ready <= MAX_CAPACITY {
        return false;
    }
    let truncate_ready = ready > MAX_CAPACITY;
    let (max, total) = if truncate_ready {
        (MAX_CAPACITY, ready)
    } else {
        (MAX_CAPACITY - ready, not_ready)
    };
    let mut can_add = max;
    for s in subsets.iter_mut() {
        let list = if truncate_ready {
            &mut s.addresses
        } else {
            &mut s.not_ready_addresses
        };
        let n = list.as_ref().map_or(0, Vec::len);
        let share = ((n as f64 / total as f64) * max as f64).ceil() as usize;
        let keep = share.min(can_add);
        if let Some(l) = list.as_mut() {
            l.truncate(keep);
        }
        can_add -= list.as_ref().map_or(0, Vec::len);
        if truncate_ready {
            s.not_ready_addresses = None;
        }
    }
    true
}

/// Labels an Endpoints carries: the Service's, plus the headless label when it has no ClusterIP.
fn endpoints_labels(svc: &ServiceInfo) -> BTreeMap<String, String> {
    let mut l = svc.labels.clone();
    if svc.ip_set() {
        l.remove(LABEL_HEADLESS);
    } else {
        l.insert(LABEL_HEADLESS.into(), String::new());
    }
    l
}

/// What the controller keeps of an existing Endpoints object: its metadata (the base of a rewrite) and a
/// digest of its subsets in canonical layout. Holding whole address lists for every Service would cost
/// more than everything else the controller caches; comparing digests decides the same as comparing
/// content.
#[derive(Clone, Debug)]
pub struct CurrentEndpoints {
    pub metadata: ObjectMeta,
    subsets_digest: u128,
    /// Ready plus not-ready addresses, as stored.
    addresses: usize,
}

/// 128 bits of SipHash over the canonical JSON of repacked subsets: equal content gives equal digests,
/// and a collision between two different address lists is not a practical concern.
fn subsets_digest(repacked: &[EndpointSubset]) -> u128 {
    use std::hash::{Hash, Hasher};
    let bytes = serde_json::to_vec(repacked).unwrap_or_default();
    let half = |salt: u8| {
        #[allow(deprecated)]
        let mut h = std::hash::SipHasher::new_with_keys(0x5eed, u64::from(salt));
        bytes.hash(&mut h);
        h.finish()
    };
    (u128::from(half(1)) << 64) | u128::from(half(2))
}

impl CurrentEndpoints {
    pub fn new(ep: &Endpoints) -> Self {
        let subsets = ep.subsets.as_deref().unwrap_or_default();
        let (r, n) = count(subsets);
        let mut metadata = ep.metadata.clone();
        // Never sent back (an update without managedFields keeps the stored ones) and often the largest
        // part of an object.
        metadata.managed_fields = None;
        Self {
            metadata,
            subsets_digest: subsets_digest(&repack(subsets)),
            addresses: r + n,
        }
    }
}

impl From<Endpoints> for CurrentEndpoints {
    fn from(ep: Endpoints) -> Self {
        Self::new(&ep)
    }
}

/// The Endpoints to write for this Service, or `None` when `current` is already right (upstream compares
/// subsets, labels without the headless one, and whether the capacity annotation is set correctly).
pub fn plan(
    svc: &ServiceInfo,
    pods: &[&PodInfo],
    current: Option<&Endpoints>,
) -> Option<Endpoints> {
    plan_current(svc, pods, current.map(CurrentEndpoints::new).as_ref())
}

/// [`plan`] against the cached form of the current Endpoints.
pub fn plan_current(
    svc: &ServiceInfo,
    pods: &[&PodInfo],
    current: Option<&CurrentEndpoints>,
) -> Option<Endpoints> {
    let subsets = desired_subsets(svc, pods);
    if let Some(cur) = current {
        let mut cur_labels = cur.metadata.labels.clone().unwrap_or_default();
        cur_labels.remove(LABEL_HEADLESS);
        let annotations = cur.metadata.annotations.clone().unwrap_or_default();
        let stored = cur.addresses;
        let capacity_ok =
            stored <= MAX_CAPACITY && !annotations.contains_key(ANNOTATION_OVER_CAPACITY);
        // Truncated content is compared as truncated.
        let mut want = subsets.clone();
        let truncated = truncate(&mut want);
        let want_digest = if truncated {
            subsets_digest(&repack(&want))
        } else {
            subsets_digest(&subsets)
        };
        let same_subsets = cur.subsets_digest == want_digest;
        let capacity_ok = if truncated {
            annotations
                .get(ANNOTATION_OVER_CAPACITY)
                .map(String::as_str)
                == Some("truncated")
                && stored <= MAX_CAPACITY
        } else {
            capacity_ok
        };
        if same_subsets && cur_labels == svc.labels && capacity_ok {
            return None;
        }
    }
    let mut out = match current {
        Some(cur) => Endpoints {
            metadata: cur.metadata.clone(),
            subsets: None,
        },
        None => Endpoints {
            metadata: ObjectMeta {
                name: Some(svc.name.clone()),
                namespace: Some(svc.namespace.clone()),
                ..Default::default()
            },
            subsets: None,
        },
    };
    let mut subsets = subsets;
    let truncated = truncate(&mut subsets);
    let mut annotations = out.metadata.annotations.take().unwrap_or_default();
    // This controller records no trigger times, so a stale one must not stay behind.
    annotations.remove(ANNOTATION_LAST_CHANGE_TRIGGER_TIME);
    if truncated {
        annotations.insert(ANNOTATION_OVER_CAPACITY.into(), "truncated".into());
    } else {
        annotations.remove(ANNOTATION_OVER_CAPACITY);
    }
    out.metadata.annotations = (!annotations.is_empty()).then_some(annotations);
    out.metadata.labels = Some(endpoints_labels(svc));
    out.subsets = (!subsets.is_empty()).then_some(subsets);
    Some(out)
}

#[cfg(test)]
#[path = "endpoints_tests.rs"]
mod tests;
