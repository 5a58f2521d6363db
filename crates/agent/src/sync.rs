//! The sync loop: one thread owns the models (one per IP family) and the backends. It folds every change
//! that arrived while it was busy into one diff per family, applies it, and on a timer re-applies the whole
//! table to repair drift. A diff the kernel refuses falls back to a full sync; a full sync that fails is
//! retried with backoff while the rest of the agent keeps serving.

use std::collections::{HashMap, HashSet};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime};

use proxy::{Diff, Family, Frontend, FrontendChange, FrontendState, ProxyModel};

use crate::backend::{Backend, SyncReport};
use crate::state::{lock, AppliedFrontend, SharedState};
use crate::watch::{Change, Kind, Timed};

pub struct FamilyPlane {
    pub model: ProxyModel,
    pub backend: Box<dyn Backend>,
}

pub struct SyncLoop {
    pub planes: Vec<FamilyPlane>,
    pub sync_period: Duration,
    pub state: SharedState,
    /// Told the generation after each sync that changed something (health-check servers follow it).
    pub notify: tokio::sync::watch::Sender<u64>,
}

/// Keys of what each watch has delivered, so a relist can delete what it no longer holds.
#[derive(Default)]
struct Seen {
    services: HashSet<(String, String)>,
    slices: HashSet<(String, String)>,
    relist: HashMap<Kind, HashSet<(String, String)>>,
    listed: HashSet<Kind>,
}

