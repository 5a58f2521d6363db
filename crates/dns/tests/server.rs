//! The server over real sockets on loopback: UDP, TCP framing, truncation and the TCP retry, and dig when
//! installed.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use dns::{serve, Config, ForwardRequest, Forwarder, Index, Outcome, ServeOptions, Transport};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

async fn start(index: Arc<Index>) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    start_with(index, None).await
}

async fn start_with(
    index: Arc<Index>,
    forwarder: Option<Arc<dyn Forwarder>>,
) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let (udp, tcp) = dns::bind_dns(([127, 0, 0, 1], 0).into()).await.unwrap();
    let addr = udp.local_addr().unwrap();
    let opts = ServeOptions {
        udp_workers: 2,
        forwarder,
        ..ServeOptions::default()
    };
    (addr, tokio::spawn(serve(index, udp, tcp, opts)))
}

async fn udp_ask(server: SocketAddr, packet: &[u8]) -> Message {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(packet, server).await.unwrap();
    let mut buf = vec![0u8; 65535];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    Message::from_vec(&buf[..n]).unwrap()
}

async fn tcp_ask_many(server: SocketAddr, packets: &[Vec<u8>]) -> Vec<Message> {
    let mut s = TcpStream::connect(server).await.unwrap();
    // Pipelined: all queries first, then all answers, in order.
    for p in packets {
        s.write_all(&(p.len() as u16).to_be_bytes()).await.unwrap();
        s.write_all(p).await.unwrap();
    }
    let mut out = Vec::new();
    for _ in packets {
        let len = tokio::time::timeout(Duration::from_secs(5), s.read_u16())
            .await
            .unwrap()
            .unwrap();
        let mut buf = vec![0u8; len as usize];
        s.read_exact(&mut buf).await.unwrap();
        out.push(Message::from_vec(&buf).unwrap());
    }
    out
}

fn index() -> Arc<Index> {
    let i = fixture(Config::default());
    i.upsert_service(&headless(
        "default",
        "big",
        json!([{"name": "http", "port": 80}]),
    ))
    .unwrap();
    let ips: Vec<String> = (0..100).map(|k| format!("10.245.0.{}", k + 1)).collect();
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
    Arc::new(i)
}

#[tokio::test]
async fn udp_and_tcp_on_one_port() {
    let idx = index();
    let (addr, server) = start(idx.clone()).await;

    let m = udp_ask(
        addr,
        &query("web.default.svc.cluster.local.", RecordType::A),
    )
    .await;
    assert_eq!(
        answers(&m),
        vec!["web.default.svc.cluster.local. 5 IN A 10.96.0.10"]
    );

    let ms = tcp_ask_many(
        addr,
        &[
            query("_http._tcp.web.default.svc.cluster.local.", RecordType::SRV),
            query("10.0.96.10.in-addr.arpa.", RecordType::PTR),
            query("nope.default.svc.cluster.local.", RecordType::A),
        ],
    )
    .await;
    assert_eq!(
        answers(&ms[0]),
        vec!["_http._tcp.web.default.svc.cluster.local. 5 IN SRV 0 100 80 web.default.svc.cluster.local."]
    );
    assert_eq!(
        answers(&ms[1]),
        vec!["10.0.96.10.in-addr.arpa. 5 IN PTR web.default.svc.cluster.local."]
    );
    assert_eq!(ms[2].metadata.response_code, ResponseCode::NXDomain);

    // Garbage does not stop the server.
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for junk in [&b""[..], b"\x01", &[0xFF; 40], &[0u8; 12]] {
        sock.send_to(junk, addr).await.unwrap();
    }
    let mut t = TcpStream::connect(addr).await.unwrap();
    t.write_all(&[0, 5, 1, 2, 3, 4, 5]).await.unwrap();
    drop(t);
    let m = udp_ask(addr, &query("db.default.svc.cluster.local.", RecordType::A)).await;
    assert_eq!(m.answers.len(), 3);

    // A change is visible to the next query.
    idx.delete_service("default", "web");
    let m = udp_ask(
        addr,
        &query("web.default.svc.cluster.local.", RecordType::A),
    )
    .await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);

    server.abort();
}

