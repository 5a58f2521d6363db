//! Apply → first packet, in the lab (root): from the API request creating a Service with ready pods to the
//! first successful HTTP request from a pod through its ClusterIP, over many tries, p50/p99.
//!
//! `cargo build --release -p svcplane -p bench && sudo target/release/labbench --tries 100`
//!
//! The timing loop runs inside a lab pod (apply_to_packet.py), so neither `kubectl` start-up nor `lab exec`
//! is counted: only the API write, the EndpointSlice controller, the agent's watch and its kernel update.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context};
use clap::Parser;

#[derive(Parser)]
struct Args {
    /// The svcplane binary.
    #[arg(long, default_value = "target/release/svcplane")]
    svcplane: PathBuf,
    #[arg(long, default_value_t = 100)]
    tries: u32,
    #[arg(long, default_value_t = 2)]
    nodes: u8,
}

const SCRIPT: &str = include_str!("apply_to_packet.py");

fn lab(bin: &PathBuf, name: &str, args: &[&str]) -> anyhow::Result<std::process::Output> {
    Command::new(bin)
        .args(["lab", "--name", name])
        .args(args)
        .output()
        .context("running svcplane lab")
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let name = format!("lb{}", std::process::id() % 100_000);
    let nodes = args.nodes.to_string();
    println!("lab {name}: {} nodes, 2 pods each", args.nodes);
    let up = lab(
        &args.svcplane,
        &name,
        &["up", "--nodes", &nodes, "--pods-per-node", "2"],
    )?;
    let result = (|| -> anyhow::Result<Vec<f64>> {
        if !up.status.success() {
            bail!("lab up: {}", String::from_utf8_lossy(&up.stderr));
        }
        let script = std::env::temp_dir().join(format!("{name}-apply.py"));
        std::fs::write(&script, SCRIPT)?;
        let kubeconfig = format!("/run/svcplane-lab/{name}/kubeconfig");
        let out = lab(
            &args.svcplane,
            &name,
            &[
                "exec",
                "pod-1-a",
                "--",
                "python3",
                script.to_str().context("path")?,
                &kubeconfig,
                &args.tries.to_string(),
            ],
        )?;
        let _ = std::fs::remove_file(&script);
        if !out.status.success() {
            bail!("bench script: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect())
    })();
    let _ = lab(&args.svcplane, &name, &["down"]);
    let mut times = result?;
    if times.is_empty() {
        bail!("no measurements");
    }
    times.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
    println!(
        "apply → first packet over {} tries: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        times.len(),
        pct(0.5),
        pct(0.9),
        pct(0.99),
        times[times.len() - 1]
    );
    Ok(())
}
