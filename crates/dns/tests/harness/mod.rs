//! Real parts for the cluster tests: the API server in-process, a small upstream DNS server on loopback (written
//! with hickory-proto, independent of our encoder), dig, a raw HTTP GET, and a TCP relay that can hold back or
//! cut the DNS server's connections to the API server.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::Command;
use tokio::sync::watch;

pub const DIG: &str = "/usr/bin/dig";

pub fn dig_installed() -> bool {
    let ok = Path::new(DIG).exists();
    if !ok {
        eprintln!(
            "SKIPPED: {DIG} is not installed (Debian package bind9-dnsutils); dig checks not run"
        );
    }
    ok
}

pub struct Api {
    pub running: apiserver::Running,
    _dir: tempfile::TempDir,
}

impl Api {
    pub async fn start() -> Api {
        let dir = tempfile::tempdir().unwrap();
        let running = apiserver::start(apiserver::Config {
            secure_port: 0,
            ..apiserver::Config::new(dir.path().to_path_buf())
        })
        .await
        .unwrap();
        Api { running, _dir: dir }
    }

    pub async fn config(&self) -> kube::Config {
        let kc = Kubeconfig::read_from(&self.running.kubeconfig).unwrap();
        kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .unwrap()
    }

    pub async fn client(&self) -> kube::Client {
        kube::Client::try_from(self.config().await).unwrap()
    }
}

