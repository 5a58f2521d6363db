//! API servers on etcd (a real 3-member cluster on loopback, started and stopped by each test): two
//! replicas share the state and never hand out one cluster IP or node port twice; a watch resumes on the
//! other replica with no gap and no duplicate; a dead replica leaves the other serving kubectl, the DNS
//! server and the controllers (given both addresses with `--server`); a dead etcd member loses no
//! acknowledged write.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use common::{eventually, ApiServer};
use etcd_testcluster::EtcdCluster;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::Client;

/// A svcplane subcommand in the background, killed when dropped.
struct Background(std::process::Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `svcplane ARGS` and, when `announce` is given, waits for the stderr line starting with it and
/// returns the rest of that line's first word.
fn background(args: &[&str], announce: Option<&str>) -> (Background, String) {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_svcplane"))
        .args(args)
        .env("SVCPLANE_LOG", "error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn svcplane");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    let prefix = announce.map(str::to_string);
    let args_name = args.first().copied().unwrap_or_default().to_string();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            match prefix.as_deref().and_then(|p| line.strip_prefix(p)) {
                Some(rest) => {
                    let _ = tx.send(
                        rest.split_whitespace()
                            .next()
                            .unwrap_or_default()
                            .to_string(),
                    );
                }
                None => eprintln!("[svcplane {}] {line}", args_name),
            }
        }
    });
    let found = match announce {
        Some(a) => rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("svcplane {args:?} did not print {a:?}")),
        None => String::new(),
    };
    (Background(child), found)
}

