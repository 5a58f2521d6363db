//! The DNS server asked by hickory-resolver, a stub resolver that applications link (independent of dig and of our
//! encoder): fed by watches on the real API server (in-process), forwarding to an upstream the test starts on
//! loopback. The resolver is built from an explicit configuration (no system files, no hosts file), so nothing
//! here queries the machine's resolvers or leaves 127.0.0.0/8.

mod harness;

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use dns::{BoundAddrs, DnsOptions, DnsServer};
use harness::*;
use hickory_proto::rr::RecordType;
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::TokioResolver;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{DeleteParams, PostParams};
use kube::Api as KApi;
use serde_json::json;

const DEADLINE: Duration = Duration::from_secs(10);

/// A resolver that asks only `dns` (UDP, then TCP when an answer is truncated) and caches nothing, so that every
/// lookup reaches the server.
fn resolver(dns: SocketAddr) -> TokioResolver {
    let mut udp = ConnectionConfig::udp();
    udp.port = dns.port();
    let mut tcp = ConnectionConfig::tcp();
    tcp.port = dns.port();
    let config = ResolverConfig::from_parts(
        None,
        vec![],
        vec![NameServerConfig::new(dns.ip(), true, vec![udp, tcp])],
    );
    let mut opts = ResolverOpts::default();
    opts.cache_size = 0;
    opts.use_hosts_file = ResolveHosts::Never;
    opts.ndots = 0;
    opts.timeout = Duration::from_secs(2);
    TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
        .with_options(opts)
        .build()
        .unwrap()
}

/// The answer section as sorted `TYPE value` strings.
fn answers(records: &[hickory_proto::rr::Record]) -> Vec<String> {
    let mut v: Vec<String> = records
        .iter()
        .map(|r| format!("{} {}", r.record_type(), r.data))
        .collect();
    v.sort();
    v
}

async fn lookup(r: &TokioResolver, name: &str, t: RecordType) -> Vec<String> {
    match r.lookup(name, t).await {
        Ok(l) => answers(l.answers()),
        Err(e) => panic!("{name} {t}: {e}"),
    }
}

/// Whether the name does not exist (NXDOMAIN) as opposed to existing without records of the type (NODATA).
async fn negative(r: &TokioResolver, name: &str, t: RecordType) -> Negative {
    match r.lookup(name, t).await {
        Ok(l) => panic!(
            "{name} {t}: expected no records, got {:?}",
            answers(l.answers())
        ),
        Err(e) if e.is_nx_domain() => Negative::NxDomain,
        Err(e) if e.is_no_records_found() => Negative::NoData,
        Err(e) => panic!("{name} {t}: {e}"),
    }
}

#[derive(Debug, PartialEq)]
enum Negative {
    NxDomain,
    NoData,
}

async fn start_dns(client: kube::Client, upstream: SocketAddr) -> BoundAddrs {
    let server = DnsServer::bind(DnsOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        upstream: vec![upstream.to_string()],
        ..DnsOptions::default()
    })
    .await
    .unwrap();
    let addrs = server.addrs().clone();
    tokio::spawn(server.run(client, std::future::pending()));
    let ready = addrs.ready.unwrap();
    eventually(DEADLINE, "/ready answers 200", || async move {
        (http_get(ready, "/ready").await.0 == 200).then_some(())
    })
    .await;
    addrs
}

