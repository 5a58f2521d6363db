//! Test helpers: a network namespace per test (deleted on drop, even when the test fails), models built
//! from API objects as a user writes them, and a canonical form of `nft list table` to compare kernels.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use proxy::{Config, Family, ProxyModel};
use serde_json::{json, Value};

pub const NODE: &str = "node-1";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A network namespace of our own. Everything a test programs lives here; dropping it deletes it.
pub struct Netns {
    pub name: String,
    pub path: PathBuf,
}

impl Netns {
    pub fn new() -> Netns {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "svcplane-nf-{}-{}-{:x}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            nanos & 0xffff
        );
        run("ip", &["netns", "add", &name]);
        let netns = Netns {
            path: PathBuf::from(format!("/run/netns/{name}")),
            name,
        };
        netns.ip(&["link", "set", "lo", "up"]);
        netns
    }

    /// `ip -n NAME ARGS…`: only ever inside our namespace.
    pub fn ip(&self, args: &[&str]) {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        run("ip", &all);
    }

    /// `nft ARGS…` inside the namespace; its stdout.
    pub fn nft(&self, args: &[&str]) -> String {
        let mut all = vec!["netns", "exec", self.name.as_str(), "nft"];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// `nft -f -` inside the namespace.
    pub fn nft_script(&self, script: &str) {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.name, "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn nft");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(script.as_bytes())
            .expect("write script");
        let out = child.wait_with_output().expect("nft");
        assert!(
            out.status.success(),
            "nft -f failed: {}\n{script}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn table(&self, family: Family) -> Listing {
        Listing::parse(&self.nft(&["list", "table", family.nft(), "svcplane"]))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

pub fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `nft list table` in a canonical form: block header → its lines, with element lists sorted (the kernel
/// lists a hash set in hash order, which differs between two kernels holding the same elements).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub blocks: BTreeMap<String, Vec<String>>,
}

impl Listing {
    pub fn parse(text: &str) -> Listing {
        let mut blocks: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut current: Option<String> = None;
        let mut elements: Option<String> = None;
        for line in text.lines() {
            let trimmed = line.trim();
            if let Some(acc) = elements.as_mut() {
                acc.push(' ');
                acc.push_str(trimmed);
                if trimmed.ends_with('}') {
                    let acc = elements.take().unwrap_or_default();
                    push_elements(&mut blocks, current.as_deref(), &acc);
                }
                continue;
            }
            if trimmed.starts_with("elements = {") {
                if trimmed.ends_with('}') {
                    push_elements(&mut blocks, current.as_deref(), trimmed);
                } else {
                    elements = Some(trimmed.to_string());
                }
                continue;
            }
            if trimmed.ends_with('{') && !trimmed.starts_with("table ") {
                let header = trimmed.trim_end_matches('{').trim().to_string();
                blocks.entry(header.clone()).or_default();
                current = Some(header);
                continue;
            }
            if trimmed == "}" {
                current = None;
                continue;
            }
            if let Some(block) = &current {
                blocks
                    .entry(block.clone())
                    .or_default()
                    .push(trimmed.to_string());
            }
        }
        Listing { blocks }
    }

    /// The elements of one set or map, sorted, in nft syntax.
    pub fn elements(&self, set: &str) -> Vec<String> {
        let block = self
            .blocks
            .iter()
            .find(|(h, _)| *h == &format!("set {set}") || *h == &format!("map {set}"))
            .map(|(_, lines)| lines.clone())
            .unwrap_or_default();
        block
            .iter()
            .filter_map(|l| l.strip_prefix("element: "))
            .map(str::to_string)
            .collect()
    }

    pub fn chain(&self, name: &str) -> Option<&Vec<String>> {
        self.blocks.get(&format!("chain {name}"))
    }
}

fn push_elements(blocks: &mut BTreeMap<String, Vec<String>>, block: Option<&str>, text: &str) {
    let inner = text
        .trim_start_matches("elements = {")
        .trim_end_matches('}')
        .trim();
    let mut items: Vec<String> = inner
        .split(',')
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|s| !s.is_empty())
        .collect();
    items.sort();
    if let Some(block) = block {
        let lines = blocks.entry(block.to_string()).or_default();
        lines.extend(items.into_iter().map(|i| format!("element: {i}")));
    }
}

// ---- API objects ----

pub fn service(value: Value) -> Service {
    serde_json::from_value(value).expect("valid Service")
}

pub fn slice(value: Value) -> EndpointSlice {
    serde_json::from_value(value).expect("valid EndpointSlice")
}

pub fn cluster_ip(name: &str, ip: &str) -> Service {
    service(json!({
        "metadata": {"namespace": "default", "name": name},
        "spec": {"type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip],
                 "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}
    }))
}

pub fn ready(ip: &str, node: &str) -> Value {
    json!({"addresses": [ip], "nodeName": node,
           "conditions": {"ready": true, "serving": true, "terminating": false}})
}

/// A slice of `service` with port `http` `port`/TCP.
pub fn http_slice(service: &str, name: &str, port: u16, endpoints: Vec<Value>) -> EndpointSlice {
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
        "ports": [{"name": "http", "port": port, "protocol": "TCP"}]
    }))
}

pub fn node(addresses: &[&str]) -> Node {
    let addresses: Vec<Value> = addresses
        .iter()
        .map(|a| json!({"type": "InternalIP", "address": a}))
        .collect();
    serde_json::from_value(json!({
        "metadata": {"name": NODE, "labels": {"topology.kubernetes.io/zone": "zone-a"}},
        "status": {"addresses": addresses}
    }))
    .expect("valid Node")
}

