//! Service writes: defaulting and validation (the `api` crate), then allocation of cluster IPs, node
//! ports and the health-check node port, planned as extra compares and ops of the same store
//! transaction as the Service itself. Each allocation is a key of its own (`IPAddress` objects under
//! `/registry/ipaddresses/`, node ports under `/registry/svcplane/nodeports/`), created with an
//! "absent" compare, so two writers can never take the same value, even from two API servers.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Mutex;

use alloc::{AllocError, IpRange, PortRange};
use api::field::FieldError;
use api::service::{ClusterNetworkConfig, IpFamily};
use ipnet::IpNet;
use k8s_openapi::api::core::v1::Service;
use serde_json::{json, Value};
use store::{Compare, Op};

use crate::resources::SERVICES;
use crate::status::ApiError;

pub const IP_PREFIX: &str = "/registry/ipaddresses/";
pub const NODE_PORT_PREFIX: &str = "/registry/svcplane/nodeports/";

pub fn ip_key(ip: &IpAddr) -> String {
    format!("{IP_PREFIX}{ip}")
}

pub fn port_key(port: u16) -> String {
    format!("{NODE_PORT_PREFIX}{port}")
}

struct Ranges {
    ips: Vec<(IpFamily, IpRange)>,
    ports: PortRange,
}

pub struct ServiceAllocators {
    ranges: Mutex<Ranges>,
    pub cidrs: Vec<IpNet>,
    pub net: ClusterNetworkConfig,
}

/// What one Service holds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Held {
    pub ips: BTreeSet<IpAddr>,
    pub ports: BTreeSet<u16>,
}

pub fn held(svc: &Service) -> Held {
    let mut h = Held::default();
    let Some(spec) = &svc.spec else { return h };
    for ip in spec.cluster_ips.iter().flatten() {
        if let Ok(ip) = ip.parse() {
            h.ips.insert(ip);
        }
    }
    for p in spec.ports.iter().flatten() {
        if let Some(np) = p.node_port.filter(|n| (1..=65535).contains(n)) {
            h.ports.insert(np as u16);
        }
    }
    if let Some(hc) = spec
        .health_check_node_port
        .filter(|n| (1..=65535).contains(n))
    {
        h.ports.insert(hc as u16);
    }
    h
}

/// The allocation part of a Service write: ops for the transaction, and what to do to the in-memory
/// bitmaps once the transaction's outcome is known.
#[derive(Default, Debug)]
pub struct Plan {
    pub compares: Vec<Compare>,
    pub ops: Vec<Op>,
    reserved: Held,
    released: Held,
}

fn family_of(ip: &IpAddr) -> IpFamily {
    if ip.is_ipv4() {
        IpFamily::IPv4
    } else {
        IpFamily::IPv6
    }
}

fn ip_address_object(ip: &IpAddr, svc: &Service) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IPAddress",
        "metadata": {
            "name": ip.to_string(),
            "uid": uuid::Uuid::new_v4().to_string(),
            "creationTimestamp": crate::meta::now_rfc3339(),
            "labels": {
                "ipaddress.kubernetes.io/ip-family": family_of(ip).as_str(),
                "ipaddress.kubernetes.io/managed-by": "ipallocator.k8s.io",
            },
        },
        "spec": {"parentRef": {
            "group": "",
            "resource": "services",
            "namespace": svc.metadata.namespace.clone().unwrap_or_default(),
            "name": svc.metadata.name.clone().unwrap_or_default(),
        }},
    })
}

fn port_owner(svc: &Service) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "namespace": svc.metadata.namespace,
        "name": svc.metadata.name,
    }))
    .unwrap_or_default()
}

