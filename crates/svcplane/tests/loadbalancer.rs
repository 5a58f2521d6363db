//! LoadBalancer IPAM end to end: `svcplane up` (API server + controllers) driven by the real kubectl.
//! Pools are LoadBalancerIPPool objects (or `--loadbalancer-ip-pool`); LoadBalancer Services get their
//! addresses in status, `kubectl get svc` shows them, failures are Events.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{eventually, ApiServer};

const WAIT: Duration = Duration::from_secs(60);

fn apply(s: &ApiServer, yaml: &str) -> String {
    let out = s.kubectl_stdin(&["apply", "-f", "-"], yaml);
    assert!(
        out.status.success(),
        "kubectl apply failed: {}{}\n{yaml}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn pool_yaml(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: svcplane.io/v1alpha1\nkind: LoadBalancerIPPool\nmetadata:\n  name: {name}\nspec:\n{spec}\n"
    )
}

/// A LoadBalancer Service; `extra_meta` and `extra_spec` are indented YAML lines.
fn lb_yaml(name: &str, ports: &[(u16, &str)], extra_meta: &str, extra_spec: &str) -> String {
    let ports: String = ports
        .iter()
        .map(|(p, proto)| {
            format!(
                "  - {{name: p{p}-{}, port: {p}, protocol: {proto}}}\n",
                proto.to_lowercase()
            )
        })
        .collect();
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n{extra_meta}spec:\n  type: LoadBalancer\n  selector: {{app: {name}}}\n{extra_spec}  ports:\n{ports}"
    )
}

/// The EXTERNAL-IP column of `kubectl get svc NAME`.
fn external_ip(s: &ApiServer, name: &str) -> String {
    let out = s.kubectl_ok(&["get", "svc", name, "--no-headers"]);
    out.split_whitespace()
        .nth(3)
        .unwrap_or_default()
        .to_string()
}

fn wait_external_ip(s: &ApiServer, name: &str) -> String {
    eventually(WAIT, &format!("an EXTERNAL-IP for {name}"), || {
        let ip = external_ip(s, name);
        (ip != "<pending>" && !ip.is_empty()).then_some(ip)
    })
}

fn ingress_ips(s: &ApiServer, name: &str) -> String {
    s.kubectl_ok(&[
        "get",
        "svc",
        name,
        "-o",
        "jsonpath={.status.loadBalancer.ingress[*].ip}",
    ])
}

/// Events of one Service, as `kubectl get events` prints them.
fn events_of(s: &ApiServer, name: &str) -> String {
    s.kubectl_ok(&[
        "get",
        "events",
        "--field-selector",
        &format!("involvedObject.name={name}"),
    ])
}

