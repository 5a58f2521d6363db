//! Node liveness Leases: each announcing agent holds `svcplane-announce-<node>` (coordination.k8s.io/v1) and
//! renews it; every agent watches all of them and judges them live by its own clock.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::Api;

/// Label on every announce lease (the watch selects on it).
pub const LABEL: &str = "svcplane.io/announce";
pub const LABEL_VALUE: &str = "node";
/// The lease duration in milliseconds: `leaseDurationSeconds` is whole seconds, and failover wants less.
pub const DURATION_MS_ANNOTATION: &str = "svcplane.io/lease-duration-ms";
pub const NAME_PREFIX: &str = "svcplane-announce-";

pub fn lease_name(node: &str) -> String {
    format!("{NAME_PREFIX}{node}")
}

/// How long a lease lasts, as its holder declared it.
fn duration_of(lease: &Lease) -> Duration {
    let ms = lease
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(DURATION_MS_ANNOTATION))
        .and_then(|v| v.parse::<u64>().ok());
    match ms {
        Some(ms) => Duration::from_millis(ms),
        None => Duration::from_secs(
            lease
                .spec
                .as_ref()
                .and_then(|s| s.lease_duration_seconds)
                .unwrap_or(0)
                .max(0) as u64,
        ),
    }
}

/// The part of a lease whose change proves its holder alive.
#[derive(Debug, Clone, PartialEq)]
struct Record {
    holder: String,
    renew: Option<Timestamp>,
}

#[derive(Debug)]
struct Observed {
    record: Record,
    /// When we saw this record first, on our own clock.
    at: Instant,
    duration: Duration,
}

/// Every announce lease as this agent observed it. A lease is live while its record last changed less than
/// its duration ago on *our* clock (client-go's rule: no trust in other machines' clocks). The one exception
/// is the first list after a start: a lease whose renewTime is older than its duration plus `grace` by our
/// wall clock is taken as expired at once, or a restarted agent would wait a whole duration for dead nodes.
#[derive(Debug, Default)]
pub struct Leases {
    seen: HashMap<String, Observed>,
    relisting: Option<BTreeSet<String>>,
}

impl Leases {
    /// Records a lease event; `initial` for objects of a (re)list.
    pub fn observe(&mut self, lease: &Lease, initial: bool, grace: Duration) {
        let Some(name) = lease.metadata.name.clone() else {
            return;
        };
        if let Some(r) = &mut self.relisting {
            r.insert(name.clone());
        }
        let spec = lease.spec.clone().unwrap_or_default();
        let record = Record {
            holder: spec.holder_identity.unwrap_or_default(),
            renew: spec.renew_time.map(|t| t.0),
        };
        let duration = duration_of(lease);
        if self.seen.get(&name).is_some_and(|o| o.record == record) {
            return;
        }
        let now = Instant::now();
        let mut at = now;
        if initial {
            let age = record
                .renew
                .and_then(|t| Timestamp::now().duration_since(t).try_into().ok())
                .unwrap_or(Duration::MAX);
            if age > duration.saturating_add(grace) {
                at = now.checked_sub(duration).unwrap_or(now);
            }
        }
        self.seen.insert(
            name,
            Observed {
                record,
                at,
                duration,
            },
        );
    }

    pub fn remove(&mut self, name: &str) {
        self.seen.remove(name);
    }

    pub fn list_start(&mut self) {
        self.relisting = Some(BTreeSet::new());
    }

    pub fn list_done(&mut self) {
        if let Some(keep) = self.relisting.take() {
            self.seen.retain(|k, _| keep.contains(k));
        }
    }

    /// Holders (node names) of live leases at `now`, and when the next of them expires.
    pub fn live(&self, now: Instant) -> (BTreeSet<String>, Option<Instant>) {
        let mut live = BTreeSet::new();
        let mut next: Option<Instant> = None;
        for o in self.seen.values() {
            // An empty holder is a released lease.
            if o.record.holder.is_empty() {
                continue;
            }
            let until = o.at + o.duration;
            if until > now {
                live.insert(o.record.holder.clone());
                next = Some(next.map_or(until, |n| n.min(until)));
            }
        }
        (live, next)
    }
}

