//! Prometheus counters for the server: answers by query type and rcode, a latency histogram, the forwarding
//! cache and upstream failures. Fixed arrays of atomics, so that recording costs a few relaxed increments and
//! never allocates; the text exposition is rendered only when scraped.
//!
//! Shapes follow CoreDNS's (`coredns_dns_responses_total`, `coredns_dns_request_duration_seconds`,
//! `coredns_cache_hits_total`, `coredns_forward_*`) under our own `svcplane_dns_` prefix, since these are not
//! CoreDNS's series.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::answer::Transport;

/// Query types counted under their own label; everything else is `other`.
const TYPES: [(u16, &str); 10] = [
    (1, "A"),
    (28, "AAAA"),
    (5, "CNAME"),
    (15, "MX"),
    (2, "NS"),
    (12, "PTR"),
    (6, "SOA"),
    (33, "SRV"),
    (16, "TXT"),
    (255, "ANY"),
];
const OTHER_TYPE: usize = TYPES.len();

const RCODES: [&str; 16] = [
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET",
    "NXRRSET", "NOTAUTH", "NOTZONE", "RCODE11", "RCODE12", "RCODE13", "RCODE14", "RCODE15",
];

/// CoreDNS's buckets: 0.25 ms doubling up to about 8 s.
const BUCKETS: usize = 16;
const FIRST_BUCKET_NANOS: u64 = 250_000;

/// Which kind of cache answer a hit was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheKind {
    Success,
    Denial,
}

#[derive(Default)]
pub struct Metrics {
    requests: [AtomicU64; 2],
    responses: [[AtomicU64; 16]; OTHER_TYPE + 1],
    latency: [AtomicU64; BUCKETS + 1],
    latency_sum_nanos: AtomicU64,
    cache_hits: [AtomicU64; 2],
    cache_misses: AtomicU64,
    forward_requests: AtomicU64,
    forward_errors: AtomicU64,
    allow_refused: AtomicU64,
}

