//! The proxy's elements as nf_tables set-element attributes, byte for byte what `nft` sends for the set
//! definitions of `proxy::shape` (`SetName::definition`).
//!
//! How nft lays out a key: a single-field key is the field's bytes; a concatenation puts each field in its
//! own 32-bit-aligned register slot, zero padded (`inet_proto`, one byte, takes four; `inet_service`, two
//! bytes big endian, takes four). Addresses are network order. The endpoint maps' slot is `numgen`'s
//! 32-bit result, which lives in a register in host order. A concatenated interval set (`firewall-allow`,
//! `flags interval` over a concatenation, the kernel's pipapo) takes each element as one range: the start
//! in `NFTA_SET_ELEM_KEY` and the end in `NFTA_SET_ELEM_KEY_END` (non-range fields equal in both), never the
//! separate `NFT_SET_ELEM_INTERVAL_END` element of single-field interval sets (the kernel rejects that
//! flag on concatenations). Single-field interval sets (`cluster-cidrs`, `service-cidrs`, rbtree) take a
//! start element and an end element one past the range flagged `NFT_SET_ELEM_INTERVAL_END`, omitted when
//! the range runs to the last address.

use std::net::IpAddr;

use ipnet::IpNet;
use proxy::shape::{Element, Key, Target, Value, Verdict};
use proxy::{Frontend, Protocol};

use crate::netlink::{begin_nested, end_nested, put_attr, put_str};

const NFTA_LIST_ELEM: u16 = 1;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_DATA: u16 = 2;
const NFTA_SET_ELEM_FLAGS: u16 = 3;
const NFTA_SET_ELEM_KEY_END: u16 = 10;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
const NFTA_VERDICT_CHAIN: u16 = 2;
const NFT_SET_ELEM_INTERVAL_END: u32 = 1;
const NF_DROP: i32 = 0;
const NFT_GOTO: i32 = -4;

fn push_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => out.extend_from_slice(&v4.octets()),
        IpAddr::V6(v6) => out.extend_from_slice(&v6.octets()),
    }
}

/// `inet_proto` in a concatenation: one byte in a 4-byte register slot.
fn push_proto(out: &mut Vec<u8>, protocol: Protocol) {
    let number: u8 = match protocol {
        Protocol::Tcp => 6,
        Protocol::Udp => 17,
        Protocol::Sctp => 132,
    };
    out.extend_from_slice(&[number, 0, 0, 0]);
}

