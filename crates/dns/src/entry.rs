//! What the answer path reads for one Service: everything its names can answer, resolved and lowercased when
//! the Service or one of its EndpointSlices changes, so that a query only filters and copies.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Port {
    /// Lowercase port name; empty for an unnamed port.
    pub name: Box<[u8]>,
    /// Lowercase protocol (`tcp`, `udp`, `sctp`).
    pub proto: Box<[u8]>,
    /// -1 stands for "no ports declared" (CoreDNS's sentinel): it makes address records but no SRV.
    pub port: i32,
}

impl Port {
    pub fn sentinel() -> Port {
        Port {
            name: Box::default(),
            proto: Box::default(),
            port: -1,
        }
    }

    /// CoreDNS's `matchPortAndProtocol`: an absent label matches anything.
    pub fn matches(&self, name: Option<&[u8]>, proto: Option<&[u8]>) -> bool {
        name.is_none_or(|n| n == &self.name[..]) && proto.is_none_or(|p| p == &self.proto[..])
    }
}

#[derive(Debug)]
pub(crate) struct Endpoint {
    /// Lowercase DNS label: the endpoint's hostname, else its address with dashes.
    pub host: Box<[u8]>,
    /// Index of the first endpoint with the same `host`: equal ids mean equal SRV targets.
    pub host_id: u32,
    pub ip: IpAddr,
    /// Index into [`SvcEntry::slice_ports`].
    pub ports: u32,
}

#[derive(Debug)]
pub(crate) enum Kind {
    ClusterIp,
    Headless,
    /// The target's lowercase wire form; `None` when the target is not a usable name (CoreDNS only answers
    /// ExternalNames that are host names, so the Service then has no records).
    ExternalName(Option<Box<[u8]>>),
}

#[derive(Debug)]
pub(crate) struct SvcEntry {
    pub kind: Kind,
    /// Wire labels of `<service>.<ns>.svc`, to which the zone is appended.
    pub prefix: Box<[u8]>,
    pub cluster_ips: Box<[IpAddr]>,
    /// Service ports, or the sentinel when it declares none.
    pub ports: Box<[Port]>,
    /// Endpoints that answer (ready, or any with publishNotReadyAddresses), across the Service's slices.
    pub endpoints: Box<[Endpoint]>,
    /// Ports of each slice (the sentinel when a slice has none), shared by that slice's endpoints.
    pub slice_ports: Box<[Box<[Port]>]>,
    /// Endpoint indexes by host, kept only for Services large enough that a scan would show.
    pub by_host: Option<HostMap>,
    /// Answers to a bare-name A/AAAA query: cluster IPs, or for a headless Service its distinct endpoint IPs.
    pub v4: Box<[Ipv4Addr]>,
    pub v6: Box<[Ipv6Addr]>,
    /// Whether two endpoints share an address or a host, or a slice repeats a port number: only then must an
    /// answer drop duplicate records.
    pub may_repeat: bool,
}

/// Host label to the indexes of its endpoints.
pub(crate) type HostMap = HashMap<Box<[u8]>, Box<[u32]>>;

/// Services with more endpoints than this get a host map instead of a scan for `<host>.<svc>...` names.
const HOST_MAP_MIN: usize = 32;

pub(crate) struct EndpointIn {
    pub host: Box<[u8]>,
    pub ip: IpAddr,
    pub ports: u32,
}

