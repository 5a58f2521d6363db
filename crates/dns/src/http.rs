//! The HTTP side, as CoreDNS offers it: `/health` (the process is up), `/ready` (the initial lists are in) and
//! Prometheus `/metrics`, each on the listener the operator chose.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::forward::UpstreamForwarder;
use crate::index::Index;
use crate::metrics::Metrics;
use crate::watch::Readiness;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Path {
    Health,
    Ready,
    Metrics,
}

#[derive(Clone)]
pub(crate) struct HttpState {
    pub ready: Arc<Readiness>,
    pub metrics: Arc<Metrics>,
    pub index: Arc<Index>,
    pub forwarder: Option<UpstreamForwarder>,
}

pub(crate) fn router(paths: &[Path], state: HttpState) -> Router {
    let mut r = Router::new();
    for p in paths {
        r = match p {
            Path::Health => r.route("/health", get(health)),
            Path::Ready => r.route("/ready", get(ready)),
            Path::Metrics => r.route("/metrics", get(metrics)),
        };
    }
    r.with_state(state)
}

async fn health() -> &'static str {
    "OK"
}

async fn ready(State(s): State<HttpState>) -> impl IntoResponse {
    if s.ready.is_ready() {
        (StatusCode::OK, "OK")
    } else {
        // CoreDNS lists the plugins that are not ready yet.
        (StatusCode::SERVICE_UNAVAILABLE, "kubernetes")
    }
}

async fn metrics(State(s): State<HttpState>) -> impl IntoResponse {
    let cache = s.forwarder.as_ref().map(|f| f.cache_len()).unwrap_or(0) as u64;
    let body = s.metrics.render(&[
        (
            "svcplane_dns_services",
            "Services in the index.",
            s.index.service_count() as u64,
        ),
        (
            "svcplane_dns_cache_entries",
            "Replies held by the forwarding cache.",
            cache,
        ),
        (
            "svcplane_dns_ready",
            "1 once the initial lists are loaded.",
            u64::from(s.ready.is_ready()),
        ),
    ]);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}
