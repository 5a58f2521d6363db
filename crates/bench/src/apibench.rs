//! API server benchmark (a bench binary, not a test): N Service creates from C concurrent clients, with
//! W watchers that must each receive every creation event. Prints creates/s, create latency
//! percentiles, the time until every watcher saw every event, and the server's memory.
//!
//! By default it starts `svcplane apiserver` itself (from the same target directory) on a free loopback
//! port with a fresh data directory, so that it can read the server's RSS; `--kubeconfig` measures a
//! server that is already running (kube-apiserver included).
//!
//! `--store etcd` runs it on a 3-member etcd cluster on loopback (Debian's etcd-server), `--store both`
//! on the embedded store and then on etcd, in the same run, so that the two can be compared.
//!
//!     cargo build --release -p svcplane -p bench
//!     target/release/apibench -n 10000 -c 8 --watchers 100
//!     target/release/apibench -n 2000 -c 8 --watchers 10 --store both

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};

#[derive(Parser)]
struct Args {
    /// Services to create.
    #[arg(short = 'n', long, default_value_t = 10_000)]
    count: usize,
    /// Concurrent creating clients.
    #[arg(short = 'c', long, default_value_t = 8)]
    clients: usize,
    /// Watchers that must each see every create.
    #[arg(long, default_value_t = 100)]
    watchers: usize,
    /// Measure an already running server instead of starting one.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Namespace to create in.
    #[arg(long, default_value = "default")]
    namespace: String,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// Store of the server started here: embedded, etcd (3 members on loopback), or both in turn.
    #[arg(long, default_value = "embedded", value_parser = ["embedded", "etcd", "both"])]
    store: String,
}

struct Spawned {
    child: Child,
    _dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    _etcd: Option<etcd_testcluster::EtcdCluster>,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_server(on_etcd: bool) -> anyhow::Result<Spawned> {
    let exe = std::env::current_exe()?;
    let bin = exe.with_file_name("svcplane");
    if !bin.exists() {
        bail!(
            "{} not found: build it with cargo build --release -p svcplane",
            bin.display()
        );
    }
    let dir = tempfile::tempdir()?;
    let etcd = if on_etcd {
        let c = etcd_testcluster::EtcdCluster::start(3).context("starting etcd")?;
        println!("etcd: 3 members at {}", c.servers());
        Some(c)
    } else {
        None
    };
    let mut cmd = Command::new(&bin);
    cmd.args(["apiserver", "--secure-port", "0", "--data-dir"])
        .arg(dir.path());
    if let Some(c) = &etcd {
        cmd.args(["--etcd-servers", &c.servers()]);
    }
    let mut child = cmd
        .env("SVCPLANE_LOG", "warn")
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let stderr = child.stderr.take().context("stderr")?;
    let mut lines = BufReader::new(stderr).lines();
    loop {
        match lines.next() {
            Some(Ok(l)) if l.starts_with("svcplane API server at ") => break,
            Some(Ok(_)) => continue,
            _ => bail!("svcplane exited before serving"),
        }
    }
    std::thread::spawn(move || for _ in lines.by_ref() {});
    Ok(Spawned {
        kubeconfig: dir.path().join("kubeconfig"),
        child,
        _dir: dir,
        _etcd: etcd,
    })
}

fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.kubeconfig.is_some() {
        return measure(&args, None).await;
    }
    let stores: &[bool] = match args.store.as_str() {
        "etcd" => &[true],
        "both" => &[false, true],
        _ => &[false],
    };
    for &on_etcd in stores {
        println!(
            "== {} store",
            if on_etcd {
                "etcd (3 members, loopback)"
            } else {
                "embedded"
            }
        );
        let spawned = spawn_server(on_etcd)?;
        measure(&args, Some(&spawned)).await?;
    }
    Ok(())
}

