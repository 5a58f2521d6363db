//! Prometheus metrics of the API server: requests by verb/resource/code with latency histograms, open
//! watches, and the store revision.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<(String, String), Histogram>>,
    watches: Mutex<BTreeMap<String, (u64, i64)>>,
    /// Allocations planned again because another API server took the value first.
    allocation_retries: std::sync::atomic::AtomicU64,
}

/// Counts a watch as open until dropped.
pub struct WatchGuard<'a> {
    m: &'a Metrics,
    resource: &'static str,
}

impl Drop for WatchGuard<'_> {
    fn drop(&mut self) {
        let mut w = self.m.watches.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = w.get_mut(self.resource) {
            e.1 -= 1;
        }
    }
}

impl Metrics {
    pub fn observe(&self, verb: &str, resource: &str, code: u16, took: Duration) {
        *self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((verb.to_string(), resource.to_string(), code))
            .or_default() += 1;
        let secs = took.as_secs_f64();
        let mut l = self.latency.lock().unwrap_or_else(|e| e.into_inner());
        let h = l
            .entry((verb.to_string(), resource.to_string()))
            .or_default();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += secs;
        h.count += 1;
    }

    pub fn watch_started(&self, resource: &str) {
        self.watches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(resource.to_string())
            .or_default()
            .0 += 1;
    }

    pub fn watch_guard(&self, resource: &'static str) -> WatchGuard<'_> {
        self.watches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(resource.to_string())
            .or_default()
            .1 += 1;
        WatchGuard { m: self, resource }
    }

    pub fn render(&self, store_revision: i64, allocations: &[(String, u64, u64)]) -> String {
        let mut out = String::new();
        out.push_str("# HELP apiserver_request_total Counter of apiserver requests broken out by verb, resource and HTTP response code.\n# TYPE apiserver_request_total counter\n");
        for ((verb, res, code), n) in self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "apiserver_request_total{{verb=\"{verb}\",resource=\"{res}\",code=\"{code}\"}} {n}"
            );
        }
        out.push_str("# HELP apiserver_request_duration_seconds Response latency distribution in seconds for each verb and resource.\n# TYPE apiserver_request_duration_seconds histogram\n");
        for ((verb, res), h) in self
            .latency
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "apiserver_request_duration_seconds_bucket{{verb=\"{verb}\",resource=\"{res}\",le=\"{b}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(out, "apiserver_request_duration_seconds_bucket{{verb=\"{verb}\",resource=\"{res}\",le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(
                out,
                "apiserver_request_duration_seconds_sum{{verb=\"{verb}\",resource=\"{res}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "apiserver_request_duration_seconds_count{{verb=\"{verb}\",resource=\"{res}\"}} {}",
                h.count
            );
        }
        out.push_str("# HELP apiserver_longrunning_requests Gauge of open watch requests.\n# TYPE apiserver_longrunning_requests gauge\n");
        out.push_str("# HELP apiserver_watch_requests_total Watch requests started.\n# TYPE apiserver_watch_requests_total counter\n");
        for (res, (started, open)) in self
            .watches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "apiserver_longrunning_requests{{verb=\"WATCH\",resource=\"{res}\"}} {open}"
            );
            let _ = writeln!(
                out,
                "apiserver_watch_requests_total{{resource=\"{res}\"}} {started}"
            );
        }
        out.push_str("# HELP svcplane_store_revision Current revision of the object store.\n# TYPE svcplane_store_revision gauge\n");
        let _ = writeln!(out, "svcplane_store_revision {store_revision}");
        out.push_str("# HELP svcplane_allocator_used Allocated entries per range.\n# TYPE svcplane_allocator_used gauge\n");
        for (range, used, _) in allocations {
            let _ = writeln!(out, "svcplane_allocator_used{{range=\"{range}\"}} {used}");
        }
        out.push_str("# HELP svcplane_allocation_retries_total Service writes planned again because another API server took the value first.\n# TYPE svcplane_allocation_retries_total counter\n");
        let _ = writeln!(
            out,
            "svcplane_allocation_retries_total {}",
            self.allocation_retries
                .load(std::sync::atomic::Ordering::Relaxed)
        );
        out
    }

    pub fn allocation_retried(&self) {
        self.allocation_retries
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}
