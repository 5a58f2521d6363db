//! What the LoadBalancer IPAM controller reads from Services, pools and namespaces, parsed once when a
//! watch event arrives so the allocator works on plain values.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::Deserialize;
use serde_json::Value;

/// The `spec.loadBalancerClass` this controller serves (besides an unset class).
pub const LB_CLASS: &str = "svcplane.io/lb";
/// Requested addresses, one per family: `"192.0.2.10"` or `"192.0.2.10,2001:db8::10"`.
pub const ANN_LOAD_BALANCER_IPS: &str = "svcplane.io/loadBalancerIPs";
/// The one pool a Service wants its addresses from.
pub const ANN_IP_POOL: &str = "svcplane.io/ip-pool";
/// Services with the same key (and no clashing port) may share an address.
pub const ANN_ALLOW_SHARED_IP: &str = "svcplane.io/allow-shared-ip";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(ip: &IpAddr) -> Self {
        if ip.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }

    /// The name used in `spec.ipFamilies`.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }

    /// The key of the pool status field.
    pub fn status_field(self) -> &'static str {
        match self {
            Family::V4 => "ipv4",
            Family::V6 => "ipv6",
        }
    }
}

pub fn ip_to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

pub fn u128_to_ip(n: u128, family: Family) -> IpAddr {
    match family {
        Family::V4 => IpAddr::from(std::net::Ipv4Addr::from(n as u32)),
        Family::V6 => IpAddr::from(std::net::Ipv6Addr::from(n)),
    }
}

/// A label selector (matchLabels and matchExpressions, ANDed).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector {
    requirements: Vec<(String, Op, Vec<String>)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

impl Selector {
    pub fn parse(sel: &LabelSelector) -> Result<Self, String> {
        let mut requirements = Vec::new();
        for (k, v) in sel.match_labels.iter().flatten() {
            requirements.push((k.clone(), Op::In, vec![v.clone()]));
        }
        for e in sel.match_expressions.iter().flatten() {
            let op = match e.operator.as_str() {
                "In" => Op::In,
                "NotIn" => Op::NotIn,
                "Exists" => Op::Exists,
                "DoesNotExist" => Op::DoesNotExist,
                other => return Err(format!("unknown selector operator {other:?}")),
            };
            requirements.push((e.key.clone(), op, e.values.clone().unwrap_or_default()));
        }
        Ok(Self { requirements })
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|(k, op, values)| {
            let v = labels.get(k);
            match op {
                Op::In => v.is_some_and(|v| values.contains(v)),
                Op::NotIn => v.is_none_or(|v| !values.contains(v)),
                Op::Exists => v.is_some(),
                Op::DoesNotExist => v.is_none(),
            }
        })
    }
}

/// Assignable addresses of one pool entry, inclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    pub family: Family,
    pub first: u128,
    pub last: u128,
}

impl Block {
    /// A CIDR (its first and last address left out when it has more than two: they are the network and
    /// broadcast addresses of a LAN the pool may be carved from) or an inclusive `first-last` range.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Some((a, b)) = s.split_once('-') {
            let first: IpAddr = a
                .trim()
                .parse()
                .map_err(|_| format!("invalid range {s:?}"))?;
            let last: IpAddr = b
                .trim()
                .parse()
                .map_err(|_| format!("invalid range {s:?}"))?;
            let family = Family::of(&first);
            if family != Family::of(&last) || ip_to_u128(first) > ip_to_u128(last) {
                return Err(format!("invalid range {s:?}"));
            }
            return Ok(Self {
                family,
                first: ip_to_u128(first),
                last: ip_to_u128(last),
            });
        }
        let (addr, len) = s
            .split_once('/')
            .ok_or_else(|| format!("invalid CIDR {s:?}"))?;
        let ip: IpAddr = addr.parse().map_err(|_| format!("invalid CIDR {s:?}"))?;
        let family = Family::of(&ip);
        let bits: u32 = if family == Family::V4 { 32 } else { 128 };
        let len: u32 = len
            .parse()
            .ok()
            .filter(|l| *l <= bits)
            .ok_or_else(|| format!("invalid CIDR {s:?}"))?;
        let host_bits = bits - len;
        let host_mask: u128 = if host_bits == 128 {
            u128::MAX
        } else {
            (1u128 << host_bits) - 1
        };
        let first = ip_to_u128(ip) & !host_mask;
        let last = first | host_mask;
        if host_bits >= 2 {
            return Ok(Self {
                family,
                first: first + 1,
                last: last - 1,
            });
        }
        Ok(Self {
            family,
            first,
            last,
        })
    }

    pub fn contains(&self, ip: &IpAddr) -> bool {
        Family::of(ip) == self.family && (self.first..=self.last).contains(&ip_to_u128(*ip))
    }

    pub fn size(&self) -> u128 {
        (self.last - self.first).saturating_add(1)
    }
}

