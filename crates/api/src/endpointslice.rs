//! discovery.k8s.io/v1 EndpointSlice validation, as kube-apiserver's `ValidateEndpointSlice` applies it: the
//! address type, each endpoint's addresses (valid for the family and not special: loopback, link-local and
//! unspecified addresses are never endpoints), node name, hostname and hints, and the ports.

use std::collections::HashSet;

use k8s_openapi::api::discovery::v1::{Endpoint, EndpointHints, EndpointPort, EndpointSlice};

use crate::field::FieldError;
use crate::{format, ip};

const MAX_ENDPOINTS: usize = 1000;
const MAX_ADDRESSES: usize = 100;
const MAX_PORTS: usize = 100;
const MAX_HINTS: usize = 8;
const ADDRESS_TYPES: [&str; 3] = ["FQDN", "IPv4", "IPv6"];

/// Fills what the v1 API defaults: a port's name ("") and protocol (TCP).
pub fn default_endpoint_slice(slice: &mut EndpointSlice) {
    for p in slice.ports.iter_mut().flatten() {
        p.name.get_or_insert_with(String::new);
        p.protocol.get_or_insert_with(|| "TCP".to_string());
    }
}

/// Every error of a slice being created, or replacing `old`.
pub fn validate_endpoint_slice(
    slice: &EndpointSlice,
    old: Option<&EndpointSlice>,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let address_type = slice.address_type.as_str();
    if address_type.is_empty() {
        errs.push(FieldError::required("addressType", ""));
    } else if !ADDRESS_TYPES.contains(&address_type)
        && old.is_none_or(|o| o.address_type != address_type)
    {
        errs.push(FieldError::not_supported(
            "addressType",
            address_type,
            &ADDRESS_TYPES,
        ));
    }
    errs.extend(validate_endpoints(&slice.endpoints, address_type));
    errs.extend(validate_ports(slice.ports.as_deref().unwrap_or_default()));
    if let Some(old) = old {
        if old.address_type != slice.address_type {
            errs.push(FieldError::invalid(
                "addressType",
                slice.address_type.as_str(),
                "field is immutable",
            ));
        }
    }
    errs
}

fn validate_endpoints(endpoints: &[Endpoint], address_type: &str) -> Vec<FieldError> {
    if endpoints.len() > MAX_ENDPOINTS {
        return vec![FieldError::too_many(
            "endpoints",
            endpoints.len(),
            MAX_ENDPOINTS,
        )];
    }
    let mut errs = Vec::new();
    for (i, e) in endpoints.iter().enumerate() {
        let at = format!("endpoints[{i}]");
        let addresses = format!("{at}.addresses");
        if e.addresses.is_empty() {
            errs.push(FieldError::required(
                addresses.as_str(),
                "must contain at least 1 address",
            ));
        } else if e.addresses.len() > MAX_ADDRESSES {
            errs.push(FieldError::too_many(
                addresses.as_str(),
                e.addresses.len(),
                MAX_ADDRESSES,
            ));
        }
        for (j, address) in e.addresses.iter().enumerate() {
            let path = format!("{addresses}[{j}]");
            let family_ok = match address_type {
                "IPv4" => ip::parse_ip_sloppy(address).is_some_and(|a| ip::is_ipv4(&a)),
                "IPv6" => ip::parse_ip_sloppy(address).is_some_and(|a| !ip::is_ipv4(&a)),
                "FQDN" => {
                    errs.extend(FieldError::invalid_all(
                        &path,
                        address,
                        format::is_dns1123_subdomain(address),
                    ));
                    continue;
                }
                _ => continue,
            };
            if !family_ok {
                let what = if address_type == "IPv4" {
                    "IPv4"
                } else {
                    "IPv6"
                };
                errs.push(FieldError::invalid(
                    path.as_str(),
                    address.as_str(),
                    format!("must be a valid {what} address"),
                ));
            }
            errs.extend(ip::validate_non_special_ip(address, &path));
        }
        if let Some(node) = &e.node_name {
            errs.extend(FieldError::invalid_all(
                &format!("{at}.nodeName"),
                node,
                format::is_dns1123_subdomain(node),
            ));
        }
        if let Some(host) = &e.hostname {
            errs.extend(FieldError::invalid_all(
                &format!("{at}.hostname"),
                host,
                format::is_dns1123_label(host),
            ));
        }
        if let Some(hints) = &e.hints {
            errs.extend(validate_hints(hints, &format!("{at}.hints")));
        }
    }
    errs
}

fn validate_hints(hints: &EndpointHints, at: &str) -> Vec<FieldError> {
    let zones: Vec<&str> = hints
        .for_zones
        .iter()
        .flatten()
        .map(|z| z.name.as_str())
        .collect();
    let nodes: Vec<&str> = hints
        .for_nodes
        .iter()
        .flatten()
        .map(|n| n.name.as_str())
        .collect();
    let mut errs = hint_names(
        &zones,
        &format!("{at}.forZones"),
        format::is_valid_label_value,
    );
    errs.extend(hint_names(
        &nodes,
        &format!("{at}.forNodes"),
        format::is_dns1123_subdomain,
    ));
    errs
}

