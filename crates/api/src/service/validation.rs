//! Upstream `ValidateService` and the helpers it shares with update
//! validation and IP-family initialisation.

use super::{
    externally_accessible, is_headless, list, needs_health_check, s, spec_of, CLUSTER_IP_NONE,
    MAX_CLIENT_IP_AFFINITY_SECONDS, TYPE_CLUSTER_IP, TYPE_EXTERNAL_NAME, TYPE_LOAD_BALANCER,
    TYPE_NODE_PORT,
};
use crate::field::FieldError;
use crate::format;
use crate::ip;
use crate::meta::{self, NameRule};
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec, SessionAffinityConfig};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{json, Value};
use std::collections::HashSet;

// Sorted, as upstream lists its sets.
const SERVICE_TYPES: [&str; 4] = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
const AFFINITY_TYPES: [&str; 2] = ["ClientIP", "None"];
const PROTOCOLS: [&str; 3] = ["SCTP", "TCP", "UDP"];
const IP_FAMILIES: [&str; 2] = ["IPv4", "IPv6"];
const IP_FAMILY_POLICIES: [&str; 3] = ["PreferDualStack", "RequireDualStack", "SingleStack"];
const TRAFFIC_POLICIES: [&str; 2] = ["Cluster", "Local"];
// PreferSameTrafficDistribution is GA (locked on) since v1.35.
const TRAFFIC_DISTRIBUTIONS: [&str; 3] = ["PreferClose", "PreferSameZone", "PreferSameNode"];

const ANNOTATION_TOPOLOGY_MODE: &str = "service.kubernetes.io/topology-mode";
const ANNOTATION_TOPOLOGY_HINTS: &str = "service.kubernetes.io/topology-aware-hints";
const ANNOTATION_LB_SOURCE_RANGES: &str = "service.beta.kubernetes.io/load-balancer-source-ranges";
const ONLY_LOAD_BALANCER: &str = "may only be used when `type` is 'LoadBalancer'";

/// Upstream `ValidateServiceCreate` (everything but the allocation-time checks): object metadata,
/// then [`validate_service_spec`]. Since v1.36 (`RelaxedServiceNameValidation`, beta and on by
/// default) a Service name is an RFC 1123 label, so it may start with a digit.
pub fn validate_service(svc: &Service) -> Vec<FieldError> {
    let mut errs =
        meta::validate_object_meta(&svc.metadata, true, NameRule::Dns1123Label, "metadata");
    errs.extend(validate_service_spec(svc));
    errs
}

