//! Fixtures shared by the integration tests: objects built from JSON as the API would send them, and queries
//! and replies built and read with hickory-proto, an implementation independent of ours.
#![allow(dead_code)]

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::{json, Value};

use dns::{Config, Index, Outcome, Scratch, Transport};

pub fn service(v: Value) -> Service {
    serde_json::from_value(v).unwrap()
}

pub fn slice(v: Value) -> EndpointSlice {
    serde_json::from_value(v).unwrap()
}

pub fn cluster_ip(ns: &str, name: &str, ips: &[&str], ports: Value) -> Service {
    service(json!({
        "metadata": {"name": name, "namespace": ns},
        "spec": {"type": "ClusterIP", "clusterIP": ips[0], "clusterIPs": ips, "ports": ports}
    }))
}

pub fn headless(ns: &str, name: &str, ports: Value) -> Service {
    service(json!({
        "metadata": {"name": name, "namespace": ns},
        "spec": {"clusterIP": "None", "clusterIPs": ["None"], "ports": ports}
    }))
}

pub fn external(ns: &str, name: &str, target: &str) -> Service {
    service(json!({
        "metadata": {"name": name, "namespace": ns},
        "spec": {"type": "ExternalName", "externalName": target}
    }))
}

/// One endpoint: (address, hostname, ready).
pub fn endpoint_slice(
    ns: &str,
    name: &str,
    svc: &str,
    family: &str,
    ports: Value,
    eps: &[(&str, Option<&str>, Option<bool>)],
) -> EndpointSlice {
    let endpoints: Vec<Value> = eps
        .iter()
        .map(|(ip, host, ready)| {
            let mut e = json!({"addresses": [ip], "targetRef": {"kind": "Pod", "namespace": ns, "name": format!("pod-{ip}")}});
            if let Some(h) = host {
                e["hostname"] = json!(h);
            }
            if let Some(r) = ready {
                e["conditions"] = json!({"ready": r});
            }
            e
        })
        .collect();
    slice(json!({
        "metadata": {"name": name, "namespace": ns, "labels": {"kubernetes.io/service-name": svc}},
        "addressType": family,
        "ports": ports,
        "endpoints": endpoints
    }))
}

/// The cluster most tests use.
pub fn fixture(config: Config) -> Index {
    let idx = Index::new(config).unwrap();
    idx.upsert_service(&cluster_ip(
        "default",
        "web",
        &["10.96.0.10"],
        json!([{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080},
               {"name": "dns", "port": 53, "protocol": "UDP"},
               {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]),
    ))
    .unwrap();
    idx.upsert_service(&cluster_ip(
        "default",
        "dual",
        &["10.96.0.11", "fd00::b"],
        json!([{"name": "http", "port": 80, "protocol": "TCP"}]),
    ))
    .unwrap();
    idx.upsert_service(&headless(
        "default",
        "db",
        json!([{"name": "pg", "port": 5432, "protocol": "TCP"}]),
    ))
    .unwrap();
    idx.upsert_endpoint_slice(&endpoint_slice(
        "default",
        "db-abcde",
        "db",
        "IPv4",
        json!([{"name": "pg", "port": 5432, "protocol": "TCP"}]),
        &[
            ("10.244.1.5", Some("db-0"), Some(true)),
            ("10.244.1.6", Some("db-1"), None),
            ("10.244.1.7", None, Some(true)),
            ("10.244.1.8", Some("db-3"), Some(false)),
        ],
    ))
    .unwrap();
    idx.upsert_service(&headless(
        "default",
        "lonely",
        json!([{"name": "x", "port": 1}]),
    ))
    .unwrap();
    idx.upsert_service(&external("default", "search", "www.example.com"))
        .unwrap();
    idx.upsert_service(&external(
        "default",
        "inner",
        "web.default.svc.cluster.local",
    ))
    .unwrap();
    idx
}

pub fn query_msg(name: &str, qtype: RecordType) -> Message {
    let mut m = Message::new(0x1234, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    m
}

pub fn query(name: &str, qtype: RecordType) -> Vec<u8> {
    query_msg(name, qtype).to_vec().unwrap()
}

pub fn query_edns(name: &str, qtype: RecordType, size: u16) -> Vec<u8> {
    let mut m = query_msg(name, qtype);
    let mut e = Edns::new();
    e.set_max_payload(size);
    m.set_edns(e);
    m.to_vec().unwrap()
}

pub fn respond_raw(idx: &Index, packet: &[u8], transport: Transport) -> (Outcome, Vec<u8>) {
    let mut out = Vec::new();
    let outcome = idx.respond(packet, transport, &mut out, &mut Scratch::default());
    (outcome, out)
}

/// Asks over "TCP" (no size limit) and parses the reply.
pub fn ask(idx: &Index, name: &str, qtype: RecordType) -> Message {
    let (outcome, out) = respond_raw(idx, &query(name, qtype), Transport::Tcp);
    assert_ne!(outcome, Outcome::Drop);
    Message::from_vec(&out).unwrap()
}

pub fn answers(m: &Message) -> Vec<String> {
    m.answers.iter().map(|r| r.to_string()).collect()
}

pub fn authorities(m: &Message) -> Vec<String> {
    m.authorities.iter().map(|r| r.to_string()).collect()
}

pub fn additionals(m: &Message) -> Vec<String> {
    m.additionals.iter().map(|r| r.to_string()).collect()
}

/// The SOA every negative answer in cluster.local carries, serial masked.
pub fn soa_without_serial(m: &Message) -> Vec<String> {
    authorities(m)
        .into_iter()
        .map(|s| {
            let mut f: Vec<&str> = s.split(' ').collect();
            if f.len() == 11 {
                f[6] = "SERIAL";
            }
            f.join(" ")
        })
        .collect()
}
