//! Wire behaviour: opcodes, classes, malformed queries, EDNS0, truncation, and arbitrary input.

mod common;

use common::*;
use dns::{Config, Index, Outcome, Transport};
use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::RecordType;
use serde_json::json;

fn idx() -> Index {
    fixture(Config::default())
}

fn parse(out: &[u8]) -> Message {
    Message::from_vec(out).unwrap()
}

#[test]
fn other_opcodes_are_not_implemented() {
    let mut m = query_msg("web.default.svc.cluster.local.", RecordType::A);
    m.metadata.op_code = OpCode::Notify;
    let (outcome, out) = respond_raw(&idx(), &m.to_vec().unwrap(), Transport::Udp);
    assert_eq!(outcome, Outcome::Reply);
    let r = parse(&out);
    assert_eq!(r.metadata.response_code, ResponseCode::NotImp);
    assert_eq!(r.metadata.op_code, OpCode::Notify);
    assert_eq!(r.metadata.id, 0x1234);
    assert!(r.answers.is_empty());
}

#[test]
fn malformed_questions_are_format_errors() {
    let i = idx();
    // No question.
    let mut q = query("web.default.svc.cluster.local.", RecordType::A);
    q[4..6].copy_from_slice(&[0, 0]);
    let r = parse(&respond_raw(&i, &q[..12], Transport::Udp).1);
    assert_eq!(r.metadata.response_code, ResponseCode::FormErr);
    assert!(r.queries.is_empty());
    // Two questions (RFC 9619 allows only one).
    let mut q2 = query("web.default.svc.cluster.local.", RecordType::A);
    let question = q2[12..].to_vec();
    q2.extend_from_slice(&question);
    q2[5] = 2;
    let r = parse(&respond_raw(&i, &q2, Transport::Udp).1);
    assert_eq!(r.metadata.response_code, ResponseCode::FormErr);
    // A question cut short.
    let q = query("web.default.svc.cluster.local.", RecordType::A);
    let r = parse(&respond_raw(&i, &q[..q.len() - 3], Transport::Udp).1);
    assert_eq!(r.metadata.response_code, ResponseCode::FormErr);
    assert_eq!(r.metadata.id, 0x1234);
    // Two OPT records.
    let mut q = query_edns("web.default.svc.cluster.local.", RecordType::A, 1232);
    let opt = q[q.len() - 11..].to_vec();
    q.extend_from_slice(&opt);
    q[11] = 2;
    let r = parse(&respond_raw(&i, &q, Transport::Udp).1);
    assert_eq!(r.metadata.response_code, ResponseCode::FormErr);
}

#[test]
fn unreadable_headers_and_responses_are_dropped() {
    let i = idx();
    assert_eq!(respond_raw(&i, &[1, 2, 3], Transport::Udp).0, Outcome::Drop);
    let mut q = query("web.default.svc.cluster.local.", RecordType::A);
    q[2] |= 0x80;
    assert_eq!(respond_raw(&i, &q, Transport::Udp).0, Outcome::Drop);
}

#[test]
fn classes_and_transfers() {
    let i = idx();
    let mut q = query("web.default.svc.cluster.local.", RecordType::A);
    let n = q.len();
    q[n - 1] = 3; // CHAOS
    let r = parse(&respond_raw(&i, &q, Transport::Udp).1);
    assert_eq!(r.metadata.response_code, ResponseCode::Refused);
    let r = parse(
        &respond_raw(
            &i,
            &query("cluster.local.", RecordType::AXFR),
            Transport::Tcp,
        )
        .1,
    );
    assert_eq!(r.metadata.response_code, ResponseCode::Refused);
}

#[test]
fn outside_the_zone_is_refused_without_upstream() {
    let (outcome, out) = respond_raw(
        &idx(),
        &query("example.org.", RecordType::A),
        Transport::Udp,
    );
    assert_eq!(outcome, Outcome::NotInZone);
    let r = parse(&out);
    assert_eq!(r.metadata.response_code, ResponseCode::Refused);
    assert!(!r.metadata.authoritative);
    assert_eq!(r.queries[0].name().to_string(), "example.org.");
}

