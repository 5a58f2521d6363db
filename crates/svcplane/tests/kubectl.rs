//! The API server driven by the real kubectl, as a user drives it.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{eventually, examples_dir, ApiServer};

fn examples() -> String {
    examples_dir().join("services.yaml").display().to_string()
}

#[test]
fn every_service_type_from_the_examples() {
    let s = ApiServer::start();
    let out = s.kubectl_ok(&["apply", "-f", &examples()]);
    assert!(out.contains("service/web created"), "{out}");
    assert!(out.contains("node/node-1 created"), "{out}");
    let table = s.kubectl_ok(&["get", "svc", "-o", "wide"]);
    let header = table.lines().next().unwrap_or_default();
    let cols: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(
        cols,
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE",
            "SELECTOR"
        ]
    );
    let row = |name: &str| -> Vec<String> {
        table
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no row for {name} in\n{table}"))
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    let k = row("kubernetes");
    assert_eq!(
        (k[1].as_str(), k[2].as_str(), k[4].as_str()),
        ("ClusterIP", "10.96.0.1", "443/TCP")
    );
    let web = row("web");
    assert_eq!(web[1], "ClusterIP");
    assert!(
        web[2].starts_with("10.") && web[2] != "10.96.0.1",
        "{web:?}"
    );
    assert_eq!(web[6], "app=web");
    let np = row("web-nodeport");
    assert_eq!(
        (np[1].as_str(), np[4].as_str()),
        ("NodePort", "80:30080/TCP")
    );
    let lb = row("web-lb");
    assert_eq!(
        (lb[1].as_str(), lb[3].as_str()),
        ("LoadBalancer", "<pending>")
    );
    assert!(lb[4].starts_with("80:3"), "{lb:?}");
    let en = row("search");
    assert_eq!(
        (en[1].as_str(), en[2].as_str(), en[3].as_str()),
        ("ExternalName", "<none>", "www.example.org")
    );
    let db = row("db");
    assert_eq!((db[1].as_str(), db[2].as_str()), ("ClusterIP", "None"));

    // Defaults as kube-apiserver fills them.
    let json: serde_json::Value =
        serde_json::from_str(&s.kubectl_ok(&["get", "svc", "web", "-o", "json"])).unwrap();
    let spec = &json["spec"];
    assert_eq!(spec["sessionAffinity"], "None");
    assert_eq!(spec["ipFamilies"], serde_json::json!(["IPv4"]));
    assert_eq!(spec["ipFamilyPolicy"], "SingleStack");
    assert_eq!(spec["internalTrafficPolicy"], "Cluster");
    assert_eq!(spec["ports"][0]["protocol"], "TCP");
    assert_eq!(spec["ports"][0]["targetPort"], "http");
    assert_eq!(spec["clusterIPs"][0], spec["clusterIP"]);
    let lbj: serde_json::Value =
        serde_json::from_str(&s.kubectl_ok(&["get", "svc", "web-lb", "-o", "json"])).unwrap();
    assert_eq!(lbj["spec"]["externalTrafficPolicy"], "Cluster");
    assert_eq!(lbj["spec"]["allocateLoadBalancerNodePorts"], true);

    // Applying the same file again changes nothing.
    let again = s.kubectl_ok(&["apply", "-f", &examples()]);
    assert!(again.contains("service/web unchanged"), "{again}");
}

