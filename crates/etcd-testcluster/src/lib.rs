//! Local etcd clusters for tests and benchmarks: N members of Debian's `etcd` on loopback ports, in a
//! temporary directory, stopped and removed when the [`EtcdCluster`] is dropped (and killed by the kernel
//! if the process that started them dies first).
//!
//! With [`EtcdCluster::start_tls`] clients must speak TLS and present a certificate of the cluster's own CA
//! (etcd's `--client-cert-auth`), as production clusters are usually run.
//!
//! It owns starting, stopping and killing member processes; it must not be used by anything that serves
//! users (production clusters are the operator's, reached through `--etcd-servers`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("etcd binary not found ({0}); install Debian's etcd-server")]
    NoBinary(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("etcd cluster did not become healthy within {0:?}: {1}")]
    NotHealthy(Duration, String),
    #[error("certificates: {0}")]
    Cert(#[from] rcgen::Error),
}

/// PEM files of a TLS cluster: the CA that signed everything, and a client certificate and key.
#[derive(Clone, Debug)]
pub struct ClientTls {
    pub ca_file: PathBuf,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// The server's identity and what clients need, all under `dir`.
struct Pki {
    server_cert: PathBuf,
    server_key: PathBuf,
    client: ClientTls,
}

fn make_pki(dir: &Path) -> Result<Pki, ClusterError> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let ca_params = || -> Result<CertificateParams, rcgen::Error> {
        let mut p = CertificateParams::new(Vec::<String>::new())?;
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name
            .push(DnType::CommonName, "etcd-test-ca");
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        Ok(p)
    };
    let ca_key = KeyPair::generate()?;
    let ca = ca_params()?.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params()?, &ca_key);
    let leaf = |name: &str,
                usage: ExtendedKeyUsagePurpose|
     -> Result<(String, String), rcgen::Error> {
        let key = KeyPair::generate()?;
        let mut p = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])?;
        p.distinguished_name.push(DnType::CommonName, name);
        p.extended_key_usages = vec![usage];
        Ok((p.signed_by(&key, &issuer)?.pem(), key.serialize_pem()))
    };
    let (server_pem, server_key) = leaf("etcd-server", ExtendedKeyUsagePurpose::ServerAuth)?;
    let (client_pem, client_key) = leaf("etcd-client", ExtendedKeyUsagePurpose::ClientAuth)?;
    let write = |name: &str, text: &str| -> std::io::Result<PathBuf> {
        let p = dir.join(name);
        std::fs::write(&p, text)?;
        Ok(p)
    };
    Ok(Pki {
        server_cert: write("server.crt", &server_pem)?,
        server_key: write("server.key", &server_key)?,
        client: ClientTls {
            ca_file: write("ca.crt", &ca.pem())?,
            cert_file: write("client.crt", &client_pem)?,
            key_file: write("client.key", &client_key)?,
        },
    })
}

struct Member {
    name: String,
    client: SocketAddr,
    peer: SocketAddr,
    /// Plain-HTTP `/health` (etcd's metrics listener), reachable whatever the client listener requires.
    metrics: SocketAddr,
    dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

/// A running local etcd cluster.
pub struct EtcdCluster {
    members: Vec<Member>,
    token: String,
    pki: Option<Pki>,
    _dir: tempfile::TempDir,
}

fn free_port() -> std::io::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}

fn binary() -> String {
    std::env::var("SVCPLANE_ETCD_BIN").unwrap_or_else(|_| "etcd".into())
}