async fn measure(args: &Args, spawned: Option<&Spawned>) -> anyhow::Result<()> {
    let kubeconfig = args
        .kubeconfig
        .clone()
        .or_else(|| spawned.map(|s| s.kubeconfig.clone()))
        .context("no kubeconfig")?;
    let pid = spawned.map(|s| s.child.id());
    let kc = Kubeconfig::read_from(&kubeconfig)?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    if let Some(pid) = pid {
        println!("server RSS idle: {:.1} MiB", rss_mib(pid).unwrap_or(0.0));
    }

    // Watchers from the current revision.
    let probe: Api<Service> =
        Api::namespaced(kube::Client::try_from(cfg.clone())?, &args.namespace);
    let rv = probe
        .list_metadata(&Default::default())
        .await?
        .metadata
        .resource_version
        .unwrap_or_default();
    let seen_all = Arc::new(AtomicUsize::new(0));
    let mut watcher_tasks = Vec::new();
    for _ in 0..args.watchers {
        let api: Api<Service> =
            Api::namespaced(kube::Client::try_from(cfg.clone())?, &args.namespace);
        let (rv, n, seen_all) = (rv.clone(), args.count, seen_all.clone());
        watcher_tasks.push(tokio::spawn(async move {
            let mut added = 0usize;
            let mut from = rv;
            while added < n && Instant::now() < deadline {
                let Ok(stream) = api.watch(&WatchParams::default().timeout(290), &from).await
                else {
                    break;
                };
                let mut stream = stream.boxed();
                while let Some(Ok(ev)) = stream.next().await {
                    match ev {
                        WatchEvent::Added(s) => {
                            added += 1;
                            from = s.metadata.resource_version.unwrap_or_default();
                        }
                        WatchEvent::Modified(s) | WatchEvent::Deleted(s) => {
                            from = s.metadata.resource_version.unwrap_or_default();
                        }
                        _ => {}
                    }
                    if added >= n {
                        break;
                    }
                }
            }
            if added >= n {
                seen_all.fetch_add(1, Ordering::SeqCst);
            }
            Instant::now()
        }));
    }
    // Let the watches open before the clock starts.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let start = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut creators = Vec::new();
    for _ in 0..args.clients {
        let api: Api<Service> =
            Api::namespaced(kube::Client::try_from(cfg.clone())?, &args.namespace);
        let (next, n) = (next.clone(), args.count);
        creators.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0usize;
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= n || Instant::now() > deadline {
                    break;
                }
                let svc: Service = serde_json::from_value(serde_json::json!({
                    "metadata": {"name": format!("bench-{i}"), "labels": {"bench": "api"}},
                    "spec": {"selector": {"app": format!("a{i}")}, "ports": [{"name": "http", "port": 80}]},
                }))
                .unwrap_or_default();
                let t = Instant::now();
                match api.create(&PostParams::default(), &svc).await {
                    Ok(_) => lat.push(t.elapsed()),
                    Err(e) => {
                        errors += 1;
                        if errors < 5 {
                            eprintln!("create bench-{i}: {e}");
                        }
                    }
                }
            }
            (lat, errors)
        }));
    }
    let mut lat = Vec::new();
    let mut errors = 0;
    for c in creators {
        let (l, e) = c.await?;
        lat.extend(l);
        errors += e;
    }
    let took = start.elapsed();
    lat.sort();
    println!(
        "creates: {} ok, {} failed in {:.2} s = {:.0} creates/s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        lat.len(),
        errors,
        took.as_secs_f64(),
        lat.len() as f64 / took.as_secs_f64(),
        percentile(&lat, 0.5).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
        lat.last().copied().unwrap_or_default().as_secs_f64() * 1e3
    );
    let mut last = start;
    for w in watcher_tasks {
        last = last.max(w.await?);
    }
    println!(
        "watch fan-out: {}/{} watchers saw all {} events; last one done {:.2} s after the first create",
        seen_all.load(Ordering::SeqCst),
        args.watchers,
        args.count,
        (last - start).as_secs_f64()
    );
    if let Some(pid) = pid {
        println!(
            "server RSS with {} Services: {:.1} MiB",
            args.count,
            rss_mib(pid).unwrap_or(0.0)
        );
    }
    Ok(())
}
