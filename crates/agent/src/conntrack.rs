//! Stale UDP conntrack entries, deleted as kube-proxy deletes them: entries to an endpoint that went away
//! (they would blackhole a UDP client such as a resolver until they expire), and entries of a frontend that
//! had no endpoint (created while it rejected, they would keep rejecting). Done with the `conntrack` tool of
//! conntrack-tools; without it, a warning names what was left.

use std::net::IpAddr;
use std::process::{Command, Stdio};

use proxy::FrontendChange;

/// Deletes the UDP entries a set of frontend changes made stale. Returns how many deletions ran.
pub fn cleanup(changes: &[FrontendChange]) -> usize {
    let mut runs = 0;
    for change in changes.iter().filter(|c| c.needs_udp_conntrack_cleanup()) {
        let f = &change.frontend;
        let removed = change.removed_endpoints();
        if removed.is_empty() {
            runs += delete(f.ip, f.port, None);
        }
        for ep in removed {
            runs += delete(f.ip, f.port, Some(ep.ip()));
        }
    }
    runs
}

fn delete(frontend: IpAddr, port: u16, endpoint: Option<IpAddr>) -> usize {
    let family = if frontend.is_ipv4() { "ipv4" } else { "ipv6" };
    let mut cmd = Command::new("conntrack");
    cmd.args(["-D", "-f", family, "-p", "udp", "--orig-dst"])
        .arg(frontend.to_string())
        .args(["--orig-port-dst", &port.to_string()]);
    if let Some(ep) = endpoint {
        cmd.args(["--reply-src", &ep.to_string()]);
    }
    // conntrack exits 1 when nothing matched: not an error.
    match cmd.stdout(Stdio::null()).stderr(Stdio::null()).status() {
        Ok(_) => 1,
        Err(e) => {
            tracing::warn!(%frontend, port, error = %e, "agent: could not run conntrack; stale UDP entries stay until they expire");
            0
        }
    }
}
