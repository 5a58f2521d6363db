//! Loads 10,000 Services (half ClusterIP, half headless with 10 endpoints each) and measures:
//! - the answer path alone (`Index::respond`, one thread, no sockets);
//! - queries per second and latency through the UDP server on loopback, from a few client tasks that keep a
//!   window of queries outstanding.
//!
//! Bounded in time (DNSBENCH_SECS, default 3 s per phase) and loopback only.
//! Run: `cargo bench -p dns --bench dnsbench`

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dns::{serve, Config, Index, Scratch, ServeOptions, Transport};
use serde_json::json;
use tokio::net::{TcpListener, UdpSocket};

const SERVICES: usize = 10_000;
const ENDPOINTS: usize = 10;
const CLIENTS: usize = 4;
const WINDOW: usize = 32;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(|l| l.to_string())
        })
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn load() -> Index {
    let idx = Index::new(Config::default()).unwrap();
    for n in 0..SERVICES {
        let ns = format!("ns{}", n % 100);
        let name = format!("svc{n}");
        if n % 2 == 0 {
            let ip = format!("10.96.{}.{}", n / 250, n % 250 + 1);
            let svc = serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": ns},
                "spec": {"clusterIP": ip, "clusterIPs": [ip], "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}
            }))
            .unwrap();
            idx.upsert_service(&svc).unwrap();
        } else {
            let svc = serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": ns},
                "spec": {"clusterIP": "None", "clusterIPs": ["None"], "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}
            }))
            .unwrap();
            idx.upsert_service(&svc).unwrap();
            let eps: Vec<_> = (0..ENDPOINTS)
                .map(|e| {
                    let k = n * ENDPOINTS + e;
                    json!({"addresses": [format!("10.{}.{}.{}", 128 + k / 62500, (k / 250) % 250, k % 250 + 1)],
                           "hostname": format!("{name}-{e}"),
                           "conditions": {"ready": true}})
                })
                .collect();
            let slice = serde_json::from_value(json!({
                "metadata": {"name": format!("{name}-abc"), "namespace": ns,
                             "labels": {"kubernetes.io/service-name": name}},
                "addressType": "IPv4",
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                "endpoints": eps
            }))
            .unwrap();
            idx.upsert_endpoint_slice(&slice).unwrap();
        }
    }
    idx
}

