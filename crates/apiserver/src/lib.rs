//! A Kubernetes-compatible API server for Service networking: the REST conventions of kube-apiserver
//! (discovery, CRUD, patch, watch, Tables, OpenAPI) over HTTPS, with Service defaulting, validation and
//! allocation done in the same store transaction as the write. Besides the built-in kinds it serves
//! svcplane's own `LoadBalancerIPPool` (`svcplane.io/v1alpha1`, see [`pools`]) exactly as kube-apiserver
//! would serve it from the CustomResourceDefinition in `deploy/crds/`.
//!
//! It owns request handling and the rules of each kind. It must not reach into other components:
//! controllers, DNS and the node agent are API clients like kubectl, and storage is behind
//! [`store::Store`].

mod bootstrap;
mod discovery;
mod gc;
mod http_util;
mod listing;
mod meta;
mod metrics;
mod objects;
mod openapi_docs;
pub mod pools;
mod protobuf;
mod rawjson;
pub mod resources;
mod router;
mod selectors;
mod services;
mod status;
pub mod tls;
mod warnings;
mod watch;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use store::Store;

pub use status::ApiError;

#[derive(Clone, Debug)]
pub struct Config {
    pub data_dir: PathBuf,
    pub bind_address: IpAddr,
    pub secure_port: u16,
    /// Address published for the `kubernetes` Service's endpoints and in discovery; defaults to the bind
    /// address (or 127.0.0.1 when binding all addresses).
    pub advertise_address: Option<IpAddr>,
    pub service_cluster_ip_range: Vec<IpNet>,
    pub service_node_port_range: String,
    pub tls_sans: Vec<String>,
    /// How often history older than the previous interval is compacted (kube-apiserver: 5 min).
    pub compaction_interval: Duration,
    /// Keep state in etcd instead of the embedded store in `data_dir` (`--etcd-servers`).
    pub etcd: Option<store::etcd::EtcdConfig>,
    /// With a shared store: how often allocation records are checked against the Services that hold
    /// them (kube-apiserver's repair controllers: 3 min).
    pub repair_interval: Duration,
}

impl Config {
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            bind_address: IpAddr::from([127, 0, 0, 1]),
            secure_port: 6443,
            advertise_address: None,
            service_cluster_ip_range: vec!["10.96.0.0/12"
                .parse()
                .unwrap_or_else(|_| unreachable!())],
            service_node_port_range: "30000-32767".into(),
            tls_sans: Vec::new(),
            compaction_interval: Duration::from_secs(300),
            etcd: None,
            repair_interval: Duration::from_secs(180),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("data directory {0}: {1}")]
    DataDir(String, std::io::Error),
    #[error("store: {0}")]
    Store(#[from] store::StoreError),
    #[error("allocator: {0}")]
    Alloc(#[from] alloc::AllocError),
    #[error("tls: {0}")]
    Tls(#[from] tls::TlsError),
    #[error("listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    #[error("bootstrap: {0}")]
    Bootstrap(String),
}

pub struct Server {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) allocs: services::ServiceAllocators,
    pub(crate) metrics: metrics::Metrics,
    pub(crate) gc: gc::Gc,
    pub(crate) token: String,
    /// host:port clients reach this server at.
    pub(crate) advertise: String,
    pub(crate) openapi: openapi_docs::OpenApiDocs,
    pub(crate) event_cache: watch::EventCache,
}

/// A started server.
pub struct Running {
    pub addr: SocketAddr,
    pub url: String,
    pub kubeconfig: PathBuf,
    pub token: String,
    pub ca_pem: String,
    pub server: Arc<Server>,
}

/// Opens the store (etcd when configured, else the embedded store in `cfg.data_dir`) and starts serving.
pub async fn start(cfg: Config) -> Result<Running, StartError> {
    std::fs::create_dir_all(&cfg.data_dir)
        .map_err(|e| StartError::DataDir(cfg.data_dir.display().to_string(), e))?;
    if let Some(etcd) = &cfg.etcd {
        let etcd = store::etcd::EtcdStore::connect(etcd).await?;
        // Other API servers write to the same etcd: serve watches from one cache per server.
        let cached = store::watch_cache::WatchCache::start(
            Arc::new(etcd),
            store::watch_cache::DEFAULT_WINDOW,
        )
        .await?;
        return start_with_store(cfg, Arc::new(cached), true).await;
    }
    let store = store::embedded::EmbeddedStore::open(&cfg.data_dir.join("store.redb"))?;
    start_with_store(cfg, Arc::new(store), false).await
}

/// Starts serving from `store`; `shared` when other API servers may write to it too (their allocations
/// are then followed, and repaired periodically).
pub async fn start_with_store(
    cfg: Config,
    store: Arc<dyn Store>,
    shared: bool,
) -> Result<Running, StartError> {
    let allocs = services::ServiceAllocators::new(
        &cfg.service_cluster_ip_range,
        &cfg.service_node_port_range,
    )?;
    let listener = tokio::net::TcpListener::bind((cfg.bind_address, cfg.secure_port))
        .await
        .map_err(|e| StartError::Listen(SocketAddr::new(cfg.bind_address, cfg.secure_port), e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| StartError::Listen(SocketAddr::new(cfg.bind_address, cfg.secure_port), e))?;
    let advertise_ip = cfg
        .advertise_address
        .unwrap_or(if cfg.bind_address.is_unspecified() {
            IpAddr::from([127, 0, 0, 1])
        } else {
            cfg.bind_address
        });
    let sans = tls::default_sans(
        cfg.bind_address,
        advertise_ip,
        allocs.first_ip(),
        &cfg.tls_sans,
    );
    let identity = tls::load_or_create(&cfg.data_dir, &sans)?;
    let host = match advertise_ip {
        IpAddr::V6(v6) => format!("[{v6}]"),
        v4 => v4.to_string(),
    };
    let url = format!("https://{host}:{}", addr.port());
    tls::write_kubeconfig(&cfg.data_dir, &url, &identity.ca_pem, &identity.token)?;

    let srv = Arc::new(Server {
        store,
        allocs,
        metrics: Default::default(),
        gc: Default::default(),
        token: identity.token.clone(),
        advertise: format!("{host}:{}", addr.port()),
        openapi: openapi_docs::OpenApiDocs::build(),
        event_cache: Default::default(),
    });
    let repaired_at = srv
        .repair_allocations()
        .await
        .map_err(|e| StartError::Bootstrap(e.body["message"].to_string()))?;
    if shared {
        tokio::spawn(srv.clone().follow_allocations(repaired_at));
        tokio::spawn(srv.clone().run_repair(cfg.repair_interval));
    }
    srv.bootstrap(advertise_ip, addr.port())
        .await
        .map_err(|e| StartError::Bootstrap(e.body["message"].to_string()))?;
    tokio::spawn(srv.clone().run_gc());
    tokio::spawn(srv.clone().run_compaction(cfg.compaction_interval));

    let app = router::router(srv.clone());
    let acceptor = tokio_rustls::TlsAcceptor::from(identity.server_config.clone());
    tokio::spawn(serve(listener, acceptor, app));
    tracing::info!(%url, kubeconfig = %cfg.data_dir.join("kubeconfig").display(), "API server serving");
    Ok(Running {
        addr,
        url,
        kubeconfig: cfg.data_dir.join("kubeconfig"),
        token: identity.token,
        ca_pem: identity.ca_pem,
        server: srv,
    })
}

async fn serve(
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    app: axum::Router,
) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
            };
            let svc = hyper_util::service::TowerToHyperService::new(app);
            let builder =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            if let Err(e) = builder
                .serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(tls), svc)
                .await
            {
                tracing::debug!(%peer, error = %e, "connection ended with error");
            }
        });
    }
}

