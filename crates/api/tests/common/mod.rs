//! Shared helpers for the api crate's integration tests.
#![allow(dead_code)]

use api::service::{ClusterNetworkConfig, IpFamily};
use api::{default_service, validate_service_create, validate_service_update, FieldError};
use k8s_openapi::api::core::v1::Service;
use serde_json::{json, Value};

pub fn v4() -> ClusterNetworkConfig {
    ClusterNetworkConfig {
        service_ip_families: vec![IpFamily::IPv4],
        node_port_range: (30000, 32767),
    }
}

pub fn v6() -> ClusterNetworkConfig {
    ClusterNetworkConfig {
        service_ip_families: vec![IpFamily::IPv6],
        node_port_range: (30000, 32767),
    }
}

pub fn dual() -> ClusterNetworkConfig {
    ClusterNetworkConfig {
        service_ip_families: vec![IpFamily::IPv4, IpFamily::IPv6],
        node_port_range: (30000, 32767),
    }
}

/// A Service named "web" in "default" with the given spec.
pub fn svc_json(spec: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": spec
    })
}

pub fn parse(manifest: Value) -> Service {
    serde_json::from_value::<Service>(manifest).unwrap()
}

/// Defaults a new Service as the API server would.
pub fn defaulted(manifest: Value, cfg: &ClusterNetworkConfig) -> Service {
    let mut svc = parse(manifest);
    default_service(&mut svc, None, cfg);
    svc
}

/// Defaults then validates a create.
pub fn create_errors(manifest: Value, cfg: &ClusterNetworkConfig) -> Vec<FieldError> {
    let svc = defaulted(manifest, cfg);
    validate_service_create(&svc, cfg)
}

/// Defaults then validates an update of `old` (a stored, valid object).
pub fn update_errors(
    manifest: Value,
    old: &Service,
    cfg: &ClusterNetworkConfig,
) -> Vec<FieldError> {
    let mut svc = parse(manifest);
    default_service(&mut svc, Some(old), cfg);
    validate_service_update(&svc, old, cfg)
}

/// A stored object: defaulted, then given what the allocator would assign.
pub fn stored(
    manifest: Value,
    cfg: &ClusterNetworkConfig,
    ips: &[&str],
    node_ports: &[i32],
) -> Service {
    let mut svc = defaulted(manifest, cfg);
    assert!(
        validate_service_create(&svc, cfg).is_empty(),
        "fixture must be valid"
    );
    let spec = svc.spec.as_mut().unwrap();
    if !ips.is_empty() {
        spec.cluster_ip = Some(ips[0].to_string());
        spec.cluster_ips = Some(ips.iter().map(|s| s.to_string()).collect());
    }
    for (port, np) in spec.ports.iter_mut().flatten().zip(node_ports) {
        port.node_port = Some(*np);
    }
    svc.metadata.resource_version = Some("1".to_string());
    svc.metadata.uid = Some("uid-1".to_string());
    svc
}

pub fn pairs(errs: &[FieldError]) -> Vec<(String, &'static str)> {
    errs.iter().map(|e| (e.field.clone(), e.reason())).collect()
}
