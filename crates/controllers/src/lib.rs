//! Controllers of svcplane that keep derived objects in step with what users write:
//!
//! - the EndpointSlice controller — for each Service with a selector, the EndpointSlices (and the v1
//!   Endpoints object) of the pods it selects, with the rules of upstream's `endpointslice` and `endpoint`
//!   controllers;
//! - the EndpointSlice mirroring controller ([`mirroring`]) — user-written Endpoints of Services without a
//!   selector mirrored into EndpointSlices, as upstream's `endpointslicemirroring` controller;
//! - the LoadBalancer IPAM controller ([`lbipam`]) — addresses from `LoadBalancerIPPool`s into the status
//!   of `type: LoadBalancer` Services.
//!
//! They own the computation of endpoints from Services, Pods and Nodes and of LoadBalancer addresses from
//! pools, and the writes of EndpointSlices, Endpoints, Service status (`loadBalancer` only), pool status
//! and Events. They are clients of the Kubernetes API only (kube watches, no store access), so they run
//! unchanged against svcplane's API server or any cluster; they must not write Pods, Nodes or Service
//! specs (except [`set_pod_ready`], the kubelet's job done on request) and must not touch slices they do
//! not manage (another `managed-by`, or Services without a selector) nor Services of another
//! `loadBalancerClass`.

mod cache;
mod controller;
pub mod endpoints;
mod events;
mod feed;
pub mod lbipam;
pub mod leader;
mod metrics;
pub mod mirroring;
pub mod model;
mod podstatus;
mod queue;
pub mod slices;
pub mod slimpod;
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

/// The controllers' metrics in the Prometheus text format (for a `/metrics` endpoint).
pub fn metrics_text() -> String {
    let mut t = metrics::METRICS.text();
    t.push_str(&lbipam::metrics::METRICS.text());
    t
}

/// The controller's counters so far in this process (syncs, slice changes, Endpoints writes).
pub fn counters() -> Counters {
    metrics::METRICS.counters()
}
