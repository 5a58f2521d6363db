//! Namespaces, links, addresses and routes of the lab, through iproute2. Everything is created inside
//! namespaces the lab owns (a veth is created in one lab namespace with its peer moved straight into
//! another): the host's own namespace never gets a link, an address or a route.

use std::process::Command;

use anyhow::{bail, Context};

use super::plan::{LabPlan, CLIENT_HOST, CP_HOST, EXTERNAL_V4, EXTERNAL_V6, LAN_V4, LAN_V6};

/// Runs a command and fails with its stderr.
pub fn run(program: &str, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// `ip -n NS ARGS…`
fn ipn(ns: &str, args: &[&str]) -> anyhow::Result<()> {
    let mut all = vec!["-n", ns];
    all.extend_from_slice(args);
    run("ip", &all)
}

fn sysctl(ns: &str, key: &str, value: &str) -> anyhow::Result<()> {
    run(
        "ip",
        &[
            "netns",
            "exec",
            ns,
            "sysctl",
            "-qw",
            &format!("{key}={value}"),
        ],
    )
}

fn new_netns(ns: &str) -> anyhow::Result<()> {
    run("ip", &["netns", "add", ns])?;
    ipn(ns, &["link", "set", "lo", "up"])
}

/// A veth from `(a_ns, a_name)` to `(b_ns, b_name)`, both up.
fn veth(a_ns: &str, a_name: &str, b_ns: &str, b_name: &str) -> anyhow::Result<()> {
    ipn(
        a_ns,
        &[
            "link", "add", a_name, "type", "veth", "peer", "name", b_name, "netns", b_ns,
        ],
    )?;
    ipn(a_ns, &["link", "set", a_name, "up"])?;
    ipn(b_ns, &["link", "set", b_name, "up"])
}

fn bridge(ns: &str, name: &str) -> anyhow::Result<()> {
    ipn(ns, &["link", "add", name, "type", "bridge"])?;
    ipn(ns, &["link", "set", name, "up"])
}

fn addr(ns: &str, dev: &str, cidr: &str) -> anyhow::Result<()> {
    if cidr.contains(':') {
        // Without nodad the address stays tentative (unusable) for seconds.
        ipn(ns, &["-6", "addr", "add", cidr, "dev", dev, "nodad"])
    } else {
        ipn(ns, &["addr", "add", cidr, "dev", dev])
    }
}

fn route(ns: &str, dest: &str, via: &str) -> anyhow::Result<()> {
    let fam = if via.contains(':') { "-6" } else { "-4" };
    ipn(ns, &[fam, "route", "add", dest, "via", via])
}

/// Attaches one LAN member: `eth0` in `member_ns`, its peer on the LAN bridge.
fn lan_member(plan: &LabPlan, port: &str, member_ns: &str, host: u16) -> anyhow::Result<()> {
    let lan = plan.netns("lan");
    veth(&lan, port, member_ns, "eth0")?;
    ipn(&lan, &["link", "set", port, "master", "br0"])?;
    addr(member_ns, "eth0", &format!("{LAN_V4}.{host}/24"))?;
    addr(member_ns, "eth0", &format!("{LAN_V6}:{host:x}/64"))
}

/// Builds the whole network; `progress` is told each step.
pub fn build(plan: &LabPlan, progress: &mut dyn FnMut(&str)) -> anyhow::Result<()> {
    let lan = plan.netns("lan");
    progress("node LAN");
    new_netns(&lan)?;
    bridge(&lan, "br0")?;
    let cp = plan.netns("cp");
    new_netns(&cp)?;
    lan_member(plan, "cp", &cp, u16::from(CP_HOST))?;
    let client = plan.netns("client");
    new_netns(&client)?;
    lan_member(plan, "client", &client, u16::from(CLIENT_HOST))?;
    let first = plan
        .nodes
        .first()
        .context("a lab needs at least one node")?;
    // The outside client reaches external IPs and hand-written LoadBalancer IPs through node-1.
    route(&client, EXTERNAL_V4, &first.ip)?;
    route(&client, EXTERNAL_V6, &first.ip6)?;
    for node in &plan.nodes {
        progress(&format!("{} and its pods", node.name));
        let ns = plan.netns(&node.name);
        new_netns(&ns)?;
        lan_member(
            plan,
            &format!("n{}", node.index),
            &ns,
            10 + u16::from(node.index),
        )?;
        sysctl(&ns, "net.ipv4.ip_forward", "1")?;
        sysctl(&ns, "net.ipv6.conf.all.forwarding", "1")?;
        // kube-proxy sets this so that NodePorts work on 127.0.0.1 too; harmless here.
        sysctl(&ns, "net.ipv4.conf.all.route_localnet", "1")?;
        bridge(&ns, "cbr0")?;
        addr(&ns, "cbr0", &gateway_cidr(&node.pod_cidr))?;
        addr(&ns, "cbr0", &gateway_cidr(&node.pod_cidr6))?;
        for other in plan.nodes.iter().filter(|o| o.name != node.name) {
            route(&ns, &other.pod_cidr, &other.ip)?;
            route(&ns, &other.pod_cidr6, &other.ip6)?;
        }
        route(&cp, &node.pod_cidr, &node.ip)?;
        route(&cp, &node.pod_cidr6, &node.ip6)?;
        for (k, pod) in plan.pods.iter().filter(|p| p.node == node.name).enumerate() {
            let pns = plan.netns(&pod.name);
            new_netns(&pns)?;
            let port = format!("p{k}");
            veth(&ns, &port, &pns, "eth0")?;
            ipn(&ns, &["link", "set", &port, "master", "cbr0"])?;
            // br_netfilter is on in every namespace: a pod reaching itself through a Service gets its reply
            // back out of the port it came in on only with hairpin.
            run(
                "bridge",
                &["-n", &ns, "link", "set", "dev", &port, "hairpin", "on"],
            )?;
            addr(&pns, "eth0", &format!("{}/24", pod.ip))?;
            addr(&pns, "eth0", &format!("{}/64", pod.ip6))?;
            ipn(&pns, &["route", "add", "default", "via", &pod.gateway])?;
            ipn(
                &pns,
                &["-6", "route", "add", "default", "via", &pod.gateway6],
            )?;
        }
    }
    Ok(())
}

/// `10.244.1.0/24` → `10.244.1.1/24`; `fd00:244:1::/64` → `fd00:244:1::1/64`.
fn gateway_cidr(cidr: &str) -> String {
    let (net, len) = cidr.split_once('/').unwrap_or((cidr, ""));
    match net.strip_suffix(".0") {
        Some(prefix) => format!("{prefix}.1/{len}"),
        None => format!("{net}1/{len}"),
    }
}

/// Every network namespace whose name starts with the lab's prefix.
pub fn lab_namespaces(lab: &str) -> Vec<String> {
    let prefix = format!("{lab}-");
    let mut out: Vec<String> = std::fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(&prefix))
        .collect();
    out.sort();
    out
}

