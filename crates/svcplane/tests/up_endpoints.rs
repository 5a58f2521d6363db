//! `svcplane up` runs the EndpointSlice controller: pods made ready with `svcplane pod ready` become
//! endpoints that kubectl shows and DNS answers with.

mod common;

use std::time::Duration;

use common::{dig, eventually, examples_dir, ApiServer};

fn pod(s: &ApiServer, state: &str, name: &str, ip: &str) {
    let kc = s.kubeconfig().display().to_string();
    common::svcplane_ok(&["pod", state, name, "--ip", ip, "--kubeconfig", &kc]);
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

#[test]
fn endpoints_of_a_selectorless_service_are_mirrored_into_slices_and_dns() {
    let s = ApiServer::start_up(&[]);
    let manifest = "apiVersion: v1\nkind: Service\nmetadata: {name: ext}\nspec:\n  clusterIP: None\n  ports: [{name: http, port: 80}]\n---\napiVersion: v1\nkind: Endpoints\nmetadata: {name: ext}\nsubsets:\n- addresses: [{ip: 192.0.2.10}, {ip: 192.0.2.11}]\n  ports: [{name: http, port: 80}]\n";
    let out = s.kubectl_stdin(&["apply", "-f", "-"], manifest);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let selector = "kubernetes.io/service-name=ext,endpointslice.kubernetes.io/managed-by=endpointslicemirroring-controller.k8s.io";
    eventually(Duration::from_secs(30), "the mirrored slice", || {
        let got = s.kubectl_ok(&[
            "get",
            "endpointslices",
            "-l",
            selector,
            "-o",
            "jsonpath={.items[*].endpoints[*].addresses[0]}",
        ]);
        (got == "192.0.2.10 192.0.2.11").then_some(())
    });
    // The headless Service answers with the mirrored addresses.
    eventually(
        Duration::from_secs(30),
        "DNS answers from the mirrored slice",
        || {
            let mut a: Vec<String> = dig(&s, &["+short", "ext.default.svc.cluster.local"])
                .lines()
                .map(String::from)
                .collect();
            a.sort();
            (a == ["192.0.2.10", "192.0.2.11"]).then_some(())
        },
    );
    // A change follows, and deleting the Endpoints removes the slice.
    let out = s.kubectl_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Endpoints\nmetadata: {name: ext}\nsubsets:\n- addresses: [{ip: 192.0.2.12}]\n  ports: [{name: http, port: 80}]\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually(Duration::from_secs(30), "the slice follows", || {
        let got = s.kubectl_ok(&[
            "get",
            "endpointslices",
            "-l",
            selector,
            "-o",
            "jsonpath={.items[*].endpoints[*].addresses[0]}",
        ]);
        (got == "192.0.2.12").then_some(())
    });
    s.kubectl_ok(&["delete", "endpoints", "ext"]);
    eventually(Duration::from_secs(30), "the slice removed", || {
        let got = s.kubectl_ok(&["get", "endpointslices", "-l", selector, "-o", "name"]);
        got.trim().is_empty().then_some(())
    });
}