#[test]
fn apply_edits_and_deletes() {
    let s = ApiServer::start();
    let svc = "apiVersion: v1\nkind: Service\nmetadata: {name: app}\nspec:\n  selector: {app: a}\n  ports:\n  - {name: http, port: 80}\n  - {name: https, port: 443}\n";
    let out = s.kubectl_stdin(&["apply", "-f", "-"], svc);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ip = s.kubectl_ok(&["get", "svc", "app", "-o", "jsonpath={.spec.clusterIP}"]);
    // Removing a port with apply removes exactly that port (strategic merge by port), the IP stays.
    let svc2 = "apiVersion: v1\nkind: Service\nmetadata: {name: app, labels: {tier: fe}}\nspec:\n  selector: {app: a}\n  ports:\n  - {name: https, port: 443}\n";
    let out = s.kubectl_stdin(&["apply", "-f", "-"], svc2);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ports = s.kubectl_ok(&["get", "svc", "app", "-o", "jsonpath={.spec.ports[*].port}"]);
    assert_eq!(ports.trim(), "443");
    assert_eq!(
        s.kubectl_ok(&["get", "svc", "app", "-o", "jsonpath={.spec.clusterIP}"]),
        ip
    );
    assert_eq!(
        s.kubectl_ok(&["get", "svc", "-l", "tier=fe", "-o", "name"])
            .trim(),
        "service/app"
    );

    // kubectl edit through an editor that rewrites the type.
    let out = Command::new("kubectl")
        .args(["edit", "svc", "app"])
        .env("KUBECONFIG", s.kubeconfig())
        .env(
            "KUBE_EDITOR",
            "sed -i s/type:\\ ClusterIP/type:\\ NodePort/",
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        s.kubectl_ok(&["get", "svc", "app", "-o", "jsonpath={.spec.type}"]),
        "NodePort"
    );
    let np = s.kubectl_ok(&[
        "get",
        "svc",
        "app",
        "-o",
        "jsonpath={.spec.ports[0].nodePort}",
    ]);
    assert!(
        np.parse::<u16>()
            .is_ok_and(|p| (30000..=32767).contains(&p)),
        "{np}"
    );

    s.kubectl_ok(&["label", "svc", "app", "x=y"]);
    s.kubectl_ok(&["annotate", "svc", "app", "note=hello"]);
    assert_eq!(
        s.kubectl_ok(&[
            "get",
            "svc",
            "app",
            "-o",
            "jsonpath={.metadata.annotations.note}"
        ]),
        "hello"
    );
    s.kubectl_ok(&[
        "patch",
        "svc",
        "app",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"sessionAffinity":"ClientIP"}}"#,
    ]);
    assert_eq!(
        s.kubectl_ok(&[
            "get",
            "svc",
            "app",
            "-o",
            "jsonpath={.spec.sessionAffinityConfig.clientIP.timeoutSeconds}"
        ]),
        "10800"
    );
    s.kubectl_ok(&[
        "patch",
        "svc",
        "app",
        "--type",
        "json",
        "-p",
        r#"[{"op":"replace","path":"/spec/selector/app","value":"b"}]"#,
    ]);
    assert_eq!(
        s.kubectl_ok(&["get", "svc", "app", "-o", "jsonpath={.spec.selector.app}"]),
        "b"
    );

    let out = s.kubectl_ok(&["delete", "svc", "app"]);
    assert!(out.contains("service \"app\" deleted"), "{out}");
    let err = s.kubectl_err(&["get", "svc", "app"]);
    assert!(err.contains("services \"app\" not found"), "{err}");
}

#[test]
fn invalid_services_are_refused_with_field_paths() {
    let s = ApiServer::start();
    let bad = "apiVersion: v1\nkind: Service\nmetadata: {name: bad}\nspec:\n  type: NodePort\n  ports:\n  - {port: 80, nodePort: 80}\n";
    let out = s.kubectl_stdin(&["apply", "-f", "-"], bad);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("The Service \"bad\" is invalid: spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767"),
        "{err}"
    );
    let unknown = "apiVersion: v1\nkind: Service\nmetadata: {name: strict}\nspec:\n  bogus: 1\n  ports:\n  - {port: 80}\n";
    let out = s.kubectl_stdin(&["apply", "-f", "-"], unknown);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "unknown field accepted");
    assert!(err.contains("unknown field \"spec.bogus\""), "{err}");
    s.kubectl_err(&["get", "svc", "bad"]);
    s.kubectl_err(&["get", "svc", "strict"]);
    // --validate=warn stores the object and passes the server's warning on, as kube-apiserver does.
    let out = s.kubectl_stdin(&["apply", "--validate=warn", "-f", "-"], unknown);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("Warning: unknown field \"spec.bogus\""),
        "{err}"
    );
    s.kubectl_ok(&["get", "svc", "strict"]);
    // And v1 Endpoints carry upstream's deprecation warning.
    let out = s.kubectl(&["get", "endpoints"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(
            "Warning: v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice"
        ),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Taken node port.
    let a = "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec:\n  type: NodePort\n  ports:\n  - {port: 80, nodePort: 30123}\n";
    assert!(s.kubectl_stdin(&["apply", "-f", "-"], a).status.success());
    let b = a.replace("name: a", "name: b");
    let out = s.kubectl_stdin(&["apply", "-f", "-"], &b);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "spec.ports[0].nodePort: Invalid value: 30123: provided port is already allocated"
        ),
        "{err}"
    );
}