/// A LoadBalancerIPPool as the allocator uses it.
#[derive(Clone, Debug, PartialEq)]
pub struct Pool {
    pub name: String,
    pub blocks: Vec<Block>,
    pub auto_assign: bool,
    pub priority: i32,
    pub service_selector: Option<Selector>,
    pub namespace_selector: Option<Selector>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PoolSpecJson {
    #[serde(default)]
    cidrs: Vec<String>,
    auto_assign: Option<bool>,
    priority: Option<i32>,
    service_selector: Option<LabelSelector>,
    namespace_selector: Option<LabelSelector>,
}

impl Pool {
    /// Parses a pool object's `spec`. Pools that fail here (possible on a real cluster, where only the
    /// CRD's schema checks them) are left out, with the reason logged by the caller.
    pub fn from_spec(name: &str, spec: &Value) -> Result<Self, String> {
        let spec: PoolSpecJson =
            serde_json::from_value(spec.clone()).map_err(|e| format!("spec: {e}"))?;
        let mut blocks = Vec::new();
        for c in &spec.cidrs {
            blocks.push(Block::parse(c)?);
        }
        if blocks.is_empty() {
            return Err("spec.cidrs is empty".into());
        }
        Ok(Self {
            name: name.to_string(),
            blocks,
            auto_assign: spec.auto_assign.unwrap_or(true),
            priority: spec.priority.unwrap_or(0),
            service_selector: spec
                .service_selector
                .as_ref()
                .map(Selector::parse)
                .transpose()?,
            namespace_selector: spec
                .namespace_selector
                .as_ref()
                .map(Selector::parse)
                .transpose()?,
        })
    }

    pub fn contains(&self, ip: &IpAddr) -> bool {
        self.blocks.iter().any(|b| b.contains(ip))
    }

    pub fn has_family(&self, f: Family) -> bool {
        self.blocks.iter().any(|b| b.family == f)
    }

    /// Assignable addresses of a family (overlapping entries are refused by validation).
    pub fn total(&self, f: Family) -> u128 {
        self.blocks
            .iter()
            .filter(|b| b.family == f)
            .fold(0u128, |acc, b| acc.saturating_add(b.size()))
    }

    /// Whether the pool's selectors admit a Service with these labels in a namespace with those labels.
    pub fn admits(
        &self,
        svc_labels: &BTreeMap<String, String>,
        ns_labels: &BTreeMap<String, String>,
    ) -> bool {
        self.service_selector
            .as_ref()
            .is_none_or(|s| s.matches(svc_labels))
            && self
                .namespace_selector
                .as_ref()
                .is_none_or(|s| s.matches(ns_labels))
    }
}

/// (protocol, port) of one Service port.
pub type PortKey = (String, i32);

/// What of a Service decides its LoadBalancer addresses.
#[derive(Clone, Debug, PartialEq)]
pub struct SvcInfo {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// `creationTimestamp` in nanoseconds: older Services win conflicts found on a rebuild.
    pub created: i128,
    pub labels: BTreeMap<String, String>,
    /// `type: LoadBalancer` with our class (or none).
    pub ours: bool,
    /// `spec.ipFamilies`, in order (primary first).
    pub families: Vec<Family>,
    /// Every family must get an address (SingleStack, RequireDualStack); PreferDualStack settles for the
    /// primary one.
    pub require_all_families: bool,
    /// Requested addresses, or why the request cannot be read.
    pub requested: Result<Vec<IpAddr>, String>,
    pub requested_pool: Option<String>,
    pub sharing_key: Option<String>,
    pub ports: Vec<PortKey>,
    pub local: bool,
    pub selector: Option<BTreeMap<String, String>>,
    /// Addresses in `status.loadBalancer.ingress`.
    pub current: Vec<IpAddr>,
}

impl SvcInfo {
    pub fn key(&self) -> (String, String) {
        (self.namespace.clone(), self.name.clone())
    }

