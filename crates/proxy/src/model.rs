//! The desired state of one node's Services for one IP family, updated one API object at a time.

use foldhash::HashMap;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use tracing::warn;

use crate::claims::{ClaimMap, OwnerId};
use crate::config::{Config, NodeInfo};
use crate::diff::{Diff, FrontendChange, Op};
use crate::endpoints::{slice_info, SliceInfo};
use crate::error::ServiceError;
use crate::plan::{build, Context, FrontendState, ServicePlan, StoredPlan};
use crate::service::{service_info, ServiceInfo};
use crate::shape::{Element, Key, PickChain, SetName, Value};
use crate::types::{Family, Frontend, ServiceKey};

/// The kube-proxy health check of one Service (`healthCheckNodePort`), answered 200 when
/// `local_endpoints > 0` and 503 otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    pub service: ServiceKey,
    pub node_port: u16,
    /// Distinct ready endpoint addresses of the Service on this node (terminating ones do not count, so a
    /// load balancer drains a node whose pods are shutting down).
    pub local_endpoints: usize,
}

/// Sizes, for metrics and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub services: usize,
    pub frontends: usize,
    pub elements: usize,
    pub chains: usize,
}

/// One node's Services for one family. All maps are keyed by object or frontend, and a change recomputes
/// only the Service it concerns; [`ProxyModel::take_diff`] then looks only at what was touched.
#[derive(Debug)]
pub struct ProxyModel {
    config: Config,
    node: NodeInfo,
    nodeport_ips: Vec<IpAddr>,
    owner_ids: HashMap<ServiceKey, OwnerId>,
    owners: Vec<ServiceKey>,
    services: HashMap<ServiceKey, ServiceInfo>,
    /// (namespace, slice name) → slice.
    slices: HashMap<(String, String), SliceInfo>,
    slices_by_service: HashMap<ServiceKey, BTreeSet<String>>,
    plans: HashMap<ServiceKey, StoredPlan>,
    /// Services whose plan has a health check (eTP:Local LoadBalancers), in order: the agent reads
    /// them after every sync, which must not cost a walk over every Service.
    health_checked: BTreeSet<ServiceKey>,
    elements: ClaimMap<Element, Value>,
    frontends: ClaimMap<Frontend, FrontendState>,
    /// Pick chains and how many active elements jump to each, as of the last diff.
    chains: HashMap<PickChain, u32>,
}

impl ProxyModel {
    pub fn new(config: Config) -> ProxyModel {
        ProxyModel {
            config,
            node: NodeInfo::default(),
            nodeport_ips: Vec::new(),
            owner_ids: HashMap::default(),
            owners: Vec::new(),
            services: HashMap::default(),
            slices: HashMap::default(),
            slices_by_service: HashMap::default(),
            plans: HashMap::default(),
            health_checked: BTreeSet::new(),
            elements: ClaimMap::new(),
            frontends: ClaimMap::new(),
            chains: HashMap::default(),
        }
    }