#[test]
fn pools_are_served_natively_with_tables_explain_and_validation() {
    let s = ApiServer::start_up(&[]);
    let out = apply(
        &s,
        &pool_yaml(
            "blue",
            "  cidrs: [192.0.2.0/24, \"198.51.100.10-198.51.100.20\", \"2001:db8::/120\"]\n  serviceSelector: {matchLabels: {tier: web}}",
        ),
    );
    assert!(
        out.contains("loadbalancerippool.svcplane.io/blue created"),
        "{out}"
    );
    // Defaults, as the CRD's schema gives them, and the columns of its additionalPrinterColumns.
    let table = s.kubectl_ok(&["get", "lbippool", "-o", "wide"]);
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAME", "CIDRS", "AUTO", "ASSIGN", "PRIORITY", "IPV4", "USED", "IPV4", "TOTAL", "IPV6",
            "USED", "IPV6", "TOTAL", "AGE"
        ]
    );
    let row: Vec<&str> = table
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        &row[..4],
        [
            "blue",
            "192.0.2.0/24,198.51.100.10-198.51.100.20,2001:db8::/120",
            "true",
            "0"
        ]
    );
    // The controller fills the usage: 254 + 11 IPv4 and 254 IPv6 addresses, none used.
    eventually(WAIT, "pool usage in status", || {
        let st = s.kubectl_ok(&[
            "get",
            "lbippool",
            "blue",
            "-o",
            "jsonpath={.status.ipv4.total}/{.status.ipv4.used} {.status.ipv6.total}/{.status.ipv6.used}",
        ]);
        (st == "265/0 254/0").then_some(())
    });
    let explain = s.kubectl_ok(&["explain", "loadbalancerippools.spec"]);
    assert!(
        explain.contains("KIND:       LoadBalancerIPPool"),
        "{explain}"
    );
    assert!(
        explain.contains("cidrs\t<[]string> -required-"),
        "{explain}"
    );
    assert!(explain.contains("serviceSelector"), "{explain}");
    // Strict field validation (kubectl's default) refuses unknown fields.
    let err = s
        .kubectl_stdin(
            &["apply", "-f", "-"],
            &pool_yaml("typo", "  cidrs: [203.0.113.0/24]\n  autoAsign: false"),
        )
        .stderr;
    let err = String::from_utf8_lossy(&err);
    assert!(err.contains("unknown field \"spec.autoAsign\""), "{err}");
    // Invalid pools: 422 with the field path, nothing stored.
    for (name, spec, want) in [
        ("bad-cidr", "  cidrs: [10.0.0.1/24]", "spec.cidrs[0]: Invalid value: \"10.0.0.1/24\": must be in canonical form (\"10.0.0.0/24\")"),
        ("bad-range", "  cidrs: [\"10.0.0.9-10.0.0.1\"]", "spec.cidrs[0]: Invalid value: \"10.0.0.9-10.0.0.1\": the first address of a range may not be after its last"),
        ("overlap", "  cidrs: [10.0.0.0/24, 10.0.0.128/25]", "spec.cidrs[1]: Invalid value: \"10.0.0.128/25\": overlaps spec.cidrs[0] (10.0.0.0/24)"),
        ("empty", "  cidrs: []", "spec.cidrs: Required value"),
        ("bad-selector", "  cidrs: [10.0.0.0/24]\n  serviceSelector: {matchExpressions: [{key: a, operator: In}]}", "spec.serviceSelector.matchExpressions[0].values: Required value"),
    ] {
        let out = s.kubectl_stdin(&["apply", "-f", "-"], &pool_yaml(name, spec));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name} was accepted");
        assert!(
            err.contains(&format!("The LoadBalancerIPPool \"{name}\" is invalid")) && err.contains(want),
            "{name}: {err}"
        );
        let get = s.kubectl(&["get", "lbippool", name]);
        assert!(!get.status.success(), "{name} was stored");
    }
    // The raw API answer is a 422 Status naming the field, as kube-apiserver's for a CRD.
    let raw = s
        .kubectl_stdin(
            &["create", "--raw", "/apis/svcplane.io/v1alpha1/loadbalancerippools", "-f", "-", "-v=6"],
            r#"{"apiVersion":"svcplane.io/v1alpha1","kind":"LoadBalancerIPPool","metadata":{"name":"raw"},"spec":{"cidrs":["nope"]}}"#,
        )
        .stderr;
    let raw = String::from_utf8_lossy(&raw);
    assert!(raw.contains("status=\"422 Unprocessable Entity\""), "{raw}");
    assert!(
        raw.contains("spec.cidrs[0]: Invalid value: \"nope\""),
        "{raw}"
    );
    // Strategic merge patch is refused as for any custom resource; merge patch works.
    let smp = s.kubectl(&[
        "patch",
        "lbippool",
        "blue",
        "-p",
        "{\"spec\":{\"priority\":5}}",
    ]);
    assert!(!smp.status.success());
    s.kubectl_ok(&[
        "patch",
        "lbippool",
        "blue",
        "--type=merge",
        "-p",
        "{\"spec\":{\"priority\":5}}",
    ]);
    assert_eq!(
        s.kubectl_ok(&[
            "get",
            "lbippool",
            "blue",
            "-o",
            "jsonpath={.spec.priority} {.metadata.generation}"
        ]),
        "5 2"
    );
    s.kubectl_ok(&["delete", "lbippool", "blue"]);
    assert!(!s.kubectl(&["get", "lbippool", "blue"]).status.success());
}

