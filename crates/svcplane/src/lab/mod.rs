//! `svcplane lab`: a cluster on one machine made of network namespaces — nodes on a LAN bridge, pods on a
//! bridge per node, the control plane and an outside client — with svcplane's real components in them and
//! real packets between them. Nothing is added to the host's own namespace; `lab down` removes every
//! namespace (with its links, rules and processes) and the lab directory.

mod kubelet;
mod net;
pub mod plan;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};

use plan::{LabPlan, CLUSTER_CIDRS, SERVICE_CIDRS};

#[derive(Args, Clone)]
pub struct LabArgs {
    /// The lab's name: the prefix of its network namespaces (NAME-node-1, NAME-pod-1-a, NAME-client, …).
    #[arg(long, global = true, default_value = "svcplane")]
    name: String,
    /// The lab directory (state, logs, data); default /run/svcplane-lab/NAME.
    #[arg(long, global = true)]
    dir: Option<PathBuf>,
    #[command(subcommand)]
    command: LabCommand,
}

#[derive(Subcommand, Clone)]
enum LabCommand {
    /// Build the lab and start its processes in the background; returns when traffic can flow.
    Up {
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=20))]
        nodes: u8,
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(0..=20))]
        pods_per_node: u8,
        /// Extra flags for every node agent, e.g. "--sync-period=5s".
        #[arg(long, allow_hyphen_values = true)]
        agent_args: Option<String>,
        /// The LoadBalancer pool (`svcplane up --loadbalancer-ip-pool`); "" for none. The default is on the
        /// node LAN, so the client reaches the addresses through the nodes' ARP/NDP announcements.
        #[arg(long, default_value = plan::LB_POOL)]
        loadbalancer_ip_pool: String,
    },
    /// Stop every lab process and remove every namespace, link, rule and file of the lab.
    Down,
    /// Run a command in a lab member's namespace: a pod (pod-1-a), a node (node-1), client, cp.
    Exec {
        member: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        command: Vec<String>,
    },
    /// kubectl against the lab's API server.
    Kubectl {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Print the lab's plan (nodes, pods, addresses) as JSON.
    Status,
    /// Stop a node's agent and start it again (its rules stay in the kernel meanwhile, as on a real node).
    RestartAgent { node: String },
    /// Stop a node's agent (TERM: it hands its LoadBalancer addresses over; `--kill`: SIGKILL, as a crash).
    StopAgent {
        node: String,
        #[arg(long)]
        kill: bool,
    },
    /// (internal) The lab's kubelet stand-in, started by `lab up` in the control-plane namespace.
    #[command(hide = true)]
    Kubelet,
}

impl LabArgs {
    fn dir(&self) -> PathBuf {
        self.dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("/run/svcplane-lab").join(&self.name))
    }
}

