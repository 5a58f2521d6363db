//! `svcplane echo`: the lab's pod workload, in the spirit of agnhost's netexec. HTTP `/hostname` (the pod's
//! name) and `/clientip` (the source address and port it saw), TCP echo, and UDP that answers `hostname` and
//! `clientip` datagrams and echoes anything else, so tests see which pod answered and from where.

use std::net::{Ipv6Addr, SocketAddr};
use std::sync::Arc;

use anyhow::Context;
use axum::extract::{ConnectInfo, State};
use axum::routing::get;
use axum::Router;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

#[derive(clap::Args, Clone)]
pub struct EchoArgs {
    /// The name `/hostname` answers (default: the host name).
    #[arg(long)]
    name: Option<String>,
    /// HTTP port; 0 picks a free port.
    #[arg(long, default_value_t = 8080)]
    http_port: u16,
    /// TCP echo port; 0 picks a free port.
    #[arg(long, default_value_t = 9000)]
    tcp_port: u16,
    /// UDP echo port; 0 picks a free port.
    #[arg(long, default_value_t = 9000)]
    udp_port: u16,
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// Dual-stack when the kernel allows it ([::] also takes IPv4), else IPv4 only.
async fn tcp(port: u16) -> std::io::Result<TcpListener> {
    match TcpListener::bind(SocketAddr::from((Ipv6Addr::UNSPECIFIED, port))).await {
        Ok(l) => Ok(l),
        Err(_) => TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], port))).await,
    }
}

async fn udp(port: u16) -> std::io::Result<UdpSocket> {
    match UdpSocket::bind(SocketAddr::from((Ipv6Addr::UNSPECIFIED, port))).await {
        Ok(s) => Ok(s),
        Err(_) => UdpSocket::bind(SocketAddr::from(([0, 0, 0, 0], port))).await,
    }
}

/// The address as the client sees it: an IPv4 client on a dual-stack socket shows as ::ffff:a.b.c.d.
fn plain(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::from((v4, v6.port())),
            None => addr,
        },
        v4 => v4,
    }
}

pub async fn run(args: EchoArgs) -> anyhow::Result<()> {
    let name = Arc::new(args.name.clone().unwrap_or_else(host_name));
    let http = tcp(args.http_port).await.context("binding the HTTP port")?;
    let echo = tcp(args.tcp_port)
        .await
        .context("binding the TCP echo port")?;
    let dgram = udp(args.udp_port).await.context("binding the UDP port")?;
    eprintln!(
        "svcplane echo {name}: http {}, tcp {}, udp {}",
        http.local_addr()?,
        echo.local_addr()?,
        dgram.local_addr()?
    );
    let app = Router::new()
        .route(
            "/hostname",
            get(|State(n): State<Arc<String>>| async move { n.to_string() }),
        )
        .route(
            "/clientip",
            get(
                |ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { plain(peer).to_string() },
            ),
        )
        .route("/healthz", get(|| async { "ok" }))
        .with_state(name.clone());
    let http_task = axum::serve(
        http,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    );
    let tcp_task = async move {
        loop {
            let Ok((mut conn, _)) = echo.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                while let Ok(n) = conn.read(&mut buf).await {
                    if n == 0 || conn.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    };
    let udp_name = name.clone();
    let udp_task = async move {
        let mut buf = vec![0u8; 65536];
        loop {
            let Ok((n, peer)) = dgram.recv_from(&mut buf).await else {
                continue;
            };
            let reply = match std::str::from_utf8(&buf[..n]).map(str::trim) {
                Ok("hostname") => udp_name.as_bytes().to_vec(),
                Ok("clientip") => plain(peer).to_string().into_bytes(),
                _ => buf[..n].to_vec(),
            };
            let _ = dgram.send_to(&reply, peer).await;
        }
    };
    tokio::select! {
        r = http_task => r.context("HTTP server")?,
        _ = tcp_task => {}
        _ = udp_task => {}
        _ = crate::shutdown_signal() => {}
    }
    Ok(())
}
