//! Scale benchmark of the EndpointSlice controller against svcplane's real API server (in this process).
//!
//! SERVICES Services × PODS pods each are created and marked ready first; then the controller starts in a
//! child process (so its memory is its own) and we measure the time to all slices and Endpoints written,
//! the API writes it issued, its resident memory, and the latency from one pod's readiness change to its
//! slice update.
//!
//! `SERVICES=10000 PODS=10 WORKERS=16 cargo bench -p controllers --bench endpointslice_scale`

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{ListParams, PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::Api;
use serde_json::json;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn client(kubeconfig: &std::path::Path) -> kube::Client {
    let kc = Kubeconfig::read_from(kubeconfig).expect("kubeconfig");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("config");
    kube::Client::try_from(cfg).expect("client")
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Child mode: run the controller, report when `want` slices and Endpoints have been written.
async fn controller_child(kubeconfig: String, want: u64, workers: usize) {
    let c = client(std::path::Path::new(&kubeconfig)).await;
    let start = Instant::now();
    let opts = controllers::EndpointSliceOptions {
        workers,
        leader_election: None,
        ..Default::default()
    };
    // Exit with the parent: it holds our stdin open until it is done.
    std::thread::spawn(|| {
        let mut sink = String::new();
        let _ = std::io::stdin().read_line(&mut sink);
        std::process::exit(0);
    });
    tokio::spawn(async move {
        let mut last_report = Instant::now();
        loop {
            let n = controllers::counters();
            if last_report.elapsed() > Duration::from_secs(1) {
                eprintln!("controller progress: {n:?}");
                last_report = Instant::now();
            }
            if n.slice_creates + n.slice_updates >= want && n.endpoints_writes >= want {
                println!(
                    "CONVERGED {} {} {}",
                    start.elapsed().as_secs_f64(),
                    n.writes(),
                    rss_kib(std::process::id())
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let _ = controllers::run(c, opts, std::future::pending()).await;
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--controller-child") {
        let kubeconfig = args[i + 1].clone();
        let want: u64 = args[i + 2].parse().expect("want");
        let workers: usize = args[i + 3].parse().expect("workers");
        rt.block_on(controller_child(kubeconfig, want, workers));
        return;
    }
    if args.iter().any(|a| a == "--list") {
        println!("endpointslice_scale: bench");
        return;
    }
    rt.block_on(bench());
}

async fn bench() {
    let services = env_usize("SERVICES", 1000);
    let pods_per = env_usize("PODS", 10);
    let workers = env_usize("WORKERS", 16);
    let dir = tempfile::tempdir().expect("tempdir");
    let running = apiserver::start(apiserver::Config {
        secure_port: 0,
        ..apiserver::Config::new(dir.path().to_path_buf())
    })
    .await
    .expect("apiserver");
    let c = client(&running.kubeconfig).await;

    let node: Node = serde_json::from_value(json!({"metadata": {"name": "node-a",
        "labels": {"topology.kubernetes.io/zone": "zone-a"}}}))
    .expect("node");
    Api::<Node>::all(c.clone())
        .create(&PostParams::default(), &node)
        .await
        .expect("create node");

    let t = Instant::now();
    let svcs: Api<Service> = Api::namespaced(c.clone(), "default");
    futures::stream::iter(0..services)
        .map(|i| {
            let svcs = svcs.clone();
            async move {
                let s: Service = serde_json::from_value(json!({"metadata": {"name": format!("svc-{i}")},
                    "spec": {"selector": {"app": format!("app-{i}")}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}))?;
                svcs.create(&PostParams::default(), &s).await.map_err(anyhow_ish)?;
                Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
            }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await
        .expect("services");
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    let c2 = Arc::new(c.clone());
    futures::stream::iter(0..services * pods_per)
        .map(|n| {
            let pods = pods.clone();
            let c = Arc::clone(&c2);
            async move {
                let (i, j) = (n / pods_per, n % pods_per);
                let name = format!("svc-{i}-{j}");
                let p: Pod = serde_json::from_value(json!({"metadata": {"name": name, "labels": {"app": format!("app-{i}")}},
                    "spec": {"nodeName": "node-a", "containers": [{"name": "c", "image": "pause"}]}}))?;
                pods.create(&PostParams::default(), &p).await.map_err(anyhow_ish)?;
                let ip = format!("10.{}.{}.{}", 64 + n / 65536, (n / 256) % 256, n % 256);
                controllers::set_pod_ready(&c, "default", &name, true, Some(&ip))
                    .await
                    .map_err(|e| e.to_string())?;
                Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
            }
        })
        .buffer_unordered(64)
        .try_collect::<Vec<_>>()
        .await
        .expect("pods");
    eprintln!(
        "setup: {services} services, {} ready pods in {:.1}s",
        services * pods_per,
        t.elapsed().as_secs_f64()
    );

    // The controller, in its own process, started after the last pod became ready.
    let exe = std::env::current_exe().expect("exe");
    let started = Instant::now();
    // BENCH_CONTROLLER_WRAPPER (e.g. "heaptrack -o /tmp/ctl") runs the controller under a profiler.
    let wrapper: Vec<String> = std::env::var("BENCH_CONTROLLER_WRAPPER")
        .map(|w| w.split_whitespace().map(String::from).collect())
        .unwrap_or_default();
    let mut cmd = match wrapper.split_first() {
        Some((prog, args)) => {
            let mut c = Command::new(prog);
            c.args(args).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    let mut child = cmd
        .arg("--controller-child")
        .arg(&running.kubeconfig)
        .arg(services.to_string())
        .arg(workers.to_string())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn controller");
    let stdout = child.stdout.take().expect("stdout");
    let line = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find(|l| l.starts_with("CONVERGED"))
    })
    .await
    .expect("join");
    let Some(line) = line else {
        let _ = child.kill();
        panic!("controller exited before converging");
    };
    let f: Vec<&str> = line.split_whitespace().collect();
    let wall = started.elapsed().as_secs_f64();
    println!(
        "all {services} slices + Endpoints written: {}s after controller start (incl. initial list; {wall:.2}s wall incl. process start)",
        f[1]
    );
    println!(
        "API writes: {} (slices + Endpoints objects = {})",
        f[2],
        2 * services
    );
    println!(
        "controller RSS at convergence: {:.1} MiB",
        f[3].parse::<f64>().unwrap_or(0.0) / 1024.0
    );
    let listed = Api::<EndpointSlice>::namespaced(c.clone(), "default")
        .list(
            &ListParams::default()
                .labels("endpointslice.kubernetes.io/managed-by=endpointslice-controller.k8s.io"),
        )
        .await
        .expect("list slices")
        .items;
    let full = listed
        .iter()
        .filter(|s| s.endpoints.len() == pods_per)
        .count();
    println!(
        "slices listed: {} ({} with all {pods_per} endpoints)",
        listed.len(),
        full
    );

    // One pod's readiness flips → its slice changes; measured through a watch of that slice.
    let slices: Api<EndpointSlice> = Api::namespaced(c.clone(), "default");
    let mut lat = Vec::new();
    let rounds = 20.min(services);
    let mut state: std::collections::HashMap<usize, bool> = std::collections::HashMap::new();
    for r in 0..rounds {
        let i = (r * 7919) % services;
        let name = format!("svc-{i}-0");
        let rv = slices
            .list(&ListParams::default().labels(&format!("kubernetes.io/service-name=svc-{i}")))
            .await
            .expect("list")
            .metadata
            .resource_version
            .unwrap_or_default();
        let mut stream = slices
            .watch(
                &WatchParams::default().labels(&format!("kubernetes.io/service-name=svc-{i}")),
                &rv,
            )
            .await
            .expect("watch")
            .boxed();
        // Every pod starts ready; each change flips the pod's current state.
        let ready = !state.get(&i).copied().unwrap_or(true);
        state.insert(i, ready);
        let t = Instant::now();
        controllers::set_pod_ready(&c, "default", &name, ready, None)
            .await
            .expect("flip");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ev = tokio::time::timeout_at(deadline.into(), stream.next()).await;
            match ev {
                Ok(Some(Ok(WatchEvent::Modified(s)))) => {
                    let hit = s.endpoints.iter().any(|e| {
                        e.target_ref.as_ref().and_then(|t| t.name.as_deref()) == Some(name.as_str())
                            && e.conditions.as_ref().and_then(|c| c.ready) == Some(ready)
                    });
                    if hit {
                        lat.push(t.elapsed());
                        break;
                    }
                }
                Ok(Some(other)) => {
                    if std::env::var("BENCH_DEBUG").is_ok() {
                        eprintln!("watch event: {other:?}");
                    }
                }
                _ => {
                    let now = slices
                        .list(
                            &ListParams::default()
                                .labels(&format!("kubernetes.io/service-name=svc-{i}")),
                        )
                        .await
                        .map(|l| {
                            l.items
                                .iter()
                                .flat_map(|s| s.endpoints.iter())
                                .filter(|e| {
                                    e.target_ref.as_ref().and_then(|t| t.name.as_deref())
                                        == Some(name.as_str())
                                })
                                .map(|e| format!("{:?}", e.conditions))
                                .collect::<Vec<_>>()
                        });
                    panic!("no slice update for {name} within 10s; slice now says {now:?}")
                }
            }
        }
    }
    lat.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "readiness change → slice update ({rounds} changes, {services} services): median {:.1} ms, max {:.1} ms (includes the pod status write)",
        ms(lat[lat.len() / 2]),
        ms(lat[lat.len() - 1])
    );
    println!(
        "controller RSS at end: {:.1} MiB",
        rss_kib(child.id()) as f64 / 1024.0
    );
    let _ = child.kill();
    let _ = child.wait();
}

fn anyhow_ish(e: kube::Error) -> Box<dyn std::error::Error + Send + Sync> {
    Box::new(e)
}
