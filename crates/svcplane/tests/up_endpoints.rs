//! `svcplane up` runs the EndpointSlice controller: pods made ready with `svcplane pod ready` become
//! endpoints that kubectl shows and DNS answers with.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{dig, eventually, examples_dir, ApiServer};

fn pod(s: &ApiServer, state: &str, name: &str, ip: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_svcplane"))
        .args(["pod", state, name, "--ip", ip, "--kubeconfig"])
        .arg(s.kubeconfig())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn ready_pods_become_endpoints_in_kubectl_and_dns() {
    let s = ApiServer::start_up(&[]);
    s.kubectl_ok(&[
        "apply",
        "-f",
        &examples_dir().join("services.yaml").display().to_string(),
    ]);
    pod(&s, "ready", "web-1", "10.244.1.5");
    pod(&s, "ready", "db-0", "10.244.1.9");
    let eps = eventually(
        Duration::from_secs(30),
        "web's slice to hold the ready pod",
        || {
            let out = s.kubectl_ok(&[
                "get",
                "endpointslices",
                "-l",
                "kubernetes.io/service-name=web",
            ]);
            out.contains("10.244.1.5").then_some(out)
        },
    );
    assert!(
        eps.contains("8080"),
        "named targetPort http resolved to 8080: {eps}"
    );
    let describe = s.kubectl_ok(&["describe", "svc", "web"]);
    assert!(describe.contains("10.244.1.5:8080"), "{describe}");
    // Headless: the pod's address and its hostname answer in DNS.
    eventually(Duration::from_secs(30), "headless A record", || {
        (dig(&s, &["+short", "db.default.svc.cluster.local"]).trim() == "10.244.1.9").then_some(())
    });
    assert_eq!(
        dig(&s, &["+short", "db-0.db.default.svc.cluster.local"]).trim(),
        "10.244.1.9"
    );
    // Unready: the endpoint leaves the headless answer.
    pod(&s, "unready", "db-0", "10.244.1.9");
    eventually(Duration::from_secs(30), "NXDOMAIN once unready", || {
        dig(&s, &["db.default.svc.cluster.local"])
            .contains("status: NXDOMAIN")
            .then_some(())
    });
}