impl SvcEntry {
    pub fn new(
        kind: Kind,
        prefix: Box<[u8]>,
        cluster_ips: Vec<IpAddr>,
        ports: Vec<Port>,
        endpoints_in: Vec<EndpointIn>,
        slice_ports: Vec<Box<[Port]>>,
    ) -> SvcEntry {
        let mut first_of_host: HashMap<&[u8], u32> = HashMap::new();
        let mut ips = std::collections::HashSet::new();
        let mut may_repeat = false;
        let mut endpoints = Vec::with_capacity(endpoints_in.len());
        for (i, e) in endpoints_in.iter().enumerate() {
            let host_id = *first_of_host.entry(&e.host[..]).or_insert(i as u32);
            may_repeat |= host_id != i as u32;
            may_repeat |= !ips.insert(e.ip);
            endpoints.push(Endpoint {
                host: e.host.clone(),
                host_id,
                ip: e.ip,
                ports: e.ports,
            });
        }
        for ports in &slice_ports {
            let mut seen = std::collections::HashSet::new();
            may_repeat |= !ports.iter().all(|p| seen.insert(p.port));
        }
        let by_host = (endpoints.len() > HOST_MAP_MIN).then(|| {
            let mut m: HashMap<Box<[u8]>, Vec<u32>> = HashMap::new();
            for (i, e) in endpoints.iter().enumerate() {
                m.entry(e.host.clone()).or_default().push(i as u32);
            }
            m.into_iter()
                .map(|(k, v)| (k, v.into_boxed_slice()))
                .collect()
        });
        let addrs: Vec<IpAddr> = match kind {
            Kind::ClusterIp => cluster_ips.clone(),
            Kind::Headless => {
                let mut seen = std::collections::HashSet::new();
                endpoints
                    .iter()
                    .map(|e| e.ip)
                    .filter(|ip| seen.insert(*ip))
                    .collect()
            }
            Kind::ExternalName(_) => Vec::new(),
        };
        let v4 = addrs
            .iter()
            .filter_map(|ip| match ip {
                IpAddr::V4(a) => Some(*a),
                IpAddr::V6(_) => None,
            })
            .collect();
        let v6 = addrs
            .iter()
            .filter_map(|ip| match ip {
                IpAddr::V6(a) => Some(*a),
                IpAddr::V4(_) => None,
            })
            .collect();
        SvcEntry {
            kind,
            prefix,
            cluster_ips: cluster_ips.into_boxed_slice(),
            ports: ports.into_boxed_slice(),
            endpoints: endpoints.into_boxed_slice(),
            slice_ports: slice_ports.into_boxed_slice(),
            by_host,
            v4,
            v6,
            may_repeat,
        }
    }

    pub fn ports_of(&self, e: &Endpoint) -> &[Port] {
        self.slice_ports
            .get(e.ports as usize)
            .map(|p| &p[..])
            .unwrap_or(&[])
    }

    /// Calls `f` with the index of every endpoint whose host is `host` (or every endpoint for `None`).
    pub fn each_endpoint(&self, host: Option<&[u8]>, mut f: impl FnMut(usize, &Endpoint)) {
        match (host, &self.by_host) {
            (None, _) => self.endpoints.iter().enumerate().for_each(|(i, e)| f(i, e)),
            (Some(h), Some(map)) => {
                if let Some(ix) = map.get(h) {
                    for &i in ix.iter() {
                        if let Some(e) = self.endpoints.get(i as usize) {
                            f(i as usize, e);
                        }
                    }
                }
            }
            (Some(h), None) => {
                for (i, e) in self.endpoints.iter().enumerate() {
                    if &e.host[..] == h {
                        f(i, e);
                    }
                }
            }
        }
    }
}

/// CoreDNS's `endpointHostname` without its endpoint_pod_names option: the hostname when set, else the address
/// with `.`/`:` turned into `-` (and a trailing `-` of an IPv6 address completed with `0`).
pub(crate) fn endpoint_host(hostname: Option<&str>, ip: &IpAddr) -> Box<[u8]> {
    if let Some(h) = hostname.filter(|h| !h.is_empty() && h.len() <= 63) {
        return h.to_ascii_lowercase().into_bytes().into_boxed_slice();
    }
    let mut s = ip.to_string().replace(['.', ':'], "-");
    if s.ends_with('-') {
        s.push('0');
    }
    s.into_bytes().into_boxed_slice()
}

/// Wire labels for the dot-separated `name` (no root label), or `None` if a label is empty or too long.
pub(crate) fn wire_labels(name: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(name.len() + 1);
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return None;
        }
        out.push(label.len() as u8);
        out.extend(label.bytes().map(|b| b.to_ascii_lowercase()));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_hosts_follow_coredns() {
        assert_eq!(
            &*endpoint_host(Some("Db-0"), &"10.0.0.1".parse().unwrap()),
            b"db-0"
        );
        assert_eq!(
            &*endpoint_host(None, &"10.0.0.1".parse().unwrap()),
            b"10-0-0-1"
        );
        assert_eq!(
            &*endpoint_host(None, &"fd00::1".parse().unwrap()),
            b"fd00--1"
        );
        assert_eq!(
            &*endpoint_host(None, &"fd00::".parse().unwrap()),
            b"fd00--0"
        );
        assert_eq!(&*endpoint_host(Some(""), &"::1".parse().unwrap()), b"--1");
    }
}
