//! The allocation table of LoadBalancer addresses: pure, no I/O, one instance on the leader.
//!
//! It is rebuilt from every Service's `status.loadBalancer.ingress` before anything new is allocated
//! ([`Allocator::adopt`], oldest Service first), so a restarted or newly elected controller never hands
//! out an address a Service already shows. An address has one holder, or several Services that may
//! share it: the same `svcplane.io/allow-shared-ip` key, no common (protocol, port), and — because the
//! announcement of a `Local` Service follows its endpoints — either all `Cluster`, or all `Local` with
//! the same selector (MetalLB's rules). Services of another load-balancer class that show an address of
//! our pools hold it too, unshareable, so it is not handed out twice.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::net::IpAddr;

use super::model::{ip_to_u128, u128_to_ip, Family, Pool, PortKey, SvcInfo};

pub type Key = (String, String);

/// Why a Service is left without an address (the Event's message says it in words).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// The request cannot be read or contradicts the Service (bad IP, wrong family).
    InvalidRequest,
    /// No pool may serve the Service (none, none with its family, selectors, unknown requested pool).
    NoPool,
    /// Every pool that may serve it is full.
    Exhausted,
    /// The requested address is outside the pools the Service may use, or held by a Service it cannot
    /// share with.
    RequestedUnavailable,
}

impl FailureKind {
    pub fn label(self) -> &'static str {
        match self {
            FailureKind::InvalidRequest => "invalid_request",
            FailureKind::NoPool => "no_pool",
            FailureKind::Exhausted => "exhausted",
            FailureKind::RequestedUnavailable => "requested_unavailable",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub kind: FailureKind,
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

fn fail(kind: FailureKind, message: impl Into<String>) -> Failure {
    Failure {
        kind,
        message: message.into(),
    }
}

/// What a Service's addresses turn out to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Not a Service of ours: leave its status alone.
    NotOurs,
    /// Its addresses, primary family first.
    Assigned(Vec<IpAddr>),
    /// Pending, and why.
    Failed(Failure),
}

/// The part of a holder that decides whether others may share its address.
#[derive(Clone, Debug, PartialEq)]
struct Share {
    /// `None` for Services of another class: they share with nobody.
    key: Option<String>,
    ports: Vec<PortKey>,
    local: bool,
    selector: Option<BTreeMap<String, String>>,
}

impl Share {
    fn of(svc: &SvcInfo) -> Self {
        Self {
            key: if svc.ours {
                svc.sharing_key.clone()
            } else {
                None
            },
            ports: svc.ports.clone(),
            local: svc.local,
            selector: svc.selector.clone(),
        }
    }

    /// Why the two cannot share an address, if they cannot.
    fn conflict(&self, other: &Share) -> Option<String> {
        match (&self.key, &other.key) {
            (Some(a), Some(b)) if a == b => {}
            (None, _) | (_, None) => return Some("it does not allow sharing".into()),
            _ => return Some("their sharing keys differ".into()),
        }
        if let Some(p) = self.ports.iter().find(|p| other.ports.contains(p)) {
            return Some(format!("both use port {}/{}", p.1, p.0));
        }
        if self.local != other.local {
            return Some("one has externalTrafficPolicy Local and the other Cluster".into());
        }
        if self.local && self.selector != other.selector {
            return Some("externalTrafficPolicy Local Services must have the same selector".into());
        }
        None
    }
}

#[derive(Clone, Debug)]
struct Held {
    ips: Vec<IpAddr>,
    share: Share,
}

#[derive(Default)]
pub struct Allocator {
    pools: BTreeMap<String, Pool>,
    namespaces: HashMap<String, BTreeMap<String, String>>,
    holders: HashMap<IpAddr, BTreeSet<Key>>,
    held: HashMap<Key, Held>,
}

/// Usage of one pool and family: (total assignable, used).
pub type Usage = BTreeMap<(String, Family), (u128, u128)>;

impl Allocator {
    pub fn new(
        pools: impl IntoIterator<Item = Pool>,
        namespaces: HashMap<String, BTreeMap<String, String>>,
    ) -> Self {
        Self {
            pools: pools.into_iter().map(|p| (p.name.clone(), p)).collect(),
            namespaces,
            ..Default::default()
        }
    }

