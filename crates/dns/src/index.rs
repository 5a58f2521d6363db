//! The in-memory index: Services and EndpointSlices as the watch delivers them, and the lookup tables the answer
//! path reads.
//!
//! Writers (the watch) and readers (queries) meet only at [`Table`], behind a read-write lock that a writer holds
//! just long enough to swap in entries it built beforehand. Each change rebuilds only the names it touches: the
//! Services it names or is labelled for, and the reverse entries of the addresses it adds or removes.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::config::{Config, PodMode, Zone};
use crate::entry::{endpoint_host, wire_labels, EndpointIn, Kind, Port, SvcEntry};
use crate::error::{ConfigError, IndexError};

/// The label that ties an EndpointSlice to its Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// (namespace, name); shared strings because every endpoint address refers back to its slice.
type Key = (Arc<str>, Arc<str>);

/// The cluster DNS index: fed incrementally from Services and EndpointSlices, read by [`Index::respond`].
///
/// Readiness: an endpoint answers when its `conditions.ready` is true or unset (CoreDNS's rule; the
/// EndpointSlice controller already sets it for not-ready pods of a Service with `publishNotReadyAddresses`),
/// or when its Service has `publishNotReadyAddresses`, so that hand-written slices behave the same.
///
/// Pods in `verified` mode: CoreDNS checks its pod cache. We do not watch Pods; a pod IP counts as known in a
/// namespace when an EndpointSlice of that namespace lists it, ready or not, for an endpoint whose `targetRef`
/// is a Pod or unset. Pods that back no Service therefore have no record in this mode.
///
/// Namespaces: CoreDNS answers `<ns>.svc.<zone>` (and pod names) only for namespaces that exist. A namespace
/// exists here when it holds a Service or was given to [`Index::upsert_namespace`].
pub struct Index {
    pub(crate) config: Config,
    pub(crate) zone: Zone,
    model: Mutex<Model>,
    table: RwLock<Table>,
    serial: AtomicU32,
}

/// A list of names or labels, each in wire form.
pub(crate) type Names = Box<[Box<[u8]>]>;

/// What queries read.
#[derive(Default)]
pub(crate) struct Table {
    /// Keyed by `<service>.<ns>`, lowercase.
    pub services: HashMap<Box<[u8]>, SvcEntry>,
    pub namespaces: HashSet<Box<[u8]>>,
    /// Reverse names: wire labels of the targets, without the zone.
    pub ptr: HashMap<IpAddr, Names>,
    /// Pod IP to the namespaces that hold a pod with it (`verified` pod mode only).
    pub pods: HashMap<IpAddr, Names>,
}

impl Table {
    pub fn service(&self, name: &[u8], ns: &[u8]) -> Option<&SvcEntry> {
        let mut key = [0u8; 128];
        let len = name.len() + 1 + ns.len();
        if len > key.len() {
            return None;
        }
        key[..name.len()].copy_from_slice(name);
        key[name.len()] = b'.';
        key[name.len() + 1..len].copy_from_slice(ns);
        self.services.get(&key[..len])
    }
}

fn table_key(ns: &str, name: &str) -> Box<[u8]> {
    format!("{name}.{ns}")
        .to_ascii_lowercase()
        .into_bytes()
        .into_boxed_slice()
}

/// The authoritative copy of what the watch told us, reduced to what DNS needs.
#[derive(Default)]
struct Model {
    services: HashMap<Key, SvcSpec>,
    slices: HashMap<Key, SliceSpec>,
    /// (namespace, service) to the names of its slices.
    slices_of: HashMap<Key, BTreeSet<Arc<str>>>,
    ns_services: HashMap<Arc<str>, u32>,
    ns_explicit: HashSet<Box<str>>,
    /// Cluster IP to the Services that hold it (more than one only while an IP is being reused).
    cluster_ips: HashMap<IpAddr, BTreeSet<Key>>,
    /// Endpoint IP to the slices (namespace, slice name) that list it: almost always one, so a plain list.
    endpoint_ips: HashMap<IpAddr, Vec<Key>>,
}

struct SvcSpec {
    kind: SpecKind,
    cluster_ips: Vec<IpAddr>,
    ports: Vec<Port>,
    publish_not_ready: bool,
}

enum SpecKind {
    ClusterIp,
    Headless,
    ExternalName(Option<Box<[u8]>>),
}

