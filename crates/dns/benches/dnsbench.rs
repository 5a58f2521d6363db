//! Loads 10,000 Services (half ClusterIP, half headless; each with 10 endpoints, 100,000 in all) and measures:
//! - the answer path alone (`Index::respond`, one thread, no sockets);
//! - queries per second and latency through the UDP server on loopback, from a few client tasks that keep a
//!   window of queries outstanding.
//!
//! - with `DNSBENCH_KNOT=1`: `dnsperf` (Debian `dnsperf`) against this server and, in the same run, against
//!   Knot DNS (Debian `knot`) serving the equivalent zone files (cluster.local and the reverse zone), same
//!   query file; prints both and the ratio.
//!
//! Bounded in time (DNSBENCH_SECS, default 3 s per phase) and loopback only.
//! Run: `cargo bench -p dns --bench dnsbench` (`DNSBENCH_KNOT=1 DNSBENCH_SECS=10` for the comparison).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dns::{serve, Config, Index, Scratch, ServeOptions, Transport};
use serde_json::json;
use tokio::net::UdpSocket;

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

/// The address of endpoint `e` of Service `n`, as its three low octets under 10.0.0.0/8.
fn endpoint_octets(n: usize, e: usize) -> (usize, usize, usize) {
    let k = n * ENDPOINTS + e;
    (128 + k / 62500, (k / 250) % 250, k % 250 + 1)
}

