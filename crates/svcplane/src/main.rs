//! `svcplane`: one binary for every component of svcplane. `up` runs the API server with its embedded
//! store (and, as they land, the controllers and DNS) on one machine; each component also has a
//! subcommand of its own.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

mod agent_cmd;
mod apiclient;
mod echo;
mod lab;

#[derive(Parser)]
#[command(name = "svcplane", version, about = "Kubernetes Services, end to end")]
struct Cli {
    /// Log filter (tracing's env-filter syntax), e.g. "info" or "apiserver=debug".
    #[arg(long, global = true, env = "SVCPLANE_LOG", default_value = "info")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run everything on this machine: the API server with its embedded store, the controllers and the
    /// cluster DNS.
    Up(UpArgs),
    /// Run the Kubernetes-compatible API server alone.
    Apiserver(ApiServerArgs),
    /// Run the cluster DNS server alone, against any Kubernetes API (svcplane's or a real cluster's).
    Dns(DnsCommandArgs),
    /// Run the EndpointSlice and LoadBalancer IPAM controllers alone, against any Kubernetes API.
    Controllers(ControllersCommandArgs),
    /// Set a pod's readiness through its status subresource, as a kubelet would (there is no kubelet here).
    Pod(PodArgs),
    /// Run the node agent: program this node's nftables for every Service, as kube-proxy does.
    Agent(agent_cmd::AgentArgs),
    /// Serve the lab's pod workload: HTTP /hostname and /clientip, TCP and UDP echo.
    Echo(echo::EchoArgs),
    /// A multi-node cluster on this machine, built of network namespaces (root only).
    Lab(lab::LabArgs),
}

#[derive(Args, Clone)]
struct ControllerArgs {
    /// Most endpoints in one EndpointSlice (upstream default 100, at most 1000).
    #[arg(long, default_value_t = 100)]
    max_endpoints_per_slice: usize,
    /// Services synced in parallel.
    #[arg(long, default_value_t = 5)]
    concurrent_service_endpoint_syncs: usize,
    /// Elect one writer among replicas through a coordination.k8s.io Lease in kube-system (one Lease per
    /// controller).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    leader_elect: bool,
    /// Run the LoadBalancer IPAM controller (addresses from LoadBalancerIPPools into the status of
    /// LoadBalancer Services of class svcplane.io/lb or none). Turn off where another implementation
    /// serves those Services.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    lb_ipam: bool,
    /// The simplest pool: CIDRs or first-last ranges (comma-separated) of a LoadBalancerIPPool named
    /// "default", created or updated at start.
    #[arg(long, value_delimiter = ',')]
    loadbalancer_ip_pool: Vec<String>,
    /// Controllers to run, as kube-controller-manager's flag: '*' is every one, 'foo' enables foo, '-foo'
    /// disables it. Names: endpointslice, endpointslicemirroring, lb-ipam. On a cluster whose
    /// kube-controller-manager runs the first two, use `--controllers=lb-ipam`.
    #[arg(long, value_delimiter = ',', default_value = "*", value_parser = parse_controller)]
    controllers: Vec<String>,
}

const CONTROLLER_NAMES: [&str; 3] = ["endpointslice", "endpointslicemirroring", "lb-ipam"];

fn parse_controller(s: &str) -> Result<String, String> {
    let name = s.trim().trim_start_matches('-');
    if name == "*" || CONTROLLER_NAMES.contains(&name) {
        Ok(s.trim().to_string())
    } else {
        Err(format!(
            "unknown controller {name:?} (known: {})",
            CONTROLLER_NAMES.join(", ")
        ))
    }
}

impl ControllerArgs {
    fn options(&self) -> controllers::EndpointSliceOptions {
        controllers::EndpointSliceOptions {
            max_endpoints_per_slice: self.max_endpoints_per_slice,
            workers: self.concurrent_service_endpoint_syncs.max(1),
            leader_election: self.leader_elect.then(controllers::LeaseOptions::default),
        }
    }

    fn lb_ipam_options(&self) -> controllers::lbipam::LbIpamOptions {
        let mut o = controllers::lbipam::LbIpamOptions {
            default_pool: self
                .loadbalancer_ip_pool
                .iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            ..Default::default()
        };
        if !self.leader_elect {
            o.leader_election = None;
        }
        o
    }

