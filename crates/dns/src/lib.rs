//! Cluster DNS for svcplane: the Kubernetes DNS-Based Service Discovery specification (schema 1.1.0) for one
//! cluster zone, answered from an in-memory index of Services and EndpointSlices, and served over UDP and TCP.
//!
//! This crate owns:
//! - [`Index`]: the index, updated one object at a time (`upsert_*`/`delete_*` with k8s-openapi types) and
//!   read by [`Index::respond`], which turns a query packet into a reply packet with no I/O and, in the common
//!   case, no allocation;
//! - [`serve`]: the UDP/TCP loop around it.
//!
//! It must not talk to the Kubernetes API (the caller feeds the index from its watches), nor resolve names
//! outside the zone itself: those leave through the [`Forwarder`] hook, and without one they are REFUSED.
//!
//! Behaviour follows CoreDNS's `kubernetes` plugin where the specification leaves a choice (which names exist,
//! SRV weights, NXDOMAIN versus NODATA, the SOA); the few differences are listed in `answer.rs`.

mod answer;
mod config;
mod entry;
mod error;
mod index;
mod server;
mod wire;

pub use answer::{Outcome, Scratch, Transport};
pub use config::{Config, PodMode, SCHEMA_VERSION};
pub use error::{ConfigError, IndexError};
pub use index::Index;
pub use server::{serve, serve_sockets, ForwardRequest, Forwarder, ServeOptions};