impl Server {
    /// Keeps the allocators in step with the allocation records other API servers write, from `from`
    /// on. The records, not these bitmaps, are what prevents a double allocation (every allocation is
    /// an absent-compare in its Service's transaction); following them keeps retries rare.
    async fn follow_allocations(self: Arc<Self>, mut from: i64) {
        use futures::StreamExt;
        loop {
            let watches = futures::future::try_join(
                self.store.watch(services::IP_PREFIX, from),
                self.store.watch(services::NODE_PORT_PREFIX, from),
            )
            .await;
            let failed = match watches {
                Ok((ips, ports)) => {
                    let mut both = futures::stream::select(ips, ports);
                    loop {
                        match both.next().await {
                            Some(Ok(ev)) => match ev.event_type {
                                store::EventType::Put => self.allocs.mark_key(&ev.kv.key),
                                store::EventType::Delete => self.allocs.release_key(&ev.kv.key),
                            },
                            Some(Err(e)) => break e.to_string(),
                            None => break "watch ended".to_string(),
                        }
                    }
                }
                Err(e) => e.to_string(),
            };
            // Events were missed: start over from a full read.
            tracing::warn!(error = %failed, "allocation watch broke; re-reading allocations");
            tokio::time::sleep(Duration::from_millis(500)).await;
            if self.allocs.reset().is_err() {
                continue;
            }
            match self.repair_allocations().await {
                Ok(rev) => from = rev,
                Err(e) => tracing::warn!(error = %e.body["message"], "allocation repair failed"),
            }
        }
    }

    /// Periodic repair when API servers share the store. Records and Services are written in one
    /// transaction, so this only finds what was changed in etcd behind the API servers' backs (a key
    /// deleted or restored by hand), as kube-apiserver's repair loops do.
    async fn run_repair(self: Arc<Self>, every: Duration) {
        loop {
            tokio::time::sleep(every).await;
            if let Err(e) = self.repair_allocations().await {
                tracing::warn!(error = %e.body["message"], "allocation repair failed");
            }
        }
    }

    /// Compacts history older than one interval, as kube-apiserver asks etcd to.
    async fn run_compaction(self: Arc<Self>, every: Duration) {
        let mut previous = None;
        loop {
            tokio::time::sleep(every).await;
            let Ok(now) = self.store.current_revision().await else {
                continue;
            };
            if let Some(rev) = previous {
                if let Err(e) = self.store.compact(rev).await {
                    tracing::warn!(error = %e, "compaction failed");
                }
            }
            previous = Some(now);
        }
    }
}
