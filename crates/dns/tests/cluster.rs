//! The DNS server as `svcplane` runs it: fed by watches on the real API server (in-process), asked with the
//! real dig, forwarding to an upstream the test starts on loopback. Nothing here queries the machine's resolvers
//! or leaves 127.0.0.0/8.

mod harness;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dns::{BoundAddrs, DnsOptions, DnsServer};
use harness::*;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{DeleteParams, PostParams};
use kube::Api as KApi;
use serde_json::json;

const DEADLINE: Duration = Duration::from_secs(10);

fn opts(upstream: Option<SocketAddr>) -> DnsOptions {
    DnsOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        upstream: upstream.map(|u| vec![u.to_string()]).unwrap_or_default(),
        ..DnsOptions::default()
    }
}

async fn start_dns(client: kube::Client, opts: DnsOptions) -> BoundAddrs {
    let server = DnsServer::bind(opts).await.unwrap();
    let addrs = server.addrs().clone();
    tokio::spawn(server.run(client, std::future::pending()));
    addrs
}

async fn wait_ready(addrs: &BoundAddrs) {
    let ready = addrs.ready.unwrap();
    eventually(DEADLINE, "/ready answers 200", || async move {
        (http_get(ready, "/ready").await.0 == 200).then_some(())
    })
    .await;
}

fn service(v: serde_json::Value) -> Service {
    serde_json::from_value(v).unwrap()
}

fn slice(v: serde_json::Value) -> EndpointSlice {
    serde_json::from_value(v).unwrap()
}

