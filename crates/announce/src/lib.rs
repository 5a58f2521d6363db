//! LoadBalancer address announcement in L2 mode (as MetalLB's and kube-vip's), built into the node agent.
//!
//! # What it owns
//! - This node's **liveness Lease** `kube-system/svcplane-announce-<node>` (coordination.k8s.io/v1, label
//!   `svcplane.io/announce=node`), created and renewed every `renew_interval` by a merge patch of its
//!   `renewTime`, and deleted when the agent stops so the others take over at once. `leaseDurationSeconds`
//!   is whole seconds; the exact duration is in the annotation `svcplane.io/lease-duration-ms`.
//! - The **election**, computed by every agent alike and written nowhere: for each address in
//!   `status.loadBalancer.ingress[].ip` of the LoadBalancer Services whose class is unset or
//!   `svcplane.io/lb`, the candidates are the nodes whose lease is live (judged on the observer's own
//!   clock: the record changed less than a duration ago), whose Node is not `Ready=False/Unknown` nor labelled
//!   `node.kubernetes.io/exclude-from-external-load-balancers`, and — for `externalTrafficPolicy: Local` —
//!   that hold a ready endpoint of the Service in the address's family (EndpointSlices). The announcer is
//!   the candidate with the highest rendezvous hash of (address, node): stable, spread evenly, and losing a
//!   node moves only its own addresses. API load is one small write per node per renew interval and one
//!   watch of the leases and of the Nodes per agent; Services and EndpointSlices come from the agent's own
//!   watches through a [`Feed`]. Nothing is written per address, so Services × nodes never shows up.
//! - The **L2 speaker** ([`Speaker`], one implementation: [`L2Speaker`]): one AF_PACKET socket and one
//!   thread on the LAN interface (`interface`, default: the interface holding the node's InternalIP). It
//!   answers ARP requests and neighbour solicitations for the addresses this node won, and sends three
//!   gratuitous ARPs / unsolicited neighbour advertisements, spaced, on each takeover.
//!
//! Failover: a stopping agent deletes its lease (the others re-elect within a watch event); a dead one stops
//! renewing and every other agent drops it `lease_duration` after its last renewal. An agent that cannot
//! renew its own lease for a duration stops announcing (it must assume the others dropped it). Agents may
//! briefly disagree while events propagate: two nodes answering for a moment is harmless, and nobody
//! answering only delays new clients, whose neighbour cache the gratuitous packets then fix.
//!
//! # What it must not do
//! It never adds an address to an interface or a route (the agent's nftables DNAT in prerouting takes the
//! packets), never touches interfaces but the one it speaks on, and holds a lease only once its socket is
//! open: a node that cannot announce must never be elected. BGP would be another [`Speaker`].

mod elect;
mod l2;
mod lease;
mod metrics;
pub mod packet;
mod sys;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, ResourceExt};
use tokio::sync::{mpsc, oneshot};

pub use elect::{
    score, winner, NodeFacts, ServiceFacts, SliceFacts, View, EXCLUDE_LABEL, LB_CLASS,
};
pub use l2::{L2Speaker, GRATUITOUS_SCHEDULE};
pub use lease::{lease_name, Leases, DURATION_MS_ANNOTATION};
pub use metrics::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum AnnounceError {
    #[error("opening a packet socket on {interface}: {source}")]
    Socket {
        interface: String,
        source: std::io::Error,
    },
    #[error("interface {interface}: {source}")]
    Interface {
        interface: String,
        source: std::io::Error,
    },
    #[error("starting the speaker thread: {0}")]
    Thread(std::io::Error),
}

/// Whatever makes the addresses this node won reachable: ARP/NDP here, a BGP speaker one day.
pub trait Speaker: Send {
    /// The full set of addresses this node announces from now on.
    fn set(&mut self, ips: &BTreeSet<IpAddr>);
    /// Stops announcing everything and releases the speaker's resources.
    fn stop(&mut self);
}

#[derive(Debug, Clone)]
pub struct AnnounceOptions {
    pub node_name: String,
    /// The LAN interface; `None`: the one holding one of the node's InternalIPs.
    pub interface: Option<String>,
    pub lease_namespace: String,
    pub lease_duration: Duration,
    pub renew_interval: Duration,
}

impl AnnounceOptions {
    pub fn new(node_name: impl Into<String>) -> AnnounceOptions {
        AnnounceOptions {
            node_name: node_name.into(),
            interface: None,
            lease_namespace: "kube-system".into(),
            lease_duration: Duration::from_secs(3),
            renew_interval: Duration::from_secs(1),
        }
    }
}

