//! Small value types shared by the model, the rule shape and the renderer.

use std::fmt;
use std::net::IpAddr;

/// An IP family. The model, the table and every element of it are per family, as in kube-proxy: a dual-stack
/// node runs one [`crate::ProxyModel`] per family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(ip: &IpAddr) -> Family {
        match ip {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    pub fn matches(self, ip: &IpAddr) -> bool {
        Family::of(ip) == self
    }

    /// The nftables family of our table (`ip` / `ip6`), which is also the payload keyword (`ip daddr`).
    pub fn nft(self) -> &'static str {
        match self {
            Family::V4 => "ip",
            Family::V6 => "ip6",
        }
    }

    /// The nftables address type (`ipv4_addr` / `ipv6_addr`).
    pub fn addr_type(self) -> &'static str {
        match self {
            Family::V4 => "ipv4_addr",
            Family::V6 => "ipv6_addr",
        }
    }

    /// The EndpointSlice `addressType` carrying this family.
    pub fn address_type(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.address_type())
    }
}

/// A Service port protocol. Anything else is not a Service protocol in Kubernetes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    pub const ALL: [Protocol; 3] = [Protocol::Tcp, Protocol::Udp, Protocol::Sctp];

    /// Parses the API spelling; an absent protocol is TCP, as the API server defaults it.
    pub fn from_api(value: Option<&str>) -> Option<Protocol> {
        match value.unwrap_or("TCP") {
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            "SCTP" => Some(Protocol::Sctp),
            _ => None,
        }
    }

    pub fn api(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }

    /// The `inet_proto` spelling in nftables.
    pub fn nft(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// What a packet is matched on: destination address, L4 protocol and destination port. Every way into a
/// Service (ClusterIP, a NodePort on one node address, a LoadBalancer ingress IP, an external IP) is one
/// frontend, and every per-Service element of the table is keyed by one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Frontend {
    pub ip: IpAddr,
    pub protocol: Protocol,
    pub port: u16,
}

impl fmt::Display for Frontend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ip {
            IpAddr::V4(ip) => write!(f, "{ip}:{}/{}", self.port, self.protocol.api()),
            IpAddr::V6(ip) => write!(f, "[{ip}]:{}/{}", self.port, self.protocol.api()),
        }
    }
}

/// How a frontend reaches the Service; it decides which traffic policy applies (internal for ClusterIP,
/// external for the others).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FrontendKind {
    ClusterIp,
    ExternalIp,
    LoadBalancer,
    NodePort,
}

impl FrontendKind {
    pub fn is_external(self) -> bool {
        !matches!(self, FrontendKind::ClusterIp)
    }

    /// Rank when two Services claim the same frontend: kube-proxy looks at `service-ips` before
    /// `service-nodeports`, so an IP frontend beats a NodePort.
    pub(crate) fn rank(self) -> u8 {
        match self {
            FrontendKind::ClusterIp => 0,
            FrontendKind::ExternalIp | FrontendKind::LoadBalancer => 1,
            FrontendKind::NodePort => 2,
        }
    }
}

/// A Service, by namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceKey {
    pub namespace: String,
    pub name: String,
}

impl ServiceKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> ServiceKey {
        ServiceKey {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// One port of a Service, named as kube-proxy names it (`namespace/name:port`), plus its protocol.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServicePortName {
    pub service: ServiceKey,
    pub port: String,
    pub protocol: Protocol,
}

impl fmt::Display for ServicePortName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}/{}", self.service, self.port, self.protocol.api())
    }
}
