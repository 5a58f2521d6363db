//! Errors of the executor. A refused *element* is not an error (it is reported in
//! [`crate::SyncReport::failed`] and the others still apply); these are the failures after which the kernel
//! may not hold what the caller asked for.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("netlink socket: {0}")]
    Socket(#[source] io::Error),
    #[error("network namespace {path}: {source}")]
    Netns {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("running nft: {0}")]
    NftSpawn(#[source] io::Error),
    #[error("nft -f failed ({status}): {stderr}")]
    Nft { status: String, stderr: String },
    #[error("kernel refused {what}: {} ({errno}){}", io::Error::from_raw_os_error(*errno), message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Kernel {
        what: String,
        errno: i32,
        message: Option<String>,
    },
    #[error("netlink protocol: {0}")]
    Protocol(String),
    #[error("model and executor disagree: {0}")]
    Mismatch(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
