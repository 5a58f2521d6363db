//! Service defaulting: the v1 scheme defaults (run on every decode) and the
//! registry's create/update preparation (clusterIP/clusterIPs sync, keeping
//! allocated values on update, IP families, type-transition clean-up).

use super::families::init_ip_family_fields;
use super::{
    externally_accessible, list, needs_health_check, s, spec_of, ClusterNetworkConfig, IpFamily,
    CLUSTER_IP_NONE, DEFAULT_CLIENT_IP_AFFINITY_SECONDS, POLICY_REQUIRE_DUAL_STACK,
    POLICY_SINGLE_STACK, TRAFFIC_POLICY_CLUSTER, TYPE_CLUSTER_IP, TYPE_EXTERNAL_NAME,
    TYPE_LOAD_BALANCER, TYPE_NODE_PORT,
};
use crate::ip;
use k8s_openapi::api::core::v1::{
    ClientIPConfig, LoadBalancerStatus, Service, ServiceSpec, ServiceStatus, SessionAffinityConfig,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::{BTreeMap, BTreeSet};

/// The v1 scheme defaults (`SetDefaults_Service`), which upstream applies to
/// every decoded Service, including status updates.
pub fn set_defaults_service(svc: &mut Service) {
    let spec = svc.spec.get_or_insert_with(ServiceSpec::default);
    if s(&spec.session_affinity).is_empty() {
        spec.session_affinity = Some("None".to_string());
    }
    match s(&spec.session_affinity) {
        "None" => spec.session_affinity_config = None,
        "ClientIP" => {
            let has_timeout = spec
                .session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds)
                .is_some();
            if !has_timeout {
                spec.session_affinity_config = Some(SessionAffinityConfig {
                    client_ip: Some(ClientIPConfig {
                        timeout_seconds: Some(DEFAULT_CLIENT_IP_AFFINITY_SECONDS),
                    }),
                });
            }
        }
        _ => {}
    }
    if s(&spec.type_).is_empty() {
        spec.type_ = Some(TYPE_CLUSTER_IP.to_string());
    }
    for port in spec.ports.iter_mut().flatten() {
        if s(&port.protocol).is_empty() {
            port.protocol = Some("TCP".to_string());
        }
        let unset = match &port.target_port {
            None => true,
            Some(IntOrString::Int(0)) => true,
            Some(IntOrString::String(name)) => name.is_empty(),
            Some(IntOrString::Int(_)) => false,
        };
        if unset {
            port.target_port = Some(IntOrString::Int(port.port));
        }
    }
    if externally_accessible(spec) && s(&spec.external_traffic_policy).is_empty() {
        spec.external_traffic_policy = Some(TRAFFIC_POLICY_CLUSTER.to_string());
    }
    let t = s(&spec.type_).to_string();
    if spec.internal_traffic_policy.is_none()
        && (t == TYPE_NODE_PORT || t == TYPE_LOAD_BALANCER || t == TYPE_CLUSTER_IP)
    {
        spec.internal_traffic_policy = Some(TRAFFIC_POLICY_CLUSTER.to_string());
    }
    if t == TYPE_LOAD_BALANCER {
        if spec.allocate_load_balancer_node_ports.is_none() {
            spec.allocate_load_balancer_node_ports = Some(true);
        }
        let ingress = svc
            .status
            .as_mut()
            .and_then(|st| st.load_balancer.as_mut())
            .and_then(|lb| lb.ingress.as_mut());
        for ing in ingress.into_iter().flatten() {
            if !s(&ing.ip).is_empty() && ing.ip_mode.is_none() {
                ing.ip_mode = Some("VIP".to_string());
            }
        }
    }
}

/// Everything kube-apiserver does to a Service between decoding and
/// validation: v1 defaults, then (create) clusterIPs from clusterIP and IP
/// family defaults, or (update, `old` = the stored object) re-filling values
/// allocated earlier that the client omitted, clusterIP/clusterIPs sync, IP
/// families, and clearing fields the new type no longer uses. Status is reset
/// on create and carried over on update. Errors that the family defaults run
/// into are reported by the validate functions.
pub fn default_service(svc: &mut Service, old: Option<&Service>, cfg: &ClusterNetworkConfig) {
    set_defaults_service(svc);
    let old_spec = old.map(spec_of);
    let spec = svc.spec.get_or_insert_with(ServiceSpec::default);
    match (old, old_spec.as_deref()) {
        (Some(old), Some(old_spec)) => {
            patch_allocated_values(spec, old_spec);
            normalize_cluster_ips(spec, Some(old_spec));
            apply_ip_family_defaults(spec, Some(old_spec), cfg);
            svc.status = old.status.clone();
            drop_type_dependent_fields(svc, old_spec);
        }
        _ => {
            normalize_cluster_ips(spec, None);
            apply_ip_family_defaults(spec, None, cfg);
            svc.status = Some(ServiceStatus {
                load_balancer: Some(LoadBalancerStatus::default()),
                conditions: None,
            });
        }
    }
}

