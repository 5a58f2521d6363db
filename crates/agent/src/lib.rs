//! The node agent: keeps one node's kernel in step with the cluster's Services, as kube-proxy does.
//!
//! It owns the watches (Services, EndpointSlices and its own Node, through the `kube` crate, so it runs
//! unchanged against a real cluster), the sync loop that turns them into one nftables change per batch of
//! events (through the `proxy` crate's model and a [`Backend`]), stale UDP conntrack cleanup, the health
//! and metrics endpoints, and the health-check node ports of `externalTrafficPolicy: Local` Services. It
//! runs the LoadBalancer announcer (`announce` crate) and feeds it the Services and EndpointSlices it
//! watches anyway.
//!
//! It must not touch any table but its own (`ip svcplane`, `ip6 svcplane`), and it programs the network
//! namespace it runs in: tests and the lab start it inside namespaces they made.

mod backend;
mod conntrack;
mod http;
mod state;
mod sync;
mod watch;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use proxy::{Config, Family, NodePortAddresses, ProxyModel};
use tokio::net::TcpListener;

pub use announce::AnnounceOptions;
pub use backend::{Backend, BackendError, Netlink, NftCli, SyncReport};

/// Builds the backend of one family (the binary picks netlink or the `nft` CLI).
pub type BackendFactory = Box<dyn Fn(Family) -> Box<dyn Backend> + Send>;

pub struct AgentOptions {
    pub node_name: String,
    pub nodeport_addresses: NodePortAddresses,
    /// `--cluster-cidr`: the pod network (kube-proxy's local-traffic detector).
    pub cluster_cidrs: Vec<IpNet>,
    /// Service ranges: packets to an unallocated address in them are dropped. Empty: read the cluster's
    /// ServiceCIDR objects at start (networking.k8s.io/v1), if it serves them.
    pub service_cidrs: Vec<IpNet>,
    pub masquerade_all: bool,
    /// `--healthz-bind-address` (kube-proxy: 0.0.0.0:10256).
    pub healthz: Option<SocketAddr>,
    /// `--metrics-bind-address` (kube-proxy: 127.0.0.1:10249).
    pub metrics: Option<SocketAddr>,
    /// Full resync (drift repair) period.
    pub sync_period: Duration,
    pub families: Vec<Family>,
    pub table: String,
    /// The LoadBalancer announcer (ARP/NDP); `None` turns it off.
    pub announce: Option<announce::AnnounceOptions>,
}

impl AgentOptions {
    pub fn new(node_name: impl Into<String>) -> AgentOptions {
        let node_name = node_name.into();
        AgentOptions {
            announce: Some(announce::AnnounceOptions::new(node_name.clone())),
            node_name,
            nodeport_addresses: NodePortAddresses::Primary,
            cluster_cidrs: Vec::new(),
            service_cidrs: Vec::new(),
            masquerade_all: false,
            healthz: Some(SocketAddr::from(([0, 0, 0, 0], 10256))),
            metrics: Some(SocketAddr::from(([127, 0, 0, 1], 10249))),
            sync_period: Duration::from_secs(30),
            families: vec![Family::V4, Family::V6],
            table: proxy::DEFAULT_TABLE.to_string(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("binding {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("starting the sync thread: {0}")]
    Thread(std::io::Error),
}

/// The addresses the agent's servers are bound to (port 0 resolved).
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub healthz: Option<SocketAddr>,
    pub metrics: Option<SocketAddr>,
}

async fn bind(addr: Option<SocketAddr>) -> Result<Option<TcpListener>, AgentError> {
    match addr {
        None => Ok(None),
        Some(addr) => TcpListener::bind(addr)
            .await
            .map(Some)
            .map_err(|source| AgentError::Bind { addr, source }),
    }
}

async fn service_cidrs_of(client: &kube::Client) -> Vec<IpNet> {
    use k8s_openapi::api::networking::v1::ServiceCIDR;
    let api = kube::Api::<ServiceCIDR>::all(client.clone());
    match api.list(&Default::default()).await {
        Ok(list) => list
            .items
            .iter()
            .flat_map(|c| {
                c.spec
                    .as_ref()
                    .and_then(|s| s.cidrs.clone())
                    .unwrap_or_default()
            })
            .filter_map(|c| c.parse().ok())
            .collect(),
        Err(e) => {
            tracing::info!(error = %e, "agent: no ServiceCIDRs; unallocated service addresses are not dropped");
            Vec::new()
        }
    }
}

/// Runs the agent until `shutdown` completes. `on_bound` learns the bound addresses first.
pub async fn run(
    client: kube::Client,
    opts: AgentOptions,
    backends: BackendFactory,
    on_bound: impl FnOnce(Bound),
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), AgentError> {
    let health = bind(opts.healthz).await?;
    let metrics = bind(opts.metrics).await?;
    on_bound(Bound {
        healthz: health.as_ref().and_then(|l| l.local_addr().ok()),
        metrics: metrics.as_ref().and_then(|l| l.local_addr().ok()),
    });
    let service_cidrs = if opts.service_cidrs.is_empty() {
        service_cidrs_of(&client).await
    } else {
        opts.service_cidrs.clone()
    };
    let state = state::SharedState::default();
    let announcer = opts
        .announce
        .clone()
        .map(|a| announce::Announcer::start(client.clone(), a));
    state::lock(&state).announce = announcer.as_ref().map(|a| a.metrics());
    let (notify, generation) = tokio::sync::watch::channel(0u64);
    let planes = opts
        .families
        .iter()
        .map(|&family| {
            let mut config = Config::new(family, opts.node_name.clone());
            config.table = opts.table.clone();
            config.nodeport_addresses = opts.nodeport_addresses.clone();
            config.cluster_cidrs = opts.cluster_cidrs.clone();
            config.service_cidrs = service_cidrs.clone();
            config.masquerade_all = opts.masquerade_all;
            // The sync loop's first sync is a full one (and so is the one after any failure).
            let mut model = ProxyModel::new(config);
            model.untracked_until_synced();
            sync::FamilyPlane {
                model,
                backend: backends(family),
            }
        })
        .collect();
    let sync_loop = sync::SyncLoop {
        planes,
        sync_period: opts.sync_period,
        state: state.clone(),
        notify,
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("agent-sync".into())
        .spawn(move || sync_loop.run(rx))
        .map_err(AgentError::Thread)?;
    let mut tasks = Vec::new();
    if let Some(l) = health {
        let (st, period) = (state.clone(), opts.sync_period);
        tasks.push(tokio::spawn(async move {
            let _ = http::serve_health(l, st, period).await;
        }));
    }
    if let Some(l) = metrics {
        let st = state.clone();
        tasks.push(tokio::spawn(async move {
            let _ = http::serve_metrics(l, st).await;
        }));
    }
    tasks.push(tokio::spawn(http::run_health_checks(
        Arc::clone(&state),
        generation,
    )));
    tokio::select! {
        _ = watch::run(client, opts.node_name.clone(), tx, announcer.as_ref().map(|a| a.feed())) => {}
        _ = shutdown => {}
    }
    if let Some(a) = announcer {
        // Hands this node's addresses over at once (its lease is deleted) rather than after a lease expiry.
        a.shutdown().await;
    }
    for t in tasks {
        t.abort();
    }
    // The table stays: connections keep flowing while the agent is away (kube-proxy does the same).
    Ok(())
}