struct SliceSpec {
    service: Option<Arc<str>>,
    ports: Box<[Port]>,
    endpoints: Vec<EndpointSpec>,
}

struct EndpointSpec {
    ips: Vec<IpAddr>,
    host: Option<Box<str>>,
    ready: bool,
    is_pod: bool,
}

/// Everything one change must republish.
#[derive(Default)]
struct Dirty {
    services: BTreeSet<Key>,
    ips: BTreeSet<IpAddr>,
    namespaces: BTreeSet<Arc<str>>,
}

fn lower_bytes(s: &str) -> Box<[u8]> {
    s.to_ascii_lowercase().into_bytes().into_boxed_slice()
}

fn port_of(name: Option<&str>, proto: Option<&str>, port: i32) -> Port {
    Port {
        name: lower_bytes(name.unwrap_or("")),
        // The API defaults the protocol to TCP; an object that skipped defaulting means the same.
        proto: lower_bytes(proto.unwrap_or("TCP")),
        port,
    }
}

fn svc_spec(svc: &Service) -> SvcSpec {
    let spec = svc.spec.as_ref();
    let type_ = spec.and_then(|s| s.type_.as_deref()).unwrap_or("ClusterIP");
    let ips: Vec<&str> = match spec {
        Some(s) => match &s.cluster_ips {
            Some(v) if !v.is_empty() => v.iter().map(String::as_str).collect(),
            _ => s.cluster_ip.as_deref().into_iter().collect(),
        },
        None => Vec::new(),
    };
    let kind = if type_ == "ExternalName" {
        let target = spec.and_then(|s| s.external_name.as_deref()).unwrap_or("");
        let target = target.strip_suffix('.').unwrap_or(target);
        // CoreDNS answers only ExternalNames that are names, never addresses.
        let usable = target.parse::<IpAddr>().is_err();
        let wire = wire_labels(target)
            .filter(|w| usable && w.len() < crate::wire::MAX_NAME)
            .map(|mut w| {
                w.push(0);
                w.into_boxed_slice()
            });
        SpecKind::ExternalName(wire)
    } else if ips.first() == Some(&"None") {
        SpecKind::Headless
    } else {
        SpecKind::ClusterIp
    };
    let cluster_ips = match kind {
        SpecKind::ClusterIp => ips.iter().filter_map(|ip| ip.parse().ok()).collect(),
        _ => Vec::new(),
    };
    let mut ports: Vec<Port> = spec
        .and_then(|s| s.ports.as_ref())
        .map(|ps| {
            ps.iter()
                .map(|p| port_of(p.name.as_deref(), p.protocol.as_deref(), p.port))
                .collect()
        })
        .unwrap_or_default();
    if ports.is_empty() {
        ports.push(Port::sentinel());
    }
    SvcSpec {
        kind,
        cluster_ips,
        ports,
        publish_not_ready: spec
            .and_then(|s| s.publish_not_ready_addresses)
            .unwrap_or(false),
    }
}

fn slice_spec(slice: &EndpointSlice) -> SliceSpec {
    let service = slice
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(SERVICE_NAME_LABEL))
        .map(|s| Arc::from(s.as_str()));
    let mut ports: Vec<Port> = slice
        .ports
        .iter()
        .flatten()
        .map(|p| {
            port_of(
                p.name.as_deref(),
                p.protocol.as_deref(),
                p.port.unwrap_or(-1),
            )
        })
        .collect();
    if ports.is_empty() {
        ports.push(Port::sentinel());
    }
    // FQDN slices name hosts, not addresses: DNS has nothing to publish for them.
    let endpoints = if slice.address_type == "IPv4" || slice.address_type == "IPv6" {
        slice
            .endpoints
            .iter()
            .map(|e| EndpointSpec {
                ips: e.addresses.iter().filter_map(|a| a.parse().ok()).collect(),
                host: e.hostname.as_deref().map(Box::from),
                ready: e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true),
                is_pod: e
                    .target_ref
                    .as_ref()
                    .is_none_or(|r| r.kind.as_deref().is_none_or(|k| k == "Pod")),
            })
            .collect()
    } else {
        Vec::new()
    };
    SliceSpec {
        service,
        ports: ports.into_boxed_slice(),
        endpoints,
    }
}