/// How long past its duration a lease seen at start may be by our wall clock before we call it dead at
/// once (tolerated clock skew between nodes).
const STALE_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedKind {
    Service,
    Slice,
}

#[derive(Debug)]
enum Input {
    Service(elect::Key, Option<ServiceFacts>),
    Slice(elect::Key, Option<SliceFacts>),
    ListStart(FeedKind),
    ListDone(FeedKind),
}

/// The agent's Service and EndpointSlice events, handed to the announcer so it needs no watches of its own.
#[derive(Clone)]
pub struct Feed(mpsc::UnboundedSender<Input>);

fn key_of<K: kube::Resource>(o: &K) -> elect::Key {
    (o.namespace().unwrap_or_default(), o.name_any())
}

impl Feed {
    pub fn service(&self, svc: &Service) {
        let _ = self
            .0
            .send(Input::Service(key_of(svc), ServiceFacts::of(svc)));
    }
    pub fn service_gone(&self, namespace: &str, name: &str) {
        let _ = self
            .0
            .send(Input::Service((namespace.into(), name.into()), None));
    }
    pub fn slice(&self, slice: &EndpointSlice) {
        let _ = self
            .0
            .send(Input::Slice(key_of(slice), SliceFacts::of(slice)));
    }
    pub fn slice_gone(&self, namespace: &str, name: &str) {
        let _ = self
            .0
            .send(Input::Slice((namespace.into(), name.into()), None));
    }
    /// A (re)list begins: objects it does not deliver before [`Feed::list_done`] are gone.
    pub fn list_start(&self, kind: FeedKind) {
        let _ = self.0.send(Input::ListStart(kind));
    }
    pub fn list_done(&self, kind: FeedKind) {
        let _ = self.0.send(Input::ListDone(kind));
    }
}

/// The running announcer.
pub struct Announcer {
    feed: Feed,
    metrics: Arc<Metrics>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Announcer {
    /// Starts the announcer's task (on the current tokio runtime).
    pub fn start(client: kube::Client, opts: AnnounceOptions) -> Announcer {
        let (tx, rx) = mpsc::unbounded_channel();
        let (stop, stop_rx) = oneshot::channel();
        let metrics = Arc::new(Metrics::default());
        let task = tokio::spawn(run(client, opts, rx, stop_rx, Arc::clone(&metrics)));
        Announcer {
            feed: Feed(tx),
            metrics,
            stop,
            task,
        }
    }

    pub fn feed(&self) -> Feed {
        self.feed.clone()
    }

    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.metrics)
    }

    /// Stops announcing and deletes this node's lease so another node takes over at once.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }
}

/// Where the announcer stands on this node.
struct Local {
    speaker: Option<Box<dyn Speaker>>,
    /// The interface problem last logged, so a retry on every Node event does not flood the log.
    last_error: Option<String>,
}

impl Local {
    fn try_start(&mut self, opts: &AnnounceOptions, view: &View, metrics: &Arc<Metrics>) {
        if self.speaker.is_some() {
            return;
        }
        let name = match &opts.interface {
            Some(n) => Ok(n.clone()),
            None => {
                let ips = view
                    .nodes
                    .get(&opts.node_name)
                    .map(|n| n.internal_ips.clone())
                    .unwrap_or_default();
                if ips.is_empty() {
                    // The Node has not been seen yet (or has no InternalIP): wait for it.
                    return;
                }
                match sys::interface_with(&ips) {
                    Ok(Some(n)) => Ok(n),
                    Ok(None) => Err(format!(
                        "no interface holds the node's InternalIPs {ips:?}; set --announce-interface"
                    )),
                    Err(e) => Err(format!("listing interfaces: {e}")),
                }
            }
        };
        let started = name.and_then(|name| {
            let iface = sys::interface(&name)
                .map_err(|source| AnnounceError::Interface {
                    interface: name.clone(),
                    source,
                })
                .map_err(|e| e.to_string())?;
            L2Speaker::start(iface, Arc::clone(metrics)).map_err(|e| e.to_string())
        });
        match started {
            Ok(s) => self.speaker = Some(Box::new(s)),
            Err(e) => {
                if self.last_error.as_ref() != Some(&e) {
                    tracing::warn!(error = %e, "announce: cannot announce on this node; not taking part");
                    self.last_error = Some(e);
                }
            }
        }
    }
}

/// Collects objects during a relist so the ones not relisted can be dropped.
#[derive(Default)]
struct Relist {
    services: Option<BTreeSet<elect::Key>>,
    slices: Option<BTreeSet<elect::Key>>,
    nodes: Option<BTreeSet<String>>,
}

#[derive(Default)]
struct Synced {
    services: bool,
    slices: bool,
    nodes: bool,
    leases: bool,
}

