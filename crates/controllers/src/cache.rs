//! The controller's view of the cluster, fed by watches: slim pods and services, node zones, and the
//! slices and Endpoints it manages, with the indexes that make a change cost O(what it touches):
//! label pair → pods and label pair → services (per namespace), node → pods, service → slices.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Endpoints;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::endpoints::CurrentEndpoints;
use crate::model::{PodInfo, ServiceInfo};
use crate::slices::{NodeZones, LABEL_SERVICE_NAME};

/// (namespace, name).
pub type Key = (String, String);
type Pair = (String, String);
/// (namespace, name) of a cached pod, sharing the pod's strings.
type PodKey = (Arc<str>, Arc<str>);

#[derive(Default)]
pub struct Cache {
    services: HashMap<Key, Arc<ServiceInfo>>,
    /// namespace → one pair of each selector → services; a pod can only be selected by services indexed
    /// under one of its own label pairs.
    services_by_pair: HashMap<String, HashMap<Pair, HashSet<String>>>,
    /// namespace → pod name → pod. Namespace, name and node strings are shared (`Arc<str>`) by the pod
    /// and every index that names it: at 100,000 pods, copies of them were a third of the pods' memory.
    pods: HashMap<Arc<str>, HashMap<Arc<str>, Arc<PodInfo>>>,
    /// Namespace and node names, one copy each for all pods.
    names: HashSet<Arc<str>>,
    /// Distinct pod label sets, shared by the pods that carry them.
    label_sets: HashSet<Arc<BTreeMap<String, String>>>,
    /// namespace → label pair → pod names.
    pods_by_pair: HashMap<Arc<str>, HashMap<Pair, HashSet<Arc<str>>>>,
    /// node name → (namespace, name) of the pods bound to it (a node's zone change resyncs their services).
    pods_by_node: HashMap<Arc<str>, HashSet<PodKey>>,
    nodes: NodeZones,
    /// service key → slice name → slice.
    slices: HashMap<Key, BTreeMap<String, CachedSlice>>,
    /// (namespace, slice name) → service key it is filed under.
    slice_owner: HashMap<Key, Key>,
    slice_count: usize,
    endpoints: HashMap<Key, Box<CurrentEndpoints>>,
    /// Services being synced → watch events about their slices and Endpoints seen meanwhile. An event
    /// can arrive before the answer to the write that caused it: held here, it is compared with what the
    /// sync wrote instead of queueing the Service again for nothing.
    in_flight: HashMap<Key, Vec<Touch>>,
}

/// A slice as this cache keeps it: its JSON, decoded again only when its Service is synced. Decoded, a
/// slice of 100 endpoints is some 700 allocations and about three times the size of its JSON; at 10,000
/// Services the decoded slices were the largest part of the controller's memory.
struct CachedSlice {
    resource_version: Option<String>,
    deleting: bool,
    json: Box<[u8]>,
}

impl CachedSlice {
    fn new(slice: &EndpointSlice) -> Self {
        Self {
            resource_version: slice.metadata.resource_version.clone(),
            deleting: slice.metadata.deletion_timestamp.is_some(),
            json: serde_json::to_vec(slice)
                .unwrap_or_default()
                .into_boxed_slice(),
        }
    }

    fn decode(&self) -> Option<EndpointSlice> {
        serde_json::from_slice(&self.json).ok()
    }
}

/// A slice or Endpoints write of one sync, or a watch event about one (`rv` is `None` for deletions).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Touch {
    pub endpoints: bool,
    pub name: String,
    pub rv: Option<String>,
}

impl Touch {
    /// A slice as written or seen (its name and resourceVersion).
    pub fn of_slice(s: &EndpointSlice) -> Self {
        Self::slice(
            s.metadata.name.clone().unwrap_or_default(),
            s.metadata.resource_version.clone(),
        )
    }

    pub fn slice(name: impl Into<String>, rv: Option<String>) -> Self {
        Self {
            endpoints: false,
            name: name.into(),
            rv,
        }
    }

    pub fn endpoints(name: impl Into<String>, rv: Option<String>) -> Self {
        Self {
            endpoints: true,
            name: name.into(),
            rv,
        }
    }
}

/// A resourceVersion as a number, for telling an older watch event from a newer write of ours.
pub fn rv_number(rv: Option<&String>) -> Option<u64> {
    rv.and_then(|s| s.parse().ok())
}