#[test]
fn invalid_endpoint_slices_are_refused_with_field_paths() {
    let s = ApiServer::start();
    let bad = "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: lo-1}\naddressType: IPv4\nendpoints:\n- addresses: [127.0.0.5]\n- addresses: [\"fd00::1\"]\n  hostname: Bad_Host\nports:\n- {name: a, port: 1}\n- {name: a, port: 2}\n";
    let out = s.kubectl_stdin(&["apply", "-f", "-"], bad);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    for want in [
        "The EndpointSlice \"lo-1\" is invalid: ",
        "endpoints[0].addresses[0]: Invalid value: \"127.0.0.5\": may not be in the loopback range (127.0.0.0/8, ::1/128)",
        "endpoints[1].addresses[0]: Invalid value: \"fd00::1\": must be a valid IPv4 address",
        "endpoints[1].hostname: Invalid value: \"Bad_Host\"",
        "ports[1].name: Duplicate value: \"a\"",
    ] {
        assert!(err.contains(want), "{want} missing from {err}");
    }
    s.kubectl_err(&["get", "endpointslice", "lo-1"]);
    // A good one is stored with the v1 defaults (port name "" and protocol TCP); its address type is fixed.
    let good = "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: ok-1}\naddressType: IPv4\nendpoints:\n- addresses: [10.244.1.5]\nports:\n- {port: 80}\n";
    assert!(s
        .kubectl_stdin(&["apply", "-f", "-"], good)
        .status
        .success());
    assert_eq!(
        s.kubectl_ok(&[
            "get",
            "endpointslice",
            "ok-1",
            "-o",
            "jsonpath={.ports[0].protocol}/{.ports[0].name}/"
        ]),
        "TCP//"
    );
    let out = s.kubectl(&[
        "patch",
        "endpointslice",
        "ok-1",
        "--type=merge",
        "-p",
        "{\"addressType\":\"IPv6\",\"endpoints\":[{\"addresses\":[\"fd00::5\"]}]}",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("addressType: Invalid value: \"IPv6\": field is immutable"),
        "{err}"
    );
    // v1 Endpoints follow the same address rules.
    let bad = "apiVersion: v1\nkind: Endpoints\nmetadata: {name: lo}\nsubsets:\n- addresses: [{ip: 127.0.0.9}]\n  ports: [{port: 80}, {port: 81}]\n";
    let out = s.kubectl_stdin(&["apply", "-f", "-"], bad);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    for want in [
        "The Endpoints \"lo\" is invalid: ",
        "subsets[0].addresses[0].ip: Invalid value: \"127.0.0.9\": may not be in the loopback range (127.0.0.0/8, ::1/128)",
        "subsets[0].ports[0].name: Required value",
    ] {
        assert!(err.contains(want), "{want} missing from {err}");
    }
    s.kubectl_err(&["get", "endpoints", "lo"]);
    // The API server's own `kubernetes` slice keeps its loopback address.
    assert_eq!(
        s.kubectl_ok(&[
            "get",
            "endpointslice",
            "kubernetes",
            "-o",
            "jsonpath={.endpoints[0].addresses[0]}"
        ]),
        "127.0.0.1"
    );
}

#[test]
fn discovery_explain_and_namespaces() {
    let s = ApiServer::start();
    let res = s.kubectl_ok(&["api-resources"]);
    for line in [
        "services",
        "endpointslices",
        "leases",
        "ipaddresses",
        "servicecidrs",
        "namespaces",
    ] {
        assert!(
            res.lines().any(|l| l.starts_with(line)),
            "{line} missing from\n{res}"
        );
    }
    let explain = s.kubectl_ok(&["explain", "service.spec.ports"]);
    assert!(explain.contains("nodePort"), "{explain}");
    let v = s.kubectl_ok(&["version", "-o", "json"]);
    assert!(v.contains("\"gitVersion\": \"v1.33"), "{v}");
    let ns = s.kubectl_ok(&["get", "ns", "-o", "name"]);
    for n in ["default", "kube-system", "kube-public"] {
        assert!(ns.contains(&format!("namespace/{n}")), "{ns}");
    }
    let err = s.kubectl_err(&[
        "-n",
        "nope",
        "create",
        "service",
        "clusterip",
        "x",
        "--tcp=80:80",
    ]);
    assert!(err.contains("namespaces \"nope\" not found"), "{err}");
    s.kubectl_ok(&["create", "namespace", "team"]);
    s.kubectl_ok(&[
        "-n",
        "team",
        "create",
        "service",
        "clusterip",
        "x",
        "--tcp=80:80",
    ]);
    s.kubectl_ok(&["delete", "namespace", "team", "--timeout=60s"]);
    eventually(Duration::from_secs(30), "namespace removal", || {
        let out = s.kubectl(&["get", "ns", "team"]);
        (!out.status.success()).then_some(())
    });
    let err = s.kubectl_err(&["-n", "team", "get", "svc", "x"]);
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn unauthenticated_requests_get_401() {
    let s = ApiServer::start();
    let err = s.kubectl_err(&["--token", "wrong", "get", "svc"]);
    assert!(
        err.contains("Unauthorized") || err.contains("provide credentials"),
        "{err}"
    );
}

#[test]
fn watch_streams_changes_to_kubectl() {
    let s = ApiServer::start();
    let mut child = Command::new("kubectl")
        .args(["get", "svc", "-w", "--output-watch-events"])
        .env("KUBECONFIG", s.kubeconfig())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // The initial list shows the kubernetes Service.
    let first = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("watch output");
    assert!(
        first.contains("EVENT") || first.contains("kubernetes"),
        "{first}"
    );
    s.kubectl_ok(&["create", "service", "clusterip", "watched", "--tcp=80:80"]);
    let mut seen = Vec::new();
    let found = loop {
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(l) => {
                if l.contains("ADDED") && l.contains("watched") {
                    break true;
                }
                seen.push(l);
            }
            Err(_) => break false,
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(found, "no ADDED event for the new Service; saw {seen:?}");
}

#[test]
fn restart_keeps_objects_and_credentials() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = ApiServer::start_in(tmp.path(), &[]);
    s.kubectl_ok(&["create", "service", "nodeport", "keep", "--tcp=80:80"]);
    let before = s.kubectl_ok(&[
        "get",
        "svc",
        "keep",
        "-o",
        "jsonpath={.spec.clusterIP} {.spec.ports[0].nodePort} {.metadata.uid}",
    ]);
    let token = std::fs::read_to_string(tmp.path().join("token")).unwrap();
    s.kill();
    let s = ApiServer::start_in(tmp.path(), &[]);
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("token")).unwrap(),
        token
    );
    let after = s.kubectl_ok(&[
        "get",
        "svc",
        "keep",
        "-o",
        "jsonpath={.spec.clusterIP} {.spec.ports[0].nodePort} {.metadata.uid}",
    ]);
    assert_eq!(before, after);
    // The allocation survived too: asking for the same node port is refused.
    let np = before.split(' ').nth(1).unwrap().to_string();
    let y = format!("apiVersion: v1\nkind: Service\nmetadata: {{name: other}}\nspec:\n  type: NodePort\n  ports:\n  - {{port: 80, nodePort: {np}}}\n");
    let out = s.kubectl_stdin(&["apply", "-f", "-"], &y);
    assert!(String::from_utf8_lossy(&out.stderr).contains("provided port is already allocated"));
}

