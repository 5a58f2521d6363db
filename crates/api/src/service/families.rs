//! ipFamilyPolicy / ipFamilies initialisation against the cluster's service
//! CIDRs (upstream `initIPFamilyFields` in pkg/registry/core/service/storage).
//!
//! Upstream runs this at allocation time and fails the request with only
//! these errors; it is idempotent, so defaulting applies it and validation
//! re-runs it on a copy to recover the errors.

use super::validation::cluster_ips_related_errors;
use super::{
    list, s, spec_of, ClusterNetworkConfig, IpFamily, CLUSTER_IP_NONE, POLICY_PREFER_DUAL_STACK,
    POLICY_REQUIRE_DUAL_STACK, POLICY_SINGLE_STACK, TYPE_CLUSTER_IP, TYPE_EXTERNAL_NAME,
    TYPE_LOAD_BALANCER, TYPE_NODE_PORT,
};
use crate::field::FieldError;
use crate::ip;
use k8s_openapi::api::core::v1::{Service, ServiceSpec};
use serde_json::json;

/// The errors the family initialisation would fail the request with.
pub(crate) fn family_errors(
    svc: &Service,
    old: Option<&Service>,
    cfg: &ClusterNetworkConfig,
) -> Vec<FieldError> {
    let mut probe = spec_of(svc).into_owned();
    let old_spec = old.map(spec_of);
    init_ip_family_fields(&mut probe, old_spec.as_deref(), cfg)
}

/// Defaults ipFamilyPolicy and ipFamilies, returning the errors upstream
/// would reject the request with (fields are left as far as upstream got).
pub(crate) fn init_ip_family_fields(
    spec: &mut ServiceSpec,
    old: Option<&ServiceSpec>,
    cfg: &ClusterNetworkConfig,
) -> Vec<FieldError> {
    if s(&spec.type_) == TYPE_EXTERNAL_NAME {
        return Vec::new();
    }
    // Preferred-dual-stack services are not silently upgraded or downgraded
    // when the cluster changes; only an explicit policy change moves them.
    if is_matching_prefer_dual_stack(spec, old) {
        return Vec::new();
    }

    if spec.ip_family_policy.is_none() {
        let inherited = old.and_then(|o| o.ip_family_policy.clone());
        spec.ip_family_policy = Some(match inherited {
            Some(policy) => policy,
            None if s(&spec.cluster_ip) == CLUSTER_IP_NONE && is_selectorless(spec) => {
                POLICY_REQUIRE_DUAL_STACK.to_string()
            }
            None => POLICY_SINGLE_STACK.to_string(),
        });
    }

    let errs = cluster_ips_related_errors(spec);
    if !errs.is_empty() {
        return errs;
    }

    let mut errs = Vec::new();
    let policy = s(&spec.ip_family_policy).to_string();
    let policy_value = || json!(policy);

    if let Some(old) = old {
        if policy == POLICY_SINGLE_STACK {
            // Asking for single-stack while leaving both values in place is
            // clear intent to drop the secondary; the primary is immutable.
            if list(&old.cluster_ips) == list(&spec.cluster_ips) {
                if let Some(ips) = spec.cluster_ips.as_mut().filter(|ips| ips.len() > 1) {
                    ips.truncate(1);
                }
            }
            if list(&old.ip_families) == list(&spec.ip_families) {
                if let Some(fams) = spec.ip_families.as_mut().filter(|f| f.len() > 1) {
                    fams.truncate(1);
                }
            }
        } else {
            let new_ips = list(&spec.cluster_ips).len();
            if new_ips != 0 && new_ips < list(&old.cluster_ips).len() {
                errs.push(FieldError::invalid(
                    "spec.ipFamilyPolicy",
                    policy_value(),
                    "must be 'SingleStack' to release the secondary cluster IP",
                ));
            }
            let new_fams = list(&spec.ip_families).len();
            if new_fams != 0 && new_fams < list(&old.ip_families).len() {
                errs.push(FieldError::invalid(
                    "spec.ipFamilyPolicy",
                    policy_value(),
                    "must be 'SingleStack' to release the secondary IP family",
                ));
            }
        }
    }

    if policy == POLICY_SINGLE_STACK {
        if list(&spec.cluster_ips).len() == 2 {
            errs.push(FieldError::invalid(
                "spec.ipFamilyPolicy",
                policy_value(),
                "must be 'RequireDualStack' or 'PreferDualStack' when multiple cluster IPs are specified",
            ));
        }
        if list(&spec.ip_families).len() == 2 {
            errs.push(FieldError::invalid(
                "spec.ipFamilyPolicy",
                policy_value(),
                "must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified",
            ));
        }
    }

    // Infer missing families from the given cluster IPs.
    let cluster_ips = list(&spec.cluster_ips).to_vec();
    for (i, cip) in cluster_ips.iter().enumerate() {
        if cip == CLUSTER_IP_NONE {
            break;
        }
        if i >= list(&spec.ip_families).len() {
            let family = family_of(cip);
            if cfg.has_family(family) {
                spec.ip_families
                    .get_or_insert_with(Vec::new)
                    .push(family.to_string());
            } else {
                errs.push(FieldError::invalid(
                    format!("spec.clusterIPs[{i}]"),
                    json!(cluster_ips),
                    format!("{family} is not configured on this cluster"),
                ));
            }
        }
    }
    if !errs.is_empty() {
        return errs;
    }

    // Headless without selector may be dual-stack even on a single-stack
    // cluster: its endpoints are managed by the user.
    if s(&spec.cluster_ip) == CLUSTER_IP_NONE && is_selectorless(spec) {
        let families = spec.ip_families.get_or_insert_with(Vec::new);
        if families.is_empty() {
            families.push(cfg.primary_family().as_str().to_string());
        }
        if families.len() < 2 && policy != POLICY_SINGLE_STACK {
            let other = other_family(&families[0]);
            families.push(other.to_string());
        }
        return Vec::new();
    }

    if policy == POLICY_REQUIRE_DUAL_STACK && !cfg.is_dual_stack() {
        errs.push(FieldError::invalid(
            "spec.ipFamilyPolicy",
            policy_value(),
            "this cluster is not configured for dual-stack services",
        ));
    }
    for (i, family) in list(&spec.ip_families).iter().enumerate() {
        if !cfg.has_family(family) {
            errs.push(FieldError::invalid(
                format!("spec.ipFamilies[{i}]"),
                family.as_str(),
                "not configured on this cluster",
            ));
        }
    }
    if !errs.is_empty() {
        return errs;
    }

    let families = spec.ip_families.get_or_insert_with(Vec::new);
    if families.is_empty() {
        families.push(cfg.primary_family().as_str().to_string());
    }
    if policy != POLICY_SINGLE_STACK && families.len() == 1 && cfg.is_dual_stack() {
        let other = other_family(&families[0]);
        families.push(other.to_string());
    }
    Vec::new()
}