/// What the upstream saw: (transport, lowercase name) per query.
pub type Seen = Arc<Mutex<Vec<(&'static str, String)>>>;

/// A small recursive-resolver stand-in on 127.0.0.1: a fixed zone, EDNS-aware truncation over UDP.
pub struct Upstream {
    pub addr: SocketAddr,
    pub seen: Seen,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Names the upstream knows: `example.org` (one A, TTL 300), `www.example.com` (ExternalName target),
/// `big.example.org` (100 A records: more than 1232 bytes), `short.example.org` (TTL 1); anything else under
/// `example.org` is NXDOMAIN with an SOA (minimum 60), and a name elsewhere is REFUSED.
fn upstream_answer(q: &Message) -> Message {
    let mut m = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
    m.metadata.recursion_desired = q.metadata.recursion_desired;
    m.metadata.recursion_available = true;
    m.queries = q.queries.clone();
    if q.edns.is_some() {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        m.set_edns(e);
    }
    let Some(question) = q.queries.first() else {
        m.metadata.response_code = ResponseCode::FormErr;
        return m;
    };
    let name = question.name.to_lowercase().to_ascii();
    let a =
        |ttl: u32, ip: Ipv4Addr| Record::from_rdata(question.name.clone(), ttl, RData::A(A(ip)));
    let is_a = question.query_type == RecordType::A;
    match name.as_str() {
        "example.org." if is_a => {
            m.add_answer(a(300, Ipv4Addr::new(192, 0, 2, 10)));
        }
        "www.example.com." if is_a => {
            m.add_answer(a(300, Ipv4Addr::new(192, 0, 2, 20)));
        }
        "short.example.org." if is_a => {
            m.add_answer(a(1, Ipv4Addr::new(192, 0, 2, 30)));
        }
        "big.example.org." if is_a => {
            for i in 1..=100u8 {
                m.add_answer(a(300, Ipv4Addr::new(192, 0, 2, i)));
            }
        }
        "example.org." | "www.example.com." | "short.example.org." | "big.example.org." => {
            m.add_authority(soa());
        }
        n if n.ends_with(".example.org.") => {
            m.metadata.response_code = ResponseCode::NXDomain;
            m.add_authority(soa());
        }
        _ => m.metadata.response_code = ResponseCode::Refused,
    }
    m
}

fn soa() -> Record {
    let soa = SOA::new(
        Name::from_ascii("ns.example.org.").unwrap(),
        Name::from_ascii("hostmaster.example.org.").unwrap(),
        1,
        7200,
        1800,
        86400,
        60,
    );
    Record::from_rdata(
        Name::from_ascii("example.org.").unwrap(),
        3600,
        RData::SOA(soa),
    )
}

impl Upstream {
    pub async fn start() -> Upstream {
        let (udp, tcp) = dns::bind_dns(([127, 0, 0, 1], 0).into()).await.unwrap();
        let addr = udp.local_addr().unwrap();
        let seen: Seen = Arc::default();
        let s1 = seen.clone();
        let udp_task = tokio::spawn(async move {
            let mut buf = vec![0u8; 65535];
            loop {
                let Ok((n, peer)) = udp.recv_from(&mut buf).await else {
                    continue;
                };
                let Ok(q) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                if let Some(question) = q.queries.first() {
                    s1.lock()
                        .unwrap()
                        .push(("udp", question.name.to_lowercase().to_ascii()));
                }
                let reply = upstream_answer(&q);
                let mut bytes = reply.to_vec().unwrap();
                let limit = q
                    .edns
                    .as_ref()
                    .map(|e| e.max_payload().max(512))
                    .unwrap_or(512);
                if bytes.len() > limit as usize {
                    bytes = reply.truncate().to_vec().unwrap();
                }
                let _ = udp.send_to(&bytes, peer).await;
            }
        });
        let s2 = seen.clone();
        let tcp_task = tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = tcp.accept().await else {
                    continue;
                };
                let seen = s2.clone();
                tokio::spawn(async move {
                    while let Ok(len) = s.read_u16().await {
                        let mut buf = vec![0u8; len as usize];
                        if s.read_exact(&mut buf).await.is_err() {
                            return;
                        }
                        let Ok(q) = Message::from_vec(&buf) else {
                            return;
                        };
                        if let Some(question) = q.queries.first() {
                            seen.lock()
                                .unwrap()
                                .push(("tcp", question.name.to_lowercase().to_ascii()));
                        }
                        let bytes = upstream_answer(&q).to_vec().unwrap();
                        let mut frame = (bytes.len() as u16).to_be_bytes().to_vec();
                        frame.extend_from_slice(&bytes);
                        if s.write_all(&frame).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Upstream {
            addr,
            seen,
            tasks: vec![udp_task, tcp_task],
        }
    }

    pub fn count(&self, transport: &str, name: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, n)| *t == transport && n == name)
            .count()
    }
}

/// dig's reply, split into what the tests look at.
#[derive(Debug)]
pub struct Dig {
    pub raw: String,
    pub status: String,
    pub flags: Vec<String>,
    pub question: Vec<String>,
    pub answer: Vec<String>,
    pub authority: Vec<String>,
    pub additional: Vec<String>,
}

impl Dig {
    /// Answer records reduced to "type value" (owner and TTL dropped), sorted.
    pub fn values(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .answer
            .iter()
            .map(|l| l.split_whitespace().skip(3).collect::<Vec<_>>().join(" "))
            .collect();
        v.sort();
        v
    }

    pub fn authority_types(&self) -> Vec<String> {
        self.authority
            .iter()
            .filter_map(|l| l.split_whitespace().nth(3).map(str::to_string))
            .collect()
    }
}

/// Runs dig against `server` with `args` (the name, type, options), one try, short timeout.
pub async fn dig(server: SocketAddr, args: &[&str]) -> Dig {
    let port = server.port().to_string();
    let at = format!("@{}", server.ip());
    let mut cmd = Command::new(DIG);
    cmd.args([at.as_str(), "-p", port.as_str(), "+time=3", "+tries=1"]);
    cmd.args(args);
    let out = cmd.output().await.unwrap();
    let raw = String::from_utf8_lossy(&out.stdout).into_owned();
    parse_dig(raw)
}

fn parse_dig(raw: String) -> Dig {
    let mut d = Dig {
        status: String::new(),
        flags: Vec::new(),
        question: Vec::new(),
        answer: Vec::new(),
        authority: Vec::new(),
        additional: Vec::new(),
        raw: String::new(),
    };
    let mut section = "";
    for line in raw.lines() {
        if let Some(rest) = line.split("status: ").nth(1) {
            d.status = rest.split(',').next().unwrap_or("").to_string();
        }
        if let Some(rest) = line.strip_prefix(";; flags: ") {
            let flags = rest.split(';').next().unwrap_or("");
            d.flags = flags.split_whitespace().map(str::to_string).collect();
        }
        if line.starts_with(";; QUESTION SECTION") {
            section = "q";
            continue;
        }
        if line.starts_with(";; ANSWER SECTION") {
            section = "an";
            continue;
        }
        if line.starts_with(";; AUTHORITY SECTION") {
            section = "ns";
            continue;
        }
        if line.starts_with(";; ADDITIONAL SECTION") {
            section = "ar";
            continue;
        }
        if line.trim().is_empty() {
            section = "";
            continue;
        }
        match section {
            "q" => d.question.push(line.trim_start_matches(';').to_string()),
            "an" => d.answer.push(line.to_string()),
            "ns" => d.authority.push(line.to_string()),
            "ar" if !line.starts_with(';') => d.additional.push(line.to_string()),
            _ => {}
        }
    }
    d.raw = raw;
    d
}

/// A plain HTTP/1.1 GET: (status, body).
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

/// Polls `f` until it returns `Some`, or panics with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A TCP relay on loopback in front of the API server: closed, it accepts connections and holds them without
/// forwarding; `cut` drops every relayed connection (a network break as the watcher sees it).
pub struct Relay {
    pub addr: SocketAddr,
    open: watch::Sender<bool>,
    epoch: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Relay {
    pub async fn start(target: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open = watch::Sender::new(false);
        let epoch = watch::Sender::new(0u64);
        let (o, e) = (open.clone(), epoch.clone());
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                let mut open_rx = o.subscribe();
                let mut epoch_rx = e.subscribe();
                let born = *epoch_rx.borrow();
                conns.spawn(async move {
                    let relay = async {
                        let _ = open_rx.wait_for(|v| *v).await;
                        let mut outbound = TcpStream::connect(target).await?;
                        tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await
                    };
                    tokio::select! {
                        _ = relay => {}
                        _ = epoch_rx.wait_for(|v| *v != born) => {}
                    }
                });
            }
        });
        Relay {
            addr,
            open,
            epoch,
            task,
        }
    }

    pub fn open(&self) {
        self.open.send_replace(true);
    }

    pub fn close(&self) {
        self.open.send_replace(false);
    }

    /// Drops every connection relayed so far.
    pub fn cut(&self) {
        self.epoch.send_modify(|e| *e += 1);
    }
}

/// Counts of a multiset, for comparing answers without caring about order.
pub fn counts(v: &[String]) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for s in v {
        *m.entry(s.clone()).or_default() += 1;
    }
    m
}
