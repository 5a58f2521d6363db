//! The election, as a pure function of what every agent sees alike: LoadBalancer IPs with their traffic
//! policy, which nodes hold ready endpoints of each Service, which nodes are Ready, and which nodes' agents
//! hold a live announce Lease. Every agent computes the same answer from the same facts, so no per-IP
//! object is written anywhere.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// The LoadBalancer class whose addresses svcplane allocates (and so announces); unset means ours too.
pub const LB_CLASS: &str = "svcplane.io/lb";
/// Nodes with this label never announce (the well-known label cloud providers honour too).
pub const EXCLUDE_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

pub type Key = (String, String);

/// What the election needs of a Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceFacts {
    pub ips: Vec<IpAddr>,
    /// `externalTrafficPolicy: Local`: only nodes with a ready local endpoint may announce.
    pub local: bool,
}

impl ServiceFacts {
    /// `None` for a Service whose addresses are not ours to announce.
    pub fn of(svc: &Service) -> Option<ServiceFacts> {
        let spec = svc.spec.as_ref()?;
        if spec.type_.as_deref() != Some("LoadBalancer") {
            return None;
        }
        if spec
            .load_balancer_class
            .as_deref()
            .is_some_and(|c| c != LB_CLASS)
        {
            return None;
        }
        let ips: Vec<IpAddr> = svc
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|i| i.ip.as_deref()?.parse().ok())
            .collect();
        if ips.is_empty() {
            return None;
        }
        Some(ServiceFacts {
            ips,
            local: spec.external_traffic_policy.as_deref() == Some("Local"),
        })
    }
}

/// What the election needs of an EndpointSlice: its Service, family and the nodes with a ready endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SliceFacts {
    pub service: Key,
    pub ipv6: bool,
    pub ready_nodes: BTreeSet<String>,
}

impl SliceFacts {
    pub fn of(slice: &EndpointSlice) -> Option<SliceFacts> {
        let ns = slice.metadata.namespace.clone().unwrap_or_default();
        let svc = slice.metadata.labels.as_ref()?.get(SERVICE_NAME_LABEL)?;
        let ipv6 = match slice.address_type.as_str() {
            "IPv4" => false,
            "IPv6" => true,
            _ => return None,
        };
        let ready_nodes = slice
            .endpoints
            .iter()
            // A nil ready condition means ready (discovery/v1 says consumers must read it so).
            .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) != Some(false))
            .filter_map(|e| e.node_name.clone())
            .collect();
        Some(SliceFacts {
            service: (ns, svc.clone()),
            ipv6,
            ready_nodes,
        })
    }
}

/// What the election needs of a Node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFacts {
    /// Not `Ready=False`/`Unknown`, and not labelled out of load balancing.
    pub eligible: bool,
    pub internal_ips: Vec<IpAddr>,
}

impl NodeFacts {
    pub fn of(node: &Node) -> NodeFacts {
        let status = node.status.as_ref();
        let ready = status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
            // A node without a Ready condition yet is judged by its agent's lease alone.
            .is_none_or(|c| c.status == "True");
        let excluded = node
            .metadata
            .labels
            .as_ref()
            .is_some_and(|l| l.contains_key(EXCLUDE_LABEL));
        let internal_ips = status
            .and_then(|s| s.addresses.as_ref())
            .into_iter()
            .flatten()
            .filter(|a| a.type_ == "InternalIP")
            .filter_map(|a| a.address.parse().ok())
            .collect();
        NodeFacts {
            eligible: ready && !excluded,
            internal_ips,
        }
    }
}

/// The cluster as the announcer knows it.
#[derive(Debug, Default)]
pub struct View {
    pub services: HashMap<Key, ServiceFacts>,
    pub slices: HashMap<Key, SliceFacts>,
    pub nodes: HashMap<String, NodeFacts>,
}

