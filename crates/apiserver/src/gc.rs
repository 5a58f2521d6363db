//! Garbage collection inside the API server process: dependents go when their owner goes (ownerReferences,
//! background propagation), and a namespace being deleted is emptied and then removed — the jobs of
//! kube-controller-manager's garbage-collector and namespace controllers. Fed by one store watch, with an
//! index from owner uid to dependents so a deletion never scans the store. It reads only metadata, and
//! decodes only that.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;
use store::{EventType, Revision};

use crate::http_util::Params;
use crate::meta;
use crate::objects::FOREGROUND;
use crate::resources::{self, Resource};
use crate::status::ApiError;
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
/// Whether an object is in foreground deletion, waiting for its dependents.
fn waits_for_dependents(obj: &Value) -> bool {
    meta::deletion_requested(obj) && meta::finalizers(obj).iter().any(|f| f == FOREGROUND)
}

/// One owner reference: kind, name and uid.
struct OwnerRef {
    kind: String,
    name: String,
    uid: String,
}

fn owner_refs(obj: &Value) -> Vec<OwnerRef> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .filter_map(|r| {
                    let s = |k: &str| r.get(k).and_then(Value::as_str).map(str::to_string);
                    Some(OwnerRef {
                        kind: s("kind")?,
                        name: s("name")?,
                        uid: s("uid").unwrap_or_default(),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

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
                let obj = meta::decode_metadata_only(&kv.value).map_err(ApiError::internal)?;
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
                .and_then(|p| meta::decode_metadata_only(&p.value).ok());
            match ev.event_type {
                EventType::Put => {
                    let Ok(cur) = meta::decode_metadata_only(&ev.kv.value) else {
                        continue;
                    };
                    self.gc.index(res, &ns, &name, prev.as_ref(), Some(&cur));
                    // A dependent written with owners that are already gone (say, a slice created
                    // by a controller that had not yet seen its Service's deletion) is collected, as
                    // kube's garbage collector does; only when the owner references changed.
                    let owners = owner_refs(&cur);
                    if !owners.is_empty() && prev.as_ref().map(owner_uids) != Some(owner_uids(&cur))
                    {
                        self.clone()
                            .spawn_collect_orphan(res, ns.clone(), name.clone(), owners);
                    }
                    if res.kind == "Namespace" && meta::deletion_requested(&cur) {
                        self.clone().spawn_finalize(name.clone());
                    }
                    if waits_for_dependents(&cur) {
                        self.clone()
                            .spawn_foreground(res, ns.clone(), name.clone(), &cur);
                    }
                }
                EventType::Delete => {
                    self.gc.index(res, &ns, &name, prev.as_ref(), None);
                    let Some(prev) = prev else { continue };
                    // An owner in foreground deletion may have lost its last dependent.
                    for owner in owner_refs(&prev) {
                        let Some(ores) = resources::by_kind(&owner.kind) else {
                            continue;
                        };
                        let ons = if ores.namespaced { ns.clone() } else { None };
                        if let Ok(o) = self.get_object(ores, ons.as_deref(), &owner.name).await {
                            if waits_for_dependents(&o) {
                                self.clone().spawn_foreground(ores, ons, owner.name, &o);
                            }
                        }
                    }
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

    /// One step of a foreground deletion: delete the dependents (in the foreground too) or, once none is
    /// left, remove the `foregroundDeletion` finalizer so the owner goes. A dependent that has another owner
    /// only loses its reference to this one.
    fn spawn_foreground(
        self: Arc<Self>,
        res: &'static Resource,
        ns: Option<String>,
        name: String,
        obj: &Value,
    ) {
        let uid = meta::uid(obj).to_string();
        tokio::spawn(async move {
            let deps = self.gc.dependents_of(&uid);
            if deps.is_empty() {
                self.remove_finalizer(res, ns.as_deref(), &name, &uid, FOREGROUND)
                    .await;
                return;
            }
            for (dres, dns, dname) in deps {
                let Ok(dep) = self.get_object(dres, dns.as_deref(), &dname).await else {
                    continue;
                };
                if owner_uids(&dep).iter().any(|u| *u != uid) {
                    self.drop_owner_ref(dres, dns.as_deref(), &dname, &uid)
                        .await;
                    continue;
                }
                let p = Params {
                    grace_period_seconds: Some(0),
                    propagation_policy: Some("Foreground".into()),
                    ..Default::default()
                };
                if let Err(e) = self
                    .delete_object(dres, dns.as_deref(), &dname, &p, None)
                    .await
                {
                    if e.code != 404 {
                        tracing::warn!(resource = dres.plural, name = dname, error = %e.body["message"], "foreground deletion of a dependent failed");
                    }
                }
            }
        });
    }

    /// Removes one finalizer from the object with this uid (retrying on conflicts).
    async fn remove_finalizer(
        &self,
        res: &'static Resource,
        ns: Option<&str>,
        name: &str,
        uid: &str,
        finalizer: &str,
    ) {
        for _ in 0..5 {
            let Ok(mut obj) = self.get_object(res, ns, name).await else {
                return;
            };
            if meta::uid(&obj) != uid {
                return;
            }
            let Some(list) = obj
                .pointer_mut("/metadata/finalizers")
                .and_then(Value::as_array_mut)
            else {
                return;
            };
            let before = list.len();
            list.retain(|f| f.as_str() != Some(finalizer));
            if list.len() == before {
                return;
            }
            match self
                .update_object(res, ns, name, None, obj, &Params::default(), &[])
                .await
            {
                Ok(_) => return,
                Err(e) if e.code == 409 => continue,
                Err(e) => {
                    if e.code != 404 {
                        tracing::warn!(resource = res.plural, name, error = %e.body["message"], "removing a finalizer failed");
                    }
                    return;
                }
            }
        }
    }

    /// Deletes a dependent when none of its owners exists (an owner of the same name with another uid is
    /// a different object). Owners of kinds this server does not serve cannot be checked: kept.
    fn spawn_collect_orphan(
        self: Arc<Self>,
        res: &'static Resource,
        ns: Option<String>,
        name: String,
        owners: Vec<OwnerRef>,
    ) {
        tokio::spawn(async move {
            for owner in &owners {
                let Some(ores) = resources::by_kind(&owner.kind) else {
                    return;
                };
                let ons = if ores.namespaced { ns.as_deref() } else { None };
                match self.store.get(&ores.key(ons, &owner.name)).await {
                    Ok(Some(kv)) => {
                        let o = meta::decode_metadata_only(&kv.value);
                        if o.is_ok_and(|o| meta::uid(&o) == owner.uid) {
                            return;
                        }
                    }
                    Ok(None) => {}
                    Err(_) => return,
                }
            }
            tracing::debug!(resource = res.plural, name, "owners gone; collecting");
            self.gc_delete(res, ns.as_deref(), &name).await;
        });
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