pub fn config(family: Family) -> Config {
    let mut config = Config::new(family, NODE);
    config.cluster_cidrs = vec![
        "10.244.0.0/16".parse().expect("cidr"),
        "10.244.7.0/24".parse().expect("cidr"),
        "fd00:10:244::/56".parse().expect("cidr"),
    ];
    config.service_cidrs = vec![
        "10.96.0.0/16".parse().expect("cidr"),
        "fd00:10:96::/112".parse().expect("cidr"),
    ];
    config
}

/// A model that puts elements in every set and map of the shape: ClusterIPs with several endpoints, a
/// LoadBalancer with source ranges and an external IP, eTP:Local and iTP:Local, a Service without
/// endpoints, ClientIP affinity, UDP.
pub fn rich_model(family: Family) -> ProxyModel {
    let mut m = ProxyModel::new(config(family));
    m.set_node(&node(&["192.168.1.10", "fd00:1::10"]));
    let v6 = family == Family::V6;
    let ip = |v4: &str, v6s: &str| if v6 { v6s.to_string() } else { v4.to_string() };
    let ep = |n: u32| {
        if v6 {
            format!("fd00:10:244::{n:x}")
        } else {
            format!("10.244.{}.{}", n / 200, n % 200 + 1)
        }
    };
    // Three ClusterIPs with 1..3 endpoints, one of them local (hairpin).
    for i in 0..3u32 {
        let name = format!("web-{i}");
        let vip = ip(
            &format!("10.96.0.{}", 10 + i),
            &format!("fd00:10:96::{:x}", 0x10 + i),
        );
        m.upsert_service(&cluster_ip(&name, &vip)).expect("service");
        let eps = (0..=i)
            .map(|e| ready(&ep(i * 10 + e), if e == 0 { NODE } else { "node-2" }))
            .collect();
        m.upsert_endpoint_slice(&http_slice(&name, &format!("{name}-1"), 8080, eps));
    }
    // LoadBalancer with source ranges (firewall sets) and an external IP.
    let ranges = if v6 {
        json!(["2001:db8::/32", "2001:db8:1::5/128", "192.168.0.0/16"])
    } else {
        json!([
            "192.168.0.0/16",
            "203.0.113.0/24",
            "198.51.100.9/32",
            "2001:db8::/32"
        ])
    };
    m.upsert_service(&service(json!({
        "metadata": {"namespace": "default", "name": "lb"},
        "spec": {"type": "LoadBalancer", "clusterIP": ip("10.96.0.20", "fd00:10:96::20"),
                 "clusterIPs": [ip("10.96.0.20", "fd00:10:96::20")],
                 "externalIPs": [ip("198.51.100.7", "2001:db8:7::7")],
                 "loadBalancerSourceRanges": ranges,
                 "ports": [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30081}]},
        "status": {"loadBalancer": {"ingress": [{"ip": ip("203.0.113.10", "2001:db8:10::10")}]}}
    })))
    .expect("service");
    m.upsert_endpoint_slice(&http_slice(
        "lb",
        "lb-1",
        8080,
        vec![ready(&ep(100), "node-2")],
    ));
    // eTP:Local LoadBalancer with a local and a remote endpoint.
    m.upsert_service(&service(json!({
        "metadata": {"namespace": "default", "name": "etp"},
        "spec": {"type": "LoadBalancer", "clusterIP": ip("10.96.0.21", "fd00:10:96::21"),
                 "clusterIPs": [ip("10.96.0.21", "fd00:10:96::21")],
                 "externalTrafficPolicy": "Local", "healthCheckNodePort": 32000,
                 "ports": [{"name": "http", "port": 80, "nodePort": 30090}]},
        "status": {"loadBalancer": {"ingress": [{"ip": ip("203.0.113.20", "2001:db8:20::20")}]}}
    })))
    .expect("service");
    m.upsert_endpoint_slice(&http_slice(
        "etp",
        "etp-1",
        80,
        vec![ready(&ep(110), NODE), ready(&ep(111), "node-2")],
    ));
    // iTP:Local.
    m.upsert_service(&service(json!({
        "metadata": {"namespace": "default", "name": "itp"},
        "spec": {"type": "ClusterIP", "clusterIP": ip("10.96.0.22", "fd00:10:96::22"),
                 "clusterIPs": [ip("10.96.0.22", "fd00:10:96::22")], "internalTrafficPolicy": "Local",
                 "ports": [{"name": "http", "port": 80}]}
    })))
    .expect("service");
    m.upsert_endpoint_slice(&http_slice("itp", "itp-1", 80, vec![ready(&ep(120), NODE)]));
    // No endpoints.
    m.upsert_service(&cluster_ip("empty", &ip("10.96.0.23", "fd00:10:96::23")))
        .expect("service");
    // ClientIP affinity, UDP.
    m.upsert_service(&service(json!({
        "metadata": {"namespace": "default", "name": "dns"},
        "spec": {"type": "ClusterIP", "clusterIP": ip("10.96.0.24", "fd00:10:96::24"),
                 "clusterIPs": [ip("10.96.0.24", "fd00:10:96::24")], "sessionAffinity": "ClientIP",
                 "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]}
    })))
    .expect("service");
    m.upsert_endpoint_slice(&slice(json!({
        "metadata": {"namespace": "default", "name": "dns-1",
                     "labels": {"kubernetes.io/service-name": "dns"}},
        "addressType": if v6 { "IPv6" } else { "IPv4" },
        "endpoints": [ready(&ep(130), "node-2"), ready(&ep(131), "node-3")],
        "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]
    })));
    m
}