#[tokio::test]
async fn truncated_over_udp_complete_over_tcp() {
    let (addr, server) = start(index()).await;
    let q = query("big.default.svc.cluster.local.", RecordType::A);
    let m = udp_ask(addr, &q).await;
    assert!(m.metadata.truncation);
    assert!(m.answers.is_empty());
    let m = tcp_ask_many(addr, &[q]).await.remove(0);
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 100);
    let m = udp_ask(
        addr,
        &query_edns("big.default.svc.cluster.local.", RecordType::A, 4096),
    )
    .await;
    assert_eq!(m.answers.len(), 100);
    server.abort();
}

#[tokio::test]
async fn with_dig_when_installed() {
    let dig = std::path::Path::new("/usr/bin/dig");
    if !dig.exists() {
        eprintln!("SKIPPED: /usr/bin/dig is not installed (Debian package bind9-dnsutils); dig checks not run");
        return;
    }
    let (addr, server) = start(index()).await;
    let port = addr.port().to_string();
    let run = |args: &[&str]| {
        let mut all = vec!["@127.0.0.1", "-p", &port, "+time=2", "+tries=1"];
        all.extend_from_slice(args);
        let all: Vec<String> = all.iter().map(|s| s.to_string()).collect();
        async move {
            let out = tokio::process::Command::new("/usr/bin/dig")
                .args(&all)
                .output()
                .await
                .unwrap();
            String::from_utf8_lossy(&out.stdout).into_owned()
        }
    };
    let short = run(&["+short", "web.default.svc.cluster.local"]).await;
    assert_eq!(short.trim(), "10.96.0.10");
    let short = run(&["+short", "_http._tcp.web.default.svc.cluster.local", "SRV"]).await;
    assert_eq!(short.trim(), "0 100 80 web.default.svc.cluster.local.");
    let short = run(&["+short", "-x", "10.96.0.10"]).await;
    assert_eq!(short.trim(), "web.default.svc.cluster.local.");
    let short = run(&["+short", "db-0.db.default.svc.cluster.local"]).await;
    assert_eq!(short.trim(), "10.244.1.5");
    let short = run(&["+short", "search.default.svc.cluster.local"]).await;
    assert_eq!(short.trim(), "www.example.com.");
    let short = run(&["+short", "dns-version.cluster.local", "TXT"]).await;
    assert_eq!(short.trim(), "\"1.1.0\"");
    let full = run(&["nope.default.svc.cluster.local"]).await;
    assert!(full.contains("status: NXDOMAIN"), "{full}");
    assert!(
        full.contains("IN\tSOA\tns.dns.cluster.local. hostmaster.cluster.local."),
        "{full}"
    );
    // dig retries over TCP on TC=1 by itself: all 100 addresses arrive.
    let short = run(&["+short", "+noedns", "big.default.svc.cluster.local"]).await;
    assert_eq!(short.lines().count(), 100, "{short}");
    let full = run(&["example.org"]).await;
    assert!(full.contains("status: REFUSED"), "{full}");
    server.abort();
}

/// Stands in for the upstream step: marks what it was given so the test can see the hook was used.
struct Marker;

impl Forwarder for Marker {
    fn forward(
        &self,
        req: ForwardRequest,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<Vec<u8>>> + Send>> {
        Box::pin(async move {
            let mut reply = req.local_reply;
            match req.outcome {
                // NXDOMAIN instead of REFUSED, with RA set, as an upstream answer would have it.
                Outcome::NotInZone => {
                    reply[3] = (reply[3] & 0xF0) | 0x80 | 3;
                }
                Outcome::ReplyExternalCname if req.transport == Transport::Udp => {
                    reply[3] |= 0x80;
                }
                _ => return None,
            }
            Some(reply)
        })
    }
}

#[tokio::test]
async fn the_forwarding_hook_sees_names_outside_the_zone_and_external_names() {
    let (addr, server) = start_with(index(), Some(Arc::new(Marker))).await;
    let m = udp_ask(addr, &query("example.org.", RecordType::A)).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert!(m.metadata.recursion_available);
    let m = tcp_ask_many(addr, &[query("example.org.", RecordType::A)])
        .await
        .remove(0);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    let m = udp_ask(
        addr,
        &query("search.default.svc.cluster.local.", RecordType::A),
    )
    .await;
    assert!(m.metadata.recursion_available);
    assert_eq!(
        answers(&m),
        vec!["search.default.svc.cluster.local. 5 IN CNAME www.example.com."]
    );
    // Names in the zone never reach it.
    let m = udp_ask(
        addr,
        &query("web.default.svc.cluster.local.", RecordType::A),
    )
    .await;
    assert!(!m.metadata.recursion_available);
    server.abort();
}