/// Whether `incoming` is older than `cached` (unknowable RVs count as not older).
fn older(incoming: Option<&String>, cached: Option<&String>) -> bool {
    matches!((rv_number(incoming), rv_number(cached)), (Some(a), Some(b)) if a < b)
}

fn index_pair(svc: &ServiceInfo) -> Option<Pair> {
    svc.selector
        .as_ref()
        .and_then(|s| s.iter().next())
        .map(|(k, v)| (k.clone(), v.clone()))
}

/// Everything one Service sync needs, copied out so no lock is held across API calls.
pub struct Snapshot {
    pub service: Option<Arc<ServiceInfo>>,
    pub pods: Vec<Arc<PodInfo>>,
    pub nodes: NodeZones,
    pub slices: Vec<EndpointSlice>,
    pub endpoints: Option<CurrentEndpoints>,
}

impl Cache {
    // ---- services ----

    /// Stores a Service; returns whether anything endpoints depend on changed.
    pub fn put_service(&mut self, svc: ServiceInfo) -> bool {
        let key = (svc.namespace.clone(), svc.name.clone());
        if self.services.get(&key).is_some_and(|old| **old == svc) {
            return false;
        }
        self.remove_service(&key);
        if let Some(pair) = index_pair(&svc) {
            self.services_by_pair
                .entry(svc.namespace.clone())
                .or_default()
                .entry(pair)
                .or_default()
                .insert(svc.name.clone());
        }
        self.services.insert(key, Arc::new(svc));
        true
    }

    pub fn remove_service(&mut self, key: &Key) -> bool {
        let Some(old) = self.services.remove(key) else {
            return false;
        };
        if let Some(pair) = index_pair(&old) {
            if let Some(ns) = self.services_by_pair.get_mut(&key.0) {
                if let Some(set) = ns.get_mut(&pair) {
                    set.remove(&key.1);
                    if set.is_empty() {
                        ns.remove(&pair);
                    }
                }
                if ns.is_empty() {
                    self.services_by_pair.remove(&key.0);
                }
            }
        }
        true
    }

    pub fn service_keys(&self) -> Vec<Key> {
        self.services.keys().cloned().collect()
    }

    pub fn service_count(&self) -> usize {
        self.services.len()
    }

    /// Services in `namespace` whose selector matches `labels`.
    pub fn services_selecting(
        &self,
        namespace: &str,
        labels: &BTreeMap<String, String>,
        out: &mut HashSet<Key>,
    ) {
        let Some(ns) = self.services_by_pair.get(namespace) else {
            return;
        };
        for (k, v) in labels {
            let Some(names) = ns.get(&(k.clone(), v.clone())) else {
                continue;
            };
            for name in names {
                let key = (namespace.to_string(), name.clone());
                if self.services.get(&key).is_some_and(|s| s.selects(labels)) {
                    out.insert(key);
                }
            }
        }
    }

    // ---- pods ----

    /// Stores a pod; returns the Services to resync (those selecting it before or after), empty when
    /// nothing endpoints depend on changed.
    pub fn put_pod(&mut self, mut pod: PodInfo) -> HashSet<Key> {
        pod.namespace = self.intern(&pod.namespace);
        pod.node_name = self.intern(&pod.node_name);
        let mut affected = HashSet::new();
        let existing = self.pod(&pod.namespace, &pod.name).cloned();
        if let Some(old) = existing {
            if *old == pod {
                return affected;
            }
            self.drop_pod(&old, &mut affected);
        }
        match self.label_sets.get(&*pod.labels) {
            Some(shared) => pod.labels = Arc::clone(shared),
            None => {
                self.label_sets.insert(Arc::clone(&pod.labels));
            }
        }
        self.services_selecting(&pod.namespace, &pod.labels, &mut affected);
        self.index_pod(&pod);
        self.pods
            .entry(Arc::clone(&pod.namespace))
            .or_default()
            .insert(Arc::clone(&pod.name), Arc::new(pod));
        affected
    }

    pub fn remove_pod(&mut self, key: &Key) -> HashSet<Key> {
        let mut affected = HashSet::new();
        if let Some(old) = self.pod(&key.0, &key.1).cloned() {
            self.drop_pod(&old, &mut affected);
        }
        affected
    }

    fn pod(&self, namespace: &str, name: &str) -> Option<&Arc<PodInfo>> {
        self.pods.get(namespace).and_then(|m| m.get(name))
    }

