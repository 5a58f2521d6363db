//! Update rules: `ValidateServiceUpdate` (what may change between the stored
//! and the new Service) and `ValidateServiceStatusUpdate`.

use super::families::family_errors;
use super::validation::{load_balancer_class_errors, validate_service_spec};
use super::{
    is_headless, list, needs_health_check, s, spec_of, ClusterNetworkConfig, POLICY_SINGLE_STACK,
    TYPE_EXTERNAL_NAME, TYPE_LOAD_BALANCER,
};
use crate::field::FieldError;
use crate::format;
use crate::ip;
use crate::meta;
use k8s_openapi::api::core::v1::{LoadBalancerStatus, Service, ServiceSpec};
use serde_json::{json, Value};

const IP_MODES: [&str; 2] = ["Proxy", "VIP"];

/// Upstream `ValidateServiceUpdate` plus the IP-family checks it makes while
/// re-allocating. Call after [`super::default_service`] with `Some(old)`.
pub fn validate_service_update(
    new: &Service,
    old: &Service,
    cfg: &ClusterNetworkConfig,
) -> Vec<FieldError> {
    let family_errs = family_errors(new, Some(old), cfg);
    if !family_errs.is_empty() {
        return family_errs;
    }
    let new_spec = spec_of(new);
    let old_spec = spec_of(old);
    let mut errs = meta::validate_object_meta_update(&new.metadata, &old.metadata, "metadata");
    // Cluster IPs may gain or lose a secondary, but the primary is fixed
    // unless the service moves to or from ExternalName.
    errs.extend(cluster_ips_update_errors(&old_spec, &new_spec));
    errs.extend(ip_families_update_errors(&old_spec, &new_spec));
    errs.extend(load_balancer_class_errors(Some(&old_spec), &new_spec));
    if needs_health_check(&old_spec)
        && needs_health_check(&new_spec)
        && new_spec.health_check_node_port != old_spec.health_check_node_port
    {
        errs.push(FieldError::forbidden(
            "spec.healthCheckNodePort",
            "field is immutable",
        ));
    }
    errs.extend(validate_service_spec(new));
    errs
}

fn policy_value(spec: &ServiceSpec) -> Value {
    spec.ip_family_policy
        .as_deref()
        .map_or(Value::Null, Value::from)
}

fn is_single_stack(spec: &ServiceSpec) -> bool {
    spec.ip_family_policy.as_deref() == Some(POLICY_SINGLE_STACK)
}

fn either_external_name(old: &ServiceSpec, new: &ServiceSpec) -> bool {
    s(&new.type_) == TYPE_EXTERNAL_NAME || s(&old.type_) == TYPE_EXTERNAL_NAME
}

/// Upstream `validateUpgradeDowngradeClusterIPs`.
fn cluster_ips_update_errors(old: &ServiceSpec, new: &ServiceSpec) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if either_external_name(old, new) || (is_headless(old) && is_headless(new)) {
        return errs;
    }
    let (old_ips, new_ips) = (list(&old.cluster_ips), list(&new.cluster_ips));
    let new_value = || json!(new_ips);
    let changed = "may not change once set";
    if old_ips.len() == new_ips.len() {
        for (i, ip) in old_ips.iter().enumerate() {
            if *ip != new_ips[i] {
                errs.push(FieldError::invalid(
                    format!("spec.clusterIPs[{i}]"),
                    new_value(),
                    changed,
                ));
            }
        }
    } else if old_ips.len() > new_ips.len() {
        if new_ips.is_empty() {
            errs.push(FieldError::invalid(
                "spec.clusterIPs[0]",
                new_value(),
                "primary clusterIP can not be unset",
            ));
        }
        if let (Some(o), Some(n)) = (old_ips.first(), new_ips.first()) {
            if o != n {
                errs.push(FieldError::invalid(
                    "spec.clusterIPs[0]",
                    new_value(),
                    changed,
                ));
            }
        }
        if new_ips.len() == 1 && !is_single_stack(new) {
            errs.push(FieldError::invalid(
                "spec.ipFamilyPolicy",
                policy_value(new),
                "must be set to 'SingleStack' when releasing the secondary clusterIP",
            ));
        }
    } else if let (Some(o), Some(n)) = (old_ips.first(), new_ips.first()) {
        if o != n {
            errs.push(FieldError::invalid(
                "spec.clusterIPs[0]",
                new_value(),
                changed,
            ));
        }
    }
    errs
}

