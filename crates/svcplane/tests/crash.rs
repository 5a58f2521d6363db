//! kill -9 of the API server at random moments during a stream of Service creates: after each restart
//! every acknowledged Service is present with the allocation it was acknowledged with, no cluster IP or
//! node port is held twice, and no allocation record is left without its Service.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::ApiServer;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};

async fn client(s: &ApiServer) -> kube::Client {
    let kc = Kubeconfig::read_from(s.kubeconfig()).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    kube::Client::try_from(cfg).unwrap()
}

/// name → (cluster IP, node port) as acknowledged to the client.
type Acked = Arc<Mutex<BTreeMap<String, (String, i32)>>>;

fn jitter_ms(max: u64) -> u64 {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    100 + n % max
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_creates_survive_kill_9_without_leaks_or_duplicates() {
    let tmp = tempfile::tempdir().unwrap();
    let acked: Acked = Arc::default();
    let mut seq = 0usize;
    for round in 0..5 {
        let mut s = ApiServer::start_in(tmp.path(), &[]);
        let api: Api<Service> = Api::namespaced(client(&s).await, "default");
        // Check the state the previous crash left.
        verify(&s, &api, &acked).await;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut writers = Vec::new();
        for w in 0..4 {
            let (api, acked, stop) = (api.clone(), acked.clone(), stop.clone());
            let base = seq + w * 100_000;
            writers.push(tokio::spawn(async move {
                // Bounded: at most 2,000 creates per writer per round.
                for i in 0..2_000 {
                    if stop.load(std::sync::atomic::Ordering::SeqCst) {
                        break;
                    }
                    let name = format!("crash-{round}-{}", base + i);
                    let svc: Service = serde_json::from_value(serde_json::json!({
                        "metadata": {"name": name},
                        "spec": {"type": "NodePort", "ports": [{"port": 80}]},
                    }))
                    .unwrap();
                    match api.create(&PostParams::default(), &svc).await {
                        Ok(created) => {
                            let spec = created.spec.unwrap_or_default();
                            let ip = spec.cluster_ip.unwrap_or_default();
                            let np = spec.ports.unwrap_or_default()[0].node_port.unwrap_or(0);
                            acked.lock().unwrap().insert(name, (ip, np));
                        }
                        Err(_) => break, // the server died under us
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(jitter_ms(700))).await;
        s.kill();
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for w in writers {
            let _ = w.await;
        }
        seq += 1_000_000;
    }
    let s = ApiServer::start_in(tmp.path(), &[]);
    let api: Api<Service> = Api::namespaced(client(&s).await, "default");
    verify(&s, &api, &acked).await;
    assert!(
        acked.lock().unwrap().len() > 20,
        "too few creates acknowledged to mean anything"
    );
}

async fn verify(s: &ApiServer, api: &Api<Service>, acked: &Acked) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let list = loop {
        match api.list(&ListParams::default()).await {
            Ok(l) => break l,
            Err(e) if Instant::now() < deadline => {
                eprintln!("list after restart: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("list: {e}"),
        }
    };
    let mut stored: BTreeMap<String, (String, i32)> = BTreeMap::new();
    let mut ips = BTreeSet::new();
    let mut ports = BTreeSet::new();
    for svc in list.items {
        let name = svc.metadata.name.unwrap_or_default();
        let spec = svc.spec.unwrap_or_default();
        let ip = spec.cluster_ip.unwrap_or_default();
        assert!(ips.insert(ip.clone()), "cluster IP {ip} held twice");
        let np = spec
            .ports
            .unwrap_or_default()
            .first()
            .and_then(|p| p.node_port)
            .unwrap_or(0);
        if np != 0 {
            assert!(ports.insert(np), "node port {np} held twice");
        }
        stored.insert(name, (ip, np));
    }
    for (name, alloc) in acked.lock().unwrap().iter() {
        assert_eq!(
            stored.get(name),
            Some(alloc),
            "acknowledged Service {name} lost or changed"
        );
    }
    // Allocation records are exactly the Services' cluster IPs: nothing leaked.
    let recorded: BTreeSet<String> = s
        .kubectl_ok(&[
            "get",
            "ipaddresses",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ])
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_eq!(
        recorded, ips,
        "IPAddress records differ from the Services' cluster IPs"
    );
}
