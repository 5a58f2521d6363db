//! Builders of slim objects for the unit tests of the pure logic.

use std::collections::BTreeMap;

use crate::model::{NamedPort, PodInfo, ServiceInfo, SvcPort, TargetPort};

pub fn svc(name: &str) -> ServiceInfo {
    ServiceInfo {
        namespace: "default".into(),
        name: name.into(),
        uid: format!("uid-{name}"),
        labels: BTreeMap::new(),
        selector: Some(Box::new([("app".to_string(), name.to_string())])),
        ports: vec![SvcPort {
            name: "http".into(),
            protocol: "TCP".into(),
            port: 80,
            target: TargetPort::Number(8080),
            app_protocol: None,
        }],
        cluster_ip: "10.96.0.10".into(),
        ip_families: vec!["IPv4".into()],
        publish_not_ready: false,
        traffic_distribution: None,
        topology_hints_annotation: false,
        external_name: false,
        deleting: false,
    }
}

pub fn pod(name: &str, ips: &[&str], ready: bool) -> PodInfo {
    PodInfo {
        namespace: "default".into(),
        name: name.into(),
        uid: format!("uid-{name}"),
        labels: std::sync::Arc::new(BTreeMap::from([("app".to_string(), "web".to_string())])),
        ips: ips.iter().map(|s| s.parse().unwrap()).collect(),
        ready,
        terminating: false,
        terminal: false,
        node_name: "node-a".into(),
        hostname: String::new(),
        subdomain: String::new(),
        ports: vec![NamedPort {
            name: "http".into(),
            protocol: "TCP".into(),
            port: 8080,
        }],
    }
}

/// `n` ready pods with IPs 10.0.x.y.
pub fn pods(n: usize) -> Vec<PodInfo> {
    (0..n)
        .map(|i| {
            let ip = format!("10.0.{}.{}", i / 250, i % 250 + 1);
            pod(&format!("web-{i:04}"), &[ip.as_str()], true)
        })
        .collect()
}