#[test]
fn edns_is_echoed_and_versions_checked() {
    let i = idx();
    let (_, out) = respond_raw(
        &i,
        &query_edns("web.default.svc.cluster.local.", RecordType::A, 1232),
        Transport::Udp,
    );
    let r = parse(&out);
    let e = r.edns.as_ref().expect("OPT echoed");
    assert_eq!(e.max_payload(), 1232);
    assert_eq!(r.answers.len(), 1);
    // No OPT in, none out.
    let r = parse(
        &respond_raw(
            &i,
            &query("web.default.svc.cluster.local.", RecordType::A),
            Transport::Udp,
        )
        .1,
    );
    assert!(r.edns.is_none());
    // EDNS version 1: BADVERS.
    let mut q = query_edns("web.default.svc.cluster.local.", RecordType::A, 1232);
    let n = q.len();
    q[n - 5] = 1; // version byte of the OPT TTL
    let r = parse(&respond_raw(&i, &q, Transport::Udp).1);
    // 16 is both BADVERS and BADSIG; hickory names it the latter.
    assert_eq!(u16::from(r.metadata.response_code), 16);
    assert!(r.answers.is_empty());
}

fn big_headless(i: &Index, n: usize) {
    i.upsert_service(&headless(
        "default",
        "big",
        json!([{"name": "http", "port": 80}]),
    ))
    .unwrap();
    let ips: Vec<String> = (0..n)
        .map(|k| format!("10.245.{}.{}", k / 250, k % 250 + 1))
        .collect();
    let eps: Vec<(&str, Option<&str>, Option<bool>)> =
        ips.iter().map(|ip| (ip.as_str(), None, None)).collect();
    i.upsert_endpoint_slice(&endpoint_slice(
        "default",
        "big-1",
        "big",
        "IPv4",
        json!([{"name": "http", "port": 80}]),
        &eps,
    ))
    .unwrap();
}

#[test]
fn answers_too_large_for_udp_are_truncated() {
    let i = idx();
    big_headless(&i, 100);
    let name = "big.default.svc.cluster.local.";
    let (_, out) = respond_raw(&i, &query(name, RecordType::A), Transport::Udp);
    assert!(out.len() <= 512);
    let r = parse(&out);
    assert!(r.metadata.truncation);
    assert!(r.answers.is_empty());
    assert_eq!(r.queries.len(), 1);
    // The client's EDNS size is honoured.
    let (_, out) = respond_raw(&i, &query_edns(name, RecordType::A, 4096), Transport::Udp);
    let r = parse(&out);
    assert!(!r.metadata.truncation);
    assert_eq!(r.answers.len(), 100);
    let (_, out) = respond_raw(&i, &query_edns(name, RecordType::A, 1232), Transport::Udp);
    assert!(out.len() <= 1232);
    assert!(parse(&out).metadata.truncation);
    // TCP takes everything.
    let r = ask(&i, name, RecordType::A);
    assert!(!r.metadata.truncation);
    assert_eq!(r.answers.len(), 100);
}

#[test]
fn glue_is_dropped_before_answers() {
    let i = idx();
    big_headless(&i, 15);
    let (_, out) = respond_raw(
        &i,
        &query_edns(
            "_http._tcp.big.default.svc.cluster.local.",
            RecordType::SRV,
            1000,
        ),
        Transport::Udp,
    );
    assert!(out.len() <= 1000);
    let r = parse(&out);
    assert!(!r.metadata.truncation);
    assert_eq!(r.answers.len(), 15);
    assert!(r.additionals.is_empty());
    let r = ask(
        &i,
        "_http._tcp.big.default.svc.cluster.local.",
        RecordType::SRV,
    );
    assert_eq!(r.additionals.len(), 15);
}

#[test]
fn large_tcp_answers_stay_valid_past_compression_reach() {
    // Past 16 KiB names cannot be pointed at: glue owners must then be written out.
    let i = idx();
    big_headless(&i, 600);
    let r = ask(
        &i,
        "_http._tcp.big.default.svc.cluster.local.",
        RecordType::SRV,
    );
    assert_eq!(r.answers.len(), 600);
    assert_eq!(r.additionals.len(), 600);
    for (srv, glue) in r.answers.iter().zip(&r.additionals) {
        let target = srv.to_string();
        let target = target.rsplit(' ').next().unwrap().to_string();
        assert_eq!(glue.name.to_string(), target);
    }
}

