//! The network loop: DNS over UDP and TCP (RFC 1035 §4.2, RFC 7766 length-prefixed framing) on sockets the
//! caller binds, answering from an [`Index`].

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::answer::{Outcome, Scratch, Transport};
use crate::index::Index;
use crate::metrics::{qtype_of, Metrics};

/// A query the zone cannot answer alone, handed to the upstream step.
pub struct ForwardRequest {
    /// The query as received.
    pub query: Vec<u8>,
    /// The reply we would send on our own: REFUSED for [`Outcome::NotInZone`], the CNAME alone for
    /// [`Outcome::ReplyExternalCname`].
    pub local_reply: Vec<u8>,
    pub outcome: Outcome,
    pub peer: SocketAddr,
    pub transport: Transport,
}

/// The hook for forwarding to upstream resolvers. It decides itself whether `peer` may use it (the open-resolver
/// rule) and must return a reply that fits the transport (UDP size, truncation); `None` sends the local reply.
pub trait Forwarder: Send + Sync + 'static {
    fn forward(
        &self,
        req: ForwardRequest,
    ) -> Pin<Box<dyn Future<Output = Option<Vec<u8>>> + Send + 'static>>;
}

#[derive(Clone)]
pub struct ServeOptions {
    /// Tasks receiving on each UDP socket; defaults to the number of cores.
    pub udp_workers: usize,
    /// A TCP connection with no complete query for this long is closed.
    pub tcp_idle_timeout: Duration,
    /// Connections beyond this are closed on accept.
    pub max_tcp_connections: usize,
    /// Without one, names outside the zone are REFUSED and ExternalName answers carry the CNAME alone.
    pub forwarder: Option<Arc<dyn Forwarder>>,
    /// Where every reply sent is counted.
    pub metrics: Arc<Metrics>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            udp_workers: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            tcp_idle_timeout: Duration::from_secs(10),
            max_tcp_connections: 1024,
            forwarder: None,
            metrics: Arc::new(Metrics::new()),
        }
    }
}

/// Serves DNS on `udp` and `tcp` until the returned future is dropped (which stops every task it started).
pub async fn serve(index: Arc<Index>, udp: UdpSocket, tcp: TcpListener, opts: ServeOptions) {
    serve_sockets(index, vec![udp], vec![tcp], opts).await
}

/// [`serve`] over several sockets, e.g. one SO_REUSEPORT socket per core.
pub async fn serve_sockets(
    index: Arc<Index>,
    udp: Vec<UdpSocket>,
    tcp: Vec<TcpListener>,
    opts: ServeOptions,
) {
    let mut tasks = JoinSet::new();
    for sock in udp {
        let sock = Arc::new(sock);
        for _ in 0..opts.udp_workers.max(1) {
            tasks.spawn(udp_worker(
                index.clone(),
                sock.clone(),
                opts.forwarder.clone(),
                opts.metrics.clone(),
            ));
        }
    }
    let slots = Arc::new(Semaphore::new(opts.max_tcp_connections.max(1)));
    for listener in tcp {
        tasks.spawn(tcp_acceptor(
            index.clone(),
            listener,
            opts.clone(),
            slots.clone(),
        ));
    }
    while tasks.join_next().await.is_some() {}
}

/// Largest DNS message; also what a UDP datagram can carry.
const MAX_MESSAGE: usize = 65535;

async fn udp_worker(
    index: Arc<Index>,
    sock: Arc<UdpSocket>,
    forwarder: Option<Arc<dyn Forwarder>>,
    metrics: Arc<Metrics>,
) {
    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut out = Vec::with_capacity(4096);
    let mut scratch = Scratch::default();
    let mut forwards = JoinSet::new();
    loop {
        while forwards.try_join_next().is_some() {}
        let (len, peer) = match sock.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                // ICMP errors from earlier sends surface here on some systems; none of them ends the socket.
                tracing::debug!(error = %e, "udp receive");
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            }
        };
        let started = Instant::now();
        let query = &buf[..len];
        let qtype = qtype_of(query);
        let outcome = index.respond(query, Transport::Udp, &mut out, &mut scratch);
        match (outcome, &forwarder) {
            (Outcome::Drop, _) => continue,
            (Outcome::NotInZone | Outcome::ReplyExternalCname, Some(f)) => {
                let req = ForwardRequest {
                    query: query.to_vec(),
                    local_reply: out.clone(),
                    outcome,
                    peer,
                    transport: Transport::Udp,
                };
                let fut = f.forward(req);
                let local = out.clone();
                let sock = sock.clone();
                let metrics = metrics.clone();
                forwards.spawn(async move {
                    let reply = fut.await.unwrap_or(local);
                    if let Err(e) = sock.send_to(&reply, peer).await {
                        tracing::debug!(error = %e, %peer, "udp send");
                    }
                    metrics.observe(qtype, &reply, Transport::Udp, started.elapsed());
                });
            }
            _ => {
                if let Err(e) = sock.send_to(&out, peer).await {
                    tracing::debug!(error = %e, %peer, "udp send");
                }
                metrics.observe(qtype, &out, Transport::Udp, started.elapsed());
            }
        }
    }
}

async fn tcp_acceptor(
    index: Arc<Index>,
    listener: TcpListener,
    opts: ServeOptions,
    slots: Arc<Semaphore>,
) {
    let mut conns = JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of descriptors and the like: back off rather than spin.
                tracing::warn!(error = %e, "tcp accept");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "too many tcp connections; closing");
            continue;
        };
        let index = index.clone();
        let opts = opts.clone();
        conns.spawn(async move {
            if let Err(e) = tcp_connection(&index, stream, peer, &opts).await {
                tracing::debug!(error = %e, %peer, "tcp connection");
            }
            drop(permit);
        });
    }
}

/// Answers queries on one connection in order until the client closes it or stays idle.
async fn tcp_connection(
    index: &Index,
    mut stream: TcpStream,
    peer: SocketAddr,
    opts: &ServeOptions,
) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut out = Vec::with_capacity(4096);
    let mut frame = Vec::with_capacity(4096);
    let mut scratch = Scratch::default();
    let idle = opts.tcp_idle_timeout;
    loop {
        let len = match tokio::time::timeout(idle, stream.read_u16()).await {
            Ok(Ok(len)) => len as usize,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(Err(e)) => return Err(e),
            Err(_) => return Ok(()),
        };
        match tokio::time::timeout(idle, stream.read_exact(&mut buf[..len])).await {
            Ok(r) => r?,
            Err(_) => return Ok(()),
        };
        let started = Instant::now();
        let query = &buf[..len];
        let outcome = index.respond(query, Transport::Tcp, &mut out, &mut scratch);
        let reply: &[u8] = match (outcome, &opts.forwarder) {
            (Outcome::Drop, _) => continue,
            (Outcome::NotInZone | Outcome::ReplyExternalCname, Some(f)) => {
                let req = ForwardRequest {
                    query: query.to_vec(),
                    local_reply: out.clone(),
                    outcome,
                    peer,
                    transport: Transport::Tcp,
                };
                if let Some(upstream) = f.forward(req).await {
                    out = upstream;
                }
                &out
            }
            _ => &out,
        };
        let Ok(n) = u16::try_from(reply.len()) else {
            continue;
        };
        frame.clear();
        frame.extend_from_slice(&n.to_be_bytes());
        frame.extend_from_slice(reply);
        stream.write_all(&frame).await?;
        opts.metrics
            .observe(qtype_of(query), reply, Transport::Tcp, started.elapsed());
    }
}
