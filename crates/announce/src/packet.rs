//! Ethernet frames of the two neighbour protocols the L2 speaker talks: ARP (RFC 826, gratuitous ARP per
//! RFC 5227) and IPv6 neighbour discovery (RFC 4861: solicitations in, advertisements out). Our own codec:
//! only the handful of fixed-layout packets we need, and decoding never panics — frames come from the
//! wire, so every length is checked and anything unexpected is `None`.

use std::net::{Ipv4Addr, Ipv6Addr};

pub type Mac = [u8; 6];

pub const BROADCAST: Mac = [0xff; 6];
const ETH_HDR: usize = 14;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
const ARP_LEN: usize = 28;
const IPV6_HDR: usize = 40;
const ICMPV6: u8 = 58;
const NS: u8 = 135;
const NA: u8 = 136;
/// RFC 4861 §7.1: neighbour discovery packets must arrive with hop limit 255 (not forwarded by a router).
const ND_HOP_LIMIT: u8 = 255;
const OPT_SOURCE_LLA: u8 = 1;
const OPT_TARGET_LLA: u8 = 2;

/// A request we may have to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// "Who has `target`? Tell `sender_ip` at `sender_mac`."
    Arp {
        sender_mac: Mac,
        sender_ip: Ipv4Addr,
        target: Ipv4Addr,
    },
    /// A neighbour solicitation for `target`; `source` is `::` during duplicate address detection.
    Solicit {
        /// Where the answer goes: the source link-layer option, else the frame's source.
        reply_mac: Mac,
        source: Ipv6Addr,
        target: Ipv6Addr,
    },
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn mac_at(b: &[u8], at: usize) -> Option<Mac> {
    b.get(at..at + 6)?.try_into().ok()
}

fn v4_at(b: &[u8], at: usize) -> Option<Ipv4Addr> {
    let o: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(Ipv4Addr::from(o))
}

fn v6_at(b: &[u8], at: usize) -> Option<Ipv6Addr> {
    let o: [u8; 16] = b.get(at..at + 16)?.try_into().ok()?;
    Some(Ipv6Addr::from(o))
}

/// Decodes an Ethernet frame into an ARP request or a neighbour solicitation; anything else is `None`.
pub fn decode(frame: &[u8]) -> Option<Request> {
    match u16_at(frame, 12)? {
        ETHERTYPE_ARP => decode_arp(frame.get(ETH_HDR..)?),
        ETHERTYPE_IPV6 => decode_ns(frame, frame.get(ETH_HDR..)?),
        _ => None,
    }
}

fn decode_arp(arp: &[u8]) -> Option<Request> {
    // Ethernet (1) / IPv4 (0x0800), 6-byte hardware and 4-byte protocol addresses, opcode request (1).
    if arp.len() < ARP_LEN
        || u16_at(arp, 0)? != 1
        || u16_at(arp, 2)? != 0x0800
        || arp[4] != 6
        || arp[5] != 4
        || u16_at(arp, 6)? != 1
    {
        return None;
    }
    Some(Request::Arp {
        sender_mac: mac_at(arp, 8)?,
        sender_ip: v4_at(arp, 14)?,
        target: v4_at(arp, 24)?,
    })
}

fn decode_ns(frame: &[u8], ip: &[u8]) -> Option<Request> {
    if ip.len() < IPV6_HDR || ip[0] >> 4 != 6 || ip[6] != ICMPV6 || ip[7] != ND_HOP_LIMIT {
        return None;
    }
    let payload_len = usize::from(u16_at(ip, 4)?);
    let icmp = ip.get(IPV6_HDR..IPV6_HDR + payload_len)?;
    // type, code, checksum, reserved (4), target (16); options follow.
    if icmp.len() < 24 || icmp[0] != NS || icmp[1] != 0 {
        return None;
    }
    let source = v6_at(ip, 8)?;
    let dest = v6_at(ip, 24)?;
    if checksum(&source, &dest, icmp) != 0 {
        return None;
    }
    let target = v6_at(icmp, 8)?;
    if target.is_multicast() {
        return None;
    }
    let mut reply_mac = mac_at(frame, 6)?;
    let mut opts = icmp.get(24..)?;
    while opts.len() >= 2 {
        let len = usize::from(opts[1]) * 8;
        // A zero-length option would loop forever: RFC 4861 says drop the packet.
        if len == 0 || len > opts.len() {
            return None;
        }
        if opts[0] == OPT_SOURCE_LLA && len >= 8 {
            // RFC 4861 §7.1.1: no source link-layer option when the source is unspecified.
            if source.is_unspecified() {
                return None;
            }
            reply_mac = mac_at(opts, 2)?;
        }
        opts = &opts[len..];
    }
    Some(Request::Solicit {
        reply_mac,
        source,
        target,
    })
}