#[test]
fn dual_stack_services_get_one_ip_per_family() {
    let tmp = tempfile::tempdir().unwrap();
    let s = ApiServer::start_in(
        tmp.path(),
        &[
            "--service-cluster-ip-range",
            "10.96.0.0/16,fd00:10:96::/112",
        ],
    );
    let svc = "apiVersion: v1\nkind: Service\nmetadata: {name: ds}\nspec:\n  ipFamilyPolicy: PreferDualStack\n  selector: {app: a}\n  ports:\n  - {port: 80}\n";
    let out = s.kubectl_stdin(&["apply", "-f", "-"], svc);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ips = s.kubectl_ok(&[
        "get",
        "svc",
        "ds",
        "-o",
        "jsonpath={.spec.clusterIPs[*]} {.spec.ipFamilies[*]}",
    ]);
    let parts: Vec<&str> = ips.split_whitespace().collect();
    assert_eq!(parts.len(), 4, "{ips}");
    assert!(parts[0].starts_with("10.96."), "{ips}");
    assert!(parts[1].starts_with("fd00:10:96::"), "{ips}");
    assert_eq!(&parts[2..], ["IPv4", "IPv6"]);
    // Downgrading to single-stack releases the IPv6 address.
    s.kubectl_ok(&[
        "patch",
        "svc",
        "ds",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"ipFamilyPolicy":"SingleStack","ipFamilies":["IPv4"],"clusterIPs":null}}"#,
    ]);
    let left = s.kubectl_ok(&[
        "get",
        "ipaddresses",
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ]);
    assert!(!left.contains("fd00"), "IPv6 address not released: {left}");
}