fn object<T: k8s_openapi::serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hickory_resolver_sees_every_service_type() {
    let api = Api::start().await;
    let client = api.client().await;
    let upstream = Upstream::start().await;
    let addrs = start_dns(client.clone(), upstream.addr).await;
    let r = resolver(addrs.dns);

    let pp = PostParams::default();
    let svcs: KApi<Service> = KApi::namespaced(client.clone(), "default");
    let slices: KApi<EndpointSlice> = KApi::namespaced(client.clone(), "default");
    let web = svcs
        .create(
            &pp,
            &object(json!({
                "metadata": {"name": "web"},
                "spec": {"ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}
            })),
        )
        .await
        .unwrap();
    let web_ip = web.spec.unwrap().cluster_ip.unwrap();
    for (name, spec) in [
        (
            "db",
            json!({"clusterIP": "None", "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}]}),
        ),
        (
            "wide",
            json!({"clusterIP": "None", "ports": [{"name": "x", "port": 1}]}),
        ),
        (
            "search",
            json!({"type": "ExternalName", "externalName": "www.example.com"}),
        ),
    ] {
        svcs.create(
            &pp,
            &object(json!({"metadata": {"name": name}, "spec": spec})),
        )
        .await
        .unwrap();
    }
    let db_v4 = json!({
        "metadata": {"name": "db-v4", "labels": {"kubernetes.io/service-name": "db"}},
        "addressType": "IPv4",
        "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
        "endpoints": [
            {"addresses": ["10.244.1.5"], "hostname": "db-0", "conditions": {"ready": true}},
            {"addresses": ["10.244.1.6"], "hostname": "db-1", "conditions": {"ready": true}},
            {"addresses": ["10.244.1.7"], "hostname": "db-2", "conditions": {"ready": false}}
        ]
    });
    slices.create(&pp, &object(db_v4.clone())).await.unwrap();
    // 100 addresses: more than a UDP answer may carry, so the resolver must retry over TCP.
    let wide: Vec<_> = (1..=100)
        .map(|i| json!({"addresses": [format!("10.244.2.{i}")], "conditions": {"ready": true}}))
        .collect();
    slices
        .create(
            &pp,
            &object(json!({
                "metadata": {"name": "wide-1", "labels": {"kubernetes.io/service-name": "wide"}},
                "addressType": "IPv4",
                "ports": [{"name": "x", "port": 1, "protocol": "TCP"}],
                "endpoints": wide
            })),
        )
        .await
        .unwrap();
    slices
        .create(
            &pp,
            &object(json!({
                "metadata": {"name": "db-v6", "labels": {"kubernetes.io/service-name": "db"}},
                "addressType": "IPv6",
                "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
                "endpoints": [{"addresses": ["fd00::5"], "conditions": {"ready": true}}]
            })),
        )
        .await
        .unwrap();
    // The last object written is in once its record answers.
    eventually(DEADLINE, "db AAAA", || async {
        r.lookup("db.default.svc.cluster.local.", RecordType::AAAA)
            .await
            .ok()
            .filter(|l| answers(l.answers()) == ["AAAA fd00::5"])
    })
    .await;

    // ClusterIP: A with the configured TTL, NODATA for AAAA, SRV, PTR; names are case-insensitive.
    let l = r
        .ipv4_lookup("web.default.svc.cluster.local.")
        .await
        .unwrap();
    assert_eq!(answers(l.answers()), [format!("A {web_ip}")]);
    assert!(l.answers().iter().all(|rec| rec.ttl == 5), "{l:?}");
    assert_eq!(
        lookup(&r, "WEB.Default.SVC.cluster.local.", RecordType::A).await,
        [format!("A {web_ip}")]
    );
    assert_eq!(
        negative(&r, "web.default.svc.cluster.local.", RecordType::AAAA).await,
        Negative::NoData
    );
    assert_eq!(
        lookup(
            &r,
            "_http._tcp.web.default.svc.cluster.local.",
            RecordType::SRV
        )
        .await,
        ["SRV 0 100 80 web.default.svc.cluster.local."]
    );
    let ip: IpAddr = web_ip.parse().unwrap();
    let ptr = r.reverse_lookup(ip).await.unwrap();
    assert_eq!(
        answers(ptr.answers()),
        ["PTR web.default.svc.cluster.local."]
    );

    // Headless: the ready endpoints, per-endpoint names, SRV per endpoint, PTR per endpoint.
    let ips: BTreeSet<IpAddr> = r
        .lookup_ip("db.default.svc.cluster.local.")
        .await
        .unwrap()
        .iter()
        .collect();
    let want: BTreeSet<IpAddr> = ["10.244.1.5", "10.244.1.6", "fd00::5"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(ips, want);
    assert_eq!(
        lookup(&r, "db-1.db.default.svc.cluster.local.", RecordType::A).await,
        ["A 10.244.1.6"]
    );
    assert_eq!(
        negative(&r, "db-2.db.default.svc.cluster.local.", RecordType::A).await,
        Negative::NxDomain,
        "a not-ready endpoint has no name"
    );
    assert_eq!(
        lookup(
            &r,
            "_pg._tcp.db.default.svc.cluster.local.",
            RecordType::SRV
        )
        .await,
        [
            "SRV 0 33 5432 db-0.db.default.svc.cluster.local.",
            "SRV 0 33 5432 db-1.db.default.svc.cluster.local.",
            "SRV 0 33 5432 fd00--5.db.default.svc.cluster.local.",
        ]
    );
    let ptr = r
        .reverse_lookup("10.244.1.5".parse::<IpAddr>().unwrap())
        .await
        .unwrap();
    assert_eq!(
        answers(ptr.answers()),
        ["PTR db-0.db.default.svc.cluster.local."]
    );

    // Truncated over UDP, whole over TCP.
    let (_, before) = http_get(addrs.metrics.unwrap(), "/metrics").await;
    let wide = r
        .ipv4_lookup("wide.default.svc.cluster.local.")
        .await
        .unwrap();
    assert_eq!(wide.answers().len(), 100);
    let (_, after) = http_get(addrs.metrics.unwrap(), "/metrics").await;
    assert!(
        tcp_requests(&after) > tcp_requests(&before),
        "the 100 addresses came over TCP:\n{after}"
    );

    // ExternalName: the CNAME, then the target's address from the upstream.
    let l = r
        .lookup("search.default.svc.cluster.local.", RecordType::A)
        .await
        .unwrap();
    assert_eq!(
        answers(l.answers()),
        ["A 192.0.2.20", "CNAME www.example.com."]
    );

    // Schema version; NXDOMAIN for a name that does not exist, in the zone and outside it (forwarded).
    assert_eq!(
        lookup(&r, "dns-version.cluster.local.", RecordType::TXT).await,
        ["TXT 1.1.0"]
    );
    assert_eq!(
        negative(&r, "nothere.default.svc.cluster.local.", RecordType::A).await,
        Negative::NxDomain
    );
    assert_eq!(
        lookup(&r, "example.org.", RecordType::A).await,
        ["A 192.0.2.10"]
    );
    assert!(upstream.count("udp", "example.org.") >= 1);
    assert_eq!(
        negative(&r, "nope.example.org.", RecordType::A).await,
        Negative::NxDomain
    );

    // Changes are seen: a new ready endpoint, then a deleted Service.
    let mut s = slices.get("db-v4").await.unwrap();
    let mut more = db_v4;
    more["endpoints"].as_array_mut().unwrap().push(
        json!({"addresses": ["10.244.1.8"], "hostname": "db-3", "conditions": {"ready": true}}),
    );
    s.endpoints = object::<EndpointSlice>(more).endpoints;
    slices.replace("db-v4", &pp, &s).await.unwrap();
    eventually(DEADLINE, "the new endpoint answers", || async {
        r.lookup("db-3.db.default.svc.cluster.local.", RecordType::A)
            .await
            .ok()
            .filter(|l| answers(l.answers()) == ["A 10.244.1.8"])
    })
    .await;
    svcs.delete("web", &DeleteParams::default()).await.unwrap();
    eventually(DEADLINE, "the deleted Service is gone", || async {
        (negative(&r, "web.default.svc.cluster.local.", RecordType::A).await == Negative::NxDomain)
            .then_some(())
    })
    .await;
}

/// `svcplane_dns_requests_total{proto="tcp"}` from the metrics text (0 when absent).
fn tcp_requests(metrics: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("svcplane_dns_requests_total{proto=\"tcp\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}