/// Applies the IP-family defaults only when they succeed: upstream fails the
/// request at that point, so a partial result must not leak into the object
/// that validation later re-examines.
fn apply_ip_family_defaults(
    spec: &mut ServiceSpec,
    old: Option<&ServiceSpec>,
    cfg: &ClusterNetworkConfig,
) {
    let mut candidate = spec.clone();
    if init_ip_family_fields(&mut candidate, old, cfg).is_empty() {
        *spec = candidate;
    }
}

/// Preparation of a `status` subresource update: v1 defaults on the request
/// body, then the spec is taken from the stored object (status writers may
/// not change it).
pub fn default_service_status_update(new: &mut Service, old: &Service) {
    set_defaults_service(new);
    new.spec = old.spec.clone();
}

/// What upstream fills in when reading Services stored before clusterIPs and
/// ipFamilies existed, and the internalTrafficPolicy it once wrongly stored
/// on ExternalName services.
pub fn default_on_read(svc: &mut Service, cfg: &ClusterNetworkConfig) {
    let Some(spec) = svc.spec.as_mut() else {
        return;
    };
    normalize_cluster_ips(spec, None);
    if s(&spec.type_) == TYPE_EXTERNAL_NAME {
        spec.internal_traffic_policy = None;
        return;
    }
    if !list(&spec.ip_families).is_empty() {
        return;
    }
    let primary = cfg.primary_family();
    if s(&spec.cluster_ip) == CLUSTER_IP_NONE {
        if spec.selector.as_ref().is_none_or(BTreeMap::is_empty) {
            spec.ip_family_policy = Some(POLICY_REQUIRE_DUAL_STACK.to_string());
            spec.ip_families = Some(vec![
                primary.as_str().to_string(),
                primary.other().as_str().to_string(),
            ]);
        } else {
            spec.ip_family_policy = Some(POLICY_SINGLE_STACK.to_string());
            spec.ip_families = Some(vec![primary.as_str().to_string()]);
        }
        return;
    }
    let families: Vec<String> = list(&spec.cluster_ips)
        .iter()
        .map(|cip| {
            if ip::is_ipv6_string(cip) {
                IpFamily::IPv6
            } else {
                IpFamily::IPv4
            }
            .as_str()
            .to_string()
        })
        .collect();
    match families.len() {
        1 => spec.ip_family_policy = Some(POLICY_SINGLE_STACK.to_string()),
        2 => spec.ip_family_policy = Some(POLICY_REQUIRE_DUAL_STACK.to_string()),
        _ => {}
    }
    spec.ip_families = Some(families);
}

/// Keeps clusterIP and clusterIPs consistent for clients that only know the
/// singular field (upstream `normalizeClusterIPs`).
fn normalize_cluster_ips(spec: &mut ServiceSpec, old: Option<&ServiceSpec>) {
    let Some(old) = old else {
        if !s(&spec.cluster_ip).is_empty() && list(&spec.cluster_ips).is_empty() {
            spec.cluster_ips = Some(vec![s(&spec.cluster_ip).to_string()]);
        }
        return;
    };
    // An old client patching some other field dropped clusterIPs.
    if !list(&old.cluster_ips).is_empty()
        && list(&spec.cluster_ips).is_empty()
        && s(&old.cluster_ip) == s(&spec.cluster_ip)
    {
        spec.cluster_ips = old.cluster_ips.clone();
    }
    if s(&old.cluster_ip) != s(&spec.cluster_ip) {
        let same_plural = list(&old.cluster_ips) == list(&spec.cluster_ips);
        if !s(&old.cluster_ip).is_empty() && s(&spec.cluster_ip).is_empty() {
            if same_plural {
                spec.cluster_ips = None;
            }
        } else if same_plural {
            spec.cluster_ips = Some(vec![s(&spec.cluster_ip).to_string()]);
        }
    }
}