impl ServiceAllocators {
    pub fn new(cidrs: &[IpNet], node_ports: &str) -> Result<Self, AllocError> {
        let mut ips = Vec::new();
        for c in cidrs {
            let fam = family_of(&c.network());
            ips.push((fam, IpRange::new(*c)?));
        }
        if ips.is_empty() || ips.len() > 2 || (ips.len() == 2 && ips[0].0 == ips[1].0) {
            return Err(AllocError::InvalidRange(
                "--service-cluster-ip-range takes one CIDR, or two of different IP families".into(),
            ));
        }
        let ports = PortRange::parse(node_ports)?;
        let net = ClusterNetworkConfig {
            service_ip_families: ips.iter().map(|(f, _)| *f).collect(),
            node_port_range: (ports_bounds(node_ports).0, ports_bounds(node_ports).1),
        };
        Ok(Self {
            ranges: Mutex::new(Ranges { ips, ports }),
            cidrs: cidrs.to_vec(),
            net,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ranges> {
        self.ranges.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// First address of the primary range: the `kubernetes` Service's.
    pub fn first_ip(&self) -> Option<IpAddr> {
        self.lock().ips.first().map(|(_, r)| r.first())
    }

    /// Marks a value found in the store (repair at start, and other API servers' writes).
    pub fn mark_ip(&self, ip: IpAddr) {
        let mut r = self.lock();
        for (_, range) in r.ips.iter_mut() {
            range.mark(ip);
        }
    }

    pub fn mark_port(&self, port: u16) {
        self.lock().ports.mark(port);
    }

    /// Marks the value an allocation record's key names (another API server took it).
    pub fn mark_key(&self, key: &str) {
        if let Some(ip) = key.strip_prefix(IP_PREFIX).and_then(|s| s.parse().ok()) {
            self.mark_ip(ip);
        } else if let Some(port) = key
            .strip_prefix(NODE_PORT_PREFIX)
            .and_then(|s| s.parse().ok())
        {
            self.mark_port(port);
        }
    }

    /// Frees the value an allocation record's key names (another API server released it).
    pub fn release_key(&self, key: &str) {
        let mut held = Held::default();
        if let Some(ip) = key.strip_prefix(IP_PREFIX).and_then(|s| s.parse().ok()) {
            held.ips.insert(ip);
        } else if let Some(port) = key
            .strip_prefix(NODE_PORT_PREFIX)
            .and_then(|s| s.parse().ok())
        {
            held.ports.insert(port);
        }
        drop_reserved(&mut self.lock(), &held);
    }

    /// Forgets every mark, before a full re-read of the records (after the allocation watch broke).
    pub fn reset(&self) -> Result<(), AllocError> {
        let mut r = self.lock();
        for (_, range) in r.ips.iter_mut() {
            *range = IpRange::new(range.cidr())?;
        }
        r.ports = PortRange::parse(&r.ports.range_string())?;
        Ok(())
    }

    /// If a failed transaction's compare was on an allocation record, the key (the value was taken by
    /// another API server between our pick and our write: mark it and pick again).
    pub fn taken_key(compares: &[Compare], failed: Option<usize>) -> Option<&str> {
        match failed.and_then(|i| compares.get(i))? {
            Compare::Absent(k) if k.starts_with(IP_PREFIX) || k.starts_with(NODE_PORT_PREFIX) => {
                Some(k.as_str())
            }
            _ => None,
        }
    }

    pub fn usage(&self) -> Vec<(String, u64, u64)> {
        let r = self.lock();
        let mut out: Vec<_> = r
            .ips
            .iter()
            .map(|(_, range)| (range.cidr().to_string(), range.used(), range.size()))
            .collect();
        out.push((r.ports.range_string(), r.ports.used(), 0));
        out
    }

    /// Fills the allocations `svc` lacks and checks the ones it requests; `old` is the stored Service on
    /// update. On error nothing stays reserved.
    ///
    /// This follows upstream's allocator (pkg/registry/core/service/storage/alloc.go), which runs
    /// before validation, so its first failure is the only error the client sees: node ports are
    /// shared by the entries of one service port number (TCP and UDP on port 53 get one node port),
    /// a node port repeated on another port number is "already allocated", and a requested
    /// health-check node port that cannot be had is an internal error.
    pub fn plan(&self, svc: &mut Service, old: Option<&Service>) -> Result<Plan, ApiError> {
        let mut plan = Plan::default();
        let mut r = self.lock();
        let result = self.plan_locked(&mut r, &mut plan, svc, old);
        if let Err(e) = result {
            drop_reserved(&mut r, &plan.reserved);
            return Err(e);
        }
        drop(r);
        Ok(self.plan_ops(plan, svc, old))
    }

    fn plan_locked(
        &self,
        r: &mut Ranges,
        plan: &mut Plan,
        svc: &mut Service,
        old: Option<&Service>,
    ) -> Result<(), ApiError> {
        let name = svc.metadata.name.clone().unwrap_or_default();
        let invalid = |path: String, value: Value, msg: String| {
            ApiError::invalid_fields(&SERVICES, &name, &[FieldError::invalid(path, value, msg)])
        };
        let old_held = old.map(held).unwrap_or_default();
        let old_spec = old.and_then(|o| o.spec.as_ref());
        let old_type = old_spec.map(|o| o.type_.clone().unwrap_or_else(|| "ClusterIP".into()));
        let spec = svc.spec.get_or_insert_with(Default::default);
        let svc_type = spec.type_.clone().unwrap_or_else(|| "ClusterIP".into());

        // Cluster IPs, one per requested family. On update only a service leaving ExternalName
        // gets new ones, or a secondary added by a dual-stack upgrade: a changed primary is left
        // for validation to refuse ("may not change once set").
        let headless = spec.cluster_ip.as_deref() == Some("None");
        let old_headless = old_spec
            .and_then(|o| o.cluster_ips.as_ref())
            .and_then(|ips| ips.first())
            .is_some_and(|ip| ip == "None");
        let first_new = match (&old_type, old_spec) {
            (None, _) => Some(0),
            (Some(t), _) if t == "ExternalName" => Some(0),
            _ if old_headless => None,
            (_, Some(o)) => Some(o.ip_families.as_ref().map_or(0, Vec::len)),
            (_, None) => Some(0),
        };
        if let (Some(first_new), true) = (first_new, svc_type != "ExternalName" && !headless) {
            let families: Vec<String> = spec.ip_families.clone().unwrap_or_default();
            let mut ips: Vec<String> = spec.cluster_ips.clone().unwrap_or_default();
            for (i, fam) in families.iter().enumerate().skip(first_new) {
                let Some((_, range)) = r.ips.iter_mut().find(|(f, _)| f.as_str() == fam) else {
                    continue; // validation reports families the cluster lacks
                };
                match ips.get(i).and_then(|s| s.parse::<IpAddr>().ok()) {
                    Some(ip) if old_held.ips.contains(&ip) => {}
                    Some(ip) => match range.check_request(ip) {
                        Ok(()) => {
                            range.mark(ip);
                            plan.reserved.ips.insert(ip);
                        }
                        Err(e) => {
                            // The IPAddress-based allocator answers "mismatched network" for any
                            // address no ServiceCIDR can give (outside it, or its first or last).
                            let msg = match e {
                                AllocError::OutOfRange { .. } => {
                                    "the provided network does not match the current range"
                                        .to_string()
                                }
                                other => other.to_string(),
                            };
                            return Err(invalid(
                                "spec.clusterIPs".into(),
                                json!(ips),
                                format!("failed to allocate IP {ip}: {msg}"),
                            ));
                        }
                    },
                    None => match range.pick(&[]) {
                        Ok(ip) => {
                            range.mark(ip);
                            plan.reserved.ips.insert(ip);
                            if i < ips.len() {
                                ips[i] = ip.to_string();
                            } else {
                                ips.push(ip.to_string());
                            }
                        }
                        Err(e) => {
                            return Err(ApiError::internal(format!(
                                "failed to allocate a serviceIP: {e}"
                            )));
                        }
                    },
                }
            }
            if !ips.is_empty() {
                spec.cluster_ip = Some(ips[0].clone());
                spec.cluster_ips = Some(ips);
            }
        }

        // Node ports, for NodePort and LoadBalancer services only (validation refuses them on
        // the other types).
        let node_port_type = svc_type == "NodePort" || svc_type == "LoadBalancer";
        let wants_node_ports = svc_type == "NodePort"
            || (svc_type == "LoadBalancer"
                && spec.allocate_load_balancer_node_ports != Some(false));
        let old_node_ports: BTreeSet<i32> = old_spec
            .and_then(|o| o.ports.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|p| p.node_port.filter(|n| *n != 0))
            .collect();
        if let (true, Some(ports)) = (node_port_type, spec.ports.as_mut()) {
            if old.is_none() {
                // Create: one node port per service port number, a requested one first.
                let mut by_port: std::collections::HashMap<i32, i32> = Default::default();
                for i in 0..ports.len() {
                    let np = ports[i].node_port.unwrap_or(0);
                    if np == 0 && !wants_node_ports {
                        continue;
                    }
                    let number = ports[i].port;
                    match by_port.get(&number).copied() {
                        None => {
                            let requested = ports
                                .iter()
                                .map(|p| (p.port, p.node_port.unwrap_or(0)))
                                .find(|(port, np)| *port == number && *np != 0)
                                .map(|(_, np)| np);
                            let got = match requested {
                                Some(req) => {
                                    reserve_port(r, plan, req).map_err(|e| {
                                        invalid(
                                            format!("spec.ports[{i}].nodePort"),
                                            json!(req),
                                            e.to_string(),
                                        )
                                    })?;
                                    req
                                }
                                None => pick_port(r, plan).map_err(|e| {
                                    ApiError::internal(format!(
                                        "failed to allocate a nodePort: {e}"
                                    ))
                                })?,
                            };
                            ports[i].node_port = Some(got);
                            by_port.insert(number, got);
                        }
                        Some(shared) if np != shared => {
                            if np == 0 {
                                ports[i].node_port = Some(shared);
                            } else {
                                reserve_node_port(r, plan, np, i, &name)?;
                            }
                        }
                        Some(_) => {}
                    }
                }
            } else {
                // Update: requested ports the old object lacked are taken, missing ones picked.
                let mut taken_here: BTreeSet<i32> = BTreeSet::new();
                let mut seen: Vec<(String, i32)> = Vec::new();
                for (i, p) in ports.iter_mut().enumerate() {
                    let np = p.node_port.unwrap_or(0);
                    if np == 0 && !wants_node_ports {
                        continue;
                    }
                    let np = if np != 0 {
                        if !old_node_ports.contains(&np) && !taken_here.contains(&np) {
                            reserve_node_port(r, plan, np, i, &name)?;
                            taken_here.insert(np);
                        }
                        np
                    } else {
                        let got = pick_port(r, plan).map_err(|e| {
                            ApiError::internal(format!("failed to allocate a nodePort: {e}"))
                        })?;
                        p.node_port = Some(got);
                        got
                    };
                    let key = (p.protocol.clone().unwrap_or_default(), np);
                    if seen.contains(&key) {
                        // A plain Go error upstream: a 500 without a reason.
                        return Err(ApiError::from_parts(
                            500,
                            "",
                            format!("duplicate nodePort: {{{} {}}}", key.0, key.1),
                        ));
                    }
                    seen.push(key);
                }
            }
        }

        // Health-check node port, when a service starts needing one (LoadBalancer + Local).
        let needs_hc = |t: &str, etp: Option<&str>| t == "LoadBalancer" && etp == Some("Local");
        let wants_hc = needs_hc(&svc_type, spec.external_traffic_policy.as_deref())
            && !old_spec.is_some_and(|o| {
                needs_hc(
                    o.type_.as_deref().unwrap_or("ClusterIP"),
                    o.external_traffic_policy.as_deref(),
                )
            });
        if wants_hc {
            match spec.health_check_node_port.unwrap_or(0) {
                0 => {
                    let port = pick_port(r, plan).map_err(|e| {
                        ApiError::internal(format!(
                            "failed to allocate a HealthCheck NodePort 0: {e}"
                        ))
                    })?;
                    spec.health_check_node_port = Some(port);
                }
                hc => reserve_port(r, plan, hc).map_err(|e| {
                    ApiError::internal(format!(
                        "failed to allocate requested HealthCheck NodePort {hc}: {e}"
                    ))
                })?,
            }
        }
        Ok(())
    }

    fn plan_ops(&self, mut plan: Plan, svc: &Service, old: Option<&Service>) -> Plan {
        let old_held = old.map(held).unwrap_or_default();
        let new_held = held(svc);
        for ip in new_held.ips.difference(&old_held.ips) {
            plan.compares.push(Compare::Absent(ip_key(ip)));
            plan.ops.push(Op::Put(
                ip_key(ip),
                serde_json::to_vec(&ip_address_object(ip, svc)).unwrap_or_default(),
            ));
        }
        for port in new_held.ports.difference(&old_held.ports) {
            plan.compares.push(Compare::Absent(port_key(*port)));
            plan.ops.push(Op::Put(port_key(*port), port_owner(svc)));
        }
        for ip in old_held.ips.difference(&new_held.ips) {
            plan.ops.push(Op::Delete(ip_key(ip)));
            plan.released.ips.insert(*ip);
        }
        for port in old_held.ports.difference(&new_held.ports) {
            plan.ops.push(Op::Delete(port_key(*port)));
            plan.released.ports.insert(*port);
        }
        plan
    }

    /// The ops that free everything a deleted Service held.
    pub fn plan_release(&self, svc: &Service) -> Plan {
        let h = held(svc);
        let mut plan = Plan::default();
        for ip in &h.ips {
            plan.ops.push(Op::Delete(ip_key(ip)));
        }
        for port in &h.ports {
            plan.ops.push(Op::Delete(port_key(*port)));
        }
        plan.released = h;
        plan
    }

    /// After the transaction: keep what was reserved and free what was released, or undo the reservation.
    pub fn finish(&self, plan: &Plan, committed: bool) {
        let mut r = self.lock();
        if committed {
            drop_reserved(&mut r, &plan.released);
        } else {
            drop_reserved(&mut r, &plan.reserved);
        }
    }
}

/// Takes a requested node port (any `i32`: upstream's allocator judges the range itself).
/// Reserves the node port `spec.ports[i]` of Service `name` asks for; an error names that field.
fn reserve_node_port(
    r: &mut Ranges,
    plan: &mut Plan,
    port: i32,
    i: usize,
    name: &str,
) -> Result<(), ApiError> {
    reserve_port(r, plan, port).map_err(|e| {
        let field = format!("spec.ports[{i}].nodePort");
        ApiError::invalid_fields(
            &SERVICES,
            name,
            &[FieldError::invalid(field, json!(port), e.to_string())],
        )
    })
}

fn reserve_port(r: &mut Ranges, plan: &mut Plan, port: i32) -> Result<(), AllocError> {
    let port = u16::try_from(port)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| AllocError::OutOfRange {
            what: "port",
            range: r.ports.range_string(),
        })?;
    r.ports.check_request(port)?;
    r.ports.mark(port);
    plan.reserved.ports.insert(port);
    Ok(())
}

fn pick_port(r: &mut Ranges, plan: &mut Plan) -> Result<i32, AllocError> {
    let port = r.ports.pick(&[])?;
    r.ports.mark(port);
    plan.reserved.ports.insert(port);
    Ok(i32::from(port))
}

fn drop_reserved(r: &mut Ranges, h: &Held) {
    for ip in &h.ips {
        for (_, range) in r.ips.iter_mut() {
            range.release(*ip);
        }
    }
    for p in &h.ports {
        r.ports.release(*p);
    }
}

fn ports_bounds(s: &str) -> (u16, u16) {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    (
        a.trim().parse().unwrap_or(30000),
        b.trim().parse().unwrap_or(32767),
    )
}

/// Defaults, validates and allocates a Service write. Returns the final object and its allocation plan.
pub fn prepare_write(
    allocs: &ServiceAllocators,
    obj: &Value,
    old: Option<&Value>,
    status_only: bool,
) -> Result<(Value, Plan), ApiError> {
    let name = crate::meta::name(obj).to_string();
    let mut svc: Service = serde_json::from_value(obj.clone()).map_err(|e| {
        ApiError::bad_request(format!(
            "Service in version \"v1\" cannot be handled as a Service: {e}"
        ))
    })?;
    let old_svc: Option<Service> = match old {
        Some(o) => Some(serde_json::from_value(o.clone()).map_err(ApiError::internal)?),
        None => None,
    };
    if status_only {
        let Some(old_svc) = &old_svc else {
            return Err(ApiError::not_found(&SERVICES, &name));
        };
        api::service::default_service_status_update(&mut svc, old_svc);
        let errs = api::service::validate_service_status_update(&svc, old_svc);
        if !errs.is_empty() {
            return Err(ApiError::invalid_fields(&SERVICES, &name, &errs));
        }
        let v = serde_json::to_value(&svc).map_err(ApiError::internal)?;
        return Ok((v, Plan::default()));
    }
    api::service::default_service(&mut svc, old_svc.as_ref(), &allocs.net);
    // Upstream allocates (BeginCreate / BeginUpdate) before it validates: the IP-family checks,
    // then allocation failures, are reported first and alone.
    let family_errs = api::service::ip_family_errors(&svc, old_svc.as_ref(), &allocs.net);
    if !family_errs.is_empty() {
        return Err(ApiError::invalid_fields(&SERVICES, &name, &family_errs));
    }
    let plan = allocs.plan(&mut svc, old_svc.as_ref())?;
    let errs = match &old_svc {
        None => api::service::validate_service_create(&svc, &allocs.net),
        Some(o) => api::service::validate_service_update(&svc, o, &allocs.net),
    };
    if !errs.is_empty() {
        allocs.finish(&plan, false);
        return Err(ApiError::invalid_fields(&SERVICES, &name, &errs));
    }
    let v = serde_json::to_value(&svc).map_err(|e| {
        allocs.finish(&plan, false);
        ApiError::internal(e)
    })?;
    Ok((v, plan))
}

pub fn release_plan(allocs: &ServiceAllocators, obj: &Value) -> Plan {
    match serde_json::from_value::<Service>(obj.clone()) {
        Ok(svc) => allocs.plan_release(&svc),
        Err(_) => Plan::default(),
    }
}