/// Upstream `validateService`: the checks shared by create and update. Object metadata is not
/// validated here (create validates it in full, update only what may change).
pub(crate) fn validate_service_spec(svc: &Service) -> Vec<FieldError> {
    let spec = spec_of(svc);
    let spec = spec.as_ref();
    let mut errs = Vec::new();
    let annotations = svc.metadata.annotations.clone().unwrap_or_default();

    if let (Some(mode), Some(hints)) = (
        annotations.get(ANNOTATION_TOPOLOGY_MODE),
        annotations.get(ANNOTATION_TOPOLOGY_HINTS),
    ) {
        if mode != hints {
            errs.push(FieldError::invalid(
                format!("metadata.annotations[{ANNOTATION_TOPOLOGY_MODE}]"),
                mode.as_str(),
                format!(
                    "must match annotations[{ANNOTATION_TOPOLOGY_HINTS}] when both are specified"
                ),
            ));
        }
    }

    let svc_type = s(&spec.type_);
    let ports = list(&spec.ports);
    let headless = is_headless(spec);
    let cluster_ips = list(&spec.cluster_ips);

    if ports.is_empty() && !headless && svc_type != TYPE_EXTERNAL_NAME {
        errs.push(FieldError::required("spec.ports", ""));
    }

    match svc_type {
        TYPE_LOAD_BALANCER | TYPE_NODE_PORT if headless => {
            errs.push(FieldError::invalid(
                "spec.clusterIPs[0]",
                cluster_ips[0].as_str(),
                format!("may not be set to 'None' for {svc_type} services"),
            ));
        }
        TYPE_EXTERNAL_NAME => errs.extend(external_name_errors(spec)),
        _ => {}
    }

    let mut port_names = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        errs.extend(service_port_errors(
            port,
            ports.len() > 1,
            &mut port_names,
            &format!("spec.ports[{i}]"),
        ));
    }

    if let Some(selector) = &spec.selector {
        errs.extend(meta::validate_labels(selector, "spec.selector"));
    }

    let affinity = s(&spec.session_affinity);
    if affinity.is_empty() {
        errs.push(FieldError::required("spec.sessionAffinity", ""));
    } else if !AFFINITY_TYPES.contains(&affinity) {
        errs.push(FieldError::not_supported(
            "spec.sessionAffinity",
            affinity,
            &AFFINITY_TYPES,
        ));
    }
    if affinity == "ClientIP" {
        errs.extend(client_ip_affinity_errors(
            spec.session_affinity_config.as_ref(),
        ));
    } else if affinity == "None" && spec.session_affinity_config.is_some() {
        errs.push(FieldError::forbidden(
            "spec.sessionAffinityConfig",
            "must not be set when session affinity is None",
        ));
    }

    errs.extend(cluster_ips_related_errors(spec));

    for (i, external_ip) in list(&spec.external_ips).iter().enumerate() {
        let path = format!("spec.externalIPs[{i}]");
        let ip_errs = ip::validate_ip(&path, external_ip);
        if ip_errs.is_empty() {
            errs.extend(ip::validate_non_special_ip(external_ip, &path));
        } else {
            errs.extend(ip_errs);
        }
    }

    if svc_type.is_empty() {
        errs.push(FieldError::required("spec.type", ""));
    } else if !SERVICE_TYPES.contains(&svc_type) {
        errs.push(FieldError::not_supported(
            "spec.type",
            svc_type,
            &SERVICE_TYPES,
        ));
    }

    if svc_type == TYPE_CLUSTER_IP {
        for (i, port) in ports.iter().enumerate() {
            if port.node_port.unwrap_or(0) != 0 {
                errs.push(FieldError::forbidden(
                    format!("spec.ports[{i}].nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
        }
    }

    errs.extend(duplicate_port_errors(ports));
    errs.extend(source_range_errors(spec, &annotations));

    if spec.allocate_load_balancer_node_ports.is_some() && svc_type != TYPE_LOAD_BALANCER {
        errs.push(FieldError::forbidden(
            "spec.allocateLoadBalancerNodePorts",
            ONLY_LOAD_BALANCER,
        ));
    }
    if svc_type == TYPE_LOAD_BALANCER && spec.allocate_load_balancer_node_ports.is_none() {
        // Upstream's path really lacks the "spec." prefix.
        errs.push(FieldError::required("allocateLoadBalancerNodePorts", ""));
    }

    errs.extend(load_balancer_class_errors(None, spec));
    errs.extend(external_traffic_policy_errors(spec));
    errs.extend(internal_traffic_policy_errors(spec));
    errs.extend(traffic_distribution_errors(spec));
    errs
}

fn external_name_errors(spec: &ServiceSpec) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if !list(&spec.cluster_ips).is_empty() {
        errs.push(FieldError::forbidden(
            "spec.clusterIPs",
            "may not be set for ExternalName services",
        ));
    }
    if !list(&spec.ip_families).is_empty() {
        errs.push(FieldError::forbidden(
            "spec.ipFamilies",
            "may not be set for ExternalName services",
        ));
    }
    if spec.ip_family_policy.is_some() {
        errs.push(FieldError::forbidden(
            "spec.ipFamilyPolicy",
            "may not be set for ExternalName services",
        ));
    }
    // A trailing dot marks the CNAME as fully qualified.
    let external_name = s(&spec.external_name);
    let cname = external_name.strip_suffix('.').unwrap_or(external_name);
    if cname.is_empty() {
        errs.push(FieldError::required("spec.externalName", ""));
    } else {
        for msg in format::is_dns1123_subdomain(cname) {
            errs.push(FieldError::invalid("spec.externalName", cname, msg));
        }
    }
    errs
}

fn service_port_errors(
    port: &ServicePort,
    require_name: bool,
    names: &mut HashSet<String>,
    path: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = s(&port.name);
    if require_name && name.is_empty() {
        errs.push(FieldError::required(format!("{path}.name"), ""));
    } else if !name.is_empty() {
        for msg in format::is_dns1123_label(name) {
            errs.push(FieldError::invalid(format!("{path}.name"), name, msg));
        }
        if !names.insert(name.to_string()) {
            errs.push(FieldError::duplicate(format!("{path}.name"), name));
        }
    }

    for msg in format::is_valid_port_num(i64::from(port.port)) {
        errs.push(FieldError::invalid(format!("{path}.port"), port.port, msg));
    }

    let protocol = s(&port.protocol);
    if protocol.is_empty() {
        errs.push(FieldError::required(format!("{path}.protocol"), ""));
    } else if !PROTOCOLS.contains(&protocol) {
        errs.push(FieldError::not_supported(
            format!("{path}.protocol"),
            protocol,
            &PROTOCOLS,
        ));
    }

    let target_path = format!("{path}.targetPort");
    match &port.target_port {
        Some(IntOrString::String(name)) => {
            for msg in format::is_valid_port_name(name) {
                errs.push(FieldError::invalid(&target_path, name.as_str(), msg));
            }
        }
        Some(IntOrString::Int(n)) => {
            for msg in format::is_valid_port_num(i64::from(*n)) {
                errs.push(FieldError::invalid(&target_path, *n, msg));
            }
        }
        // Go's zero IntOrString is the integer 0.
        None => {
            for msg in format::is_valid_port_num(0) {
                errs.push(FieldError::invalid(&target_path, 0, msg));
            }
        }
    }

    if let Some(app_protocol) = &port.app_protocol {
        for msg in format::is_qualified_name(app_protocol) {
            errs.push(FieldError::invalid(
                format!("{path}.appProtocol"),
                app_protocol.as_str(),
                msg,
            ));
        }
    }
    errs
}

fn client_ip_affinity_errors(config: Option<&SessionAffinityConfig>) -> Vec<FieldError> {
    const PATH: &str = "spec.sessionAffinityConfig";
    const WHEN: &str = "when session affinity type is ClientIP";
    let Some(config) = config else {
        return vec![FieldError::required(PATH, WHEN)];
    };
    let Some(client_ip) = &config.client_ip else {
        return vec![FieldError::required(format!("{PATH}.clientIP"), WHEN)];
    };
    let Some(timeout) = client_ip.timeout_seconds else {
        return vec![FieldError::required(
            format!("{PATH}.clientIP.timeoutSeconds"),
            WHEN,
        )];
    };
    if timeout <= 0 || timeout > MAX_CLIENT_IP_AFFINITY_SECONDS {
        return vec![FieldError::invalid(
            format!("{PATH}.clientIP.timeoutSeconds"),
            timeout,
            format!("must be greater than 0 and less than {MAX_CLIENT_IP_AFFINITY_SECONDS}"),
        )];
    }
    Vec::new()
}

/// Duplicate (protocol, nodePort) and (protocol, port) pairs.
fn duplicate_port_errors(ports: &[ServicePort]) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut node_ports = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let node_port = port.node_port.unwrap_or(0);
        if node_port == 0 {
            continue;
        }
        if !node_ports.insert((s(&port.protocol).to_string(), node_port)) {
            errs.push(FieldError::duplicate(
                format!("spec.ports[{i}].nodePort"),
                node_port,
            ));
        }
    }
    let mut seen = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let protocol = s(&port.protocol);
        if !seen.insert((protocol.to_string(), port.port)) {
            // Upstream reports the key, an internal ServicePort holding only
            // protocol and port, rendered as JSON with Go field names.
            let key = json!({
                "Name": "", "Protocol": protocol, "AppProtocol": null,
                "Port": port.port, "TargetPort": 0, "NodePort": 0
            });
            errs.push(FieldError::duplicate(format!("spec.ports[{i}]"), key));
        }
    }
    errs
}