/// Rendezvous (highest random weight) score of a node for an address. A fixed, portable hash (FNV-1a, then
/// a splitmix64 finaliser to spread FNV's weak low bits): agents of different builds and architectures must
/// agree, which rules out std's randomly keyed hasher. Losing a node moves only the addresses it held.
pub fn score(ip: &IpAddr, node: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |b: u8| {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    };
    match ip {
        IpAddr::V4(a) => a.octets().iter().for_each(|b| feed(*b)),
        IpAddr::V6(a) => a.octets().iter().for_each(|b| feed(*b)),
    }
    feed(0);
    node.bytes().for_each(feed);
    let mut z = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The winner among candidates: highest score, ties to the smaller name.
pub fn winner<'a>(
    ip: &IpAddr,
    candidates: impl IntoIterator<Item = &'a String>,
) -> Option<&'a String> {
    candidates
        .into_iter()
        .max_by(|a, b| score(ip, a).cmp(&score(ip, b)).then_with(|| b.cmp(a)))
}

impl View {
    /// Nodes with a ready endpoint of `svc` in the family of `ip`.
    fn local_nodes(&self, svc: &Key, ip: &IpAddr) -> BTreeSet<&String> {
        self.slices
            .values()
            .filter(|s| &s.service == svc && s.ipv6 == ip.is_ipv6())
            .flat_map(|s| s.ready_nodes.iter())
            .collect()
    }

