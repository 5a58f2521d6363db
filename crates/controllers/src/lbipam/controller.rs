//! The LoadBalancer IPAM controller at runtime: watches of Services, Namespaces and LoadBalancerIPPools
//! feed a cache on every replica; the lease holder rebuilds the allocation table from the Services'
//! statuses, then workers turn each queued Service into at most one status write and one Event, and a
//! background pass keeps the pools' status (and the usage metrics) up to date.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::runtime::WatchStreamExt;
use kube::{Api, ResourceExt};
use serde_json::{json, Value};
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;

use super::alloc::{Allocator, Key, Outcome};
use super::metrics::METRICS;
use super::model::{Family, Pool, SvcInfo};
use super::LbIpamOptions;
use crate::events::{Involved, Recorder};
use crate::feed::{feed, wait_all, Fed};
use crate::leader::{default_identity, lead_terms};
use crate::queue::WorkQueue;
use crate::Error;

/// `source.component` of our Events (MetalLB's controller says `metallb-controller`).
pub const COMPONENT: &str = "svcplane-lb-ipam";
/// Name of the pool `--loadbalancer-ip-pool` creates or updates.
pub const DEFAULT_POOL: &str = "default";
/// Quiet time before a pass over the pools' status: a burst of allocations makes one write per pool.
const POOL_STATUS_DEBOUNCE: Duration = Duration::from_millis(200);
const MAX_RETRIES: u32 = 15;

pub fn pool_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("svcplane.io", "v1alpha1", "LoadBalancerIPPool"),
        "loadbalancerippools",
    )
}

struct PoolEntry {
    /// `None` when the spec does not parse (only possible on clusters whose CRD schema let it in).
    pool: Option<Pool>,
    status: Value,
}

#[derive(Default)]
struct State {
    services: HashMap<Key, SvcInfo>,
    namespaces: HashMap<String, BTreeMap<String, String>>,
    pools: BTreeMap<String, PoolEntry>,
    /// The allocation table; `Some` only while this replica leads.
    alloc: Option<Allocator>,
    /// Services of ours left without an address: retried when addresses are freed or pools change.
    pending: HashSet<Key>,
    /// The last failure message recorded as an Event per Service (a retry failing the same way is quiet).
    last_failure: HashMap<Key, String>,
}

struct Shared {
    client: kube::Client,
    state: Mutex<State>,
    queue: Arc<WorkQueue<Key>>,
    recorder: Recorder,
    pools_changed: Notify,
}

impl Fed for Shared {
    type Cache = State;
    fn lock_cache(&self) -> std::sync::MutexGuard<'_, State> {
        self.state()
    }
}

impl Shared {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn enqueue(&self, keys: impl IntoIterator<Item = Key>) {
        for k in keys {
            self.queue.add(k);
        }
    }

    fn enqueue_all(&self) {
        let keys: Vec<Key> = self.state().services.keys().cloned().collect();
        self.enqueue(keys);
    }
}

fn apply_pool(s: &Shared, obj: DynamicObject) {
    let name = obj.name_any();
    let spec = obj.data.get("spec").cloned().unwrap_or(Value::Null);
    let status = obj.data.get("status").cloned().unwrap_or(Value::Null);
    let pool = match Pool::from_spec(&name, &spec) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::warn!(pool = %name, error = %e, "LoadBalancerIPPool left out: invalid spec");
            None
        }
    };
    let changed = {
        let mut st = s.state();
        let changed = st.pools.get(&name).is_none_or(|old| old.pool != pool);
        if changed {
            if let Some(a) = st.alloc.as_mut() {
                match &pool {
                    Some(p) => a.set_pool(p.clone()),
                    None => a.remove_pool(&name),
                }
            }
        }
        st.pools.insert(name, PoolEntry { pool, status });
        changed
    };
    // A pool's status may lag or be edited by hand: the status pass compares and rewrites it.
    s.pools_changed.notify_one();
    if changed {
        s.enqueue_all();
    }
}

fn delete_pool(s: &Shared, key: &Key) {
    let existed = {
        let mut st = s.state();
        if let Some(a) = st.alloc.as_mut() {
            a.remove_pool(&key.1);
        }
        st.pools.remove(&key.1).is_some()
    };
    if existed {
        s.pools_changed.notify_one();
        s.enqueue_all();
    }
}

fn apply_namespace(s: &Shared, ns: Namespace) {
    let name = ns.name_any();
    let labels = ns.metadata.labels.unwrap_or_default();
    let affected: Vec<Key> = {
        let mut st = s.state();
        if st.namespaces.get(&name) == Some(&labels) {
            return;
        }
        if let Some(a) = st.alloc.as_mut() {
            a.set_namespace(&name, labels.clone());
        }
        st.namespaces.insert(name.clone(), labels);
        st.services
            .keys()
            .filter(|k| k.0 == name)
            .cloned()
            .collect()
    };
    s.enqueue(affected);
}