fn source_range_errors(
    spec: &ServiceSpec,
    annotations: &std::collections::BTreeMap<String, String>,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let is_lb = s(&spec.type_) == TYPE_LOAD_BALANCER;
    let ranges = list(&spec.load_balancer_source_ranges);
    if !ranges.is_empty() {
        // Upstream's path is capitalised like this.
        let path = "spec.LoadBalancerSourceRanges";
        if !is_lb {
            errs.push(FieldError::forbidden(path, ONLY_LOAD_BALANCER));
        }
        for (i, value) in ranges.iter().enumerate() {
            // Historically the values may be space-padded.
            errs.extend(ip::validate_cidr(&format!("{path}[{i}]"), value.trim()));
        }
    } else if let Some(value) = annotations.get(ANNOTATION_LB_SOURCE_RANGES) {
        let path = format!("metadata.annotations[{ANNOTATION_LB_SOURCE_RANGES}]");
        if !is_lb {
            errs.push(FieldError::forbidden(&path, ONLY_LOAD_BALANCER));
        }
        let value = value.trim();
        if !value.is_empty() {
            for cidr in value.split(',') {
                errs.extend(ip::validate_cidr(&path, cidr.trim()));
            }
        }
    }
    errs
}

/// Upstream `validateLoadBalancerClassField`; `old` is set on update.
pub(crate) fn load_balancer_class_errors(
    old: Option<&ServiceSpec>,
    spec: &ServiceSpec,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let is_lb = |sp: &ServiceSpec| s(&sp.type_) == TYPE_LOAD_BALANCER;
    if let Some(old) = old {
        if is_lb(old) && is_lb(spec) && old.load_balancer_class != spec.load_balancer_class {
            errs.push(FieldError::invalid(
                "spec.loadBalancerClass",
                opt_str_value(&spec.load_balancer_class),
                "may not change once set",
            ));
        }
    }
    match &spec.load_balancer_class {
        Some(class) if is_lb(spec) => {
            for msg in format::is_qualified_name(class) {
                errs.push(FieldError::invalid(
                    "spec.loadBalancerClass",
                    class.as_str(),
                    msg,
                ));
            }
        }
        Some(_) => errs.push(FieldError::forbidden(
            "spec.loadBalancerClass",
            ONLY_LOAD_BALANCER,
        )),
        None => {}
    }
    errs
}