impl Synced {
    fn all(&self) -> bool {
        self.services && self.slices && self.nodes && self.leases
    }
}

fn apply_input(view: &mut View, relist: &mut Relist, synced: &mut Synced, input: Input) {
    match input {
        Input::Service(key, facts) => {
            if let Some(r) = &mut relist.services {
                r.insert(key.clone());
            }
            match facts {
                Some(f) => view.services.insert(key, f),
                None => view.services.remove(&key),
            };
        }
        Input::Slice(key, facts) => {
            if let Some(r) = &mut relist.slices {
                r.insert(key.clone());
            }
            match facts {
                Some(f) => view.slices.insert(key, f),
                None => view.slices.remove(&key),
            };
        }
        Input::ListStart(FeedKind::Service) => relist.services = Some(BTreeSet::new()),
        Input::ListStart(FeedKind::Slice) => relist.slices = Some(BTreeSet::new()),
        Input::ListDone(FeedKind::Service) => {
            if let Some(keep) = relist.services.take() {
                view.services.retain(|k, _| keep.contains(k));
            }
            synced.services = true;
        }
        Input::ListDone(FeedKind::Slice) => {
            if let Some(keep) = relist.slices.take() {
                view.slices.retain(|k, _| keep.contains(k));
            }
            synced.slices = true;
        }
    }
}

