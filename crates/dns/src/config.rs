//! What the operator chooses: the cluster zone, the TTL, pod records and the addresses the zone's NS names.

use std::net::IpAddr;
use std::str::FromStr;

use crate::error::ConfigError;

/// The schema version of the Kubernetes DNS specification we implement, served as `dns-version.<zone>` TXT.
pub const SCHEMA_VERSION: &str = "1.1.0";

/// CoreDNS's TTL for the `dns-version` record, whatever `ttl` is.
pub(crate) const SCHEMA_VERSION_TTL: u32 = 28800;

/// How `a-b-c-d.<ns>.pod.<zone>` names are answered, with CoreDNS's `pods` option meanings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PodMode {
    /// No pod records: every name under `pod.<zone>` but the bare `pod.<zone>` is NXDOMAIN.
    #[default]
    Disabled,
    /// Any well-formed dashed IP answers with that IP, as long as the namespace exists.
    Insecure,
    /// Only IPs known to belong to a pod in that namespace answer (see [`crate::Index`] for where they come
    /// from).
    Verified,
}

impl FromStr for PodMode {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "disabled" => Ok(PodMode::Disabled),
            "insecure" => Ok(PodMode::Insecure),
            "verified" => Ok(PodMode::Verified),
            other => Err(ConfigError::PodMode(other.to_string())),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The cluster domain, e.g. `cluster.local` (a trailing dot is accepted).
    pub zone: String,
    /// TTL of every record but `dns-version`; also the SOA minimum, so the negative-caching TTL.
    pub ttl: u32,
    pub pods: PodMode,
    /// Addresses of this DNS server as clients reach it (its Service IPs or listen addresses). They answer
    /// `ns.dns.<zone>` A/AAAA and back the zone's NS record; with none, both are NODATA, as CoreDNS does when
    /// it finds no address for itself.
    pub nameservers: Vec<IpAddr>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            zone: "cluster.local".to_string(),
            ttl: 5,
            pods: PodMode::Disabled,
            nameservers: Vec::new(),
        }
    }
}

/// The zone in the forms the answer path wants, computed once.
#[derive(Debug)]
pub(crate) struct Zone {
    /// Lowercase labels, left to right.
    pub labels: Vec<Box<[u8]>>,
    /// Lowercase wire form, root label included.
    pub wire: Box<[u8]>,
}

impl Zone {
    pub fn parse(zone: &str) -> Result<Zone, ConfigError> {
        let bad = || ConfigError::Zone(zone.to_string());
        let trimmed = zone.strip_suffix('.').unwrap_or(zone);
        if trimmed.is_empty() {
            return Err(bad());
        }
        let mut labels = Vec::new();
        let mut wire = Vec::new();
        for label in trimmed.split('.') {
            let ok = !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !ok {
                return Err(bad());
            }
            let lower = label.to_ascii_lowercase().into_bytes();
            wire.push(lower.len() as u8);
            wire.extend_from_slice(&lower);
            labels.push(lower.into_boxed_slice());
        }
        wire.push(0);
        // Leave room for `<hostname>.<service>.<ns>.svc.` in front: three 63-byte labels and "svc".
        if wire.len() > crate::wire::MAX_NAME - 3 * 64 - 4 {
            return Err(bad());
        }
        Ok(Zone {
            labels,
            wire: wire.into_boxed_slice(),
        })
    }
}
