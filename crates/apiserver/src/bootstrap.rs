//! Start-up work: rebuild allocator state from the store (repairing leaks and missing records), and make
//! the objects every cluster has (system namespaces, the `kubernetes` Service and its endpoints, the
//! default ServiceCIDR).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde_json::{json, Value};
use store::{Compare, Op, Txn};

use crate::http_util::Params;
use crate::meta::decode_stored;
use crate::resources::{self, Resource};
use crate::services::{self, IP_PREFIX, NODE_PORT_PREFIX};
use crate::status::ApiResult;
use crate::Server;

fn delete_unchanged(key: &str, mod_revision: i64) -> Txn {
    Txn::new()
        .when(Compare::ModRevision(key.to_string(), mod_revision))
        .then(Op::Delete(key.to_string()))
}

fn put_absent(key: String, value: Vec<u8>) -> Txn {
    Txn::new()
        .when(Compare::Absent(key.clone()))
        .then(Op::Put(key, value))
}

pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

impl Server {
    /// Marks every stored allocation, creates records a Service holds but lacks, and deletes records no
    /// Service holds (kube-apiserver's repair controllers: at start, and periodically when API servers
    /// share the store). Returns the revision the allocation records were read at, from which
    /// [`Server::follow_allocations`] keeps the allocators in step.
    ///
    /// Safe while other API servers write: records are read before Services, and a record and its
    /// Service are always written in one transaction, so a record seen without its Service is stale for
    /// good; each fix is conditional on what was read, so a concurrent write wins over a repair.
    pub(crate) async fn repair_allocations(&self) -> ApiResult<i64> {
        let ip_keys = self.store.range(IP_PREFIX, None, 0).await?;
        let port_keys = self.store.range(NODE_PORT_PREFIX, None, 0).await?;
        let mut held_ips: BTreeMap<IpAddr, Value> = BTreeMap::new();
        let mut held_ports: BTreeMap<u16, Value> = BTreeMap::new();
        let svcs = self
            .store
            .range(&resources::SERVICES.prefix(), None, 0)
            .await?;
        for kv in &svcs.kvs {
            let obj = decode_stored(&kv.value, kv.mod_revision)?;
            let Ok(svc) =
                serde_json::from_value::<k8s_openapi::api::core::v1::Service>(obj.clone())
            else {
                continue;
            };
            let h = services::held(&svc);
            for ip in h.ips {
                held_ips.insert(ip, obj.clone());
            }
            for p in h.ports {
                held_ports.insert(p, obj.clone());
            }
        }
        let mut fixes: Vec<Txn> = Vec::new();
        let mut recorded_ips = BTreeSet::new();
        for kv in &ip_keys.kvs {
            match kv.key[IP_PREFIX.len()..].parse::<IpAddr>() {
                Ok(ip) if held_ips.contains_key(&ip) => {
                    recorded_ips.insert(ip);
                }
                _ => {
                    tracing::warn!(key = %kv.key, "repair: releasing an IP no Service holds");
                    fixes.push(delete_unchanged(&kv.key, kv.mod_revision));
                }
            }
        }
        let mut recorded_ports = BTreeSet::new();
        for kv in &port_keys.kvs {
            match kv.key[NODE_PORT_PREFIX.len()..].parse::<u16>() {
                Ok(p) if held_ports.contains_key(&p) => {
                    recorded_ports.insert(p);
                }
                _ => {
                    tracing::warn!(key = %kv.key, "repair: releasing a node port no Service holds");
                    fixes.push(delete_unchanged(&kv.key, kv.mod_revision));
                }
            }
        }
        for (ip, svc) in &held_ips {
            self.allocs.mark_ip(*ip);
            if !recorded_ips.contains(ip) {
                tracing::warn!(%ip, "repair: recording an IP a Service holds");
                let obj = json!({
                    "apiVersion": "networking.k8s.io/v1", "kind": "IPAddress",
                    "metadata": {"name": ip.to_string(), "uid": uuid::Uuid::new_v4().to_string(),
                        "creationTimestamp": crate::meta::now_rfc3339()},
                    "spec": {"parentRef": {"group": "", "resource": "services",
                        "namespace": svc["metadata"]["namespace"], "name": svc["metadata"]["name"]}},
                });
                fixes.push(put_absent(
                    services::ip_key(ip),
                    serde_json::to_vec(&obj).unwrap_or_default(),
                ));
            }
        }
        for (port, svc) in &held_ports {
            self.allocs.mark_port(*port);
            if !recorded_ports.contains(port) {
                tracing::warn!(port, "repair: recording a node port a Service holds");
                let owner = json!({"namespace": svc["metadata"]["namespace"], "name": svc["metadata"]["name"]});
                fixes.push(put_absent(
                    services::port_key(*port),
                    serde_json::to_vec(&owner).unwrap_or_default(),
                ));
            }
        }
        for fix in fixes {
            self.store.txn(fix).await?;
        }
        Ok(ip_keys.revision.min(port_keys.revision))
    }

