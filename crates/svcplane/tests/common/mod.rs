//! Test harness: runs the real `svcplane` binary on a free port with its own data directory, and the real
//! `kubectl` against it. The process is killed when the harness is dropped, even when a test fails.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub struct ApiServer {
    child: Option<Child>,
    pub dir: PathBuf,
    pub url: String,
    /// The DNS server's address, when started with `up`.
    pub dns: Option<String>,
    _tmp: Option<tempfile::TempDir>,
}

impl ApiServer {
    pub fn start() -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let mut s = Self::start_in(&dir, &[]);
        s._tmp = Some(tmp);
        s
    }

    /// `svcplane up` (API server and DNS) on free ports.
    pub fn start_up(extra: &[&str]) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let mut args = vec!["--dns-listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let mut s = Self::launch("up", &dir, &args, true);
        s._tmp = Some(tmp);
        s
    }

    /// Starts on an existing data directory (a restart), with extra flags.
    pub fn start_in(dir: &Path, extra: &[&str]) -> Self {
        Self::launch("apiserver", dir, extra, false)
    }

    fn launch(command: &str, dir: &Path, extra: &[&str], wait_dns: bool) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_svcplane"))
            .args([command, "--secure-port", "0", "--data-dir"])
            .arg(dir)
            .args(extra)
            .env("SVCPLANE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn svcplane");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let announced = line
                    .strip_prefix("svcplane API server at ")
                    .or_else(|| line.strip_prefix("svcplane DNS at "));
                if let Some(rest) = announced {
                    let addr = rest.split_whitespace().next().unwrap_or_default();
                    let _ = tx.send(addr.to_string());
                } else {
                    eprintln!("[svcplane] {line}");
                }
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(u) => u,
            Err(_) => {
                let _ = child.kill();
                panic!("svcplane exited or did not start within 60 s");
            }
        };
        let dns = wait_dns.then(|| match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                panic!("svcplane up did not start its DNS server");
            }
        });
        Self {
            child: Some(child),
            dir: dir.to_path_buf(),
            url,
            dns,
            _tmp: None,
        }
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    pub fn kubectl(&self, args: &[&str]) -> Output {
        Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", self.kubeconfig())
            .env("KUBECACHEDIR", self.dir.join("kubectl-cache"))
            .env_remove("KUBERNETES_SERVICE_HOST")
            .output()
            .expect("run kubectl")
    }

    /// kubectl that must succeed; returns stdout.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// kubectl that must fail; returns stderr.
    pub fn kubectl_err(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            !out.status.success(),
            "kubectl {args:?} unexpectedly succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    pub fn kubectl_stdin(&self, args: &[&str], input: &str) -> Output {
        use std::io::Write;
        let mut child = Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", self.kubeconfig())
            .env("KUBECACHEDIR", self.dir.join("kubectl-cache"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run kubectl");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
        child.wait_with_output().expect("kubectl output")
    }

    /// Kills the server hard (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `svcplane ARGS` to completion; it must succeed. Returns stdout.
pub fn svcplane_ok<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_svcplane"))
        .args(args)
        .output()
        .expect("run svcplane");
    assert!(
        out.status.success(),
        "svcplane failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `f` until it returns Some, or panics after `timeout`.
pub fn eventually<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// `dig` against the DNS server of `svcplane up`; returns stdout.
pub fn dig(s: &ApiServer, args: &[&str]) -> String {
    let addr = s.dns.as_deref().expect("started with up");
    let (ip, port) = addr.rsplit_once(':').expect("ip:port");
    let out = Command::new("dig")
        .args([&format!("@{ip}"), "-p", port, "+time=2", "+tries=2"])
        .args(args)
        .output()
        .expect("run dig (bind9-dnsutils)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}