    /// Whether `--controllers` enables a controller: named, or covered by '*' and not disabled.
    fn enabled(&self, name: &str) -> bool {
        let list = &self.controllers;
        if list.iter().any(|c| c.strip_prefix('-') == Some(name)) {
            return false;
        }
        list.iter().any(|c| c == name || c == "*")
    }

    /// Runs the enabled controllers side by side until shutdown; the first error ends them all.
    async fn run(&self, client: kube::Client) -> anyhow::Result<()> {
        let endpoints = async {
            if !self.enabled("endpointslice") {
                return Ok(());
            }
            controllers::run(client.clone(), self.options(), shutdown_signal())
                .await
                .context("EndpointSlice controller")
        };
        let lb = async {
            if !self.lb_ipam || !self.enabled("lb-ipam") {
                return Ok(());
            }
            controllers::lbipam::run(client.clone(), self.lb_ipam_options(), shutdown_signal())
                .await
                .context("LoadBalancer IPAM controller")
        };
        let mirroring = async {
            if !self.enabled("endpointslicemirroring") {
                return Ok(());
            }
            controllers::mirroring::run(client.clone(), shutdown_signal())
                .await
                .context("EndpointSlice mirroring controller")
        };
        tokio::try_join!(endpoints, lb, mirroring)?;
        Ok(())
    }
}

#[derive(Args, Clone)]
struct ControllersCommandArgs {
    #[command(flatten)]
    cluster: apiclient::ClusterArgs,
    #[command(flatten)]
    controllers: ControllerArgs,
}

#[derive(Args, Clone)]
struct PodArgs {
    /// `ready` or `unready`.
    #[arg(value_parser = ["ready", "unready"])]
    state: String,
    /// The pod's name.
    name: String,
    #[arg(short, long, default_value = "default")]
    namespace: String,
    /// Pod IP(s) to record in status.podIPs (comma-separated), if the pod has none yet.
    #[arg(long)]
    ip: Option<String>,
    #[command(flatten)]
    cluster: apiclient::ClusterArgs,
}

#[derive(Args, Clone)]
struct UpArgs {
    #[command(flatten)]
    api: ApiServerArgs,
    #[command(flatten)]
    dns: DnsArgs,
    /// DNS listen address (UDP and TCP); port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:10053")]
    dns_listen: SocketAddr,
    /// Do not start the cluster DNS server.
    #[arg(long)]
    no_dns: bool,
    #[command(flatten)]
    controllers: ControllerArgs,
}

#[derive(Args, Clone)]
struct DnsCommandArgs {
    #[command(flatten)]
    cluster: apiclient::ClusterArgs,
    /// DNS listen address (UDP and TCP); port 0 picks a free port.
    #[arg(long, default_value = "0.0.0.0:53")]
    dns_listen: SocketAddr,
    /// Address of the /health endpoint (CoreDNS: :8080).
    #[arg(long, default_value = "0.0.0.0:8080")]
    health_bind_address: SocketAddr,
    /// Address of the /ready endpoint (CoreDNS: :8181).
    #[arg(long, default_value = "0.0.0.0:8181")]
    ready_bind_address: SocketAddr,
    /// Address of the Prometheus /metrics endpoint (CoreDNS: :9153).
    #[arg(long, default_value = "0.0.0.0:9153")]
    metrics_bind_address: SocketAddr,
    #[command(flatten)]
    dns: DnsArgs,
}

/// DNS settings shared by `up` and `dns`.
#[derive(Args, Clone)]
struct DnsArgs {
    /// The cluster's DNS zone.
    #[arg(long, default_value = "cluster.local")]
    cluster_domain: String,
    /// TTL of the answers, in seconds (CoreDNS's default is 5).
    #[arg(long, default_value_t = 5)]
    ttl: u32,
    /// Pod A records (a-b-c-d.ns.pod.zone): disabled, insecure or verified, as CoreDNS's `pods` option.
    #[arg(long, default_value = "disabled")]
    pods: dns::PodMode,
    /// Upstream DNS servers for names outside the zone: ip[:port], or the path of a resolv.conf (repeatable).
    /// Without it nothing is forwarded: names outside the zone are REFUSED.
    #[arg(long)]
    upstream: Vec<String>,
    /// Clients (CIDRs) for which names outside the zone are forwarded; default loopback and private ranges.
    #[arg(long, value_delimiter = ',')]
    allow_forward_from: Vec<ipnet::IpNet>,
}