fn delete_namespace(s: &Shared, key: &Key) {
    let mut st = s.state();
    if let Some(a) = st.alloc.as_mut() {
        a.remove_namespace(&key.1);
    }
    st.namespaces.remove(&key.1);
}

fn spawn_watches(shared: &Arc<Shared>, tasks: &mut JoinSet<()>) -> Vec<watch::Receiver<bool>> {
    let client = shared.client.clone();
    let mut ready = Vec::new();
    let mut chan = || {
        let (tx, rx) = watch::channel(false);
        ready.push(rx);
        tx
    };
    let cfg = watcher::Config::default().page_size(5000);

    let tx = chan();
    tasks.spawn(feed(
        watcher::watcher(Api::<Service>::all(client.clone()), cfg.clone()).default_backoff(),
        Arc::clone(shared),
        "services",
        |s, svc: Service| {
            let Some(info) = SvcInfo::from_service(&svc) else {
                return;
            };
            let key = info.key();
            let changed = {
                let mut st = s.state();
                if st.services.get(&key) == Some(&info) {
                    false
                } else {
                    st.services.insert(key.clone(), info);
                    true
                }
            };
            if changed {
                s.enqueue([key]);
            }
        },
        |s, k| {
            s.state().services.remove(k);
            s.enqueue([k.clone()]);
        },
        |st: &State| st.services.keys().cloned().collect(),
        tx,
    ));

    let tx = chan();
    tasks.spawn(feed(
        watcher::watcher(Api::<Namespace>::all(client.clone()), cfg.clone()).default_backoff(),
        Arc::clone(shared),
        "namespaces",
        apply_namespace,
        delete_namespace,
        |st: &State| {
            st.namespaces
                .keys()
                .map(|n| (String::new(), n.clone()))
                .collect()
        },
        tx,
    ));

    let tx = chan();
    let pools: Api<DynamicObject> = Api::all_with(client, &pool_resource());
    tasks.spawn(feed(
        watcher::watcher(pools, cfg).default_backoff(),
        Arc::clone(shared),
        "loadbalancerippools",
        apply_pool,
        delete_pool,
        |st: &State| {
            st.pools
                .keys()
                .map(|n| (String::new(), n.clone()))
                .collect()
        },
        tx,
    ));
    ready
}

fn involved(svc: &SvcInfo) -> Involved<'_> {
    Involved {
        namespace: &svc.namespace,
        name: &svc.name,
        uid: &svc.uid,
    }
}

/// Writes `status.loadBalancer.ingress` through the status subresource.
async fn write_ingress(
    client: &kube::Client,
    svc: &SvcInfo,
    ips: &[std::net::IpAddr],
) -> Result<(), kube::Error> {
    let api: Api<Service> = Api::namespaced(client.clone(), &svc.namespace);
    let ingress: Value = if ips.is_empty() {
        Value::Null
    } else {
        ips.iter()
            .map(|ip| json!({"ip": ip.to_string(), "ipMode": "VIP"}))
            .collect()
    };
    let patch = json!({"status": {"loadBalancer": {"ingress": ingress}}});
    match api
        .patch_status(&svc.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        // Gone meanwhile: its delete event releases the address.
        Err(kube::Error::Api(s)) if s.is_not_found() => Ok(()),
        Err(e) => Err(e),
    }
}

