//! The data plane's desired state: from Services, EndpointSlices and the Node, what one node must do with
//! packets sent to Service frontends, as elements of an nftables table, with the difference since the last
//! sync and its text in `nft -f` syntax.
//!
//! This crate owns:
//! - [`ProxyModel`] (one per IP family): `upsert_service` / `delete_service` / `upsert_endpoint_slice` /
//!   `delete_endpoint_slice` / `set_node` with k8s-openapi objects, and [`ProxyModel::take_diff`], the
//!   operations since the last sync plus the frontends whose endpoints changed (for conntrack cleanup);
//! - the rule shape ([`shape`]): the fixed sets, maps and chains of the table and the per-Service elements;
//! - [`render`]: the whole table ([`render::ruleset`]) and a diff's transaction ([`render::transaction`]).
//!
//! It does no I/O: it must not talk to the kernel or the API (the agent does: watches in, netlink or
//! `nft -f -` out, conntrack cleanup, health-check servers), and it never panics on API input; a Service it
//! cannot read is left out and reported by [`ProxyModel::upsert_service`].
//!
//! # Semantics
//! kube-proxy's (`pkg/proxy`, nftables mode, 1.33): ExternalName and headless Services are skipped; a family
//! uses the Service's ClusterIP of that family, its external IPs, its LoadBalancer ingress IPs in VIP mode and
//! its source ranges of that family; endpoints are the ready ones, else the serving-terminating ones
//! (KEP-1669), per traffic policy; `internalTrafficPolicy: Local` and `externalTrafficPolicy: Local` use this
//! node's endpoints (external traffic from pods and from the node itself still goes to any endpoint, the
//! node's masqueraded, and other sources keep their address); zone hints (and node hints, behind
//! [`Config::prefer_same_node_hints`], on as since 1.34) apply only when every ready endpoint has one and one
//! matches; a frontend without endpoints rejects, one with endpoints elsewhere only drops; packets to a
//! ClusterIP on an unknown port are rejected and to an unallocated address of the Service range dropped;
//! `loadBalancerSourceRanges` filters LoadBalancer IPs (not NodePorts) before DNAT. NodePorts answer on the
//! node's addresses chosen by [`NodePortAddresses`] (default: its primary IP).
//!
//! # Why this rule shape
//! kube-proxy's nftables mode gives each Service port a chain, each endpoint a chain, and each Service chain an
//! anonymous `numgen random mod N vmap { … }` map. On this kernel that does not scale: the kernel names every
//! new anonymous set by walking all existing sets (quadratic: 64 s and 1 GB of nft at 10k Services × 10
//! endpoints), and it looks named sets up by walking a list too, while chains are found through a hash table.
//! So here the table has a **fixed** number of sets (constant lookup cost) and every per-Service fact is an
//! **element** keyed by a frontend `addr . l4proto . port`:
//!
//! | set / map | element | role |
//! |---|---|---|
//! | `service-ips` | frontend → `goto <pick chain>` / `goto external-local` | dispatch of new connections (nat) |
//! | `cluster-endpoints-{tcp,udp,sctp}`, `local-endpoints-…` | frontend . slot → endpoint `addr . port` | the DNAT targets |
//! | `external-local-cluster`, `external-local-local` | frontend → `goto <pick chain>` | eTP:Local split by source |
//! | `no-endpoint-services` | frontend → `goto reject-chain` / `drop` | no usable endpoint (filter) |
//! | `cluster-ips` | ClusterIP | reject unknown ports |
//! | `firewall-ips`, `firewall-allow` | frontend; frontend . source range | `loadBalancerSourceRanges` |
//! | `hairpin` | endpoint `addr . addr` | masquerade a pod reaching itself |
//!
//! Endpoint choice happens in **shared pick chains** named by what they do, e.g. `cluster-3-masq-offcluster`:
//! `meta l4proto tcp dnat to daddr . l4proto . dport . numgen random mod 3 map @cluster-endpoints-tcp` (and
//! the same for UDP and SCTP: nft types a map's port data by protocol and then makes the DNAT match only
//! that protocol, so each protocol has its endpoint maps; a single map once let UDP Services fall through). Because the frontend is
//! read from the packet, one chain serves every frontend with 3 endpoints; there are at most a few chains per
//! endpoint count in use, whatever the number of Services. Adding a Service is `1 + N` element additions
//! (plus its ClusterIP, its no-endpoint or firewall entries); adding an endpoint is one slot element plus
//! replacing the `service-ips` verdict (`goto cluster-3` → `goto cluster-4`); removing one moves the last slot
//! into its place. Slots of endpoints that stay never move otherwise. Per-packet cost is one hash lookup in
//! `service-ips` and one in the endpoint map, independent of the number of Services, and only the first packet
//! of a connection traverses nat chains.
//!
//! Masquerade is kube-proxy's: mark bit 0x4000 (`mark-for-masquerade`), `masquerade fully-random` in
//! postrouting; the pick chain decides (`-masq-all` for external traffic under eTP:Cluster,
//! `-masq-offcluster` for ClusterIPs when `--cluster-cidr` is known, nothing under eTP:Local). Hairpin needs
//! no per-endpoint rule: after DNAT a pod that reached itself has `saddr == daddr`, matched by `hairpin`.
//!
//! **Session affinity** (`-affinity-<timeout>` chains) uses one dynamic set `affinity` of
//! `client . frontend . slot` with a per-entry timeout: a known client is sent to its remembered slot (and its
//! timeout refreshed), a new one picks a slot uniformly and is remembered. Remembering a slot rather than an
//! endpoint means an entry can never lead to a removed endpoint (slots always hold live endpoints). Two
//! differences from kube-proxy, both documented trade-offs: affinity is per frontend (kube-proxy's is per
//! Service port across its IPs), and when an endpoint is removed the client of the slot that moved into its
//! place (the last one) is re-balanced. These chains hold 2N rules, so affinity costs O(N) per new
//! connection, as kube-proxy's per-endpoint affinity rules do.
//!
//! Two nft 1.0.6 limits shape the text: it cannot write a constant inside a concatenation, so the affinity
//! chains write slot i as `numgen inc mod 1 offset i` (a netlink executor can load an immediate instead); and
//! it misreads some `typeof` declarations it gets back from the kernel (`th dport` in map data), so the
//! endpoint maps declare their data as the protocol's own port and `nft list set … affinity` shows every slot as 0 (display only: the
//! kernel keeps the real slot).
//!
//! One table per family (`ip svcplane`, `ip6 svcplane`), base chains at kube-proxy's priorities (filter
//! before DNAT at -110, DNAT at -100, filter at 0, masquerade at 100).
//!
//! # Incremental by construction
//! Every map in the model is keyed by object (Service, slice) or element; a change recomputes one Service and
//! moves its claims on elements (several Services may share one, e.g. a pod's hairpin element).
//! [`ProxyModel::take_diff`] compares only the elements touched since the last diff, so its cost is that of
//! the change, not of the table.

mod claims;
mod config;
mod diff;
mod endpoints;
mod error;
mod model;
mod plan;
pub mod render;
mod service;
pub mod shape;
mod types;

pub use config::{
    Config, NodeInfo, NodePortAddresses, DEFAULT_AFFINITY_TIMEOUT_SECONDS, DEFAULT_TABLE,
    ZONE_LABEL,
};
pub use diff::{Diff, FrontendChange, Op};
pub use endpoints::SERVICE_NAME_LABEL;
pub use error::ServiceError;
pub use model::{HealthCheck, ProxyModel, Stats};
pub use plan::FrontendState;
pub use types::{Family, Frontend, FrontendKind, Protocol, ServiceKey, ServicePortName};
