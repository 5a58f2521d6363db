//! The shape of the nftables table: its fixed sets, maps and chains, and the vocabulary of the per-Service
//! elements that the model adds to and removes from them. Why this shape is explained in the crate doc.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

use crate::types::{Family, Frontend, Protocol};

/// kube-proxy's masquerade mark bit (0x4000).
pub const MASQUERADE_MARK: u32 = 0x4000;

/// Capacity of the dynamic `affinity` set (client, frontend, slot) entries.
pub const AFFINITY_SET_SIZE: u32 = 1_048_576;

/// A named set or map holding per-Service elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SetName {
    /// Every ClusterIP (a packet to one of them on a port no Service has is rejected).
    ClusterIps,
    /// frontend → verdict: where a new connection to a frontend goes.
    ServiceIps,
    /// eTP:Local frontend → verdict, for pods and the node itself (Cluster endpoints).
    ExternalLocalCluster,
    /// eTP:Local frontend → verdict, for everyone else (this node's endpoints).
    ExternalLocalLocal,
    /// frontend → `goto reject-chain` | `drop`, for frontends without (usable) endpoints.
    NoEndpointServices,
    /// frontend . slot → endpoint address . port, Cluster policy; one map per protocol, because the map's
    /// data names the port by protocol (`tcp dport`) and nft then makes the DNAT rule match that protocol
    /// only (with `th dport` data nft 1.0.6 cannot read the map back).
    ClusterEndpoints(Protocol),
    /// frontend . slot → endpoint address . port, Local policy, per protocol.
    LocalEndpoints(Protocol),
    /// endpoint address . same address: a pod reaching itself through a Service is masqueraded.
    Hairpin,
    /// LoadBalancer frontends that have `loadBalancerSourceRanges`.
    FirewallIps,
    /// frontend . allowed source range.
    FirewallAllow,
}

impl SetName {
    pub const ALL: [SetName; 14] = [
        SetName::ClusterIps,
        SetName::ServiceIps,
        SetName::ExternalLocalCluster,
        SetName::ExternalLocalLocal,
        SetName::NoEndpointServices,
        SetName::ClusterEndpoints(Protocol::Tcp),
        SetName::ClusterEndpoints(Protocol::Udp),
        SetName::ClusterEndpoints(Protocol::Sctp),
        SetName::LocalEndpoints(Protocol::Tcp),
        SetName::LocalEndpoints(Protocol::Udp),
        SetName::LocalEndpoints(Protocol::Sctp),
        SetName::Hairpin,
        SetName::FirewallIps,
        SetName::FirewallAllow,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SetName::ClusterIps => "cluster-ips",
            SetName::ServiceIps => "service-ips",
            SetName::ExternalLocalCluster => "external-local-cluster",
            SetName::ExternalLocalLocal => "external-local-local",
            SetName::NoEndpointServices => "no-endpoint-services",
            SetName::ClusterEndpoints(Protocol::Tcp) => "cluster-endpoints-tcp",
            SetName::ClusterEndpoints(Protocol::Udp) => "cluster-endpoints-udp",
            SetName::ClusterEndpoints(Protocol::Sctp) => "cluster-endpoints-sctp",
            SetName::LocalEndpoints(Protocol::Tcp) => "local-endpoints-tcp",
            SetName::LocalEndpoints(Protocol::Udp) => "local-endpoints-udp",
            SetName::LocalEndpoints(Protocol::Sctp) => "local-endpoints-sctp",
            SetName::Hairpin => "hairpin",
            SetName::FirewallIps => "firewall-ips",
            SetName::FirewallAllow => "firewall-allow",
        }
    }

    pub fn is_map(self) -> bool {
        matches!(
            self,
            SetName::ServiceIps
                | SetName::ExternalLocalCluster
                | SetName::ExternalLocalLocal
                | SetName::NoEndpointServices
                | SetName::ClusterEndpoints(_)
                | SetName::LocalEndpoints(_)
        )
    }

    /// The body of the set's definition (type and flags), in `nft` syntax.
    pub fn definition(self, family: Family) -> String {
        let (ip, addr) = (family.nft(), family.addr_type());
        let frontend = format!("{addr} . inet_proto . inet_service");
        match self {
            SetName::ClusterIps => format!("type {addr}"),
            SetName::Hairpin => format!("type {addr} . {addr}"),
            SetName::FirewallIps => format!("type {frontend}"),
            SetName::FirewallAllow => format!("type {frontend} . {addr}; flags interval"),
            SetName::ServiceIps
            | SetName::ExternalLocalCluster
            | SetName::ExternalLocalLocal
            | SetName::NoEndpointServices => format!("type {frontend} : verdict"),
            // `typeof` because the slot is numgen's 32-bit integer, which has no `type` spelling. The data
            // names the protocol's port: nft 1.0.6 cannot read back `th dport` in map data from the kernel
            // ("conflicting protocols"), so later transactions could not use the map.
            SetName::ClusterEndpoints(p) | SetName::LocalEndpoints(p) => {
                format!(
                    "typeof {ip} daddr . meta l4proto . th dport . numgen random mod 1 : {ip} daddr . {} dport",
                    p.nft()
                )
            }
        }
    }
}