/// The family to add next to `family` (anything not IPv4 pairs with IPv4).
fn other_family(family: &str) -> &'static str {
    if family == IpFamily::IPv4.as_str() {
        IpFamily::IPv6.as_str()
    } else {
        IpFamily::IPv4.as_str()
    }
}

fn is_selectorless(spec: &ServiceSpec) -> bool {
    spec.selector.as_ref().is_none_or(|sel| sel.is_empty())
}

fn family_of(ip_str: &str) -> &'static str {
    match ip::parse_ip_sloppy(ip_str) {
        Some(parsed) if ip::is_ipv4(&parsed) => IpFamily::IPv4.as_str(),
        Some(_) => IpFamily::IPv6.as_str(),
        None => "unknown",
    }
}

/// Upstream `isMatchingPreferDualStackClusterIPFields`.
fn is_matching_prefer_dual_stack(spec: &ServiceSpec, old: Option<&ServiceSpec>) -> bool {
    let Some(old) = old else { return false };
    let Some(policy) = &spec.ip_family_policy else {
        return false;
    };
    let t = s(&spec.type_);
    if s(&old.type_) != t {
        return false;
    }
    if t != TYPE_CLUSTER_IP && t != TYPE_NODE_PORT && t != TYPE_LOAD_BALANCER {
        return false;
    }
    if policy != POLICY_PREFER_DUAL_STACK {
        return false;
    }
    if old
        .ip_family_policy
        .as_deref()
        .is_some_and(|p| p != POLICY_PREFER_DUAL_STACK)
    {
        return false;
    }
    list(&old.cluster_ips) == list(&spec.cluster_ips)
        && list(&old.ip_families) == list(&spec.ip_families)
}
