//! Feeds the [`Index`] from the Kubernetes API: Services, EndpointSlices and Namespaces in every namespace,
//! through `kube`'s watcher, so the same code runs against svcplane's API server and a real cluster.
//!
//! Each event touches only its object's names. The watcher resumes a broken watch from its last resource
//! version; when it must list again (the version expired), the new list is applied as a difference: objects
//! unchanged since we saw them are skipped, and what the list no longer holds is removed at `InitDone`. The
//! index therefore keeps answering through reconnects and relists.

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::serde::de::DeserializeOwned;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client, Resource, ResourceExt};
use tokio::sync::watch;

use crate::error::IndexError;
use crate::index::Index;

/// Whether every watch has delivered its initial list (CoreDNS's `ready` for the `kubernetes` plugin). Once
/// ready, it stays ready: later relists do not empty the index.
#[derive(Debug)]
pub struct Readiness {
    tx: watch::Sender<bool>,
}

impl Default for Readiness {
    fn default() -> Self {
        Readiness::new()
    }
}

impl Readiness {
    pub fn new() -> Readiness {
        Readiness {
            tx: watch::Sender::new(false),
        }
    }

    pub fn is_ready(&self) -> bool {
        *self.tx.borrow()
    }

    pub fn set_ready(&self) {
        self.tx.send_replace(true);
    }

    /// Returns once ready.
    pub async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = rx.wait_for(|r| *r).await;
    }
}

/// How one kind of object goes into the index.
trait Indexed: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static {
    const KIND: &'static str;
    fn apply(index: &Index, obj: &Self) -> Result<(), IndexError>;
    fn remove(index: &Index, namespace: &str, name: &str);
}

impl Indexed for Service {
    const KIND: &'static str = "Service";
    fn apply(index: &Index, obj: &Self) -> Result<(), IndexError> {
        index.upsert_service(obj)
    }
    fn remove(index: &Index, namespace: &str, name: &str) {
        index.delete_service(namespace, name)
    }
}

impl Indexed for EndpointSlice {
    const KIND: &'static str = "EndpointSlice";
    fn apply(index: &Index, obj: &Self) -> Result<(), IndexError> {
        index.upsert_endpoint_slice(obj)
    }
    fn remove(index: &Index, namespace: &str, name: &str) {
        index.delete_endpoint_slice(namespace, name)
    }
}

impl Indexed for Namespace {
    const KIND: &'static str = "Namespace";
    fn apply(index: &Index, obj: &Self) -> Result<(), IndexError> {
        index.upsert_namespace(&obj.name_any());
        Ok(())
    }
    fn remove(index: &Index, _namespace: &str, name: &str) {
        index.delete_namespace(name)
    }
}

/// Watches Services, EndpointSlices and Namespaces into `index` until the returned future is dropped (it
/// never completes on its own: the watches retry with backoff). `ready` is set once all three initial lists are
/// in.
pub async fn run_watchers(client: Client, index: Arc<Index>, ready: Arc<Readiness>) {
    let pending = Arc::new(AtomicUsize::new(3));
    let synced = || {
        let pending = pending.clone();
        let ready = ready.clone();
        move || {
            if pending.fetch_sub(1, Ordering::AcqRel) == 1 {
                tracing::info!(
                    "dns: initial lists of Services, EndpointSlices and Namespaces loaded"
                );
                ready.set_ready();
            }
        }
    };
    tokio::join!(
        watch_kind(Api::<Service>::all(client.clone()), &index, synced()),
        watch_kind(Api::<EndpointSlice>::all(client.clone()), &index, synced()),
        watch_kind(Api::<Namespace>::all(client), &index, synced()),
    );
}

/// (namespace, name); the namespace is empty for cluster-scoped kinds.
type ObjKey = (String, String);

/// What one watch has put into the index: each object's resource version.
struct Seen<K> {
    versions: HashMap<ObjKey, String>,
    /// Keys listed since the last `Init`, while a list is in progress.
    relist: Option<HashSet<ObjKey>>,
    _kind: std::marker::PhantomData<K>,
}