/// The key of one element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    Addr(IpAddr),
    Frontend(Frontend),
    Slot(Frontend, u32),
    /// `addr . addr`
    Hairpin(IpAddr),
    Source(Frontend, IpNet),
}

/// The value of one map element (`None` in sets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Value {
    None,
    Verdict(Verdict),
    Endpoint(SocketAddr),
}

impl Value {
    pub fn pick_chain(&self) -> Option<PickChain> {
        match self {
            Value::Verdict(Verdict::Goto(Target::Pick(chain))) => Some(*chain),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verdict {
    Drop,
    Goto(Target),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// `reject-chain`: no endpoints anywhere.
    Reject,
    /// `external-local`: the eTP:Local split by source.
    ExternalLocal,
    Pick(PickChain),
}

/// One element: which set, which key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Element {
    pub set: SetName,
    pub key: Key,
}

/// Which endpoints a pick chain chooses from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Group {
    Cluster,
    Local,
}

/// When a pick chain marks a connection for masquerade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Masquerade {
    No,
    /// Unless the source is a pod (`--cluster-cidr`): ClusterIP traffic.
    OffCluster,
    /// Always: external traffic under eTP:Cluster, or ClusterIP traffic with `--masquerade-all`.
    All,
}

/// A shared endpoint-selection chain. Its rules depend only on its name, so every frontend with the same
/// endpoint count, group, masquerade rule and affinity timeout jumps to the same chain: Services add no
/// chains of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PickChain {
    pub group: Group,
    pub endpoints: u32,
    pub masquerade: Masquerade,
    /// ClientIP affinity timeout, seconds.
    pub affinity: Option<u32>,
}

impl PickChain {
    pub fn name(&self) -> String {
        let mut name = format!(
            "{}-{}",
            match self.group {
                Group::Cluster => "cluster",
                Group::Local => "local",
            },
            self.endpoints
        );
        match self.masquerade {
            Masquerade::No => {}
            Masquerade::OffCluster => name.push_str("-masq-offcluster"),
            Masquerade::All => name.push_str("-masq-all"),
        }
        if let Some(timeout) = self.affinity {
            let _ = write!(name, "-affinity-{timeout}");
        }
        name
    }