    pub fn from_service(svc: &Service) -> Option<Self> {
        let meta = &svc.metadata;
        let namespace = meta.namespace.clone()?;
        let name = meta.name.clone()?;
        let spec = svc.spec.clone().unwrap_or_default();
        let ann = meta.annotations.clone().unwrap_or_default();
        let ours = spec.type_.as_deref() == Some("LoadBalancer")
            && spec
                .load_balancer_class
                .as_deref()
                .is_none_or(|c| c == LB_CLASS);
        let requested = match ann.get(ANN_LOAD_BALANCER_IPS) {
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse::<IpAddr>().map_err(|_| {
                        format!("invalid IP {s:?} in annotation {ANN_LOAD_BALANCER_IPS}")
                    })
                })
                .collect(),
            None => match spec.load_balancer_ip.as_deref().filter(|s| !s.is_empty()) {
                Some(s) => s
                    .parse::<IpAddr>()
                    .map(|ip| vec![ip])
                    .map_err(|_| format!("invalid IP {s:?} in spec.loadBalancerIP")),
                None => Ok(Vec::new()),
            },
        };
        let mut families: Vec<Family> = spec
            .ip_families
            .iter()
            .flatten()
            .filter_map(|f| match f.as_str() {
                "IPv4" => Some(Family::V4),
                "IPv6" => Some(Family::V6),
                _ => None,
            })
            .collect();
        if families.is_empty() {
            families = spec
                .cluster_ips
                .iter()
                .flatten()
                .filter_map(|s| s.parse::<IpAddr>().ok())
                .map(|ip| Family::of(&ip))
                .collect();
        }
        if families.is_empty() {
            families.push(Family::V4);
        }
        families.dedup();
        let current = svc
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|i| i.ip.as_deref())
            .filter_map(|s| s.parse::<IpAddr>().ok())
            .collect();
        Some(Self {
            uid: meta.uid.clone().unwrap_or_default(),
            created: meta
                .creation_timestamp
                .as_ref()
                .map(|t| t.0.as_nanosecond())
                .unwrap_or(0),
            labels: meta.labels.clone().unwrap_or_default(),
            ours,
            families,
            require_all_families: spec.ip_family_policy.as_deref() != Some("PreferDualStack"),
            requested,
            requested_pool: ann
                .get(ANN_IP_POOL)
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty()),
            sharing_key: ann
                .get(ANN_ALLOW_SHARED_IP)
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty()),
            ports: spec
                .ports
                .iter()
                .flatten()
                .map(|p| (p.protocol.clone().unwrap_or_else(|| "TCP".into()), p.port))
                .collect(),
            local: spec.external_traffic_policy.as_deref() == Some("Local"),
            selector: spec.selector.clone(),
            current,
            namespace,
            name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cidrs_leave_out_network_and_broadcast_ranges_do_not() {
        let b = Block::parse("192.0.2.0/30").unwrap();
        assert_eq!(b.size(), 2);
        assert!(!b.contains(&"192.0.2.0".parse().unwrap()));
        assert!(b.contains(&"192.0.2.1".parse().unwrap()));
        assert!(!b.contains(&"192.0.2.3".parse().unwrap()));
        assert_eq!(Block::parse("192.0.2.7/32").unwrap().size(), 1);
        assert_eq!(Block::parse("192.0.2.6/31").unwrap().size(), 2);
        let r = Block::parse("192.0.2.10-192.0.2.12").unwrap();
        assert_eq!(r.size(), 3);
        assert!(r.contains(&"192.0.2.10".parse().unwrap()));
        assert_eq!(
            Block::parse("2001:db8::/64").unwrap().size(),
            (1u128 << 64) - 2
        );
        assert!(Block::parse("192.0.2.9-192.0.2.1").is_err());
        assert!(Block::parse("10.0.0.0/33").is_err());
    }

    #[test]
    fn pools_parse_defaults_and_selectors() {
        let p = Pool::from_spec(
            "p",
            &json!({"cidrs": ["192.0.2.0/24"], "serviceSelector": {"matchLabels": {"tier": "web"}}}),
        )
        .unwrap();
        assert!(p.auto_assign);
        assert_eq!(p.priority, 0);
        let web = BTreeMap::from([("tier".to_string(), "web".to_string())]);
        assert!(p.admits(&web, &BTreeMap::new()));
        assert!(!p.admits(&BTreeMap::new(), &BTreeMap::new()));
        assert!(Pool::from_spec("p", &json!({"cidrs": []})).is_err());
    }

    #[test]
    fn selector_operators() {
        let sel: LabelSelector = serde_json::from_value(json!({"matchExpressions": [
            {"key": "a", "operator": "In", "values": ["1", "2"]},
            {"key": "b", "operator": "NotIn", "values": ["x"]},
            {"key": "c", "operator": "Exists"},
            {"key": "d", "operator": "DoesNotExist"}]}))
        .unwrap();
        let s = Selector::parse(&sel).unwrap();
        let l = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        assert!(s.matches(&l(&[("a", "2"), ("c", "")])));
        assert!(!s.matches(&l(&[("a", "3"), ("c", "")])));
        assert!(!s.matches(&l(&[("a", "1"), ("b", "x"), ("c", "")])));
        assert!(!s.matches(&l(&[("a", "1")])));
        assert!(!s.matches(&l(&[("a", "1"), ("c", ""), ("d", "")])));
    }

    #[test]
    fn service_projection_reads_requests_and_status() {
        let svc: Service = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default", "annotations": {
                ANN_LOAD_BALANCER_IPS: "192.0.2.10, 2001:db8::10", ANN_ALLOW_SHARED_IP: "k", ANN_IP_POOL: "blue"}},
            "spec": {"type": "LoadBalancer", "ipFamilies": ["IPv4", "IPv6"], "ipFamilyPolicy": "PreferDualStack",
                     "loadBalancerIP": "192.0.2.99", "ports": [{"port": 80}, {"port": 53, "protocol": "UDP"}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.10", "ipMode": "VIP"}]}}
        }))
        .unwrap();
        let i = SvcInfo::from_service(&svc).unwrap();
        assert!(i.ours);
        assert_eq!(i.families, [Family::V4, Family::V6]);
        assert!(!i.require_all_families);
        // The annotation wins over the deprecated field.
        assert_eq!(
            i.requested.unwrap(),
            [
                "192.0.2.10".parse::<IpAddr>().unwrap(),
                "2001:db8::10".parse().unwrap()
            ]
        );
        assert_eq!(i.requested_pool.as_deref(), Some("blue"));
        assert_eq!(i.sharing_key.as_deref(), Some("k"));
        assert_eq!(i.ports, [("TCP".to_string(), 80), ("UDP".to_string(), 53)]);
        assert_eq!(i.current, ["192.0.2.10".parse::<IpAddr>().unwrap()]);

        let other: Service = serde_json::from_value(json!({
            "metadata": {"name": "x", "namespace": "default"},
            "spec": {"type": "LoadBalancer", "loadBalancerClass": "example.com/other", "loadBalancerIP": "bad"}
        }))
        .unwrap();
        let o = SvcInfo::from_service(&other).unwrap();
        assert!(!o.ours);
        assert!(o.requested.unwrap_err().contains("spec.loadBalancerIP"));
    }
}