/// Upstream `validateUpgradeDowngradeIPFamilies`, including its habit of
/// reporting clusterIPs as the bad value of some ipFamilies errors.
fn ip_families_update_errors(old: &ServiceSpec, new: &ServiceSpec) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if either_external_name(old, new) || is_headless(old) || is_headless(new) {
        // Headless services may change families, and so may services
        // becoming or ceasing to be headless.
        return errs;
    }
    let (old_fams, new_fams) = (list(&old.ip_families), list(&new.ip_families));
    let changed = "may not change once set";
    if old_fams.len() == new_fams.len() {
        for (i, fam) in old_fams.iter().enumerate() {
            if *fam != new_fams[i] {
                errs.push(FieldError::invalid(
                    "spec.ipFamilies[0]",
                    json!(new_fams),
                    changed,
                ));
            }
        }
    } else if old_fams.len() > new_fams.len() {
        if list(&new.cluster_ips).is_empty() {
            errs.push(FieldError::invalid(
                "spec.ipFamilies[0]",
                json!(new_fams),
                "primary ipFamily can not be unset",
            ));
        }
        if let Some(n) = new_fams.first() {
            if Some(n) != old_fams.first() {
                errs.push(FieldError::invalid(
                    "spec.ipFamilies[0]",
                    json!(list(&new.cluster_ips)),
                    changed,
                ));
            }
        }
        if new_fams.len() == 1 && !is_single_stack(new) {
            errs.push(FieldError::invalid(
                "spec.ipFamilyPolicy",
                policy_value(new),
                "must be set to 'SingleStack' when releasing the secondary ipFamily",
            ));
        }
    } else if let (Some(o), Some(n)) = (old_fams.first(), new_fams.first()) {
        if o != n {
            errs.push(FieldError::invalid(
                "spec.ipFamilies[0]",
                json!(list(&new.cluster_ips)),
                changed,
            ));
        }
    }
    errs
}

/// Upstream `ValidateServiceStatusUpdate`. The spec that counts is the
/// stored one: status writers cannot change it.
pub fn validate_service_status_update(new: &Service, old: &Service) -> Vec<FieldError> {
    let mut errs = meta::validate_object_meta_update(&new.metadata, &old.metadata, "metadata");
    let old_spec = spec_of(old);
    let empty = LoadBalancerStatus::default();
    let lb = new
        .status
        .as_ref()
        .and_then(|st| st.load_balancer.as_ref())
        .unwrap_or(&empty);
    errs.extend(load_balancer_status_errors(lb, &old_spec));
    errs
}

fn load_balancer_status_errors(status: &LoadBalancerStatus, spec: &ServiceSpec) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let ingress = list(&status.ingress);
    let path = "status.loadBalancer.ingress";
    if s(&spec.type_) != TYPE_LOAD_BALANCER && !ingress.is_empty() {
        errs.push(FieldError::forbidden(
            path,
            "may only be used when `spec.type` is 'LoadBalancer'",
        ));
        return errs;
    }
    for (i, ing) in ingress.iter().enumerate() {
        let idx = format!("{path}[{i}]");
        let ip_str = s(&ing.ip);
        if !ip_str.is_empty() {
            errs.extend(ip::validate_ip(&format!("{idx}.ip"), ip_str));
        }
        match &ing.ip_mode {
            None if !ip_str.is_empty() => {
                errs.push(FieldError::required(
                    format!("{idx}.ipMode"),
                    "must be specified when `ip` is set",
                ));
            }
            Some(_) if ip_str.is_empty() => {
                errs.push(FieldError::forbidden(
                    format!("{idx}.ipMode"),
                    "may not be specified when `ip` is not set",
                ));
            }
            Some(mode) if !IP_MODES.contains(&mode.as_str()) => {
                errs.push(FieldError::not_supported(
                    format!("{idx}.ipMode"),
                    mode.as_str(),
                    &IP_MODES,
                ));
            }
            _ => {}
        }
        let hostname = s(&ing.hostname);
        if !hostname.is_empty() {
            for msg in format::is_dns1123_subdomain(hostname) {
                errs.push(FieldError::invalid(
                    format!("{idx}.hostname"),
                    hostname,
                    msg,
                ));
            }
            if ip::parse_ip_sloppy(hostname).is_some() {
                errs.push(FieldError::invalid(
                    format!("{idx}.hostname"),
                    hostname,
                    "must be a DNS name, not an IP address",
                ));
            }
        }
    }
    errs
}