#[test]
fn services_get_addresses_requested_ips_exhaustion_events_and_release() {
    let s = ApiServer::start_up(&[]);
    // No pool yet: pending, with an Event that says why.
    apply(&s, &lb_yaml("a", &[(80, "TCP")], "", ""));
    assert_eq!(external_ip(&s, "a"), "<pending>");
    eventually(WAIT, "AllocationFailed event for a", || {
        let ev = events_of(&s, "a");
        (ev.contains("AllocationFailed")
            && ev.contains("no pool with autoAssign and IPv4 addresses admits this Service"))
        .then_some(())
    });
    // A pool of three addresses: a gets the lowest, then requests are honored.
    apply(
        &s,
        &pool_yaml("small", "  cidrs: [\"192.0.2.10-192.0.2.12\"]"),
    );
    assert_eq!(wait_external_ip(&s, "a"), "192.0.2.10");
    assert_eq!(
        s.kubectl_ok(&[
            "get",
            "svc",
            "a",
            "-o",
            "jsonpath={.status.loadBalancer.ingress[0].ipMode}"
        ]),
        "VIP"
    );
    apply(
        &s,
        &lb_yaml(
            "b",
            &[(80, "TCP")],
            "  annotations: {svcplane.io/loadBalancerIPs: 192.0.2.12}\n",
            "",
        ),
    );
    assert_eq!(wait_external_ip(&s, "b"), "192.0.2.12");
    // The deprecated spec.loadBalancerIP too.
    apply(
        &s,
        &lb_yaml("c", &[(80, "TCP")], "", "  loadBalancerIP: 192.0.2.11\n"),
    );
    assert_eq!(wait_external_ip(&s, "c"), "192.0.2.11");
    // Exhausted: d stays pending; describe and get events say why.
    apply(&s, &lb_yaml("d", &[(80, "TCP")], "", ""));
    eventually(WAIT, "AllocationFailed event for d", || {
        let d = s.kubectl_ok(&["describe", "svc", "d"]);
        (d.contains("AllocationFailed") && d.contains("no available IPv4 address in pool small"))
            .then_some(d)
    });
    assert_eq!(external_ip(&s, "d"), "<pending>");
    assert!(events_of(&s, "d").contains("Warning"));
    // A requested address held by another Service: pending, and the event names the holder.
    apply(
        &s,
        &lb_yaml(
            "e",
            &[(443, "TCP")],
            "  annotations: {svcplane.io/loadBalancerIPs: 192.0.2.10}\n",
            "",
        ),
    );
    eventually(WAIT, "AllocationFailed event for e", || {
        events_of(&s, "e")
            .contains("192.0.2.10 is in use by Service default/a")
            .then_some(())
    });
    // A Service of another class is left alone: no address, no event of ours.
    apply(
        &s,
        &lb_yaml(
            "other",
            &[(80, "TCP")],
            "",
            "  loadBalancerClass: example.com/other\n",
        ),
    );
    // Pool usage: all three used.
    eventually(WAIT, "pool usage 3/3", || {
        (s.kubectl_ok(&[
            "get",
            "lbippool",
            "small",
            "-o",
            "jsonpath={.status.ipv4.used}/{.status.ipv4.total}",
        ]) == "3/3")
            .then_some(())
    });
    // Deleting a releases its address to the Service waiting for one, and only to it: e, which asked
    // for that very address, competes for it too (which one wins is a race; the loser stays pending).
    s.kubectl_ok(&["delete", "svc", "a"]);
    let taken = eventually(WAIT, "a's address to go to d or e", || {
        let d = ingress_ips(&s, "d");
        let e = ingress_ips(&s, "e");
        match (d.as_str(), e.as_str()) {
            ("192.0.2.10", "") => Some("d"),
            ("", "192.0.2.10") => Some("e"),
            _ => None,
        }
    });
    let loser = if taken == "d" { "e" } else { "d" };
    assert_eq!(external_ip(&s, loser), "<pending>");
    s.kubectl_ok(&["delete", "svc", loser]);
    // Type change away from LoadBalancer releases too: the next Service gets b's address.
    s.kubectl_ok(&[
        "patch",
        "svc",
        "b",
        "-p",
        "{\"spec\":{\"type\":\"ClusterIP\"}}",
    ]);
    eventually(WAIT, "pool usage 2/3 once b let go", || {
        (s.kubectl_ok(&[
            "get",
            "lbippool",
            "small",
            "-o",
            "jsonpath={.status.ipv4.used}/{.status.ipv4.total}",
        ]) == "2/3")
            .then_some(())
    });
    apply(&s, &lb_yaml("f", &[(80, "TCP")], "", ""));
    assert_eq!(wait_external_ip(&s, "f"), "192.0.2.12");
    assert_eq!(ingress_ips(&s, "b"), "");
    assert_eq!(external_ip(&s, "other"), "<pending>");
    assert!(!events_of(&s, "other").contains("AllocationFailed"));
    assert_eq!(ingress_ips(&s, "other"), "");
}