    /// The chain's rules, one per line, in `nft` syntax.
    pub fn rules(&self, family: Family) -> Vec<String> {
        let ip = family.nft();
        let map = |p: Protocol| match self.group {
            Group::Cluster => SetName::ClusterEndpoints(p).name(),
            Group::Local => SetName::LocalEndpoints(p).name(),
        };
        let n = self.endpoints.max(1);
        let mut rules = Vec::new();
        match self.masquerade {
            Masquerade::No => {}
            Masquerade::OffCluster => rules.push(format!(
                "{ip} saddr != @cluster-cidrs jump mark-for-masquerade"
            )),
            Masquerade::All => rules.push("jump mark-for-masquerade".to_string()),
        }
        let frontend = format!("{ip} daddr . meta l4proto . th dport");
        // One DNAT per protocol: each protocol's endpoint map names its port type (see SetName).
        let dnat = |p: Protocol, slot: &str| {
            format!(
                "meta l4proto {} dnat {ip} to {frontend} . {slot} map @{}",
                p.nft(),
                map(p)
            )
        };
        match self.affinity {
            None => {
                for p in Protocol::ALL {
                    rules.push(dnat(p, &format!("numgen random mod {n}")));
                }
            }
            Some(timeout) => {
                // nft cannot write a constant inside a concatenation, but `numgen inc mod 1 offset i` always
                // evaluates to i. The affinity entry remembers a slot, not an endpoint, so it can never lead to
                // an endpoint that has gone: slots always hold live endpoints.
                let client = format!("{ip} saddr . {frontend}");
                let slot = |i: u32| format!("numgen inc mod 1 offset {i}");
                let remember = |i: u32| {
                    format!(
                        "update @affinity {{ {client} . {} timeout {timeout}s }}",
                        slot(i)
                    )
                };
                for p in Protocol::ALL {
                    for i in 0..n {
                        rules.push(format!(
                            "{client} . {} @affinity {} {}",
                            slot(i),
                            remember(i),
                            dnat(p, &slot(i))
                        ));
                    }
                }
                // A new client: pick slot i with probability 1/(n-i) of what is left, i.e. uniformly. The
                // protocol test comes first so that a packet updates the affinity set only in its own rule.
                for p in Protocol::ALL {
                    let proto = format!("meta l4proto {}", p.nft());
                    for i in 0..n - 1 {
                        rules.push(format!(
                            "{proto} numgen random mod {} 0 {} {}",
                            n - i,
                            remember(i),
                            dnat(p, &slot(i))
                        ));
                    }
                    rules.push(format!(
                        "{proto} {} {}",
                        remember(n - 1),
                        dnat(p, &slot(n - 1))
                    ));
                }
            }
        }
        rules
    }
}

/// A regular chain of the fixed skeleton.
pub struct ChainDef {
    pub name: &'static str,
    /// `type … hook … priority …; policy accept;` for base chains.
    pub hook: Option<&'static str>,
    pub rules: Vec<String>,
}

/// The fixed chains, in the order they are written. Priorities are kube-proxy's: filtering before DNAT at
/// dstnat-10 (-110), DNAT at dstnat (-100), checks after DNAT at filter (0), masquerade at srcnat (100).
/// Numbers, because nft 1.0.6 refuses the `dstnat` keyword in the output hook.
pub fn chains(family: Family) -> Vec<ChainDef> {
    let ip = family.nft();
    let frontend = format!("{ip} daddr . meta l4proto . th dport");
    let new_conn = "ct state new";
    vec![
        ChainDef {
            name: "filter-prerouting",
            hook: Some("type filter hook prerouting priority -110; policy accept;"),
            rules: vec![format!("{new_conn} jump firewall-check")],
        },
        ChainDef {
            name: "filter-output-pre-dnat",
            hook: Some("type filter hook output priority -110; policy accept;"),
            rules: vec![format!("{new_conn} jump firewall-check")],
        },
        ChainDef {
            name: "filter-input",
            hook: Some("type filter hook input priority 0; policy accept;"),
            rules: vec![format!("{new_conn} jump service-endpoints-check")],
        },
        ChainDef {
            name: "filter-forward",
            hook: Some("type filter hook forward priority 0; policy accept;"),
            rules: vec![
                format!("{new_conn} jump service-endpoints-check"),
                format!("{new_conn} jump cluster-ips-check"),
            ],
        },
        ChainDef {
            name: "filter-output",
            hook: Some("type filter hook output priority 0; policy accept;"),
            rules: vec![
                format!("{new_conn} jump service-endpoints-check"),
                format!("{new_conn} jump cluster-ips-check"),
            ],
        },
        ChainDef {
            name: "nat-prerouting",
            hook: Some("type nat hook prerouting priority -100; policy accept;"),
            rules: vec!["jump services".into()],
        },
        ChainDef {
            name: "nat-output",
            hook: Some("type nat hook output priority -100; policy accept;"),
            rules: vec!["jump services".into()],
        },
        ChainDef {
            name: "nat-postrouting",
            hook: Some("type nat hook postrouting priority 100; policy accept;"),
            rules: vec!["jump masquerading".into()],
        },
        ChainDef {
            name: "firewall-check",
            hook: None,
            rules: vec![format!(
                "{frontend} @firewall-ips {frontend} . {ip} saddr != @firewall-allow drop"
            )],
        },
        ChainDef {
            name: "service-endpoints-check",
            hook: None,
            rules: vec![format!("{frontend} vmap @no-endpoint-services")],
        },
        ChainDef {
            name: "cluster-ips-check",
            hook: None,
            rules: vec![
                format!("{ip} daddr @cluster-ips reject"),
                format!("{ip} daddr @service-cidrs drop"),
            ],
        },
        ChainDef {
            name: "reject-chain",
            hook: None,
            rules: vec!["reject".into()],
        },
        ChainDef {
            name: "services",
            hook: None,
            rules: vec![format!("{frontend} vmap @service-ips")],
        },
        ChainDef {
            name: "external-local",
            hook: None,
            rules: vec![
                // Pods reaching an external IP act as if they went out and came back: any endpoint will do.
                format!("{ip} saddr @cluster-cidrs {frontend} vmap @external-local-cluster"),
                // The node itself: its source address is the local one, so it must be masqueraded.
                "fib saddr type local jump mark-for-masquerade".into(),
                format!("fib saddr type local {frontend} vmap @external-local-cluster"),
                format!("{frontend} vmap @external-local-local"),
            ],
        },
        ChainDef {
            name: "mark-for-masquerade",
            hook: None,
            rules: vec![format!("meta mark set meta mark | {MASQUERADE_MARK:#x}")],
        },
        ChainDef {
            name: "masquerading",
            hook: None,
            rules: vec![
                format!("{ip} saddr . {ip} daddr @hairpin masquerade fully-random"),
                format!("meta mark & {MASQUERADE_MARK:#x} == 0 return"),
                format!("meta mark set meta mark ^ {MASQUERADE_MARK:#x}"),
                "masquerade fully-random".into(),
            ],
        },
    ]
}

