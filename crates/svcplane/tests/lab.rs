//! End-to-end tests of the data plane in the lab: real namespaces, real nftables programmed by the agent,
//! real curl, dig and sockets. Root only (CI runs as root); each test builds its own lab under a unique
//! name and removes it when it ends, even on failure.

mod lablib;

use std::process::Command;
use std::time::{Duration, Instant};

use lablib::{eventually, Lab, BIN};

const ALL_PODS: [&str; 4] = ["pod-1-a", "pod-1-b", "pod-2-a", "pod-2-b"];

fn service(name: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec:\n  selector: {{app: web}}\n  ports: [{{name: http, port: 80, targetPort: http}}]\n{extra_spec}"
    )
}

/// Hostnames answering `count` requests from `member` to `url`.
fn answers(lab: &Lab, member: &str, url: &str, count: usize) -> Vec<String> {
    (0..count).map(|_| lab.curl(member, url)).collect()
}

#[test]
fn lab_clusterip_nodeport_external_and_lb_ips_carry_traffic() {
    let Some(lab) = Lab::up(2, 2, "") else { return };
    lab.apply(&service("web", ""));
    lab.apply(&service(
        "web-np",
        "  type: NodePort\n  externalIPs: [192.168.60.10]",
    ));
    // A LoadBalancer of a class svcplane does not own: the test plays the cloud and writes the address.
    lab.apply(&service(
        "web-lb",
        "  type: LoadBalancer\n  loadBalancerClass: example.com/not-svcplane",
    ));
    lab.kubectl(&[
        "patch",
        "svc",
        "web-lb",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"loadBalancer":{"ingress":[{"ip":"192.168.60.20","ipMode":"VIP"}]}}}"#,
    ]);
    let ip = lab.cluster_ip("web");
    lab.wait_applied(&["node-1", "node-2"], &format!("{ip}:80/TCP"), 4);
    lab.wait_applied(&["node-1"], "192.168.60.20:80/TCP", 4);

    // ClusterIP by name (cluster DNS through its own Service) and by address, same node and other node;
    // the answers spread over every pod, the asking pod included (hairpin).
    for from in ["pod-1-a", "pod-2-a"] {
        let seen = answers(
            &lab,
            from,
            "http://web.default.svc.cluster.local/hostname",
            40,
        );
        for pod in ALL_PODS {
            assert!(
                seen.iter().any(|s| s == pod),
                "{from}: {pod} never answered: {seen:?}"
            );
        }
        assert!(
            seen.iter().all(|s| ALL_PODS.contains(&s.as_str())),
            "{seen:?}"
        );
        assert!(ALL_PODS.contains(&lab.curl(from, &format!("http://{ip}/hostname")).as_str()));
    }
    // NodePort from the outside client on every node.
    let node_port = lab.kubectl(&[
        "get",
        "svc",
        "web-np",
        "-o",
        "jsonpath={.spec.ports[0].nodePort}",
    ]);
    for node_ip in ["192.168.50.11", "192.168.50.12"] {
        let got = lab.curl("client", &format!("http://{node_ip}:{node_port}/hostname"));
        assert!(
            ALL_PODS.contains(&got.as_str()),
            "NodePort on {node_ip}: {got:?}"
        );
    }
    // externalIPs and the LoadBalancer ingress IP, reached by the client through node-1.
    for url in [
        "http://192.168.60.10/hostname",
        "http://192.168.60.20/hostname",
    ] {
        let got = lab.curl("client", url);
        assert!(ALL_PODS.contains(&got.as_str()), "{url}: {got:?}");
    }
}

