//! The agent's HTTP endpoints, as kube-proxy serves them: `/healthz` and `/livez` on the health address
//! (:10256), Prometheus `/metrics` on the metrics address (:10249), and one health-check server per
//! `healthCheckNodePort` of the LoadBalancer Services with `externalTrafficPolicy: Local` on this node.
//! `/debug/state` (metrics address) is ours: what the kernel was last given, for tools and tests that must
//! wait until a change is applied.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, SecondsFormat, Utc};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::state::{lock, Histogram, SharedState, BUCKETS};

/// Binds and serves the health address.
pub async fn serve_health(
    listener: TcpListener,
    state: SharedState,
    sync_period: Duration,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/livez", get(healthz))
        .with_state((state, sync_period));
    axum::serve(listener, app).await
}

fn rfc3339(t: SystemTime) -> String {
    DateTime::<Utc>::from(t).to_rfc3339_opts(SecondsFormat::Nanos, true)
}

async fn healthz(State((state, period)): State<(SharedState, Duration)>) -> Response {
    let s = lock(&state);
    let now = SystemTime::now();
    // kube-proxy: unhealthy once a pending change waits longer than twice the sync period.
    let stale = s
        .pending_since
        .and_then(|p| now.duration_since(p).ok())
        .is_some_and(|d| d > period * 2);
    let healthy = s.synced_once && !stale;
    let body = serde_json::json!({
        "lastUpdated": s.last_sync.map(rfc3339).unwrap_or_default(),
        "currentTime": rfc3339(now),
        "nodeEligible": true,
    });
    let code = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_response(code, body.to_string())
}

fn json_response(code: StatusCode, body: String) -> Response {
    (
        code,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

pub async fn serve_metrics(listener: TcpListener, state: SharedState) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/debug/state", get(debug_state))
        .with_state(state);
    axum::serve(listener, app).await
}

async fn debug_state(State(state): State<SharedState>) -> Response {
    let s = lock(&state);
    let frontends: Vec<serde_json::Value> = s
        .applied
        .values()
        .map(|f| serde_json::json!({"frontend": f.frontend, "service": f.service, "endpoints": f.endpoints}))
        .collect();
    let body = serde_json::json!({
        "generation": s.generation,
        "syncs": s.syncs,
        "pending": s.pending_since.is_some(),
        "frontends": frontends,
        "failedServices": s.failed_services,
        "announcing": s.announce.as_ref().map(|a| a.announced().iter().map(|ip| ip.to_string()).collect::<Vec<_>>()),
    });
    json_response(StatusCode::OK, body.to_string())
}

fn histogram(out: &mut String, name: &str, help: &str, h: &Histogram) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
    for (b, c) in BUCKETS.iter().zip(h.counts.iter()) {
        let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {c}");
    }
    let _ = writeln!(
        out,
        "{name}_bucket{{le=\"+Inf\"}} {}\n{name}_sum {}\n{name}_count {}",
        h.count, h.sum, h.count
    );
}

