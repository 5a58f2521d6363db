//! Test harness: svcplane's real API server in-process on a free port, a kube client to it, and the
//! EndpointSlice controller running as an API client beside it.

#![allow(dead_code)]

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use controllers::{EndpointSliceOptions, LeaseOptions};
use k8s_openapi::api::core::v1::{Endpoints, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::Api;
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct Env {
    pub dir: tempfile::TempDir,
    pub running: apiserver::Running,
    pub client: kube::Client,
}

pub async fn env() -> Env {
    env_with(|_| {}).await
}

pub async fn env_with(tweak: impl FnOnce(&mut apiserver::Config)) -> Env {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TEST_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = apiserver::Config {
        secure_port: 0,
        ..apiserver::Config::new(dir.path().to_path_buf())
    };
    tweak(&mut cfg);
    let running = apiserver::start(cfg).await.unwrap();
    let client = client_for(&running.kubeconfig).await;
    Env {
        dir,
        running,
        client,
    }
}

pub async fn client_for(kubeconfig: &PathBuf) -> kube::Client {
    let kc = Kubeconfig::read_from(kubeconfig).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    kube::Client::try_from(cfg).unwrap()
}

/// A running controller; dropping the stop sender (or calling `stop`) shuts it down.
pub struct Controller {
    stop: Option<oneshot::Sender<()>>,
    pub task: JoinHandle<Result<(), controllers::Error>>,
}

impl Controller {
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        tokio::time::timeout(Duration::from_secs(20), &mut self.task)
            .await
            .expect("controller did not stop")
            .unwrap()
            .unwrap();
    }

    /// Kills the controller without a clean shutdown (no lease release), as a crash would.
    pub fn kill(self) {
        self.task.abort();
    }
}

pub fn opts() -> EndpointSliceOptions {
    EndpointSliceOptions {
        leader_election: None,
        ..Default::default()
    }
}

/// Leader election with short timings so tests see takeovers in seconds.
pub fn fast_lease(identity: &str) -> LeaseOptions {
    LeaseOptions {
        identity: identity.into(),
        lease_duration: Duration::from_secs(3),
        renew_deadline: Duration::from_secs(2),
        retry_period: Duration::from_millis(300),
        ..Default::default()
    }
}

pub fn start(client: &kube::Client, opts: EndpointSliceOptions) -> Controller {
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(controllers::run(client.clone(), opts, async move {
        let _ = rx.await;
    }));
    Controller {
        stop: Some(tx),
        task,
    }
}

/// Polls `f` until it returns `Some`, failing the test after `secs` seconds.
pub async fn eventually<T, F, Fut>(what: &str, secs: u64, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn create<K>(client: &kube::Client, ns: Option<&str>, v: Value) -> K
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + k8s_openapi::serde::de::DeserializeOwned
        + k8s_openapi::serde::Serialize
        + std::fmt::Debug,
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
{
    let obj: K = serde_json::from_value(v).unwrap();
    let api: Api<K> = Api::namespaced(client.clone(), ns.unwrap_or("default"));
    api.create(&PostParams::default(), &obj).await.unwrap()
}

pub async fn node(client: &kube::Client, name: &str, zone: Option<&str>) {
    let mut labels = serde_json::Map::new();
    if let Some(z) = zone {
        labels.insert("topology.kubernetes.io/zone".into(), json!(z));
    }
    let n: Node = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": labels},
    }))
    .unwrap();
    Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &n)
        .await
        .unwrap();
}

/// A pod bound to `node` with one container exposing the named ports.
pub async fn pod(
    client: &kube::Client,
    name: &str,
    labels: Value,
    node: &str,
    ports: &[(&str, i32)],
) -> Pod {
    let ports: Vec<Value> = ports
        .iter()
        .map(|(n, p)| json!({"name": n, "containerPort": p}))
        .collect();
    create(
        client,
        None,
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels},
            "spec": {"nodeName": node, "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10", "ports": ports}]},
        }),
    )
    .await
}

pub async fn service(client: &kube::Client, spec: Value) -> Service {
    create(client, None, spec).await
}

pub async fn slices(client: &kube::Client, svc: &str) -> Vec<EndpointSlice> {
    let api: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    let mut items = api
        .list(&ListParams::default().labels(&format!("kubernetes.io/service-name={svc}")))
        .await
        .unwrap()
        .items;
    items.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    items
}

pub async fn endpoints(client: &kube::Client, svc: &str) -> Option<Endpoints> {
    Api::<Endpoints>::namespaced(client.clone(), "default")
        .get_opt(svc)
        .await
        .unwrap()
}

/// All endpoints of the Service's slices, as (address, ready, serving, terminating).
pub async fn endpoint_states(client: &kube::Client, svc: &str) -> Vec<(String, bool, bool, bool)> {
    let mut out = Vec::new();
    for s in slices(client, svc).await {
        for e in s.endpoints {
            let c = e.conditions.unwrap_or_default();
            for a in e.addresses {
                out.push((
                    a,
                    c.ready.unwrap_or(false),
                    c.serving.unwrap_or(false),
                    c.terminating.unwrap_or(false),
                ));
            }
        }
    }
    out.sort();
    out
}