    /// Which node announces each address, given the nodes whose agents hold a live lease.
    ///
    /// A node is a candidate when its lease is live and its Node is eligible (an unknown Node counts as
    /// eligible: the lease is the proof of life). For an address shared by several Services the candidates
    /// are those every sharing Service accepts; if they accept no common node, those any of them accepts, so
    /// at least some of the traffic flows.
    pub fn assign(&self, live: &BTreeSet<String>) -> BTreeMap<IpAddr, String> {
        let candidates: BTreeSet<&String> = live
            .iter()
            .filter(|n| self.nodes.get(*n).is_none_or(|f| f.eligible))
            .collect();
        let mut per_ip: BTreeMap<IpAddr, Vec<BTreeSet<&String>>> = BTreeMap::new();
        for (key, svc) in &self.services {
            for ip in &svc.ips {
                let accepted = if svc.local {
                    let local = self.local_nodes(key, ip);
                    candidates.intersection(&local).copied().collect()
                } else {
                    candidates.clone()
                };
                per_ip.entry(*ip).or_default().push(accepted);
            }
        }
        per_ip
            .into_iter()
            .filter_map(|(ip, sets)| {
                let mut all = sets.iter();
                let first = all.next()?.clone();
                let common: BTreeSet<&String> =
                    all.fold(first, |acc, s| acc.intersection(s).copied().collect());
                let pool = if common.is_empty() {
                    sets.iter().flatten().copied().collect()
                } else {
                    common
                };
                winner(&ip, pool).map(|w| (ip, w.clone()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn key(name: &str) -> Key {
        ("default".into(), name.into())
    }

    fn view_with(ips: &[&str], local: bool) -> View {
        let mut v = View::default();
        v.services.insert(
            key("web"),
            ServiceFacts {
                ips: ips.iter().map(|s| s.parse().expect("ip")).collect(),
                local,
            },
        );
        v
    }

    #[test]
    fn every_address_gets_one_live_node_and_only_its_own_moves() {
        let ips: Vec<String> = (1..=200).map(|i| format!("192.0.2.{i}")).collect();
        let refs: Vec<&str> = ips.iter().map(String::as_str).collect();
        let v = view_with(&refs, false);
        let all = v.assign(&nodes(&["a", "b", "c"]));
        assert_eq!(all.len(), 200);
        // Spread: each of three nodes gets a fair share.
        for n in ["a", "b", "c"] {
            let count = all.values().filter(|w| w.as_str() == n).count();
            assert!((40..=95).contains(&count), "{n}: {count}");
        }
        // Losing b moves b's addresses only.
        let without_b = v.assign(&nodes(&["a", "c"]));
        for (ip, w) in &all {
            if w != "b" {
                assert_eq!(&without_b[ip], w, "{ip} moved needlessly");
            } else {
                assert_ne!(without_b[ip], "b");
            }
        }
        assert!(v.assign(&BTreeSet::new()).is_empty());
    }

    #[test]
    fn score_is_stable_across_builds() {
        // Pinned values: a change here means agents of old and new builds would disagree on the winner.
        let ip: IpAddr = "192.168.50.200".parse().expect("ip");
        assert_eq!(score(&ip, "node-1"), score(&ip, "node-1"));
        assert_ne!(score(&ip, "node-1"), score(&ip, "node-2"));
        assert_eq!(score(&ip, "node-1"), 1_725_472_966_349_739_148);
    }

    #[test]
    fn local_policy_needs_a_ready_local_endpoint_of_the_family() {
        let mut v = view_with(&["192.0.2.1", "2001:db8::1"], true);
        v.slices.insert(
            key("web-abc"),
            SliceFacts {
                service: key("web"),
                ipv6: false,
                ready_nodes: nodes(&["b"]),
            },
        );
        let got = v.assign(&nodes(&["a", "b", "c"]));
        assert_eq!(
            got.get(&"192.0.2.1".parse().expect("ip"))
                .map(String::as_str),
            Some("b")
        );
        // No IPv6 endpoints anywhere: nobody announces the IPv6 address.
        assert_eq!(got.get(&"2001:db8::1".parse().expect("ip")), None);
        // b's lease gone: nobody may announce either.
        assert!(v.assign(&nodes(&["a", "c"])).is_empty());
    }

    #[test]
    fn unready_and_excluded_nodes_do_not_announce() {
        let mut v = view_with(&["192.0.2.1"], false);
        for n in ["a", "b"] {
            v.nodes.insert(
                n.into(),
                NodeFacts {
                    eligible: false,
                    internal_ips: vec![],
                },
            );
        }
        let got = v.assign(&nodes(&["a", "b", "c"]));
        assert_eq!(got.values().next().map(String::as_str), Some("c"));
    }

    #[test]
    fn shared_address_prefers_nodes_every_service_accepts() {
        let mut v = view_with(&["192.0.2.9"], true);
        v.services.insert(
            key("other"),
            ServiceFacts {
                ips: vec!["192.0.2.9".parse().expect("ip")],
                local: false,
            },
        );
        v.slices.insert(
            key("web-1"),
            SliceFacts {
                service: key("web"),
                ipv6: false,
                ready_nodes: nodes(&["c"]),
            },
        );
        let got = v.assign(&nodes(&["a", "b", "c"]));
        assert_eq!(got.values().next().map(String::as_str), Some("c"));
    }

    #[test]
    fn facts_from_objects() {
        let svc: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local"},
            "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}, {"hostname": "x"}, {"ip": "junk"}]}},
        }))
        .expect("service");
        assert_eq!(
            ServiceFacts::of(&svc),
            Some(ServiceFacts {
                ips: vec!["192.0.2.1".parse().expect("ip")],
                local: true
            })
        );
        let other: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"type": "LoadBalancer", "loadBalancerClass": "example.com/x"},
            "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}},
        }))
        .expect("service");
        assert_eq!(ServiceFacts::of(&other), None);
        let slice: EndpointSlice = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-x", "namespace": "default", "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "endpoints": [
                {"addresses": ["10.0.0.1"], "nodeName": "a"},
                {"addresses": ["10.0.0.2"], "nodeName": "b", "conditions": {"ready": false}},
                {"addresses": ["10.0.0.3"], "nodeName": "c", "conditions": {"ready": true}},
            ],
        }))
        .expect("slice");
        let f = SliceFacts::of(&slice).expect("facts");
        assert_eq!(f.ready_nodes, nodes(&["a", "c"]));
        let node: Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "a"},
            "status": {"conditions": [{"type": "Ready", "status": "False"}],
                       "addresses": [{"type": "InternalIP", "address": "192.168.50.11"}]},
        }))
        .expect("node");
        let f = NodeFacts::of(&node);
        assert!(!f.eligible);
        assert_eq!(
            f.internal_ips,
            vec!["192.168.50.11".parse::<IpAddr>().expect("ip")]
        );
    }
}
