//! Prometheus metrics of the EndpointSlice controller, named after upstream's
//! `endpoint_slice_controller_*` family, in the text exposition format.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// The `# HELP` and `# TYPE` lines that open one metric family in Prometheus' text format.
pub(crate) fn header(o: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}");
    let _ = writeln!(o, "# TYPE {name} {kind}");
}

/// Upper bounds (seconds) of the sync-duration histogram.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
pub struct Metrics {
    syncs_success: AtomicU64,
    syncs_error: AtomicU64,
    changes_create: AtomicU64,
    changes_update: AtomicU64,
    changes_delete: AtomicU64,
    endpoints_writes: AtomicU64,
    events: AtomicU64,
    slices: AtomicI64,
    endpoints_desired: AtomicI64,
    leader: AtomicI64,
    sync_buckets: [AtomicU64; BUCKETS.len()],
    sync_count: AtomicU64,
    sync_sum_us: AtomicU64,
}

/// The process's metrics: one controller per process, as in kube-controller-manager.
pub static METRICS: Metrics = Metrics {
    syncs_success: AtomicU64::new(0),
    syncs_error: AtomicU64::new(0),
    changes_create: AtomicU64::new(0),
    changes_update: AtomicU64::new(0),
    changes_delete: AtomicU64::new(0),
    endpoints_writes: AtomicU64::new(0),
    events: AtomicU64::new(0),
    slices: AtomicI64::new(0),
    endpoints_desired: AtomicI64::new(0),
    leader: AtomicI64::new(0),
    sync_buckets: [const { AtomicU64::new(0) }; BUCKETS.len()],
    sync_count: AtomicU64::new(0),
    sync_sum_us: AtomicU64::new(0),
};

/// A snapshot of the counters, for tests and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub syncs: u64,
    pub sync_errors: u64,
    pub slice_creates: u64,
    pub slice_updates: u64,
    pub slice_deletes: u64,
    pub endpoints_writes: u64,
}

impl Counters {
    /// All API writes of slices and Endpoints objects.
    pub fn writes(&self) -> u64 {
        self.slice_creates + self.slice_updates + self.slice_deletes + self.endpoints_writes
    }
}