fn needs_cluster_ip(spec: &ServiceSpec) -> bool {
    s(&spec.type_) != TYPE_EXTERNAL_NAME
}

fn needs_node_port(spec: &ServiceSpec) -> bool {
    let t = s(&spec.type_);
    t == TYPE_NODE_PORT || t == TYPE_LOAD_BALANCER
}

fn node_ports(spec: &ServiceSpec) -> BTreeSet<i32> {
    list(&spec.ports)
        .iter()
        .filter_map(|p| p.node_port)
        .filter(|&n| n != 0)
        .collect()
}

/// Lets clients resubmit a manifest without the values allocated for them
/// (upstream `patchAllocatedValues`).
fn patch_allocated_values(spec: &mut ServiceSpec, old: &ServiceSpec) {
    if needs_cluster_ip(old) && needs_cluster_ip(spec) {
        if s(&spec.cluster_ip).is_empty() {
            spec.cluster_ip = old.cluster_ip.clone();
        }
        if list(&spec.cluster_ips).is_empty() && !list(&old.cluster_ips).is_empty() {
            spec.cluster_ips = old.cluster_ips.clone();
        }
    }

    if needs_node_port(old) && needs_node_port(spec) {
        // Ports still present in both cannot be re-used for another port.
        let used: BTreeSet<i32> = node_ports(old)
            .intersection(&node_ports(spec))
            .copied()
            .collect();
        let by_name: BTreeMap<&str, i32> = list(&old.ports)
            .iter()
            .map(|p| (s(&p.name), p.node_port.unwrap_or(0)))
            .collect();
        for port in spec.ports.iter_mut().flatten() {
            if port.node_port.unwrap_or(0) == 0 {
                let old_value = by_name.get(s(&port.name)).copied().unwrap_or(0);
                if old_value != 0 && !used.contains(&old_value) {
                    port.node_port = Some(old_value);
                }
            }
        }
    }

    if needs_health_check(old)
        && needs_health_check(spec)
        && spec.health_check_node_port.unwrap_or(0) == 0
    {
        spec.health_check_node_port = old.health_check_node_port;
    }
}

/// Clears fields the new type does not use, when the client left them as
/// they were (upstream `dropTypeDependentFields`, update only).
fn drop_type_dependent_fields(svc: &mut Service, old: &ServiceSpec) {
    let Some(spec) = svc.spec.as_mut() else {
        return;
    };

    if needs_cluster_ip(old) && !needs_cluster_ip(spec) {
        if s(&old.cluster_ip) == s(&spec.cluster_ip)
            && list(&old.cluster_ips) == list(&spec.cluster_ips)
        {
            spec.cluster_ip = None;
            spec.cluster_ips = None;
        }
        if list(&old.ip_families) == list(&spec.ip_families) {
            spec.ip_families = None;
        }
        if s(&old.ip_family_policy) == s(&spec.ip_family_policy) {
            spec.ip_family_policy = None;
        }
    }

    // Users may change ports as long as they add no node port of their own.
    if needs_node_port(old)
        && !needs_node_port(spec)
        && node_ports(old).is_superset(&node_ports(spec))
    {
        for port in spec.ports.iter_mut().flatten() {
            port.node_port = None;
        }
    }

    if needs_health_check(old)
        && !needs_health_check(spec)
        && old.health_check_node_port == spec.health_check_node_port
    {
        spec.health_check_node_port = None;
    }

    let was_lb = s(&old.type_) == TYPE_LOAD_BALANCER;
    let is_lb = s(&spec.type_) == TYPE_LOAD_BALANCER;
    if was_lb && !is_lb {
        if let (Some(new_alloc), Some(old_alloc)) = (
            spec.allocate_load_balancer_node_ports,
            old.allocate_load_balancer_node_ports,
        ) {
            if new_alloc == old_alloc {
                spec.allocate_load_balancer_node_ports = None;
            }
        }
        if spec.load_balancer_class == old.load_balancer_class {
            spec.load_balancer_class = None;
        }
    }

    if externally_accessible(old)
        && !externally_accessible(spec)
        && s(&old.external_traffic_policy) == s(&spec.external_traffic_policy)
    {
        spec.external_traffic_policy = None;
    }

    // LB de-provisioning is asynchronous, but users need not see that.
    if !is_lb {
        if let Some(status) = svc.status.as_mut() {
            status.load_balancer = Some(LoadBalancerStatus::default());
        }
    }
}