pub fn run(args: LabArgs) -> anyhow::Result<()> {
    let dir = args.dir();
    match &args.command {
        LabCommand::Up {
            nodes,
            pods_per_node,
            agent_args,
            loadbalancer_ip_pool,
        } => {
            let mut plan = LabPlan::new(&args.name, *nodes, *pods_per_node);
            plan.lb_pool = loadbalancer_ip_pool.clone();
            plan.agent_args = agent_args
                .as_deref()
                .unwrap_or_default()
                .split_whitespace()
                .map(String::from)
                .collect();
            let result = up(&plan, &dir);
            if let Err(e) = &result {
                eprintln!("lab up failed: {e:#}; removing what was built");
                down(&args.name, &dir);
            }
            result
        }
        LabCommand::Down => {
            down(&args.name, &dir);
            Ok(())
        }
        LabCommand::Exec { member, command } => {
            let plan = read_plan(&dir)?;
            let err = Command::new("ip")
                .args(["netns", "exec", &plan.netns(member)])
                .args(command)
                .exec();
            Err(err).context("running ip netns exec")
        }
        LabCommand::Kubectl { args: kargs } => {
            let plan = read_plan(&dir)?;
            let err = Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &plan.netns("cp"),
                    "kubectl",
                    "--kubeconfig",
                ])
                .arg(dir.join("kubeconfig"))
                .args(kargs)
                .exec();
            Err(err).context("running kubectl")
        }
        LabCommand::RestartAgent { node } => {
            let plan = read_plan(&dir)?;
            let n = plan
                .nodes
                .iter()
                .find(|n| &n.name == node)
                .with_context(|| format!("no node {node} in lab {}", plan.name))?;
            let ns = plan.netns(&n.name);
            net::kill_matching(&ns, "agent");
            start_agent(&plan, &dir, &n.name)?;
            let deadline = Instant::now() + Duration::from_secs(60);
            wait_for(&format!("the agent of {node}"), deadline, || {
                http_ok(&ns, "http://127.0.0.1:10256/healthz")
            })?;
            progress(&format!("agent of {node} restarted"));
            Ok(())
        }
        LabCommand::StopAgent { node, kill } => {
            let plan = read_plan(&dir)?;
            let n = plan
                .nodes
                .iter()
                .find(|n| &n.name == node)
                .with_context(|| format!("no node {node} in lab {}", plan.name))?;
            let signals: &[&str] = if *kill { &["KILL"] } else { &["TERM", "KILL"] };
            net::kill_matching_with(&plan.netns(&n.name), "agent", signals);
            progress(&format!("agent of {node} stopped"));
            Ok(())
        }
        LabCommand::Status => {
            let plan = read_plan(&dir)?;
            println!("{}", serde_json::to_string_pretty(&plan)?);
            Ok(())
        }
        LabCommand::Kubelet => {
            let plan = read_plan(&dir)?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let client = crate::client_from(Some(&dir.join("kubeconfig"))).await?;
                let deadline = Instant::now() + Duration::from_secs(60);
                loop {
                    match kubelet::register(&client, &plan).await {
                        Ok(()) => break,
                        Err(e) if Instant::now() < deadline => {
                            tracing::info!(error = %format!("{e:#}"), "lab kubelet: API not ready; retrying");
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                        Err(e) => return Err(e),
                    }
                }
                std::fs::write(dir.join("registered"), b"ok\n")?;
                tokio::select! {
                    r = kubelet::finish_deletions(client, &plan) => r,
                    _ = crate::shutdown_signal() => Ok(()),
                }
            })
        }
    }
}

fn read_plan(dir: &Path) -> anyhow::Result<LabPlan> {
    let path = dir.join("lab.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("no lab at {} (svcplane lab up)", dir.display()))?;
    Ok(serde_json::from_str(&text)?)
}

fn progress(step: &str) {
    eprintln!("lab: {step}");
}

/// Starts `svcplane ARGS` in a namespace, detached, logging to DIR/logs/LOG.log.
fn spawn(dir: &Path, ns: &str, log: &str, args: &[String]) -> anyhow::Result<u32> {
    let exe = std::env::current_exe().context("finding the svcplane binary")?;
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs)?;
    let file = std::fs::File::create(logs.join(format!("{log}.log")))?;
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns])
        .arg(exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .process_group(0);
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {log} in {ns}"))?;
    Ok(child.id())
}