/// xorshift64*: deterministic, dependency-free randomness for the fuzz loops.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Every reply must parse, answer the query's id, and fit the transport.
fn check(i: &Index, packet: &[u8]) {
    for t in [Transport::Udp, Transport::Tcp] {
        let (outcome, out) = respond_raw(i, packet, t);
        if outcome == Outcome::Drop {
            continue;
        }
        assert!(out.len() >= 12);
        assert_eq!(out[..2], packet[..2]);
        if t == Transport::Udp {
            assert!(out.len() <= 65535);
        }
        if let Err(e) = Message::from_vec(&out) {
            panic!("unparseable reply {e}: query {packet:?} reply {out:?}");
        }
    }
}

#[test]
fn arbitrary_bytes_never_panic_and_replies_parse() {
    let i = fixture(Config {
        pods: dns::PodMode::Insecure,
        nameservers: vec!["10.96.0.53".parse().unwrap()],
        ..Config::default()
    });
    big_headless(&i, 40);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..20_000 {
        let len = rng.below(300);
        let p: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        check(&i, &p);
    }
    let seeds = [
        query("web.default.svc.cluster.local.", RecordType::A),
        query_edns(
            "_http._tcp.big.default.svc.cluster.local.",
            RecordType::SRV,
            700,
        ),
        query_edns("db.default.svc.cluster.local.", RecordType::A, 512),
        query("10.0.96.10.in-addr.arpa.", RecordType::PTR),
        query("inner.default.svc.cluster.local.", RecordType::A),
        query("cluster.local.", RecordType::NS),
    ];
    for s in &seeds {
        // Every prefix...
        for n in 0..=s.len() {
            check(&i, &s[..n]);
        }
        // ...and random corruptions.
        for _ in 0..5_000 {
            let mut p = s.clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(p.len());
                p[at] = rng.next() as u8;
            }
            check(&i, &p);
        }
    }
}

#[test]
fn odd_but_well_formed_queries_get_parseable_answers() {
    let i = fixture(Config {
        pods: dns::PodMode::Verified,
        nameservers: vec!["fd00::53".parse().unwrap()],
        ..Config::default()
    });
    let pool: &[&[u8]] = &[
        b"web",
        b"WEB",
        b"db",
        b"db-0",
        b"10-244-1-7",
        b"default",
        b"svc",
        b"pod",
        b"cluster",
        b"local",
        b"_http",
        b"_tcp",
        b"_",
        b"search",
        b"inner",
        b"dns-version",
        b"ns",
        b"dns",
        b"in-addr",
        b"arpa",
        b"10",
        b"\x00\xff.",
        b"1-2-3-4",
        b"",
    ];
    let qtypes = [1u16, 2, 5, 6, 12, 16, 28, 33, 41, 251, 252, 255, 0, 65535];
    let mut rng = Rng(42);
    for _ in 0..30_000 {
        let mut p = vec![0xAB, 0xCD, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        let labels = rng.below(7);
        for _ in 0..labels {
            let l = pool[rng.below(pool.len())];
            if l.is_empty() {
                continue;
            }
            p.push(l.len() as u8);
            p.extend_from_slice(l);
        }
        if rng.below(2) == 0 {
            p.extend_from_slice(b"\x07cluster\x05local");
        }
        p.push(0);
        p.extend_from_slice(&qtypes[rng.below(qtypes.len())].to_be_bytes());
        p.extend_from_slice(&[0, [1u8, 1, 1, 3, 255][rng.below(5)]]);
        if rng.below(2) == 0 {
            p[11] = 1;
            let size = rng.below(5000) as u16;
            p.extend_from_slice(&[0, 0, 41]);
            p.extend_from_slice(&size.to_be_bytes());
            p.extend_from_slice(&[0, 0, 0x80 * rng.below(2) as u8, 0, 0, 0]);
        }
        check(&i, &p);
        let (outcome, out) = respond_raw(&i, &p, Transport::Udp);
        assert_ne!(outcome, Outcome::Drop);
        // The question comes back as sent.
        let qend = p.len() - if p[11] == 1 { 11 } else { 0 };
        assert_eq!(out[12..qend], p[12..qend]);
    }
}
