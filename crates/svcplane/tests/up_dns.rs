//! `svcplane up` serves cluster DNS from the API it runs: answers follow kubectl changes.

mod common;

use std::time::Duration;

use common::{dig, eventually, examples_dir, ApiServer};

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