/// One Service: decide its addresses, write its status if it differs, record what happened.
async fn sync(shared: &Shared, key: &Key) -> Result<(), Error> {
    let (svc, outcome, before, after) = {
        let mut guard = shared.state();
        let st = &mut *guard;
        let Some(alloc) = st.alloc.as_mut() else {
            return Ok(());
        };
        let before = alloc.held_by(key);
        let svc = st.services.get(key).cloned();
        let outcome = match &svc {
            Some(s) => alloc.assign(s),
            None => {
                alloc.release(key);
                st.pending.remove(key);
                st.last_failure.remove(key);
                Outcome::NotOurs
            }
        };
        let after = alloc.held_by(key);
        match &outcome {
            Outcome::Failed(_) => {
                st.pending.insert(key.clone());
            }
            _ => {
                st.pending.remove(key);
            }
        }
        METRICS.set_pending(st.pending.len());
        (svc, outcome, before, after)
    };
    if before != after {
        let freed = before.iter().filter(|ip| !after.contains(ip)).count();
        METRICS.released(freed);
        METRICS.allocated(after.iter().filter(|ip| !before.contains(ip)).count());
        shared.pools_changed.notify_one();
        if freed > 0 {
            // Addresses came free: Services waiting for one try again.
            let pending: Vec<Key> = shared
                .state()
                .pending
                .iter()
                .filter(|k| *k != key)
                .cloned()
                .collect();
            shared.enqueue(pending);
        }
    }
    let Some(svc) = svc else {
        return Ok(());
    };
    match outcome {
        Outcome::NotOurs => Ok(()),
        Outcome::Assigned(ips) => {
            shared.state().last_failure.remove(key);
            if svc.current == ips {
                return Ok(());
            }
            write_ingress(&shared.client, &svc, &ips)
                .await
                .map_err(Error::Kube)?;
            tracing::info!(service = %format!("{}/{}", key.0, key.1), ?ips, "assigned LoadBalancer addresses");
            let list: Vec<String> = ips.iter().map(|ip| format!("\"{ip}\"")).collect();
            shared
                .recorder
                .record(
                    &involved(&svc),
                    "Normal",
                    "IPAllocated",
                    &format!("Assigned IP [{}]", list.join(", ")),
                )
                .await;
            Ok(())
        }
        Outcome::Failed(f) => {
            if !svc.current.is_empty() {
                write_ingress(&shared.client, &svc, &[])
                    .await
                    .map_err(Error::Kube)?;
            }
            let new_failure = {
                let mut st = shared.state();
                if st.last_failure.get(key) == Some(&f.message) {
                    false
                } else {
                    st.last_failure.insert(key.clone(), f.message.clone());
                    true
                }
            };
            if new_failure {
                METRICS.failure(f.kind);
                tracing::info!(service = %format!("{}/{}", key.0, key.1), reason = %f, "LoadBalancer address allocation failed");
                shared
                    .recorder
                    .record(
                        &involved(&svc),
                        "Warning",
                        "AllocationFailed",
                        &format!("Failed to allocate IP for \"{}/{}\": {f}", key.0, key.1),
                    )
                    .await;
            }
            Ok(())
        }
    }
}