impl DnsArgs {
    fn apply(&self, o: &mut dns::DnsOptions) {
        o.cluster_domain = self.cluster_domain.clone();
        o.ttl = self.ttl;
        o.pods = self.pods;
        o.upstream = self.upstream.clone();
        if !self.allow_forward_from.is_empty() {
            o.allow_forward_from = self.allow_forward_from.clone();
        }
    }
}

#[derive(Args, Clone)]
struct ApiServerArgs {
    /// Directory for the store, the CA and serving certificate, the admin token and the kubeconfig.
    #[arg(long, default_value = "/var/lib/svcplane")]
    data_dir: PathBuf,
    /// Address to listen on for HTTPS.
    #[arg(long, default_value = "127.0.0.1")]
    bind_address: IpAddr,
    /// Port to listen on for HTTPS; 0 picks a free port (the kubeconfig names the one chosen).
    #[arg(long, default_value_t = 6443)]
    secure_port: u16,
    /// Address advertised to clients and used as the endpoint of the `kubernetes` Service.
    #[arg(long)]
    advertise_address: Option<IpAddr>,
    /// CIDR(s) cluster IPs are allocated from: one, or two of different families (dual-stack), comma-separated.
    #[arg(long, default_value = "10.96.0.0/12", value_delimiter = ',')]
    service_cluster_ip_range: Vec<ipnet::IpNet>,
    /// Port range NodePorts are allocated from, inclusive.
    #[arg(long, default_value = "30000-32767")]
    service_node_port_range: String,
    /// Extra subject alternative names for the serving certificate (DNS names or IPs), comma-separated.
    #[arg(long, value_delimiter = ',')]
    tls_sans: Vec<String>,
    /// How often store history older than the previous interval is compacted (seconds).
    #[arg(long, default_value_t = 300)]
    etcd_compaction_interval: u64,
    /// Keep state in etcd instead of the embedded store: client URLs, comma-separated
    /// (http://host:port or https://host:port). Several API servers may share one etcd.
    #[arg(long, value_delimiter = ',')]
    etcd_servers: Vec<String>,
    /// Prefix of every key in etcd. Unlike kube-apiserver's default (/registry) so that an etcd shared
    /// with a Kubernetes cluster is not trampled.
    #[arg(long, default_value = "/svcplane")]
    etcd_prefix: String,
    /// CA bundle that signed the etcd servers' certificates (PEM).
    #[arg(long)]
    etcd_cafile: Option<PathBuf>,
    /// Client certificate for etcd (PEM); with --etcd-keyfile.
    #[arg(long)]
    etcd_certfile: Option<PathBuf>,
    /// Client key for etcd (PEM).
    #[arg(long)]
    etcd_keyfile: Option<PathBuf>,
}

impl ApiServerArgs {
    fn config(&self) -> apiserver::Config {
        let mut c = apiserver::Config::new(self.data_dir.clone());
        c.bind_address = self.bind_address;
        c.secure_port = self.secure_port;
        c.advertise_address = self.advertise_address;
        c.service_cluster_ip_range = self.service_cluster_ip_range.clone();
        c.service_node_port_range = self.service_node_port_range.clone();
        c.tls_sans = self.tls_sans.clone();
        c.compaction_interval = Duration::from_secs(self.etcd_compaction_interval.max(1));
        if !self.etcd_servers.is_empty() {
            c.etcd = Some(store::etcd::EtcdConfig {
                servers: self.etcd_servers.clone(),
                prefix: self.etcd_prefix.clone(),
                ca_file: self.etcd_cafile.clone(),
                cert_file: self.etcd_certfile.clone(),
                key_file: self.etcd_keyfile.clone(),
            });
        }
        c
    }
}