impl<K: Indexed> Seen<K> {
    fn new() -> Self {
        Seen {
            versions: HashMap::new(),
            relist: None,
            _kind: std::marker::PhantomData,
        }
    }

    fn key(obj: &K) -> ObjKey {
        (obj.namespace().unwrap_or_default(), obj.name_any())
    }

    fn apply(&mut self, index: &Index, obj: &K) {
        let key = Self::key(obj);
        let version = obj.resource_version().unwrap_or_default();
        if let Some(listed) = &mut self.relist {
            listed.insert(key.clone());
        }
        // A relist hands back every object; those we already hold at this version change nothing.
        if !version.is_empty() && self.versions.get(&key) == Some(&version) {
            return;
        }
        match K::apply(index, obj) {
            Ok(()) => {
                self.versions.insert(key, version);
            }
            Err(e) => tracing::warn!(kind = K::KIND, error = %e, "dns: object not indexed"),
        }
    }

    fn delete(&mut self, index: &Index, obj: &K) {
        let key = Self::key(obj);
        K::remove(index, &key.0, &key.1);
        self.versions.remove(&key);
    }

    /// Ends a list: whatever it did not include is gone.
    fn list_done(&mut self, index: &Index) {
        let Some(listed) = self.relist.take() else {
            return;
        };
        let gone: Vec<ObjKey> = self
            .versions
            .keys()
            .filter(|k| !listed.contains(*k))
            .cloned()
            .collect();
        for key in gone {
            K::remove(index, &key.0, &key.1);
            self.versions.remove(&key);
        }
    }
}

async fn watch_kind<K>(api: Api<K>, index: &Index, mut on_first_sync: impl FnMut())
where
    K: Indexed,
    K::DynamicType: Default,
{
    let mut seen = Seen::<K>::new();
    let mut synced = false;
    let mut stream = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Apply(obj)) => seen.apply(index, &obj),
            Ok(Event::Delete(obj)) => seen.delete(index, &obj),
            Ok(Event::Init) => {
                tracing::debug!(kind = K::KIND, "dns: listing");
                seen.relist = Some(HashSet::new());
            }
            Ok(Event::InitApply(obj)) => seen.apply(index, &obj),
            Ok(Event::InitDone) => {
                seen.list_done(index);
                tracing::debug!(
                    kind = K::KIND,
                    objects = seen.versions.len(),
                    "dns: list done"
                );
                if !synced {
                    synced = true;
                    on_first_sync();
                }
            }
            // The watcher retries by itself (with backoff); the index keeps serving what it has.
            Err(e) => tracing::warn!(kind = K::KIND, error = %e, "dns: watch failed; retrying"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn svc(name: &str, rv: &str, ip: &str) -> Service {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "default", "resourceVersion": rv},
            "spec": {"clusterIP": ip, "clusterIPs": [ip]}
        }))
        .unwrap()
    }

    fn has(index: &Index, name: &str) -> bool {
        index.read().service(name.as_bytes(), b"default").is_some()
    }

    #[test]
    fn a_relist_is_applied_as_a_difference() {
        let index = Index::new(Config::default()).unwrap();
        let mut seen = Seen::<Service>::new();
        seen.relist = Some(HashSet::new());
        seen.apply(&index, &svc("a", "1", "10.96.0.1"));
        seen.apply(&index, &svc("b", "2", "10.96.0.2"));
        seen.list_done(&index);
        assert!(has(&index, "a") && has(&index, "b"));

        // Reconnected with an expired version: a new list holds a (unchanged) and c, not b.
        seen.relist = Some(HashSet::new());
        seen.apply(&index, &svc("a", "1", "10.96.0.1"));
        seen.apply(&index, &svc("c", "5", "10.96.0.3"));
        // Until the list is complete nothing is removed.
        assert!(has(&index, "b"));
        seen.list_done(&index);
        assert!(has(&index, "a") && has(&index, "c") && !has(&index, "b"));
        assert_eq!(seen.versions.len(), 2);

        seen.delete(&index, &svc("a", "6", "10.96.0.1"));
        assert!(!has(&index, "a"));
    }
}
