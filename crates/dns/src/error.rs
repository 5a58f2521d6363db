use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("invalid cluster domain {0:?}: expected dot-separated DNS labels, short enough to hold service names")]
    Zone(String),
    #[error("invalid pods mode {0:?}: expected disabled, insecure or verified")]
    PodMode(String),
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum IndexError {
    #[error("{kind} has no metadata.name")]
    MissingName { kind: &'static str },
    #[error("{kind} {name} has no metadata.namespace")]
    MissingNamespace { kind: &'static str, name: String },
}

/// Why the server could not start or stopped.
#[derive(Debug, Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("--upstream {value:?}: {reason}")]
    Upstream { value: String, reason: String },
    #[error("listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("http server on {addr}: {source}")]
    Http {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}