/// The query type of a packet, read without decoding it: `None` when the question is absent or compressed.
pub(crate) fn qtype_of(query: &[u8]) -> Option<u16> {
    let mut pos = crate::wire::HEADER_LEN;
    if query.get(4..6)? == [0, 0] {
        return None;
    }
    loop {
        let len = *query.get(pos)? as usize;
        if len == 0 {
            let t = query.get(pos + 1..pos + 3)?;
            return Some(u16::from_be_bytes([t[0], t[1]]));
        }
        if len & 0xC0 != 0 {
            return None;
        }
        pos += 1 + len;
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// Records one answered query: `qtype` as read from the query, the reply as sent.
    pub fn observe(&self, qtype: Option<u16>, reply: &[u8], transport: Transport, took: Duration) {
        let t = qtype
            .and_then(|q| TYPES.iter().position(|(n, _)| *n == q))
            .unwrap_or(OTHER_TYPE);
        let rcode = reply.get(3).map(|b| (b & 0xF) as usize).unwrap_or(2);
        self.responses[t][rcode].fetch_add(1, Ordering::Relaxed);
        let proto = match transport {
            Transport::Udp => 0,
            Transport::Tcp => 1,
        };
        self.requests[proto].fetch_add(1, Ordering::Relaxed);
        let nanos = took.as_nanos().min(u64::MAX as u128) as u64;
        let bucket = (0..BUCKETS)
            .find(|&i| nanos <= FIRST_BUCKET_NANOS << i)
            .unwrap_or(BUCKETS);
        self.latency[bucket].fetch_add(1, Ordering::Relaxed);
        self.latency_sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    pub(crate) fn cache_hit(&self, kind: CacheKind) {
        let i = match kind {
            CacheKind::Success => 0,
            CacheKind::Denial => 1,
        };
        self.cache_hits[i].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn cache_miss(&self) {
        self.cache_misses.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn forward_request(&self) {
        self.forward_requests.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn forward_error(&self) {
        self.forward_errors.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn not_allowed(&self) {
        self.allow_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition format (version 0.0.4). `gauges` are extra (name, help, value) lines,
    /// such as the index and cache sizes, which live elsewhere.
    pub fn render(&self, gauges: &[(&str, &str, u64)]) -> String {
        let mut s = String::with_capacity(4096);
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        // Writing to a String cannot fail.
        let _ = writeln!(
            s,
            "# HELP svcplane_dns_requests_total Queries answered, by transport.\n\
             # TYPE svcplane_dns_requests_total counter"
        );
        for (i, proto) in ["udp", "tcp"].iter().enumerate() {
            let _ = writeln!(
                s,
                "svcplane_dns_requests_total{{proto=\"{proto}\"}} {}",
                get(&self.requests[i])
            );
        }
        let _ = writeln!(
            s,
            "# HELP svcplane_dns_responses_total Replies sent, by query type and response code.\n\
             # TYPE svcplane_dns_responses_total counter"
        );
        for (t, row) in self.responses.iter().enumerate() {
            let tname = TYPES.get(t).map(|(_, n)| *n).unwrap_or("other");
            for (rc, c) in row.iter().enumerate() {
                let v = get(c);
                if v > 0 {
                    let _ = writeln!(
                        s,
                        "svcplane_dns_responses_total{{type=\"{tname}\",rcode=\"{}\"}} {v}",
                        RCODES[rc]
                    );
                }
            }
        }
        let _ = writeln!(
            s,
            "# HELP svcplane_dns_request_duration_seconds Time from receiving a query to sending its reply.\n\
             # TYPE svcplane_dns_request_duration_seconds histogram"
        );
        let mut cumulative = 0;
        for i in 0..BUCKETS {
            cumulative += get(&self.latency[i]);
            let le = (FIRST_BUCKET_NANOS << i) as f64 / 1e9;
            let _ = writeln!(
                s,
                "svcplane_dns_request_duration_seconds_bucket{{le=\"{le}\"}} {cumulative}"
            );
        }
        cumulative += get(&self.latency[BUCKETS]);
        let _ = writeln!(
            s,
            "svcplane_dns_request_duration_seconds_bucket{{le=\"+Inf\"}} {cumulative}\n\
             svcplane_dns_request_duration_seconds_sum {}\n\
             svcplane_dns_request_duration_seconds_count {cumulative}",
            get(&self.latency_sum_nanos) as f64 / 1e9
        );
        let _ = writeln!(
            s,
            "# HELP svcplane_dns_cache_hits_total Forwarded queries answered from the cache.\n\
             # TYPE svcplane_dns_cache_hits_total counter\n\
             svcplane_dns_cache_hits_total{{type=\"success\"}} {}\n\
             svcplane_dns_cache_hits_total{{type=\"denial\"}} {}\n\
             # HELP svcplane_dns_cache_misses_total Forwarded queries the cache could not answer.\n\
             # TYPE svcplane_dns_cache_misses_total counter\n\
             svcplane_dns_cache_misses_total {}\n\
             # HELP svcplane_dns_forward_requests_total Queries sent to upstream servers.\n\
             # TYPE svcplane_dns_forward_requests_total counter\n\
             svcplane_dns_forward_requests_total {}\n\
             # HELP svcplane_dns_forward_errors_total Upstream exchanges that failed (timeout, I/O, bad reply).\n\
             # TYPE svcplane_dns_forward_errors_total counter\n\
             svcplane_dns_forward_errors_total {}\n\
             # HELP svcplane_dns_forward_refused_total Out-of-zone queries refused because the client is outside --allow-forward-from.\n\
             # TYPE svcplane_dns_forward_refused_total counter\n\
             svcplane_dns_forward_refused_total {}",
            get(&self.cache_hits[0]),
            get(&self.cache_hits[1]),
            get(&self.cache_misses),
            get(&self.forward_requests),
            get(&self.forward_errors),
            get(&self.allow_refused),
        );
        for (name, help, v) in gauges {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_query_type_and_renders_series() {
        // Header (qdcount 1), "a.b." SRV IN.
        let q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01a\x01b\x00\x00\x21\x00\x01";
        assert_eq!(qtype_of(q), Some(33));
        assert_eq!(qtype_of(&q[..14]), None);
        let m = Metrics::new();
        let mut reply = q.to_vec();
        reply[3] = 0x83; // NXDOMAIN
        m.observe(
            qtype_of(q),
            &reply,
            Transport::Udp,
            Duration::from_micros(300),
        );
        m.observe(Some(999), &reply, Transport::Tcp, Duration::from_secs(60));
        let text = m.render(&[("svcplane_dns_services", "Services indexed.", 7)]);
        assert!(text.contains("svcplane_dns_responses_total{type=\"SRV\",rcode=\"NXDOMAIN\"} 1"));
        assert!(text.contains("svcplane_dns_responses_total{type=\"other\",rcode=\"NXDOMAIN\"} 1"));
        assert!(text.contains("svcplane_dns_request_duration_seconds_bucket{le=\"0.00025\"} 0"));
        assert!(text.contains("svcplane_dns_request_duration_seconds_bucket{le=\"0.0005\"} 1"));
        assert!(text.contains("svcplane_dns_request_duration_seconds_bucket{le=\"+Inf\"} 2"));
        assert!(text.contains("svcplane_dns_requests_total{proto=\"tcp\"} 1"));
        assert!(text.contains("svcplane_dns_services 7"));
    }
}
