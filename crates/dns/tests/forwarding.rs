//! The forwarder alone behind the real server loop (no API server needed): failover between upstreams,
//! SERVFAIL when none answers, cache expiry by TTL. Upstreams are the test's own, on loopback.

mod common;
mod harness;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use dns::{serve, Config, Forwarder, Metrics, ServeOptions, UpstreamForwarder};
use harness::*;
use tokio::net::UdpSocket;

/// A loopback port nothing listens on (UDP and TCP): bound, then released.
async fn dead_port() -> SocketAddr {
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    s.local_addr().unwrap()
}

async fn start(upstreams: Vec<SocketAddr>) -> (SocketAddr, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new());
    let fwd = UpstreamForwarder::new(
        upstreams,
        vec!["127.0.0.0/8".parse().unwrap()],
        100,
        metrics.clone(),
    );
    let (udp, tcp) = dns::bind_dns(([127, 0, 0, 1], 0).into()).await.unwrap();
    let addr = udp.local_addr().unwrap();
    let opts = ServeOptions {
        udp_workers: 1,
        forwarder: Some(Arc::new(fwd) as Arc<dyn Forwarder>),
        metrics: metrics.clone(),
        ..ServeOptions::default()
    };
    tokio::spawn(serve(
        Arc::new(common::fixture(Config::default())),
        udp,
        tcp,
        opts,
    ));
    (addr, metrics)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fails_over_then_servfails_when_no_upstream_answers() {
    if !dig_installed() {
        return;
    }
    let up = Upstream::start().await;
    let dead = dead_port().await;
    let (dns, metrics) = start(vec![dead, up.addr]).await;
    let d = dig(dns, &["example.org"]).await;
    assert_eq!(d.values(), ["A 192.0.2.10"], "{}", d.raw);
    let text = metrics.render(&[]);
    assert!(
        text.contains("svcplane_dns_forward_errors_total 1"),
        "{text}"
    );
    assert!(
        text.contains("svcplane_dns_forward_requests_total 2"),
        "{text}"
    );

    let (dns, _) = start(vec![dead]).await;
    let d = dig(dns, &["example.org"]).await;
    assert_eq!(d.status, "SERVFAIL", "{}", d.raw);
    // In-zone names do not depend on the upstream.
    let d = dig(dns, &["web.default.svc.cluster.local"]).await;
    assert_eq!(d.values(), ["A 10.96.0.10"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_answers_expire_with_their_ttl_and_fit_the_client() {
    if !dig_installed() {
        return;
    }
    let up = Upstream::start().await;
    let (dns, _) = start(vec![up.addr]).await;
    // TTL 1: served from the cache at first, asked again once it expired.
    let d = dig(dns, &["short.example.org"]).await;
    assert_eq!(d.values(), ["A 192.0.2.30"]);
    eventually(Duration::from_secs(5), "cache entry expires", || async {
        let d = dig(dns, &["short.example.org"]).await;
        assert_eq!(d.values(), ["A 192.0.2.30"]);
        (up.count("udp", "short.example.org.") == 2).then_some(())
    })
    .await;
    // A client without EDNS0 gets TC=1 over UDP (512 bytes), then everything over TCP.
    let d = dig(dns, &["+noedns", "+ignore", "big.example.org"]).await;
    assert!(d.flags.contains(&"tc".to_string()), "{}", d.raw);
    assert!(d.answer.is_empty());
    let d = dig(dns, &["+tcp", "big.example.org"]).await;
    assert_eq!(d.answer.len(), 100);
}
