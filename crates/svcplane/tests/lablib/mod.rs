//! The lab harness shared by the lab test files: builds a lab under a unique name, runs commands in its
//! namespaces and kubectl against it, reads what the agents applied, and removes the lab on drop.
#![allow(dead_code)] // each test file uses part of it

use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_svcplane");

static SEQ: AtomicUsize = AtomicUsize::new(0);

pub struct Lab {
    pub name: String,
    pub nodes: Vec<String>,
}

pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

impl Lab {
    /// Builds a lab, or `None` (with a message) when not root and SVCPLANE_SKIP_ROOT_TESTS=1.
    pub fn up(nodes: u8, pods: u8, agent_args: &str) -> Option<Lab> {
        if !is_root() {
            assert!(
                std::env::var("SVCPLANE_SKIP_ROOT_TESTS").is_ok(),
                "lab tests need root (set SVCPLANE_SKIP_ROOT_TESTS=1 to skip them)"
            );
            eprintln!("skipping: not root");
            return None;
        }
        let name = format!(
            "l{}{}",
            std::process::id() % 100_000,
            SEQ.fetch_add(1, Ordering::SeqCst)
        );
        let lab = Lab {
            name,
            nodes: (1..=nodes).map(|i| format!("node-{i}")).collect(),
        };
        let mut args = vec![
            "up".to_string(),
            "--nodes".into(),
            nodes.to_string(),
            "--pods-per-node".into(),
            pods.to_string(),
        ];
        if !agent_args.is_empty() {
            args.push(format!("--agent-args={agent_args}"));
        }
        let out = lab.svcplane_lab(&args);
        assert!(
            out.status.success(),
            "lab up: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(lab)
    }

    pub fn svcplane_lab(&self, args: &[String]) -> Output {
        Command::new(BIN)
            .args(["lab", "--name", &self.name])
            .args(args)
            .output()
            .expect("running svcplane lab")
    }

    pub fn exec(&self, member: &str, cmd: &[&str]) -> Output {
        let mut args = vec!["exec".to_string(), member.to_string(), "--".to_string()];
        args.extend(cmd.iter().map(|s| s.to_string()));
        self.svcplane_lab(&args)
    }

    /// stdout of a command in a member's namespace, whether or not it succeeded.
    pub fn out(&self, member: &str, cmd: &[&str]) -> String {
        String::from_utf8_lossy(&self.exec(member, cmd).stdout)
            .trim()
            .to_string()
    }

    pub fn kubectl(&self, args: &[&str]) -> String {
        let mut all = vec!["kubectl".to_string()];
        all.extend(args.iter().map(|s| s.to_string()));
        let out = self.svcplane_lab(&all);
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    pub fn apply(&self, yaml: &str) {
        let path = std::env::temp_dir().join(format!(
            "{}-{}.yaml",
            self.name,
            SEQ.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::write(&path, yaml).expect("writing manifest");
        // kubectl runs in the control-plane namespace but reads the file from the shared filesystem.
        self.kubectl(&["apply", "-f", path.to_str().expect("path")]);
        let _ = std::fs::remove_file(path);
    }

    pub fn cluster_ip(&self, svc: &str) -> String {
        self.kubectl(&["get", "svc", svc, "-o", "jsonpath={.spec.clusterIP}"])
    }

    /// The agent's applied state on a node.
    pub fn agent_state(&self, node: &str) -> Value {
        let text = self.out(
            node,
            &[
                "curl",
                "-s",
                "--max-time",
                "2",
                "http://127.0.0.1:10249/debug/state",
            ],
        );
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// Endpoints the agent on `node` applied for a frontend like "10.96.0.5:80/TCP".
    pub fn applied_endpoints(&self, node: &str, frontend: &str) -> Option<Vec<String>> {
        let state = self.agent_state(node);
        state["frontends"].as_array()?.iter().find_map(|f| {
            (f["frontend"] == frontend).then(|| {
                f["endpoints"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|e| e.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default()
            })
        })
    }

    /// Waits until every agent has applied `frontend` with exactly `count` endpoints.
    pub fn wait_applied(&self, nodes: &[&str], frontend: &str, count: usize) {
        for node in nodes {
            eventually(
                &format!("{node} applies {frontend} with {count} endpoints"),
                || {
                    self.applied_endpoints(node, frontend)
                        .is_some_and(|e| e.len() == count)
                },
            );
        }
    }

    pub fn curl(&self, member: &str, url: &str) -> String {
        self.out(member, &["curl", "-s", "-g", "--max-time", "3", url])
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let out = self.svcplane_lab(&["down".to_string()]);
        if !out.status.success() {
            eprintln!("lab down: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
}

pub fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