/// `inet_service` in a concatenation: big endian, padded to 4 bytes.
fn push_port(out: &mut Vec<u8>, port: u16) {
    out.extend_from_slice(&port.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
}

fn push_frontend(out: &mut Vec<u8>, f: &Frontend) {
    push_ip(out, f.ip);
    push_proto(out, f.protocol);
    push_port(out, f.port);
}

/// The key bytes of an element, and for a range its end.
pub(crate) fn key(key: &Key) -> (Vec<u8>, Option<Vec<u8>>) {
    let mut out = Vec::with_capacity(48);
    match key {
        Key::Addr(ip) => push_ip(&mut out, *ip),
        Key::Frontend(f) => push_frontend(&mut out, f),
        Key::Slot(f, slot) => {
            push_frontend(&mut out, f);
            // numgen writes its u32 result into the register in host order.
            out.extend_from_slice(&slot.to_ne_bytes());
        }
        Key::Hairpin(ip) => {
            push_ip(&mut out, *ip);
            push_ip(&mut out, *ip);
        }
        Key::Source(f, net) => {
            let net = net.trunc();
            push_frontend(&mut out, f);
            let mut end = out.clone();
            push_ip(&mut out, net.network());
            push_ip(&mut end, net.broadcast());
            return (out, Some(end));
        }
    }
    (out, None)
}

/// The attribute bytes of one element (a `NFTA_LIST_ELEM`), with its data when `value` is given.
pub(crate) fn element(buf: &mut Vec<u8>, element: &Element, value: Option<&Value>) {
    let (key_bytes, key_end) = key(&element.key);
    let start = begin_nested(buf, NFTA_LIST_ELEM);
    let k = begin_nested(buf, NFTA_SET_ELEM_KEY);
    put_attr(buf, NFTA_DATA_VALUE, &key_bytes);
    end_nested(buf, k);
    if let Some(end) = key_end {
        let k = begin_nested(buf, NFTA_SET_ELEM_KEY_END);
        put_attr(buf, NFTA_DATA_VALUE, &end);
        end_nested(buf, k);
    }
    match value {
        None | Some(Value::None) => {}
        Some(Value::Verdict(verdict)) => {
            let d = begin_nested(buf, NFTA_SET_ELEM_DATA);
            let v = begin_nested(buf, NFTA_DATA_VERDICT);
            match verdict {
                Verdict::Drop => put_attr(buf, NFTA_VERDICT_CODE, &NF_DROP.to_be_bytes()),
                Verdict::Goto(target) => {
                    put_attr(buf, NFTA_VERDICT_CODE, &NFT_GOTO.to_be_bytes());
                    put_str(buf, NFTA_VERDICT_CHAIN, &target_chain(target));
                }
            }
            end_nested(buf, v);
            end_nested(buf, d);
        }
        Some(Value::Endpoint(addr)) => {
            let mut data = Vec::with_capacity(20);
            push_ip(&mut data, addr.ip());
            push_port(&mut data, addr.port());
            let d = begin_nested(buf, NFTA_SET_ELEM_DATA);
            put_attr(buf, NFTA_DATA_VALUE, &data);
            end_nested(buf, d);
        }
    }
    end_nested(buf, start);
}

/// The chain a verdict jumps to, named as `proxy::shape::verdict_text` names it.
pub(crate) fn target_chain(target: &Target) -> String {
    match target {
        Target::Reject => "reject-chain".to_string(),
        Target::ExternalLocal => "external-local".to_string(),
        Target::Pick(chain) => chain.name(),
    }
}

/// The elements of a single-field interval set holding `net` (start, and the end one past it unless the
/// range reaches the family's last address).
pub(crate) fn interval(buf: &mut Vec<u8>, net: &IpNet) {
    let net = net.trunc();
    let mut start = Vec::with_capacity(16);
    push_ip(&mut start, net.network());
    let s = begin_nested(buf, NFTA_LIST_ELEM);
    let k = begin_nested(buf, NFTA_SET_ELEM_KEY);
    put_attr(buf, NFTA_DATA_VALUE, &start);
    end_nested(buf, k);
    end_nested(buf, s);
    if let Some(next) = next_addr(net.broadcast()) {
        let mut end = Vec::with_capacity(16);
        push_ip(&mut end, next);
        let s = begin_nested(buf, NFTA_LIST_ELEM);
        let k = begin_nested(buf, NFTA_SET_ELEM_KEY);
        put_attr(buf, NFTA_DATA_VALUE, &end);
        end_nested(buf, k);
        put_attr(
            buf,
            NFTA_SET_ELEM_FLAGS,
            &NFT_SET_ELEM_INTERVAL_END.to_be_bytes(),
        );
        end_nested(buf, s);
    }
}

fn next_addr(ip: IpAddr) -> Option<IpAddr> {
    match ip {
        IpAddr::V4(v4) => u32::from(v4).checked_add(1).map(|n| IpAddr::V4(n.into())),
        IpAddr::V6(v6) => u128::from(v6).checked_add(1).map(|n| IpAddr::V6(n.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proxy::shape::SetName;

    fn frontend() -> Frontend {
        Frontend {
            ip: "10.96.0.10".parse().expect("ip"),
            protocol: Protocol::Udp,
            port: 53,
        }
    }

    #[test]
    fn concatenations_pad_each_field_to_a_register() {
        let (k, end) = key(&Key::Slot(frontend(), 3));
        let mut want = vec![10, 96, 0, 10, 17, 0, 0, 0, 0, 53, 0, 0];
        want.extend_from_slice(&3u32.to_ne_bytes());
        assert_eq!(k, want);
        assert!(end.is_none());
        let (k, _) = key(&Key::Hairpin("10.0.0.1".parse().expect("ip")));
        assert_eq!(k, vec![10, 0, 0, 1, 10, 0, 0, 1]);
        let (k, _) = key(&Key::Addr("fd00::1".parse().expect("ip")));
        assert_eq!(k.len(), 16);
    }

    #[test]
    fn ranges_carry_their_end() {
        let (k, end) = key(&Key::Source(
            frontend(),
            "192.168.7.1/16".parse().expect("net"),
        ));
        assert_eq!(&k[12..], &[192, 168, 0, 0]);
        assert_eq!(
            end.as_deref().map(|e| &e[12..]),
            Some(&[192, 168, 255, 255][..])
        );
        assert_eq!(end.as_deref().map(|e| &e[..12]), Some(&k[..12]));
    }

    #[test]
    fn verdict_and_endpoint_data() {
        let mut buf = Vec::new();
        element(
            &mut buf,
            &Element {
                set: SetName::NoEndpointServices,
                key: Key::Frontend(frontend()),
            },
            Some(&Value::Verdict(Verdict::Drop)),
        );
        // LIST_ELEM(KEY(VALUE 12 bytes), DATA(VERDICT(CODE)))
        assert_eq!(buf.len(), 4 + (4 + 4 + 12) + (4 + 4 + 8));
        let mut buf = Vec::new();
        element(
            &mut buf,
            &Element {
                // The encoding depends on the key and value, not on the set.
                set: SetName::ClusterIps,
                key: Key::Slot(frontend(), 0),
            },
            Some(&Value::Endpoint("10.1.2.3:8080".parse().expect("addr"))),
        );
        assert_eq!(&buf[buf.len() - 8..], &[10, 1, 2, 3, 0x1f, 0x90, 0, 0]);
    }

    #[test]
    fn intervals_end_one_past_unless_at_the_top() {
        let mut buf = Vec::new();
        interval(&mut buf, &"10.96.0.0/16".parse().expect("net"));
        assert_eq!(buf.len(), 2 * (4 + 4 + 8) + 8);
        let mut buf = Vec::new();
        interval(&mut buf, &"255.255.255.0/24".parse().expect("net"));
        assert_eq!(buf.len(), 4 + 4 + 8);
    }
}