impl SyncLoop {
    pub fn run(mut self, rx: Receiver<Timed>) {
        let mut seen = Seen::default();
        let mut next_full = Instant::now();
        let mut need_full = true;
        let mut oldest: Option<Instant> = None;
        let mut backoff = Duration::from_millis(100);
        loop {
            let wait = next_full.saturating_duration_since(Instant::now());
            let first = match rx.recv_timeout(if seen.listed.len() < 3 {
                Duration::from_secs(3600)
            } else {
                wait
            }) {
                Ok(m) => Some(m),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            let mut batch: Vec<Timed> = first.into_iter().collect();
            batch.extend(rx.try_iter());
            for (at, change) in batch {
                oldest = Some(oldest.map_or(at, |o| o.min(at)));
                self.absorb(change, &mut seen);
            }
            if oldest.is_some() {
                let mut s = lock(&self.state);
                s.pending_since.get_or_insert_with(SystemTime::now);
            }
            // kube-proxy waits for its caches: programming a half-listed cluster would reject live Services.
            if seen.listed.len() < 3 {
                continue;
            }
            let full = need_full || Instant::now() >= next_full;
            match self.sync(full, oldest) {
                Ok(()) => {
                    oldest = None;
                    need_full = false;
                    next_full = Instant::now() + self.sync_period;
                    backoff = Duration::from_millis(100);
                }
                Err(()) => {
                    need_full = true;
                    next_full = Instant::now() + backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }

    fn absorb(&mut self, change: Change, seen: &mut Seen) {
        match change {
            Change::Service(svc) => {
                let key = (
                    svc.metadata.namespace.clone().unwrap_or_default(),
                    svc.metadata.name.clone().unwrap_or_default(),
                );
                let mut failure = None;
                for plane in &mut self.planes {
                    if let Err(e) = plane.model.upsert_service(&svc) {
                        failure = Some(e.to_string());
                    }
                }
                let name = format!("{}/{}", key.0, key.1);
                let mut s = lock(&self.state);
                match failure {
                    Some(e) => {
                        tracing::warn!(service = %name, error = %e, "agent: service cannot be programmed");
                        s.failed_services.insert(name, e);
                    }
                    None => {
                        s.failed_services.remove(&name);
                    }
                }
                if let Some(r) = seen.relist.get_mut(&Kind::Service) {
                    r.insert(key.clone());
                }
                seen.services.insert(key);
            }
            Change::ServiceGone(ns, name) => {
                for plane in &mut self.planes {
                    plane.model.delete_service(&ns, &name);
                }
                lock(&self.state)
                    .failed_services
                    .remove(&format!("{ns}/{name}"));
                seen.services.remove(&(ns, name));
            }
            Change::Slice(slice) => {
                let key = (
                    slice.metadata.namespace.clone().unwrap_or_default(),
                    slice.metadata.name.clone().unwrap_or_default(),
                );
                for plane in &mut self.planes {
                    plane.model.upsert_endpoint_slice(&slice);
                }
                if let Some(r) = seen.relist.get_mut(&Kind::Slice) {
                    r.insert(key.clone());
                }
                seen.slices.insert(key);
            }
            Change::SliceGone(ns, name) => {
                for plane in &mut self.planes {
                    plane.model.delete_endpoint_slice(&ns, &name);
                }
                seen.slices.remove(&(ns, name));
            }
            Change::Node(node) => {
                for plane in &mut self.planes {
                    plane.model.set_node(&node);
                }
            }
            Change::ListStart(kind) => {
                seen.relist.insert(kind, HashSet::new());
            }
            Change::ListDone(kind) => {
                seen.listed.insert(kind);
                let Some(listed) = seen.relist.remove(&kind) else {
                    return;
                };
                let held = match kind {
                    Kind::Service => &mut seen.services,
                    Kind::Slice => &mut seen.slices,
                    Kind::Node => return,
                };
                let gone: Vec<(String, String)> = held.difference(&listed).cloned().collect();
                for (ns, name) in gone {
                    held.remove(&(ns.clone(), name.clone()));
                    for plane in &mut self.planes {
                        match kind {
                            Kind::Service => plane.model.delete_service(&ns, &name),
                            Kind::Slice => plane.model.delete_endpoint_slice(&ns, &name),
                            Kind::Node => {}
                        }
                    }
                }
            }
        }
    }

    /// One sync of every family; `Err` when a family could not be brought in line (retried in full).
    fn sync(&mut self, full: bool, oldest: Option<Instant>) -> Result<(), ()> {
        let mut ok = true;
        let mut changes = Vec::new();
        let mut changed = false;
        for plane in &mut self.planes {
            let family = plane.model.family();
            let diff = plane.model.take_diff();
            let start = Instant::now();
            let result = if full {
                plane.backend.full_sync(&plane.model)
            } else if diff.is_empty() {
                continue;
            } else {
                match plane.backend.apply(&plane.model, &diff) {
                    Ok(r) => Ok(r),
                    Err(e) => {
                        tracing::warn!(%family, error = %e, "agent: diff refused; resyncing the whole table");
                        plane.backend.full_sync(&plane.model)
                    }
                }
            };
            changed = true;
            let mut s = lock(&self.state);
            match result {
                Ok(report) => {
                    if full {
                        plane.model.mark_synced();
                        s.full.observe(start.elapsed());
                        s.full_syncs += 1;
                    } else {
                        s.partial.observe(start.elapsed());
                    }
                    log_report(family, full, &report, &diff);
                    for (what, why) in &report.failed {
                        s.failed_services.insert(what.clone(), why.clone());
                    }
                    changes.extend(diff.frontends);
                }
                Err(e) => {
                    ok = false;
                    s.failures += 1;
                    tracing::error!(%family, error = %e, "agent: could not program the kernel");
                }
            }
        }
        if full {
            release_freed_memory();
        }
        if !changes.is_empty() {
            let n = crate::conntrack::cleanup(&changes);
            lock(&self.state).conntrack_deletions += n as u64;
        }
        if ok {
            self.publish(changed, full, &changes, oldest);
            Ok(())
        } else {
            Err(())
        }
    }

    /// Publishes a successful sync. The applied frontends follow the diff's frontend changes; a full sync
    /// (also the one after any failure, whose changes were not published) rebuilds them from the models.
    fn publish(
        &self,
        changed: bool,
        full: bool,
        changes: &[FrontendChange],
        oldest: Option<Instant>,
    ) {
        let mut s = lock(&self.state);
        s.last_sync = Some(SystemTime::now());
        s.pending_since = None;
        s.synced_once = true;
        s.syncs += 1;
        if let Some(at) = oldest {
            s.change_to_kernel.observe(at.elapsed());
        }
        if !changed && s.generation > 0 {
            return;
        }
        s.generation += 1;
        let mut checks = Vec::new();
        if full {
            s.applied.clear();
        }
        for plane in &self.planes {
            let family = plane.model.family();
            s.stats.insert(family_name(family), plane.model.stats());
            checks.extend(plane.model.health_checks());
            if full {
                for (frontend, st) in plane.model.frontends() {
                    let f = applied(&frontend, &st);
                    s.applied.insert(f.frontend.clone(), f);
                }
            }
        }
        if !full {
            for change in changes {
                let key = change.frontend.to_string();
                match &change.after {
                    Some(st) => {
                        s.applied.insert(key, applied(&change.frontend, st));
                    }
                    None => {
                        s.applied.remove(&key);
                    }
                }
            }
        }
        // A dual-stack Service has one check per family on the same port; the node answers once.
        checks.sort_by_key(|c| c.node_port);
        checks.dedup_by(|a, b| {
            if a.node_port == b.node_port {
                b.local_endpoints += a.local_endpoints;
                true
            } else {
                false
            }
        });
        s.health_checks = checks;
        let generation = s.generation;
        drop(s);
        let _ = self.notify.send(generation);
    }
}

fn applied(frontend: &Frontend, st: &FrontendState) -> AppliedFrontend {
    AppliedFrontend {
        frontend: frontend.to_string(),
        service: st.service.to_string(),
        endpoints: st.endpoints.iter().map(|e| e.to_string()).collect(),
    }
}

pub fn family_name(family: Family) -> &'static str {
    match family {
        Family::V4 => "ipv4",
        Family::V6 => "ipv6",
    }
}

fn log_report(family: Family, full: bool, report: &SyncReport, diff: &Diff) {
    tracing::info!(
        %family,
        full,
        operations = report.operations,
        elements = diff.ops.len(),
        ms = report.duration.as_secs_f64() * 1000.0,
        "agent: synced"
    );
}

/// Hands the heap's free pages back to the kernel. A full sync builds the whole ruleset's netlink batch (tens
/// of MB at 10k Services) and frees it at once; glibc keeps such memory for reuse, so without this the agent's
/// resident size would stay at the sync's peak between syncs, for nothing.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}