/// Stops (TERM, then KILL) the processes of a namespace whose command line has `word` as an argument.
pub fn kill_matching(ns: &str, word: &str) {
    kill_matching_with(ns, word, &["TERM", "KILL"]);
}

/// Sends each signal in turn to the processes of a namespace whose command line has `word` as an argument,
/// until none is left.
pub fn kill_matching_with(ns: &str, word: &str, signals: &[&str]) {
    let has_word = |pid: &str| {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| c.split(|b| *b == 0).any(|a| a == word.as_bytes()))
            .unwrap_or(false)
    };
    stop_processes(ns, &has_word, signals, 40);
}

/// Sends each signal in turn to the processes of namespace `ns` that `select` picks, polling up to
/// `polls` × 50 ms after each for them to go; returns once none is left.
fn stop_processes(ns: &str, select: &dyn Fn(&str) -> bool, signals: &[&str], polls: u32) {
    let selected = || -> Vec<String> {
        let pids = Command::new("ip")
            .args(["netns", "pids", ns])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default();
        pids.split_whitespace()
            .filter(|pid| select(pid))
            .map(String::from)
            .collect()
    };
    for signal in signals {
        let pids = selected();
        if pids.is_empty() {
            return;
        }
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .args(&pids)
            .status();
        for _ in 0..polls {
            if selected().is_empty() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

/// Kills every process in a namespace, then deletes it and its /etc/netns directory.
pub fn remove_netns(ns: &str) {
    stop_processes(ns, &|_| true, &["TERM", "KILL"], 20);
    let _ = run("ip", &["netns", "del", ns]);
    let _ = std::fs::remove_dir_all(format!("/etc/netns/{ns}"));
}
