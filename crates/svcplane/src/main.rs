//! `svcplane`: one binary for every component of svcplane. `up` runs the API server with its embedded
//! store (and, as they land, the controllers and DNS) on one machine; each component also has a
//! subcommand of its own.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

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
    /// Run everything on this machine: the API server with its embedded store.
    Up(ApiServerArgs),
    /// Run the Kubernetes-compatible API server alone.
    Apiserver(ApiServerArgs),
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
        c
    }
}

async fn run_apiserver(args: &ApiServerArgs) -> anyhow::Result<()> {
    let running = apiserver::start(args.config())
        .await
        .context("starting the API server")?;
    eprintln!(
        "svcplane API server at {} (kubeconfig: {})",
        running.url,
        running.kubeconfig.display()
    );
    shutdown_signal().await;
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
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        match cli.command {
            Command::Up(a) | Command::Apiserver(a) => run_apiserver(&a).await,
        }
    })
}