/// At most eight hints, no name twice, each name valid.
fn hint_names(names: &[&str], at: &str, check: fn(&str) -> Vec<String>) -> Vec<FieldError> {
    if names.len() > MAX_HINTS {
        return vec![FieldError::too_many(at, names.len(), MAX_HINTS)];
    }
    let mut errs = Vec::new();
    let mut seen = HashSet::new();
    for (i, name) in names.iter().enumerate() {
        let path = format!("{at}[{i}].name");
        if !seen.insert(*name) {
            errs.push(FieldError::duplicate(path.as_str(), *name));
        }
        errs.extend(FieldError::invalid_all(&path, name, check(name)));
    }
    errs
}

fn validate_ports(ports: &[EndpointPort]) -> Vec<FieldError> {
    if ports.len() > MAX_PORTS {
        return vec![FieldError::too_many("ports", ports.len(), MAX_PORTS)];
    }
    let mut errs = Vec::new();
    let mut names = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        let at = format!("ports[{i}]");
        let name = p.name.as_deref().unwrap_or_default();
        if !name.is_empty() {
            errs.extend(FieldError::invalid_all(
                &format!("{at}.name"),
                name,
                format::is_dns1123_label(name),
            ));
        }
        if !names.insert(name) {
            errs.push(FieldError::duplicate(format!("{at}.name"), name));
        }
        errs.extend(crate::endpoints::port_protocols(
            &at,
            p.protocol.as_deref(),
            p.app_protocol.as_deref(),
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slice(v: serde_json::Value) -> EndpointSlice {
        let mut s: EndpointSlice = serde_json::from_value(v).unwrap();
        default_endpoint_slice(&mut s);
        s
    }

    fn messages(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn a_well_formed_slice_passes() {
        let s = slice(serde_json::json!({
            "metadata": {"name": "web-1"},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.244.1.5"], "nodeName": "node-1", "hostname": "web-0",
                           "hints": {"forZones": [{"name": "zone-a"}], "forNodes": [{"name": "node-1"}]}}],
            "ports": [{"name": "http", "port": 8080}, {"port": 9090, "protocol": "UDP", "appProtocol": "kubernetes.io/h2c"}]
        }));
        assert_eq!(
            messages(&validate_endpoint_slice(&s, None)),
            Vec::<String>::new()
        );
        assert_eq!(
            s.ports.as_ref().unwrap()[0].protocol.as_deref(),
            Some("TCP")
        );
    }

    #[test]
    fn addresses_must_fit_the_family_and_not_be_special() {
        let s = slice(serde_json::json!({
            "metadata": {"name": "x"},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["127.0.0.5"]}, {"addresses": ["fd00::1"]}, {"addresses": []},
                          {"addresses": ["169.254.1.1"], "hostname": "Bad_Host"}]
        }));
        assert_eq!(
            messages(&validate_endpoint_slice(&s, None)),
            [
                "endpoints[0].addresses[0]: Invalid value: \"127.0.0.5\": may not be in the loopback range (127.0.0.0/8, ::1/128)",
                "endpoints[1].addresses[0]: Invalid value: \"fd00::1\": must be a valid IPv4 address",
                "endpoints[2].addresses: Required value: must contain at least 1 address",
                "endpoints[3].addresses[0]: Invalid value: \"169.254.1.1\": may not be in the link-local range (169.254.0.0/16, fe80::/10)",
                "endpoints[3].hostname: Invalid value: \"Bad_Host\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
            ]
        );
    }

    #[test]
    fn address_type_ports_and_immutability() {
        let s = slice(serde_json::json!({
            "metadata": {"name": "x"},
            "addressType": "IP",
            "endpoints": [],
            "ports": [{"name": "a", "port": 1}, {"name": "a", "port": 2, "protocol": "ICMP"}]
        }));
        assert_eq!(
            messages(&validate_endpoint_slice(&s, None)),
            [
                "addressType: Unsupported value: \"IP\": supported values: \"FQDN\", \"IPv4\", \"IPv6\"",
                "ports[1].name: Duplicate value: \"a\"",
                "ports[1].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
            ]
        );
        let old = slice(
            serde_json::json!({"metadata": {"name": "x"}, "addressType": "IPv4", "endpoints": []}),
        );
        let new = slice(
            serde_json::json!({"metadata": {"name": "x"}, "addressType": "IPv6", "endpoints": []}),
        );
        assert_eq!(
            messages(&validate_endpoint_slice(&new, Some(&old))),
            ["addressType: Invalid value: \"IPv6\": field is immutable"]
        );
        let many: Vec<_> = (0..1001)
            .map(|_| serde_json::json!({"addresses": ["10.0.0.1"]}))
            .collect();
        let s = slice(
            serde_json::json!({"metadata": {"name": "x"}, "addressType": "IPv4", "endpoints": many}),
        );
        assert_eq!(
            messages(&validate_endpoint_slice(&s, None)),
            ["endpoints: Too many: 1001: must have at most 1000 items"]
        );
    }
}