fn external_traffic_policy_errors(spec: &ServiceSpec) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let policy = s(&spec.external_traffic_policy);
    if !externally_accessible(spec) {
        if !policy.is_empty() {
            errs.push(FieldError::invalid(
                "spec.externalTrafficPolicy",
                policy,
                "may only be set for externally-accessible services",
            ));
        }
    } else if policy.is_empty() {
        errs.push(FieldError::required("spec.externalTrafficPolicy", ""));
    } else if !TRAFFIC_POLICIES.contains(&policy) {
        errs.push(FieldError::not_supported(
            "spec.externalTrafficPolicy",
            policy,
            &TRAFFIC_POLICIES,
        ));
    }

    let hc_port = spec.health_check_node_port.unwrap_or(0);
    if !needs_health_check(spec) {
        if hc_port != 0 {
            errs.push(FieldError::invalid(
                "spec.healthCheckNodePort",
                hc_port,
                "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
            ));
        }
    } else if hc_port != 0 {
        // 0 is left for the allocator, which upstream runs before validating
        // (so upstream never sees a missing port here).
        for msg in format::is_valid_port_num(i64::from(hc_port)) {
            errs.push(FieldError::invalid(
                "spec.healthCheckNodePort",
                hc_port,
                msg,
            ));
        }
    }
    errs
}

fn internal_traffic_policy_errors(spec: &ServiceSpec) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let t = s(&spec.type_);
    match &spec.internal_traffic_policy {
        // Other types are tolerated without it for historical reasons.
        None if t == TYPE_NODE_PORT || t == TYPE_LOAD_BALANCER || t == TYPE_CLUSTER_IP => {
            errs.push(FieldError::required("spec.internalTrafficPolicy", ""));
        }
        Some(policy) if !TRAFFIC_POLICIES.contains(&policy.as_str()) => {
            errs.push(FieldError::not_supported(
                "spec.internalTrafficPolicy",
                policy.as_str(),
                &TRAFFIC_POLICIES,
            ));
        }
        _ => {}
    }
    errs
}

fn traffic_distribution_errors(spec: &ServiceSpec) -> Vec<FieldError> {
    match &spec.traffic_distribution {
        Some(d) if !TRAFFIC_DISTRIBUTIONS.contains(&d.as_str()) => {
            vec![FieldError::not_supported(
                "spec.trafficDistribution",
                d.as_str(),
                &TRAFFIC_DISTRIBUTIONS,
            )]
        }
        _ => Vec::new(),
    }
}

