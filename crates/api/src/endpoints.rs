//! core/v1 Endpoints validation, as kube-apiserver's `ValidateEndpoints` applies it to each subset: at least one
//! address, every address a valid and non-special IP (loopback, link-local and unspecified addresses are never
//! endpoints) with a valid hostname and node name, and ports named (when there are several), numbered and of a
//! supported protocol.

use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, Endpoints};

use crate::field::FieldError;
use crate::{format, ip};

/// Fills what the v1 API defaults: a port's protocol (TCP).
pub fn default_endpoints(endpoints: &mut Endpoints) {
    for s in endpoints.subsets.iter_mut().flatten() {
        for p in s.ports.iter_mut().flatten() {
            p.protocol.get_or_insert_with(|| "TCP".to_string());
        }
    }
}

pub fn validate_endpoints(endpoints: &Endpoints) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, subset) in endpoints.subsets.iter().flatten().enumerate() {
        let at = format!("subsets[{i}]");
        let ready = subset.addresses.as_deref().unwrap_or_default();
        let not_ready = subset.not_ready_addresses.as_deref().unwrap_or_default();
        if ready.is_empty() && not_ready.is_empty() {
            errs.push(FieldError::required(
                at.as_str(),
                "must specify `addresses` or `notReadyAddresses`",
            ));
        }
        for (j, a) in ready.iter().enumerate() {
            errs.extend(validate_address(a, &format!("{at}.addresses[{j}]")));
        }
        for (j, a) in not_ready.iter().enumerate() {
            errs.extend(validate_address(a, &format!("{at}.notReadyAddresses[{j}]")));
        }
        let ports = subset.ports.as_deref().unwrap_or_default();
        for (j, p) in ports.iter().enumerate() {
            errs.extend(validate_port(
                p,
                ports.len() > 1,
                &format!("{at}.ports[{j}]"),
            ));
        }
    }
    errs
}

fn validate_address(a: &EndpointAddress, at: &str) -> Vec<FieldError> {
    let path = format!("{at}.ip");
    let mut errs = ip::validate_ip(&path, &a.ip);
    if let Some(host) = a.hostname.as_deref().filter(|h| !h.is_empty()) {
        errs.extend(FieldError::invalid_all(
            &format!("{at}.hostname"),
            host,
            format::is_dns1123_label(host),
        ));
    }
    if let Some(node) = &a.node_name {
        errs.extend(FieldError::invalid_all(
            &format!("{at}.nodeName"),
            node,
            format::is_dns1123_subdomain(node),
        ));
    }
    errs.extend(ip::validate_non_special_ip(&a.ip, &path));
    errs
}

fn validate_port(p: &EndpointPort, name_required: bool, at: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = p.name.as_deref().unwrap_or_default();
    if name_required && name.is_empty() {
        errs.push(FieldError::required(format!("{at}.name"), ""));
    } else if !name.is_empty() {
        errs.extend(FieldError::invalid_all(
            &format!("{at}.name"),
            name,
            format::is_dns1123_label(name),
        ));
    }
    for m in format::is_valid_port_num(i64::from(p.port)) {
        errs.push(FieldError::invalid(format!("{at}.port"), p.port, m));
    }
    errs.extend(port_protocols(
        at,
        p.protocol.as_deref(),
        p.app_protocol.as_deref(),
    ));
    errs
}

/// A port's `protocol` (required, SCTP, TCP or UDP) and `appProtocol` (a qualified name), as both Endpoints
/// and EndpointSlices check them.
pub(crate) fn port_protocols(
    at: &str,
    protocol: Option<&str>,
    app_protocol: Option<&str>,
) -> Vec<FieldError> {
    let mut errs: Vec<FieldError> = FieldError::check_protocol(format!("{at}.protocol"), protocol)
        .into_iter()
        .collect();
    if let Some(app) = app_protocol {
        errs.extend(FieldError::invalid_all(
            &format!("{at}.appProtocol"),
            app,
            format::is_qualified_name(app),
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints(v: serde_json::Value) -> Endpoints {
        let mut e: Endpoints = serde_json::from_value(v).unwrap();
        default_endpoints(&mut e);
        e
    }

    fn messages(e: &Endpoints) -> Vec<String> {
        validate_endpoints(e)
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn well_formed_endpoints_pass() {
        let e = endpoints(serde_json::json!({
            "metadata": {"name": "web"},
            "subsets": [{"addresses": [{"ip": "10.244.1.5", "hostname": "web-0", "nodeName": "node-1"}],
                         "notReadyAddresses": [{"ip": "fd00::5"}],
                         "ports": [{"name": "http", "port": 80}, {"name": "dns", "port": 53, "protocol": "UDP"}]}]
        }));
        assert_eq!(messages(&e), Vec::<String>::new());
    }

    #[test]
    fn subsets_addresses_and_ports_are_checked() {
        let e = endpoints(serde_json::json!({
            "metadata": {"name": "web"},
            "subsets": [
                {"ports": [{"port": 80}]},
                {"addresses": [{"ip": "127.0.0.1"}, {"ip": "nope"}],
                 "ports": [{"port": 80}, {"name": "b", "port": 0, "protocol": "ICMP"}]}
            ]
        }));
        assert_eq!(
            messages(&e),
            [
                "subsets[0]: Required value: must specify `addresses` or `notReadyAddresses`",
                "subsets[1].addresses[0].ip: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)",
                "subsets[1].addresses[1].ip: Invalid value: \"nope\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                "subsets[1].addresses[1].ip: Invalid value: \"nope\": must be a valid IP address",
                "subsets[1].ports[0].name: Required value",
                "subsets[1].ports[1].port: Invalid value: 0: must be between 1 and 65535, inclusive",
                "subsets[1].ports[1].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
            ]
        );
    }
}