/// The ICMPv6 checksum (RFC 4443 §2.3) over the pseudo-header and `icmp`; 0 when `icmp` holds a valid one.
fn checksum(src: &Ipv6Addr, dst: &Ipv6Addr, icmp: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut add = |b: &[u8]| {
        for pair in b.chunks(2) {
            let hi = u32::from(pair[0]) << 8;
            let lo = pair.get(1).copied().map(u32::from).unwrap_or(0);
            sum = sum.wrapping_add(hi | lo);
        }
    };
    add(&src.octets());
    add(&dst.octets());
    add(&(icmp.len() as u32).to_be_bytes());
    add(&[0, 0, 0, ICMPV6]);
    add(icmp);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn ethernet(dst: Mac, src: Mac, ethertype: u16, out: &mut Vec<u8>) {
    out.extend_from_slice(&dst);
    out.extend_from_slice(&src);
    out.extend_from_slice(&ethertype.to_be_bytes());
}

fn arp(op: u16, dst: Mac, sha: Mac, spa: Ipv4Addr, tha: Mac, tpa: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::with_capacity(ETH_HDR + ARP_LEN);
    ethernet(dst, sha, ETHERTYPE_ARP, &mut f);
    f.extend_from_slice(&[0, 1, 0x08, 0x00, 6, 4]);
    f.extend_from_slice(&op.to_be_bytes());
    f.extend_from_slice(&sha);
    f.extend_from_slice(&spa.octets());
    f.extend_from_slice(&tha);
    f.extend_from_slice(&tpa.octets());
    f
}

/// The ARP reply "`ip` is at `mac`" to a requester.
pub fn arp_reply(mac: Mac, ip: Ipv4Addr, to_mac: Mac, to_ip: Ipv4Addr) -> Vec<u8> {
    arp(2, to_mac, mac, ip, to_mac, to_ip)
}

/// A gratuitous ARP request (sender and target address both `ip`, broadcast): Linux updates an existing
/// neighbour entry from it even within its locktime, which is what moves clients to the new node.
pub fn gratuitous_arp(mac: Mac, ip: Ipv4Addr) -> Vec<u8> {
    arp(1, BROADCAST, mac, ip, [0; 6], ip)
}

/// The Ethernet multicast address of an IPv6 multicast group (RFC 2464 §7).
pub fn multicast_mac(group: &Ipv6Addr) -> Mac {
    let o = group.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

/// The solicited-node multicast group of an address (RFC 4291 §2.7.1): where solicitations for it go.
pub fn solicited_node(ip: &Ipv6Addr) -> Ipv6Addr {
    let o = ip.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    )
}

const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// A neighbour advertisement for `target` at `mac`, from `target` itself (as Linux sends them), with the
/// override flag so receivers replace a cached address.
fn advertisement(
    mac: Mac,
    target: Ipv6Addr,
    dst_mac: Mac,
    dst: Ipv6Addr,
    solicited: bool,
) -> Vec<u8> {
    let mut icmp = Vec::with_capacity(32);
    icmp.extend_from_slice(&[NA, 0, 0, 0]);
    // Flags: router 0, solicited, override 1.
    icmp.push(if solicited { 0x60 } else { 0x20 });
    icmp.extend_from_slice(&[0, 0, 0]);
    icmp.extend_from_slice(&target.octets());
    icmp.extend_from_slice(&[OPT_TARGET_LLA, 1]);
    icmp.extend_from_slice(&mac);
    let sum = checksum(&target, &dst, &icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    let mut f = Vec::with_capacity(ETH_HDR + IPV6_HDR + icmp.len());
    ethernet(dst_mac, mac, ETHERTYPE_IPV6, &mut f);
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
    f.extend_from_slice(&[ICMPV6, ND_HOP_LIMIT]);
    f.extend_from_slice(&target.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(&icmp);
    f
}

/// The answer to a solicitation for `target`: unicast to the asker, or to all nodes when it was duplicate
/// address detection (RFC 4861 §7.2.4: then the solicited flag is clear).
pub fn na_reply(mac: Mac, target: Ipv6Addr, reply_mac: Mac, source: Ipv6Addr) -> Vec<u8> {
    if source.is_unspecified() {
        advertisement(mac, target, multicast_mac(&ALL_NODES), ALL_NODES, false)
    } else {
        advertisement(mac, target, reply_mac, source, true)
    }
}

/// An unsolicited neighbour advertisement to all nodes (RFC 4861 §7.2.6), the IPv6 gratuitous ARP.
pub fn unsolicited_na(mac: Mac, target: Ipv6Addr) -> Vec<u8> {
    advertisement(mac, target, multicast_mac(&ALL_NODES), ALL_NODES, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: Mac = [2, 0, 0, 0, 0, 1];
    const PEER: Mac = [2, 0, 0, 0, 0, 9];

    fn arp_request(target: Ipv4Addr) -> Vec<u8> {
        arp(
            1,
            BROADCAST,
            PEER,
            Ipv4Addr::new(192, 168, 50, 100),
            [0; 6],
            target,
        )
    }

    /// A solicitation as Linux sends it: to the solicited-node group, with a source link-layer option.
    fn solicitation(source: Ipv6Addr, target: Ipv6Addr, with_slla: bool) -> Vec<u8> {
        let dst = solicited_node(&target);
        let mut icmp = vec![NS, 0, 0, 0, 0, 0, 0, 0];
        icmp.extend_from_slice(&target.octets());
        if with_slla {
            icmp.extend_from_slice(&[OPT_SOURCE_LLA, 1]);
            icmp.extend_from_slice(&PEER);
        }
        let sum = checksum(&source, &dst, &icmp);
        icmp[2..4].copy_from_slice(&sum.to_be_bytes());
        let mut f = Vec::new();
        ethernet(multicast_mac(&dst), PEER, ETHERTYPE_IPV6, &mut f);
        f.extend_from_slice(&[0x60, 0, 0, 0]);
        f.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
        f.extend_from_slice(&[ICMPV6, 255]);
        f.extend_from_slice(&source.octets());
        f.extend_from_slice(&dst.octets());
        f.extend_from_slice(&icmp);
        f
    }

    #[test]
    fn arp_request_decodes_and_reply_encodes() {
        let lb = Ipv4Addr::new(192, 168, 50, 200);
        let req = decode(&arp_request(lb)).expect("decodes");
        assert_eq!(
            req,
            Request::Arp {
                sender_mac: PEER,
                sender_ip: Ipv4Addr::new(192, 168, 50, 100),
                target: lb
            }
        );
        let reply = arp_reply(MAC, lb, PEER, Ipv4Addr::new(192, 168, 50, 100));
        assert_eq!(reply.len(), 42);
        assert_eq!(&reply[0..6], &PEER);
        assert_eq!(&reply[6..12], &MAC);
        assert_eq!(u16_at(&reply, 20), Some(2));
        assert_eq!(&reply[22..28], &MAC);
        assert_eq!(v4_at(&reply, 28), Some(lb));
        // A reply is not a request: we never answer answers.
        assert_eq!(decode(&reply), None);
    }

    #[test]
    fn gratuitous_arp_has_sender_equal_target() {
        let lb = Ipv4Addr::new(192, 168, 50, 201);
        let g = gratuitous_arp(MAC, lb);
        assert_eq!(&g[0..6], &BROADCAST);
        assert_eq!(v4_at(&g, 28), Some(lb));
        assert_eq!(v4_at(&g, 38), Some(lb));
        // It is a request for our own address, so our decoder sees it (the speaker skips its own MAC).
        assert!(matches!(decode(&g), Some(Request::Arp { sender_mac, .. }) if sender_mac == MAC));
    }

    #[test]
    fn solicitation_decodes_with_and_without_source_option() {
        let src: Ipv6Addr = "fd00:50::64".parse().expect("addr");
        let lb: Ipv6Addr = "fd00:50::200".parse().expect("addr");
        let req = decode(&solicitation(src, lb, true)).expect("decodes");
        assert_eq!(
            req,
            Request::Solicit {
                reply_mac: PEER,
                source: src,
                target: lb
            }
        );
        // No option: the frame's source MAC.
        assert!(matches!(
            decode(&solicitation(src, lb, false)),
            Some(Request::Solicit { reply_mac, .. }) if reply_mac == PEER
        ));
        // A corrupted checksum is dropped.
        let mut bad = solicitation(src, lb, true);
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        assert_eq!(decode(&bad), None);
        // DAD (unspecified source) must not carry a source link-layer option.
        assert_eq!(decode(&solicitation(Ipv6Addr::UNSPECIFIED, lb, true)), None);
        assert!(decode(&solicitation(Ipv6Addr::UNSPECIFIED, lb, false)).is_some());
    }

    #[test]
    fn advertisements_are_valid_icmpv6() {
        let src: Ipv6Addr = "fd00:50::64".parse().expect("addr");
        let lb: Ipv6Addr = "fd00:50::200".parse().expect("addr");
        for (frame, dst, flags) in [
            (na_reply(MAC, lb, PEER, src), src, 0x60),
            (unsolicited_na(MAC, lb), ALL_NODES, 0x20),
            (
                na_reply(MAC, lb, PEER, Ipv6Addr::UNSPECIFIED),
                ALL_NODES,
                0x20,
            ),
        ] {
            let ip = &frame[ETH_HDR..];
            assert_eq!(ip[7], 255, "hop limit");
            assert_eq!(v6_at(ip, 8), Some(lb));
            assert_eq!(v6_at(ip, 24), Some(dst));
            let icmp = &ip[IPV6_HDR..];
            assert_eq!(usize::from(u16_at(ip, 4).unwrap_or(0)), icmp.len());
            assert_eq!(checksum(&lb, &dst, icmp), 0, "checksum");
            assert_eq!(icmp[0], NA);
            assert_eq!(icmp[4], flags);
            assert_eq!(v6_at(icmp, 8), Some(lb));
            assert_eq!(&icmp[26..32], &MAC);
        }
        assert_eq!(
            multicast_mac(&solicited_node(&lb)),
            [0x33, 0x33, 0xff, 0, 0x02, 0x00]
        );
    }

    #[test]
    fn malformed_frames_never_panic() {
        let lb: Ipv6Addr = "fd00:50::200".parse().expect("addr");
        let samples = [
            arp_request(Ipv4Addr::new(10, 0, 0, 1)),
            solicitation("fe80::1".parse().expect("addr"), lb, true),
        ];
        for s in &samples {
            for cut in 0..s.len() {
                let _ = decode(&s[..cut]);
            }
            // Every single-byte corruption, with a few values each.
            for i in 0..s.len() {
                for v in [0u8, 1, 0x7f, 0xff] {
                    let mut m = s.clone();
                    m[i] = v;
                    let _ = decode(&m);
                }
            }
        }
        // A zero-length option, and a length running past the end.
        let mut z = solicitation("fe80::1".parse().expect("addr"), lb, true);
        let n = z.len();
        z[n - 7] = 0;
        assert_eq!(decode(&z), None);
        assert_eq!(decode(&[]), None);
    }
}