/// The fixed sets that hold configuration rather than Services, with their definitions.
pub fn config_sets(family: Family) -> Vec<(&'static str, String)> {
    let ip = family.nft();
    let addr = family.addr_type();
    vec![
        (
            "service-protocols",
            "type inet_proto; elements = { tcp, udp, sctp }".to_string(),
        ),
        (
            "cluster-cidrs",
            format!("type {addr}; flags interval; auto-merge"),
        ),
        (
            "service-cidrs",
            format!("type {addr}; flags interval; auto-merge"),
        ),
        (
            "affinity",
            format!(
                "typeof {ip} saddr . {ip} daddr . meta l4proto . th dport . numgen random mod 1; \
                 size {AFFINITY_SET_SIZE}; flags dynamic,timeout"
            ),
        ),
    ]
}

/// An element in `nft` syntax: `key` or `key : value`.
pub fn element_text(element: &Element, value: &Value) -> String {
    let mut out = String::new();
    match element.key {
        Key::Addr(ip) => push_ip(&mut out, ip),
        Key::Frontend(f) => push_frontend(&mut out, &f),
        Key::Slot(f, slot) => {
            push_frontend(&mut out, &f);
            let _ = write!(out, " . {slot}");
        }
        Key::Hairpin(ip) => {
            push_ip(&mut out, ip);
            out.push_str(" . ");
            push_ip(&mut out, ip);
        }
        Key::Source(f, net) => {
            push_frontend(&mut out, &f);
            out.push_str(" . ");
            if net.prefix_len() == net.max_prefix_len() {
                push_ip(&mut out, net.addr());
            } else {
                let _ = write!(out, "{net}");
            }
        }
    }
    match value {
        Value::None => {}
        Value::Verdict(v) => {
            out.push_str(" : ");
            out.push_str(&verdict_text(v));
        }
        Value::Endpoint(addr) => {
            out.push_str(" : ");
            push_ip(&mut out, addr.ip());
            let _ = write!(out, " . {}", addr.port());
        }
    }
    out
}

pub fn verdict_text(verdict: &Verdict) -> String {
    match verdict {
        Verdict::Drop => "drop".into(),
        Verdict::Goto(Target::Reject) => "goto reject-chain".into(),
        Verdict::Goto(Target::ExternalLocal) => "goto external-local".into(),
        Verdict::Goto(Target::Pick(chain)) => format!("goto {}", chain.name()),
    }
}

fn push_frontend(out: &mut String, f: &Frontend) {
    push_ip(out, f.ip);
    let _ = write!(out, " . {} . {}", f.protocol.nft(), f.port);
}

fn push_ip(out: &mut String, ip: IpAddr) {
    let _ = write!(out, "{ip}");
}
