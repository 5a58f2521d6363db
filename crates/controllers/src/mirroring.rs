//! The EndpointSlice mirroring controller, as upstream's `endpointslicemirroring`: for a Service without a
//! selector, the v1 Endpoints a user wrote are mirrored into EndpointSlices (one per subset and address
//! family, at most [`MAX_ENDPOINTS_PER_SUBSET`] addresses each), labelled with the Service's name and
//! `managed-by: endpointslicemirroring-controller.k8s.io` and owned by the Service, so that every consumer
//! of slices (DNS, node agents) serves such Services too. Endpoints labelled
//! `endpointslice.kubernetes.io/skip-mirror: "true"` (the API server's own `kubernetes` Endpoints) and
//! Services with a selector are left alone; mirrored slices are removed when that stops being true.
//!
//! Slice names are deterministic (`<endpoints>-mirror-<subset>-<family>`), so replicas that race converge
//! on the same objects; the controller only touches slices carrying its managed-by label.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{EndpointSubset, Endpoints, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::runtime::watcher;
use kube::runtime::WatchStreamExt;
use kube::{Api, Client, ResourceExt};
use tokio::sync::mpsc;

use crate::cache::Key;
use crate::feed::key_of;
use crate::Error;

pub const MIRRORING_CONTROLLER_NAME: &str = "endpointslicemirroring-controller.k8s.io";
const LABEL_MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
const LABEL_SERVICE_NAME: &str = "kubernetes.io/service-name";
const LABEL_SKIP_MIRROR: &str = "endpointslice.kubernetes.io/skip-mirror";
/// Upstream's `--mirroring-max-endpoints-per-subset` default.
pub const MAX_ENDPOINTS_PER_SUBSET: usize = 1000;

#[derive(Default)]
struct Cache {
    /// Services without a selector: key → uid.
    selectorless: HashMap<Key, String>,
    endpoints: HashMap<Key, Endpoints>,
}

/// The slices one Endpoints object mirrors into, by name (pure: unit-tested).
pub fn desired_slices(eps: &Endpoints, service_uid: &str) -> BTreeMap<String, EndpointSlice> {
    let mut out = BTreeMap::new();
    let ns = eps.namespace().unwrap_or_default();
    let name = eps.name_any();
    let mut labels: BTreeMap<String, String> = eps
        .labels()
        .iter()
        .filter(|(k, _)| k.as_str() != LABEL_SKIP_MIRROR)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    labels.insert(LABEL_SERVICE_NAME.into(), name.clone());
    labels.insert(LABEL_MANAGED_BY.into(), MIRRORING_CONTROLLER_NAME.into());
    for (i, subset) in eps.subsets.iter().flatten().enumerate() {
        for family in ["IPv4", "IPv6"] {
            let endpoints = subset_endpoints(subset, family);
            if endpoints.is_empty() {
                continue;
            }
            let slice_name = format!("{name}-mirror-{i}-{}", &family[2..].to_lowercase());
            let ports: Vec<EndpointPort> = subset
                .ports
                .iter()
                .flatten()
                .map(|p| EndpointPort {
                    name: Some(p.name.clone().unwrap_or_default()),
                    port: Some(p.port),
                    protocol: Some(p.protocol.clone().unwrap_or_else(|| "TCP".into())),
                    app_protocol: p.app_protocol.clone(),
                })
                .collect();
            out.insert(
                slice_name.clone(),
                EndpointSlice {
                    metadata: ObjectMeta {
                        name: Some(slice_name),
                        namespace: Some(ns.clone()),
                        labels: Some(labels.clone()),
                        owner_references: Some(vec![OwnerReference {
                            api_version: "v1".into(),
                            kind: "Service".into(),
                            name: name.clone(),
                            uid: service_uid.to_string(),
                            controller: Some(true),
                            block_owner_deletion: Some(true),
                        }]),
                        ..Default::default()
                    },
                    address_type: family.into(),
                    endpoints,
                    ports: Some(ports),
                },
            );
        }
    }
    out
}