impl Metrics {
    pub fn sync(&self, ok: bool, took: Duration) {
        if ok {
            self.syncs_success.fetch_add(1, Relaxed);
        } else {
            self.syncs_error.fetch_add(1, Relaxed);
        }
        let s = took.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if s <= *b {
                self.sync_buckets[i].fetch_add(1, Relaxed);
            }
        }
        self.sync_count.fetch_add(1, Relaxed);
        self.sync_sum_us
            .fetch_add(took.as_micros().min(u64::MAX as u128) as u64, Relaxed);
    }

    pub fn slice_change(&self, op: &str) {
        match op {
            "create" => &self.changes_create,
            "update" => &self.changes_update,
            _ => &self.changes_delete,
        }
        .fetch_add(1, Relaxed);
    }

    pub fn endpoints_write(&self) {
        self.endpoints_writes.fetch_add(1, Relaxed);
    }

    pub fn event(&self) {
        self.events.fetch_add(1, Relaxed);
    }

    pub fn set_slices(&self, n: usize) {
        self.slices.store(n as i64, Relaxed);
    }

    pub fn add_endpoints_desired(&self, delta: i64) {
        self.endpoints_desired.fetch_add(delta, Relaxed);
    }

    pub fn set_leader(&self, leader: bool) {
        self.leader.store(leader as i64, Relaxed);
    }

    pub fn counters(&self) -> Counters {
        Counters {
            syncs: self.syncs_success.load(Relaxed) + self.syncs_error.load(Relaxed),
            sync_errors: self.syncs_error.load(Relaxed),
            slice_creates: self.changes_create.load(Relaxed),
            slice_updates: self.changes_update.load(Relaxed),
            slice_deletes: self.changes_delete.load(Relaxed),
            endpoints_writes: self.endpoints_writes.load(Relaxed),
        }
    }

    pub fn text(&self) -> String {
        let mut o = String::new();
        header(
            &mut o,
            "endpoint_slice_controller_syncs",
            "counter",
            "Number of EndpointSlice syncs",
        );
        let _ = writeln!(
            o,
            "endpoint_slice_controller_syncs{{result=\"success\"}} {}",
            self.syncs_success.load(Relaxed)
        );
        let _ = writeln!(
            o,
            "endpoint_slice_controller_syncs{{result=\"error\"}} {}",
            self.syncs_error.load(Relaxed)
        );
        header(
            &mut o,
            "endpoint_slice_controller_changes",
            "counter",
            "Number of EndpointSlice changes",
        );
        for (op, c) in [
            ("create", &self.changes_create),
            ("update", &self.changes_update),
            ("delete", &self.changes_delete),
        ] {
            let _ = writeln!(
                o,
                "endpoint_slice_controller_changes{{operation=\"{op}\"}} {}",
                c.load(Relaxed)
            );
        }
        header(
            &mut o,
            "endpoint_slice_controller_endpoints_writes",
            "counter",
            "Number of v1 Endpoints creates, updates and deletes",
        );
        let _ = writeln!(
            o,
            "endpoint_slice_controller_endpoints_writes {}",
            self.endpoints_writes.load(Relaxed)
        );
        header(
            &mut o,
            "endpoint_slice_controller_events",
            "counter",
            "Number of Events recorded on Services",
        );
        let _ = writeln!(
            o,
            "endpoint_slice_controller_events {}",
            self.events.load(Relaxed)
        );
        header(
            &mut o,
            "endpoint_slice_controller_num_endpoint_slices",
            "gauge",
            "Number of EndpointSlices managed by this controller",
        );
        let _ = writeln!(
            o,
            "endpoint_slice_controller_num_endpoint_slices {}",
            self.slices.load(Relaxed)
        );
        header(
            &mut o,
            "endpoint_slice_controller_endpoints_desired",
            "gauge",
            "Number of endpoints desired",
        );
        let _ = writeln!(
            o,
            "endpoint_slice_controller_endpoints_desired {}",
            self.endpoints_desired.load(Relaxed)
        );
        header(
            &mut o,
            "endpoint_slice_controller_leader",
            "gauge",
            "Whether this replica holds the leader lease",
        );
        let _ = writeln!(
            o,
            "endpoint_slice_controller_leader {}",
            self.leader.load(Relaxed)
        );
        header(
            &mut o,
            "endpoint_slice_controller_sync_duration_seconds",
            "histogram",
            "Duration of one Service sync, API writes included",
        );
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                o,
                "endpoint_slice_controller_sync_duration_seconds_bucket{{le=\"{b}\"}} {}",
                self.sync_buckets[i].load(Relaxed)
            );
        }
        let count = self.sync_count.load(Relaxed);
        let _ = writeln!(
            o,
            "endpoint_slice_controller_sync_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            o,
            "endpoint_slice_controller_sync_duration_seconds_sum {}",
            self.sync_sum_us.load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(
            o,
            "endpoint_slice_controller_sync_duration_seconds_count {count}"
        );
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_has_every_family_and_cumulative_buckets() {
        let m = Metrics::default();
        m.sync(true, Duration::from_millis(3));
        m.sync(false, Duration::from_millis(300));
        m.slice_change("create");
        let t = m.text();
        assert!(t.contains("endpoint_slice_controller_syncs{result=\"success\"} 1"));
        assert!(t.contains("endpoint_slice_controller_syncs{result=\"error\"} 1"));
        assert!(t.contains("endpoint_slice_controller_changes{operation=\"create\"} 1"));
        assert!(
            t.contains("endpoint_slice_controller_sync_duration_seconds_bucket{le=\"0.005\"} 1")
        );
        assert!(t.contains("endpoint_slice_controller_sync_duration_seconds_bucket{le=\"0.5\"} 2"));
        assert!(t.contains("endpoint_slice_controller_sync_duration_seconds_count 2"));
    }
}
