//! The API client of every subcommand: a kubeconfig (or the in-cluster config), optionally with several
//! API server URLs (`--server https://a:6443,https://b:6443`, kubectl's flag, taking a list). Requests
//! go to one server until a request to it fails below HTTP (connection refused, reset, TLS), then to the
//! next. A request that never left (the connection could not be made) is sent to the next server at
//! once; one that failed after it was sent is not sent twice: the caller sees that error and retries as
//! it always does. `kube::runtime` watchers resume from their last resourceVersion on the next server,
//! so losing an API server costs a reconnect, not a relist (a 410, and then a relist, only if the other
//! server's watch window no longer reaches back that far).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use anyhow::Context;
use clap::Args;
use futures::future::BoxFuture;
use http::{Request, Response};
use kube::client::Body;

/// Where the cluster's API is, for subcommands that are API clients.
#[derive(Args, Clone, Debug, Default)]
pub struct ClusterArgs {
    /// kubeconfig of the cluster (default: $KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// API server URL(s) to use instead of the kubeconfig's, comma-separated: requests move to the
    /// next when one stops answering (credentials and CA still come from the kubeconfig).
    #[arg(long, value_delimiter = ',')]
    pub server: Vec<String>,
}

impl ClusterArgs {
    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        client_for(self.kubeconfig.as_deref(), &self.server).await
    }
}

pub async fn client_for(
    kubeconfig: Option<&Path>,
    servers: &[String],
) -> anyhow::Result<kube::Client> {
    let cfg = match kubeconfig {
        Some(p) => {
            let kc = kube::config::Kubeconfig::read_from(p)
                .with_context(|| format!("reading {}", p.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await?
        }
        None => kube::Config::infer().await?,
    };
    if servers.len() <= 1 {
        let mut cfg = cfg;
        if let Some(url) = servers.first() {
            cfg.cluster_url = url.parse().with_context(|| format!("--server {url}"))?;
        }
        return Ok(kube::Client::try_from(cfg)?);
    }
    let mut clients = Vec::new();
    for url in servers {
        let mut c = cfg.clone();
        c.cluster_url = url.parse().with_context(|| format!("--server {url}"))?;
        clients.push((url.clone(), kube::Client::try_from(c)?));
    }
    let ns = cfg.default_namespace.clone();
    Ok(kube::Client::new(
        Failover {
            servers: Arc::new(clients),
            active: Arc::new(AtomicUsize::new(0)),
        },
        ns,
    ))
}

/// Sends each request through the client of the active server; moves on when that one fails below HTTP.
#[derive(Clone)]
struct Failover {
    servers: Arc<Vec<(String, kube::Client)>>,
    active: Arc<AtomicUsize>,
}

/// An HTTP answer (any status) is the server's answer; an error before one means the server is gone.
fn server_unreachable(e: &kube::Error) -> bool {
    !matches!(e, kube::Error::Api(_))
}

/// Whether the request certainly never reached the server (hyper-util's connector failed), so that
/// sending it elsewhere cannot apply it twice. kube gives the error only as text.
fn never_sent(e: &kube::Error) -> bool {
    e.to_string().contains("client error (Connect)")
}

impl tower::Service<Request<Body>> for Failover {
    type Response = Response<Body>;
    type Error = kube::Error;
    type Future = BoxFuture<'static, Result<Response<Body>, kube::Error>>;

    fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let servers = self.servers.clone();
        let active = self.active.clone();
        Box::pin(async move {
            let n = servers.len();
            let (parts, body) = req.into_parts();
            // API request bodies are in memory and can be copied for a retry; a streaming one gets
            // one attempt.
            let Some(copy) = body.try_clone() else {
                let i = active.load(Ordering::Relaxed) % n;
                let result = servers[i].1.send(Request::from_parts(parts, body)).await;
                if let Err(e) = &result {
                    move_on(&servers, &active, i, e);
                }
                return result;
            };
            for attempt in 1.. {
                let i = active.load(Ordering::Relaxed) % n;
                let mut req = Request::builder()
                    .method(parts.method.clone())
                    .uri(parts.uri.clone())
                    .version(parts.version)
                    .body(copy.try_clone().unwrap_or(Body::empty()))
                    .map_err(kube::Error::HttpError)?;
                *req.headers_mut() = parts.headers.clone();
                let result = servers[i].1.send(req).await;
                let Err(e) = &result else { return result };
                if !move_on(&servers, &active, i, e) || attempt >= n || !never_sent(e) {
                    return result;
                }
            }
            unreachable!("the loop returns")
        })
    }
}

/// After server `i` failed with `e`: moves to the next server if `e` says `i` is unreachable (and no
/// other request moved already). Returns whether `e` was such an error.
fn move_on(
    servers: &[(String, kube::Client)],
    active: &AtomicUsize,
    i: usize,
    e: &kube::Error,
) -> bool {
    if !server_unreachable(e) {
        return false;
    }
    let next = (i + 1) % servers.len();
    if active
        .compare_exchange(i, next, Ordering::Relaxed, Ordering::Relaxed)
        .is_ok()
    {
        tracing::warn!(server = %servers[i].0, error = %e, next = %servers[next].0, "API server unreachable; moving to the next");
    }
    true
}
