//! Controllers of svcplane that keep derived objects in step with what users write. Today: the
//! EndpointSlice controller — for each Service with a selector, the EndpointSlices (and the v1 Endpoints
//! object) of the pods it selects, with the rules of upstream's `endpointslice` and `endpoint` controllers.
//!
//! It owns the computation of endpoints from Services, Pods and Nodes, and the writes of EndpointSlices,
//! Endpoints and Events. It is a client of the Kubernetes API only (kube watches, no store access), so it
//! runs unchanged against svcplane's API server or any cluster; it must not write Pods, Services or Nodes
//! (except [`set_pod_ready`], the kubelet's job done on request) and must not touch slices it does not
//! manage (another `managed-by`, or Services without a selector).

mod cache;
mod controller;
pub mod endpoints;
mod events;
pub mod leader;
mod metrics;
pub mod model;
mod podstatus;
mod queue;
pub mod slices;
#[cfg(test)]
mod testutil;

pub use controller::{run, EndpointSliceOptions};
pub use leader::LeaseOptions;
pub use metrics::Counters;
pub use podstatus::set_pod_ready;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Sync(String),
    #[error("invalid IP address {0:?}")]
    InvalidIp(String),
}

/// The controller's metrics in the Prometheus text format (for a `/metrics` endpoint).
pub fn metrics_text() -> String {
    metrics::METRICS.text()
}

/// The controller's counters so far in this process (syncs, slice changes, Endpoints writes).
pub fn counters() -> Counters {
    metrics::METRICS.counters()
}
