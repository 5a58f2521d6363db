//! Prometheus metrics of the LoadBalancer IPAM controller (`svcplane_lb_ipam_*`), appended to the
//! controllers' metrics text.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use super::alloc::{FailureKind, Usage};
use crate::metrics::header;

/// (pool, family) → (total, used).
type PoolGauges = BTreeMap<(String, &'static str), (u128, u128)>;

pub struct Metrics {
    allocations: AtomicU64,
    releases: AtomicU64,
    failures: Mutex<BTreeMap<&'static str, u64>>,
    pending: AtomicI64,
    leader: AtomicI64,
    /// (pool, family) → (total, used), replaced whole on each usage pass.
    pools: Mutex<PoolGauges>,
}

pub static METRICS: Metrics = Metrics {
    allocations: AtomicU64::new(0),
    releases: AtomicU64::new(0),
    failures: Mutex::new(BTreeMap::new()),
    pending: AtomicI64::new(0),
    leader: AtomicI64::new(0),
    pools: Mutex::new(BTreeMap::new()),
};

impl Metrics {
    /// Addresses newly given to Services.
    pub fn allocated(&self, n: usize) {
        self.allocations.fetch_add(n as u64, Relaxed);
    }

    /// Addresses a Service stopped holding.
    pub fn released(&self, n: usize) {
        self.releases.fetch_add(n as u64, Relaxed);
    }

    pub fn failure(&self, kind: FailureKind) {
        *self
            .failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(kind.label())
            .or_insert(0) += 1;
    }

    pub fn set_pending(&self, n: usize) {
        self.pending.store(n as i64, Relaxed);
    }

    pub fn set_leader(&self, leader: bool) {
        self.leader.store(i64::from(leader), Relaxed);
    }

    pub fn set_usage(&self, usage: &Usage) {
        let mut m = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        *m = usage
            .iter()
            .map(|((pool, fam), v)| ((pool.clone(), fam.as_str()), *v))
            .collect();
    }

    pub fn text(&self) -> String {
        let mut o = String::new();
        let pools = self.pools.lock().unwrap_or_else(|e| e.into_inner()).clone();
        header(
            &mut o,
            "svcplane_lb_ipam_pool_addresses_total",
            "gauge",
            "Assignable addresses of a LoadBalancerIPPool, per family",
        );
        for ((pool, fam), (total, _)) in &pools {
            let _ = writeln!(
                o,
                "svcplane_lb_ipam_pool_addresses_total{{pool=\"{pool}\",family=\"{fam}\"}} {total}"
            );
        }
        header(
            &mut o,
            "svcplane_lb_ipam_pool_addresses_used",
            "gauge",
            "Addresses of a LoadBalancerIPPool assigned to Services, per family",
        );
        for ((pool, fam), (_, used)) in &pools {
            let _ = writeln!(
                o,
                "svcplane_lb_ipam_pool_addresses_used{{pool=\"{pool}\",family=\"{fam}\"}} {used}"
            );
        }
        header(
            &mut o,
            "svcplane_lb_ipam_allocations_total",
            "counter",
            "Addresses assigned to Services",
        );
        let _ = writeln!(
            o,
            "svcplane_lb_ipam_allocations_total {}",
            self.allocations.load(Relaxed)
        );
        header(
            &mut o,
            "svcplane_lb_ipam_releases_total",
            "counter",
            "Addresses Services stopped holding",
        );
        let _ = writeln!(
            o,
            "svcplane_lb_ipam_releases_total {}",
            self.releases.load(Relaxed)
        );
        header(
            &mut o,
            "svcplane_lb_ipam_allocation_failures_total",
            "counter",
            "Services left pending, by reason",
        );
        let failures = self
            .failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for kind in [
            FailureKind::InvalidRequest,
            FailureKind::NoPool,
            FailureKind::Exhausted,
            FailureKind::RequestedUnavailable,
        ] {
            let _ = writeln!(
                o,
                "svcplane_lb_ipam_allocation_failures_total{{reason=\"{}\"}} {}",
                kind.label(),
                failures.get(kind.label()).copied().unwrap_or(0)
            );
        }
        header(
            &mut o,
            "svcplane_lb_ipam_services_pending",
            "gauge",
            "LoadBalancer Services of ours without an address",
        );
        let _ = writeln!(
            o,
            "svcplane_lb_ipam_services_pending {}",
            self.pending.load(Relaxed)
        );
        header(
            &mut o,
            "svcplane_lb_ipam_leader",
            "gauge",
            "Whether this replica holds the LB IPAM leader lease",
        );
        let _ = writeln!(o, "svcplane_lb_ipam_leader {}", self.leader.load(Relaxed));
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lbipam::model::Family;

    #[test]
    fn text_has_pool_usage_and_counters() {
        let m = Metrics {
            allocations: AtomicU64::new(0),
            releases: AtomicU64::new(0),
            failures: Mutex::new(BTreeMap::new()),
            pending: AtomicI64::new(0),
            leader: AtomicI64::new(0),
            pools: Mutex::new(BTreeMap::new()),
        };
        m.allocated(2);
        m.failure(FailureKind::Exhausted);
        m.set_usage(&Usage::from([(
            ("default".to_string(), Family::V4),
            (254, 3),
        )]));
        let t = m.text();
        assert!(t.contains(
            "svcplane_lb_ipam_pool_addresses_total{pool=\"default\",family=\"IPv4\"} 254"
        ));
        assert!(
            t.contains("svcplane_lb_ipam_pool_addresses_used{pool=\"default\",family=\"IPv4\"} 3")
        );
        assert!(t.contains("svcplane_lb_ipam_allocations_total 2"));
        assert!(t.contains("svcplane_lb_ipam_allocation_failures_total{reason=\"exhausted\"} 1"));
        assert!(t.contains("svcplane_lb_ipam_allocation_failures_total{reason=\"no_pool\"} 0"));
    }
}
