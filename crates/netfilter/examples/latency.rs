//! Connection latency through a ClusterIP with 1 Service installed versus many, inside a network namespace
//! it creates and deletes (root needed):
//! `cargo run --release -p netfilter --example latency -- --services 30000 --connections 3000`
//!
//! One real Service (10.96.0.1:80 → a listener on 10.200.0.1:8080, an address of the namespace's loopback) is measured: TCP
//! connect, one byte each way, close, from the same namespace (the output hook's DNAT). Then `--services`
//! synthetic Services × 10 endpoints are added and the same is measured again. Prints p50, p99 and mean of
//! both runs and their ratio; the rule shape promises a ratio near 1 (per-packet cost independent of the
//! number of Services).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::{Duration, Instant};

use netfilter::Executor;
use proxy::{Config, Family, ProxyModel};
use serde_json::json;

struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn arg(args: &[String], name: &str, default: u32) -> Result<u32, Box<dyn std::error::Error>> {
    match args.iter().position(|a| a == name) {
        Some(i) => Ok(args.get(i + 1).ok_or("missing value")?.parse()?),
        None => Ok(default),
    }
}

fn enter(path: &str) -> std::io::Result<()> {
    let f = std::fs::File::open(path)?;
    // SAFETY: setns on a valid namespace fd affects only the calling thread.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn service(i: u32) -> k8s_openapi::api::core::v1::Service {
    let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 96, 0, 0)) + i + 1).to_string();
    serde_json::from_value(json!({
        "metadata": {"namespace": "bench", "name": format!("svc-{i}")},
        "spec": {"clusterIP": ip, "clusterIPs": [ip], "ports": [{"name": "http", "port": 80}]}
    }))
    .expect("valid Service")
}

fn slice(i: u32, endpoints: &[String]) -> k8s_openapi::api::discovery::v1::EndpointSlice {
    let eps: Vec<_> = endpoints
        .iter()
        .map(|ip| json!({"addresses": [ip], "nodeName": "node-2", "conditions": {"ready": true}}))
        .collect();
    serde_json::from_value(json!({
        "metadata": {"namespace": "bench", "name": format!("svc-{i}"),
                     "labels": {"kubernetes.io/service-name": format!("svc-{i}")}},
        "addressType": "IPv4", "endpoints": eps,
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]
    }))
    .expect("valid EndpointSlice")
}

fn measure(path: &str, connections: u32) -> Result<Vec<Duration>, String> {
    let path = path.to_string();
    std::thread::spawn(move || -> Result<Vec<Duration>, String> {
        enter(&path).map_err(|e| e.to_string())?;
        let target = SocketAddr::from(([10, 96, 0, 1], 80));
        // Warm-up, not counted.
        for _ in 0..50 {
            one(target).map_err(|e| e.to_string())?;
        }
        let mut times = Vec::with_capacity(connections as usize);
        for _ in 0..connections {
            let start = Instant::now();
            one(target).map_err(|e| e.to_string())?;
            times.push(start.elapsed());
        }
        Ok(times)
    })
    .join()
    .map_err(|_| "measuring thread panicked".to_string())?
}

fn one(target: SocketAddr) -> std::io::Result<()> {
    let mut s = TcpStream::connect_timeout(&target, Duration::from_secs(2))?;
    s.write_all(b"x")?;
    let mut b = [0u8; 1];
    s.read_exact(&mut b)
}

fn summary(times: &mut [Duration]) -> (f64, f64, f64) {
    times.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let pct = |p: f64| us(times[((times.len() as f64 * p) as usize).min(times.len() - 1)]);
    let mean = times.iter().map(|d| us(*d)).sum::<f64>() / times.len() as f64;
    (pct(0.5), pct(0.99), mean)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let services = arg(&args, "--services", 30_000)?;
    let connections = arg(&args, "--connections", 3000)?.max(1);
    let name = format!("svcplane-nf-lat-{}", std::process::id());
    if !Command::new("ip")
        .args(["netns", "add", &name])
        .status()?
        .success()
    {
        return Err("ip netns add failed (root needed)".into());
    }
    let netns = Netns(name);
    let ns = netns.0.clone();
    let ip = |a: &[&str]| Command::new("ip").arg("-n").arg(&ns).args(a).status();
    ip(&["link", "set", "lo", "up"])?;
    ip(&["addr", "add", "10.200.0.1/32", "dev", "lo"])?;
    // A route for the Service range, as a node has one (its default route): the socket needs one before the
    // output hook's DNAT sees the packet.
    ip(&["route", "add", "10.96.0.0/12", "dev", "lo"])?;
    let path = format!("/run/netns/{ns}");

    // The echo listener, in the namespace; it serves until the process ends.
    let lpath = path.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let listener = enter(&lpath).and_then(|_| TcpListener::bind("10.200.0.1:8080"));
        let listener = match listener {
            Ok(l) => {
                let _ = tx.send(Ok(()));
                l
            }
            Err(e) => {
                let _ = tx.send(Err(e.to_string()));
                return;
            }
        };
        for mut conn in listener.incoming().flatten() {
            let mut b = [0u8; 1];
            if conn.read_exact(&mut b).is_ok() {
                let _ = conn.write_all(&b);
            }
        }
    });
    rx.recv()??;

    let mut config = Config::new(Family::V4, "node-0");
    config.service_cidrs = vec!["10.96.0.0/12".parse()?];
    let mut model = ProxyModel::new(config.clone());
    model.upsert_service(&service(0))?;
    model.upsert_endpoint_slice(&slice(0, &["10.200.0.1".to_string()]));
    let mut exec = Executor::new_in_netns(
        std::path::Path::new(&path),
        Family::V4,
        config.table.clone(),
    )?;
    exec.full_sync(&model)?;
    model.mark_synced();
    let (p50a, p99a, meana) = summary(&mut measure(&path, connections)?);
    println!("1 Service: {connections} connections: p50 {p50a:.1} µs, p99 {p99a:.1} µs, mean {meana:.1} µs");

    for i in 1..=services {
        model.upsert_service(&service(i))?;
        let eps: Vec<String> = (0..10)
            .map(|e| {
                Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 128, 0, 0)) + i * 16 + e).to_string()
            })
            .collect();
        model.upsert_endpoint_slice(&slice(i, &eps));
    }
    let report = exec.full_sync(&model)?;
    model.mark_synced();
    println!(
        "installed {} more Services × 10 endpoints ({} elements) in {:.0} ms",
        services,
        model.stats().elements,
        report.duration.as_secs_f64() * 1e3
    );
    let (p50b, p99b, meanb) = summary(&mut measure(&path, connections)?);
    println!(
        "{} Services: {connections} connections: p50 {p50b:.1} µs, p99 {p99b:.1} µs, mean {meanb:.1} µs",
        services + 1
    );
    println!(
        "ratio many/1: p50 {:.3}, mean {:.3}",
        p50b / p50a,
        meanb / meana
    );
    drop(exec);
    drop(netns);
    Ok(())
}