fn encode(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut p = vec![(id >> 8) as u8, id as u8, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for l in name.split('.').filter(|l| !l.is_empty()) {
        p.push(l.len() as u8);
        p.extend_from_slice(l.as_bytes());
    }
    p.push(0);
    p.extend_from_slice(&qtype.to_be_bytes());
    p.extend_from_slice(&[0, 1]);
    p
}

/// A query mix: ClusterIP A, headless A (10 answers), SRV, per-endpoint A, PTR, NXDOMAIN.
fn queries() -> Vec<Vec<u8>> {
    let mut q = Vec::new();
    for k in 0..1000usize {
        let n = (k * 7919) % SERVICES;
        let ns = format!("ns{}", n % 100);
        let name = format!("svc{n}.{ns}.svc.cluster.local");
        q.push(encode(0, &name, 1));
        match k % 5 {
            0 => q.push(encode(0, &format!("_http._tcp.{name}"), 33)),
            1 => q.push(encode(0, &format!("svc{n}-3.{name}"), 1)),
            2 => q.push(encode(0, &format!("1.{}.96.10.in-addr.arpa", n / 250), 12)),
            3 => q.push(encode(0, &format!("missing{n}.{ns}.svc.cluster.local"), 1)),
            _ => q.push(encode(0, &name, 28)),
        }
    }
    q
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

async fn client(
    server: SocketAddr,
    qs: Arc<Vec<Vec<u8>>>,
    until: Instant,
    seed: usize,
) -> (u64, Vec<u32>) {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.connect(server).await.unwrap();
    let mut sent_at = vec![Instant::now(); 65536];
    let mut next = seed;
    let mut id: u16 = 0;
    let mut buf = vec![0u8; 65535];
    let mut lat = Vec::new();
    let mut done = 0u64;
    let send_one = |sock: &UdpSocket, next: &mut usize, id: &mut u16, sent_at: &mut [Instant]| {
        let mut p = qs[*next % qs.len()].clone();
        *next += 1;
        *id = id.wrapping_add(1);
        p[0] = (*id >> 8) as u8;
        p[1] = *id as u8;
        sent_at[*id as usize] = Instant::now();
        let _ = sock.try_send(&p);
    };
    for _ in 0..WINDOW {
        send_one(&sock, &mut next, &mut id, &mut sent_at);
    }
    while Instant::now() < until {
        match tokio::time::timeout(Duration::from_millis(100), sock.recv(&mut buf)).await {
            Ok(Ok(n)) if n >= 2 => {
                let rid = u16::from_be_bytes([buf[0], buf[1]]);
                lat.push(sent_at[rid as usize].elapsed().as_micros() as u32);
                done += 1;
                send_one(&sock, &mut next, &mut id, &mut sent_at);
            }
            // A lost datagram shrinks the window: refill it.
            _ => {
                for _ in 0..WINDOW {
                    send_one(&sock, &mut next, &mut id, &mut sent_at);
                }
            }
        }
    }
    (done, lat)
}

fn main() {
    let secs: u64 = std::env::var("DNSBENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3)
        .clamp(1, 30);
    let before = rss_kib();
    let t = Instant::now();
    let idx = Arc::new(load());
    let loaded = t.elapsed();
    let after = rss_kib();
    println!(
        "loaded {SERVICES} services ({} headless x {ENDPOINTS} endpoints) in {:.0} ms; RSS +{} MiB (total {} MiB)",
        SERVICES / 2,
        loaded.as_secs_f64() * 1e3,
        (after.saturating_sub(before)) / 1024,
        after / 1024
    );

    let qs = Arc::new(queries());
    // One more Service, timed from upsert to answer.
    let t = Instant::now();
    let svc = serde_json::from_value(json!({
        "metadata": {"name": "late", "namespace": "ns1"},
        "spec": {"clusterIP": "10.97.0.1", "ports": [{"port": 80}]}
    }))
    .unwrap();
    idx.upsert_service(&svc).unwrap();
    let mut out = Vec::new();
    let mut scratch = Scratch::default();
    idx.respond(
        &encode(1, "late.ns1.svc.cluster.local", 1),
        Transport::Udp,
        &mut out,
        &mut scratch,
    );
    println!(
        "upsert to answer (in process): {:.1} us",
        t.elapsed().as_secs_f64() * 1e6
    );

    let t = Instant::now();
    let mut n = 0u64;
    let until = t + Duration::from_secs(secs);
    while Instant::now() < until {
        for q in qs.iter() {
            idx.respond(q, Transport::Udp, &mut out, &mut scratch);
        }
        n += qs.len() as u64;
    }
    println!(
        "answer path, 1 thread, no sockets: {:.0} queries/s",
        n as f64 / t.elapsed().as_secs_f64()
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = udp.local_addr().unwrap();
        let tcp = TcpListener::bind(addr).await.unwrap();
        let server = tokio::spawn(serve(idx, udp, tcp, ServeOptions::default()));
        let start = Instant::now();
        let until = start + Duration::from_secs(secs);
        let clients: Vec<_> = (0..CLIENTS).map(|c| tokio::spawn(client(addr, qs.clone(), until, c * 250))).collect();
        let mut total = 0;
        let mut lat = Vec::new();
        for c in clients {
            let (n, l) = c.await.unwrap();
            total += n;
            lat.extend(l);
        }
        let elapsed = start.elapsed().as_secs_f64();
        lat.sort_unstable();
        println!(
            "udp server on loopback, {CLIENTS} clients x {WINDOW} outstanding, clients on the same 2 cores: {:.0} queries/s; latency p50 {} us, p99 {} us, max {} us",
            total as f64 / elapsed,
            percentile(&lat, 0.5),
            percentile(&lat, 0.99),
            lat.last().copied().unwrap_or(0)
        );
        server.abort();
    });
}