async fn start_apiserver(args: &ApiServerArgs) -> anyhow::Result<apiserver::Running> {
    let running = apiserver::start(args.config())
        .await
        .context("starting the API server")?;
    eprintln!(
        "svcplane API server at {} (kubeconfig: {})",
        running.url,
        running.kubeconfig.display()
    );
    Ok(running)
}

async fn client_from(kubeconfig: Option<&std::path::Path>) -> anyhow::Result<kube::Client> {
    apiclient::client_for(kubeconfig, &[]).await
}

async fn run_up(args: &UpArgs) -> anyhow::Result<()> {
    let running = start_apiserver(&args.api).await?;
    let client = client_from(Some(&running.kubeconfig)).await?;
    let ctl_args = args.controllers.clone();
    let ctl_client = client.clone();
    let ctl = tokio::spawn(async move { ctl_args.run(ctl_client).await });
    if args.no_dns {
        ctl.await??;
        return Ok(());
    }
    let mut opts = dns::DnsOptions {
        listen: args.dns_listen,
        ..Default::default()
    };
    args.dns.apply(&mut opts);
    opts.allow_forward_from
        .extend(args.api.service_cluster_ip_range.iter().copied());
    serve_dns(client, opts).await
}

async fn run_dns(args: &DnsCommandArgs) -> anyhow::Result<()> {
    let client = args.cluster.client().await?;
    let mut opts = dns::DnsOptions::standalone();
    opts.listen = args.dns_listen;
    opts.health = Some(args.health_bind_address);
    opts.ready = Some(args.ready_bind_address);
    opts.metrics = Some(args.metrics_bind_address);
    args.dns.apply(&mut opts);
    serve_dns(client, opts).await
}

/// Binds the DNS server, announces its address (tests read that line) and serves until shutdown.
async fn serve_dns(client: kube::Client, opts: dns::DnsOptions) -> anyhow::Result<()> {
    let server = dns::DnsServer::bind(opts)
        .await
        .context("starting the DNS server")?;
    eprintln!("svcplane DNS at {} (udp+tcp)", server.addrs().dns);
    server
        .run(client, shutdown_signal())
        .await
        .context("DNS server")?;
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&cli.log))
        .with_writer(std::io::stderr)
        .init();
    // The lab drives processes and namespaces synchronously (its kubelet makes its own runtime).
    if let Command::Lab(args) = cli.command {
        return lab::run(args);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        match cli.command {
            Command::Up(a) => run_up(&a).await,
            Command::Apiserver(a) => {
                start_apiserver(&a).await?;
                shutdown_signal().await;
                Ok(())
            }
            Command::Dns(a) => run_dns(&a).await,
            Command::Controllers(a) => {
                let client = a.cluster.client().await?;
                a.controllers.run(client).await
            }
            Command::Pod(a) => {
                let client = a.cluster.client().await?;
                let ready = a.state == "ready";
                controllers::set_pod_ready(&client, &a.namespace, &a.name, ready, a.ip.as_deref())
                    .await
                    .context("setting pod readiness")?;
                println!("pod/{} {}", a.name, a.state);
                Ok(())
            }
            Command::Agent(a) => agent_cmd::run(a).await,
            Command::Echo(a) => echo::run(a).await,
            Command::Lab(_) => unreachable!("handled before the runtime starts"),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        c: ControllerArgs,
    }

    fn enabled(args: &[&str]) -> Vec<&'static str> {
        let w = Wrap::try_parse_from(std::iter::once("x").chain(args.iter().copied()))
            .expect("valid flags");
        CONTROLLER_NAMES
            .into_iter()
            .filter(|n| w.c.enabled(n))
            .collect()
    }

    #[test]
    fn controllers_flag_follows_kube_controller_manager() {
        assert_eq!(enabled(&[]), CONTROLLER_NAMES);
        assert_eq!(enabled(&["--controllers=lb-ipam"]), ["lb-ipam"]);
        assert_eq!(
            enabled(&["--controllers=*,-endpointslicemirroring"]),
            ["endpointslice", "lb-ipam"]
        );
        assert!(Wrap::try_parse_from(["x", "--controllers=nope"]).is_err());
    }
}