async fn metrics(State(state): State<SharedState>) -> Response {
    let s = lock(&state);
    let mut out = String::new();
    let mut all = s.full.clone();
    for (i, c) in s.partial.counts.iter().enumerate() {
        all.counts[i] += c;
    }
    all.count += s.partial.count;
    all.sum += s.partial.sum;
    histogram(
        &mut out,
        "kubeproxy_sync_proxy_rules_duration_seconds",
        "SyncProxyRules latency in seconds",
        &all,
    );
    histogram(
        &mut out,
        "kubeproxy_sync_full_proxy_rules_duration_seconds",
        "SyncProxyRules latency in seconds for full resyncs",
        &s.full,
    );
    histogram(
        &mut out,
        "kubeproxy_sync_partial_proxy_rules_duration_seconds",
        "SyncProxyRules latency in seconds for partial resyncs",
        &s.partial,
    );
    histogram(
        &mut out,
        "svcplane_agent_change_to_kernel_seconds",
        "From the watch event of a change to the end of the sync that applied it",
        &s.change_to_kernel,
    );
    let last = s
        .last_sync
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let _ = writeln!(out, "# HELP kubeproxy_sync_proxy_rules_last_timestamp_seconds The last time proxy rules were successfully synced\n# TYPE kubeproxy_sync_proxy_rules_last_timestamp_seconds gauge\nkubeproxy_sync_proxy_rules_last_timestamp_seconds {last}");
    let _ = writeln!(out, "# HELP kubeproxy_sync_proxy_rules_nftables_sync_failures_total Cumulative proxy nftables sync failures\n# TYPE kubeproxy_sync_proxy_rules_nftables_sync_failures_total counter\nkubeproxy_sync_proxy_rules_nftables_sync_failures_total {}", s.failures);
    let _ = writeln!(out, "# HELP svcplane_agent_syncs_total Successful syncs (partial and full)\n# TYPE svcplane_agent_syncs_total counter\nsvcplane_agent_syncs_total {}", s.syncs);
    let _ = writeln!(out, "# HELP svcplane_agent_conntrack_deletions_total conntrack deletions run for stale UDP entries\n# TYPE svcplane_agent_conntrack_deletions_total counter\nsvcplane_agent_conntrack_deletions_total {}", s.conntrack_deletions);
    let _ = writeln!(out, "# HELP svcplane_agent_failed_services Services the kernel refused\n# TYPE svcplane_agent_failed_services gauge\nsvcplane_agent_failed_services {}", s.failed_services.len());
    let _ = writeln!(out, "# HELP svcplane_agent_services Services programmed, per family\n# TYPE svcplane_agent_services gauge");
    for (fam, st) in &s.stats {
        let _ = writeln!(
            out,
            "svcplane_agent_services{{ip_family=\"{fam}\"}} {}",
            st.services
        );
    }
    let _ = writeln!(out, "# HELP svcplane_agent_frontends Frontends (address, protocol, port) programmed\n# TYPE svcplane_agent_frontends gauge");
    for (fam, st) in &s.stats {
        let _ = writeln!(
            out,
            "svcplane_agent_frontends{{ip_family=\"{fam}\"}} {}",
            st.frontends
        );
    }
    let _ = writeln!(out, "# HELP svcplane_agent_nftables_elements Set and map elements in the table (the rules count of this shape)\n# TYPE svcplane_agent_nftables_elements gauge");
    for (fam, st) in &s.stats {
        let _ = writeln!(
            out,
            "svcplane_agent_nftables_elements{{ip_family=\"{fam}\"}} {}",
            st.elements
        );
    }
    let _ = writeln!(out, "# HELP svcplane_agent_nftables_chains Endpoint-choice chains in the table\n# TYPE svcplane_agent_nftables_chains gauge");
    for (fam, st) in &s.stats {
        let _ = writeln!(
            out,
            "svcplane_agent_nftables_chains{{ip_family=\"{fam}\"}} {}",
            st.chains
        );
    }
    if let Some(a) = &s.announce {
        a.render(&mut out);
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        out,
    )
        .into_response()
}

/// What one health-check port answers.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Check {
    namespace: String,
    name: String,
    local_endpoints: usize,
}

/// Keeps one listener per health-check node port, following the published state.
pub async fn run_health_checks(state: SharedState, mut generation: watch::Receiver<u64>) {
    let mut servers: HashMap<u16, (watch::Sender<Check>, tokio::task::JoinHandle<()>)> =
        HashMap::new();
    loop {
        let checks: HashMap<u16, Check> = lock(&state)
            .health_checks
            .iter()
            .map(|c| {
                (
                    c.node_port,
                    Check {
                        namespace: c.service.namespace.clone(),
                        name: c.service.name.clone(),
                        local_endpoints: c.local_endpoints,
                    },
                )
            })
            .collect();
        servers.retain(|port, (_, task)| {
            let keep = checks.contains_key(port) && !task.is_finished();
            if !keep {
                task.abort();
            }
            keep
        });
        for (port, check) in checks {
            if let Some((tx, _)) = servers.get(&port) {
                tx.send_if_modified(|c| {
                    let changed = *c != check;
                    *c = check.clone();
                    changed
                });
                continue;
            }
            // Both families on one socket where the kernel allows it (v4-mapped), else IPv4 only.
            let listener = match TcpListener::bind(SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)))
                .await
            {
                Ok(l) => l,
                Err(_) => match TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], port))).await {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::warn!(port, error = %e, "agent: cannot open health check node port");
                        continue;
                    }
                },
            };
            let (tx, rx) = watch::channel(check);
            let app = Router::new()
                .fallback(health_check)
                .with_state(Arc::new(rx));
            let task = tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
            servers.insert(port, (tx, task));
        }
        if generation.changed().await.is_err() {
            return;
        }
    }
}

async fn health_check(State(rx): State<Arc<watch::Receiver<Check>>>) -> Response {
    let c = rx.borrow().clone();
    let body = serde_json::json!({
        "service": {"namespace": c.namespace, "name": c.name},
        "localEndpoints": c.local_endpoints,
        "serviceProxyHealthy": true,
    });
    let code = if c.local_endpoints > 0 {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        [
            (header::CONTENT_TYPE, "application/json".to_string()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
            (
                header::HeaderName::from_static("x-load-balancing-endpoint-weight"),
                c.local_endpoints.to_string(),
            ),
        ],
        body.to_string(),
    )
        .into_response()
}