fn name_and_namespace(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    kind: &'static str,
) -> Result<Key, IndexError> {
    let name = meta
        .name
        .as_deref()
        .filter(|n| !n.is_empty())
        .ok_or(IndexError::MissingName { kind })?;
    let ns = meta
        .namespace
        .as_deref()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| IndexError::MissingNamespace {
            kind,
            name: name.to_string(),
        })?;
    Ok((Arc::from(ns), Arc::from(name)))
}

impl Index {
    pub fn new(config: Config) -> Result<Index, ConfigError> {
        let zone = Zone::parse(&config.zone)?;
        Ok(Index {
            config,
            zone,
            model: Mutex::new(Model::default()),
            table: RwLock::new(Table::default()),
            serial: AtomicU32::new(now_serial()),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The SOA serial: the Unix time of the last change, as CoreDNS reports it.
    pub fn serial(&self) -> u32 {
        self.serial.load(Ordering::Relaxed)
    }

    /// How many Services the index holds.
    pub fn service_count(&self) -> usize {
        self.lock_model().services.len()
    }

    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Table> {
        // A writer that panicked left whole entries behind (it swaps, never edits in place): keep serving.
        self.table.read().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_model(&self) -> std::sync::MutexGuard<'_, Model> {
        self.model.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn upsert_service(&self, svc: &Service) -> Result<(), IndexError> {
        let key = name_and_namespace(&svc.metadata, "Service")?;
        let spec = svc_spec(svc);
        let mut model = self.lock_model();
        let mut dirty = Dirty::default();
        model.remove_service(&key, &mut dirty);
        model.add_service(key, spec, &mut dirty);
        self.publish(&model, dirty);
        Ok(())
    }

    pub fn delete_service(&self, namespace: &str, name: &str) {
        let key: Key = (Arc::from(namespace), Arc::from(name));
        let mut model = self.lock_model();
        let mut dirty = Dirty::default();
        if model.remove_service(&key, &mut dirty) {
            self.publish(&model, dirty);
        }
    }

    pub fn upsert_endpoint_slice(&self, slice: &EndpointSlice) -> Result<(), IndexError> {
        let key = name_and_namespace(&slice.metadata, "EndpointSlice")?;
        let spec = slice_spec(slice);
        let mut model = self.lock_model();
        let mut dirty = Dirty::default();
        model.remove_slice(&key, &mut dirty);
        model.add_slice(key, spec, &mut dirty);
        self.publish(&model, dirty);
        Ok(())
    }

    pub fn delete_endpoint_slice(&self, namespace: &str, name: &str) {
        let key: Key = (Arc::from(namespace), Arc::from(name));
        let mut model = self.lock_model();
        let mut dirty = Dirty::default();
        if model.remove_slice(&key, &mut dirty) {
            self.publish(&model, dirty);
        }
    }

    /// Records that a namespace exists, for names under it that exist without any Service (`<ns>.svc.<zone>`,
    /// pod names).
    pub fn upsert_namespace(&self, name: &str) {
        let mut model = self.lock_model();
        if model.ns_explicit.insert(Box::from(name)) {
            let mut dirty = Dirty::default();
            dirty.namespaces.insert(Arc::from(name));
            self.publish(&model, dirty);
        }
    }

    pub fn delete_namespace(&self, name: &str) {
        let mut model = self.lock_model();
        if model.ns_explicit.remove(name) {
            let mut dirty = Dirty::default();
            dirty.namespaces.insert(Arc::from(name));
            self.publish(&model, dirty);
        }
    }

    /// Builds the new entries for everything `dirty` names, then swaps them in under a short write lock.
    fn publish(&self, model: &Model, dirty: Dirty) {
        let services: Vec<(Box<[u8]>, Option<SvcEntry>)> = dirty
            .services
            .iter()
            .map(|k| (table_key(&k.0, &k.1), model.entry(k, &self.zone)))
            .collect();
        let ptrs: Vec<(IpAddr, Option<Names>)> =
            dirty.ips.iter().map(|ip| (*ip, model.ptr(ip))).collect();
        let pods: Vec<(IpAddr, Option<Names>)> = if self.config.pods == PodMode::Verified {
            dirty
                .ips
                .iter()
                .map(|ip| (*ip, model.pod_namespaces(ip)))
                .collect()
        } else {
            Vec::new()
        };
        let namespaces: Vec<(Box<[u8]>, bool)> = dirty
            .namespaces
            .iter()
            .map(|ns| (lower_bytes(ns), model.namespace_exists(ns)))
            .collect();

        // Replaced entries are dropped after the lock is released.
        let mut old = Vec::new();
        {
            let mut table = self.table.write().unwrap_or_else(|e| e.into_inner());
            for (k, e) in services {
                old.push(match e {
                    Some(e) => table.services.insert(k, e),
                    None => table.services.remove(&k),
                });
            }
            for (ip, p) in ptrs {
                match p {
                    Some(p) => table.ptr.insert(ip, p),
                    None => table.ptr.remove(&ip),
                };
            }
            for (ip, p) in pods {
                match p {
                    Some(p) => table.pods.insert(ip, p),
                    None => table.pods.remove(&ip),
                };
            }
            for (ns, exists) in namespaces {
                if exists {
                    table.namespaces.insert(ns);
                } else {
                    table.namespaces.remove(&ns);
                }
            }
        }
        drop(old);
        self.serial.store(now_serial(), Ordering::Relaxed);
    }
}

fn now_serial() -> u32 {
    // Truncating to 32 bits is what CoreDNS does too; it wraps in 2106.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(1)
}

impl Model {
    fn add_service(&mut self, key: Key, spec: SvcSpec, dirty: &mut Dirty) {
        for ip in &spec.cluster_ips {
            self.cluster_ips.entry(*ip).or_default().insert(key.clone());
            dirty.ips.insert(*ip);
        }
        self.mark_endpoint_ips(&key, dirty);
        *self.ns_services.entry(key.0.clone()).or_default() += 1;
        dirty.namespaces.insert(key.0.clone());
        dirty.services.insert(key.clone());
        self.services.insert(key, spec);
    }

    /// Returns whether there was such a Service.
    fn remove_service(&mut self, key: &Key, dirty: &mut Dirty) -> bool {
        let Some(spec) = self.services.remove(key) else {
            return false;
        };
        for ip in &spec.cluster_ips {
            if let Some(owners) = self.cluster_ips.get_mut(ip) {
                owners.remove(key);
                if owners.is_empty() {
                    self.cluster_ips.remove(ip);
                }
            }
            dirty.ips.insert(*ip);
        }
        // Readiness of its endpoints may depend on publishNotReadyAddresses, so their PTRs may change.
        self.mark_endpoint_ips(key, dirty);
        if let Some(n) = self.ns_services.get_mut(&key.0) {
            *n -= 1;
            if *n == 0 {
                self.ns_services.remove(&key.0);
            }
        }
        dirty.namespaces.insert(key.0.clone());
        dirty.services.insert(key.clone());
        true
    }

    fn mark_endpoint_ips(&self, svc: &Key, dirty: &mut Dirty) {
        for slice in self.slices_of.get(svc).into_iter().flatten() {
            if let Some(s) = self.slices.get(&(svc.0.clone(), slice.clone())) {
                for e in &s.endpoints {
                    dirty.ips.extend(e.ips.iter().copied());
                }
            }
        }
    }

    fn add_slice(&mut self, key: Key, spec: SliceSpec, dirty: &mut Dirty) {
        for e in &spec.endpoints {
            for ip in &e.ips {
                let slices = self.endpoint_ips.entry(*ip).or_default();
                if !slices.contains(&key) {
                    slices.push(key.clone());
                }
                dirty.ips.insert(*ip);
            }
        }
        if let Some(svc) = &spec.service {
            let svc_key: Key = (key.0.clone(), svc.clone());
            self.slices_of
                .entry(svc_key.clone())
                .or_default()
                .insert(key.1.clone());
            dirty.services.insert(svc_key);
        }
        self.slices.insert(key, spec);
    }

    fn remove_slice(&mut self, key: &Key, dirty: &mut Dirty) -> bool {
        let Some(spec) = self.slices.remove(key) else {
            return false;
        };
        for e in &spec.endpoints {
            for ip in &e.ips {
                if let Some(slices) = self.endpoint_ips.get_mut(ip) {
                    slices.retain(|k| k != key);
                    if slices.is_empty() {
                        self.endpoint_ips.remove(ip);
                    }
                }
                dirty.ips.insert(*ip);
            }
        }
        if let Some(svc) = &spec.service {
            let svc_key: Key = (key.0.clone(), svc.clone());
            if let Some(set) = self.slices_of.get_mut(&svc_key) {
                set.remove(&key.1);
                if set.is_empty() {
                    self.slices_of.remove(&svc_key);
                }
            }
            dirty.services.insert(svc_key);
        }
        true
    }

    fn namespace_exists(&self, ns: &str) -> bool {
        self.ns_services.contains_key(ns) || self.ns_explicit.contains(ns)
    }

    fn publishes_not_ready(&self, ns: &str, svc: Option<&str>) -> bool {
        svc.and_then(|s| self.services.get(&(Arc::from(ns), Arc::from(s))))
            .is_some_and(|s| s.publish_not_ready)
    }

    /// The entry for a Service, or `None` when it is gone.
    fn entry(&self, key: &Key, zone: &Zone) -> Option<SvcEntry> {
        let spec = self.services.get(key)?;
        let mut prefix = wire_labels(&format!("{}.{}.svc", key.1, key.0))?;
        // Names that cannot fit with a hostname in front and the zone behind are not servable.
        if prefix.len() + 64 + zone.wire.len() > crate::wire::MAX_NAME {
            tracing::warn!(namespace = %key.0, name = %key.1, "service name too long for the cluster domain");
            return None;
        }
        prefix.shrink_to_fit();
        let kind = match &spec.kind {
            SpecKind::ClusterIp => Kind::ClusterIp,
            SpecKind::Headless => Kind::Headless,
            SpecKind::ExternalName(t) => Kind::ExternalName(t.clone()),
        };
        let mut endpoints = Vec::new();
        let mut slice_ports = Vec::new();
        if !matches!(spec.kind, SpecKind::ExternalName(_)) {
            for slice_name in self.slices_of.get(key).into_iter().flatten() {
                let Some(slice) = self.slices.get(&(key.0.clone(), slice_name.clone())) else {
                    continue;
                };
                let ports_ix = slice_ports.len() as u32;
                slice_ports.push(slice.ports.clone());
                for e in slice
                    .endpoints
                    .iter()
                    .filter(|e| e.ready || spec.publish_not_ready)
                {
                    for ip in &e.ips {
                        endpoints.push(EndpointIn {
                            host: endpoint_host(e.host.as_deref(), ip),
                            ip: *ip,
                            ports: ports_ix,
                        });
                    }
                }
            }
        }
        Some(SvcEntry::new(
            kind,
            prefix.into_boxed_slice(),
            spec.cluster_ips.clone(),
            spec.ports.clone(),
            endpoints,
            slice_ports,
        ))
    }

    /// CoreDNS's reverse lookup: a Service holding the IP as cluster IP wins (one name); otherwise every
    /// answering endpoint with that address names `<host>.<service>.<ns>.svc`.
    fn ptr(&self, ip: &IpAddr) -> Option<Names> {
        if let Some(key) = self
            .cluster_ips
            .get(ip)
            .and_then(|owners| owners.iter().next())
        {
            let name = wire_labels(&format!("{}.{}.svc", key.1, key.0))?;
            return Some(vec![name.into_boxed_slice()].into_boxed_slice());
        }
        let mut names = BTreeSet::new();
        for slice_key in self.endpoint_ips.get(ip).into_iter().flatten() {
            let Some(slice) = self.slices.get(slice_key) else {
                continue;
            };
            let Some(svc) = slice.service.as_deref() else {
                continue;
            };
            let publish = self.publishes_not_ready(&slice_key.0, Some(svc));
            for e in slice
                .endpoints
                .iter()
                .filter(|e| (e.ready || publish) && e.ips.contains(ip))
            {
                let host = endpoint_host(e.host.as_deref(), ip);
                let host = String::from_utf8_lossy(&host).into_owned();
                if let Some(name) = wire_labels(&format!("{host}.{svc}.{}.svc", slice_key.0)) {
                    names.insert(name.into_boxed_slice());
                }
            }
        }
        (!names.is_empty()).then(|| names.into_iter().collect())
    }

    fn pod_namespaces(&self, ip: &IpAddr) -> Option<Names> {
        let mut namespaces: BTreeMap<Box<[u8]>, ()> = BTreeMap::new();
        for slice_key in self.endpoint_ips.get(ip).into_iter().flatten() {
            let Some(slice) = self.slices.get(slice_key) else {
                continue;
            };
            if slice
                .endpoints
                .iter()
                .any(|e| e.is_pod && e.ips.contains(ip))
            {
                namespaces.insert(lower_bytes(&slice_key.0), ());
            }
        }
        (!namespaces.is_empty()).then(|| namespaces.into_keys().collect())
    }
}
