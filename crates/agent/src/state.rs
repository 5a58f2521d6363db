//! What the sync loop publishes for the HTTP servers: health, metrics, health checks and the applied state.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use proxy::{HealthCheck, Stats};

/// Upper bounds of the sync-duration histograms, in seconds (kube-proxy uses exponential buckets from 1 ms).
pub const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048,
    4.096,
];

#[derive(Debug, Default, Clone)]
pub struct Histogram {
    pub counts: [u64; BUCKETS.len()],
    pub count: u64,
    pub sum: f64,
}

impl Histogram {
    pub fn observe(&mut self, d: Duration) {
        let s = d.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if s <= *b {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += s;
    }
}

/// One frontend as last applied to the kernel.
#[derive(Debug, Clone)]
pub struct AppliedFrontend {
    pub frontend: String,
    pub service: String,
    pub endpoints: Vec<String>,
}

#[derive(Debug, Default)]
pub struct Shared {
    pub last_sync: Option<SystemTime>,
    /// When the first change not yet applied arrived (kube-proxy's healthz turns 503 when it stays too long).
    pub pending_since: Option<SystemTime>,
    pub syncs: u64,
    pub full_syncs: u64,
    pub failures: u64,
    pub full: Histogram,
    pub partial: Histogram,
    /// Watch event → kernel, for the change that triggered a partial sync.
    pub change_to_kernel: Histogram,
    pub conntrack_deletions: u64,
    pub stats: BTreeMap<&'static str, Stats>,
    pub health_checks: Vec<HealthCheck>,
    /// Frontend (as text) → what the kernel was given for it; kept up to date from each diff.
    pub applied: BTreeMap<String, AppliedFrontend>,
    /// Bumped on every successful sync: tests and tools wait for it.
    pub generation: u64,
    pub failed_services: BTreeMap<String, String>,
    pub synced_once: bool,
    /// The LoadBalancer announcer's metrics, when it runs.
    pub announce: Option<std::sync::Arc<announce::Metrics>>,
}

pub type SharedState = std::sync::Arc<Mutex<Shared>>;

pub fn lock(state: &SharedState) -> std::sync::MutexGuard<'_, Shared> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}