    /// Records no diff until the first [`ProxyModel::mark_synced`]: for an owner (the agent) whose first
    /// load of the kernel is always a full one, so that a cold start does not hold a record of every element
    /// next to the elements themselves. [`ProxyModel::take_diff`] is empty until then.
    pub fn untracked_until_synced(&mut self) {
        self.elements.untracked_until_synced();
        self.frontends.untracked_until_synced();
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn family(&self) -> Family {
        self.config.family
    }

    /// Takes this node's addresses and labels from its Node object.
    pub fn set_node(&mut self, node: &Node) {
        self.set_node_info(NodeInfo::from_node(node));
    }

    /// As [`ProxyModel::set_node`]; NodePort addresses, zone and the firewall's node address derive from it,
    /// so a change recomputes every Service (rare: a Node's addresses and zone seldom change).
    pub fn set_node_info(&mut self, node: NodeInfo) {
        if node == self.node {
            return;
        }
        self.node = node;
        self.nodeport_ips = self.node.nodeport_ips(&self.config);
        let keys: Vec<ServiceKey> = self.services.keys().cloned().collect();
        for key in keys {
            self.recompute(&key);
        }
    }

    /// Adds or replaces a Service. A Service the data plane skips (ExternalName, headless, none of this
    /// family's ClusterIPs) is removed; one it cannot read is removed and reported.
    pub fn upsert_service(&mut self, service: &Service) -> Result<(), ServiceError> {
        let key = ServiceKey::new(
            service.metadata.namespace.clone().unwrap_or_default(),
            service.metadata.name.clone().unwrap_or_default(),
        );
        let result = service_info(service, self.config.family);
        let info = match &result {
            Ok(info) => info.clone(),
            Err(_) => None,
        };
        match info {
            Some(info) => {
                if self.services.get(&key) == Some(&info) {
                    return Ok(());
                }
                self.services.insert(key.clone(), info);
            }
            None => {
                if self.services.remove(&key).is_none() {
                    return result.map(|_| ());
                }
            }
        }
        self.recompute(&key);
        result.map(|_| ())
    }

    pub fn delete_service(&mut self, namespace: &str, name: &str) {
        let key = ServiceKey::new(namespace, name);
        if self.services.remove(&key).is_some() {
            self.recompute(&key);
        }
    }

    /// Adds or replaces an EndpointSlice (slices of the other address type are ignored).
    pub fn upsert_endpoint_slice(&mut self, slice: &EndpointSlice) {
        let namespace = slice.metadata.namespace.clone().unwrap_or_default();
        let name = slice.metadata.name.clone().unwrap_or_default();
        let id = (namespace, name);
        let new = slice_info(slice, self.config.family);
        if self.slices.get(&id) == new.as_ref() {
            return;
        }
        let old_service = self.remove_slice(&id);
        let new_service = new.as_ref().map(|s| s.service.clone());
        if let Some(info) = new {
            self.slices_by_service
                .entry(info.service.clone())
                .or_default()
                .insert(id.1.clone());
            self.slices.insert(id, info);
        }
        if let Some(service) = &old_service {
            self.recompute(service);
        }
        if let Some(service) = new_service.filter(|s| Some(s) != old_service.as_ref()) {
            self.recompute(&service);
        }
    }

    pub fn delete_endpoint_slice(&mut self, namespace: &str, name: &str) {
        let id = (namespace.to_string(), name.to_string());
        if let Some(service) = self.remove_slice(&id) {
            self.recompute(&service);
        }
    }

    fn remove_slice(&mut self, id: &(String, String)) -> Option<ServiceKey> {
        let old = self.slices.remove(id)?;
        if let Some(names) = self.slices_by_service.get_mut(&old.service) {
            names.remove(&id.1);
            if names.is_empty() {
                self.slices_by_service.remove(&old.service);
            }
        }
        Some(old.service)
    }

    fn owner(&mut self, key: &ServiceKey) -> OwnerId {
        if let Some(id) = self.owner_ids.get(key) {
            return *id;
        }
        let id = self.owners.len() as OwnerId;
        self.owners.push(key.clone());
        self.owner_ids.insert(key.clone(), id);
        id
    }

    /// Recomputes one Service and moves its claims from the old plan to the new one.
    fn recompute(&mut self, key: &ServiceKey) {
        let previous = self.plans.remove(key);
        self.health_checked.remove(key);
        let plan = match self.services.get(key) {
            Some(info) => {
                let slices: Vec<&SliceInfo> = self
                    .slices_by_service
                    .get(key)
                    .into_iter()
                    .flatten()
                    .filter_map(|name| self.slices.get(&(key.namespace.clone(), name.clone())))
                    .collect();
                let ctx = Context {
                    config: &self.config,
                    node: &self.node,
                    nodeport_ips: &self.nodeport_ips,
                };
                let previous_ports = previous.as_ref().map_or(&[][..], |p| &p.ports[..]);
                build(key, info, &slices, previous_ports, &ctx)
            }
            None => ServicePlan::default(),
        };
        let owner = self.owner(key);
        let owners = &self.owners;
        let order =
            |a: OwnerId, b: OwnerId| -> Ordering { owners[a as usize].cmp(&owners[b as usize]) };
        let old = previous.unwrap_or_default();

        let frontend_rank: HashMap<Frontend, u8> = plan
            .frontends
            .iter()
            .map(|(f, s)| (*f, s.kind.rank()))
            .collect();
        let rank_of = |element: &Element| -> u8 {
            let frontend = match element.key {
                Key::Frontend(f) | Key::Slot(f, _) | Key::Source(f, _) => f,
                Key::Addr(_) | Key::Hairpin(_) => return 0,
            };
            frontend_rank.get(&frontend).copied().unwrap_or(0)
        };
        // Both lists are sorted: what the old plan has and the new one lacks is released.
        let new_elements: Vec<Element> = plan.elements.iter().map(|(e, _)| *e).collect();
        for element in old.elements.iter() {
            if new_elements.binary_search(element).is_err() {
                self.elements.release(element, owner);
            }
        }
        for (element, value) in &plan.elements {
            if self.elements.claimed(element, owner) != Some(value) {
                self.elements
                    .claim(*element, owner, rank_of(element), *value, &order);
                if self.elements.conflicted(element) {
                    warn!(service = %key, element = ?element, "another Service claims the same frontend; lowest wins");
                }
            }
        }

        let new_frontends: Vec<Frontend> = plan.frontends.iter().map(|(f, _)| *f).collect();
        for frontend in old.frontends.iter() {
            if new_frontends.binary_search(frontend).is_err() {
                self.frontends.release(frontend, owner);
            }
        }
        for (frontend, state) in plan.frontends {
            if self.frontends.claimed(&frontend, owner) != Some(&state) {
                let rank = state.kind.rank();
                self.frontends.claim(frontend, owner, rank, state, &order);
            }
        }

        if self.services.contains_key(key) {
            if plan.health_check.is_some() {
                self.health_checked.insert(key.clone());
            }
            self.plans.insert(
                key.clone(),
                StoredPlan {
                    ports: plan.ports,
                    elements: new_elements.into_boxed_slice(),
                    frontends: new_frontends.into_boxed_slice(),
                    health_check: plan.health_check,
                },
            );
        }
    }

    /// The operations that bring the kernel from the last diff (or an empty table) to the model, and the
    /// frontends that changed. The model then assumes the kernel has it: an executor that fails to apply a
    /// diff must fall back to a full load ([`crate::render::ruleset`]) and [`ProxyModel::mark_synced`].
    pub fn take_diff(&mut self) -> Diff {
        let mut deletes = Vec::new();
        let mut adds = Vec::new();
        let mut chain_delta: BTreeMap<PickChain, i64> = BTreeMap::new();
        for (element, before, after) in self.elements.take_changes() {
            if let Some(before) = before {
                if let Some(chain) = before.pick_chain() {
                    *chain_delta.entry(chain).or_default() -= 1;
                }
                deletes.push(element);
            }
            if let Some(after) = after {
                if let Some(chain) = after.pick_chain() {
                    *chain_delta.entry(chain).or_default() += 1;
                }
                adds.push((element, after));
            }
        }
        let mut added_chains = Vec::new();
        let mut deleted_chains = Vec::new();
        for (chain, delta) in chain_delta {
            let before = self.chains.get(&chain).copied().unwrap_or(0);
            let after = (i64::from(before) + delta).max(0) as u32;
            if before == 0 && after > 0 {
                added_chains.push(chain);
            } else if before > 0 && after == 0 {
                deleted_chains.push(chain);
            }
            if after == 0 {
                self.chains.remove(&chain);
            } else {
                self.chains.insert(chain, after);
            }
        }
        deletes.sort();
        adds.sort();
        let mut ops: Vec<Op> = added_chains.into_iter().map(Op::AddChain).collect();
        ops.extend(deletes.into_iter().map(Op::DeleteElement));
        ops.extend(adds.into_iter().map(|(e, v)| Op::AddElement(e, v)));
        ops.extend(deleted_chains.into_iter().map(Op::DeleteChain));

        let mut frontends: Vec<FrontendChange> = self
            .frontends
            .take_changes()
            .into_iter()
            .map(|(frontend, before, after)| FrontendChange {
                frontend,
                before,
                after,
            })
            .collect();
        frontends.sort_by_key(|a| a.frontend);
        Diff {
            family: self.config.family,
            ops,
            frontends,
        }
    }

    /// Declares that the kernel now holds exactly the model (after loading [`crate::render::ruleset`]):
    /// pending changes are dropped and chain references recounted.
    pub fn mark_synced(&mut self) {
        self.elements.mark_synced();
        self.frontends.mark_synced();
        self.chains = self.pick_chain_refs();
    }

    fn pick_chain_refs(&self) -> HashMap<PickChain, u32> {
        let mut refs = HashMap::default();
        for (_, value) in self.elements.active() {
            if let Some(chain) = value.pick_chain() {
                *refs.entry(chain).or_insert(0) += 1;
            }
        }
        refs
    }

    /// Every active element, sorted by set then key.
    pub fn elements(&self) -> Vec<(Element, Value)> {
        self.elements_sorted()
            .into_iter()
            .map(|(e, v)| (*e, *v))
            .collect()
    }

    /// [`ProxyModel::elements`] without copying them (a full sync walks 130k at 10k Services).
    pub fn elements_sorted(&self) -> Vec<(&Element, &Value)> {
        let mut out: Vec<(&Element, &Value)> = self.elements.active().collect();
        out.sort_unstable();
        out
    }

    /// The pick chains the active elements jump to, sorted.
    pub fn pick_chains(&self) -> Vec<PickChain> {
        let mut out: Vec<PickChain> = self.pick_chain_refs().into_keys().collect();
        out.sort();
        out
    }

    /// The frontends of one set, e.g. to count rules for metrics.
    pub fn count(&self, set: SetName) -> usize {
        self.elements.active().filter(|(e, _)| e.set == set).count()
    }

    /// What a frontend leads to now.
    pub fn frontends(&self) -> Vec<(Frontend, FrontendState)> {
        let mut out: Vec<(Frontend, FrontendState)> = self
            .frontends
            .active()
            .map(|(f, s)| (*f, s.clone()))
            .collect();
        out.sort_by_key(|a| a.0);
        out
    }

    /// Health checks for LoadBalancer Services with `externalTrafficPolicy: Local`, sorted by Service.
    pub fn health_checks(&self) -> Vec<HealthCheck> {
        self.health_checked
            .iter()
            .filter_map(|key| {
                let (node_port, local_endpoints) = self.plans.get(key)?.health_check?;
                Some(HealthCheck {
                    service: key.clone(),
                    node_port,
                    local_endpoints,
                })
            })
            .collect()
    }

    pub fn stats(&self) -> Stats {
        Stats {
            services: self.plans.len(),
            frontends: self.frontends.len(),
            elements: self.elements.len(),
            chains: self.chains.len(),
        }
    }
}