#[test]
fn sharing_keys_share_an_address_unless_ports_conflict() {
    let s = ApiServer::start_up(&["--loadbalancer-ip-pool", "192.0.2.0/29"]);
    let shared = "  annotations: {svcplane.io/allow-shared-ip: team-a}\n";
    apply(&s, &lb_yaml("web", &[(80, "TCP")], shared, ""));
    let web = wait_external_ip(&s, "web");
    apply(&s, &lb_yaml("dns", &[(53, "UDP"), (53, "TCP")], shared, ""));
    assert_eq!(
        wait_external_ip(&s, "dns"),
        web,
        "non-conflicting ports share"
    );
    apply(&s, &lb_yaml("web2", &[(80, "TCP")], shared, ""));
    let web2 = wait_external_ip(&s, "web2");
    assert_ne!(web2, web, "80/TCP twice may not share");
    // Asking for the shared address with a clashing port is refused with a reason.
    apply(
        &s,
        &lb_yaml(
            "web3",
            &[(80, "TCP")],
            &format!("  annotations: {{svcplane.io/allow-shared-ip: team-a, svcplane.io/loadBalancerIPs: {web}}}\n"),
            "",
        ),
    );
    eventually(WAIT, "conflict event for web3", || {
        events_of(&s, "web3")
            .contains("both use port 80/TCP")
            .then_some(())
    });
    // Without a key there is no sharing.
    apply(
        &s,
        &lb_yaml(
            "lonely",
            &[(8080, "TCP")],
            &format!("  annotations: {{svcplane.io/loadBalancerIPs: {web}}}\n"),
            "",
        ),
    );
    eventually(WAIT, "no-sharing event for lonely", || {
        events_of(&s, "lonely")
            .contains("AllocationFailed")
            .then_some(())
    });
    // The address stays with dns when web goes, and is used once in the pool's status.
    s.kubectl_ok(&["delete", "svc", "web"]);
    eventually(
        WAIT,
        "pool usage with the shared address counted once",
        || {
            (s.kubectl_ok(&[
                "get",
                "lbippool",
                "default",
                "-o",
                "jsonpath={.status.ipv4.used}",
            ]) == "2")
                .then_some(())
        },
    );
    assert_eq!(ingress_ips(&s, "dns"), web);
}

/// Runs `svcplane up` on an existing data directory; killed when dropped.
struct Restarted(Child);