    async fn ensure(&self, res: &Resource, ns: Option<&str>, obj: Value) -> ApiResult<()> {
        let name = crate::meta::name(&obj).to_string();
        if self.store.get(&res.key(ns, &name)).await?.is_some() {
            return Ok(());
        }
        match self
            .create_object(res, ns, obj, &Params::default(), &[])
            .await
        {
            // Another API server made it first.
            Err(e) if e.code == 409 => Ok(()),
            other => other.map(|_| ()),
        }
    }

    pub(crate) async fn bootstrap(&self, advertise: IpAddr, port: u16) -> ApiResult<()> {
        for ns in SYSTEM_NAMESPACES {
            self.ensure(
                &resources::NAMESPACES,
                None,
                json!({"metadata": {"name": ns}}),
            )
            .await?;
        }
        let cidrs: Vec<String> = self.allocs.cidrs.iter().map(ToString::to_string).collect();
        let cidr_key = resources::SERVICE_CIDRS.key(None, "kubernetes");
        if self.store.get(&cidr_key).await?.is_none() {
            let obj = json!({
                "apiVersion": "networking.k8s.io/v1", "kind": "ServiceCIDR",
                "metadata": {"name": "kubernetes", "uid": uuid::Uuid::new_v4().to_string(),
                    "creationTimestamp": crate::meta::now_rfc3339(),
                    "finalizers": ["networking.k8s.io/service-cidr-finalizer"]},
                "spec": {"cidrs": cidrs},
                "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "",
                    "message": "Kubernetes Service CIDR is ready", "lastTransitionTime": crate::meta::now_rfc3339()}]},
            });
            self.store
                .txn(Txn::new().then(Op::Put(cidr_key, crate::meta::encode_for_store(&obj))))
                .await?;
        }
        let first = self
            .allocs
            .first_ip()
            .map(|ip| ip.to_string())
            .unwrap_or_default();
        self.ensure(
            &resources::SERVICES,
            Some("default"),
            json!({
                "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
                "spec": {"type": "ClusterIP", "clusterIP": first, "sessionAffinity": "None",
                    "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]},
            }),
        )
        .await?;
        // The endpoints of `kubernetes` follow this server's address on every start.
        let ip = advertise.to_string();
        let family = if advertise.is_ipv4() { "IPv4" } else { "IPv6" };
        let endpoints = json!({
            "apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "kubernetes", "namespace": "default",
                "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": [{"addresses": [{"ip": ip}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}],
        });
        let slice = json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "kubernetes", "namespace": "default",
                // As kube-apiserver's endpoint reconciler labels it: no managed-by, so no controller claims it.
                "labels": {"kubernetes.io/service-name": "kubernetes"}},
            "addressType": family,
            "endpoints": [{"addresses": [ip], "conditions": {"ready": true}}],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
        });
        for (res, obj) in [
            (&resources::ENDPOINTS, endpoints),
            (&resources::ENDPOINT_SLICES, slice),
        ] {
            match self.get_object(res, Some("default"), "kubernetes").await {
                Ok(mut cur) => {
                    let rv = cur["metadata"]["resourceVersion"].clone();
                    for (k, v) in obj.as_object().into_iter().flatten() {
                        if k != "metadata" {
                            cur[k] = v.clone();
                        }
                    }
                    cur["metadata"]["resourceVersion"] = rv;
                    self.update_object(
                        res,
                        Some("default"),
                        "kubernetes",
                        None,
                        cur,
                        &Params::default(),
                        &[],
                    )
                    .await?;
                }
                Err(e) if e.code == 404 => self.ensure(res, Some("default"), obj).await?,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}
