//! The whole server, assembled: sockets bound from [`DnsOptions`], the watches, the forwarder, the HTTP
//! endpoints. Binding is separate from running so that a caller using port 0 learns the ports first.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinSet;

use crate::config::Config;
use crate::error::Error;
use crate::forward::UpstreamForwarder;
use crate::http::{router, HttpState, Path};
use crate::index::Index;
use crate::metrics::Metrics;
use crate::options::{parse_upstreams, DnsOptions};
use crate::server::{serve, Forwarder, ServeOptions};
use crate::watch::{run_watchers, Readiness};

/// Where the server ended up listening (ports resolved when 0 was asked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundAddrs {
    pub dns: SocketAddr,
    pub health: Option<SocketAddr>,
    pub ready: Option<SocketAddr>,
    pub metrics: Option<SocketAddr>,
}

/// A DNS server with its sockets bound, not yet serving.
pub struct DnsServer {
    index: Arc<Index>,
    readiness: Arc<Readiness>,
    metrics: Arc<Metrics>,
    forwarder: Option<UpstreamForwarder>,
    udp: UdpSocket,
    tcp: TcpListener,
    http: Vec<(TcpListener, Vec<Path>)>,
    addrs: BoundAddrs,
}

/// Binds everything `opts` asks for, then serves until `shutdown` completes.
pub async fn run(
    client: kube::Client,
    opts: DnsOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    DnsServer::bind(opts).await?.run(client, shutdown).await
}

/// UDP and TCP on one port; with port 0, the port the kernel picked for UDP, tried again if TCP has it taken.
pub async fn bind_dns(addr: SocketAddr) -> Result<(UdpSocket, TcpListener), Error> {
    let listen_err = |source| Error::Listen { addr, source };
    let mut attempts = 0;
    loop {
        let udp = UdpSocket::bind(addr).await.map_err(listen_err)?;
        let bound = udp.local_addr().map_err(listen_err)?;
        match TcpListener::bind(bound).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if addr.port() == 0 && attempts < 16 => {
                tracing::debug!(error = %e, %bound, "tcp port taken; picking another");
                attempts += 1;
            }
            Err(e) => return Err(listen_err(e)),
        }
    }
}

impl DnsServer {
    pub async fn bind(opts: DnsOptions) -> Result<DnsServer, Error> {
        let upstreams = parse_upstreams(&opts.upstream)?;
        let (udp, tcp) = bind_dns(opts.listen).await?;
        let dns = udp.local_addr().map_err(|source| Error::Listen {
            addr: opts.listen,
            source,
        })?;
        // Forwarding to ourselves would loop every out-of-zone query until it times out.
        if let Some(me) = upstreams.iter().find(|u| {
            u.port() == dns.port()
                && (u.ip() == dns.ip() || (dns.ip().is_unspecified() && u.ip().is_loopback()))
        }) {
            return Err(Error::Upstream {
                value: me.to_string(),
                reason: format!("that is this server's own address {dns}"),
            });
        }
        let mut nameservers = opts.nameservers.clone();
        if nameservers.is_empty() && !dns.ip().is_unspecified() {
            nameservers.push(dns.ip());
        }
        let index = Arc::new(Index::new(Config {
            zone: opts.cluster_domain.clone(),
            ttl: opts.ttl,
            pods: opts.pods,
            nameservers,
        })?);
        let metrics = Arc::new(Metrics::new());
        let forwarder = (!upstreams.is_empty()).then(|| {
            UpstreamForwarder::new(
                upstreams,
                opts.allow_forward_from.clone(),
                opts.cache_size,
                metrics.clone(),
            )
        });

        // Equal addresses share a listener; each port-0 request gets its own.
        let mut wanted: BTreeMap<SocketAddr, Vec<Path>> = BTreeMap::new();
        let mut anywhere: Vec<(SocketAddr, Path)> = Vec::new();
        for (addr, path) in [
            (opts.health, Path::Health),
            (opts.ready, Path::Ready),
            (opts.metrics, Path::Metrics),
        ] {
            match addr {
                Some(a) if a.port() == 0 => anywhere.push((a, path)),
                Some(a) => wanted.entry(a).or_default().push(path),
                None => {}
            }
        }
        let mut http = Vec::new();
        let mut addrs = BoundAddrs {
            dns,
            health: None,
            ready: None,
            metrics: None,
        };
        let requests = wanted
            .into_iter()
            .chain(anywhere.into_iter().map(|(a, p)| (a, vec![p])));
        for (addr, paths) in requests {
            let l = TcpListener::bind(addr)
                .await
                .map_err(|source| Error::Listen { addr, source })?;
            let bound = l
                .local_addr()
                .map_err(|source| Error::Listen { addr, source })?;
            for p in &paths {
                match p {
                    Path::Health => addrs.health = Some(bound),
                    Path::Ready => addrs.ready = Some(bound),
                    Path::Metrics => addrs.metrics = Some(bound),
                }
            }
            http.push((l, paths));
        }
        Ok(DnsServer {
            index,
            readiness: Arc::new(Readiness::new()),
            metrics,
            forwarder,
            udp,
            tcp,
            http,
            addrs,
        })
    }

    pub fn addrs(&self) -> &BoundAddrs {
        &self.addrs
    }

    pub fn index(&self) -> Arc<Index> {
        self.index.clone()
    }

    pub fn readiness(&self) -> Arc<Readiness> {
        self.readiness.clone()
    }

    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Serves DNS and HTTP and runs the watches until `shutdown` completes; returns early only if an HTTP
    /// listener fails. DNS answers start at once (from an index that fills as the lists arrive); `/ready` says
    /// when it is complete.
    pub async fn run(
        self,
        client: kube::Client,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), Error> {
        tracing::info!(dns = %self.addrs.dns, health = ?self.addrs.health, ready = ?self.addrs.ready,
            metrics = ?self.addrs.metrics, forwarding = self.forwarder.is_some(), "dns: serving");
        let state = HttpState {
            ready: self.readiness.clone(),
            metrics: self.metrics.clone(),
            index: self.index.clone(),
            forwarder: self.forwarder.clone(),
        };
        let mut http = JoinSet::new();
        for (listener, paths) in self.http {
            let addr = listener.local_addr().ok();
            let app = router(&paths, state.clone());
            http.spawn(async move {
                axum::serve(listener, app)
                    .await
                    .map_err(|source| (addr, source))
            });
        }
        let opts = ServeOptions {
            forwarder: self
                .forwarder
                .clone()
                .map(|f| Arc::new(f) as Arc<dyn Forwarder>),
            metrics: self.metrics.clone(),
            ..ServeOptions::default()
        };
        let dns = serve(self.index.clone(), self.udp, self.tcp, opts);
        let watches = run_watchers(client, self.index.clone(), self.readiness.clone());
        let http_failed = async {
            match http.join_next().await {
                Some(Ok(Err((addr, source)))) => Err(Error::Http {
                    addr: addr.unwrap_or(self.addrs.dns),
                    source,
                }),
                // A listener that stopped without an error, or a task that panicked: report it the same way.
                Some(_) => Err(Error::Http {
                    addr: self.addrs.dns,
                    source: std::io::Error::other("http listener stopped"),
                }),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = dns => Ok(()),
            _ = watches => Ok(()),
            r = http_failed => r,
            _ = shutdown => {
                tracing::info!("dns: shutting down");
                Ok(())
            }
        }
    }
}
