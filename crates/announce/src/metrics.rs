//! The announcer's Prometheus metrics, rendered into the agent's /metrics.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct Metrics {
    /// Addresses this node announces now.
    pub announced: Mutex<BTreeSet<IpAddr>>,
    /// Nodes with a live announce lease, as this agent sees them.
    pub live_nodes: AtomicU64,
    /// Times the computed assignment of any address changed (elections with a new outcome).
    pub elections: AtomicU64,
    /// Addresses this node started announcing.
    pub takeovers: AtomicU64,
    /// Addresses this node stopped announcing.
    pub releases: AtomicU64,
    pub gratuitous: AtomicU64,
    pub replies: AtomicU64,
    pub renew_failures: AtomicU64,
}

impl Metrics {
    pub fn announced(&self) -> BTreeSet<IpAddr> {
        self.announced
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Appends the metrics in the Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let _ = writeln!(out, "# HELP svcplane_announce_announcing LoadBalancer addresses this node announces (ARP/NDP)\n# TYPE svcplane_announce_announcing gauge");
        for ip in self.announced() {
            let _ = writeln!(out, "svcplane_announce_announcing{{ip=\"{ip}\"}} 1");
        }
        let counters: [(&str, &str, &AtomicU64); 6] = [
            (
                "svcplane_announce_elections_total",
                "Changes of the announcing node of any address, as computed here",
                &self.elections,
            ),
            (
                "svcplane_announce_takeovers_total",
                "Addresses this node started announcing",
                &self.takeovers,
            ),
            (
                "svcplane_announce_releases_total",
                "Addresses this node stopped announcing",
                &self.releases,
            ),
            (
                "svcplane_announce_gratuitous_sent_total",
                "Gratuitous ARP and unsolicited neighbour advertisements sent",
                &self.gratuitous,
            ),
            (
                "svcplane_announce_replies_sent_total",
                "ARP replies and neighbour advertisements sent in answer",
                &self.replies,
            ),
            (
                "svcplane_announce_lease_renew_failures_total",
                "Failed renewals of this node's announce lease",
                &self.renew_failures,
            ),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP svcplane_announce_live_nodes Nodes holding a live announce lease\n# TYPE svcplane_announce_live_nodes gauge\nsvcplane_announce_live_nodes {}",
            self.live_nodes.load(Ordering::Relaxed)
        );
    }
}
