//! Builders for API objects in tests, written as the JSON a user would apply.
#![allow(dead_code)]

use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use proxy::{Config, Family, ProxyModel};
use serde_json::{json, Value};

pub const NODE: &str = "node-1";

pub fn service(value: Value) -> Service {
    serde_json::from_value(value).unwrap()
}

pub fn slice(value: Value) -> EndpointSlice {
    serde_json::from_value(value).unwrap()
}

/// A ClusterIP Service `ns/name` with one TCP port `http` 80 → 8080.
pub fn cluster_ip(name: &str, ip: &str) -> Service {
    service(json!({
        "metadata": {"namespace": "default", "name": name},
        "spec": {"type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip],
                 "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}
    }))
}

/// An endpoint as the EndpointSlice controller writes it.
pub fn endpoint(ip: &str, node: &str, ready: bool, serving: bool, terminating: bool) -> Value {
    json!({"addresses": [ip], "nodeName": node,
           "conditions": {"ready": ready, "serving": serving, "terminating": terminating}})
}

pub fn ready(ip: &str, node: &str) -> Value {
    endpoint(ip, node, true, true, false)
}

/// A slice of `service` with port `http` 8080/TCP.
pub fn http_slice(service: &str, name: &str, endpoints: Vec<Value>) -> EndpointSlice {
    let family = if endpoints
        .iter()
        .any(|e| e["addresses"][0].as_str().unwrap_or("").contains(':'))
    {
        "IPv6"
    } else {
        "IPv4"
    };
    slice(json!({
        "metadata": {"namespace": "default", "name": name,
                     "labels": {"kubernetes.io/service-name": service}},
        "addressType": family,
        "endpoints": endpoints,
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]
    }))
}

pub fn node(addresses: &[&str], zone: Option<&str>) -> Node {
    let addresses: Vec<Value> = addresses
        .iter()
        .map(|a| json!({"type": "InternalIP", "address": a}))
        .collect();
    let labels = match zone {
        Some(z) => json!({"topology.kubernetes.io/zone": z}),
        None => json!({}),
    };
    serde_json::from_value(json!({
        "metadata": {"name": NODE, "labels": labels},
        "status": {"addresses": addresses}
    }))
    .unwrap()
}

pub fn config(family: Family) -> Config {
    let mut config = Config::new(family, NODE);
    config.cluster_cidrs = vec![
        "10.244.0.0/16".parse().unwrap(),
        "fd00:10:244::/56".parse().unwrap(),
    ];
    config.service_cidrs = vec![
        "10.96.0.0/16".parse().unwrap(),
        "fd00:10:96::/112".parse().unwrap(),
    ];
    config
}

pub fn model(family: Family) -> ProxyModel {
    let mut model = ProxyModel::new(config(family));
    model.set_node(&node(&["192.168.1.10", "fd00:1::10"], Some("zone-a")));
    model
}