/// Waits until dig's answer for `args` satisfies `ok`.
async fn dig_until(dns: SocketAddr, args: &[&str], what: &str, ok: impl Fn(&Dig) -> bool) -> Dig {
    eventually(DEADLINE, what, || async {
        let d = dig(dns, args).await;
        ok(&d).then_some(d)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_kind_from_the_api_server() {
    if !dig_installed() {
        return;
    }
    let api = Api::start().await;
    let client = api.client().await;
    let upstream = Upstream::start().await;
    let addrs = start_dns(client.clone(), opts(Some(upstream.addr))).await;
    let dns = addrs.dns;
    wait_ready(&addrs).await;

    let pp = PostParams::default();
    let svcs: KApi<Service> = KApi::namespaced(client.clone(), "default");
    let slices: KApi<EndpointSlice> = KApi::namespaced(client.clone(), "default");
    let web = svcs
        .create(
            &pp,
            &service(json!({
                "metadata": {"name": "web"},
                "spec": {"ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}
            })),
        )
        .await
        .unwrap();
    let web_ip = web.spec.unwrap().cluster_ip.unwrap();
    svcs.create(
        &pp,
        &service(json!({
            "metadata": {"name": "db"},
            "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}]}
        })),
    )
    .await
    .unwrap();
    svcs.create(
        &pp,
        &service(json!({
            "metadata": {"name": "lonely"},
            "spec": {"clusterIP": "None", "ports": [{"name": "x", "port": 1}]}
        })),
    )
    .await
    .unwrap();
    svcs.create(
        &pp,
        &service(json!({
            "metadata": {"name": "search"},
            "spec": {"type": "ExternalName", "externalName": "www.example.com"}
        })),
    )
    .await
    .unwrap();
    svcs.create(
        &pp,
        &service(json!({
            "metadata": {"name": "inner"},
            "spec": {"type": "ExternalName", "externalName": "web.default.svc.cluster.local"}
        })),
    )
    .await
    .unwrap();
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
    slices.create(&pp, &slice(db_v4.clone())).await.unwrap();
    slices
        .create(
            &pp,
            &slice(json!({
                "metadata": {"name": "db-v6", "labels": {"kubernetes.io/service-name": "db"}},
                "addressType": "IPv6",
                "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
                "endpoints": [{"addresses": ["fd00::5"], "conditions": {"ready": true}}]
            })),
        )
        .await
        .unwrap();

    // The last object written is in once its record answers.
    dig_until(
        dns,
        &["db.default.svc.cluster.local", "AAAA"],
        "db AAAA",
        |d| d.values() == ["AAAA fd00::5"],
    )
    .await;

    // ClusterIP: A, authoritative, SRV with the address as glue, PTR.
    let d = dig(dns, &["web.default.svc.cluster.local"]).await;
    assert_eq!(d.status, "NOERROR", "{}", d.raw);
    assert!(d.flags.contains(&"aa".to_string()), "{}", d.raw);
    assert_eq!(d.values(), [format!("A {web_ip}")]);
    let d = dig(dns, &["_http._tcp.web.default.svc.cluster.local", "SRV"]).await;
    assert_eq!(d.values(), ["SRV 0 100 80 web.default.svc.cluster.local."]);
    assert!(
        d.additional.iter().any(|l| l.ends_with(&web_ip)),
        "{}",
        d.raw
    );
    let d = dig(dns, &["-x", &web_ip]).await;
    assert_eq!(
        d.values(),
        ["PTR web.default.svc.cluster.local."],
        "{}",
        d.raw
    );

    // Headless: one A per ready endpoint, AAAA from the IPv6 slice, per-endpoint names, SRV per endpoint, PTR.
    let d = dig(dns, &["db.default.svc.cluster.local"]).await;
    assert_eq!(d.values(), ["A 10.244.1.5", "A 10.244.1.6"], "{}", d.raw);
    let d = dig(dns, &["db-0.db.default.svc.cluster.local"]).await;
    assert_eq!(d.values(), ["A 10.244.1.5"]);
    let d = dig(dns, &["db-2.db.default.svc.cluster.local"]).await;
    assert_eq!(
        d.status, "NXDOMAIN",
        "a not-ready endpoint has no name: {}",
        d.raw
    );
    let d = dig(dns, &["_pg._tcp.db.default.svc.cluster.local", "SRV"]).await;
    assert_eq!(
        d.values(),
        [
            "SRV 0 33 5432 db-0.db.default.svc.cluster.local.",
            "SRV 0 33 5432 db-1.db.default.svc.cluster.local.",
            "SRV 0 33 5432 fd00--5.db.default.svc.cluster.local.",
        ],
        "{}",
        d.raw
    );
    let d = dig(dns, &["-x", "10.244.1.6"]).await;
    assert_eq!(d.values(), ["PTR db-1.db.default.svc.cluster.local."]);

    // ExternalName: the CNAME, then the target's address from the upstream (outside the zone) or the index.
    let d = dig(dns, &["search.default.svc.cluster.local"]).await;
    assert_eq!(d.status, "NOERROR");
    assert_eq!(
        d.values(),
        ["A 192.0.2.20", "CNAME www.example.com."],
        "{}",
        d.raw
    );
    let d = dig(dns, &["inner.default.svc.cluster.local"]).await;
    assert_eq!(
        d.values(),
        [
            format!("A {web_ip}"),
            "CNAME web.default.svc.cluster.local.".to_string()
        ]
    );

    // The schema version; NXDOMAIN versus NODATA, both with the zone's SOA; the question echoed as asked.
    let d = dig(dns, &["dns-version.cluster.local", "TXT"]).await;
    assert_eq!(d.values(), ["TXT \"1.1.0\""]);
    let d = dig(dns, &["nothere.default.svc.cluster.local"]).await;
    assert_eq!(d.status, "NXDOMAIN");
    assert_eq!(d.authority_types(), ["SOA"], "{}", d.raw);
    let d = dig(dns, &["lonely.default.svc.cluster.local"]).await;
    assert_eq!(
        d.status, "NXDOMAIN",
        "headless without endpoints: {}",
        d.raw
    );
    let d = dig(dns, &["web.default.svc.cluster.local", "TXT"]).await;
    assert_eq!(d.status, "NOERROR");
    assert!(d.answer.is_empty());
    assert_eq!(d.authority_types(), ["SOA"], "{}", d.raw);
    let d = dig(dns, &["WeB.DeFaulT.svc.Cluster.Local"]).await;
    assert!(
        d.question[0].starts_with("WeB.DeFaulT.svc.Cluster.Local."),
        "{}",
        d.raw
    );
    assert_eq!(d.values(), [format!("A {web_ip}")]);

    // Outside the zone: forwarded, then served from the cache (positive and negative).
    let d = dig(dns, &["example.org"]).await;
    assert_eq!(d.status, "NOERROR");
    assert!(!d.flags.contains(&"aa".to_string()));
    assert_eq!(d.values(), ["A 192.0.2.10"]);
    let d = dig(dns, &["EXAMPLE.org"]).await;
    assert_eq!(d.values(), ["A 192.0.2.10"]);
    assert!(d.question[0].starts_with("EXAMPLE.org."), "{}", d.raw);
    assert_eq!(
        upstream.count("udp", "example.org."),
        1,
        "second answer came from the cache"
    );
    for _ in 0..2 {
        let d = dig(dns, &["nope.example.org"]).await;
        assert_eq!(d.status, "NXDOMAIN");
        assert_eq!(d.authority_types(), ["SOA"]);
    }
    assert_eq!(
        upstream.count("udp", "nope.example.org."),
        1,
        "negative answer cached"
    );

    // Too big for UDP twice over: the upstream truncates to us (we retry over TCP), we truncate to dig (it
    // retries over TCP, answered from the cache).
    let d = dig(dns, &["big.example.org"]).await;
    assert!(
        d.raw.contains("Truncated, retrying in TCP mode"),
        "{}",
        d.raw
    );
    assert_eq!(d.answer.len(), 100, "{}", d.raw);
    assert_eq!(upstream.count("udp", "big.example.org."), 1);
    assert_eq!(upstream.count("tcp", "big.example.org."), 1);

    // A change is seen: a new ready endpoint, then a deleted Service.
    let mut more = db_v4.clone();
    more["endpoints"].as_array_mut().unwrap().push(
        json!({"addresses": ["10.244.1.8"], "hostname": "db-3", "conditions": {"ready": true}}),
    );
    let mut s = slices.get("db-v4").await.unwrap();
    s.endpoints = slice(more).endpoints;
    slices.replace("db-v4", &pp, &s).await.unwrap();
    dig_until(
        dns,
        &["db.default.svc.cluster.local"],
        "new endpoint answers",
        |d| d.values() == ["A 10.244.1.5", "A 10.244.1.6", "A 10.244.1.8"],
    )
    .await;
    let d = dig(dns, &["-x", "10.244.1.8"]).await;
    assert_eq!(d.values(), ["PTR db-3.db.default.svc.cluster.local."]);
    svcs.delete("web", &DeleteParams::default()).await.unwrap();
    dig_until(
        dns,
        &["web.default.svc.cluster.local"],
        "deleted Service is gone",
        |d| d.status == "NXDOMAIN",
    )
    .await;

    // The HTTP side.
    assert_eq!(
        http_get(addrs.health.unwrap(), "/health").await,
        (200, "OK".to_string())
    );
    let (code, text) = http_get(addrs.metrics.unwrap(), "/metrics").await;
    assert_eq!(code, 200);
    for want in [
        "svcplane_dns_responses_total{type=\"A\",rcode=\"NOERROR\"} ",
        "svcplane_dns_responses_total{type=\"A\",rcode=\"NXDOMAIN\"} ",
        "svcplane_dns_responses_total{type=\"SRV\",rcode=\"NOERROR\"} ",
        "svcplane_dns_responses_total{type=\"PTR\",rcode=\"NOERROR\"} ",
        "svcplane_dns_cache_hits_total{type=\"success\"} 2",
        "svcplane_dns_cache_hits_total{type=\"denial\"} 1",
        "svcplane_dns_request_duration_seconds_count ",
        "svcplane_dns_requests_total{proto=\"tcp\"} 1",
        "svcplane_dns_ready 1",
    ] {
        assert!(text.contains(want), "{want} missing from\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_only_for_allowed_clients_and_never_without_upstream() {
    if !dig_installed() {
        return;
    }
    let api = Api::start().await;
    let client = api.client().await;
    let upstream = Upstream::start().await;
    let mut guarded = opts(Some(upstream.addr));
    guarded.allow_forward_from = vec!["127.0.0.1/32".parse().unwrap()];
    let guarded = start_dns(client.clone(), guarded).await;
    let closed = start_dns(client.clone(), opts(None)).await;
    wait_ready(&guarded).await;
    wait_ready(&closed).await;
    let svcs: KApi<Service> = KApi::namespaced(client.clone(), "default");
    svcs.create(
        &PostParams::default(),
        &service(json!({
            "metadata": {"name": "search"},
            "spec": {"type": "ExternalName", "externalName": "www.example.com"}
        })),
    )
    .await
    .unwrap();
    for server in [guarded.dns, closed.dns] {
        dig_until(
            server,
            &["search.default.svc.cluster.local"],
            "ExternalName",
            |d| d.status == "NOERROR" && !d.answer.is_empty(),
        )
        .await;
    }
    // The guarded server resolved the target for dig's default source, 127.0.0.1; start counting afresh.
    upstream.seen.lock().unwrap().clear();

    // 127.0.0.2 is loopback, but outside 127.0.0.1/32: the zone is served, nothing is forwarded.
    let d = dig(guarded.dns, &["-b", "127.0.0.2", "example.org"]).await;
    assert_eq!(d.status, "REFUSED", "{}", d.raw);
    let d = dig(
        guarded.dns,
        &["-b", "127.0.0.2", "search.default.svc.cluster.local"],
    )
    .await;
    assert_eq!(d.values(), ["CNAME www.example.com."], "{}", d.raw);
    let d = dig(
        guarded.dns,
        &["-b", "127.0.0.2", "dns-version.cluster.local", "TXT"],
    )
    .await;
    assert_eq!(d.values(), ["TXT \"1.1.0\""]);
    assert!(
        upstream.seen.lock().unwrap().is_empty(),
        "nothing reached the upstream"
    );
    let d = dig(guarded.dns, &["-b", "127.0.0.1", "example.org"]).await;
    assert_eq!(d.values(), ["A 192.0.2.10"]);
    let (_, text) = http_get(guarded.metrics.unwrap(), "/metrics").await;
    assert!(
        text.contains("svcplane_dns_forward_refused_total 1"),
        "{text}"
    );

    // No --upstream: REFUSED outside the zone, the CNAME alone for an ExternalName.
    let d = dig(closed.dns, &["example.org"]).await;
    assert_eq!(d.status, "REFUSED");
    let d = dig(closed.dns, &["search.default.svc.cluster.local"]).await;
    assert_eq!(d.status, "NOERROR");
    assert_eq!(d.values(), ["CNAME www.example.com."]);
    assert_eq!(
        upstream.count("udp", "example.org."),
        1,
        "only the allowed query left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_after_the_initial_list_and_through_reconnects() {
    if !dig_installed() {
        return;
    }
    let api = Api::start().await;
    let direct = api.client().await;
    let relay = Relay::start(api.running.addr).await;
    let mut cfg = api.config().await;
    cfg.cluster_url = format!("https://{}", relay.addr).parse().unwrap();
    let relayed = kube::Client::try_from(cfg).unwrap();
    let addrs = start_dns(relayed, opts(None)).await;

    // Serving DNS and healthy, but the API is out of reach: not ready.
    dig_until(
        addrs.dns,
        &["dns-version.cluster.local", "TXT"],
        "dns up",
        |d| d.status == "NOERROR",
    )
    .await;
    assert_eq!(
        http_get(addrs.health.unwrap(), "/health").await,
        (200, "OK".to_string())
    );
    let (code, body) = http_get(addrs.ready.unwrap(), "/ready").await;
    assert_eq!((code, body.as_str()), (503, "kubernetes"));

    let svcs: KApi<Service> = KApi::namespaced(direct.clone(), "default");
    let pp = PostParams::default();
    let mk = |name: &str| {
        service(json!({"metadata": {"name": name}, "spec": {"ports": [{"port": 80}]}}))
    };
    svcs.create(&pp, &mk("before")).await.unwrap();
    relay.open();
    wait_ready(&addrs).await;
    dig_until(
        addrs.dns,
        &["before.default.svc.cluster.local"],
        "listed",
        |d| d.answer.len() == 1,
    )
    .await;

    // Connection lost: the index keeps answering; changes made meanwhile arrive once it is back.
    relay.close();
    relay.cut();
    svcs.create(&pp, &mk("during")).await.unwrap();
    svcs.delete("before", &DeleteParams::default())
        .await
        .unwrap();
    let d = dig(addrs.dns, &["before.default.svc.cluster.local"]).await;
    assert_eq!(
        d.answer.len(),
        1,
        "still answered while disconnected: {}",
        d.raw
    );
    assert_eq!(http_get(addrs.ready.unwrap(), "/ready").await.0, 200);
    relay.open();
    dig_until(
        addrs.dns,
        &["during.default.svc.cluster.local"],
        "created while away",
        |d| d.answer.len() == 1,
    )
    .await;
    dig_until(
        addrs.dns,
        &["before.default.svc.cluster.local"],
        "deleted while away",
        |d| d.status == "NXDOMAIN",
    )
    .await;
}

/// One UDP query for `name` A; true when the answer section is not empty.
async fn answers(sock: &tokio::net::UdpSocket, name: &str, id: u16) -> bool {
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::{Name, RecordType};
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    sock.send(&m.to_vec().unwrap()).await.unwrap();
    let mut buf = [0u8; 1500];
    loop {
        let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(200), sock.recv(&mut buf)).await
        else {
            return false;
        };
        let Ok(r) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        if r.metadata.id == id {
            return !r.answers.is_empty();
        }
    }
}

/// The figure the issue asks for: from the API acknowledging a Service create to its name answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_to_answer_latency() {
    let api = Api::start().await;
    let client = api.client().await;
    let addrs = start_dns(client.clone(), opts(None)).await;
    wait_ready(&addrs).await;
    let svcs: KApi<Service> = KApi::namespaced(client.clone(), "default");
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.connect(addrs.dns).await.unwrap();
    let mut took = Vec::new();
    for i in 0..30u16 {
        let name = format!("lat-{i}");
        let svc = service(json!({"metadata": {"name": name}, "spec": {"ports": [{"port": 80}]}}));
        svcs.create(&PostParams::default(), &svc).await.unwrap();
        let acked = Instant::now();
        let fqdn = format!("{name}.default.svc.cluster.local.");
        let mut id = 0u16;
        loop {
            id = id.wrapping_add(1);
            if answers(&sock, &fqdn, id).await {
                break;
            }
            assert!(acked.elapsed() < DEADLINE, "{name} never answered");
            // Poll interval: 0.2 ms, small against the figure measured.
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        took.push(acked.elapsed());
    }
    took.sort();
    let pct = |p: usize| took[(took.len() - 1) * p / 100];
    eprintln!(
        "create acknowledged -> name answers, {} Services: p50 {:?}, p90 {:?}, max {:?}",
        took.len(),
        pct(50),
        pct(90),
        pct(100)
    );
    // The target is 50 ms; the bound here is loose because the test shares two cores with other builds.
    assert!(pct(50) < Duration::from_millis(500), "{took:?}");
}
