//! Garbage collection inside the API server process: dependents go when their owner goes (ownerReferences,
//! background propagation), and a namespace being deleted is emptied and then removed — the jobs of
//! kube-controller-manager's garbage-collector and namespace controllers. Fed by one store watch, with an
//! index from owner uid to dependents so a deletion never scans the store.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;
use store::{EventType, Revision};

use crate::http_util::Params;
use crate::meta::{self, decode_stored};
use crate::resources::{self, Resource};
use crate::Server;

type ObjRef = (&'static Resource, Option<String>, String);

/// (plural, namespace, name) of a dependent.
type Dependent = (String, Option<String>, String);
type OwnerIndex = HashMap<String, HashSet<Dependent>>;

#[derive(Default)]
pub struct Gc {
    /// owner uid → dependents.
    dependents: Mutex<OwnerIndex>,
    finalizing: Mutex<HashSet<String>>,
}

fn owner_uids(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .filter_map(|r| r.get("uid").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The resource and (namespace, name) a store key belongs to.
fn parse_key(key: &str) -> Option<(&'static Resource, Option<String>, String)> {
    let rest = key.strip_prefix("/registry/")?;
    let (plural, rest) = rest.split_once('/')?;
    let res = resources::ALL
        .iter()
        .copied()
        .find(|r| r.plural == plural)?;
    if res.namespaced {
        let (ns, name) = rest.split_once('/')?;
        Some((res, Some(ns.to_string()), name.to_string()))
    } else {
        Some((res, None, rest.to_string()))
    }
}

impl Gc {
    fn lock(&self) -> std::sync::MutexGuard<'_, OwnerIndex> {
        self.dependents.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn dependents_of(&self, uid: &str) -> Vec<ObjRef> {
        self.lock()
            .get(uid)
            .map(|set| {
                set.iter()
                    .filter_map(|(plural, ns, name)| {
                        let res = resources::ALL
                            .iter()
                            .copied()
                            .find(|r| r.plural == plural)?;
                        Some((res, ns.clone(), name.clone()))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn index(
        &self,
        res: &Resource,
        ns: &Option<String>,
        name: &str,
        prev: Option<&Value>,
        cur: Option<&Value>,
    ) {
        let entry = (res.plural.to_string(), ns.clone(), name.to_string());
        let mut idx = self.lock();
        if let Some(p) = prev {
            for uid in owner_uids(p) {
                if let Some(set) = idx.get_mut(&uid) {
                    set.remove(&entry);
                    if set.is_empty() {
                        idx.remove(&uid);
                    }
                }
            }
        }
        if let Some(c) = cur {
            for uid in owner_uids(c) {
                idx.entry(uid).or_default().insert(entry.clone());
            }
        }
    }
}

impl Server {
    /// Runs until the store closes: builds the owner index, then follows every change.
    pub async fn run_gc(self: Arc<Self>) {
        loop {
            match self.clone().gc_pass().await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(error = %e.body["message"], "garbage collector restarting");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    async fn gc_pass(self: Arc<Self>) -> Result<(), crate::status::ApiError> {
        let start: Revision = self.store.current_revision().await?;
        let mut uids = HashSet::new();
        let mut all = Vec::new();
        for res in resources::ALL {
            let listed = self.store.range(&res.prefix(), None, 0).await?;
            for kv in listed.kvs {
                let Some((res, ns, name)) = parse_key(&kv.key) else {
                    continue;
                };
                let obj = decode_stored(&kv.value, kv.mod_revision)?;
                uids.insert(meta::uid(&obj).to_string());
                self.gc.index(res, &ns, &name, None, Some(&obj));
                all.push((res, ns, name, obj));
            }
        }
        // Dependents whose owners vanished while we were not running.
        for (res, ns, name, obj) in &all {
            let owners = owner_uids(obj);
            if !owners.is_empty() && owners.iter().all(|u| !uids.contains(u)) {
                self.gc_delete(res, ns.as_deref(), name).await;
            }
            if res.kind == "Namespace" && meta::deletion_requested(obj) {
                self.clone().spawn_finalize(name.clone());
            }
        }
        drop(all);
        let mut w = self.store.watch("/registry/", start).await?;
        while let Some(ev) = w.next().await {
            let ev = ev?;
            let Some((res, ns, name)) = parse_key(&ev.kv.key) else {
                continue;
            };
            let prev = ev
                .prev
                .as_ref()
                .and_then(|p| decode_stored(&p.value, p.mod_revision).ok());
            match ev.event_type {
                EventType::Put => {
                    let Ok(cur) = decode_stored(&ev.kv.value, ev.kv.mod_revision) else {
                        continue;
                    };
                    self.gc.index(res, &ns, &name, prev.as_ref(), Some(&cur));
                    if res.kind == "Namespace" && meta::deletion_requested(&cur) {
                        self.clone().spawn_finalize(name.clone());
                    }
                }
                EventType::Delete => {
                    self.gc.index(res, &ns, &name, prev.as_ref(), None);
                    let Some(prev) = prev else { continue };
                    let uid = meta::uid(&prev).to_string();
                    let deps = self.gc.dependents_of(&uid);
                    if deps.is_empty() {
                        continue;
                    }
                    let srv = self.clone();
                    tokio::spawn(async move {
                        for (dres, dns, dname) in deps {
                            // Only if no other owner of the dependent still exists.
                            if let Ok(dep) = srv.get_object(dres, dns.as_deref(), &dname).await {
                                // A dependent with another owner is kept: whether that owner still
                                // lives is not tracked, and keeping is the safe answer.
                                if owner_uids(&dep).iter().all(|u| *u == uid) {
                                    srv.gc_delete(dres, dns.as_deref(), &dname).await;
                                }
                            }
                        }
                    });
                }
            }
        }
        Ok(())
    }

    async fn gc_delete(&self, res: &'static Resource, ns: Option<&str>, name: &str) {
        let p = Params {
            grace_period_seconds: Some(0),
            ..Default::default()
        };
        if let Err(e) = self.delete_object(res, ns, name, &p, None).await {
            if e.code != 404 {
                tracing::warn!(resource = res.plural, name, error = %e.body["message"], "garbage collection failed");
            }
        }
    }

    fn spawn_finalize(self: Arc<Self>, ns: String) {
        {
            let mut f = self.gc.finalizing.lock().unwrap_or_else(|e| e.into_inner());
            if !f.insert(ns.clone()) {
                return;
            }
        }
        tokio::spawn(async move {
            self.finalize_namespace(&ns).await;
            self.gc
                .finalizing
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&ns);
        });
    }

    /// Deletes everything in the namespace, then the namespace itself.
    async fn finalize_namespace(&self, ns: &str) {
        let p = Params {
            grace_period_seconds: Some(0),
            ..Default::default()
        };
        let mut backoff = Duration::from_millis(50);
        loop {
            let mut left = 0usize;
            for res in resources::ALL.iter().copied().filter(|r| r.namespaced) {
                match self.delete_collection(res, Some(ns), &p).await {
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(namespace = ns, error = %e.body["message"], "emptying namespace")
                    }
                }
                if let Ok(r) = self.store.range(&res.scope_prefix(Some(ns)), None, 1).await {
                    left += r.kvs.len();
                }
            }
            if left == 0 {
                break;
            }
            // Objects held by finalizers: wait for their controllers.
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
        let key = resources::NAMESPACES.key(None, ns);
        if let Ok(Some(kv)) = self.store.get(&key).await {
            let txn = store::Txn::new()
                .when(store::Compare::ModRevision(key.clone(), kv.mod_revision))
                .then(store::Op::Delete(key));
            if let Err(e) = self.store.txn(txn).await {
                tracing::warn!(namespace = ns, error = %e, "removing namespace");
            }
        }
    }
}
