//! `svcplane agent`: the node agent's flags (named as kube-proxy names them) and its one-shot modes
//! (`--dump`, `--cleanup`).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use proxy::{Family, NodePortAddresses, ProxyModel};

#[derive(clap::Args, Clone)]
pub struct AgentArgs {
    /// This node's name (kube-proxy: --hostname-override); default: the host name.
    #[arg(long)]
    node_name: Option<String>,
    #[command(flatten)]
    cluster: crate::apiclient::ClusterArgs,
    /// The pod network's CIDR(s), comma-separated: traffic from them is pod traffic.
    #[arg(long, value_delimiter = ',')]
    cluster_cidr: Vec<ipnet::IpNet>,
    /// Service CIDR(s) whose unallocated addresses are dropped; default: the cluster's ServiceCIDRs.
    #[arg(long, value_delimiter = ',')]
    service_cluster_ip_range: Vec<ipnet::IpNet>,
    /// Node addresses NodePorts answer on: `primary` (the node's primary IPs) or CIDRs, comma-separated.
    #[arg(long, default_value = "primary")]
    nodeport_addresses: String,
    /// Masquerade all traffic sent to ClusterIPs.
    #[arg(long)]
    masquerade_all: bool,
    /// Address of /healthz and /livez; port 0 picks a free port.
    #[arg(long, default_value = "0.0.0.0:10256")]
    healthz_bind_address: SocketAddr,
    /// Address of /metrics (and /debug/state); port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:10249")]
    metrics_bind_address: SocketAddr,
    /// How often the whole table is re-applied to repair drift, e.g. 30s, 1m.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    sync_period: Duration,
    /// How the kernel is programmed: `netlink` (batches of set elements) or `nft` (the nft CLI, slower).
    #[arg(long, default_value = "netlink", value_parser = ["netlink", "nft"])]
    backend: String,
    /// Announce LoadBalancer addresses (ARP/NDP) when this node is elected for them; `--announce=false`
    /// leaves that to another implementation.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    announce: bool,
    /// The LAN interface announcements go out on; default: the interface holding the node's InternalIP.
    #[arg(long)]
    announce_interface: Option<String>,
    /// How long a node's announce lease lasts unrenewed: a dead node's addresses move after this, e.g. 3s.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    announce_lease_duration: Duration,
    /// How often this node renews its announce lease; well under the lease duration.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    announce_renew_interval: Duration,
    /// Namespace of the announce leases (one per node: svcplane-announce-NODE).
    #[arg(long, default_value = "kube-system")]
    announce_lease_namespace: String,
    /// Print the table the agent would program (nft syntax) and exit.
    #[arg(long)]
    dump: bool,
    /// Delete the agent's tables and exit.
    #[arg(long)]
    cleanup: bool,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map(|i| s.split_at(i))
        .unwrap_or((s, "s"));
    let n: f64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("invalid duration unit in {s:?} (ms, s, m, h)")),
    };
    if secs.is_nan() || secs <= 0.0 {
        return Err(format!("duration {s:?} must be positive"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn node_name(args: &AgentArgs) -> String {
    args.node_name.clone().unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_lowercase())
            .unwrap_or_default()
    })
}

fn options(args: &AgentArgs) -> anyhow::Result<agent::AgentOptions> {
    let mut o = agent::AgentOptions::new(node_name(args));
    o.nodeport_addresses =
        NodePortAddresses::parse(&args.nodeport_addresses).context("--nodeport-addresses")?;
    o.cluster_cidrs = args.cluster_cidr.clone();
    o.service_cidrs = args.service_cluster_ip_range.clone();
    o.masquerade_all = args.masquerade_all;
    o.healthz = Some(args.healthz_bind_address);
    o.metrics = Some(args.metrics_bind_address);
    o.sync_period = args.sync_period;
    if args.announce_renew_interval >= args.announce_lease_duration {
        anyhow::bail!("--announce-renew-interval must be shorter than --announce-lease-duration");
    }
    o.announce = args.announce.then(|| {
        let mut a = agent::AnnounceOptions::new(o.node_name.clone());
        a.interface = args.announce_interface.clone();
        a.lease_duration = args.announce_lease_duration;
        a.renew_interval = args.announce_renew_interval;
        a.lease_namespace = args.announce_lease_namespace.clone();
        a
    });
    Ok(o)
}

/// The backend factory for `--backend`; netlink falls back to the nft CLI if its socket cannot open.
fn backends(kind: &str, table: String) -> agent::BackendFactory {
    let netlink = kind == "netlink";
    Box::new(move |family| -> Box<dyn agent::Backend> {
        if netlink {
            match agent::Netlink::new(family, &table) {
                Ok(b) => return Box::new(b),
                Err(e) => {
                    tracing::warn!(error = %e, "agent: netlink unavailable; using the nft CLI")
                }
            }
        }
        Box::new(agent::NftCli)
    })
}

pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    let opts = options(&args)?;
    if args.cleanup {
        let factory = backends(&args.backend, opts.table.clone());
        for family in [Family::V4, Family::V6] {
            let mut b = factory(family);
            match b.delete_table(family, &opts.table) {
                Ok(()) => println!("deleted table {} {}", family.nft(), opts.table),
                Err(e) => println!("table {} {}: {e}", family.nft(), opts.table),
            }
        }
        return Ok(());
    }
    let client = args.cluster.client().await?;
    if args.dump {
        return dump(client, &opts).await;
    }
    eprintln!(
        "svcplane agent for node {} ({} backend)",
        opts.node_name, args.backend
    );
    let factory = backends(&args.backend, opts.table.clone());
    agent::run(
        client,
        opts,
        factory,
        |bound| {
            eprintln!(
                "svcplane agent: healthz {:?}, metrics {:?}",
                bound.healthz, bound.metrics
            )
        },
        crate::shutdown_signal(),
    )
    .await
    .context("node agent")
}

/// Lists once and prints both families' tables.
async fn dump(client: kube::Client, opts: &agent::AgentOptions) -> anyhow::Result<()> {
    let services = Api::<Service>::all(client.clone())
        .list(&Default::default())
        .await?;
    let slices = Api::<EndpointSlice>::all(client.clone())
        .list(&Default::default())
        .await?;
    let node = Api::<Node>::all(client).get_opt(&opts.node_name).await?;
    for family in &opts.families {
        let mut config = proxy::Config::new(*family, opts.node_name.clone());
        config.nodeport_addresses = opts.nodeport_addresses.clone();
        config.cluster_cidrs = opts.cluster_cidrs.clone();
        config.service_cidrs = opts.service_cidrs.clone();
        config.masquerade_all = opts.masquerade_all;
        let mut model = ProxyModel::new(config);
        if let Some(n) = &node {
            model.set_node(n);
        }
        for s in &services.items {
            if let Err(e) = model.upsert_service(s) {
                eprintln!("# {e}");
            }
        }
        for s in &slices.items {
            model.upsert_endpoint_slice(s);
        }
        print!(
            "{}",
            proxy::render::ruleset(&model, proxy::render::Mode::Dump)
        );
    }
    Ok(())
}
