//! Allocators for Service cluster IPs and node ports: bitmaps over a range, with the static/dynamic band
//! split of KEP-3070 (cluster IPs) and KEP-3668 (node ports).
//!
//! This crate only answers "which offset is free, and take it" in memory. It does not decide ownership:
//! the API server records each allocation as a key in the store, in the same transaction as the Service,
//! and rebuilds these bitmaps from the store at start (repair). A bitmap can therefore be stale when
//! several API servers share a store; the store's compare-and-swap is what makes an allocation final.

use std::net::IpAddr;

use ipnet::IpNet;
use rand::Rng;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AllocError {
    #[error("range is full")]
    Full,
    #[error("provided {what} is not in the valid range. The range of valid {what}s is {range}")]
    OutOfRange { what: &'static str, range: String },
    #[error("provided {0} is already allocated")]
    Allocated(&'static str),
    #[error("invalid range: {0}")]
    InvalidRange(String),
}

/// A fixed-size bitmap with band-aware random allocation.
#[derive(Clone, Debug)]
pub struct Bitmap {
    words: Vec<u64>,
    size: u64,
    used: u64,
    /// Offsets below this form the static band: dynamic allocation uses them only when the rest is full.
    static_band: u64,
}

impl Bitmap {
    pub fn new(size: u64, static_band: u64) -> Self {
        Self {
            words: vec![0; size.div_ceil(64) as usize],
            size,
            used: 0,
            static_band: static_band.min(size),
        }
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn used(&self) -> u64 {
        self.used
    }

    pub fn is_set(&self, off: u64) -> bool {
        off < self.size && self.words[(off / 64) as usize] & (1 << (off % 64)) != 0
    }

    /// Marks `off` taken; false if it already was (or is out of range).
    pub fn set(&mut self, off: u64) -> bool {
        if off >= self.size || self.is_set(off) {
            return false;
        }
        self.words[(off / 64) as usize] |= 1 << (off % 64);
        self.used += 1;
        true
    }

    pub fn clear(&mut self, off: u64) {
        if self.is_set(off) {
            self.words[(off / 64) as usize] &= !(1 << (off % 64));
            self.used -= 1;
        }
    }

    /// A free offset, preferring the dynamic band (random start, scan forward with wrap-around) and
    /// falling back to the static band, as KEP-3070/3668 prescribe. Does not mark it: the caller commits
    /// the allocation to the store first and then calls [`Bitmap::set`].
    pub fn pick_free(&self, skip: &dyn Fn(u64) -> bool) -> Option<u64> {
        let mut rng = rand::rng();
        let bands = [(self.static_band, self.size), (0, self.static_band)];
        for (lo, hi) in bands {
            if hi <= lo {
                continue;
            }
            let n = hi - lo;
            let start = rng.random_range(0..n);
            for i in 0..n {
                let off = lo + (start + i) % n;
                if !self.is_set(off) && !skip(off) {
                    return Some(off);
                }
            }
        }
        None
    }
}

/// Static band size for a cluster IP range of `size` addresses (KEP-3070): min(max(16, size/16), 256).
pub fn ip_static_band(size: u64) -> u64 {
    (size / 16).clamp(16, 256).min(size)
}

/// Static band size for a node-port range of `size` ports (KEP-3668): min(max(16, size/32), 128).
pub fn port_static_band(size: u64) -> u64 {
    (size / 32).clamp(16, 128).min(size)
}

/// Most addresses an IP range tracks; larger (IPv6) ranges use their first addresses only, as upstream's
/// bitmap allocator caps its size.
pub const MAX_IP_RANGE: u64 = 1 << 20;

/// Cluster IP allocator over one CIDR. The network address (and, for IPv4, the broadcast address) is
/// never handed out.
#[derive(Clone, Debug)]
pub struct IpRange {
    cidr: IpNet,
    bitmap: Bitmap,
}

impl IpRange {
    pub fn new(cidr: IpNet) -> Result<Self, AllocError> {
        let cidr = cidr.trunc();
        let host_bits = u32::from(cidr.max_prefix_len() - cidr.prefix_len());
        let total: u128 = 1u128.checked_shl(host_bits).unwrap_or(u128::MAX);
        // Offsets are relative to network+1; IPv4 also loses the broadcast address.
        let usable = match cidr {
            IpNet::V4(_) => total.saturating_sub(2),
            IpNet::V6(_) => total.saturating_sub(1),
        };
        if usable == 0 {
            return Err(AllocError::InvalidRange(format!(
                "{cidr} has no usable addresses"
            )));
        }
        let size = usable.min(u128::from(MAX_IP_RANGE)) as u64;
        Ok(Self {
            cidr,
            bitmap: Bitmap::new(size, ip_static_band(size)),
        })
    }

    pub fn cidr(&self) -> IpNet {
        self.cidr
    }

    fn base(&self) -> u128 {
        ip_to_u128(self.cidr.network()) + 1
    }

    pub fn offset_of(&self, ip: IpAddr) -> Option<u64> {
        if !self.cidr.contains(&ip) || ip.is_ipv4() != self.cidr.network().is_ipv4() {
            return None;
        }
        let n = ip_to_u128(ip);
        let off = n.checked_sub(self.base())?;
        (off < u128::from(self.bitmap.size)).then_some(off as u64)
    }

    pub fn ip_at(&self, off: u64) -> IpAddr {
        u128_to_ip(self.base() + u128::from(off), self.cidr.network().is_ipv4())
    }

    /// The first usable address (the `kubernetes` Service's).
    pub fn first(&self) -> IpAddr {
        self.ip_at(0)
    }

    pub fn is_allocated(&self, ip: IpAddr) -> bool {
        self.offset_of(ip).is_some_and(|o| self.bitmap.is_set(o))
    }

    /// Checks a requested address: in range and not taken.
    pub fn check_request(&self, ip: IpAddr) -> Result<(), AllocError> {
        match self.offset_of(ip) {
            None => Err(AllocError::OutOfRange {
                what: "IP",
                range: self.cidr.to_string(),
            }),
            Some(o) if self.bitmap.is_set(o) => Err(AllocError::Allocated("IP")),
            Some(_) => Ok(()),
        }
    }

    /// A free address not in `exclude`, without taking it.
    pub fn pick(&self, exclude: &[IpAddr]) -> Result<IpAddr, AllocError> {
        let ex: Vec<u64> = exclude
            .iter()
            .filter_map(|ip| self.offset_of(*ip))
            .collect();
        self.bitmap
            .pick_free(&|o| ex.contains(&o))
            .map(|o| self.ip_at(o))
            .ok_or(AllocError::Full)
    }

    pub fn mark(&mut self, ip: IpAddr) -> bool {
        self.offset_of(ip).is_some_and(|o| self.bitmap.set(o))
    }

    pub fn release(&mut self, ip: IpAddr) {
        if let Some(o) = self.offset_of(ip) {
            self.bitmap.clear(o);
        }
    }

    pub fn used(&self) -> u64 {
        self.bitmap.used()
    }

    pub fn size(&self) -> u64 {
        self.bitmap.size()
    }
}

/// Node port allocator over an inclusive port range.
#[derive(Clone, Debug)]
pub struct PortRange {
    base: u16,
    max: u16,
    bitmap: Bitmap,
}

impl PortRange {
    pub fn new(base: u16, max: u16) -> Result<Self, AllocError> {
        if max < base {
            return Err(AllocError::InvalidRange(format!("{base}-{max}")));
        }
        let size = u64::from(max - base) + 1;
        Ok(Self {
            base,
            max,
            bitmap: Bitmap::new(size, port_static_band(size)),
        })
    }

    /// Parses `30000-32767` (or a single port).
    pub fn parse(s: &str) -> Result<Self, AllocError> {
        let bad = || AllocError::InvalidRange(s.to_string());
        let (a, b) = s.split_once('-').unwrap_or((s, s));
        let a: u16 = a.trim().parse().map_err(|_| bad())?;
        let b: u16 = b.trim().parse().map_err(|_| bad())?;
        Self::new(a, b)
    }

    pub fn range_string(&self) -> String {
        format!("{}-{}", self.base, self.max)
    }

    pub fn contains(&self, port: u16) -> bool {
        (self.base..=self.max).contains(&port)
    }

    pub fn is_allocated(&self, port: u16) -> bool {
        self.contains(port) && self.bitmap.is_set(u64::from(port - self.base))
    }

    pub fn check_request(&self, port: u16) -> Result<(), AllocError> {
        if !self.contains(port) {
            return Err(AllocError::OutOfRange {
                what: "port",
                range: self.range_string(),
            });
        }
        if self.is_allocated(port) {
            return Err(AllocError::Allocated("port"));
        }
        Ok(())
    }

    pub fn pick(&self, exclude: &[u16]) -> Result<u16, AllocError> {
        self.bitmap
            .pick_free(&|o| exclude.contains(&(self.base + o as u16)))
            .map(|o| self.base + o as u16)
            .ok_or(AllocError::Full)
    }

    pub fn mark(&mut self, port: u16) -> bool {
        self.contains(port) && self.bitmap.set(u64::from(port - self.base))
    }

    pub fn release(&mut self, port: u16) {
        if self.contains(port) {
            self.bitmap.clear(u64::from(port - self.base));
        }
    }

    pub fn used(&self) -> u64 {
        self.bitmap.used()
    }
}

fn ip_to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v) => u128::from(u32::from(v)),
        IpAddr::V6(v) => u128::from(v),
    }
}