#[test]
fn lab_no_endpoints_rejects_and_udp_and_ipv6_work() {
    let Some(lab) = Lab::up(2, 2, "") else { return };
    lab.apply("apiVersion: v1\nkind: Service\nmetadata: {name: empty}\nspec:\n  selector: {app: nothing}\n  ports: [{port: 80}]\n");
    lab.apply("apiVersion: v1\nkind: Service\nmetadata: {name: echo-udp}\nspec:\n  selector: {app: web}\n  ports: [{name: udp, port: 53, protocol: UDP, targetPort: udp-echo}]\n");
    lab.apply(&service(
        "web6",
        "  ipFamilies: [IPv6]\n  ipFamilyPolicy: SingleStack",
    ));
    let empty = lab.cluster_ip("empty");
    lab.wait_applied(&["node-1"], &format!("{empty}:80/TCP"), 0);
    // Rejected at once: curl reports "connection refused" (exit 7), not a timeout (exit 28).
    let started = Instant::now();
    let out = lab.exec(
        "pod-1-a",
        &["curl", "-s", "--max-time", "5", &format!("http://{empty}/")],
    );
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    assert!(started.elapsed() < Duration::from_secs(4));

    // UDP through a ClusterIP: the echo server answers a `hostname` datagram with its pod's name.
    let udp = lab.cluster_ip("echo-udp");
    lab.wait_applied(&["node-1"], &format!("{udp}:53/UDP"), 4);
    let script = format!(
        "import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2); \
         s.sendto(b'hostname', ('{udp}', 53)); print(s.recv(100).decode())"
    );
    let got = lab.out("pod-1-a", &["python3", "-c", &script]);
    assert!(ALL_PODS.contains(&got.as_str()), "UDP answer {got:?}");

    // UDP after an endpoint change: the same client flow (same source port, so the same conntrack entry)
    // must move off a removed endpoint at once, which needs the agent's conntrack cleanup.
    let fixed = format!(
        "import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2); \
         s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', 40053)); \
         s.sendto(b'hostname', ('{udp}', 53)); print(s.recv(100).decode())"
    );
    let first = lab.out("pod-2-a", &["python3", "-c", &fixed]);
    assert!(ALL_PODS.contains(&first.as_str()), "UDP answer {first:?}");
    assert_eq!(
        lab.out("pod-2-a", &["python3", "-c", &fixed]),
        first,
        "one flow, one endpoint"
    );
    let out = lab.exec(
        "cp",
        &[
            BIN,
            "pod",
            "unready",
            &first,
            "--kubeconfig",
            &format!("/run/svcplane-lab/{}/kubeconfig", lab.name),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    lab.wait_applied(&["node-2"], &format!("{udp}:53/UDP"), 3);
    let after = lab.out("pod-2-a", &["python3", "-c", &fixed]);
    assert!(ALL_PODS.contains(&after.as_str()), "UDP answer {after:?}");
    assert_ne!(after, first, "the flow still reaches the removed endpoint");

    // IPv6 ClusterIP.
    let ip6 = lab.cluster_ip("web6");
    assert!(ip6.contains(':'), "{ip6}");
    // One pod was made unready above.
    lab.wait_applied(&["node-2"], &format!("[{ip6}]:80/TCP"), 3);
    let got = lab.curl("pod-2-a", &format!("http://[{ip6}]/hostname"));
    assert!(ALL_PODS.contains(&got.as_str()), "IPv6: {got:?}");
}

#[test]
fn lab_affinity_traffic_policies_and_endpoint_removal() {
    let Some(lab) = Lab::up(2, 2, "") else { return };
    lab.apply(&service("sticky", "  sessionAffinity: ClientIP"));
    lab.apply(&service("itp", "  internalTrafficPolicy: Local"));
    // eTP Local, only the pods of node-1: node-1 answers its health check 200, node-2 503.
    lab.apply(
        "apiVersion: v1\nkind: Service\nmetadata: {name: local}\nspec:\n  type: LoadBalancer\n  loadBalancerClass: example.com/not-svcplane\n  externalTrafficPolicy: Local\n  selector: {svcplane.io/lab-node: node-1}\n  ports: [{name: http, port: 80, targetPort: http}]\n",
    );
    let sticky = lab.cluster_ip("sticky");
    lab.wait_applied(&["node-2"], &format!("{sticky}:80/TCP"), 4);
    let seen = answers(&lab, "pod-2-a", &format!("http://{sticky}/hostname"), 12);
    assert!(
        seen.iter().all(|s| s == &seen[0]) && ALL_PODS.contains(&seen[0].as_str()),
        "affinity did not stick: {seen:?}"
    );

    let itp = lab.cluster_ip("itp");
    lab.wait_applied(&["node-2"], &format!("{itp}:80/TCP"), 2);
    for got in answers(&lab, "pod-2-a", &format!("http://{itp}/hostname"), 10) {
        assert!(
            got.starts_with("pod-2-"),
            "internalTrafficPolicy Local answered by {got:?}"
        );
    }

    let port =
        |path: &str| lab.kubectl(&["get", "svc", "local", "-o", &format!("jsonpath={path}")]);
    let node_port = port("{.spec.ports[0].nodePort}");
    let health = port("{.spec.healthCheckNodePort}");
    let cip = lab.cluster_ip("local");
    lab.wait_applied(&["node-1", "node-2"], &format!("{cip}:80/TCP"), 2);
    let code = |node_ip: &str| {
        lab.out(
            "client",
            &[
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "2",
                &format!("http://{node_ip}:{health}/healthz"),
            ],
        )
    };
    eventually("health check node port answers", || {
        code("192.168.50.11") == "200"
    });
    assert_eq!(code("192.168.50.12"), "503");
    // The client's own address reaches the pod: no masquerade under eTP Local.
    let seen = lab.curl(
        "client",
        &format!("http://192.168.50.11:{node_port}/clientip"),
    );
    assert!(
        seen.starts_with("192.168.50.100:"),
        "client IP not kept: {seen:?}"
    );

    // An endpoint removed: once the agent reports it applied, no new connection reaches it.
    let web = lab.cluster_ip("sticky");
    let out = lab.exec(
        "cp",
        &[
            BIN,
            "pod",
            "unready",
            "pod-1-b",
            "--kubeconfig",
            &format!("/run/svcplane-lab/{}/kubeconfig", lab.name),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    lab.wait_applied(&["node-2"], &format!("{web}:80/TCP"), 3);
    lab.kubectl(&[
        "patch",
        "svc",
        "sticky",
        "-p",
        r#"{"spec":{"sessionAffinity":"None"}}"#,
    ]);
    eventually("affinity off", || {
        lab.agent_state("node-2")["generation"].as_u64().is_some()
            && answers(&lab, "pod-2-a", &format!("http://{web}/hostname"), 8)
                .iter()
                .collect::<std::collections::BTreeSet<_>>()
                .len()
                > 1
    });
    for got in answers(&lab, "pod-2-a", &format!("http://{web}/hostname"), 30) {
        assert_ne!(got, "pod-1-b", "a removed endpoint still answered");
        assert!(ALL_PODS.contains(&got.as_str()), "{got:?}");
    }
}

#[test]
fn lab_agent_repairs_drift() {
    let Some(lab) = Lab::up(1, 1, "--sync-period=1s") else {
        return;
    };
    lab.apply(&service("web", ""));
    let ip = lab.cluster_ip("web");
    lab.wait_applied(&["node-1"], &format!("{ip}:80/TCP"), 1);
    let url = format!("http://{ip}/hostname");
    assert_eq!(lab.curl("pod-1-a", &url), "pod-1-a");
    for damage in [
        vec!["nft", "flush", "chain", "ip", "svcplane", "services"],
        vec!["nft", "flush", "map", "ip", "svcplane", "service-ips"],
        vec![
            "nft",
            "delete",
            "element",
            "ip",
            "svcplane",
            "cluster-endpoints-tcp",
            &format!("{{ {ip} . tcp . 80 . 0 }}"),
        ],
    ] {
        let damage: Vec<&str> = damage.iter().map(|s| s.as_ref()).collect();
        let out = lab.exec("node-1", &damage);
        assert!(out.status.success(), "{damage:?}: {out:?}");
        eventually(&format!("repair after {damage:?}"), || {
            lab.curl("pod-1-a", &url) == "pod-1-a"
        });
    }
}

#[test]
fn lab_agent_restart_keeps_established_connections() {
    use std::io::BufRead;
    let Some(lab) = Lab::up(1, 2, "") else { return };
    lab.apply("apiVersion: v1\nkind: Service\nmetadata: {name: echo}\nspec:\n  selector: {svcplane.io/lab-pod: pod-1-b}\n  ports: [{name: tcp, port: 7000, targetPort: tcp-echo}]\n");
    let ip = lab.cluster_ip("echo");
    lab.wait_applied(&["node-1"], &format!("{ip}:7000/TCP"), 1);
    let flag = std::env::temp_dir().join(format!("{}-stop", lab.name));
    let _ = std::fs::remove_file(&flag);
    // A TCP stream through the ClusterIP that checks every echoed line; it ends when the flag file appears
    // (or after 60 s) and fails on any reset, close or mismatch.
    let script = format!(
        r#"
import os, socket, sys, time
s = socket.create_connection(("{ip}", 7000), timeout=5)
print("connected", flush=True)
n, deadline = 0, time.time() + 60
while not os.path.exists("{flag}") and time.time() < deadline:
    msg = b"line %d\n" % n
    s.sendall(msg)
    got = b""
    while len(got) < len(msg):
        chunk = s.recv(len(msg) - len(got))
        if not chunk:
            sys.exit("connection closed after %d lines" % n)
        got += chunk
    if got != msg:
        sys.exit("mismatch")
    n += 1
    time.sleep(0.02)
print(n, flush=True)
"#,
        flag = flag.display()
    );
    let mut child = Command::new(BIN)
        .args([
            "lab", "--name", &lab.name, "exec", "pod-1-a", "--", "python3", "-c", &script,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starting the stream");
    let mut lines = std::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    assert_eq!(
        lines.next().and_then(Result::ok).as_deref(),
        Some("connected")
    );
    let out = lab.svcplane_lab(&["restart-agent".into(), "node-1".into()]);
    assert!(out.status.success(), "{out:?}");
    // The new agent has synced (restart-agent waits for its healthz); the stream keeps going past it.
    let generation = lab.agent_state("node-1")["generation"]
        .as_u64()
        .unwrap_or(0);
    assert!(generation >= 1);
    std::fs::write(&flag, b"stop").expect("flag");
    let status = child.wait().expect("stream");
    let _ = std::fs::remove_file(&flag);
    let mut err = String::new();
    let _ = std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut err);
    assert!(
        status.success(),
        "stream broke across the agent restart: {err}"
    );
    let count: u64 = lines
        .next()
        .and_then(Result::ok)
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0);
    assert!(count > 0, "no lines echoed");
}
