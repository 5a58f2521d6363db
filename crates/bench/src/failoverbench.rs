//! LoadBalancer failover in the lab (root): a LoadBalancer Service gets an address on the node LAN; then,
//! `--tries` times, the announcing node's agent is killed (SIGKILL, no goodbye) and the bench measures, from
//! the kill, how long until the outside client's kernel has another node's MAC for the address (gratuitous
//! ARP) and until a fresh HTTP request from the client succeeds. The killed agent is restarted and the bench
//! waits for one stable announcer before the next try. Prints p50/p90/max.
//!
//! `cargo build --release -p svcplane -p bench && sudo target/release/failoverbench --tries 20`
//! (default agent timings: `--announce-lease-duration 1s --announce-renew-interval 250ms`).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "target/release/svcplane")]
    svcplane: PathBuf,
    #[arg(long, default_value_t = 20)]
    tries: u32,
    #[arg(
        long,
        default_value = "--announce-lease-duration=1s --announce-renew-interval=250ms"
    )]
    agent_args: String,
}

struct Lab {
    bin: PathBuf,
    name: String,
}

impl Lab {
    fn run(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new(&self.bin)
            .args(["lab", "--name", &self.name])
            .args(args)
            .output()
            .context("running svcplane lab")?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    fn neighbour(&self, ip: &str) -> anyhow::Result<String> {
        let line = self.run(&[
            "exec", "client", "--", "ip", "neigh", "show", "to", ip, "dev", "eth0",
        ])?;
        let mut w = line.split_whitespace();
        Ok(w.find(|x| *x == "lladdr")
            .and(w.next())
            .unwrap_or("")
            .to_string())
    }

    fn announcers(&self, ip: &str) -> anyhow::Result<Vec<String>> {
        let mut out = Vec::new();
        for node in ["node-1", "node-2", "node-3"] {
            let state = self.run(&[
                "exec",
                node,
                "--",
                "curl",
                "-s",
                "--max-time",
                "1",
                "http://127.0.0.1:10249/debug/state",
            ])?;
            if state.contains(&format!("\"{ip}\"")) {
                out.push(node.to_string());
            }
        }
        Ok(out)
    }

    fn get(&self, ip: &str) -> anyhow::Result<bool> {
        let body = self.run(&[
            "exec",
            "client",
            "--",
            "curl",
            "-s",
            "--max-time",
            "1",
            &format!("http://{ip}/hostname"),
        ])?;
        Ok(body.starts_with("pod-"))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.run(&["down"]);
    }
}

fn poll(
    what: &str,
    limit: Duration,
    mut f: impl FnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    loop {
        if f()? {
            return Ok(start.elapsed());
        }
        if start.elapsed() > limit {
            bail!("timed out: {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn summary(what: &str, v: &mut [f64]) {
    v.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| v[((v.len() as f64 * p) as usize).min(v.len() - 1)];
    println!(
        "{what} over {} failovers: p50 {:.0} ms, p90 {:.0} ms, max {:.0} ms",
        v.len(),
        pct(0.5),
        pct(0.9),
        v[v.len() - 1]
    );
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let lab = Lab {
        bin: args.svcplane.clone(),
        name: format!("fo{}", std::process::id() % 100_000),
    };
    let up = Command::new(&lab.bin)
        .args([
            "lab",
            "--name",
            &lab.name,
            "up",
            "--nodes",
            "3",
            "--pods-per-node",
            "1",
        ])
        .arg(format!("--agent-args={}", args.agent_args))
        .output()?;
    if !up.status.success() {
        bail!("lab up: {}", String::from_utf8_lossy(&up.stderr));
    }
    let manifest = std::env::temp_dir().join(format!("{}-svc.yaml", lab.name));
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {type: LoadBalancer, selector: {app: web}, ports: [{name: http, port: 80, targetPort: http}]}\n",
    )?;
    lab.run(&["kubectl", "apply", "-f", manifest.to_str().context("path")?])?;
    let _ = std::fs::remove_file(&manifest);
    let mut ip = String::new();
    poll("an address in status", Duration::from_secs(30), || {
        ip = lab.run(&[
            "kubectl",
            "get",
            "svc",
            "web",
            "-o",
            "jsonpath={.status.loadBalancer.ingress[0].ip}",
        ])?;
        Ok(!ip.is_empty())
    })?;
    println!(
        "LoadBalancer address {ip}; agent flags: {}",
        args.agent_args
    );
    let (mut to_mac, mut to_request) = (Vec::new(), Vec::new());
    for i in 0..args.tries {
        // A stable start: one announcer, and the client reaches the address through it.
        let mut announcer = String::new();
        poll("one stable announcer", Duration::from_secs(30), || {
            let a = lab.announcers(&ip)?;
            if a.len() == 1 && lab.get(&ip)? {
                announcer = a[0].clone();
                return Ok(true);
            }
            Ok(false)
        })?;
        let old = lab.neighbour(&ip)?;
        let killed = Instant::now();
        lab.run(&["stop-agent", &announcer, "--kill"])?;
        poll(
            "the neighbour entry to move",
            Duration::from_secs(15),
            || {
                let now = lab.neighbour(&ip)?;
                Ok(!now.is_empty() && now != old)
            },
        )?;
        to_mac.push(killed.elapsed().as_secs_f64() * 1e3);
        poll(
            "a fresh request to succeed",
            Duration::from_secs(15),
            || lab.get(&ip),
        )?;
        to_request.push(killed.elapsed().as_secs_f64() * 1e3);
        println!(
            "try {}: killed the agent of {announcer}; new MAC after {:.0} ms, request ok after {:.0} ms",
            i + 1,
            to_mac[to_mac.len() - 1],
            to_request[to_request.len() - 1]
        );
        lab.run(&["restart-agent", &announcer])?;
    }
    summary("kill → client's neighbour entry moved", &mut to_mac);
    summary("kill → fresh request answered", &mut to_request);
    Ok(())
}
