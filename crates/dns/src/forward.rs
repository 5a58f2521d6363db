//! Names outside the zone, and ExternalName targets outside it, resolved through upstream servers: UDP first,
//! TCP when the UDP reply is truncated, replies cached for their TTL ([`crate::cache`]), and only for clients
//! in the allow-list, so that a server bound to a public address is not an open resolver.
//!
//! Upstreams are tried in turn starting from a rotating one (CoreDNS's `forward` picks at random); a failed
//! exchange moves on to the next. When all fail the client gets SERVFAIL, as CoreDNS gives it.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};
use ipnet::IpNet;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use crate::answer::{Outcome, Transport};
use crate::cache::{Cache, Key};
use crate::metrics::Metrics;
use crate::server::{ForwardRequest, Forwarder};

/// The EDNS0 buffer size we advertise upstream and to clients (the DNS flag day 2020 value).
const EDNS_SIZE: u16 = 1232;
/// Classic UDP limit for clients without EDNS0.
const MIN_UDP: usize = 512;
/// One exchange with one upstream, UDP and the TCP retry together (CoreDNS's `forward` reads for 2 s).
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(2);
/// Forwarded queries in flight at once; beyond this the client gets the local reply (REFUSED), as CoreDNS's
/// `max_concurrent` does, so that a flood of names outside the zone cannot pile up sockets and tasks.
const MAX_CONCURRENT: usize = 1000;

#[derive(Debug, thiserror::Error)]
enum ExchangeError {
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("encoding the query: {0}")]
    Encode(String),
    #[error("reply does not parse or does not match the query")]
    BadReply,
    #[error("no upstream configured")]
    NoUpstream,
}

/// The [`Forwarder`] that sends queries to `--upstream` servers.
#[derive(Clone)]
pub struct UpstreamForwarder {
    inner: Arc<Inner>,
}

struct Inner {
    upstreams: Vec<SocketAddr>,
    next: AtomicUsize,
    in_flight: AtomicUsize,
    allow: Vec<IpNet>,
    cache: Cache,
    metrics: Arc<Metrics>,
}

impl UpstreamForwarder {
    /// `cache_capacity` counts replies (0 turns the cache off); `allow` lists the client networks served.
    pub fn new(
        upstreams: Vec<SocketAddr>,
        allow: Vec<IpNet>,
        cache_capacity: usize,
        metrics: Arc<Metrics>,
    ) -> UpstreamForwarder {
        UpstreamForwarder {
            inner: Arc::new(Inner {
                upstreams,
                next: AtomicUsize::new(0),
                in_flight: AtomicUsize::new(0),
                allow,
                cache: Cache::new(cache_capacity),
                metrics,
            }),
        }
    }

    pub fn cache_len(&self) -> usize {
        self.inner.cache.len()
    }

    /// Whether a client at `ip` may have names outside the zone resolved.
    pub fn allows(&self, ip: IpAddr) -> bool {
        allowed(&self.inner.allow, ip)
    }
}

pub(crate) fn allowed(allow: &[IpNet], ip: IpAddr) -> bool {
    // A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d.
    let ip = ip.to_canonical();
    allow.iter().any(|n| n.contains(&ip))
}

impl Forwarder for UpstreamForwarder {
    fn forward(
        &self,
        req: ForwardRequest,
    ) -> Pin<Box<dyn Future<Output = Option<Vec<u8>>> + Send + 'static>> {
        let inner = self.inner.clone();
        Box::pin(async move { inner.handle(req).await })
    }
}

