//! Every record kind of the Kubernetes DNS specification, and CoreDNS's choices around them, answered by the
//! index directly (no sockets).

mod common;

use common::*;
use dns::{Config, Index, Outcome, PodMode, Transport};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use serde_json::json;

const SOA: &str = "cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. SERIAL 7200 1800 86400 5";

fn idx() -> Index {
    fixture(Config::default())
}

fn assert_nxdomain(m: &Message) {
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{m:?}");
    assert!(m.answers.is_empty());
    assert_eq!(soa_without_serial(m), vec![SOA]);
    assert!(m.metadata.authoritative);
}

fn assert_nodata(m: &Message) {
    assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{m:?}");
    assert!(m.answers.is_empty(), "{m:?}");
    assert_eq!(soa_without_serial(m), vec![SOA]);
    assert!(m.metadata.authoritative);
}

#[test]
fn schema_version_txt() {
    let m = ask(&idx(), "dns-version.cluster.local.", RecordType::TXT);
    assert_eq!(
        answers(&m),
        vec!["dns-version.cluster.local. 28800 IN TXT 1.1.0"]
    );
    assert_nodata(&ask(&idx(), "dns-version.cluster.local.", RecordType::A));
}

#[test]
fn cluster_ip_a_and_aaaa() {
    let i = idx();
    let m = ask(&i, "web.default.svc.cluster.local.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.metadata.authoritative);
    assert!(m.metadata.recursion_desired, "RD is echoed");
    assert!(!m.metadata.recursion_available);
    assert_eq!(
        answers(&m),
        vec!["web.default.svc.cluster.local. 5 IN A 10.96.0.10"]
    );
    assert!(m.authorities.is_empty());
    // An IPv4-only Service has the name but no AAAA.
    assert_nodata(&ask(&i, "web.default.svc.cluster.local.", RecordType::AAAA));

    let m = ask(&i, "dual.default.svc.cluster.local.", RecordType::AAAA);
    assert_eq!(
        answers(&m),
        vec!["dual.default.svc.cluster.local. 5 IN AAAA fd00::b"]
    );
    let m = ask(&i, "dual.default.svc.cluster.local.", RecordType::A);
    assert_eq!(
        answers(&m),
        vec!["dual.default.svc.cluster.local. 5 IN A 10.96.0.11"]
    );
}

#[test]
fn cluster_ip_srv() {
    let i = idx();
    let m = ask(
        &i,
        "_http._tcp.web.default.svc.cluster.local.",
        RecordType::SRV,
    );
    assert_eq!(
        answers(&m),
        vec!["_http._tcp.web.default.svc.cluster.local. 5 IN SRV 0 100 80 web.default.svc.cluster.local."]
    );
    assert_eq!(
        additionals(&m),
        vec!["web.default.svc.cluster.local. 5 IN A 10.96.0.10"]
    );
    // Protocol labels match case-insensitively against the Service's "UDP".
    let m = ask(
        &i,
        "_DNS._UDP.web.default.svc.cluster.local.",
        RecordType::SRV,
    );
    assert_eq!(
        answers(&m),
        vec!["_DNS._UDP.web.default.svc.cluster.local. 5 IN SRV 0 100 53 web.default.svc.cluster.local."]
    );
    // Unknown port or protocol: no such name.
    assert_nxdomain(&ask(
        &i,
        "_http._udp.web.default.svc.cluster.local.",
        RecordType::SRV,
    ));
    assert_nxdomain(&ask(
        &i,
        "_nope._tcp.web.default.svc.cluster.local.",
        RecordType::SRV,
    ));
    // CoreDNS answers A for the port name too.
    let m = ask(
        &i,
        "_http._tcp.web.default.svc.cluster.local.",
        RecordType::A,
    );
    assert_eq!(
        answers(&m),
        vec!["_http._tcp.web.default.svc.cluster.local. 5 IN A 10.96.0.10"]
    );
}

#[test]
fn srv_without_port_labels_lists_every_port_like_coredns() {
    // Three ports, two of them 53: CoreDNS computes the weight over the three entries and drops the repeat.
    let m = ask(&idx(), "web.default.svc.cluster.local.", RecordType::SRV);
    assert_eq!(
        answers(&m),
        vec![
            "web.default.svc.cluster.local. 5 IN SRV 0 33 80 web.default.svc.cluster.local.",
            "web.default.svc.cluster.local. 5 IN SRV 0 33 53 web.default.svc.cluster.local.",
        ]
    );
    assert_eq!(
        additionals(&m),
        vec!["web.default.svc.cluster.local. 5 IN A 10.96.0.10"]
    );
    // Dual stack: one SRV, both addresses as glue.
    let m = ask(
        &idx(),
        "_http._tcp.dual.default.svc.cluster.local.",
        RecordType::SRV,
    );
    assert_eq!(
        answers(&m),
        vec!["_http._tcp.dual.default.svc.cluster.local. 5 IN SRV 0 50 80 dual.default.svc.cluster.local."]
    );
    assert_eq!(
        additionals(&m),
        vec![
            "dual.default.svc.cluster.local. 5 IN A 10.96.0.11",
            "dual.default.svc.cluster.local. 5 IN AAAA fd00::b",
        ]
    );
}

#[test]
fn cluster_ip_ptr() {
    let m = ask(&idx(), "10.0.96.10.in-addr.arpa.", RecordType::PTR);
    assert!(m.metadata.authoritative);
    assert_eq!(
        answers(&m),
        vec!["10.0.96.10.in-addr.arpa. 5 IN PTR web.default.svc.cluster.local."]
    );
    let v6 = "b.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.";
    let m = ask(&idx(), v6, RecordType::PTR);
    assert_eq!(
        answers(&m),
        vec![format!("{v6} 5 IN PTR dual.default.svc.cluster.local.")]
    );
}

#[test]
fn headless_a_per_ready_endpoint() {
    let m = ask(&idx(), "db.default.svc.cluster.local.", RecordType::A);
    assert_eq!(
        answers(&m),
        vec![
            "db.default.svc.cluster.local. 5 IN A 10.244.1.5",
            "db.default.svc.cluster.local. 5 IN A 10.244.1.6",
            "db.default.svc.cluster.local. 5 IN A 10.244.1.7",
        ]
    );
    assert_nodata(&ask(
        &idx(),
        "db.default.svc.cluster.local.",
        RecordType::AAAA,
    ));
    // No ready endpoint: the specification's NXDOMAIN.
    assert_nxdomain(&ask(
        &idx(),
        "lonely.default.svc.cluster.local.",
        RecordType::A,
    ));
}

#[test]
fn per_endpoint_hostnames() {
    let i = idx();
    let m = ask(&i, "db-0.db.default.svc.cluster.local.", RecordType::A);
    assert_eq!(
        answers(&m),
        vec!["db-0.db.default.svc.cluster.local. 5 IN A 10.244.1.5"]
    );
    // Without a hostname, CoreDNS's dashed address names the endpoint.
    let m = ask(
        &i,
        "10-244-1-7.db.default.svc.cluster.local.",
        RecordType::A,
    );
    assert_eq!(
        answers(&m),
        vec!["10-244-1-7.db.default.svc.cluster.local. 5 IN A 10.244.1.7"]
    );
    // Not ready: no name.
    assert_nxdomain(&ask(
        &i,
        "db-3.db.default.svc.cluster.local.",
        RecordType::A,
    ));
    assert_nxdomain(&ask(
        &i,
        "db-9.db.default.svc.cluster.local.",
        RecordType::A,
    ));
    let m = ask(&i, "db-1.db.default.svc.cluster.local.", RecordType::SRV);
    assert_eq!(
        answers(&m),
        vec!["db-1.db.default.svc.cluster.local. 5 IN SRV 0 100 5432 db-1.db.default.svc.cluster.local."]
    );
    assert_eq!(
        additionals(&m),
        vec!["db-1.db.default.svc.cluster.local. 5 IN A 10.244.1.6"]
    );
}

#[test]
fn headless_srv_per_endpoint_and_port() {
    let m = ask(
        &idx(),
        "_pg._tcp.db.default.svc.cluster.local.",
        RecordType::SRV,
    );
    assert_eq!(
        answers(&m),
        vec![
            "_pg._tcp.db.default.svc.cluster.local. 5 IN SRV 0 33 5432 db-0.db.default.svc.cluster.local.",
            "_pg._tcp.db.default.svc.cluster.local. 5 IN SRV 0 33 5432 db-1.db.default.svc.cluster.local.",
            "_pg._tcp.db.default.svc.cluster.local. 5 IN SRV 0 33 5432 10-244-1-7.db.default.svc.cluster.local.",
        ]
    );
    assert_eq!(
        additionals(&m),
        vec![
            "db-0.db.default.svc.cluster.local. 5 IN A 10.244.1.5",
            "db-1.db.default.svc.cluster.local. 5 IN A 10.244.1.6",
            "10-244-1-7.db.default.svc.cluster.local. 5 IN A 10.244.1.7",
        ]
    );
}

#[test]
fn endpoint_ptr() {
    let m = ask(&idx(), "5.1.244.10.in-addr.arpa.", RecordType::PTR);
    assert_eq!(
        answers(&m),
        vec!["5.1.244.10.in-addr.arpa. 5 IN PTR db-0.db.default.svc.cluster.local."]
    );
    let m = ask(&idx(), "7.1.244.10.in-addr.arpa.", RecordType::PTR);
    assert_eq!(
        answers(&m),
        vec!["7.1.244.10.in-addr.arpa. 5 IN PTR 10-244-1-7.db.default.svc.cluster.local."]
    );
    // A not-ready endpoint has no reverse name; unknown addresses are outside what we serve.
    let (outcome, _) = respond_raw(
        &idx(),
        &query("8.1.244.10.in-addr.arpa.", RecordType::PTR),
        Transport::Udp,
    );
    assert_eq!(outcome, Outcome::NotInZone);
}

#[test]
fn publish_not_ready_addresses() {
    let i = idx();
    let mut s = headless(
        "default",
        "peers",
        json!([{"name": "gossip", "port": 7946}]),
    );
    s.spec.as_mut().unwrap().publish_not_ready_addresses = Some(true);
    i.upsert_service(&s).unwrap();
    i.upsert_endpoint_slice(&endpoint_slice(
        "default",
        "peers-1",
        "peers",
        "IPv4",
        json!([{"name": "gossip", "port": 7946}]),
        &[("10.244.2.1", Some("p-0"), Some(false))],
    ))
    .unwrap();
    let m = ask(&i, "peers.default.svc.cluster.local.", RecordType::A);
    assert_eq!(
        answers(&m),
        vec!["peers.default.svc.cluster.local. 5 IN A 10.244.2.1"]
    );
    let m = ask(&i, "1.2.244.10.in-addr.arpa.", RecordType::PTR);
    assert_eq!(
        answers(&m),
        vec!["1.2.244.10.in-addr.arpa. 5 IN PTR p-0.peers.default.svc.cluster.local."]
    );
}

#[test]
fn external_name_cname() {
    let i = idx();
    let q = query("search.default.svc.cluster.local.", RecordType::A);
    let (outcome, out) = respond_raw(&i, &q, Transport::Udp);
    assert_eq!(outcome, Outcome::ReplyExternalCname);
    let m = Message::from_vec(&out).unwrap();
    assert_eq!(
        answers(&m),
        vec!["search.default.svc.cluster.local. 5 IN CNAME www.example.com."]
    );
    let m = ask(&i, "search.default.svc.cluster.local.", RecordType::CNAME);
    assert_eq!(
        answers(&m),
        vec!["search.default.svc.cluster.local. 5 IN CNAME www.example.com."]
    );
    // CoreDNS has no SRV for ExternalName Services.
    assert_nodata(&ask(
        &i,
        "search.default.svc.cluster.local.",
        RecordType::SRV,
    ));
    assert_nxdomain(&ask(
        &i,
        "_http._tcp.search.default.svc.cluster.local.",
        RecordType::SRV,
    ));
    // A target inside the zone is followed.
    let m = ask(&i, "inner.default.svc.cluster.local.", RecordType::A);
    assert_eq!(
        answers(&m),
        vec![
            "inner.default.svc.cluster.local. 5 IN CNAME web.default.svc.cluster.local.",
            "web.default.svc.cluster.local. 5 IN A 10.96.0.10",
        ]
    );
    // ...and dropped when it has nothing of that type, as CoreDNS does.
    assert_nodata(&ask(
        &i,
        "inner.default.svc.cluster.local.",
        RecordType::AAAA,
    ));
}

#[test]
fn external_name_loops_end() {
    let i = idx();
    i.upsert_service(&external("default", "a", "b.default.svc.cluster.local"))
        .unwrap();
    i.upsert_service(&external("default", "b", "a.default.svc.cluster.local"))
        .unwrap();
    i.upsert_service(&external(
        "default",
        "self",
        "self.default.svc.cluster.local",
    ))
    .unwrap();
    assert_nodata(&ask(&i, "a.default.svc.cluster.local.", RecordType::A));
    assert_nodata(&ask(&i, "self.default.svc.cluster.local.", RecordType::A));
}

#[test]
fn nxdomain_versus_nodata() {
    let i = idx();
    assert_nxdomain(&ask(&i, "nope.default.svc.cluster.local.", RecordType::A));
    assert_nxdomain(&ask(&i, "web.nope.svc.cluster.local.", RecordType::A));
    assert_nxdomain(&ask(&i, "nope.svc.cluster.local.", RecordType::A));
    assert_nxdomain(&ask(&i, "foo.cluster.local.", RecordType::A));
    assert_nxdomain(&ask(
        &i,
        "a.b.c.d.web.default.svc.cluster.local.",
        RecordType::A,
    ));
    assert_nodata(&ask(&i, "default.svc.cluster.local.", RecordType::A));
    assert_nodata(&ask(&i, "svc.cluster.local.", RecordType::A));
    assert_nodata(&ask(&i, "pod.cluster.local.", RecordType::A));
    assert_nodata(&ask(&i, "cluster.local.", RecordType::A));
    assert_nodata(&ask(&i, "web.default.svc.cluster.local.", RecordType::TXT));
    assert_nodata(&ask(&i, "web.default.svc.cluster.local.", RecordType::MX));
    assert_nodata(&ask(&i, "web.default.svc.cluster.local.", RecordType::SOA));
    assert_nodata(&ask(
        &i,
        "web.default.svc.cluster.local.",
        RecordType::CNAME,
    ));
    assert_nxdomain(&ask(&i, "nope.default.svc.cluster.local.", RecordType::MX));
}

#[test]
fn zone_apex_soa_and_ns() {
    let m = ask(&idx(), "cluster.local.", RecordType::SOA);
    let a: Vec<String> = answers(&m)
        .iter()
        .map(|s| s.replace(&format!(" {} ", idx().serial()), " SERIAL "))
        .collect();
    assert_eq!(a, vec![SOA]);
    // Without known addresses for itself the zone has no NS (CoreDNS answers the same).
    assert_nodata(&ask(&idx(), "cluster.local.", RecordType::NS));

    let cfg = Config {
        nameservers: vec!["10.96.0.53".parse().unwrap()],
        ..Config::default()
    };
    let i = fixture(cfg);
    let m = ask(&i, "cluster.local.", RecordType::NS);
    assert_eq!(
        answers(&m),
        vec!["cluster.local. 5 IN NS ns.dns.cluster.local."]
    );
    assert_eq!(
        additionals(&m),
        vec!["ns.dns.cluster.local. 5 IN A 10.96.0.53"]
    );
    let m = ask(&i, "ns.dns.cluster.local.", RecordType::A);
    assert_eq!(answers(&m), vec!["ns.dns.cluster.local. 5 IN A 10.96.0.53"]);
}

#[test]
fn names_match_case_insensitively_and_the_question_is_echoed() {
    let i = idx();
    let q = query("WeB.DeFault.SVC.Cluster.LOCAL.", RecordType::A);
    let (_, out) = respond_raw(&i, &q, Transport::Udp);
    // Header aside, the question section comes back byte for byte.
    let qlen = q.len() - 12;
    assert_eq!(&out[12..12 + qlen], &q[12..]);
    let m = Message::from_vec(&out).unwrap();
    assert_eq!(
        answers(&m),
        vec!["WeB.DeFault.SVC.Cluster.LOCAL. 5 IN A 10.96.0.10"]
    );
    // The SOA's owner follows the question's case too, as CoreDNS's does.
    let m = ask(&i, "nope.default.svc.CLUSTER.local.", RecordType::A);
    assert!(authorities(&m)[0]
        .starts_with("CLUSTER.local. 5 IN SOA ns.dns.CLUSTER.local. hostmaster.CLUSTER.local."));
}

#[test]
fn ttl_is_configurable() {
    let i = fixture(Config {
        ttl: 30,
        ..Config::default()
    });
    let m = ask(&i, "web.default.svc.cluster.local.", RecordType::A);
    assert_eq!(
        answers(&m),
        vec!["web.default.svc.cluster.local. 30 IN A 10.96.0.10"]
    );
    let m = ask(&i, "nope.default.svc.cluster.local.", RecordType::A);
    let soa = &authorities(&m)[0];
    assert!(soa.starts_with("cluster.local. 30 IN SOA"), "{soa}");
    assert!(soa.ends_with(" 7200 1800 86400 30"), "{soa}");
}

#[test]
fn pod_records_by_mode() {
    let name = "10-244-1-5.default.pod.cluster.local.";
    assert_nxdomain(&ask(&idx(), name, RecordType::A));

    let insecure = fixture(Config {
        pods: PodMode::Insecure,
        ..Config::default()
    });
    let m = ask(&insecure, name, RecordType::A);
    assert_eq!(answers(&m), vec![format!("{name} 5 IN A 10.244.1.5")]);
    let m = ask(
        &insecure,
        "1-2-3-4.default.pod.cluster.local.",
        RecordType::A,
    );
    assert_eq!(
        answers(&m),
        vec!["1-2-3-4.default.pod.cluster.local. 5 IN A 1.2.3.4"]
    );
    let m = ask(
        &insecure,
        "fd00--7.default.pod.cluster.local.",
        RecordType::AAAA,
    );
    assert_eq!(
        answers(&m),
        vec!["fd00--7.default.pod.cluster.local. 5 IN AAAA fd00::7"]
    );
    assert_nodata(&ask(
        &insecure,
        "fd00--7.default.pod.cluster.local.",
        RecordType::A,
    ));
    assert_nxdomain(&ask(
        &insecure,
        "1-2-3-4.nons.pod.cluster.local.",
        RecordType::A,
    ));
    assert_nxdomain(&ask(
        &insecure,
        "not-an-ip.default.pod.cluster.local.",
        RecordType::A,
    ));
    assert_nodata(&ask(&insecure, "default.pod.cluster.local.", RecordType::A));

    let verified = fixture(Config {
        pods: PodMode::Verified,
        ..Config::default()
    });
    let m = ask(&verified, name, RecordType::A);
    assert_eq!(answers(&m), vec![format!("{name} 5 IN A 10.244.1.5")]);
    // Not ready, but a pod all the same.
    let m = ask(
        &verified,
        "10-244-1-8.default.pod.cluster.local.",
        RecordType::A,
    );
    assert_eq!(answers(&m).len(), 1);
    assert_nxdomain(&ask(
        &verified,
        "1-2-3-4.default.pod.cluster.local.",
        RecordType::A,
    ));
    verified.upsert_namespace("other");
    assert_nxdomain(&ask(
        &verified,
        "10-244-1-5.other.pod.cluster.local.",
        RecordType::A,
    ));
    verified.delete_endpoint_slice("default", "db-abcde");
    assert_nxdomain(&ask(&verified, name, RecordType::A));
}

#[test]
fn incremental_updates() {
    let i = idx();
    i.upsert_endpoint_slice(&endpoint_slice(
        "default",
        "db-abcde",
        "db",
        "IPv4",
        json!([{"name": "pg", "port": 5432}]),
        &[("10.244.1.6", Some("db-1"), Some(true))],
    ))
    .unwrap();
    let m = ask(&i, "db.default.svc.cluster.local.", RecordType::A);
    assert_eq!(
        answers(&m),
        vec!["db.default.svc.cluster.local. 5 IN A 10.244.1.6"]
    );
    assert_eq!(
        ask(&i, "5.1.244.10.in-addr.arpa.", RecordType::PTR)
            .answers
            .len(),
        0,
        "the removed endpoint's PTR is gone"
    );
    // A second slice for the same Service adds to it.
    i.upsert_endpoint_slice(&endpoint_slice(
        "default",
        "db-v6",
        "db",
        "IPv6",
        json!([{"name": "pg", "port": 5432}]),
        &[("fd00::1:6", Some("db-1"), Some(true))],
    ))
    .unwrap();
    let m = ask(&i, "db-1.db.default.svc.cluster.local.", RecordType::AAAA);
    assert_eq!(
        answers(&m),
        vec!["db-1.db.default.svc.cluster.local. 5 IN AAAA fd00::1:6"]
    );
    // Same host in two families: one SRV, two glue records.
    let m = ask(
        &i,
        "_pg._tcp.db.default.svc.cluster.local.",
        RecordType::SRV,
    );
    assert_eq!(
        answers(&m),
        vec!["_pg._tcp.db.default.svc.cluster.local. 5 IN SRV 0 50 5432 db-1.db.default.svc.cluster.local."]
    );
    assert_eq!(
        additionals(&m),
        vec![
            "db-1.db.default.svc.cluster.local. 5 IN A 10.244.1.6",
            "db-1.db.default.svc.cluster.local. 5 IN AAAA fd00::1:6",
        ]
    );

    i.delete_service("default", "web");
    assert_nxdomain(&ask(&i, "web.default.svc.cluster.local.", RecordType::A));
    let (outcome, _) = respond_raw(
        &i,
        &query("10.0.96.10.in-addr.arpa.", RecordType::PTR),
        Transport::Udp,
    );
    assert_eq!(outcome, Outcome::NotInZone);
    // The followed CNAME now leads nowhere.
    assert_nodata(&ask(&i, "inner.default.svc.cluster.local.", RecordType::A));

    // A Service turning headless changes its answers in place.
    i.upsert_service(&cluster_ip(
        "default",
        "db",
        &["10.96.0.99"],
        json!([{"name": "pg", "port": 5432}]),
    ))
    .unwrap();
    let m = ask(&i, "db.default.svc.cluster.local.", RecordType::A);
    assert_eq!(
        answers(&m),
        vec!["db.default.svc.cluster.local. 5 IN A 10.96.0.99"]
    );
    // Endpoint names stay reachable under a ClusterIP Service, as in CoreDNS.
    let m = ask(&i, "db-1.db.default.svc.cluster.local.", RecordType::A);
    assert_eq!(
        answers(&m),
        vec!["db-1.db.default.svc.cluster.local. 5 IN A 10.244.1.6"]
    );

    // The last Service of a namespace gone, the namespace name goes too.
    for s in ["dual", "db", "lonely", "search", "inner"] {
        i.delete_service("default", s);
    }
    assert_nxdomain(&ask(&i, "default.svc.cluster.local.", RecordType::A));
    assert_eq!(i.service_count(), 0);
}

#[test]
fn objects_without_names_are_rejected() {
    let i = idx();
    let err = i
        .upsert_service(&service(json!({"metadata": {"namespace": "x"}})))
        .unwrap_err();
    assert_eq!(err.to_string(), "Service has no metadata.name");
    let err = i.upsert_endpoint_slice(&slice(
        json!({"metadata": {"name": "s"}, "addressType": "IPv4", "endpoints": []}),
    ));
    assert_eq!(
        err.unwrap_err().to_string(),
        "EndpointSlice s has no metadata.namespace"
    );
}

#[test]
fn other_zone_names() {
    let i = fixture(Config {
        zone: "Corp.Example.".to_string(),
        ..Config::default()
    });
    let m = ask(&i, "web.default.svc.corp.example.", RecordType::A);
    assert_eq!(
        answers(&m),
        vec!["web.default.svc.corp.example. 5 IN A 10.96.0.10"]
    );
    let (outcome, out) = respond_raw(
        &i,
        &query("web.default.svc.cluster.local.", RecordType::A),
        Transport::Udp,
    );
    assert_eq!(outcome, Outcome::NotInZone);
    assert_eq!(
        Message::from_vec(&out).unwrap().metadata.response_code,
        ResponseCode::Refused
    );
    assert!(Index::new(Config {
        zone: "bad..zone".into(),
        ..Config::default()
    })
    .is_err());
}
