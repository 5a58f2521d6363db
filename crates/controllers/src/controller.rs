//! The EndpointSlice controller at runtime: watches feed the cache, changes queue the Services they touch,
//! and workers (only on the leader) turn each queued Service into the fewest slice and Endpoints writes.

use std::collections::HashSet;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use k8s_openapi::api::core::v1::{Endpoints, Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{DeleteParams, PostParams};
use kube::runtime::watcher;
use kube::runtime::WatchStreamExt;
use kube::{Api, ResourceExt};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::cache::{Cache, Key, Touch};
use crate::events::Recorder;
use crate::feed::{feed, key_of, wait_all, Fed};
use crate::leader::{default_identity, lead_terms, LeaseOptions};
use crate::metrics::METRICS;
use crate::model::{node_zone, PodInfo, ServiceInfo};
use crate::queue::WorkQueue;
use crate::slices::{self, CONTROLLER_NAME, LABEL_MANAGED_BY};
use crate::slimpod::SlimPod;
use crate::{endpoints, Error};

/// Retries of a failing Service before it is dropped until its next change (upstream: 15).
const MAX_RETRIES: u32 = 15;
/// Endpoints objects kept by leader election of old components; never ours to delete.
const LEADER_ANNOTATION: &str = "control-plane.alpha.kubernetes.io/leader";

#[derive(Clone, Debug)]
pub struct EndpointSliceOptions {
    /// `--max-endpoints-per-slice` (upstream default 100, at most 1000).
    pub max_endpoints_per_slice: usize,
    /// `--concurrent-service-endpoint-syncs`: Services synced in parallel.
    pub workers: usize,
    /// `None` runs without election (a single replica).
    pub leader_election: Option<LeaseOptions>,
}

impl Default for EndpointSliceOptions {
    fn default() -> Self {
        Self {
            max_endpoints_per_slice: slices::DEFAULT_MAX_ENDPOINTS_PER_SLICE,
            workers: 5,
            leader_election: Some(LeaseOptions::default()),
        }
    }
}

struct Shared {
    client: kube::Client,
    cache: Mutex<Cache>,
    queue: Arc<WorkQueue<Key>>,
    max_per_slice: usize,
    recorder: Recorder,
    /// Services with a port-resolution warning already recorded for their current state.
    warned_ports: Mutex<HashSet<Key>>,
    /// Desired endpoint counts per Service, for the gauge.
    desired: Mutex<std::collections::HashMap<Key, usize>>,
}

impl Fed for Shared {
    type Cache = Cache;
    fn lock_cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache()
    }
}

impl Shared {
    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn enqueue(&self, keys: impl IntoIterator<Item = Key>) {
        for k in keys {
            self.queue.add(k);
        }
    }
}

fn spawn_watches(shared: &Arc<Shared>, tasks: &mut JoinSet<()>) -> Vec<watch::Receiver<bool>> {
    let client = shared.client.clone();
    let mut ready = Vec::new();
    let mut chan = || {
        let (tx, rx) = watch::channel(false);
        ready.push(rx);
        tx
    };
    // Each list page is held whole, decoded into full objects, until the watcher hands it over: small pages
    // keep that peak (which the allocator keeps as resident memory) far below the cache itself.
    let cfg = watcher::Config::default().page_size(500);

    let tx = chan();
    tasks.spawn(feed(
        watcher::watcher(Api::<Service>::all(client.clone()), cfg.clone()).default_backoff(),
        Arc::clone(shared),
        "services",
        |s, svc: Service| {
            let Some(info) = ServiceInfo::from_service(&svc) else {
                return;
            };
            let key = (info.namespace.clone(), info.name.clone());
            if s.cache().put_service(info) {
                s.enqueue([key]);
            }
        },
        |s, k| {
            s.cache().remove_service(k);
            s.enqueue([k.clone()]);
        },
        Cache::service_keys,
        tx,
    ));

    let tx = chan();
    tasks.spawn(feed(
        watcher::watcher(Api::<SlimPod>::all(client.clone()), cfg.clone()).default_backoff(),
        Arc::clone(shared),
        "pods",
        |s, pod: SlimPod| {
            if let Some(info) = PodInfo::from_pod(pod) {
                let hit = s.cache().put_pod(info);
                s.enqueue(hit);
            }
        },
        |s, k| {
            let hit = s.cache().remove_pod(k);
            s.enqueue(hit);
        },
        Cache::pod_keys,
        tx,
    ));

    let tx = chan();
    tasks.spawn(feed(
        watcher::watcher(Api::<Node>::all(client.clone()), cfg.clone()).default_backoff(),
        Arc::clone(shared),
        "nodes",
        |s, node: Node| {
            let hit = s.cache().put_node(&node.name_any(), node_zone(&node));
            s.enqueue(hit);
        },
        |s, k| {
            let hit = s.cache().remove_node(&k.1);
            s.enqueue(hit);
        },
        |c: &Cache| {
            c.node_names()
                .into_iter()
                .map(|n| (String::new(), n))
                .collect()
        },
        tx,
    ));

    let tx = chan();
    let managed = format!("{LABEL_MANAGED_BY}={CONTROLLER_NAME}");
    tasks.spawn(feed(
        watcher::watcher(
            Api::<EndpointSlice>::all(client.clone()),
            cfg.clone().labels(&managed),
        )
        .default_backoff(),
        Arc::clone(shared),
        "endpointslices",
        |s, slice: EndpointSlice| {
            let owner = {
                let mut c = s.cache();
                let owner = c.observe_slice(slice);
                METRICS.set_slices(c.slice_count());
                owner
            };
            s.enqueue(owner);
        },
        |s, k| {
            let owner = {
                let mut c = s.cache();
                let owner = c.observe_slice_deleted(&k.0, &k.1);
                METRICS.set_slices(c.slice_count());
                owner
            };
            s.enqueue(owner);
        },
        Cache::slice_names,
        tx,
    ));

    let tx = chan();
    tasks.spawn(feed(
        watcher::watcher(Api::<Endpoints>::all(client), cfg).default_backoff(),
        Arc::clone(shared),
        "endpoints",
        |s, ep: Endpoints| {
            let key = key_of(&ep);
            if s.cache().observe_endpoints(ep) {
                s.enqueue([key]);
            }
        },
        |s, k| {
            if s.cache().observe_endpoints_deleted(k) {
                s.enqueue([k.clone()]);
            }
        },
        Cache::endpoints_keys,
        tx,
    ));
    ready
}

