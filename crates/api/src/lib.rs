//! The `api` crate owns kube-apiserver's object semantics for svcplane: the
//! defaulting and validation of core/v1 Services and discovery/v1 EndpointSlices, the ObjectMeta rules shared
//! by every kind, and the exact error texts and 422 `Status` bodies that
//! clients compare against (Kubernetes v1.33).
//!
//! Everything here is a pure function over `k8s-openapi` types: no I/O, no
//! storage, no allocation of IPs or ports (the API server allocates after
//! defaulting and validation), and no feature gates beyond v1.33 defaults.

pub mod endpoints;
pub mod endpointslice;
pub mod field;
pub mod format;
pub mod ip;
pub mod meta;
pub mod pod;
pub mod service;

pub use field::{invalid_status, ErrorType, FieldError};
pub use service::{
    default_service, validate_service_create, validate_service_status_update,
    validate_service_update, ClusterNetworkConfig, IpFamily,
};
