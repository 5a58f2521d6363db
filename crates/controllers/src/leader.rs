//! Leader election on a coordination.k8s.io/v1 Lease, with client-go's rules: a lease is free when its
//! holder has not renewed it for leaseDurationSeconds as observed on our own clock (no trust in other
//! machines' clocks), the leader renews every retry period and steps down if it cannot renew within the
//! renew deadline, and a leaving leader releases the lease so a standby takes over at once.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::Api;
use rand::Rng;

/// Where and how to elect a leader. Defaults are kube-controller-manager's.
#[derive(Clone, Debug)]
pub struct LeaseOptions {
    pub name: String,
    pub namespace: String,
    /// Unique per replica: hostname plus a random suffix by default.
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

pub const DEFAULT_LEASE_NAME: &str = "svcplane-endpointslice-controller";

impl Default for LeaseOptions {
    fn default() -> Self {
        Self {
            name: DEFAULT_LEASE_NAME.into(),
            namespace: "kube-system".into(),
            identity: default_identity(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// `<hostname>_<random>`, like kube-controller-manager's `<hostname>_<uuid>`.
pub fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into());
    let suffix: u64 = rand::rng().random();
    format!("{host}_{suffix:016x}")
}

/// The part of a lease record whose change proves its holder alive.
#[derive(PartialEq)]
struct Record {
    holder: String,
    renew: Option<Timestamp>,
    transitions: i32,
}

pub struct Elector {
    api: Api<Lease>,
    opts: LeaseOptions,
    observed: Option<(Record, Instant)>,
}

fn jitter(d: Duration) -> Duration {
    // client-go's JitterUntil with factor 1.2.
    d + d.mul_f64(rand::rng().random_range(0.0..1.2))
}

impl Elector {
    pub fn new(client: kube::Client, opts: LeaseOptions) -> Self {
        Self {
            api: Api::namespaced(client, &opts.namespace),
            opts,
            observed: None,
        }
    }

    pub fn identity(&self) -> &str {
        &self.opts.identity
    }

    fn spec(&self, now: Timestamp, acquire: Timestamp, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.opts.identity.clone()),
            lease_duration_seconds: Some(self.opts.lease_duration.as_secs().max(1) as i32),
            acquire_time: Some(MicroTime(acquire)),
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(transitions),
            ..Default::default()
        }
    }

    /// One attempt to take or renew the lease; `Ok(true)` when we hold it afterwards.
    pub async fn try_acquire_or_renew(&mut self) -> Result<bool, kube::Error> {
        let now = Timestamp::now();
        let Some(mut lease) = self.api.get_opt(&self.opts.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.opts.name.clone()),
                    namespace: Some(self.opts.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(self.spec(now, now, 0)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.is_already_exists() || s.is_conflict() => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let record = Record {
            holder: holder.clone(),
            renew: spec.renew_time.as_ref().map(|t| t.0),
            transitions: spec.lease_transitions.unwrap_or(0),
        };
        let observed_at = match &self.observed {
            Some((r, at)) if *r == record => *at,
            _ => {
                let at = Instant::now();
                self.observed = Some((record, at));
                at
            }
        };
        let duration = Duration::from_secs(spec.lease_duration_seconds.unwrap_or(0).max(0) as u64);
        let mine = holder == self.opts.identity;
        if !holder.is_empty() && !mine && observed_at.elapsed() < duration {
            return Ok(false);
        }
        let transitions = spec.lease_transitions.unwrap_or(0) + i32::from(!mine);
        let acquire = match (&spec.acquire_time, mine) {
            (Some(t), true) => t.0,
            _ => now,
        };
        lease.spec = Some(self.spec(now, acquire, transitions));
        match self
            .api
            .replace(&self.opts.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => {
                self.observed = None;
                Ok(true)
            }
            Err(kube::Error::Api(s)) if s.is_conflict() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Returns once this replica holds the lease.
    pub async fn acquire(&mut self) {
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => {
                    tracing::info!(lease = %self.opts.name, identity = %self.opts.identity, "acquired leader lease");
                    return;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, lease = %self.opts.name, "leader election attempt failed")
                }
            }
            tokio::time::sleep(jitter(self.opts.retry_period)).await;
        }
    }

    /// Renews the lease until a renewal does not succeed within the renew deadline; then returns.
    pub async fn hold(&mut self) {
        loop {
            tokio::time::sleep(self.opts.retry_period).await;
            let deadline = Instant::now() + self.opts.renew_deadline;
            loop {
                let attempt =
                    tokio::time::timeout_at(deadline.into(), self.try_acquire_or_renew()).await;
                match attempt {
                    Ok(Ok(true)) => break,
                    Ok(Ok(false)) => {
                        tracing::warn!(lease = %self.opts.name, "leader lease taken by another replica");
                        return;
                    }
                    Ok(Err(e)) => tracing::warn!(error = %e, "renewing leader lease failed"),
                    Err(_) => {}
                }
                if Instant::now() >= deadline {
                    tracing::warn!(lease = %self.opts.name, "could not renew leader lease in time; stepping down");
                    return;
                }
                tokio::time::sleep(self.opts.retry_period.min(deadline - Instant::now())).await;
            }
        }
    }

    /// Gives the lease up (if still ours) so another replica need not wait for it to expire.
    pub async fn release(&mut self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.opts.name).await else {
            return;
        };
        let spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.opts.identity.as_str()) {
            return;
        }
        let now = Timestamp::now();
        lease.spec = Some(LeaseSpec {
            holder_identity: None,
            lease_duration_seconds: Some(1),
            acquire_time: Some(MicroTime(now)),
            renew_time: Some(MicroTime(now)),
            lease_transitions: spec.lease_transitions,
            ..Default::default()
        });
        if let Err(e) = self
            .api
            .replace(&self.opts.name, &PostParams::default(), &lease)
            .await
        {
            tracing::warn!(error = %e, "releasing leader lease failed");
        }
    }
}

/// Runs leadership terms until `shutdown`: each time this replica holds the Lease (or once, for good, without
/// election) `start` spawns the term's tasks; when the Lease is lost or shutdown comes they are aborted and
/// drained and `stop` runs. A lost Lease starts waiting for the next term; shutdown releases the Lease.
pub(crate) async fn lead_terms<S: std::future::Future<Output = ()>>(
    client: &kube::Client,
    election: Option<LeaseOptions>,
    mut shutdown: std::pin::Pin<&mut S>,
    what: &str,
    mut start: impl FnMut(&mut tokio::task::JoinSet<()>),
    mut stop: impl FnMut(),
) {
    let mut elector = election.map(|l| Elector::new(client.clone(), l));
    loop {
        if let Some(el) = elector.as_mut() {
            tokio::select! {
                _ = el.acquire() => {}
                _ = &mut shutdown => break,
            }
        }
        let mut tasks = tokio::task::JoinSet::new();
        start(&mut tasks);
        let lost = tokio::select! {
            _ = async {
                match elector.as_mut() {
                    Some(el) => el.hold().await,
                    None => std::future::pending().await,
                }
            } => true,
            _ = &mut shutdown => false,
        };
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        stop();
        if !lost {
            break;
        }
        tracing::warn!("lost {what} leadership; workers stopped, caches kept warm");
    }
    if let Some(el) = elector.as_mut() {
        el.release().await;
    }
}