/// Even Services are ClusterIP, odd ones headless; every Service has one slice of `ENDPOINTS` ready endpoints
/// (as a Deployment's or StatefulSet's pods would give it), hostnames only for the headless ones.
fn load() -> Index {
    let idx = Index::new(Config::default()).unwrap();
    for n in 0..SERVICES {
        let ns = format!("ns{}", n % 100);
        let name = format!("svc{n}");
        let headless = n % 2 == 1;
        let ip = if headless {
            "None".to_string()
        } else {
            format!("10.96.{}.{}", n / 250, n % 250 + 1)
        };
        let svc = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": ns},
            "spec": {"clusterIP": ip, "clusterIPs": [ip], "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}
        }))
        .unwrap();
        idx.upsert_service(&svc).unwrap();
        let eps: Vec<_> = (0..ENDPOINTS)
            .map(|e| {
                let (x, y, z) = endpoint_octets(n, e);
                let mut ep = json!({"addresses": [format!("10.{x}.{y}.{z}")], "conditions": {"ready": true}});
                if headless {
                    ep["hostname"] = json!(format!("{name}-{e}"));
                }
                ep
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

/// The records `load` creates, as zone-file lines (names relative to nothing: absolute with a dot).
fn zone_files(dir: &std::path::Path) -> std::io::Result<()> {
    use std::fmt::Write as _;
    let soa = |zone: &str| {
        format!(
            "$TTL 5\n{zone}. 5 IN SOA ns.dns.{zone}. hostmaster.{zone}. 1 7200 1800 86400 5\n{zone}. 5 IN NS ns.dns.cluster.local.\n"
        )
    };
    let mut fwd = soa("cluster.local");
    fwd.push_str("ns.dns.cluster.local. 5 IN A 10.96.0.10\n");
    let mut rev = soa("10.in-addr.arpa");
    for n in 0..SERVICES {
        let ns = format!("ns{}", n % 100);
        let name = format!("svc{n}.{ns}.svc.cluster.local.");
        if n % 2 == 0 {
            let (a, b) = (n / 250, n % 250 + 1);
            let _ = writeln!(fwd, "{name} 5 IN A 10.96.{a}.{b}");
            let _ = writeln!(fwd, "_http._tcp.{name} 5 IN SRV 0 100 80 {name}");
            let _ = writeln!(rev, "{b}.{a}.96.10.in-addr.arpa. 5 IN PTR {name}");
            // Endpoints of a ClusterIP Service have reverse names only (CoreDNS's rule), under the dashed address.
            for e in 0..ENDPOINTS {
                let (x, y, z) = endpoint_octets(n, e);
                let host = format!("10-{x}-{y}-{z}.{name}");
                let _ = writeln!(rev, "{z}.{y}.{x}.10.in-addr.arpa. 5 IN PTR {host}");
            }
        } else {
            for e in 0..ENDPOINTS {
                let (x, y, z) = endpoint_octets(n, e);
                let host = format!("svc{n}-{e}.{name}");
                let _ = writeln!(fwd, "{name} 5 IN A 10.{x}.{y}.{z}");
                let _ = writeln!(fwd, "{host} 5 IN A 10.{x}.{y}.{z}");
                let _ = writeln!(fwd, "_http._tcp.{name} 5 IN SRV 0 10 8080 {host}");
                let _ = writeln!(rev, "{z}.{y}.{x}.10.in-addr.arpa. 5 IN PTR {host}");
            }
        }
    }
    std::fs::write(dir.join("cluster.local.zone"), fwd)?;
    std::fs::write(dir.join("10.in-addr.arpa.zone"), rev)
}

/// The query mix of `queries()` in dnsperf's format.
fn dnsperf_queries(dir: &std::path::Path) -> std::io::Result<std::path::PathBuf> {
    use std::fmt::Write as _;
    let mut out = String::new();
    for k in 0..1000usize {
        let n = (k * 7919) % SERVICES;
        let ns = format!("ns{}", n % 100);
        let name = format!("svc{n}.{ns}.svc.cluster.local");
        let _ = writeln!(out, "{name} A");
        let _ = match k % 5 {
            0 => writeln!(out, "_http._tcp.{name} SRV"),
            1 => writeln!(out, "svc{n}-3.{name} A"),
            2 => writeln!(out, "1.{}.96.10.in-addr.arpa PTR", n / 250),
            3 => writeln!(out, "missing{n}.{ns}.svc.cluster.local A"),
            _ => writeln!(out, "{name} AAAA"),
        };
    }
    let path = dir.join("queries.txt");
    std::fs::write(&path, out)?;
    Ok(path)
}

/// Runs dnsperf for `secs` against a server; returns (qps, avg latency ms, the summary lines).
fn dnsperf(port: u16, queries: &std::path::Path, secs: u64) -> Option<(f64, f64, String)> {
    let out = std::process::Command::new("dnsperf")
        .args(["-s", "127.0.0.1", "-p", &port.to_string(), "-d"])
        .arg(queries)
        .args(["-l", &secs.to_string(), "-c", "4", "-q", "128", "-t", "2"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let num = |key: &str| -> Option<f64> {
        let line = text.lines().find(|l| l.trim_start().starts_with(key))?;
        line.split(':')
            .nth(1)?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    let qps = num("Queries per second")?;
    let lat = num("Average Latency (s)")? * 1e3;
    let summary: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("Queries") || l.contains("Latency") || l.contains("Response codes"))
        .collect();
    Some((qps, lat, summary.join("\n")))
}

fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// dnsperf against svcplane (already serving on `ours`) and Knot on the same zone, same queries.
fn compare_with_knot(ours: u16, secs: u64) {
    let Ok(dir) = tempfile::tempdir() else {
        println!("knot comparison: no temporary directory");
        return;
    };
    let (Ok(()), Ok(queries)) = (zone_files(dir.path()), dnsperf_queries(dir.path())) else {
        println!("knot comparison: cannot write the zone files");
        return;
    };
    let knot_port = free_port();
    let conf = format!(
        "server:\n  listen: 127.0.0.1@{knot_port}\n  rundir: {d}\n  udp-workers: 2\n  tcp-workers: 1\n\
         database:\n  storage: {d}\n\
         zone:\n  - domain: cluster.local\n    file: {d}/cluster.local.zone\n  - domain: 10.in-addr.arpa\n    file: {d}/10.in-addr.arpa.zone\n",
        d = dir.path().display()
    );
    let conf_path = dir.path().join("knot.conf");
    if std::fs::write(&conf_path, conf).is_err() {
        return;
    }
    let Ok(mut knot) = std::process::Command::new("knotd")
        .arg("-c")
        .arg(&conf_path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    else {
        println!("knot comparison: knotd not found (apt-get install knot dnsperf)");
        return;
    };
    // Knot loads the zones in the background: wait (bounded) until it answers a name of the zone.
    let probe = std::net::UdpSocket::bind("127.0.0.1:0").ok();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut ready = false;
    while let Some(sock) = probe.as_ref() {
        let _ = sock.set_read_timeout(Some(Duration::from_millis(200)));
        let _ = sock.send_to(
            &encode(7, "svc0.ns0.svc.cluster.local", 1),
            ("127.0.0.1", knot_port),
        );
        let mut buf = [0u8; 512];
        if let Ok(n) = sock.recv(&mut buf) {
            // NOERROR with an answer.
            if n > 12 && buf[3] & 0x0f == 0 && buf[7] > 0 {
                ready = true;
                break;
            }
        }
        if Instant::now() > deadline {
            break;
        }
    }
    if ready {
        let ours = dnsperf(ours, &queries, secs);
        let theirs = dnsperf(knot_port, &queries, secs);
        match (ours, theirs) {
            (Some((q1, l1, s1)), Some((q2, l2, s2))) => {
                println!("dnsperf, svcplane:\n{s1}");
                println!("dnsperf, Knot DNS:\n{s2}");
                println!(
                    "svcplane {q1:.0} q/s (avg {l1:.3} ms) vs Knot {q2:.0} q/s (avg {l2:.3} ms): ratio {:.2}",
                    q1 / q2
                );
            }
            _ => println!("knot comparison: dnsperf failed or is not installed"),
        }
    } else {
        println!("knot comparison: Knot did not answer within 60 s");
    }
    let _ = knot.kill();
    let _ = knot.wait();
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
        "loaded {SERVICES} services ({} headless) with {} endpoints in {:.0} ms; RSS +{} MiB (total {} MiB)",
        SERVICES / 2,
        SERVICES * ENDPOINTS,
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
        let (udp, tcp) = dns::bind_dns(([127, 0, 0, 1], 0).into()).await.unwrap();
        let addr = udp.local_addr().unwrap();
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
        if std::env::var("DNSBENCH_KNOT").is_ok() {
            // dnsperf blocks: run it off the runtime that serves our side.
            let port = addr.port();
            let _ = tokio::task::spawn_blocking(move || compare_with_knot(port, secs)).await;
        }
        server.abort();
    });
}