fn api_error(e: kube::Error) -> Error {
    Error::Kube(e)
}

fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.is_not_found())
}

/// One Service: compute, write what differs, record what was written (also in `written`, to tell the
/// watch's echoes of these writes from other changes).
async fn sync(shared: &Shared, key: &Key, written: &mut Vec<Touch>) -> Result<(), Error> {
    let snap = shared.cache().snapshot(key);
    let client = &shared.client;
    let Some(svc) = snap.service else {
        // Slices go with the Service through their owner reference; the Endpoints has none.
        let gone = shared
            .desired
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
        if let Some(n) = gone {
            METRICS.add_endpoints_desired(-(n as i64));
        }
        shared
            .warned_ports
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
        let Some(ep) = snap.endpoints else {
            return Ok(());
        };
        if ep
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(LEADER_ANNOTATION))
        {
            return Ok(());
        }
        let api: Api<Endpoints> = Api::namespaced(client.clone(), &key.0);
        match api.delete(&key.1, &DeleteParams::default()).await {
            Ok(_) => METRICS.endpoints_write(),
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(api_error(e)),
        }
        written.push(Touch::endpoints(key.1.clone(), None));
        shared.cache().forget_endpoints(key);
        return Ok(());
    };
    if svc.external_name || svc.selector.is_none() {
        // Nothing of ours: user-written slices and Endpoints serve these Services.
        return Ok(());
    }
    let pods: Vec<&PodInfo> = snap.pods.iter().map(|p| p.as_ref()).collect();
    let plan = slices::reconcile(&svc, &pods, &snap.nodes, &snap.slices, shared.max_per_slice);
    let ep_plan = endpoints::plan_current(&svc, &pods, snap.endpoints.as_ref());

    {
        let mut d = shared.desired.lock().unwrap_or_else(|e| e.into_inner());
        let old = d.insert(key.clone(), plan.endpoints_desired).unwrap_or(0);
        METRICS.add_endpoints_desired(plan.endpoints_desired as i64 - old as i64);
    }

    let slice_api: Api<EndpointSlice> = Api::namespaced(client.clone(), &svc.namespace);
    let pp = PostParams::default();
    let result: Result<(), Error> = async {
        for s in &plan.create {
            let created = slice_api.create(&pp, s).await.map_err(api_error)?;
            METRICS.slice_change("create");
            written.push(Touch::of_slice(&created));
            shared.cache().store_slice(created);
        }
        for s in &plan.update {
            let name = s.metadata.name.clone().unwrap_or_default();
            let updated = slice_api.replace(&name, &pp, s).await.map_err(api_error)?;
            METRICS.slice_change("update");
            written.push(Touch::of_slice(&updated));
            shared.cache().store_slice(updated);
        }
        for s in &plan.delete {
            let name = s.metadata.name.clone().unwrap_or_default();
            match slice_api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => METRICS.slice_change("delete"),
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(api_error(e)),
            }
            written.push(Touch::slice(name.clone(), None));
            shared.cache().forget_slice(&svc.namespace, &name);
        }
        Ok(())
    }
    .await;
    if plan.writes() > 0 {
        METRICS.set_slices(shared.cache().slice_count());
    }

    let ep_result: Result<(), Error> = async {
        let Some(ep) = ep_plan else {
            return Ok(());
        };
        let api: Api<Endpoints> = Api::namespaced(client.clone(), &svc.namespace);
        let written_ep = if snap.endpoints.is_some() {
            api.replace(&svc.name, &pp, &ep).await
        } else {
            api.create(&pp, &ep).await
        }
        .map_err(api_error)?;
        METRICS.endpoints_write();
        written.push(Touch::endpoints(
            svc.name.clone(),
            written_ep.metadata.resource_version.clone(),
        ));
        shared.cache().store_endpoints(written_ep);
        Ok(())
    }
    .await;

    // Port names no pod defines: warn once per occurrence, again only after it was fixed and came back.
    let newly_unresolved = {
        let mut w = shared
            .warned_ports
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if plan.unresolved_ports.is_empty() {
            w.remove(key);
            false
        } else {
            w.insert(key.clone())
        }
    };
    if newly_unresolved {
        for msg in &plan.unresolved_ports {
            shared
                .recorder
                .warn(&svc, "FailedToResolveTargetPort", msg)
                .await;
        }
    }

    let result = result.and(ep_result).and_then(|()| {
        if plan.missing_nodes.is_empty() {
            Ok(())
        } else {
            Err(Error::Sync(plan.missing_nodes.join("; ")))
        }
    });
    if let Err(e) = &result {
        shared
            .recorder
            .warn(
                &svc,
                "FailedToUpdateEndpointSlices",
                &format!(
                    "Error updating Endpoint Slices for Service {}/{}: {e}",
                    svc.namespace, svc.name
                ),
            )
            .await;
    }
    result
}

