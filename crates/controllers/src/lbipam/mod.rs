//! The LoadBalancer IPAM controller: addresses from `LoadBalancerIPPool`s (`svcplane.io/v1alpha1`) into
//! `status.loadBalancer.ingress` of every `type: LoadBalancer` Service whose `loadBalancerClass` is
//! unset or [`LB_CLASS`].
//!
//! A Service may ask for addresses (annotation [`ANN_LOAD_BALANCER_IPS`], one per family, or the
//! deprecated `spec.loadBalancerIP`), for a pool ([`ANN_IP_POOL`]; such a pool need not have
//! `autoAssign`), and to share its address ([`ANN_ALLOW_SHARED_IP`]: Services with the same key and no
//! common protocol/port may share, as with MetalLB). Otherwise pools with `autoAssign` whose selectors
//! admit the Service are tried by priority (higher first), then name, lowest free address first. A
//! Service that cannot get an address stays pending with a Warning Event (reason `AllocationFailed`)
//! and is retried when addresses are freed or pools or namespaces change.
//!
//! The allocation table ([`alloc::Allocator`]) is pure and lives on the lease holder only; it is
//! rebuilt from every Service's status whenever leadership is gained, so a restart never hands out an
//! address twice. Like the EndpointSlice controller this is an API client only: it writes Service
//! status, Events and pool status, nothing else.

pub mod alloc;
mod controller;
pub(crate) mod metrics;
pub mod model;

pub use controller::{pool_resource, run, COMPONENT, DEFAULT_POOL};
pub use model::{ANN_ALLOW_SHARED_IP, ANN_IP_POOL, ANN_LOAD_BALANCER_IPS, LB_CLASS};

use crate::leader::LeaseOptions;

/// Lease of the LB IPAM controller's leader election (in `kube-system` by default).
pub const LEASE_NAME: &str = "svcplane-lb-ipam-controller";

#[derive(Clone, Debug)]
pub struct LbIpamOptions {
    /// Services synced in parallel (allocation itself is serialised; this overlaps the API writes).
    pub workers: usize,
    /// `None` runs without election (a single replica).
    pub leader_election: Option<LeaseOptions>,
    /// Blocks (CIDRs or ranges) of a pool named [`DEFAULT_POOL`] to create or update at start; empty
    /// leaves pools to the user.
    pub default_pool: Vec<String>,
}

impl Default for LbIpamOptions {
    fn default() -> Self {
        Self {
            workers: 2,
            leader_election: Some(LeaseOptions {
                name: LEASE_NAME.into(),
                ..LeaseOptions::default()
            }),
            default_pool: Vec::new(),
        }
    }
}