#[test]
fn foreground_deletion_waits_for_dependents() {
    let s = ApiServer::start();
    s.kubectl_ok(&["create", "service", "clusterip", "owner", "--tcp=80:80"]);
    let uid = s.kubectl_ok(&["get", "svc", "owner", "-o", "jsonpath={.metadata.uid}"]);
    let slice = format!(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: owned\n  labels: {{kubernetes.io/service-name: owner}}\n  ownerReferences: [{{apiVersion: v1, kind: Service, name: owner, uid: {uid}, blockOwnerDeletion: true}}]\n  finalizers: [example.com/hold]\naddressType: IPv4\nendpoints: []\n"
    );
    let out = s.kubectl_stdin(&["apply", "-f", "-"], &slice);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    s.kubectl_ok(&[
        "delete",
        "svc",
        "owner",
        "--cascade=foreground",
        "--wait=false",
    ]);
    // The dependent holds (its own finalizer), so the owner waits, marked for foreground deletion.
    eventually(
        Duration::from_secs(10),
        "the dependent marked for deletion",
        || {
            let t = s.kubectl_ok(&[
                "get",
                "endpointslice",
                "owned",
                "-o",
                "jsonpath={.metadata.deletionTimestamp}",
            ]);
            (!t.is_empty()).then_some(())
        },
    );
    let fins = s.kubectl_ok(&[
        "get",
        "svc",
        "owner",
        "-o",
        "jsonpath={.metadata.finalizers} {.metadata.deletionTimestamp}",
    ]);
    assert!(fins.contains("foregroundDeletion"), "{fins}");
    // Once the dependent goes, so does the owner.
    s.kubectl_ok(&[
        "patch",
        "endpointslice",
        "owned",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    eventually(Duration::from_secs(10), "the owner deleted", || {
        let out = s.kubectl(&["get", "svc", "owner"]);
        (!out.status.success()).then_some(())
    });
}

#[test]
fn dependents_whose_owners_are_gone_are_collected() {
    let s = ApiServer::start();
    s.kubectl_ok(&["create", "service", "clusterip", "gone", "--tcp=80:80"]);
    s.kubectl_ok(&["create", "service", "clusterip", "alive", "--tcp=80:80"]);
    let gone_uid = s.kubectl_ok(&["get", "svc", "gone", "-o", "jsonpath={.metadata.uid}"]);
    let alive_uid = s.kubectl_ok(&["get", "svc", "alive", "-o", "jsonpath={.metadata.uid}"]);
    s.kubectl_ok(&["delete", "svc", "gone"]);
    let slice = |name: &str, owner: &str, uid: &str| {
        format!(
            "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: {name}\n  ownerReferences: [{{apiVersion: v1, kind: Service, name: {owner}, uid: {uid}}}]\naddressType: IPv4\nendpoints: []\n---\n"
        )
    };
    // Written after the owner went (a controller that had not seen the deletion yet), owned by a
    // same-named object that is not the owner (another uid), and owned by a live Service.
    let manifest = slice("orphan", "gone", &gone_uid)
        + &slice("wrong-uid", "alive", &gone_uid)
        + &slice("kept", "alive", &alive_uid);
    let out = s.kubectl_stdin(&["apply", "-f", "-"], &manifest);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually(Duration::from_secs(10), "the orphans collected", || {
        let names = s.kubectl_ok(&[
            "get",
            "endpointslices",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ]);
        (!names.contains("orphan") && !names.contains("wrong-uid")).then_some(())
    });
    s.kubectl_ok(&["get", "endpointslice", "kept"]);
}

#[test]
fn kubectl_run_creates_a_pod() {
    let s = ApiServer::start();
    // kubectl run sends the Pod in protobuf.
    let out = s.kubectl_ok(&[
        "run",
        "web",
        "--image=nginx",
        "--port=8080",
        "--labels=app=web",
        "--env=MODE=test",
    ]);
    assert!(out.contains("pod/web created"), "{out}");
    let got = s.kubectl_ok(&[
        "get",
        "pod",
        "web",
        "-o",
        "jsonpath={.spec.containers[0].image} {.spec.containers[0].ports[0].containerPort} {.spec.containers[0].env[0].value} {.metadata.labels.app} {.spec.restartPolicy}",
    ]);
    assert_eq!(got, "nginx 8080 test web Always");
}