    /// Takes a cached pod out of the cache and its indexes, noting the Services that selected it.
    fn drop_pod(&mut self, old: &PodInfo, affected: &mut HashSet<Key>) {
        self.services_selecting(&old.namespace, &old.labels, affected);
        self.unindex_pod(old);
        if let Some(m) = self.pods.get_mut(&*old.namespace) {
            m.remove(&*old.name);
            if m.is_empty() {
                self.pods.remove(&*old.namespace);
            }
        }
        self.release_labels(&old.labels);
    }

    fn intern(&mut self, s: &Arc<str>) -> Arc<str> {
        if let Some(shared) = self.names.get(&**s) {
            return Arc::clone(shared);
        }
        self.names.insert(Arc::clone(s));
        Arc::clone(s)
    }

    /// Drops a label set from the interner once `labels` (held by a pod just removed) is its last user
    /// besides the interner. A snapshot still holding the pod keeps the set; it is reused or stays behind.
    fn release_labels(&mut self, labels: &Arc<BTreeMap<String, String>>) {
        if Arc::strong_count(labels) <= 2 {
            self.label_sets.remove(&**labels);
        }
    }

    pub fn pod_keys(&self) -> Vec<Key> {
        self.pods
            .iter()
            .flat_map(|(ns, m)| m.keys().map(|n| (ns.to_string(), n.to_string())))
            .collect()
    }

    fn index_pod(&mut self, pod: &PodInfo) {
        let ns = self
            .pods_by_pair
            .entry(Arc::clone(&pod.namespace))
            .or_default();
        for (k, v) in pod.labels.iter() {
            ns.entry((k.clone(), v.clone()))
                .or_default()
                .insert(Arc::clone(&pod.name));
        }
        if !pod.node_name.is_empty() {
            self.pods_by_node
                .entry(Arc::clone(&pod.node_name))
                .or_default()
                .insert((Arc::clone(&pod.namespace), Arc::clone(&pod.name)));
        }
    }

    fn unindex_pod(&mut self, pod: &PodInfo) {
        if let Some(ns) = self.pods_by_pair.get_mut(&*pod.namespace) {
            for (k, v) in pod.labels.iter() {
                let pair = (k.clone(), v.clone());
                if let Some(set) = ns.get_mut(&pair) {
                    set.remove(&*pod.name);
                    if set.is_empty() {
                        ns.remove(&pair);
                    }
                }
            }
            if ns.is_empty() {
                self.pods_by_pair.remove(&*pod.namespace);
            }
        }
        if let Some(set) = self.pods_by_node.get_mut(&*pod.node_name) {
            set.remove(&(Arc::clone(&pod.namespace), Arc::clone(&pod.name)));
            if set.is_empty() {
                self.pods_by_node.remove(&*pod.node_name);
            }
        }
    }

    /// Pods the Service selects: the smallest posting list of its selector's pairs, filtered.
    fn pods_selected_by(&self, svc: &ServiceInfo) -> Vec<Arc<PodInfo>> {
        let (Some(sel), Some(ns)) = (
            svc.selector.as_ref(),
            self.pods_by_pair.get(svc.namespace.as_str()),
        ) else {
            return Vec::new();
        };
        let mut smallest: Option<&HashSet<Arc<str>>> = None;
        for (k, v) in sel.iter() {
            match ns.get(&(k.clone(), v.clone())) {
                None => return Vec::new(),
                Some(set) => {
                    if smallest.is_none_or(|s| set.len() < s.len()) {
                        smallest = Some(set);
                    }
                }
            }
        }
        smallest
            .into_iter()
            .flatten()
            .filter_map(|name| {
                self.pod(&svc.namespace, name)
                    .filter(|p| svc.selects(&p.labels))
                    .cloned()
            })
            .collect()
    }

    // ---- nodes ----

    /// Stores a node's zone; returns the Services of pods on it when the zone or existence changed.
    pub fn put_node(&mut self, name: &str, zone: Option<String>) -> HashSet<Key> {
        if self.nodes.get(name) == Some(&zone) {
            return HashSet::new();
        }
        self.nodes.insert(name.to_string(), zone);
        self.services_on_node(name)
    }

    pub fn remove_node(&mut self, name: &str) -> HashSet<Key> {
        if self.nodes.remove(name).is_none() {
            return HashSet::new();
        }
        self.services_on_node(name)
    }

