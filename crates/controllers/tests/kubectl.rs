//! What users see with the real kubectl: `get endpointslices` and `describe svc` read as on a cluster.

mod common;

use std::process::Command;

use common::*;
use controllers::set_pod_ready;

async fn kubectl(env: &Env, args: &[&str], stdin: Option<&str>) -> String {
    let kubeconfig = env.running.kubeconfig.clone();
    let cache = env.dir.path().join("kubectl-cache");
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let stdin = stdin.map(str::to_string);
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = Command::new("kubectl")
            .args(&args)
            .env("KUBECONFIG", kubeconfig)
            .env("KUBECACHEDIR", cache)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("kubectl");
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        drop(child.stdin.take());
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    })
    .await
    .unwrap()
}

const MANIFESTS: &str = r#"
apiVersion: v1
kind: Node
metadata:
  name: node-a
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata:
  name: web-1
  labels: {app: web}
spec:
  nodeName: node-a
  containers: [{name: web, image: nginx, ports: [{containerPort: 8080}]}]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_shows_the_slices_and_the_endpoints_line() {
    let env = env().await;
    let ctl = start(&env.client, opts());
    kubectl(&env, &["apply", "-f", "-"], Some(MANIFESTS)).await;
    set_pod_ready(&env.client, "default", "web-1", true, Some("10.244.0.5"))
        .await
        .unwrap();
    let table = eventually("slice listed with its endpoint", 30, || async {
        let out = kubectl(
            &env,
            &[
                "get",
                "endpointslices",
                "-l",
                "kubernetes.io/service-name=web",
            ],
            None,
        )
        .await;
        out.contains("10.244.0.5").then_some(out)
    })
    .await;
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]);
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert!(row[0].starts_with("web-"), "{table}");
    assert_eq!(&row[1..4], ["IPv4", "8080", "10.244.0.5"]);

    let described = eventually("describe shows the endpoint", 30, || async {
        let out = kubectl(&env, &["describe", "svc", "web"], None).await;
        out.lines()
            .any(|l| l.starts_with("Endpoints:") && l.contains("10.244.0.5:8080"))
            .then_some(out)
    })
    .await;
    assert!(described.contains("Selector:"), "{described}");
    ctl.stop().await;
}