fn dig_at(addr: &str, name: &str) -> String {
    let (ip, port) = addr.rsplit_once(':').expect("ip:port");
    let out = std::process::Command::new("dig")
        .args([
            &format!("@{ip}"),
            "-p",
            port,
            "+short",
            "+time=1",
            "+tries=1",
            name,
        ])
        .output()
        .expect("run dig (bind9-dnsutils)");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

async fn start_etcd() -> EtcdCluster {
    tokio::task::spawn_blocking(|| EtcdCluster::start(3))
        .await
        .unwrap()
        .expect("start etcd (Debian's etcd-server; .ci/run installs it)")
}

/// Two API servers on one etcd and one data directory (so they share the CA and the admin token, and a
/// client of one is a client of the other).
fn replicas(etcd: &EtcdCluster, dir: &std::path::Path, extra: &[&str]) -> (ApiServer, ApiServer) {
    let servers = etcd.servers();
    let mut args = vec!["--etcd-servers", servers.as_str()];
    args.extend_from_slice(extra);
    let a = ApiServer::start_in(dir, &args);
    let b = ApiServer::start_in(dir, &args);
    (a, b)
}

async fn client_at(s: &ApiServer, url: &str) -> Client {
    let kc = Kubeconfig::read_from(s.kubeconfig()).unwrap();
    let mut cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    cfg.cluster_url = url.parse().unwrap();
    Client::try_from(cfg).unwrap()
}

fn node_port_svc(name: &str) -> Service {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "labels": {"suite": "etcd"}},
        "spec": {"type": "NodePort", "selector": {"app": name}, "ports": [{"port": 80}]},
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_never_hand_out_one_ip_or_port_twice() {
    let etcd = start_etcd().await;
    let tmp = tempfile::tempdir().unwrap();
    // Small ranges: 1,000 Services take most of them, so the replicas' picks collide often and every
    // collision must be caught by the store, not by luck.
    let (a, b) = replicas(
        &etcd,
        tmp.path(),
        &[
            "--service-cluster-ip-range",
            "10.96.0.0/22",
            "--service-node-port-range",
            "30000-31199",
        ],
    );
    let clients = [client_at(&a, &a.url).await, client_at(&a, &b.url).await];
    let n = 1000;
    let results: Vec<(String, Result<Service, String>)> = futures::stream::iter(0..n)
        .map(|i| {
            let api: Api<Service> = Api::namespaced(clients[i % 2].clone(), "default");
            async move {
                let name = format!("s{i}");
                let r = api
                    .create(&PostParams::default(), &node_port_svc(&name))
                    .await
                    .map_err(|e| e.to_string());
                (name, r)
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;

    let created: BTreeMap<String, Service> = results
        .iter()
        .filter_map(|(n, r)| r.as_ref().ok().map(|s| (n.clone(), s.clone())))
        .collect();
    let rejected: Vec<&(String, Result<Service, String>)> =
        results.iter().filter(|(_, r)| r.is_err()).collect();
    let retries: u64 = [&a, &b]
        .iter()
        .map(|s| {
            let text = s.kubectl_ok(&["--server", &s.url, "get", "--raw", "/metrics"]);
            text.lines()
                .find_map(|l| l.strip_prefix("svcplane_allocation_retries_total "))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .expect("retries metric")
        })
        .sum();
    eprintln!(
        "{} created, {} rejected, {retries} picks lost to the other replica and planned again",
        created.len(),
        rejected.len()
    );
    // A pick that lost a race is planned again, so with free values left nothing is refused.
    assert!(
        rejected.is_empty(),
        "rejected creates: {:?}",
        &rejected[..rejected.len().min(5)]
    );

    // What is stored (read through either replica) is exactly what was acknowledged, and no value is
    // held twice.
    for c in &clients {
        let api: Api<Service> = Api::namespaced(c.clone(), "default");
        let stored = api
            .list(&ListParams::default().labels("suite=etcd"))
            .await
            .unwrap();
        assert_eq!(stored.items.len(), created.len());
        let mut ips = BTreeSet::new();
        let mut ports = BTreeSet::new();
        for s in &stored.items {
            let name = s.metadata.name.clone().unwrap();
            let spec = s.spec.as_ref().unwrap();
            let acked = &created[&name];
            assert_eq!(spec.cluster_ip, acked.spec.as_ref().unwrap().cluster_ip);
            let ip = spec.cluster_ip.clone().unwrap();
            assert!(ips.insert(ip.clone()), "cluster IP {ip} held twice");
            let port = spec.ports.as_ref().unwrap()[0].node_port.unwrap();
            assert!(ports.insert(port), "node port {port} held twice");
        }
    }
    // Each replica's allocation records agree: one IPAddress per Service (and the `kubernetes` one).
    let out = a.kubectl_ok(&["get", "ipaddresses", "--no-headers"]);
    assert_eq!(out.lines().count(), created.len() + 1);
}

/// The next ADDED event of a watch: the Service's name and resourceVersion.
async fn next_added(
    w: &mut futures::stream::BoxStream<'_, kube::Result<WatchEvent<Service>>>,
    replica: &str,
) -> (String, i64) {
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(20), w.next())
            .await
            .unwrap_or_else(|_| panic!("watch on {replica} stalled"))
            .unwrap_or_else(|| panic!("watch on {replica} ended"))
            .unwrap();
        if let WatchEvent::Added(s) = ev {
            let rv = s.metadata.resource_version.unwrap().parse().unwrap();
            return (s.metadata.name.unwrap(), rv);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_watch_resumes_on_the_other_replica_and_kubectl_goes_on_when_one_dies() {
    let etcd = start_etcd().await;
    let tmp = tempfile::tempdir().unwrap();
    let (mut a, b) = replicas(&etcd, tmp.path(), &[]);
    let on_a: Api<Service> = Api::namespaced(client_at(&a, &a.url).await, "default");
    let on_b: Api<Service> = Api::namespaced(client_at(&a, &b.url).await, "default");
    // The DNS server and the controllers know both replicas, the one that will die first.
    let kubeconfig = a.kubeconfig().display().to_string();
    let both = format!("{},{}", a.url, b.url);
    let (_dns, dns_addr) = background(
        &[
            "dns",
            "--kubeconfig",
            &kubeconfig,
            "--server",
            &both,
            "--dns-listen",
            "127.0.0.1:0",
            "--health-bind-address",
            "127.0.0.1:0",
            "--ready-bind-address",
            "127.0.0.1:0",
            "--metrics-bind-address",
            "127.0.0.1:0",
        ],
        Some("svcplane DNS at "),
    );
    let (_controllers, _) = background(
        &[
            "controllers",
            "--kubeconfig",
            &kubeconfig,
            "--server",
            &both,
        ],
        None,
    );

    // A client writes through one replica and reads its write through the other at once.
    let first = on_a
        .create(&PostParams::default(), &node_port_svc("w0"))
        .await
        .unwrap();
    let got = on_b.get("w0").await.unwrap();
    assert_eq!(
        got.metadata.resource_version,
        first.metadata.resource_version
    );

    // Watch on A from the first write; writes go through B.
    let from = first.metadata.resource_version.clone().unwrap();
    let mut w = on_a
        .watch(&WatchParams::default().labels("suite=etcd"), &from)
        .await
        .unwrap()
        .boxed();
    let mut seen: Vec<(String, i64)> = Vec::new();
    let total = 60;
    let writer = {
        let on_b = on_b.clone();
        tokio::spawn(async move {
            for i in 1..=total {
                on_b.create(&PostParams::default(), &node_port_svc(&format!("w{i}")))
                    .await
                    .unwrap();
            }
        })
    };
    let mut last_rv = from.clone();
    while seen.len() < 20 {
        let (name, rv) = next_added(&mut w, "A").await;
        last_rv = rv.to_string();
        seen.push((name, rv));
    }
    // A dies; the watcher resumes on B from the last revision it saw.
    a.kill();
    drop(w);
    let mut w = on_b
        .watch(&WatchParams::default().labels("suite=etcd"), &last_rv)
        .await
        .unwrap()
        .boxed();
    while seen.len() < total {
        seen.push(next_added(&mut w, "B").await);
    }
    writer.await.unwrap();
    let names: Vec<&str> = seen.iter().map(|(n, _)| n.as_str()).collect();
    let expected: Vec<String> = (1..=total).map(|i| format!("w{i}")).collect();
    assert_eq!(
        names, expected,
        "gap, duplicate or reordering across replicas"
    );
    assert!(seen.windows(2).all(|p| p[0].1 < p[1].1));

    // The DNS server and the controllers moved to B: a Service and a ready pod created after A died
    // are answered and get their EndpointSlice.
    b.kubectl_ok(&[
        "--server",
        &b.url,
        "create",
        "service",
        "clusterip",
        "late",
        "--tcp=80:8080",
    ]);
    let late_ip = b.kubectl_ok(&[
        "--server",
        &b.url,
        "get",
        "svc",
        "late",
        "-o",
        "jsonpath={.spec.clusterIP}",
    ]);
    eventually(
        Duration::from_secs(30),
        "DNS answers for a Service made after A died",
        || (dig_at(&dns_addr, "late.default.svc.cluster.local") == late_ip).then_some(()),
    );
    b.kubectl_ok(&[
        "--server",
        &b.url,
        "run",
        "late-pod",
        "--image=x",
        "--labels=app=late",
    ]);
    common::svcplane_ok(&[
        "pod",
        "ready",
        "late-pod",
        "--ip",
        "10.244.0.9",
        "--kubeconfig",
        &kubeconfig,
        "--server",
        &both,
    ]);
    eventually(
        Duration::from_secs(30),
        "an EndpointSlice written after A died",
        || {
            let ips = b.kubectl_ok(&[
                "--server",
                &b.url,
                "get",
                "endpointslices",
                "-l",
                "kubernetes.io/service-name=late",
                "-o",
                "jsonpath={.items[*].endpoints[*].addresses[*]}",
            ]);
            (ips.trim() == "10.244.0.9").then_some(())
        },
    );

    // kubectl, pointed at the surviving replica, reads and writes on.
    let out = b.kubectl_ok(&["--server", &b.url, "get", "svc", "w60", "-o", "name"]);
    assert_eq!(out.trim(), "service/w60");
    b.kubectl_ok(&["--server", &b.url, "delete", "svc", "w1"]);
    let out = b.kubectl_ok(&[
        "--server",
        &b.url,
        "get",
        "svc",
        "-l",
        "suite=etcd",
        "--no-headers",
    ]);
    assert_eq!(out.lines().count(), total); // w0..w60 less w1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_etcd_member_killed_mid_load_loses_no_acknowledged_write() {
    let mut etcd = start_etcd().await;
    let tmp = tempfile::tempdir().unwrap();
    let servers = etcd.servers();
    let s = ApiServer::start_in(tmp.path(), &["--etcd-servers", &servers]);
    let api: Api<Service> = Api::namespaced(client_at(&s, &s.url).await, "default");
    let acked = Arc::new(std::sync::Mutex::new(BTreeSet::new()));
    let load = {
        let (api, acked) = (api.clone(), acked.clone());
        tokio::spawn(async move {
            let mut failures = 0;
            for i in 0..300 {
                let name = format!("m{i}");
                match api
                    .create(&PostParams::default(), &node_port_svc(&name))
                    .await
                {
                    Ok(_) => {
                        acked.lock().unwrap().insert(name);
                    }
                    Err(_) => failures += 1,
                }
            }
            failures
        })
    };
    eventually(Duration::from_secs(30), "100 creates acknowledged", || {
        (acked.lock().unwrap().len() >= 100).then_some(())
    });
    // Kill the member the API server most likely talks to (the first it was given).
    tokio::task::block_in_place(|| etcd.kill(0));
    let failures = load.await.unwrap();
    let acked = acked.lock().unwrap().clone();
    eprintln!(
        "{} acknowledged, {failures} failed while a member died",
        acked.len()
    );
    // Writes went on after the kill...
    assert!(
        acked.len() >= 250,
        "writes did not continue: {} acked",
        acked.len()
    );
    // ...and every acknowledged one is stored.
    let stored: BTreeSet<String> = api
        .list(&ListParams::default().labels("suite=etcd"))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|s| s.metadata.name)
        .collect();
    let lost: Vec<&String> = acked.difference(&stored).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
}

/// The ingress IP of every LoadBalancer Service labelled suite=lb (empty while pending).
fn lb_ips(s: &ApiServer, url: &str) -> BTreeMap<String, String> {
    let out = s.kubectl_ok(&[
        "--server",
        url,
        "get",
        "svc",
        "-l",
        "suite=lb",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name} {.status.loadBalancer.ingress[0].ip}{\"\\n\"}{end}",
    ]);
    out.lines()
        .filter_map(|l| {
            let (n, ip) = l.split_once(' ')?;
            Some((n.to_string(), ip.trim().to_string()))
        })
        .collect()
}

fn create_lbs(s: &ApiServer, url: &str, names: std::ops::Range<usize>) {
    let yaml: String = names
        .map(|i| {
            format!(
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: lb{i}\n  labels: {{suite: lb}}\nspec:\n  type: LoadBalancer\n  selector: {{app: lb{i}}}\n  ports: [{{port: 80}}]\n---\n"
            )
        })
        .collect();
    let out = s.kubectl_stdin(&["--server", url, "apply", "-f", "-"], &yaml);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Two LoadBalancer IPAM controllers, each talking to a different API replica: one leads; when it is
/// killed the other takes over its Lease, keeps every address already handed out, and hands out the
/// rest without a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lb_ipam_takeover_keeps_addresses_and_never_duplicates() {
    let etcd = start_etcd().await;
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = replicas(&etcd, tmp.path(), &[]);
    let kubeconfig = a.kubeconfig().display().to_string();
    let pool = "apiVersion: svcplane.io/v1alpha1\nkind: LoadBalancerIPPool\nmetadata:\n  name: lab\nspec:\n  cidrs: [\"192.0.2.10-192.0.2.59\"]\n";
    let out = a.kubectl_stdin(&["--server", &a.url, "apply", "-f", "-"], pool);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let a_first = format!("{},{}", a.url, b.url);
    let b_first = format!("{},{}", b.url, a.url);
    let (first, _) = background(
        &[
            "controllers",
            "--controllers=lb-ipam",
            "--kubeconfig",
            &kubeconfig,
            "--server",
            &a_first,
        ],
        None,
    );
    // The first controller holds the Lease before the second starts, so killing it forces a takeover.
    // The Lease's holder, or empty (the Lease may not exist yet).
    let holder = |s: &ApiServer, url: &str| {
        let out = s.kubectl(&[
            "--server",
            url,
            "-n",
            "kube-system",
            "get",
            "lease",
            "svcplane-lb-ipam-controller",
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let first_leader = eventually(
        Duration::from_secs(30),
        "the first controller leads",
        || Some(holder(&a, &a.url)).filter(|h| !h.is_empty()),
    );
    let (_second, _) = background(
        &[
            "controllers",
            "--controllers=lb-ipam",
            "--kubeconfig",
            &kubeconfig,
            "--server",
            &b_first,
        ],
        None,
    );
    create_lbs(&b, &b.url, 0..20);
    let before = eventually(Duration::from_secs(60), "20 addresses handed out", || {
        let ips = lb_ips(&a, &a.url);
        (ips.len() == 20 && ips.values().all(|ip| !ip.is_empty())).then_some(ips)
    });
    drop(first); // kill -9: its Lease runs out and the second controller takes over

    create_lbs(&a, &a.url, 20..40);
    let after = eventually(
        Duration::from_secs(90),
        "40 addresses after the takeover",
        || {
            let ips = lb_ips(&b, &b.url);
            (ips.len() == 40 && ips.values().all(|ip| !ip.is_empty())).then_some(ips)
        },
    );
    assert_ne!(holder(&b, &b.url), first_leader, "no takeover happened");
    for (name, ip) in &before {
        assert_eq!(
            &after[name], ip,
            "{name} changed address across the takeover"
        );
    }
    let distinct: BTreeSet<&String> = after.values().collect();
    assert_eq!(
        distinct.len(),
        40,
        "an address was handed out twice: {after:?}"
    );
}

/// kube-apiserver's etcd TLS flags: an API server on an etcd that requires client certificates.
#[test]
fn the_api_server_reaches_etcd_over_tls_with_the_etcd_flags() {
    let etcd = EtcdCluster::start_tls(3).expect("start etcd with TLS");
    let tls = etcd.client_tls().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (servers, ca, cert, key) = (
        etcd.servers(),
        tls.ca_file.display().to_string(),
        tls.cert_file.display().to_string(),
        tls.key_file.display().to_string(),
    );
    let s = ApiServer::start_in(
        tmp.path(),
        &[
            "--etcd-servers",
            &servers,
            "--etcd-cafile",
            &ca,
            "--etcd-certfile",
            &cert,
            "--etcd-keyfile",
            &key,
        ],
    );
    s.kubectl_ok(&[
        "create",
        "service",
        "clusterip",
        "over-tls",
        "--tcp=80:8080",
    ]);
    let ip = s.kubectl_ok(&["get", "svc", "over-tls", "-o", "jsonpath={.spec.clusterIP}"]);
    // Allocated from the default range, 10.96.0.0/12.
    let ip: std::net::Ipv4Addr = ip.parse().expect("an IPv4 cluster IP");
    let [a, b, ..] = ip.octets();
    assert!(a == 10 && (96..=111).contains(&b), "{ip}");
}