/// This node's own lease.
pub struct OwnLease {
    api: Api<Lease>,
    node: String,
    duration: Duration,
}

impl OwnLease {
    pub fn new(client: kube::Client, namespace: &str, node: &str, duration: Duration) -> OwnLease {
        OwnLease {
            api: Api::namespaced(client, namespace),
            node: node.to_string(),
            duration,
        }
    }

    fn object(&self, now: Timestamp) -> Lease {
        Lease {
            metadata: ObjectMeta {
                name: Some(lease_name(&self.node)),
                labels: Some([(LABEL.to_string(), LABEL_VALUE.to_string())].into()),
                annotations: Some(
                    [(
                        DURATION_MS_ANNOTATION.to_string(),
                        self.duration.as_millis().to_string(),
                    )]
                    .into(),
                ),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.node.clone()),
                // Whole seconds, rounded up, for readers that do not know the annotation.
                lease_duration_seconds: Some(self.duration.as_secs_f64().ceil().max(1.0) as i32),
                acquire_time: Some(MicroTime(now)),
                renew_time: Some(MicroTime(now)),
                ..Default::default()
            }),
        }
    }

    /// One renewal: a merge patch of renewTime (one small write; no read, no conflict), creating the lease
    /// when it does not exist. A restarted agent takes its node's lease over whatever it holds.
    pub async fn renew(&self) -> Result<(), kube::Error> {
        let now = Timestamp::now();
        let name = lease_name(&self.node);
        let want = self.object(now);
        let patch = serde_json::json!({
            "metadata": {"labels": want.metadata.labels, "annotations": want.metadata.annotations},
            "spec": {
                "holderIdentity": self.node,
                "leaseDurationSeconds": want.spec.as_ref().and_then(|s| s.lease_duration_seconds),
                "renewTime": MicroTime(now),
            },
        });
        match self
            .api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => {
                match self.api.create(&PostParams::default(), &want).await {
                    Ok(_) => Ok(()),
                    // Created meanwhile (a racing renewal): the next renewal patches it.
                    Err(kube::Error::Api(s)) if s.is_already_exists() => Ok(()),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Deletes the lease so every other agent drops this node at once instead of after a lease duration.
    pub async fn release(&self) -> Result<(), kube::Error> {
        match self
            .api
            .delete(&lease_name(&self.node), &DeleteParams::default())
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(name: &str, holder: &str, renew: Timestamp, ms: u64) -> Lease {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "annotations": {DURATION_MS_ANNOTATION: ms.to_string()}},
            "spec": {"holderIdentity": holder, "renewTime": MicroTime(renew), "leaseDurationSeconds": 1},
        }))
        .expect("lease")
    }

    #[test]
    fn live_by_own_clock_and_stale_at_first_sight() {
        let mut l = Leases::default();
        let now = Timestamp::now();
        l.list_start();
        l.observe(&lease("x-a", "a", now, 3000), true, Duration::from_secs(1));
        // Renewed an hour ago: expired at once, not after a lease duration.
        let old = now - std::time::Duration::from_secs(3600);
        l.observe(&lease("x-b", "b", old, 3000), true, Duration::from_secs(1));
        // Released.
        l.observe(&lease("x-c", "", now, 3000), true, Duration::from_secs(1));
        l.list_done();
        let t = Instant::now();
        let (live, next) = l.live(t);
        assert_eq!(live.into_iter().collect::<Vec<_>>(), vec!["a".to_string()]);
        assert!(next.is_some_and(|n| n > t && n <= t + Duration::from_secs(3)));
        // After its duration without a change, a is gone too.
        assert!(l.live(t + Duration::from_millis(3100)).0.is_empty());
        // A renewal seen later makes b live, whatever its clock says (after the first list we trust change).
        l.observe(
            &lease("x-b", "b", old + std::time::Duration::from_secs(1), 3000),
            false,
            Duration::from_secs(1),
        );
        assert!(l.live(Instant::now()).0.contains("b"));
        // A relist without b drops it.
        l.list_start();
        l.observe(&lease("x-a", "a", now, 3000), true, Duration::from_secs(1));
        l.list_done();
        assert!(!l.live(Instant::now()).0.contains("b"));
        l.remove("x-a");
        assert!(l.live(Instant::now()).0.is_empty());
    }
}
