//! IP and CIDR parsing with the leniency of k8s.io/utils/net's "sloppy"
//! parsers (Go's pre-1.17 `net.ParseIP`): IPv4 octets may carry leading
//! zeros, and IPv4-mapped IPv6 addresses count as IPv4.

use crate::field::FieldError;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Parses one decimal IPv4 octet the way Go's `dtoi` does (any number of
/// leading zeros, value at most 255).
fn parse_octet(s: &str) -> Option<u8> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut n: u32 = 0;
    for c in s.bytes() {
        n = n * 10 + u32::from(c - b'0');
        if n > 255 {
            return None;
        }
    }
    u8::try_from(n).ok()
}

fn parse_ipv4_sloppy(s: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    let mut octets = [0u8; 4];
    for (slot, part) in octets.iter_mut().zip(parts) {
        *slot = parse_octet(part)?;
    }
    Some(Ipv4Addr::from(octets))
}

fn parse_ipv6_sloppy(s: &str) -> Option<Ipv6Addr> {
    if let Ok(ip) = s.parse::<Ipv6Addr>() {
        return Some(ip);
    }
    // Go accepts an embedded IPv4 tail with leading zeros; Rust does not.
    let (head, tail) = s.rsplit_once(':')?;
    if !tail.contains('.') {
        return None;
    }
    let v4 = parse_ipv4_sloppy(tail)?;
    format!("{head}:{v4}").parse().ok()
}

/// The address family of a parsed IP, following Go's `To4() != nil`.
pub fn is_ipv4(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(_) => true,
        IpAddr::V6(v6) => v6.to_ipv4_mapped().is_some(),
    }
}

/// Like Go's `netutils.ParseIPSloppy`: `None` when not an IP address.
/// IPv4-mapped IPv6 addresses are returned as IPv4, as Go's `To4` treats them.
pub fn parse_ip_sloppy(s: &str) -> Option<IpAddr> {
    if s.contains(':') {
        let v6 = parse_ipv6_sloppy(s)?;
        Some(match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        })
    } else {
        parse_ipv4_sloppy(s).map(IpAddr::V4)
    }
}

/// True when `s` parses and is not IPv4 (or IPv4-mapped).
pub fn is_ipv6_string(s: &str) -> bool {
    parse_ip_sloppy(s).is_some_and(|ip| !is_ipv4(&ip))
}

/// Like Go's `netutils.ParseCIDRSloppy`: address and prefix length.
pub fn parse_cidr_sloppy(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, mask) = s.split_once('/')?;
    let max_bits: u32 = if addr.contains(':') { 128 } else { 32 };
    let ip = if addr.contains(':') {
        IpAddr::V6(parse_ipv6_sloppy(addr)?)
    } else {
        IpAddr::V4(parse_ipv4_sloppy(addr)?)
    };
    if mask.is_empty() || !mask.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut bits: u32 = 0;
    for c in mask.bytes() {
        bits = bits * 10 + u32::from(c - b'0');
        if bits > max_bits {
            return None;
        }
    }
    Some((ip, u8::try_from(bits).ok()?))
}

/// Upstream `validation.IsValidIP`.
pub fn validate_ip(field: &str, value: &str) -> Vec<FieldError> {
    if parse_ip_sloppy(value).is_some() {
        Vec::new()
    } else {
        vec![FieldError::invalid(
            field,
            value,
            "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
        )]
    }
}

/// Upstream `validation.IsValidCIDR`.
pub fn validate_cidr(field: &str, value: &str) -> Vec<FieldError> {
    if parse_cidr_sloppy(value).is_some() {
        Vec::new()
    } else {
        vec![FieldError::invalid(
            field,
            value,
            "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
        )]
    }
}

/// Upstream `ValidateNonSpecialIP`: rejects addresses that make no sense as a
/// service endpoint (unspecified, loopback, link-local).
pub fn validate_non_special_ip(value: &str, field: &str) -> Vec<FieldError> {
    let Some(ip) = parse_ip_sloppy(value) else {
        return vec![FieldError::invalid(
            field,
            value,
            "must be a valid IP address",
        )];
    };
    let mut errs = Vec::new();
    let (unspecified, loopback, ll_unicast, ll_multicast) = match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            (
                v4.is_unspecified(),
                o[0] == 127,
                o[0] == 169 && o[1] == 254,
                o[0] == 224 && o[1] == 0 && o[2] == 0,
            )
        }
        IpAddr::V6(v6) => {
            let o = v6.octets();
            (
                v6.is_unspecified(),
                v6.is_loopback(),
                o[0] == 0xfe && (o[1] & 0xc0) == 0x80,
                o[0] == 0xff && (o[1] & 0x0f) == 0x02,
            )
        }
    };
    if unspecified {
        errs.push(FieldError::invalid(
            field,
            value,
            format!("may not be unspecified ({value})"),
        ));
    }
    if loopback {
        errs.push(FieldError::invalid(
            field,
            value,
            "may not be in the loopback range (127.0.0.0/8, ::1/128)",
        ));
    }
    if ll_unicast {
        errs.push(FieldError::invalid(
            field,
            value,
            "may not be in the link-local range (169.254.0.0/16, fe80::/10)",
        ));
    }
    if ll_multicast {
        errs.push(FieldError::invalid(
            field,
            value,
            "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)",
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sloppy_ipv4() {
        assert_eq!(
            parse_ip_sloppy("010.001.2.3"),
            Some(IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)))
        );
        assert!(parse_ip_sloppy("256.1.1.1").is_none());
        assert!(parse_ip_sloppy("1.2.3").is_none());
        assert!(parse_ip_sloppy("").is_none());
    }

    #[test]
    fn mapped_is_ipv4() {
        assert!(!is_ipv6_string("::ffff:1.2.3.4"));
        assert!(is_ipv6_string("2001:db8::1"));
        assert!(parse_ip_sloppy("::ffff:01.2.3.4").is_some());
    }

    #[test]
    fn cidrs() {
        assert!(parse_cidr_sloppy("10.0.0.0/8").is_some());
        assert!(parse_cidr_sloppy("10.0.0.0/33").is_none());
        assert!(parse_cidr_sloppy("2001:db8::/64").is_some());
        assert!(parse_cidr_sloppy("10.0.0.0").is_none());
        assert!(parse_cidr_sloppy("10.0.0.0/").is_none());
    }

    #[test]
    fn special() {
        assert_eq!(validate_non_special_ip("127.0.0.1", "f").len(), 1);
        assert_eq!(validate_non_special_ip("0.0.0.0", "f").len(), 1);
        assert_eq!(validate_non_special_ip("fe80::1", "f").len(), 1);
        assert_eq!(validate_non_special_ip("224.0.0.5", "f").len(), 1);
        assert!(validate_non_special_ip("192.0.2.1", "f").is_empty());
    }
}