fn subset_endpoints(subset: &EndpointSubset, family: &str) -> Vec<Endpoint> {
    let want_v6 = family == "IPv6";
    let ready = subset.addresses.iter().flatten().map(|a| (a, true));
    let not_ready = subset
        .not_ready_addresses
        .iter()
        .flatten()
        .map(|a| (a, false));
    ready
        .chain(not_ready)
        .filter(|(a, _)| {
            a.ip.parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_ipv6() == want_v6)
        })
        .take(MAX_ENDPOINTS_PER_SUBSET)
        .map(|(a, ready)| Endpoint {
            addresses: vec![a.ip.clone()],
            conditions: Some(EndpointConditions {
                ready: Some(ready),
                serving: Some(ready),
                terminating: Some(false),
            }),
            hostname: a.hostname.clone(),
            node_name: a.node_name.clone(),
            target_ref: a.target_ref.clone(),
            ..Default::default()
        })
        .collect()
}

/// Whether a stored slice already says what a desired one says.
fn same(a: &EndpointSlice, b: &EndpointSlice) -> bool {
    a.address_type == b.address_type
        && a.endpoints == b.endpoints
        && a.ports == b.ports
        && a.metadata.labels == b.metadata.labels
        && a.metadata.owner_references == b.metadata.owner_references
}