fn u128_to_ip(n: u128, v4: bool) -> IpAddr {
    if v4 {
        IpAddr::V4((n as u32).into())
    } else {
        IpAddr::V6(n.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn band_sizes_follow_the_keps() {
        assert_eq!(ip_static_band(4094), 255); // a /20
        assert_eq!(ip_static_band(1 << 20), 256); // /12 capped
        assert_eq!(ip_static_band(254), 16); // /24: min 16
        assert_eq!(ip_static_band(6), 6); // tiny: the whole range
        assert_eq!(port_static_band(2768), 86); // 30000-32767
        assert_eq!(port_static_band(100000), 128);
    }

    #[test]
    fn ipv4_range_skips_network_and_broadcast() {
        let r = IpRange::new("10.96.0.0/30".parse().unwrap()).unwrap();
        assert_eq!(r.size(), 2);
        assert_eq!(r.first(), "10.96.0.1".parse::<IpAddr>().unwrap());
        assert!(r.offset_of("10.96.0.0".parse().unwrap()).is_none());
        assert!(r.offset_of("10.96.0.3".parse().unwrap()).is_none());
        assert_eq!(
            r.check_request("10.97.0.1".parse().unwrap()),
            Err(AllocError::OutOfRange {
                what: "IP",
                range: "10.96.0.0/30".into()
            })
        );
    }

    #[test]
    fn dynamic_allocation_prefers_the_upper_band_then_fills_everything() {
        let mut r = IpRange::new("10.0.0.0/24".parse().unwrap()).unwrap();
        let band = ip_static_band(r.size());
        for _ in 0..(r.size() - band) {
            let ip = r.pick(&[]).unwrap();
            assert!(
                r.offset_of(ip).unwrap() >= band,
                "{ip} from the static band too early"
            );
            assert!(r.mark(ip));
        }
        for _ in 0..band {
            let ip = r.pick(&[]).unwrap();
            assert!(r.mark(ip));
        }
        assert_eq!(r.pick(&[]), Err(AllocError::Full));
        assert_eq!(r.used(), 254);
    }

    #[test]
    fn requested_values_are_checked_and_released() {
        let mut p = PortRange::parse("30000-32767").unwrap();
        assert_eq!(p.check_request(30080), Ok(()));
        assert!(p.mark(30080));
        assert!(!p.mark(30080));
        assert_eq!(p.check_request(30080), Err(AllocError::Allocated("port")));
        assert_eq!(
            AllocError::OutOfRange {
                what: "port",
                range: p.range_string()
            }
            .to_string(),
            "provided port is not in the valid range. The range of valid ports is 30000-32767"
        );
        p.release(30080);
        assert_eq!(p.check_request(30080), Ok(()));
        assert!(p.check_request(80).is_err());
    }

    #[test]
    fn ipv6_range_is_capped() {
        let r = IpRange::new("fd00::/64".parse().unwrap()).unwrap();
        assert_eq!(r.size(), MAX_IP_RANGE);
        assert_eq!(r.first(), "fd00::1".parse::<IpAddr>().unwrap());
    }
}