async fn run(
    client: kube::Client,
    opts: AnnounceOptions,
    mut inputs: mpsc::UnboundedReceiver<Input>,
    mut stop: oneshot::Receiver<()>,
    metrics: Arc<Metrics>,
) {
    let me = opts.node_name.clone();
    let mut view = View::default();
    let mut leases = Leases::default();
    let mut relist = Relist::default();
    let mut synced = Synced::default();
    let mut local = Local {
        speaker: None,
        last_error: None,
    };
    let mut nodes = watcher::watcher(Api::<Node>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .boxed();
    let lease_api = Api::<Lease>::namespaced(client.clone(), &opts.lease_namespace);
    let mut lease_events = watcher::watcher(
        lease_api,
        watcher::Config::default().labels(&format!("{}={}", lease::LABEL, lease::LABEL_VALUE)),
    )
    .default_backoff()
    .boxed();
    let own = Arc::new(lease::OwnLease::new(
        client,
        &opts.lease_namespace,
        &me,
        opts.lease_duration,
    ));
    // When our last renewal that succeeded was sent; written by the renew task.
    let (renewed_tx, renewed) = tokio::sync::watch::channel::<Option<Instant>>(None);
    let mut renew_task: Option<tokio::task::JoinHandle<()>> = None;
    if opts.interface.is_some() {
        local.try_start(&opts, &view, &metrics);
    }
    let mut assignment: BTreeMap<IpAddr, String> = BTreeMap::new();
    let mut mine: BTreeSet<IpAddr> = BTreeSet::new();
    let mut last_live: BTreeSet<String> = BTreeSet::new();
    let mut dirty = true;
    let mut next_check = Instant::now();
    let mut renewed_rx = renewed.clone();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            input = inputs.recv() => match input {
                Some(i) => { apply_input(&mut view, &mut relist, &mut synced, i); dirty = true; }
                // The agent dropped its feed: it is stopping.
                None => break,
            },
            Some(ev) = nodes.next() => {
                match ev {
                    Ok(Event::Init) => relist.nodes = Some(BTreeSet::new()),
                    Ok(Event::InitApply(n)) | Ok(Event::Apply(n)) => {
                        if let Some(r) = &mut relist.nodes { r.insert(n.name_any()); }
                        view.nodes.insert(n.name_any(), NodeFacts::of(&n));
                    }
                    Ok(Event::Delete(n)) => { view.nodes.remove(&n.name_any()); }
                    Ok(Event::InitDone) => {
                        if let Some(keep) = relist.nodes.take() { view.nodes.retain(|k, _| keep.contains(k)); }
                        synced.nodes = true;
                    }
                    Err(e) => tracing::warn!(error = %e, "announce: node watch failed; retrying"),
                }
                if local.speaker.is_none() { local.try_start(&opts, &view, &metrics); }
                dirty = true;
            },
            Some(ev) = lease_events.next() => {
                match ev {
                    Ok(Event::Init) => leases.list_start(),
                    Ok(Event::InitApply(l)) => leases.observe(&l, true, STALE_GRACE),
                    Ok(Event::Apply(l)) => leases.observe(&l, false, STALE_GRACE),
                    Ok(Event::Delete(l)) => leases.remove(&l.name_any()),
                    Ok(Event::InitDone) => { leases.list_done(); synced.leases = true; }
                    Err(e) => tracing::warn!(error = %e, "announce: lease watch failed; retrying"),
                }
                dirty = true;
            },
            Ok(()) = renewed_rx.changed() => { dirty = true; }
            _ = tokio::time::sleep_until(next_check.into()) => {}
        }
        if local.speaker.is_some() && renew_task.is_none() {
            renew_task = Some(tokio::spawn(renew_loop(
                Arc::clone(&own),
                opts.renew_interval,
                opts.lease_duration,
                renewed_tx.clone(),
                Arc::clone(&metrics),
            )));
        }
        let now = Instant::now();
        let (mut live, next_expiry) = leases.live(now);
        // Our own liveness by our own renewals: others judge us by the lease they see, we by what we wrote.
        live.remove(&me);
        let own_until = (*renewed.borrow()).map(|t| t + opts.lease_duration);
        if local.speaker.is_some() && own_until.is_some_and(|u| u > now) {
            live.insert(me.clone());
        }
        next_check = [next_expiry, own_until.filter(|u| *u > now)]
            .into_iter()
            .flatten()
            .fold(now + Duration::from_secs(1), |a, b| a.min(b));
        metrics
            .live_nodes
            .store(live.len() as u64, Ordering::Relaxed);
        // Until every watch has listed once, the view is partial: electing on it could claim addresses
        // whose rightful announcer we have not heard of yet.
        if !synced.all() || !(dirty || live != last_live) {
            continue;
        }
        dirty = false;
        last_live = live.clone();
        let next = view.assign(&live);
        let changed = next
            .iter()
            .filter(|(ip, n)| assignment.get(*ip) != Some(*n))
            .count();
        metrics
            .elections
            .fetch_add(changed as u64, Ordering::Relaxed);
        assignment = next;
        let now_mine: BTreeSet<IpAddr> = assignment
            .iter()
            .filter(|(_, n)| **n == me)
            .map(|(ip, _)| *ip)
            .collect();
        if now_mine != mine {
            for ip in now_mine.difference(&mine) {
                tracing::info!(%ip, live = ?live, "announce: taking over");
            }
            for ip in mine.difference(&now_mine) {
                let to = assignment.get(ip).map(String::as_str).unwrap_or("nobody");
                tracing::info!(%ip, to, "announce: handing over");
            }
            metrics
                .takeovers
                .fetch_add(now_mine.difference(&mine).count() as u64, Ordering::Relaxed);
            metrics
                .releases
                .fetch_add(mine.difference(&now_mine).count() as u64, Ordering::Relaxed);
            if let Some(s) = &mut local.speaker {
                s.set(&now_mine);
            }
            mine = now_mine;
            *metrics.announced.lock().unwrap_or_else(|e| e.into_inner()) = mine.clone();
        }
    }
    if let Some(t) = renew_task {
        t.abort();
        // Only a node that held a lease deletes it.
        match tokio::time::timeout(Duration::from_secs(2), own.release()).await {
            Ok(Ok(())) => tracing::info!("announce: lease released"),
            Ok(Err(e)) => tracing::warn!(error = %e, "announce: releasing the lease failed"),
            Err(_) => tracing::warn!("announce: releasing the lease timed out"),
        }
    }
    if let Some(mut s) = local.speaker.take() {
        // The speaker's thread blocks in poll for at most 100 ms; join it off the async threads.
        let _ = tokio::task::spawn_blocking(move || s.stop()).await;
    }
    metrics
        .announced
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clear();
}

/// Renews this node's lease every `interval`; publishes when the last successful renewal was sent.
async fn renew_loop(
    own: Arc<lease::OwnLease>,
    interval: Duration,
    duration: Duration,
    renewed: tokio::sync::watch::Sender<Option<Instant>>,
    metrics: Arc<Metrics>,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tick.tick().await;
        let sent = Instant::now();
        // A renewal slower than the lease is worthless: give up on it and try again.
        match tokio::time::timeout(duration, own.renew()).await {
            Ok(Ok(())) => {
                if failing {
                    tracing::info!("announce: lease renewed again");
                    failing = false;
                }
                let _ = renewed.send(Some(sent));
            }
            Ok(Err(e)) => {
                metrics.renew_failures.fetch_add(1, Ordering::Relaxed);
                if !failing {
                    tracing::warn!(error = %e, "announce: renewing the lease failed");
                    failing = true;
                }
            }
            Err(_) => {
                metrics.renew_failures.fetch_add(1, Ordering::Relaxed);
                if !failing {
                    tracing::warn!("announce: renewing the lease timed out");
                    failing = true;
                }
            }
        }
    }
}
