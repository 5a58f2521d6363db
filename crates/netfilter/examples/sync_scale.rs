//! Measures the executor at scale, inside a network namespace it creates and deletes (root needed):
//! `cargo run --release -p netfilter --example sync_scale -- --services 10000 --endpoints 10 [--changes 100]`
//!
//! Prints the cold full sync, a resync of the same model (the periodic drift repair), then `--changes`
//! single-endpoint changes (one endpoint of one Service replaced: a few element ops) applied one by one,
//! with p50/p99/max of `Executor::apply`, and one new Service.

use std::net::Ipv4Addr;
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

fn service(i: u32) -> k8s_openapi::api::core::v1::Service {
    let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 96, 0, 0)) + i + 1).to_string();
    serde_json::from_value(json!({
        "metadata": {"namespace": "scale", "name": format!("svc-{i}")},
        "spec": {"type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip],
                 "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
    }))
    .expect("valid Service")
}

/// The slice of Service `i`; `generation` shifts the first endpoint's address, so bumping it is one
/// endpoint replaced by another.
fn slice(
    i: u32,
    endpoints: u32,
    generation: u32,
) -> k8s_openapi::api::discovery::v1::EndpointSlice {
    let eps: Vec<_> = (0..endpoints)
        .map(|e| {
            let offset = if e == 0 { generation * 64 * 1024 } else { 0 };
            let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 128, 0, 0)) + i * 64 + e + offset);
            json!({"addresses": [ip.to_string()], "nodeName": format!("node-{}", e % 50),
                   "conditions": {"ready": true}})
        })
        .collect();
    serde_json::from_value(json!({
        "metadata": {"namespace": "scale", "name": format!("svc-{i}-1"),
                     "labels": {"kubernetes.io/service-name": format!("svc-{i}")}},
        "addressType": "IPv4", "endpoints": eps,
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]
    }))
    .expect("valid EndpointSlice")
}