async fn worker(shared: Arc<Shared>) {
    while let Some(key) = shared.queue.get().await {
        let start = Instant::now();
        shared.cache().begin_sync(&key);
        let mut written = Vec::new();
        let res = sync(&shared, &key, &mut written).await;
        if shared.cache().end_sync(&key, &written) {
            // Marked dirty while in progress: synced again once `done`.
            shared.queue.add(key.clone());
        }
        METRICS.sync(res.is_ok(), start.elapsed());
        match res {
            Ok(()) => shared.queue.forget(&key),
            Err(e) => {
                if shared.queue.failures(&key) < MAX_RETRIES {
                    tracing::info!(service = %format!("{}/{}", key.0, key.1), error = %e, "error syncing endpoint slices for service, retrying");
                    shared.queue.add_rate_limited(key.clone());
                } else {
                    tracing::warn!(service = %format!("{}/{}", key.0, key.1), error = %e, "retry budget exceeded, dropping service out of the queue");
                    shared.queue.forget(&key);
                }
            }
        }
        shared.queue.done(&key);
    }
}

/// Runs the EndpointSlice controller (and the v1 Endpoints it keeps in step) until `shutdown` completes.
/// Every replica keeps its caches warm; only the lease holder runs workers and writes.
pub async fn run(
    client: kube::Client,
    opts: EndpointSliceOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let identity = opts
        .leader_election
        .as_ref()
        .map(|l| l.identity.clone())
        .unwrap_or_else(default_identity);
    let shared = Arc::new(Shared {
        recorder: Recorder::new(client.clone(), identity),
        client: client.clone(),
        cache: Mutex::new(Cache::default()),
        queue: WorkQueue::new(),
        max_per_slice: opts.max_endpoints_per_slice.clamp(1, 1000),
        warned_ports: Mutex::new(HashSet::new()),
        desired: Mutex::new(Default::default()),
    });
    let mut watches = JoinSet::new();
    let mut ready = spawn_watches(&shared, &mut watches);
    let mut shutdown = std::pin::pin!(shutdown);

    tokio::select! {
        _ = wait_all(&mut ready) => {}
        _ = &mut shutdown => {
            watches.abort_all();
            return Ok(());
        }
    }
    {
        let c = shared.cache();
        tracing::info!(
            services = c.service_count(),
            slices = c.slice_count(),
            "endpointslice controller caches synced"
        );
    }

    lead_terms(
        &client,
        opts.leader_election.clone(),
        shutdown.as_mut(),
        "endpointslice",
        |workers| {
            METRICS.set_leader(true);
            // A new leader (or a restart) looks at every Service, and at Endpoints left behind by deleted
            // ones.
            {
                let c = shared.cache();
                let keys: Vec<Key> = c
                    .service_keys()
                    .into_iter()
                    .chain(c.endpoints_keys())
                    .collect();
                drop(c);
                shared.enqueue(dedup(keys));
            }
            for _ in 0..opts.workers.max(1) {
                workers.spawn(worker(Arc::clone(&shared)));
            }
        },
        || {
            shared.queue.requeue_in_flight();
            METRICS.set_leader(false);
        },
    )
    .await;
    shared.queue.shut_down();
    watches.abort_all();
    Ok(())
}

fn dedup<T: Eq + Hash + Clone>(v: Vec<T>) -> Vec<T> {
    let mut seen = HashSet::new();
    v.into_iter().filter(|k| seen.insert(k.clone())).collect()
}