    pub fn set_pool(&mut self, pool: Pool) {
        self.pools.insert(pool.name.clone(), pool);
    }

    pub fn remove_pool(&mut self, name: &str) {
        self.pools.remove(name);
    }

    pub fn set_namespace(&mut self, name: &str, labels: BTreeMap<String, String>) {
        self.namespaces.insert(name.to_string(), labels);
    }

    pub fn remove_namespace(&mut self, name: &str) {
        self.namespaces.remove(name);
    }

    /// The Services holding an address.
    pub fn holders_of(&self, ip: &IpAddr) -> Vec<Key> {
        self.holders
            .get(ip)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The addresses a Service holds.
    pub fn held_by(&self, key: &Key) -> Vec<IpAddr> {
        self.held
            .get(key)
            .map(|h| h.ips.clone())
            .unwrap_or_default()
    }

    fn in_any_pool(&self, ip: &IpAddr) -> bool {
        self.pools.values().any(|p| p.contains(ip))
    }

    fn admits(&self, pool: &Pool, svc: &SvcInfo) -> bool {
        let empty = BTreeMap::new();
        let ns = self.namespaces.get(&svc.namespace).unwrap_or(&empty);
        pool.admits(&svc.labels, ns)
    }

    /// Pools that may hold `ip` for `svc` (autoAssign does not matter once an address is asked for or
    /// held).
    fn pool_for(&self, svc: &SvcInfo, ip: &IpAddr) -> Option<&Pool> {
        self.pools.values().find(|p| {
            p.contains(ip)
                && svc.requested_pool.as_ref().is_none_or(|r| *r == p.name)
                && self.admits(p, svc)
        })
    }

    /// Why `svc` may not use `ip` because of its other holders, if so.
    fn holder_conflict(&self, svc: &SvcInfo, ip: &IpAddr) -> Option<String> {
        let key = svc.key();
        let share = Share::of(svc);
        for other in self.holders.get(ip).into_iter().flatten() {
            if *other == key {
                continue;
            }
            let Some(h) = self.held.get(other) else {
                continue;
            };
            if let Some(why) = share.conflict(&h.share) {
                return Some(format!(
                    "{ip} is in use by Service {}/{} and {why}",
                    other.0, other.1
                ));
            }
        }
        None
    }

    /// Whether `svc` may have `ip` now.
    fn valid_for(&self, svc: &SvcInfo, ip: &IpAddr) -> bool {
        let requested = svc.requested.as_deref().unwrap_or_default();
        svc.families.contains(&Family::of(ip))
            && (requested.is_empty() || requested.contains(ip))
            && self.pool_for(svc, ip).is_some()
            && self.holder_conflict(svc, ip).is_none()
    }

    fn record(&mut self, svc: &SvcInfo, ips: Vec<IpAddr>) {
        let key = svc.key();
        self.release(&key);
        if ips.is_empty() {
            return;
        }
        for ip in &ips {
            self.holders.entry(*ip).or_default().insert(key.clone());
        }
        self.held.insert(
            key,
            Held {
                ips,
                share: Share::of(svc),
            },
        );
    }

    /// Frees everything a Service holds.
    pub fn release(&mut self, key: &Key) {
        let Some(h) = self.held.remove(key) else {
            return;
        };
        for ip in h.ips {
            if let Some(set) = self.holders.get_mut(&ip) {
                set.remove(key);
                if set.is_empty() {
                    self.holders.remove(&ip);
                }
            }
        }
    }

    /// Rebuild step: takes the addresses a Service shows in its status, where still valid. Returns
    /// whether all of them were kept (the others are dropped; a later [`Allocator::assign`] fixes them).
    /// Call for every Service, oldest first, before any `assign`.
    pub fn adopt(&mut self, svc: &SvcInfo) -> bool {
        if !svc.ours {
            self.note_foreign(svc);
            return true;
        }
        let keep: Vec<IpAddr> = svc
            .current
            .iter()
            .copied()
            .filter(|ip| self.valid_for(svc, ip))
            .collect();
        let all = keep.len() == svc.current.len();
        self.record(svc, keep);
        all
    }

    /// Addresses in our pools shown by a Service that is not ours stay taken while it shows them.
    fn note_foreign(&mut self, svc: &SvcInfo) {
        let ips: Vec<IpAddr> = svc
            .current
            .iter()
            .copied()
            .filter(|ip| self.in_any_pool(ip))
            .collect();
        self.record(svc, ips);
    }

    /// Decides a Service's addresses, keeping the ones it holds (or shows) while they stay valid.
    pub fn assign(&mut self, svc: &SvcInfo) -> Outcome {
        if !svc.ours {
            self.note_foreign(svc);
            return Outcome::NotOurs;
        }
        match self.choose(svc) {
            Ok(ips) => {
                self.record(svc, ips.clone());
                Outcome::Assigned(ips)
            }
            Err(f) => {
                // A Service whose request cannot be met shows no address at all rather than one it did
                // not ask for.
                self.release(&svc.key());
                Outcome::Failed(f)
            }
        }
    }

    fn choose(&self, svc: &SvcInfo) -> Result<Vec<IpAddr>, Failure> {
        let requested = svc
            .requested
            .clone()
            .map_err(|m| fail(FailureKind::InvalidRequest, m))?;
        for (i, ip) in requested.iter().enumerate() {
            let f = Family::of(ip);
            if !svc.families.contains(&f) {
                return Err(fail(
                    FailureKind::InvalidRequest,
                    format!(
                        "requested IP {ip} is {} but the Service's ipFamilies are [{}]",
                        f.as_str(),
                        svc.families
                            .iter()
                            .map(|f| f.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            if requested[..i].iter().any(|o| Family::of(o) == f) {
                return Err(fail(
                    FailureKind::InvalidRequest,
                    format!("more than one {} address requested", f.as_str()),
                ));
            }
        }
        if let Some(name) = &svc.requested_pool {
            if !self.pools.contains_key(name) {
                return Err(fail(
                    FailureKind::NoPool,
                    format!("requested pool {name:?} does not exist"),
                ));
            }
        }
        let held = self.held_by(&svc.key());
        let mut out = Vec::new();
        for (i, fam) in svc.families.iter().copied().enumerate() {
            let got = self.choose_family(svc, fam, &requested, &held, &out);
            match got {
                Ok(ip) => out.push(ip),
                // PreferDualStack settles for the primary family.
                Err(_) if i > 0 && !svc.require_all_families => {}
                Err(f) => return Err(f),
            }
        }
        Ok(out)
    }

    fn choose_family(
        &self,
        svc: &SvcInfo,
        fam: Family,
        requested: &[IpAddr],
        held: &[IpAddr],
        chosen: &[IpAddr],
    ) -> Result<IpAddr, Failure> {
        // What it holds, then what its status shows (e.g. written before a restart), if still valid.
        for ip in held.iter().chain(&svc.current) {
            if Family::of(ip) == fam && !chosen.contains(ip) && self.valid_for(svc, ip) {
                return Ok(*ip);
            }
        }
        if let Some(ip) = requested.iter().find(|ip| Family::of(ip) == fam) {
            if self.pool_for(svc, ip).is_none() {
                let scope = match &svc.requested_pool {
                    Some(p) => format!("pool {p:?}"),
                    None => "any pool this Service may use".into(),
                };
                return Err(fail(
                    FailureKind::RequestedUnavailable,
                    format!("requested IP {ip} is not in {scope}"),
                ));
            }
            if let Some(why) = self.holder_conflict(svc, ip) {
                return Err(fail(
                    FailureKind::RequestedUnavailable,
                    format!("requested IP {ip} is not available: {why}"),
                ));
            }
            return Ok(*ip);
        }
        let candidates: Vec<&Pool> = match &svc.requested_pool {
            Some(name) => {
                let Some(p) = self.pools.get(name) else {
                    return Err(fail(
                        FailureKind::NoPool,
                        format!("requested pool {name:?} does not exist"),
                    ));
                };
                if !p.has_family(fam) {
                    return Err(fail(
                        FailureKind::NoPool,
                        format!("requested pool {name:?} has no {} addresses", fam.as_str()),
                    ));
                }
                if !self.admits(p, svc) {
                    return Err(fail(
                        FailureKind::NoPool,
                        format!(
                            "requested pool {name:?} does not admit this Service (serviceSelector or namespaceSelector)"
                        ),
                    ));
                }
                vec![p]
            }
            None => {
                let mut v: Vec<&Pool> = self
                    .pools
                    .values()
                    .filter(|p| p.auto_assign && p.has_family(fam) && self.admits(p, svc))
                    .collect();
                // Higher priority first; names break ties (BTreeMap order is kept by the stable sort).
                v.sort_by_key(|p| std::cmp::Reverse(p.priority));
                v
            }
        };
        if candidates.is_empty() {
            return Err(fail(
                FailureKind::NoPool,
                format!(
                    "no pool with autoAssign and {} addresses admits this Service",
                    fam.as_str()
                ),
            ));
        }
        // A Service with a sharing key joins an address its partners already have, as MetalLB does.
        if svc.sharing_key.is_some() {
            for p in &candidates {
                let shared = self
                    .holders
                    .keys()
                    .filter(|ip| Family::of(ip) == fam && p.contains(ip))
                    .filter(|ip| self.holder_conflict(svc, ip).is_none())
                    .min_by_key(|ip| ip_to_u128(**ip));
                if let Some(ip) = shared {
                    return Ok(*ip);
                }
            }
        }
        for p in &candidates {
            if let Some(ip) = self.lowest_free(p, fam) {
                return Ok(ip);
            }
        }
        Err(fail(
            FailureKind::Exhausted,
            format!(
                "no available {} address in pool{} {}",
                fam.as_str(),
                if candidates.len() == 1 { "" } else { "s" },
                candidates
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ))
    }

    /// The lowest address of the pool nobody holds. Costs O(held addresses), not O(pool size), so IPv6
    /// pools of any size work.
    fn lowest_free(&self, pool: &Pool, fam: Family) -> Option<IpAddr> {
        let mut blocks: Vec<_> = pool.blocks.iter().filter(|b| b.family == fam).collect();
        blocks.sort_by_key(|b| b.first);
        for b in blocks {
            let mut used: Vec<u128> = self
                .holders
                .keys()
                .filter(|ip| b.contains(ip))
                .map(|ip| ip_to_u128(*ip))
                .collect();
            used.sort_unstable();
            let mut next = b.first;
            for u in used {
                if u > next {
                    break;
                }
                if u == next {
                    if next == b.last {
                        next = u128::MAX;
                        break;
                    }
                    next += 1;
                }
            }
            if next != u128::MAX && next <= b.last {
                return Some(u128_to_ip(next, fam));
            }
        }
        None
    }

    /// Every pool's total and used addresses per family it has.
    pub fn usage(&self) -> Usage {
        let mut out = Usage::new();
        for p in self.pools.values() {
            for fam in [Family::V4, Family::V6] {
                if !p.has_family(fam) {
                    continue;
                }
                let used = self
                    .holders
                    .keys()
                    .filter(|ip| Family::of(ip) == fam && p.contains(ip))
                    .count() as u128;
                out.insert((p.name.clone(), fam), (p.total(fam), used));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lbipam::model::{Block, Selector};

    fn pool(name: &str, cidrs: &[&str]) -> Pool {
        Pool {
            name: name.into(),
            blocks: cidrs.iter().map(|c| Block::parse(c).unwrap()).collect(),
            auto_assign: true,
            priority: 0,
            service_selector: None,
            namespace_selector: None,
        }
    }

    fn svc(name: &str) -> SvcInfo {
        SvcInfo {
            namespace: "default".into(),
            name: name.into(),
            uid: format!("uid-{name}"),
            created: 0,
            labels: BTreeMap::new(),
            ours: true,
            families: vec![Family::V4],
            require_all_families: true,
            requested: Ok(Vec::new()),
            requested_pool: None,
            sharing_key: None,
            ports: vec![("TCP".into(), 80)],
            local: false,
            selector: Some(BTreeMap::from([("app".into(), name.into())])),
            current: Vec::new(),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn assigned(o: Outcome) -> Vec<String> {
        match o {
            Outcome::Assigned(ips) => ips.iter().map(ToString::to_string).collect(),
            other => panic!("expected an assignment, got {other:?}"),
        }
    }

    fn failed(o: Outcome) -> Failure {
        match o {
            Outcome::Failed(f) => f,
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    fn alloc(pools: Vec<Pool>) -> Allocator {
        Allocator::new(pools, HashMap::new())
    }

    #[test]
    fn lowest_free_address_then_exhaustion() {
        let mut a = alloc(vec![pool("p", &["192.0.2.10-192.0.2.11"])]);
        assert_eq!(assigned(a.assign(&svc("a"))), ["192.0.2.10"]);
        assert_eq!(assigned(a.assign(&svc("b"))), ["192.0.2.11"]);
        let f = failed(a.assign(&svc("c")));
        assert_eq!(f.kind, FailureKind::Exhausted);
        assert_eq!(f.message, "no available IPv4 address in pool p");
        // Idempotent: a Service keeps what it holds.
        assert_eq!(assigned(a.assign(&svc("a"))), ["192.0.2.10"]);
        // Release frees the address for the next one.
        a.release(&("default".into(), "a".into()));
        assert_eq!(assigned(a.assign(&svc("c"))), ["192.0.2.10"]);
        let u = a.usage();
        assert_eq!(u[&("p".to_string(), Family::V4)], (2, 2));
    }

    #[test]
    fn cidr_pools_skip_network_and_broadcast() {
        let mut a = alloc(vec![pool("p", &["192.0.2.0/30"])]);
        assert_eq!(assigned(a.assign(&svc("a"))), ["192.0.2.1"]);
        assert_eq!(assigned(a.assign(&svc("b"))), ["192.0.2.2"]);
        assert_eq!(failed(a.assign(&svc("c"))).kind, FailureKind::Exhausted);
    }

    #[test]
    fn requested_ip_is_honored_or_refused_with_reason() {
        let mut a = alloc(vec![pool("p", &["192.0.2.0/24"])]);
        let mut s = svc("a");
        s.requested = Ok(vec![ip("192.0.2.50")]);
        assert_eq!(assigned(a.assign(&s)), ["192.0.2.50"]);
        let mut t = svc("b");
        t.requested = Ok(vec![ip("192.0.2.50")]);
        let f = failed(a.assign(&t));
        assert_eq!(f.kind, FailureKind::RequestedUnavailable);
        assert_eq!(
            f.message,
            "requested IP 192.0.2.50 is not available: 192.0.2.50 is in use by Service default/a and it does not allow sharing"
        );
        t.requested = Ok(vec![ip("198.51.100.1")]);
        assert_eq!(
            failed(a.assign(&t)).message,
            "requested IP 198.51.100.1 is not in any pool this Service may use"
        );
        t.requested = Ok(vec![ip("2001:db8::1")]);
        assert_eq!(failed(a.assign(&t)).kind, FailureKind::InvalidRequest);
        t.requested = Err("invalid IP \"x\" in annotation svcplane.io/loadBalancerIPs".into());
        assert_eq!(failed(a.assign(&t)).kind, FailureKind::InvalidRequest);
        // A request that changes moves the Service to the new address, freeing the old one.
        s.requested = Ok(vec![ip("192.0.2.51")]);
        assert_eq!(assigned(a.assign(&s)), ["192.0.2.51"]);
        assert!(a.holders_of(&ip("192.0.2.50")).is_empty());
    }

    #[test]
    fn requested_pool_ignores_auto_assign_but_not_selectors() {
        let mut manual = pool("manual", &["198.51.100.0/24"]);
        manual.auto_assign = false;
        manual.priority = 100;
        let mut a = alloc(vec![pool("auto", &["192.0.2.0/24"]), manual]);
        assert_eq!(assigned(a.assign(&svc("a"))), ["192.0.2.1"]);
        let mut s = svc("b");
        s.requested_pool = Some("manual".into());
        assert_eq!(assigned(a.assign(&s)), ["198.51.100.1"]);
        s.requested_pool = Some("nope".into());
        assert_eq!(
            failed(a.assign(&s)).message,
            "requested pool \"nope\" does not exist"
        );
        let mut picky = pool("picky", &["203.0.113.0/24"]);
        picky.service_selector = Some(
            Selector::parse(
                &serde_json::from_value(serde_json::json!({"matchLabels": {"tier": "gold"}}))
                    .unwrap(),
            )
            .unwrap(),
        );
        a.set_pool(picky);
        s.requested_pool = Some("picky".into());
        assert_eq!(failed(a.assign(&s)).kind, FailureKind::NoPool);
        s.labels.insert("tier".into(), "gold".into());
        assert_eq!(assigned(a.assign(&s)), ["203.0.113.1"]);
    }

    #[test]
    fn priority_then_name_orders_pools_and_selectors_filter() {
        let mut hi = pool("zz-high", &["198.51.100.0/24"]);
        hi.priority = 10;
        let mut ns_only = pool("aa-team", &["203.0.113.0/24"]);
        ns_only.priority = 20;
        ns_only.namespace_selector = Some(
            Selector::parse(
                &serde_json::from_value(serde_json::json!({"matchLabels": {"team": "a"}})).unwrap(),
            )
            .unwrap(),
        );
        let mut a = alloc(vec![pool("b", &["192.0.2.0/24"]), hi, ns_only]);
        assert_eq!(assigned(a.assign(&svc("x"))), ["198.51.100.1"]);
        a.set_namespace("default", BTreeMap::from([("team".into(), "a".into())]));
        assert_eq!(assigned(a.assign(&svc("y"))), ["203.0.113.1"]);
        a.remove_pool("zz-high");
        a.remove_namespace("default");
        // x's pool is gone: it moves to the remaining pool it may use.
        assert_eq!(assigned(a.assign(&svc("x"))), ["192.0.2.1"]);
        let mut off = pool("b", &["192.0.2.0/24"]);
        off.auto_assign = false;
        a.set_pool(off);
        let f = failed(a.assign(&svc("z")));
        assert_eq!(f.kind, FailureKind::NoPool);
        assert_eq!(
            f.message,
            "no pool with autoAssign and IPv4 addresses admits this Service"
        );
    }

    #[test]
    fn sharing_needs_same_key_and_distinct_ports() {
        let mut a = alloc(vec![pool("p", &["192.0.2.0/24"])]);
        let mut web = svc("web");
        web.sharing_key = Some("k".into());
        let mut dns = svc("dns");
        dns.sharing_key = Some("k".into());
        dns.ports = vec![("UDP".into(), 53)];
        assert_eq!(assigned(a.assign(&web)), ["192.0.2.1"]);
        assert_eq!(assigned(a.assign(&dns)), ["192.0.2.1"]);
        let mut web2 = svc("web2");
        web2.sharing_key = Some("k".into());
        // Port 80/TCP is taken on .1 by web: web2 gets an address of its own.
        assert_eq!(assigned(a.assign(&web2)), ["192.0.2.2"]);
        let mut other_key = svc("ok");
        other_key.sharing_key = Some("other".into());
        other_key.ports = vec![("TCP".into(), 443)];
        other_key.requested = Ok(vec![ip("192.0.2.1")]);
        assert!(failed(a.assign(&other_key))
            .message
            .contains("their sharing keys differ"));
        // A Local Service shares only with Local Services of the same selector.
        let mut local = svc("local");
        local.sharing_key = Some("k".into());
        local.ports = vec![("TCP".into(), 8443)];
        local.local = true;
        local.requested = Ok(vec![ip("192.0.2.1")]);
        assert!(failed(a.assign(&local))
            .message
            .contains("externalTrafficPolicy Local"));
        // The address stays while one sharer holds it.
        a.release(&web.key());
        assert_eq!(a.holders_of(&ip("192.0.2.1")), [dns.key()]);
        a.release(&dns.key());
        assert!(a.holders_of(&ip("192.0.2.1")).is_empty());
    }

    #[test]
    fn dual_stack_families_and_prefer_dual_stack() {
        let mut a = alloc(vec![
            pool("v4", &["192.0.2.0/24"]),
            pool("v6", &["2001:db8::/120"]),
        ]);
        let mut s = svc("ds");
        s.families = vec![Family::V6, Family::V4];
        assert_eq!(assigned(a.assign(&s)), ["2001:db8::1", "192.0.2.1"]);
        a.remove_pool("v6");
        // RequireDualStack: no IPv6 address → pending, and nothing held.
        assert_eq!(failed(a.assign(&s)).kind, FailureKind::NoPool);
        assert!(a.held_by(&s.key()).is_empty());
        s.families = vec![Family::V4, Family::V6];
        s.require_all_families = false;
        assert_eq!(assigned(a.assign(&s)), ["192.0.2.1"]);
    }

    #[test]
    fn rebuild_keeps_valid_status_and_resolves_duplicates_oldest_first() {
        let mut a = alloc(vec![pool("p", &["192.0.2.0/24"])]);
        let mut old = svc("old");
        old.current = vec![ip("192.0.2.7")];
        let mut young = svc("young");
        young.created = 1;
        young.current = vec![ip("192.0.2.7")];
        let mut outside = svc("outside");
        outside.current = vec![ip("198.51.100.7")];
        let mut foreign = svc("foreign");
        foreign.ours = false;
        foreign.current = vec![ip("192.0.2.1")];
        assert!(a.adopt(&old));
        assert!(!a.adopt(&young));
        assert!(!a.adopt(&outside));
        assert!(a.adopt(&foreign));
        assert_eq!(assigned(a.assign(&old)), ["192.0.2.7"]);
        // .1 is shown by a Service of another class: skipped.
        assert_eq!(assigned(a.assign(&young)), ["192.0.2.2"]);
        assert_eq!(assigned(a.assign(&outside)), ["192.0.2.3"]);
        assert_eq!(a.assign(&foreign), Outcome::NotOurs);
        assert_eq!(a.holders_of(&ip("192.0.2.1")), [foreign.key()]);
        let u = a.usage();
        assert_eq!(u[&("p".to_string(), Family::V4)], (254, 4));
    }

    #[test]
    fn ipv6_pools_of_any_size() {
        let mut a = alloc(vec![pool("v6", &["2001:db8::/64"])]);
        let mut s = svc("a");
        s.families = vec![Family::V6];
        assert_eq!(assigned(a.assign(&s)), ["2001:db8::1"]);
        assert_eq!(
            a.usage()[&("v6".to_string(), Family::V6)],
            ((1u128 << 64) - 2, 1)
        );
    }
}