fn arg(args: &[String], name: &str, default: u32) -> Result<u32, Box<dyn std::error::Error>> {
    match args.iter().position(|a| a == name) {
        Some(i) => Ok(args
            .get(i + 1)
            .ok_or(format!("{name} needs a value"))?
            .parse()?),
        None => Ok(default),
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn print_times(what: &str, times: &mut [Duration], ops: usize, changes: u32) {
    times.sort();
    let pct = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
    println!(
        "{what}: {:.1} element ops each, {changes} changes: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ops as f64 / changes as f64,
        ms(pct(0.50)),
        ms(pct(0.99)),
        ms(times[times.len() - 1])
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let services = arg(&args, "--services", 10_000)?;
    let endpoints = arg(&args, "--endpoints", 10)?;
    let changes = arg(&args, "--changes", 100)?.max(1);

    let name = format!("svcplane-nf-bench-{}", std::process::id());
    let status = Command::new("ip").args(["netns", "add", &name]).status()?;
    if !status.success() {
        return Err("ip netns add failed (root needed)".into());
    }
    let netns = Netns(name);
    let path = std::path::PathBuf::from(format!("/run/netns/{}", netns.0));

    let mut config = Config::new(Family::V4, "node-0");
    config.cluster_cidrs = vec!["10.128.0.0/9".parse()?];
    config.service_cidrs = vec!["10.96.0.0/12".parse()?];
    let mut model = ProxyModel::new(config.clone());
    // As the agent: its first sync is a full one, so the model records no diff until then.
    model.untracked_until_synced();
    // Objects are decoded in batches outside the timing (decoding is the watch's cost, not the model's) and
    // dropped after use, as the agent drops each watch event: the RSS below is then the model's.
    let mut built = Duration::ZERO;
    let mut next = 0;
    while next < services {
        let end = (next + 1000).min(services);
        let objects: Vec<_> = (next..end)
            .map(|i| (service(i), slice(i, endpoints, 0)))
            .collect();
        let start = Instant::now();
        for (svc, eps) in &objects {
            model.upsert_service(svc)?;
            model.upsert_endpoint_slice(eps);
        }
        built += start.elapsed();
        next = end;
    }
    let stats = model.stats();
    println!(
        "services={services} endpoints={endpoints} elements={} pick_chains={} (model built in {:.0} ms)",
        stats.elements,
        model.pick_chains().len(),
        ms(built)
    );

    let mut exec = Executor::new_in_netns(&path, Family::V4, config.table.clone())?;
    let report = exec.full_sync(&model)?;
    model.mark_synced();
    println!(
        "cold full sync: {:.0} ms (nft structure {:.0} ms, {} elements in {} netlink messages / {} batch(es), {:.1} MB), failed={}",
        ms(report.duration),
        ms(report.nft_duration),
        report.elements_added,
        report.netlink_messages,
        report.netlink_batches,
        report.bytes as f64 / 1e6,
        report.failed.len()
    );
    // What the agent holds at this scale: the model and the executor (it keeps no copy of the API objects).
    println!("RSS after the cold sync: {} MiB", rss_kib() / 1024);
    // The agent hands the sync's freed memory back after every full sync (glibc keeps it otherwise).
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe { libc::malloc_trim(0) };
    println!(
        "RSS after returning freed memory, as the agent does: {} MiB",
        rss_kib() / 1024
    );
    let report = exec.full_sync(&model)?;
    println!(
        "resync (flush + refill everything): {:.0} ms (nft structure {:.0} ms), failed={}",
        ms(report.duration),
        ms(report.nft_duration),
        report.failed.len()
    );

    let mut times = Vec::with_capacity(changes as usize);
    let mut ops = 0;
    for c in 0..changes {
        let i = (c * 7919) % services;
        model.upsert_endpoint_slice(&slice(i, endpoints, c + 1));
        let diff = model.take_diff();
        ops += diff.ops.len();
        let report = exec.apply(&config, &diff)?;
        if !report.failed.is_empty() {
            return Err(format!("change {c} refused: {:?}", report.failed).into());
        }
        times.push(report.duration);
        // Put it back so each change is one endpoint replaced.
        model.upsert_endpoint_slice(&slice(i, endpoints, 0));
        let diff = model.take_diff();
        exec.apply(&config, &diff)?;
    }
    print_times(
        "one endpoint replaced (same count, no verdict change)",
        &mut times,
        ops,
        changes,
    );

    // A count no Service had: a new pick chain, through nft (which reads the whole ruleset first).
    model.upsert_endpoint_slice(&slice(0, endpoints + 1, 0));
    let diff = model.take_diff();
    let report = exec.apply(&config, &diff)?;
    println!(
        "one endpoint added, creating pick chain cluster-{}: {:.2} ms (nft {:.2} ms)",
        endpoints + 1,
        ms(report.duration),
        ms(report.nft_duration)
    );

    // Endpoint count changes replace the Service's `service-ips` verdict (goto cluster-N → cluster-N+1,
    // which now exists thanks to Service 0).
    let mut times = Vec::with_capacity(changes as usize);
    let mut ops = 0;
    for c in 0..changes {
        let i = 1 + (c * 7919) % (services - 1).max(1);
        model.upsert_endpoint_slice(&slice(i, endpoints + 1, 0));
        let diff = model.take_diff();
        ops += diff.ops.len();
        let report = exec.apply(&config, &diff)?;
        if !report.failed.is_empty() {
            return Err(format!("change {c} refused: {:?}", report.failed).into());
        }
        times.push(report.duration);
        model.upsert_endpoint_slice(&slice(i, endpoints, 0));
        let diff = model.take_diff();
        exec.apply(&config, &diff)?;
    }
    print_times(
        "one endpoint added (verdict replaced, chain exists)",
        &mut times,
        ops,
        changes,
    );

    model.upsert_service(&service(services))?;
    model.upsert_endpoint_slice(&slice(services, endpoints, 0));
    let diff = model.take_diff();
    let report = exec.apply(&config, &diff)?;
    println!(
        "one new Service ({} ops): {:.2} ms",
        diff.ops.len(),
        ms(report.duration)
    );
    drop(exec);
    drop(netns);
    Ok(())
}
