//! Cluster DNS for svcplane: the Kubernetes DNS-Based Service Discovery specification (schema 1.1.0) for one
//! cluster zone, answered from an in-memory index of Services and EndpointSlices fed by watches, served over
//! UDP and TCP, with names outside the zone forwarded to upstream servers.
//!
//! This crate owns:
//! - [`Index`]: the index, updated one object at a time (`upsert_*`/`delete_*` with k8s-openapi types) and
//!   read by [`Index::respond`], which turns a query packet into a reply packet with no I/O and, in the common
//!   case, no allocation;
//! - [`serve`]: the UDP/TCP loop around it;
//! - [`run_watchers`]: Services, EndpointSlices and Namespaces from the Kubernetes API into the index;
//! - [`UpstreamForwarder`]: forwarding outside the zone, with its cache and the open-resolver guard;
//! - [`run`] / [`DnsServer`]: all of it plus `/health`, `/ready` and `/metrics`, from [`DnsOptions`].
//!
//! It must not write to the Kubernetes API (it only reads), nor parse command lines (the `svcplane` binary maps
//! its flags onto [`DnsOptions`]), nor send anything outside the zone unless upstreams were given.
//!
//! Behaviour follows CoreDNS's `kubernetes`, `forward`, `cache`, `health`, `ready` and `prometheus` plugins
//! where the specification leaves a choice; the differences in answers are listed in `answer.rs`.

mod answer;
mod cache;
mod config;
mod entry;
mod error;
mod forward;
mod http;
mod index;
mod metrics;
mod options;
mod run;
mod server;
mod watch;
mod wire;

pub use answer::{Outcome, Scratch, Transport};
pub use config::{Config, PodMode, SCHEMA_VERSION};
pub use error::{ConfigError, Error, IndexError};
pub use forward::UpstreamForwarder;
pub use index::Index;
pub use metrics::Metrics;
pub use options::{default_allow_forward_from, parse_upstreams, DnsOptions};
pub use run::{bind_dns, run, BoundAddrs, DnsServer};
pub use server::{serve, serve_sockets, ForwardRequest, Forwarder, ServeOptions};
pub use watch::{run_watchers, Readiness};