/// Whether an etcd binary can be started here (tests that need one fail loudly when it is missing;
/// this is for benchmarks that skip the etcd half).
pub fn available() -> bool {
    Command::new(binary())
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

impl EtcdCluster {
    /// Starts `members` members and waits until every one answers `/health`.
    pub fn start(members: usize) -> Result<Self, ClusterError> {
        Self::start_with(members, false)
    }

    /// Like [`Self::start`], with TLS and client-certificate authentication on the client URLs.
    pub fn start_tls(members: usize) -> Result<Self, ClusterError> {
        Self::start_with(members, true)
    }

    fn start_with(members: usize, tls: bool) -> Result<Self, ClusterError> {
        if !available() {
            return Err(ClusterError::NoBinary(binary()));
        }
        // Ports are picked free and then handed to etcd, so another process can take one in between:
        // try again with new ports before giving up.
        let mut last = None;
        for _ in 0..3 {
            match Self::try_start(members, tls) {
                Ok(c) => return Ok(c),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(ClusterError::NotHealthy(
            Duration::ZERO,
            "no attempt".into(),
        )))
    }

    fn try_start(n: usize, tls: bool) -> Result<Self, ClusterError> {
        let dir = tempfile::Builder::new()
            .prefix("svcplane-etcd-")
            .tempdir()?;
        let pki = if tls {
            Some(make_pki(dir.path())?)
        } else {
            None
        };
        let token = format!("svcplane-{}-{}", std::process::id(), dir.path().display());
        let mut members = Vec::new();
        for i in 0..n {
            let name = format!("m{i}");
            members.push(Member {
                client: free_port()?,
                peer: free_port()?,
                metrics: free_port()?,
                dir: dir.path().join(&name),
                log: dir.path().join(format!("{name}.log")),
                name,
                child: None,
            });
        }
        let mut cluster = EtcdCluster {
            members,
            token,
            pki,
            _dir: dir,
        };
        for i in 0..n {
            cluster.spawn(i, "new")?;
        }
        cluster.wait_healthy(Duration::from_secs(30))?;
        Ok(cluster)
    }

    fn initial_cluster(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("{}=http://{}", m.name, m.peer))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn spawn(&mut self, i: usize, state: &str) -> Result<(), ClusterError> {
        let initial = self.initial_cluster();
        let scheme = self.scheme();
        let m = &mut self.members[i];
        let log = std::fs::File::create(&m.log)?;
        let mut cmd = Command::new(binary());
        cmd.arg("--name")
            .arg(&m.name)
            .arg("--data-dir")
            .arg(&m.dir)
            .arg("--listen-client-urls")
            .arg(format!("{scheme}://{}", m.client))
            .arg("--advertise-client-urls")
            .arg(format!("{scheme}://{}", m.client))
            .arg("--listen-metrics-urls")
            .arg(format!("http://{}", m.metrics))
            .arg("--listen-peer-urls")
            .arg(format!("http://{}", m.peer))
            .arg("--initial-advertise-peer-urls")
            .arg(format!("http://{}", m.peer))
            .arg("--initial-cluster")
            .arg(initial)
            .arg("--initial-cluster-state")
            .arg(state)
            .arg("--initial-cluster-token")
            .arg(&self.token)
            // Loopback round trips are sub-millisecond: short raft timings make a killed leader's
            // replacement quick, which is what the failure tests measure.
            .arg("--heartbeat-interval")
            .arg("50")
            .arg("--election-timeout")
            .arg("500")
            .arg("--logger")
            .arg("zap")
            .arg("--log-level")
            .arg("warn")
            .stdin(Stdio::null());
        if let Some(pki) = &self.pki {
            cmd.arg("--cert-file")
                .arg(&pki.server_cert)
                .arg("--key-file")
                .arg(&pki.server_key)
                .arg("--trusted-ca-file")
                .arg(&pki.client.ca_file)
                .arg("--client-cert-auth");
        }
        cmd.stdout(log.try_clone()?).stderr(log);
        // SAFETY: prctl is async-signal-safe; it only asks the kernel to kill this child when the
        // thread that started it exits (a thread that lives as long as the process, see
        // spawn_from_lasting_thread), so a crashed test leaves no etcd behind.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        m.child = Some(spawn_from_lasting_thread(cmd)?);
        Ok(())
    }

    fn wait_healthy(&mut self, within: Duration) -> Result<(), ClusterError> {
        let deadline = Instant::now() + within;
        loop {
            let mut unhealthy = None;
            for m in &mut self.members {
                let Some(child) = m.child.as_mut() else {
                    continue;
                };
                if let Ok(Some(status)) = child.try_wait() {
                    let log = std::fs::read_to_string(&m.log).unwrap_or_default();
                    return Err(ClusterError::NotHealthy(
                        within,
                        format!("member {} exited ({status}): {}", m.name, tail(&log)),
                    ));
                }
                if !healthy(m.metrics) {
                    unhealthy = Some(m.name.clone());
                }
            }
            match unhealthy {
                None => return Ok(()),
                Some(name) if Instant::now() > deadline => {
                    return Err(ClusterError::NotHealthy(within, format!("member {name}")))
                }
                Some(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Client URLs of the running members, comma-separated as `--etcd-servers` takes them.
    pub fn servers(&self) -> String {
        self.endpoints().join(",")
    }

    /// Client URLs of every member (running or not), in member order.
    pub fn endpoints(&self) -> Vec<String> {
        let scheme = self.scheme();
        self.members
            .iter()
            .map(|m| format!("{scheme}://{}", m.client))
            .collect()
    }

    fn scheme(&self) -> &'static str {
        if self.pki.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// What a client needs to reach a TLS cluster (None for a plain one).
    pub fn client_tls(&self) -> Option<&ClientTls> {
        self.pki.as_ref().map(|p| &p.client)
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// `kill -9` one member (its data stays, so [`Self::restart`] brings it back).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts a killed member again from its data directory and waits until the cluster is healthy.
    pub fn restart(&mut self, i: usize) -> Result<(), ClusterError> {
        self.kill(i);
        self.spawn(i, "existing")?;
        self.wait_healthy(Duration::from_secs(30))
    }

    /// A member's log so far (for failure messages).
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(&self.members[i].log).unwrap_or_default()
    }

    pub fn data_dir(&self, i: usize) -> &Path {
        &self.members[i].dir
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for i in 0..self.members.len() {
                eprintln!("--- etcd member {i} log:\n{}", tail(&self.log(i)));
            }
        }
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}

type SpawnRequest = (Command, std::sync::mpsc::Sender<std::io::Result<Child>>);

/// PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, not the process: a member
/// started from a short-lived thread (tokio's blocking pool retires idle threads after 10 s) would be
/// killed under a running test. Every member is therefore forked by one thread that never exits.
fn spawn_from_lasting_thread(cmd: Command) -> std::io::Result<Child> {
    static SPAWNER: std::sync::OnceLock<std::sync::Mutex<std::sync::mpsc::Sender<SpawnRequest>>> =
        std::sync::OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("etcd-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
                // The senders live in a static, so this thread never gets here while the process runs.
                loop {
                    std::thread::park();
                }
            })
            .expect("spawn the etcd spawner thread");
        std::sync::Mutex::new(tx)
    });
    let (reply, answer) = std::sync::mpsc::channel();
    spawner
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((cmd, reply))
        .map_err(|_| std::io::Error::other("etcd spawner thread is gone"))?;
    answer
        .recv()
        .map_err(|_| std::io::Error::other("etcd spawner thread is gone"))?
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

/// etcd's `/health` answers `{"health":"true"}` once the member has a leader and serves requests.
fn healthy(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body.contains("\"health\":\"true\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_members_start_answer_and_stop() {
        let mut c = EtcdCluster::start(3).expect("start");
        assert_eq!(c.endpoints().len(), 3);
        let addr: SocketAddr = c.endpoints()[1]
            .trim_start_matches("http://")
            .parse()
            .unwrap();
        assert!(healthy(addr));
        c.kill(1);
        assert!(!healthy(addr));
        c.restart(1).expect("restart");
        assert!(healthy(addr));
        let pids: Vec<u32> = c
            .members
            .iter()
            .filter_map(|m| m.child.as_ref().map(|c| c.id()))
            .collect();
        drop(c);
        for pid in pids {
            assert!(
                !Path::new(&format!("/proc/{pid}")).exists()
                    || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                        .map(|s| s.contains(") Z "))
                        .unwrap_or(true),
                "member {pid} still running"
            );
        }
    }
}