fn opt_str_value(o: &Option<String>) -> Value {
    o.as_deref().map_or(Value::Null, Value::from)
}

/// Upstream `ValidateServiceClusterIPsRelatedFields`: clusterIP/clusterIPs
/// agreement, ipFamilies, ipFamilyPolicy values and IP/family consistency.
pub(crate) fn cluster_ips_related_errors(spec: &ServiceSpec) -> Vec<FieldError> {
    if s(&spec.type_) == TYPE_EXTERNAL_NAME {
        return Vec::new();
    }
    let mut errs = Vec::new();
    let cluster_ip = s(&spec.cluster_ip);
    let cluster_ips = list(&spec.cluster_ips);
    let families = list(&spec.ip_families);
    let ips_value = || json!(cluster_ips);

    if !cluster_ip.is_empty() {
        if cluster_ips.is_empty() {
            errs.push(FieldError::required("spec.clusterIPs", ""));
        } else if cluster_ips[0] != cluster_ip {
            errs.push(FieldError::invalid(
                "spec.clusterIPs",
                ips_value(),
                "first value must match `clusterIP`",
            ));
        }
    } else if !cluster_ips.is_empty() {
        errs.push(FieldError::invalid(
            "spec.clusterIPs",
            ips_value(),
            "must be empty when `clusterIP` is not specified",
        ));
    }

    let mut seen = HashSet::new();
    for (i, family) in families.iter().enumerate() {
        if !IP_FAMILIES.contains(&family.as_str()) {
            errs.push(FieldError::not_supported(
                format!("spec.ipFamilies[{i}]"),
                family.as_str(),
                &IP_FAMILIES,
            ));
        }
        if !seen.insert(family.as_str()) {
            errs.push(FieldError::duplicate(
                format!("spec.ipFamilies[{i}]"),
                family.as_str(),
            ));
        }
    }

    if let Some(policy) = &spec.ip_family_policy {
        if !IP_FAMILY_POLICIES.contains(&policy.as_str()) {
            errs.push(FieldError::not_supported(
                "spec.ipFamilyPolicy",
                policy.as_str(),
                &IP_FAMILY_POLICIES,
            ));
        }
    }

    let mut has_invalid_ips = false;
    for (i, cip) in cluster_ips.iter().enumerate() {
        if i == 0 && cip == CLUSTER_IP_NONE {
            if cluster_ips.len() > 1 {
                has_invalid_ips = true;
                errs.push(FieldError::invalid(
                    "spec.clusterIPs",
                    ips_value(),
                    "'None' must be the first and only value",
                ));
            }
            continue;
        }
        let ip_errs = ip::validate_ip(&format!("spec.clusterIPs[{i}]"), cip);
        has_invalid_ips |= !ip_errs.is_empty();
        errs.extend(ip_errs);
    }

    if cluster_ips.len() > 2 {
        errs.push(FieldError::invalid(
            "spec.clusterIPs",
            ips_value(),
            "may only hold up to 2 values",
        ));
    }

    // Bad IPs would only skew the dual-stack and family checks below.
    if has_invalid_ips {
        return errs;
    }

    if cluster_ips.len() > 1 {
        let v6_count = cluster_ips.iter().filter(|c| ip::is_ipv6_string(c)).count();
        // Upstream's IsDualStackIPStrings: at least one of each family.
        if v6_count == 0 || v6_count == cluster_ips.len() {
            errs.push(FieldError::invalid(
                "spec.clusterIPs",
                ips_value(),
                "may specify no more than one IP for each IP family",
            ));
        }
    }

    if !is_headless(spec) && !cluster_ips.is_empty() && !families.is_empty() {
        for (i, cip) in cluster_ips.iter().enumerate().take(families.len()) {
            let is_v6 = ip::is_ipv6_string(cip);
            if families[i] == "IPv4" && is_v6 {
                errs.push(FieldError::invalid(
                    format!("spec.clusterIPs[{i}]"),
                    cip.as_str(),
                    format!("expected an IPv4 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
            if families[i] == "IPv6" && !is_v6 {
                errs.push(FieldError::invalid(
                    format!("spec.clusterIPs[{i}]"),
                    cip.as_str(),
                    format!("expected an IPv6 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
        }
    }
    errs
}
