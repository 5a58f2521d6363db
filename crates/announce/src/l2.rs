//! The L2 speaker: one thread and one AF_PACKET socket per interface. It answers ARP requests and neighbour
//! solicitations for the addresses it is told to announce, and sends gratuitous ARP / unsolicited neighbour
//! advertisements when it takes an address over. It never adds the address to the interface: the agent's
//! nftables DNAT in prerouting handles packets to it, as for externalIPs.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::metrics::Metrics;
use crate::packet::{self, Mac, Request};
use crate::sys::{Interface, PacketSocket};
use crate::{AnnounceError, Speaker};

/// When the gratuitous packets of a takeover go out, after it: a few, spaced, because one can be lost and
/// a client's neighbour cache entry may be mid-probe when the first arrives.
pub const GRATUITOUS_SCHEDULE: [Duration; 3] = [
    Duration::ZERO,
    Duration::from_millis(500),
    Duration::from_millis(2000),
];

#[derive(Default)]
struct Shared {
    announced: BTreeSet<IpAddr>,
    /// Per address taken over: the next index into the schedule and the takeover time.
    gratuitous: BTreeMap<IpAddr, (usize, Instant)>,
    stop: bool,
}

fn lock(s: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

pub struct L2Speaker {
    shared: Arc<Mutex<Shared>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl L2Speaker {
    /// Opens the socket on `iface` and starts the speaker's thread.
    pub fn start(iface: Interface, metrics: Arc<Metrics>) -> Result<L2Speaker, AnnounceError> {
        let socket = PacketSocket::open(iface.index).map_err(|source| AnnounceError::Socket {
            interface: iface.name.clone(),
            source,
        })?;
        let shared = Arc::new(Mutex::new(Shared::default()));
        let s = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("announce-{}", iface.name))
            .spawn(move || run(socket, iface, s, metrics))
            .map_err(AnnounceError::Thread)?;
        Ok(L2Speaker {
            shared,
            thread: Some(thread),
        })
    }
}

impl Speaker for L2Speaker {
    fn set(&mut self, ips: &BTreeSet<IpAddr>) {
        let mut s = lock(&self.shared);
        let now = Instant::now();
        for ip in ips.difference(&s.announced.clone()) {
            s.gratuitous.insert(*ip, (0, now));
        }
        s.gratuitous.retain(|ip, _| ips.contains(ip));
        s.announced = ips.clone();
    }

    fn stop(&mut self) {
        lock(&self.shared).stop = true;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for L2Speaker {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(socket: PacketSocket, iface: Interface, shared: Arc<Mutex<Shared>>, metrics: Arc<Metrics>) {
    let mut buf = vec![0u8; 2048];
    let mut groups: BTreeSet<Mac> = BTreeSet::new();
    tracing::info!(interface = %iface.name, mac = %fmt_mac(&iface.mac), "announce: L2 speaker started");
    loop {
        // Snapshot under the lock, then do socket work without it.
        let (announced, due, next_due) = {
            let mut s = lock(&shared);
            if s.stop {
                break;
            }
            let now = Instant::now();
            let mut due = Vec::new();
            let mut next: Option<Instant> = None;
            s.gratuitous.retain(|ip, (i, since)| {
                let Some(offset) = GRATUITOUS_SCHEDULE.get(*i) else {
                    return false;
                };
                let at = *since + *offset;
                if at <= now {
                    due.push(*ip);
                    *i += 1;
                }
                if let Some(o) = GRATUITOUS_SCHEDULE.get(*i) {
                    let at = *since + *o;
                    next = Some(next.map_or(at, |n| n.min(at)));
                }
                *i < GRATUITOUS_SCHEDULE.len()
            });
            (s.announced.clone(), due, next)
        };
        sync_groups(&socket, &announced, &mut groups);
        for ip in due {
            let frame = match ip {
                IpAddr::V4(a) => packet::gratuitous_arp(iface.mac, a),
                IpAddr::V6(a) => packet::unsolicited_na(iface.mac, a),
            };
            match socket.send(&frame) {
                Ok(()) => {
                    metrics.gratuitous.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    tracing::warn!(%ip, error = %e, "announce: sending a gratuitous packet failed")
                }
            }
        }
        // Wake for the next gratuitous packet, or at least every 100 ms to see new orders and the stop flag.
        let timeout = next_due
            .map(|n| n.saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::from_millis(100))
            .min(Duration::from_millis(100));
        match socket.wait(timeout) {
            Ok(false) => continue,
            Ok(true) => {}
            Err(e) => {
                tracing::warn!(error = %e, "announce: poll failed");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        }
        loop {
            let frame = match socket.recv(&mut buf) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "announce: receive failed");
                    break;
                }
            };
            let Some(reply) = answer(&iface, &announced, frame) else {
                continue;
            };
            match socket.send(&reply) {
                Ok(()) => {
                    metrics.replies.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => tracing::warn!(error = %e, "announce: sending a reply failed"),
            }
        }
    }
    // Leave the groups we joined; closing the socket would too, but say so explicitly.
    for g in groups {
        let _ = socket.multicast(g, false);
    }
    tracing::info!(interface = %iface.name, "announce: L2 speaker stopped");
}

/// Joins the solicited-node groups of the IPv6 addresses announced, leaves the others.
fn sync_groups(socket: &PacketSocket, announced: &BTreeSet<IpAddr>, groups: &mut BTreeSet<Mac>) {
    let want: BTreeSet<Mac> = announced
        .iter()
        .filter_map(|ip| match ip {
            IpAddr::V6(a) => Some(packet::multicast_mac(&packet::solicited_node(a))),
            IpAddr::V4(_) => None,
        })
        .collect();
    for g in want.difference(groups) {
        if let Err(e) = socket.multicast(*g, true) {
            tracing::warn!(group = %fmt_mac(g), error = %e, "announce: joining a multicast group failed");
        }
    }
    for g in groups.difference(&want) {
        let _ = socket.multicast(*g, false);
    }
    *groups = want;
}

/// The reply to a frame, if it asks for an announced address and did not come from us.
fn answer(iface: &Interface, announced: &BTreeSet<IpAddr>, frame: &[u8]) -> Option<Vec<u8>> {
    match packet::decode(frame)? {
        Request::Arp {
            sender_mac,
            sender_ip,
            target,
        } => {
            if sender_mac == iface.mac || !announced.contains(&IpAddr::V4(target)) {
                return None;
            }
            Some(packet::arp_reply(iface.mac, target, sender_mac, sender_ip))
        }
        Request::Solicit {
            reply_mac,
            source,
            target,
        } => {
            if reply_mac == iface.mac || !announced.contains(&IpAddr::V6(target)) {
                return None;
            }
            Some(packet::na_reply(iface.mac, target, reply_mac, source))
        }
    }
}

pub fn fmt_mac(m: &Mac) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_only_announced_addresses_and_not_itself() {
        let iface = Interface {
            name: "eth0".into(),
            index: 2,
            mac: [2, 0, 0, 0, 0, 1],
        };
        let lb: IpAddr = "192.168.50.200".parse().expect("ip");
        let announced: BTreeSet<IpAddr> = [lb].into();
        let peer = [2, 0, 0, 0, 0, 9];
        // A request from the peer, built as its reply's mirror image.
        let req = packet::gratuitous_arp(peer, "192.168.50.200".parse().expect("ip"));
        let reply = answer(&iface, &announced, &req).expect("answered");
        assert_eq!(&reply[0..6], &peer);
        assert!(answer(&iface, &BTreeSet::new(), &req).is_none());
        // Our own gratuitous ARP is not answered.
        let own = packet::gratuitous_arp(iface.mac, "192.168.50.200".parse().expect("ip"));
        assert!(answer(&iface, &announced, &own).is_none());
    }
}
