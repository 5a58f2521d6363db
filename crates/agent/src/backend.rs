//! How the sync loop reaches the kernel. A backend takes a model (cold sync and drift repair) or a diff
//! (one change) and makes the kernel's table match. [`Netlink`] (the default) sends the elements as
//! netlink batches through the `netfilter` crate; [`NftCli`] pipes `nft -f` text, exact but slow at scale
//! (the CLI re-reads the whole ruleset on every call), kept as a fallback (`--backend nft`).

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use proxy::render::{ruleset, transaction, Mode};
use proxy::{Diff, Family, ProxyModel};

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("running nft: {0}")]
    Spawn(#[from] std::io::Error),
    #[error("nft refused the transaction: {0}")]
    Refused(String),
    #[error("{0}")]
    Other(String),
}

/// What one sync did.
#[derive(Debug, Clone, Default)]
pub struct SyncReport {
    /// Operations (or lines) sent to the kernel.
    pub operations: usize,
    pub duration: Duration,
    /// Services the kernel refused, with its reason; everything else was applied.
    pub failed: Vec<(String, String)>,
}

/// Programs one family's table.
pub trait Backend: Send {
    /// Makes the kernel hold exactly `model` (cold start and periodic drift repair), atomically.
    fn full_sync(&mut self, model: &ProxyModel) -> Result<SyncReport, BackendError>;
    /// Applies one diff taken from `model`.
    fn apply(&mut self, model: &ProxyModel, diff: &Diff) -> Result<SyncReport, BackendError>;
    /// Removes the table (`svcplane agent --cleanup`).
    fn delete_table(&mut self, family: Family, table: &str) -> Result<(), BackendError>;
}

/// `nft -f -` in the agent's own network namespace.
#[derive(Debug, Default)]
pub struct NftCli;

impl NftCli {
    fn run(text: &str) -> Result<SyncReport, BackendError> {
        let start = Instant::now();
        let mut child = Command::new("nft")
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(text.as_bytes())?;
        }
        let out = child.wait_with_output()?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            // nft's own error lines are enough; the echoed input lines are not.
            let msg: Vec<&str> = err
                .lines()
                .filter(|l| l.contains("Error"))
                .take(5)
                .collect();
            return Err(BackendError::Refused(if msg.is_empty() {
                err.trim().to_string()
            } else {
                msg.join("; ")
            }));
        }
        Ok(SyncReport {
            operations: text.lines().count(),
            duration: start.elapsed(),
            failed: Vec::new(),
        })
    }
}

impl Backend for NftCli {
    fn full_sync(&mut self, model: &ProxyModel) -> Result<SyncReport, BackendError> {
        NftCli::run(&ruleset(model, Mode::Replace))
    }

    fn apply(&mut self, model: &ProxyModel, diff: &Diff) -> Result<SyncReport, BackendError> {
        NftCli::run(&transaction(model.config(), diff))
    }

    fn delete_table(&mut self, family: Family, table: &str) -> Result<(), BackendError> {
        let fam = family.nft();
        NftCli::run(&format!(
            "table {fam} {table}\ndelete table {fam} {table}\n"
        ))
        .map(|_| ())
    }
}

/// Netlink batches through [`netfilter::Executor`], in the agent's network namespace.
pub struct Netlink {
    executor: netfilter::Executor,
}

impl Netlink {
    pub fn new(family: Family, table: &str) -> Result<Netlink, BackendError> {
        netfilter::Executor::new(family, table)
            .map(|executor| Netlink { executor })
            .map_err(|e| BackendError::Other(e.to_string()))
    }

    fn report(r: netfilter::SyncReport) -> SyncReport {
        SyncReport {
            operations: r.elements_added + r.elements_deleted + r.chains_changed,
            duration: r.duration,
            failed: r
                .failed
                .iter()
                .map(|f| {
                    (
                        proxy::shape::element_text(&f.element, &f.value),
                        f.error.clone(),
                    )
                })
                .collect(),
        }
    }
}

impl Backend for Netlink {
    fn full_sync(&mut self, model: &ProxyModel) -> Result<SyncReport, BackendError> {
        self.executor
            .full_sync(model)
            .map(Netlink::report)
            .map_err(|e| BackendError::Other(e.to_string()))
    }

    fn apply(&mut self, model: &ProxyModel, diff: &Diff) -> Result<SyncReport, BackendError> {
        self.executor
            .apply(model.config(), diff)
            .map(Netlink::report)
            .map_err(|e| BackendError::Other(e.to_string()))
    }

    fn delete_table(&mut self, _family: Family, _table: &str) -> Result<(), BackendError> {
        self.executor
            .delete_table()
            .map_err(|e| BackendError::Other(e.to_string()))
    }
}