async fn worker(shared: Arc<Shared>) {
    while let Some(key) = shared.queue.get().await {
        match sync(&shared, &key).await {
            Ok(()) => shared.queue.forget(&key),
            Err(e) => {
                if shared.queue.failures(&key) < MAX_RETRIES {
                    tracing::info!(service = %format!("{}/{}", key.0, key.1), error = %e, "error syncing LoadBalancer status, retrying");
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

/// The status a pool should show, from the allocation table's usage.
fn pool_status(usage: &super::alloc::Usage, pool: &str) -> Value {
    let mut st = serde_json::Map::new();
    for fam in [Family::V4, Family::V6] {
        let v = match usage.get(&(pool.to_string(), fam)) {
            Some((total, used)) => json!({
                "total": i64::try_from(*total).unwrap_or(i64::MAX),
                "used": i64::try_from(*used).unwrap_or(i64::MAX),
            }),
            None => Value::Null,
        };
        st.insert(fam.status_field().into(), v);
    }
    Value::Object(st)
}

/// Whether the observed status already says what `want` says (nulls in `want` mean "absent").
fn status_matches(observed: &Value, want: &Value) -> bool {
    want.as_object().is_some_and(|w| {
        w.iter().all(|(k, v)| {
            let o = observed.get(k).unwrap_or(&Value::Null);
            if v.is_null() {
                o.is_null()
            } else {
                o.get("total") == v.get("total") && o.get("used") == v.get("used")
            }
        })
    })
}

/// Keeps every pool's status (and the usage gauges) in step with the allocation table.
async fn pool_status_loop(shared: Arc<Shared>) {
    let api: Api<DynamicObject> = Api::all_with(shared.client.clone(), &pool_resource());
    loop {
        shared.pools_changed.notified().await;
        tokio::time::sleep(POOL_STATUS_DEBOUNCE).await;
        let writes: Vec<(String, Value)> = {
            let st = shared.state();
            let Some(alloc) = st.alloc.as_ref() else {
                continue;
            };
            let usage = alloc.usage();
            METRICS.set_usage(&usage);
            st.pools
                .iter()
                .filter(|(_, e)| e.pool.is_some())
                .filter_map(|(name, e)| {
                    let want = pool_status(&usage, name);
                    (!status_matches(&e.status, &want)).then(|| (name.clone(), want))
                })
                .collect()
        };
        for (name, status) in writes {
            let patch = json!({"status": status});
            match api
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.is_not_found() => {}
                Err(e) => {
                    tracing::warn!(pool = %name, error = %e, "updating LoadBalancerIPPool status failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    shared.pools_changed.notify_one();
                }
            }
        }
    }
}

/// Creates the pool named `default` with these blocks, or updates its `cidrs`, until the API answers.
async fn ensure_default_pool(client: &kube::Client, cidrs: &[String]) {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &pool_resource());
    let mut delay = Duration::from_millis(100);
    loop {
        let result = async {
            match api.get_opt(DEFAULT_POOL).await? {
                Some(_) => {
                    let patch = json!({"spec": {"cidrs": cidrs}});
                    api.patch(DEFAULT_POOL, &PatchParams::default(), &Patch::Merge(&patch))
                        .await?;
                }
                None => {
                    let mut obj = DynamicObject::new(DEFAULT_POOL, &pool_resource());
                    obj.data = json!({"spec": {"cidrs": cidrs}});
                    api.create(&PostParams::default(), &obj).await?;
                }
            }
            Ok::<_, kube::Error>(())
        }
        .await;
        match result {
            Ok(()) => {
                tracing::info!(?cidrs, "LoadBalancerIPPool {DEFAULT_POOL:?} set");
                return;
            }
            // A bad flag value: the API's 422 says why; retrying would not help.
            Err(kube::Error::Api(s)) if s.code == 422 || s.code == 400 => {
                tracing::error!(error = %s.message, "--loadbalancer-ip-pool refused");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "setting the default LoadBalancerIPPool failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Builds the allocation table from the caches: every Service's status first (oldest Service wins a
/// contested address), before anything new is allocated.
fn rebuild(shared: &Shared) -> usize {
    let mut st = shared.state();
    let pools = st.pools.values().filter_map(|e| e.pool.clone());
    let mut alloc = Allocator::new(pools, st.namespaces.clone());
    let mut svcs: Vec<&SvcInfo> = st.services.values().collect();
    svcs.sort_by(|a, b| {
        (a.created, &a.namespace, &a.name).cmp(&(b.created, &b.namespace, &b.name))
    });
    let mut dropped = 0;
    for s in svcs {
        if !alloc.adopt(s) {
            dropped += 1;
        }
    }
    st.alloc = Some(alloc);
    st.pending.clear();
    dropped
}

/// Runs the LoadBalancer IPAM controller until `shutdown` completes. Every replica keeps its caches
/// warm; only the lease holder allocates and writes.
pub async fn run(
    client: kube::Client,
    opts: LbIpamOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let identity = opts
        .leader_election
        .as_ref()
        .map(|l| l.identity.clone())
        .unwrap_or_else(default_identity);
    let shared = Arc::new(Shared {
        recorder: Recorder::with_component(client.clone(), identity, COMPONENT),
        client: client.clone(),
        state: Mutex::new(State::default()),
        queue: WorkQueue::new(),
        pools_changed: Notify::new(),
    });
    let mut shutdown = std::pin::pin!(shutdown);
    if !opts.default_pool.is_empty() {
        tokio::select! {
            _ = ensure_default_pool(&client, &opts.default_pool) => {}
            _ = &mut shutdown => return Ok(()),
        }
    }
    let mut watches = JoinSet::new();
    let mut ready = spawn_watches(&shared, &mut watches);
    tokio::select! {
        _ = wait_all(&mut ready) => {}
        _ = &mut shutdown => {
            watches.abort_all();
            return Ok(());
        }
    }
    {
        let st = shared.state();
        tracing::info!(
            services = st.services.len(),
            pools = st.pools.len(),
            "lb-ipam controller caches synced"
        );
    }

    lead_terms(
        &client,
        opts.leader_election.clone(),
        shutdown.as_mut(),
        "LB IPAM",
        |workers| {
            METRICS.set_leader(true);
            let dropped = rebuild(&shared);
            if dropped > 0 {
                tracing::warn!(
                    services = dropped,
                    "Services show LoadBalancer addresses they may no longer have; reassigning"
                );
            }
            shared.enqueue_all();
            shared.pools_changed.notify_one();
            for _ in 0..opts.workers.max(1) {
                workers.spawn(worker(Arc::clone(&shared)));
            }
            workers.spawn(pool_status_loop(Arc::clone(&shared)));
        },
        || {
            shared.queue.requeue_in_flight();
            // The table is the leader's: a later leadership rebuilds it from what the Services show.
            shared.state().alloc = None;
            METRICS.set_leader(false);
        },
    )
    .await;
    shared.queue.shut_down();
    watches.abort_all();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_status_reports_each_family_and_clears_missing_ones() {
        let usage = super::super::alloc::Usage::from([(("p".to_string(), Family::V4), (254, 2))]);
        let want = pool_status(&usage, "p");
        assert_eq!(
            want,
            json!({"ipv4": {"total": 254, "used": 2}, "ipv6": null})
        );
        assert!(status_matches(
            &json!({"ipv4": {"total": 254, "used": 2}}),
            &want
        ));
        assert!(!status_matches(
            &json!({"ipv4": {"total": 254, "used": 1}}),
            &want
        ));
        assert!(!status_matches(
            &json!({"ipv4": {"total": 254, "used": 2}, "ipv6": {"total": 1, "used": 0}}),
            &want
        ));
        assert!(!status_matches(&Value::Null, &want));
    }
}