async fn reconcile(client: &Client, cache: &Mutex<Cache>, key: &Key) -> Result<(), Error> {
    let desired = {
        let c = cache.lock().unwrap_or_else(|e| e.into_inner());
        match (c.selectorless.get(key), c.endpoints.get(key)) {
            (Some(uid), Some(eps))
                if eps.labels().get(LABEL_SKIP_MIRROR).map(String::as_str) != Some("true") =>
            {
                desired_slices(eps, uid)
            }
            _ => BTreeMap::new(),
        }
    };
    let api: Api<EndpointSlice> = Api::namespaced(client.clone(), &key.0);
    let selector = format!(
        "{LABEL_MANAGED_BY}={MIRRORING_CONTROLLER_NAME},{LABEL_SERVICE_NAME}={}",
        key.1
    );
    let current = api.list(&ListParams::default().labels(&selector)).await?;
    let mut seen = HashSet::new();
    for slice in current.items {
        let name = slice.name_any();
        match desired.get(&name) {
            Some(want) => {
                seen.insert(name.clone());
                if !same(&slice, want) {
                    let mut next = want.clone();
                    next.metadata.resource_version = slice.metadata.resource_version.clone();
                    api.replace(&name, &PostParams::default(), &next).await?;
                }
            }
            None => match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(e.into()),
            },
        }
    }
    for (name, want) in desired {
        if seen.contains(&name) {
            continue;
        }
        match api.create(&PostParams::default(), &want).await {
            Ok(_) => {}
            // Another replica made it first; the next event reconciles its content.
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Runs until `shutdown` completes.
pub async fn run(
    client: Client,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), Error> {
    let cache = Arc::new(Mutex::new(Cache::default()));
    let (tx, mut rx) = mpsc::unbounded_channel::<Key>();
    let services = {
        let (cache, tx) = (cache.clone(), tx.clone());
        let stream = watcher::watcher(Api::<Service>::all(client.clone()), Default::default())
            .default_backoff();
        async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(ev) = stream.next().await {
                let (svc, gone) = match ev {
                    Ok(watcher::Event::Apply(s)) | Ok(watcher::Event::InitApply(s)) => (s, false),
                    Ok(watcher::Event::Delete(s)) => (s, true),
                    Ok(_) => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, "mirroring: service watch failed; retrying");
                        continue;
                    }
                };
                let key = key_of(&svc);
                let selectorless = svc
                    .spec
                    .as_ref()
                    .is_some_and(|s| s.selector.as_ref().is_none_or(|m| m.is_empty()))
                    && svc.spec.as_ref().and_then(|s| s.type_.as_deref()) != Some("ExternalName");
                {
                    let mut c = cache.lock().unwrap_or_else(|e| e.into_inner());
                    let before = c.selectorless.get(&key).cloned();
                    let after = (!gone && selectorless).then(|| svc.uid().unwrap_or_default());
                    if before == after {
                        continue;
                    }
                    match after {
                        Some(uid) => c.selectorless.insert(key.clone(), uid),
                        None => c.selectorless.remove(&key),
                    };
                }
                let _ = tx.send(key);
            }
        }
    };
    let endpoints = {
        let (cache, tx) = (cache.clone(), tx.clone());
        let stream = watcher::watcher(Api::<Endpoints>::all(client.clone()), Default::default())
            .default_backoff();
        async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(ev) = stream.next().await {
                let (eps, gone) = match ev {
                    Ok(watcher::Event::Apply(e)) | Ok(watcher::Event::InitApply(e)) => (e, false),
                    Ok(watcher::Event::Delete(e)) => (e, true),
                    Ok(_) => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, "mirroring: endpoints watch failed; retrying");
                        continue;
                    }
                };
                let key = key_of(&eps);
                {
                    let mut c = cache.lock().unwrap_or_else(|e| e.into_inner());
                    if gone {
                        c.endpoints.remove(&key);
                    } else {
                        c.endpoints.insert(key.clone(), eps);
                    }
                }
                let _ = tx.send(key);
            }
        }
    };
    let worker = async {
        while let Some(key) = rx.recv().await {
            // Coalesce what queued up meanwhile.
            let mut keys: HashSet<Key> = HashSet::from([key]);
            while let Ok(k) = rx.try_recv() {
                keys.insert(k);
            }
            for key in keys {
                if let Err(e) = reconcile(&client, &cache, &key).await {
                    tracing::warn!(service = %format!("{}/{}", key.0, key.1), error = %e, "mirroring: sync failed; retrying");
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        let _ = tx.send(key);
                    });
                }
            }
        }
    };
    tokio::select! {
        _ = services => {}
        _ = endpoints => {}
        _ = worker => {}
        _ = shutdown => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn mirrors_each_subset_and_family_with_readiness() {
        let eps: Endpoints = serde_json::from_value(json!({
            "metadata": {"name": "ext", "namespace": "default", "labels": {"team": "a"}},
            "subsets": [{
                "addresses": [{"ip": "192.0.2.1"}, {"ip": "2001:db8::1"}],
                "notReadyAddresses": [{"ip": "192.0.2.2"}],
                "ports": [{"name": "http", "port": 80}]
            }]
        }))
        .unwrap();
        let slices = desired_slices(&eps, "uid-1");
        assert_eq!(
            slices.keys().collect::<Vec<_>>(),
            ["ext-mirror-0-v4", "ext-mirror-0-v6"]
        );
        let v4 = &slices["ext-mirror-0-v4"];
        assert_eq!(v4.address_type, "IPv4");
        let ready: Vec<(String, Option<bool>)> = v4
            .endpoints
            .iter()
            .map(|e| {
                (
                    e.addresses[0].clone(),
                    e.conditions.as_ref().and_then(|c| c.ready),
                )
            })
            .collect();
        assert_eq!(
            ready,
            [
                ("192.0.2.1".to_string(), Some(true)),
                ("192.0.2.2".to_string(), Some(false))
            ]
        );
        let labels = v4.metadata.labels.clone().unwrap_or_default();
        assert_eq!(labels[LABEL_SERVICE_NAME], "ext");
        assert_eq!(labels[LABEL_MANAGED_BY], MIRRORING_CONTROLLER_NAME);
        assert_eq!(labels["team"], "a");
        let ports = v4.ports.clone().unwrap_or_default();
        assert_eq!(ports[0].port, Some(80));
        assert_eq!(ports[0].protocol.as_deref(), Some("TCP"));
    }
}