impl Drop for Restarted {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn restart_up(dir: &Path, extra: &[&str]) -> Restarted {
    let mut child = Command::new(env!("CARGO_BIN_EXE_svcplane"))
        .args([
            "up",
            "--secure-port",
            "0",
            "--dns-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir)
        .args(extra)
        .env("SVCPLANE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn svcplane");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.starts_with("svcplane API server at ") {
                let _ = tx.send(());
            } else {
                eprintln!("[svcplane] {line}");
            }
        }
    });
    let guard = Restarted(child);
    rx.recv_timeout(WAIT)
        .expect("restarted svcplane up did not start");
    guard
}

#[test]
fn restart_keeps_every_address_and_hands_out_no_duplicate() {
    let flag = ["--loadbalancer-ip-pool", "192.0.2.1-192.0.2.6"];
    let mut s = ApiServer::start_up(&flag);
    let shared = "  annotations: {svcplane.io/allow-shared-ip: k}\n";
    apply(&s, &lb_yaml("s1", &[(80, "TCP")], "", ""));
    apply(
        &s,
        &lb_yaml(
            "s2",
            &[(80, "TCP")],
            "  annotations: {svcplane.io/loadBalancerIPs: 192.0.2.5}\n",
            "",
        ),
    );
    apply(&s, &lb_yaml("s3", &[(80, "TCP")], shared, ""));
    apply(&s, &lb_yaml("s4", &[(443, "TCP")], shared, ""));
    let before: BTreeMap<&str, String> = ["s1", "s2", "s3", "s4"]
        .into_iter()
        .map(|n| (n, wait_external_ip(&s, n)))
        .collect();
    assert_eq!(before["s2"], "192.0.2.5");
    assert_eq!(before["s3"], before["s4"]);
    s.kill();
    let _up = restart_up(&s.dir, &flag);
    // A Service created after the restart gets an address once the new controller has rebuilt its
    // table: one that no Service had before.
    apply(&s, &lb_yaml("s5", &[(80, "TCP")], "", ""));
    let s5 = wait_external_ip(&s, "s5");
    assert!(
        !before.values().any(|ip| *ip == s5),
        "{s5} given twice: {before:?}"
    );
    for (name, ip) in &before {
        assert_eq!(&ingress_ips(&s, name), ip, "{name} kept its address");
    }
    eventually(WAIT, "pool usage of 4 addresses", || {
        (s.kubectl_ok(&[
            "get",
            "lbippool",
            "default",
            "-o",
            "jsonpath={.status.ipv4.used}",
        ]) == "4")
            .then_some(())
    });
}

#[test]
fn racing_requests_for_one_address_get_one_winner_and_our_class_is_served() {
    let s = ApiServer::start_up(&["--loadbalancer-ip-pool", "192.0.2.0/28"]);
    // Both created in one apply, both asking for .9: exactly one gets it, the other is told why.
    let ask = "  annotations: {svcplane.io/loadBalancerIPs: 192.0.2.9}\n";
    apply(
        &s,
        &format!(
            "{}---\n{}",
            lb_yaml("r1", &[(80, "TCP")], ask, ""),
            lb_yaml("r2", &[(80, "TCP")], ask, "")
        ),
    );
    let (winner, loser) = eventually(WAIT, "one of r1, r2 to get 192.0.2.9", || {
        match (
            ingress_ips(&s, "r1").as_str(),
            ingress_ips(&s, "r2").as_str(),
        ) {
            ("192.0.2.9", "") => Some(("r1", "r2")),
            ("", "192.0.2.9") => Some(("r2", "r1")),
            _ => None,
        }
    });
    eventually(WAIT, "the loser's AllocationFailed event", || {
        events_of(&s, loser)
            .contains(&format!("192.0.2.9 is in use by Service default/{winner}"))
            .then_some(())
    });
    assert_eq!(external_ip(&s, loser), "<pending>");
    // Our class, named explicitly, is served like an unset one.
    apply(
        &s,
        &lb_yaml(
            "classy",
            &[(80, "TCP")],
            "",
            "  loadBalancerClass: svcplane.io/lb\n",
        ),
    );
    assert_eq!(wait_external_ip(&s, "classy"), "192.0.2.1");
}