    pub fn node_names(&self) -> Vec<String> {
        self.nodes.keys().cloned().collect()
    }

    fn services_on_node(&self, node: &str) -> HashSet<Key> {
        let mut out = HashSet::new();
        for (ns, name) in self.pods_by_node.get(node).into_iter().flatten() {
            if let Some(p) = self.pod(ns, name) {
                self.services_selecting(&p.namespace, &p.labels, &mut out);
            }
        }
        out
    }

    // ---- slices ----

    /// Stores a slice seen on the watch. Returns the Service to resync when the slice is not what this
    /// controller last wrote (someone else changed it), `None` for echoes of our own writes and for events
    /// older than what is cached.
    pub fn observe_slice(&mut self, slice: EndpointSlice) -> Option<Key> {
        let ns = slice.metadata.namespace.clone().unwrap_or_default();
        let name = slice.metadata.name.clone().unwrap_or_default();
        let svc = slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(LABEL_SERVICE_NAME))
            .cloned()
            .unwrap_or_default();
        let owner = (ns.clone(), svc);
        if let Some(prev_owner) = self.slice_owner.get(&(ns.clone(), name.clone())).cloned() {
            if let Some(cached) = self.slices.get(&prev_owner).and_then(|m| m.get(&name)) {
                let (inc, cur) = (
                    slice.metadata.resource_version.as_ref(),
                    cached.resource_version.as_ref(),
                );
                if prev_owner == owner && (inc == cur || older(inc, cur)) {
                    return None;
                }
            }
        }
        let touch = Touch::of_slice(&slice);
        self.store_slice(slice);
        (!self.hold(&owner, touch)).then_some(owner)
    }

    /// A slice deleted on the watch; returns the Service to resync, as [`Self::observe_slice`].
    pub fn observe_slice_deleted(&mut self, ns: &str, name: &str) -> Option<Key> {
        let owner = self.forget_slice(ns, name)?;
        let touch = Touch::slice(name, None);
        (!self.hold(&owner, touch)).then_some(owner)
    }

    // ---- syncs in flight ----

    pub fn begin_sync(&mut self, key: &Key) {
        self.in_flight.insert(key.clone(), Vec::new());
    }

    /// Ends a sync; returns whether a watch event seen during it was anything but the echo of the sync's
    /// own writes (or older than them), so the Service must be looked at again.
    pub fn end_sync(&mut self, key: &Key, written: &[Touch]) -> bool {
        let held = self.in_flight.remove(key).unwrap_or_default();
        held.iter().any(|h| {
            !written.iter().any(|w| {
                w.endpoints == h.endpoints
                    && w.name == h.name
                    && (w.rv == h.rv || older(h.rv.as_ref(), w.rv.as_ref()))
            })
        })
    }

    /// Keeps an event for the sync in flight of `owner`, if there is one.
    fn hold(&mut self, owner: &Key, touch: Touch) -> bool {
        match self.in_flight.get_mut(owner) {
            Some(held) => {
                held.push(touch);
                true
            }
            None => false,
        }
    }

    /// Stores a slice this controller just wrote (the API's answer).
    pub fn store_slice(&mut self, mut slice: EndpointSlice) {
        // managedFields are never sent back (an update without them keeps the stored ones).
        slice.metadata.managed_fields = None;
        let ns = slice.metadata.namespace.clone().unwrap_or_default();
        let name = slice.metadata.name.clone().unwrap_or_default();
        let svc = slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(LABEL_SERVICE_NAME))
            .cloned()
            .unwrap_or_default();
        self.forget_slice(&ns, &name);
        let owner = (ns.clone(), svc);
        self.slice_owner.insert((ns, name.clone()), owner.clone());
        self.slices
            .entry(owner)
            .or_default()
            .insert(name, CachedSlice::new(&slice));
        self.slice_count += 1;
    }

    /// Drops a slice; returns the Service it was filed under if it was cached.
    pub fn forget_slice(&mut self, ns: &str, name: &str) -> Option<Key> {
        let owner = self
            .slice_owner
            .remove(&(ns.to_string(), name.to_string()))?;
        if let Some(m) = self.slices.get_mut(&owner) {
            if m.remove(name).is_some() {
                self.slice_count -= 1;
            }
            if m.is_empty() {
                self.slices.remove(&owner);
            }
        }
        Some(owner)
    }

    pub fn slice_names(&self) -> Vec<Key> {
        self.slice_owner.keys().cloned().collect()
    }

    pub fn slice_count(&self) -> usize {
        self.slice_count
    }

    // ---- endpoints ----

    /// Stores an Endpoints seen on the watch; returns whether it differs from what is cached.
    pub fn observe_endpoints(&mut self, ep: Endpoints) -> bool {
        let key = (
            ep.metadata.namespace.clone().unwrap_or_default(),
            ep.metadata.name.clone().unwrap_or_default(),
        );
        if let Some(cur) = self.endpoints.get(&key) {
            let (inc, c) = (
                ep.metadata.resource_version.as_ref(),
                cur.metadata.resource_version.as_ref(),
            );
            if inc == c || older(inc, c) {
                return false;
            }
        }
        let touch = Touch::endpoints(key.1.clone(), ep.metadata.resource_version.clone());
        self.endpoints
            .insert(key.clone(), Box::new(CurrentEndpoints::new(&ep)));
        !self.hold(&key, touch)
    }

    /// An Endpoints deleted on the watch; returns whether its Service needs a sync.
    pub fn observe_endpoints_deleted(&mut self, key: &Key) -> bool {
        if !self.forget_endpoints(key) {
            return false;
        }
        let touch = Touch::endpoints(key.1.clone(), None);
        !self.hold(key, touch)
    }

    pub fn store_endpoints(&mut self, ep: Endpoints) {
        let key = (
            ep.metadata.namespace.clone().unwrap_or_default(),
            ep.metadata.name.clone().unwrap_or_default(),
        );
        self.endpoints
            .insert(key, Box::new(CurrentEndpoints::new(&ep)));
    }

    pub fn forget_endpoints(&mut self, key: &Key) -> bool {
        self.endpoints.remove(key).is_some()
    }

    pub fn endpoints_keys(&self) -> Vec<Key> {
        self.endpoints.keys().cloned().collect()
    }

    // ---- sync ----

    pub fn snapshot(&self, key: &Key) -> Snapshot {
        let service = self.services.get(key).cloned();
        let pods = service
            .as_ref()
            .map(|s| self.pods_selected_by(s))
            .unwrap_or_default();
        let nodes = pods
            .iter()
            .filter_map(|p| {
                self.nodes
                    .get(&*p.node_name)
                    .map(|z| (p.node_name.to_string(), z.clone()))
            })
            .collect();
        let slices = self
            .slices
            .get(key)
            .map(|m| {
                m.values()
                    .filter(|s| !s.deleting)
                    .filter_map(CachedSlice::decode)
                    .collect()
            })
            .unwrap_or_default();
        Snapshot {
            service,
            pods,
            nodes,
            slices,
            endpoints: self.endpoints.get(key).map(|e| (**e).clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, labels: &[(&str, &str)], node: &str) -> PodInfo {
        PodInfo {
            namespace: "ns".into(),
            name: name.into(),
            uid: format!("uid-{name}"),
            labels: Arc::new(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ips: vec!["10.0.0.1".parse().unwrap()],
            ready: true,
            terminating: false,
            terminal: false,
            node_name: node.into(),
            hostname: String::new(),
            subdomain: String::new(),
            ports: vec![],
        }
    }

    fn svc(name: &str, sel: &[(&str, &str)]) -> ServiceInfo {
        ServiceInfo {
            namespace: "ns".into(),
            name: name.into(),
            uid: format!("uid-{name}"),
            labels: BTreeMap::new(),
            selector: Some(
                sel.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ports: vec![],
            cluster_ip: "10.96.0.10".into(),
            ip_families: vec!["IPv4".into()],
            publish_not_ready: false,
            traffic_distribution: None,
            topology_hints_annotation: false,
            external_name: false,
            deleting: false,
        }
    }

    fn key(n: &str) -> Key {
        ("ns".into(), n.into())
    }

    #[test]
    fn pod_changes_reach_only_the_services_selecting_it() {
        let mut c = Cache::default();
        c.put_service(svc("web", &[("app", "web"), ("tier", "fe")]));
        c.put_service(svc("db", &[("app", "db")]));
        let hit = c.put_pod(pod("w1", &[("app", "web"), ("tier", "fe")], "n1"));
        assert_eq!(hit, HashSet::from([key("web")]));
        // Same content: nothing to do.
        assert!(c
            .put_pod(pod("w1", &[("app", "web"), ("tier", "fe")], "n1"))
            .is_empty());
        // Relabelled: both the old and the new selecting services.
        let hit = c.put_pod(pod("w1", &[("app", "db")], "n1"));
        assert_eq!(hit, HashSet::from([key("web"), key("db")]));
        assert_eq!(c.snapshot(&key("db")).pods.len(), 1);
        assert!(c.snapshot(&key("web")).pods.is_empty());
        assert_eq!(c.remove_pod(&key("w1")), HashSet::from([key("db")]));
    }

    #[test]
    fn snapshot_uses_full_selector_and_node_zones() {
        let mut c = Cache::default();
        c.put_service(svc("web", &[("app", "web"), ("tier", "fe")]));
        c.put_pod(pod("a", &[("app", "web"), ("tier", "fe")], "n1"));
        c.put_pod(pod("b", &[("app", "web")], "n1"));
        assert!(c.put_node("n1", Some("z1".into())).contains(&key("web")));
        assert!(c.put_node("n1", Some("z1".into())).is_empty());
        let s = c.snapshot(&key("web"));
        assert_eq!(s.pods.len(), 1);
        assert_eq!(s.nodes.get("n1"), Some(&Some("z1".to_string())));
    }

    #[test]
    fn own_write_echoes_and_stale_events_do_not_resync() {
        let mut c = Cache::default();
        let mut s = EndpointSlice {
            address_type: "IPv4".into(),
            ..Default::default()
        };
        s.metadata.namespace = Some("ns".into());
        s.metadata.name = Some("web-abc".into());
        s.metadata.labels = Some(BTreeMap::from([(
            LABEL_SERVICE_NAME.to_string(),
            "web".to_string(),
        )]));
        s.metadata.resource_version = Some("10".into());
        c.store_slice(s.clone());
        assert_eq!(c.observe_slice(s.clone()), None);
        let mut older_ev = s.clone();
        older_ev.metadata.resource_version = Some("9".into());
        assert_eq!(c.observe_slice(older_ev), None);
        let mut foreign = s.clone();
        foreign.metadata.resource_version = Some("11".into());
        assert_eq!(c.observe_slice(foreign), Some(key("web")));
        assert_eq!(c.slice_count(), 1);
        assert_eq!(c.forget_slice("ns", "web-abc"), Some(key("web")));
        assert_eq!(c.slice_count(), 0);
    }

    #[test]
    fn events_during_a_sync_resync_only_when_they_are_not_its_own_writes() {
        let mut c = Cache::default();
        let slice = |name: &str, rv: &str| {
            let mut s = EndpointSlice {
                address_type: "IPv4".into(),
                ..Default::default()
            };
            s.metadata.namespace = Some("ns".into());
            s.metadata.name = Some(name.into());
            s.metadata.labels = Some(BTreeMap::from([(
                LABEL_SERVICE_NAME.to_string(),
                "web".to_string(),
            )]));
            s.metadata.resource_version = Some(rv.into());
            s
        };
        let wrote = |name: &str, rv: &str| Touch::slice(name, Some(rv.into()));
        // The event of a create arrives before the create's answer: held, then matched.
        c.begin_sync(&key("web"));
        assert_eq!(c.observe_slice(slice("web-a", "10")), None);
        c.store_slice(slice("web-a", "10"));
        assert!(!c.end_sync(&key("web"), &[wrote("web-a", "10")]));
        // Someone else's write during a sync: the Service is synced again afterwards.
        c.begin_sync(&key("web"));
        assert_eq!(c.observe_slice(slice("web-b", "12")), None);
        assert!(c.end_sync(&key("web"), &[wrote("web-a", "11")]));
        // A deletion by someone else, outside any sync, resyncs at once.
        assert_eq!(c.observe_slice_deleted("ns", "web-b"), Some(key("web")));
        // Endpoints: an older event than what the sync wrote is no reason to resync.
        c.begin_sync(&key("web"));
        let mut ep = Endpoints::default();
        ep.metadata.namespace = Some("ns".into());
        ep.metadata.name = Some("web".into());
        ep.metadata.resource_version = Some("13".into());
        assert!(!c.observe_endpoints(ep));
        let ep_written = Touch::endpoints("web", Some("14".into()));
        assert!(!c.end_sync(&key("web"), &[ep_written]));
    }
}
