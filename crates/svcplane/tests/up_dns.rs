//! `svcplane up` serves cluster DNS from the API it runs: answers follow kubectl changes.

mod common;

use std::time::Duration;

use common::{dig, eventually, examples_dir, ApiServer};
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RecordType;
use hickory_resolver::TokioResolver;

/// Asks the DNS server of `svcplane up` through hickory-resolver (UDP, TCP on truncation; no system files, no
/// cache): the answers as sorted `TYPE value`, or NXDOMAIN / NODATA.
fn resolve(s: &ApiServer, name: &str, t: RecordType) -> Result<Vec<String>, &'static str> {
    let addr: std::net::SocketAddr = s.dns.as_deref().expect("started with up").parse().unwrap();
    let connections = [ConnectionConfig::udp(), ConnectionConfig::tcp()]
        .into_iter()
        .map(|mut c| {
            c.port = addr.port();
            c
        })
        .collect();
    let config = ResolverConfig::from_parts(
        None,
        vec![],
        vec![NameServerConfig::new(addr.ip(), true, connections)],
    );
    let mut opts = ResolverOpts::default();
    opts.cache_size = 0;
    opts.use_hosts_file = ResolveHosts::Never;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let r = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(opts)
            .build()
            .unwrap();
        match r.lookup(name, t).await {
            Ok(l) => {
                let mut v: Vec<String> = l
                    .answers()
                    .iter()
                    .map(|r| format!("{} {}", r.record_type(), r.data))
                    .collect();
                v.sort();
                Ok(v)
            }
            Err(e) if e.is_nx_domain() => Err("NXDOMAIN"),
            Err(e) if e.is_no_records_found() => Err("NODATA"),
            Err(e) => panic!("{name} {t}: {e}"),
        }
    })
}

#[test]
fn up_answers_dns_for_every_service_type() {
    let s = ApiServer::start_up(&[]);
    s.kubectl_ok(&[
        "apply",
        "-f",
        &examples_dir().join("services.yaml").display().to_string(),
    ]);
    let ip = s.kubectl_ok(&["get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}"]);
    let a = eventually(Duration::from_secs(20), "A record of web", || {
        let out = dig(&s, &["+short", "web.default.svc.cluster.local"]);
        (out.trim() == ip).then_some(out)
    });
    assert_eq!(a.trim(), ip);
    let srv = dig(
        &s,
        &["+short", "_http._tcp.web.default.svc.cluster.local", "SRV"],
    );
    assert!(srv.contains("80 web.default.svc.cluster.local."), "{srv}");
    // The same through hickory-resolver, a stub resolver as applications link it.
    assert_eq!(
        resolve(&s, "web.default.svc.cluster.local.", RecordType::A),
        Ok(vec![format!("A {ip}")])
    );
    assert_eq!(
        resolve(
            &s,
            "_http._tcp.web.default.svc.cluster.local.",
            RecordType::SRV
        ),
        Ok(vec![
            "SRV 0 100 80 web.default.svc.cluster.local.".to_string()
        ])
    );
    assert_eq!(
        resolve(&s, "search.default.svc.cluster.local.", RecordType::CNAME),
        Ok(vec!["CNAME www.example.org.".to_string()])
    );
    assert_eq!(
        resolve(&s, "db.default.svc.cluster.local.", RecordType::A),
        Err("NXDOMAIN")
    );
    assert_eq!(
        resolve(&s, "web.default.svc.cluster.local.", RecordType::AAAA),
        Err("NODATA")
    );
    let ptr = dig(&s, &["+short", "-x", &ip]);
    assert_eq!(ptr.trim(), "web.default.svc.cluster.local.");
    let cname = dig(&s, &["+short", "search.default.svc.cluster.local"]);
    assert_eq!(cname.trim(), "www.example.org.");
    // Headless without ready endpoints: NXDOMAIN, as the specification says.
    let db = dig(&s, &["db.default.svc.cluster.local"]);
    assert!(db.contains("status: NXDOMAIN"), "{db}");
    // Outside the zone with no --upstream: REFUSED, nothing leaves the machine.
    let out = dig(&s, &["example.org"]);
    assert!(out.contains("status: REFUSED"), "{out}");
    // A delete is seen.
    s.kubectl_ok(&["delete", "svc", "web"]);
    eventually(Duration::from_secs(20), "NXDOMAIN after delete", || {
        dig(&s, &["web.default.svc.cluster.local"])
            .contains("status: NXDOMAIN")
            .then_some(())
    });
}
