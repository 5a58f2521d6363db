//! core/v1 Service: defaulting and validation as kube-apiserver v1.36 does
//! them (pkg/apis/core/v1/defaults.go, pkg/apis/core/validation,
//! pkg/registry/core/service).
//!
//! Upstream allocates IPs and ports *before* validating, and so does the
//! API server: it reports [`ip_family_errors`] first and alone, then
//! allocation failures, then validation. Validation still accepts a 0
//! `spec.healthCheckNodePort` as "to be allocated" for callers that validate
//! without allocating.

mod defaults;
mod families;
mod update;
mod validation;

use k8s_openapi::api::core::v1::{Service, ServiceSpec};

pub use defaults::{
    default_on_read, default_service, default_service_status_update, set_defaults_service,
};
pub use update::{validate_service_status_update, validate_service_update};
pub use validation::validate_service;

use crate::field::FieldError;

pub const TYPE_CLUSTER_IP: &str = "ClusterIP";
pub const TYPE_NODE_PORT: &str = "NodePort";
pub const TYPE_LOAD_BALANCER: &str = "LoadBalancer";
pub const TYPE_EXTERNAL_NAME: &str = "ExternalName";
pub const CLUSTER_IP_NONE: &str = "None";
pub const POLICY_SINGLE_STACK: &str = "SingleStack";
pub const POLICY_PREFER_DUAL_STACK: &str = "PreferDualStack";
pub const POLICY_REQUIRE_DUAL_STACK: &str = "RequireDualStack";
pub const TRAFFIC_POLICY_CLUSTER: &str = "Cluster";
pub const TRAFFIC_POLICY_LOCAL: &str = "Local";
pub const DEFAULT_CLIENT_IP_AFFINITY_SECONDS: i32 = 10800;
pub const MAX_CLIENT_IP_AFFINITY_SECONDS: i32 = 86400;

/// An IP family of the cluster's service CIDRs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpFamily {
    IPv4,
    IPv6,
}

impl IpFamily {
    pub fn as_str(self) -> &'static str {
        match self {
            IpFamily::IPv4 => "IPv4",
            IpFamily::IPv6 => "IPv6",
        }
    }

    pub fn other(self) -> IpFamily {
        match self {
            IpFamily::IPv4 => IpFamily::IPv6,
            IpFamily::IPv6 => IpFamily::IPv4,
        }
    }
}

/// What the defaulting and family checks need to know about the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterNetworkConfig {
    /// Families of --service-cluster-ip-range, primary first; 1 or 2 entries.
    pub service_ip_families: Vec<IpFamily>,
    /// --service-node-port-range, inclusive (used by the allocator, not here).
    pub node_port_range: (u16, u16),
}

impl ClusterNetworkConfig {
    fn primary_family(&self) -> IpFamily {
        self.service_ip_families
            .first()
            .copied()
            .unwrap_or(IpFamily::IPv4)
    }

    fn has_family(&self, family: &str) -> bool {
        self.service_ip_families
            .iter()
            .any(|f| f.as_str() == family)
    }

    fn is_dual_stack(&self) -> bool {
        self.service_ip_families.len() >= 2
    }
}

/// `ValidateServiceCreate` plus the IP-family checks upstream makes while
/// allocating. Call after [`default_service`] with `old = None`.
pub fn validate_service_create(svc: &Service, cfg: &ClusterNetworkConfig) -> Vec<FieldError> {
    let family_errs = families::family_errors(svc, None, cfg);
    if !family_errs.is_empty() {
        return family_errs;
    }
    validate_service(svc)
}

/// The IP-family errors upstream's allocator fails a write with before anything else is checked
/// (`initIPFamilyFields`); `old` is the stored Service on update. Call after [`default_service`].
pub fn ip_family_errors(
    svc: &Service,
    old: Option<&Service>,
    cfg: &ClusterNetworkConfig,
) -> Vec<FieldError> {
    families::family_errors(svc, old, cfg)
}

pub(crate) fn s(o: &Option<String>) -> &str {
    o.as_deref().unwrap_or("")
}

pub(crate) fn list<T>(o: &Option<Vec<T>>) -> &[T] {
    o.as_deref().unwrap_or(&[])
}

/// The spec, or an empty one when absent (Go's zero value).
pub(crate) fn spec_of(svc: &Service) -> std::borrow::Cow<'_, ServiceSpec> {
    match &svc.spec {
        Some(spec) => std::borrow::Cow::Borrowed(spec),
        None => std::borrow::Cow::Owned(ServiceSpec::default()),
    }
}

/// Upstream `isHeadlessService`: judged on clusterIPs, not clusterIP.
pub(crate) fn is_headless(spec: &ServiceSpec) -> bool {
    matches!(list(&spec.cluster_ips), [only] if only == CLUSTER_IP_NONE)
}

/// Upstream `ExternallyAccessible`.
pub(crate) fn externally_accessible(spec: &ServiceSpec) -> bool {
    let t = s(&spec.type_);
    t == TYPE_LOAD_BALANCER
        || t == TYPE_NODE_PORT
        || (t == TYPE_CLUSTER_IP && !list(&spec.external_ips).is_empty())
}

/// Upstream `NeedsHealthCheck`.
pub(crate) fn needs_health_check(spec: &ServiceSpec) -> bool {
    s(&spec.type_) == TYPE_LOAD_BALANCER && s(&spec.external_traffic_policy) == TRAFFIC_POLICY_LOCAL
}
