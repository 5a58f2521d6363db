//! What the `svcplane` binary passes in: [`DnsOptions`], and the parsing of `--upstream` values.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use ipnet::IpNet;

use crate::config::PodMode;
use crate::error::Error;

/// Everything the DNS server needs, flag for flag. `Default` is the embedded flavour (`svcplane up`): loopback
/// only; [`DnsOptions::standalone`] is `svcplane dns`, CoreDNS's addresses and ports.
#[derive(Debug, Clone)]
pub struct DnsOptions {
    /// UDP and TCP, same port (`--dns-listen`).
    pub listen: SocketAddr,
    /// `--cluster-domain`.
    pub cluster_domain: String,
    /// `--ttl`: seconds, for every record and as the negative-caching TTL.
    pub ttl: u32,
    /// `--pods`.
    pub pods: PodMode,
    /// `--upstream`: `ip`, `ip:port`, `[ipv6]:port`, or the path of a resolv.conf whose `nameserver` lines are
    /// used; empty means names outside the zone are REFUSED.
    pub upstream: Vec<String>,
    /// `--allow-forward-from`: client networks whose out-of-zone queries are forwarded.
    pub allow_forward_from: Vec<IpNet>,
    /// Replies kept by the forwarding cache (CoreDNS's default capacity is 9984).
    pub cache_size: usize,
    /// Addresses that answer `ns.dns.<zone>` and back the apex NS record; empty means the listen address when
    /// it is a specific one.
    pub nameservers: Vec<IpAddr>,
    /// `/health`, `/ready` and `/metrics` listeners; `None` serves none. Equal addresses share one listener.
    pub health: Option<SocketAddr>,
    pub ready: Option<SocketAddr>,
    pub metrics: Option<SocketAddr>,
}

/// Loopback and the RFC 1918 private ranges: the clients of a cluster DNS, before the caller adds the
/// cluster's own Service and Pod ranges.
pub fn default_allow_forward_from() -> Vec<IpNet> {
    [
        "127.0.0.0/8",
        "::1/128",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
    ]
    .iter()
    .filter_map(|s| s.parse().ok())
    .collect()
}

impl Default for DnsOptions {
    fn default() -> Self {
        let lo = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        DnsOptions {
            listen: lo(10053),
            cluster_domain: "cluster.local".to_string(),
            ttl: 5,
            pods: PodMode::Disabled,
            upstream: Vec::new(),
            allow_forward_from: default_allow_forward_from(),
            cache_size: 9984,
            nameservers: Vec::new(),
            health: Some(lo(0)),
            ready: Some(lo(0)),
            metrics: Some(lo(0)),
        }
    }
}

impl DnsOptions {
    /// `svcplane dns`: port 53 and CoreDNS's health (8080), ready (8181) and metrics (9153) ports, on every
    /// address as CoreDNS binds them (probes reach a pod or node address).
    pub fn standalone() -> DnsOptions {
        let any = |port: u16| SocketAddr::from(([0, 0, 0, 0], port));
        DnsOptions {
            listen: any(53),
            health: Some(any(8080)),
            ready: Some(any(8181)),
            metrics: Some(any(9153)),
            ..DnsOptions::default()
        }
    }
}

/// The upstream servers `values` name, in order, duplicates removed.
pub fn parse_upstreams(values: &[String]) -> Result<Vec<SocketAddr>, Error> {
    let mut out = Vec::new();
    for value in values
        .iter()
        .flat_map(|v| v.split([',', ' ']))
        .map(str::trim)
        .filter(|v| !v.is_empty())
    {
        for addr in parse_one(value)? {
            if !out.contains(&addr) {
                out.push(addr);
            }
        }
    }
    Ok(out)
}

fn parse_one(value: &str) -> Result<Vec<SocketAddr>, Error> {
    if let Some(a) = parse_addr(value) {
        return Ok(vec![a]);
    }
    let bad = |reason: String| Error::Upstream {
        value: value.to_string(),
        reason,
    };
    if !value.contains('/') {
        return Err(bad(
            "expected ip, ip:port, [ipv6]:port or the path of a resolv.conf".to_string(),
        ));
    }
    let text = std::fs::read_to_string(Path::new(value)).map_err(|e| bad(e.to_string()))?;
    let addrs = resolv_conf_nameservers(&text);
    if addrs.is_empty() {
        return Err(bad("no usable nameserver line".to_string()));
    }
    Ok(addrs)
}

fn parse_addr(s: &str) -> Option<SocketAddr> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Some(a);
    }
    s.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 53))
}

/// The `nameserver` addresses of a resolv.conf, port 53. Zone-scoped IPv6 addresses (`fe80::1%eth0`) are
/// skipped: the scope does not survive the trip to a socket address here.
pub(crate) fn resolv_conf_nameservers(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some("nameserver")).then(|| words.next())?
        })
        .filter_map(|ip| match ip.parse::<IpAddr>() {
            Ok(ip) => Some(SocketAddr::new(ip, 53)),
            Err(_) => {
                tracing::warn!(
                    nameserver = ip,
                    "resolv.conf nameserver not usable; skipped"
                );
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_values() {
        let got = parse_upstreams(&[
            "127.0.0.1".to_string(),
            "127.0.0.2:5353, [::1]:54".to_string(),
            "127.0.0.1:53".to_string(),
        ])
        .unwrap();
        let want: Vec<SocketAddr> = vec![
            "127.0.0.1:53".parse().unwrap(),
            "127.0.0.2:5353".parse().unwrap(),
            "[::1]:54".parse().unwrap(),
        ];
        assert_eq!(got, want);
        assert!(parse_upstreams(&["dns.example".to_string()]).is_err());
        assert!(parse_upstreams(&["/nonexistent/resolv.conf".to_string()]).is_err());
    }

    #[test]
    fn resolv_conf_lines() {
        let text = "# comment\nsearch default.svc.cluster.local\nnameserver 127.0.0.53\n\
                    nameserver   ::1\nnameserver fe80::1%eth0\noptions ndots:5\nnameserver\n";
        let want: Vec<SocketAddr> = vec![
            "127.0.0.53:53".parse().unwrap(),
            "[::1]:53".parse().unwrap(),
        ];
        assert_eq!(resolv_conf_nameservers(text), want);
    }

    #[test]
    fn a_resolv_conf_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("resolv.conf");
        std::fs::write(&path, "nameserver 127.0.0.9\n").unwrap();
        let got = parse_upstreams(&[path.display().to_string()]).unwrap();
        assert_eq!(got, vec!["127.0.0.9:53".parse::<SocketAddr>().unwrap()]);
        std::fs::write(&path, "search x\n").unwrap();
        assert!(parse_upstreams(&[path.display().to_string()]).is_err());
    }
}