fn wait_for(what: &str, deadline: Instant, mut ready: impl FnMut() -> bool) -> anyhow::Result<()> {
    while !ready() {
        if Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Whether an HTTP GET from inside a namespace answers 200.
fn http_ok(ns: &str, url: &str) -> bool {
    Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "curl",
            "-sf",
            "-o",
            "/dev/null",
            "--max-time",
            "1",
            url,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn start_agent(plan: &LabPlan, dir: &Path, node: &str) -> anyhow::Result<u32> {
    let mut args: Vec<String> = vec![
        "agent".into(),
        "--node-name".into(),
        node.to_string(),
        "--kubeconfig".into(),
        dir.join("kubeconfig").display().to_string(),
        "--cluster-cidr".into(),
        CLUSTER_CIDRS.into(),
        "--healthz-bind-address".into(),
        "0.0.0.0:10256".into(),
        "--metrics-bind-address".into(),
        "0.0.0.0:10249".into(),
    ];
    args.extend(plan.agent_args.iter().cloned());
    spawn(dir, &plan.netns(node), node, &args)
}

fn up(plan: &LabPlan, dir: &Path) -> anyhow::Result<()> {
    if !net::lab_namespaces(&plan.name).is_empty() || dir.join("lab.json").exists() {
        bail!(
            "lab {:?} is already up (svcplane lab down --name {})",
            plan.name,
            plan.name
        );
    }
    for tool in ["ip", "bridge", "nft", "curl"] {
        if Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .map(|s| !s.success())
            .unwrap_or(true)
        {
            bail!("the lab needs `{tool}` (iproute2, nftables, curl)");
        }
    }
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("lab.json"), serde_json::to_string_pretty(plan)?)?;
    net::build(plan, &mut |s| progress(s))?;

    // Pods resolve through the cluster DNS Service, as a kubelet would configure them.
    for pod in &plan.pods {
        let etc = PathBuf::from("/etc/netns").join(plan.netns(&pod.name));
        std::fs::create_dir_all(&etc)?;
        std::fs::write(
            etc.join("resolv.conf"),
            format!(
                "search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver {}\noptions ndots:5\n",
                plan::DNS_SERVICE_IP
            ),
        )?;
    }

    progress("control plane (API server, controllers, DNS)");
    let cp = plan.netns("cp");
    let cp_ip = plan.cp_ip();
    let data = dir.join("cp");
    spawn(
        dir,
        &cp,
        "cp",
        &[
            "up".into(),
            "--data-dir".into(),
            data.display().to_string(),
            "--bind-address".into(),
            "0.0.0.0".into(),
            "--advertise-address".into(),
            cp_ip.clone(),
            "--service-cluster-ip-range".into(),
            SERVICE_CIDRS.into(),
            "--dns-listen".into(),
            "0.0.0.0:53".into(),
            format!("--loadbalancer-ip-pool={}", plan.lb_pool),
        ],
    )?;
    let deadline = Instant::now() + Duration::from_secs(60);
    wait_for("the API server's kubeconfig", deadline, || {
        data.join("kubeconfig").exists()
    })?;
    std::fs::copy(data.join("kubeconfig"), dir.join("kubeconfig"))?;

    progress("nodes and pods in the API");
    spawn(
        dir,
        &cp,
        "kubelet",
        &[
            "lab".into(),
            "--name".into(),
            plan.name.clone(),
            "--dir".into(),
            dir.display().to_string(),
            "kubelet".into(),
        ],
    )?;
    wait_for("node and pod registration", deadline, || {
        dir.join("registered").exists()
    })?;

    progress("pods' echo servers");
    for pod in &plan.pods {
        spawn(
            dir,
            &plan.netns(&pod.name),
            &pod.name,
            &["echo".into(), "--name".into(), pod.name.clone()],
        )?;
    }
    progress("node agents");
    for node in &plan.nodes {
        start_agent(plan, dir, &node.name)?;
    }
    for node in &plan.nodes {
        let ns = plan.netns(&node.name);
        wait_for(&format!("the agent of {}", node.name), deadline, || {
            http_ok(&ns, "http://127.0.0.1:10256/healthz")
        })?;
    }
    for pod in &plan.pods {
        let ns = plan.netns(&pod.name);
        wait_for(
            &format!("the echo server of {}", pod.name),
            deadline,
            || http_ok(&ns, "http://127.0.0.1:8080/healthz"),
        )?;
    }
    progress(&format!(
        "up: {} nodes, {} pods; try `svcplane lab --name {} kubectl get nodes,pods -o wide`",
        plan.nodes.len(),
        plan.pods.len(),
        plan.name
    ));
    Ok(())
}

fn down(name: &str, dir: &Path) {
    for ns in net::lab_namespaces(name) {
        progress(&format!("removing {ns}"));
        net::remove_netns(&ns);
    }
    let _ = std::fs::remove_dir_all(dir);
}