/// One forwarded query counted against [`MAX_CONCURRENT`], released however the query ends.
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn take(counter: &'a AtomicUsize) -> Option<InFlight<'a>> {
        if counter.fetch_add(1, Ordering::AcqRel) >= MAX_CONCURRENT {
            counter.fetch_sub(1, Ordering::AcqRel);
            tracing::debug!("too many forwarded queries in flight; refusing");
            return None;
        }
        Some(InFlight(counter))
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Inner {
    async fn handle(&self, req: ForwardRequest) -> Option<Vec<u8>> {
        if !allowed(&self.allow, req.peer.ip()) {
            if req.outcome == Outcome::NotInZone {
                self.metrics.not_allowed();
            }
            return None;
        }
        let _slot = InFlight::take(&self.in_flight)?;
        self.handle_allowed(req).await
    }

    async fn handle_allowed(&self, req: ForwardRequest) -> Option<Vec<u8>> {
        let query = Message::from_vec(&req.query).ok()?;
        let q = query.queries.first()?.clone();
        let dnssec_ok = query.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok);
        let cd = query.metadata.checking_disabled;
        let limit = match req.transport {
            Transport::Udp => query
                .edns
                .as_ref()
                .map(|e| usize::from(e.max_payload()).max(MIN_UDP))
                .unwrap_or(MIN_UDP),
            Transport::Tcp => usize::from(u16::MAX),
        };
        match req.outcome {
            Outcome::NotInZone => {
                let reply = match self
                    .resolve(&q.name, q.query_type, q.query_class, dnssec_ok, cd)
                    .await
                {
                    Ok(up) => client_reply(&query, up, dnssec_ok),
                    Err(e) => {
                        tracing::debug!(error = %e, name = %q.name, "forwarding failed");
                        let mut m = client_reply(&query, Message::query(), dnssec_ok);
                        m.metadata.response_code = ResponseCode::ServFail;
                        m
                    }
                };
                encode_fit(reply, limit)
            }
            Outcome::ReplyExternalCname => {
                let mut local = Message::from_vec(&req.local_reply).ok()?;
                let target = local.answers.iter().rev().find_map(|r| match &r.data {
                    RData::CNAME(c) => Some(c.0.clone()),
                    _ => None,
                })?;
                // The CNAME alone stands when the target has nothing (CoreDNS appends what it finds).
                let up = match self
                    .resolve(&target, q.query_type, q.query_class, dnssec_ok, cd)
                    .await
                {
                    Ok(up) => up,
                    Err(e) => {
                        tracing::debug!(error = %e, %target, "resolving an ExternalName target failed");
                        return None;
                    }
                };
                if up.metadata.response_code != ResponseCode::NoError || up.answers.is_empty() {
                    return None;
                }
                local.answers.extend(up.answers);
                encode_fit(local, limit)
            }
            Outcome::Reply | Outcome::Drop => None,
        }
    }

    async fn resolve(
        &self,
        name: &Name,
        qtype: RecordType,
        qclass: DNSClass,
        dnssec_ok: bool,
        cd: bool,
    ) -> Result<Message, ExchangeError> {
        let key = Key {
            name: name.to_lowercase().to_ascii(),
            qtype: qtype.into(),
            qclass: qclass.into(),
            dnssec_ok,
            checking_disabled: cd,
        };
        if let Some((m, kind)) = self.cache.get(&key, Instant::now()) {
            self.metrics.cache_hit(kind);
            return Ok(m);
        }
        self.metrics.cache_miss();
        let m = self
            .exchange_any(name, qtype, qclass, dnssec_ok, cd)
            .await?;
        self.cache.insert(key, &m, Instant::now());
        Ok(m)
    }

    async fn exchange_any(
        &self,
        name: &Name,
        qtype: RecordType,
        qclass: DNSClass,
        dnssec_ok: bool,
        cd: bool,
    ) -> Result<Message, ExchangeError> {
        let n = self.upstreams.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut last = ExchangeError::NoUpstream;
        for i in 0..n {
            let addr = self.upstreams[(start + i) % n];
            self.metrics.forward_request();
            let result = tokio::time::timeout(
                EXCHANGE_TIMEOUT,
                exchange(addr, name, qtype, qclass, dnssec_ok, cd),
            )
            .await
            .unwrap_or(Err(ExchangeError::Timeout(EXCHANGE_TIMEOUT)));
            match result {
                Ok(m) => return Ok(m),
                Err(e) => {
                    tracing::debug!(error = %e, upstream = %addr, "upstream exchange failed");
                    self.metrics.forward_error();
                    last = e;
                }
            }
        }
        Err(last)
    }
}

/// The reply to the client: the upstream's sections under the client's header and question (echoed as sent).
fn client_reply(query: &Message, up: Message, dnssec_ok: bool) -> Message {
    let mut m = Message::new(
        query.metadata.id,
        MessageType::Response,
        query.metadata.op_code,
    );
    m.metadata.recursion_desired = query.metadata.recursion_desired;
    m.metadata.recursion_available = up.metadata.recursion_available;
    m.metadata.authentic_data = up.metadata.authentic_data && dnssec_ok;
    m.metadata.checking_disabled = query.metadata.checking_disabled;
    m.metadata.response_code = up.metadata.response_code;
    m.queries = query.queries.clone();
    m.answers = up.answers;
    m.authorities = up.authorities;
    m.additionals = up.additionals;
    if query.edns.is_some() {
        let mut e = Edns::new();
        e.set_max_payload(EDNS_SIZE);
        e.set_dnssec_ok(dnssec_ok);
        m.set_edns(e);
    }
    m
}

/// Encodes `m` within `limit` bytes: without the additional section if that is enough, else header and
/// question only with TC=1 so that the client asks again over TCP.
fn encode_fit(mut m: Message, limit: usize) -> Option<Vec<u8>> {
    let bytes = m.to_vec().ok()?;
    if bytes.len() <= limit {
        return Some(bytes);
    }
    if !m.additionals.is_empty() {
        m.additionals.clear();
        if let Ok(b) = m.to_vec() {
            if b.len() <= limit {
                return Some(b);
            }
        }
    }
    m.truncate().to_vec().ok()
}

async fn exchange(
    addr: SocketAddr,
    name: &Name,
    qtype: RecordType,
    qclass: DNSClass,
    dnssec_ok: bool,
    cd: bool,
) -> Result<Message, ExchangeError> {
    let mut q = Message::new(rand::random(), MessageType::Query, OpCode::Query);
    q.metadata.recursion_desired = true;
    q.metadata.checking_disabled = cd;
    let mut question = Query::query(name.clone(), qtype);
    question.set_query_class(qclass);
    q.add_query(question);
    let mut e = Edns::new();
    e.set_max_payload(EDNS_SIZE);
    e.set_dnssec_ok(dnssec_ok);
    q.set_edns(e);
    let bytes = q
        .to_vec()
        .map_err(|e| ExchangeError::Encode(e.to_string()))?;
    let reply = udp_exchange(addr, &bytes, &q).await?;
    if reply.metadata.truncation {
        return tcp_exchange(addr, &bytes, &q).await;
    }
    Ok(reply)
}

/// The reply if `buf` answers `q` (same id, a response, same question); anything else is ignored, so a stray
/// or spoofed datagram cannot stand in for the answer.
fn matching(buf: &[u8], q: &Message) -> Option<Message> {
    let m = Message::from_vec(buf).ok()?;
    let same = m.metadata.id == q.metadata.id
        && m.metadata.message_type == MessageType::Response
        && m.queries.len() == 1
        && q.queries.first().is_some_and(|want| {
            let got = &m.queries[0];
            got.name == want.name
                && got.query_type == want.query_type
                && got.query_class == want.query_class
        });
    same.then_some(m)
}

async fn udp_exchange(
    addr: SocketAddr,
    bytes: &[u8],
    q: &Message,
) -> Result<Message, ExchangeError> {
    // A fresh socket per query: a random source port, and replies that cannot be confused with another query's.
    let local: SocketAddr = match addr {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let sock = UdpSocket::bind(local).await?;
    sock.connect(addr).await?;
    sock.send(bytes).await?;
    let mut buf = vec![0u8; usize::from(u16::MAX)];
    loop {
        let n = sock.recv(&mut buf).await?;
        if let Some(m) = matching(&buf[..n], q) {
            return Ok(m);
        }
    }
}

async fn tcp_exchange(
    addr: SocketAddr,
    bytes: &[u8],
    q: &Message,
) -> Result<Message, ExchangeError> {
    let mut s = TcpStream::connect(addr).await?;
    let len = u16::try_from(bytes.len()).map_err(|_| ExchangeError::BadReply)?;
    let mut frame = Vec::with_capacity(bytes.len() + 2);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(bytes);
    s.write_all(&frame).await?;
    let n = s.read_u16().await?;
    let mut buf = vec![0u8; usize::from(n)];
    s.read_exact(&mut buf).await?;
    matching(&buf, q).ok_or(ExchangeError::BadReply)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::A;
    use hickory_proto::rr::Record;

    #[test]
    fn allow_list_matches_mapped_addresses() {
        let allow: Vec<IpNet> = vec!["127.0.0.1/32".parse().unwrap(), "fd00::/8".parse().unwrap()];
        assert!(allowed(&allow, "127.0.0.1".parse().unwrap()));
        assert!(allowed(&allow, "::ffff:127.0.0.1".parse().unwrap()));
        assert!(allowed(&allow, "fd00::5".parse().unwrap()));
        assert!(!allowed(&allow, "127.0.0.2".parse().unwrap()));
        assert!(!allowed(&[], "127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn oversized_replies_lose_glue_then_set_tc() {
        let mut m = Message::new(7, MessageType::Response, OpCode::Query);
        m.add_query(Query::query(
            Name::from_ascii("big.example.").unwrap(),
            RecordType::A,
        ));
        for i in 0..40u8 {
            m.add_answer(Record::from_rdata(
                Name::from_ascii("big.example.").unwrap(),
                60,
                RData::A(A::new(192, 0, 2, i)),
            ));
        }
        let full = encode_fit(m.clone(), 65535).unwrap();
        assert_eq!(Message::from_vec(&full).unwrap().answers.len(), 40);
        let cut = Message::from_vec(&encode_fit(m, 512).unwrap()).unwrap();
        assert!(cut.metadata.truncation);
        assert!(cut.answers.is_empty());
        assert_eq!(cut.queries.len(), 1);
    }
}
