//! The lab's stand-in for kubelet: registers the lab's Nodes and Pods with their status (addresses, Ready
//! condition, pod IPs), the cluster DNS Service, and finishes the graceful deletion of lab pods, as a
//! kubelet would once their containers stopped. It runs in the control-plane namespace.

use std::collections::BTreeMap;

use anyhow::Context;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Api, Client};
use serde_json::json;

use super::plan::{LabPlan, DNS_SERVICE_IP, ECHO_PORT, HTTP_PORT, POD_LABEL};

async fn create_or_keep<K>(api: &Api<K>, obj: &K) -> anyhow::Result<()>
where
    K: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.create(&PostParams::default(), obj).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

pub async fn register(client: &Client, plan: &LabPlan) -> anyhow::Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    for n in &plan.nodes {
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": n.name, "labels": {
                "kubernetes.io/hostname": n.name,
                "kubernetes.io/os": "linux",
                "topology.kubernetes.io/zone": n.zone,
                "svcplane.io/lab": plan.name,
            }},
            "spec": {"podCIDR": n.pod_cidr, "podCIDRs": [n.pod_cidr, n.pod_cidr6]},
        }))?;
        create_or_keep(&nodes, &node)
            .await
            .with_context(|| format!("registering node {}", n.name))?;
        let now = chrono_now();
        let status = json!({"status": {
            "addresses": [
                {"type": "InternalIP", "address": n.ip},
                {"type": "InternalIP", "address": n.ip6},
                {"type": "Hostname", "address": n.name},
            ],
            "nodeInfo": {"kubeletVersion": "v1.33.0-svcplane-lab", "kubeProxyVersion": "",
                         "osImage": "svcplane lab", "operatingSystem": "linux", "architecture": std::env::consts::ARCH,
                         "kernelVersion": kernel_version(), "containerRuntimeVersion": "svcplane-echo",
                         "machineID": "", "systemUUID": "", "bootID": ""},
            "nodeInfo": {"kubeletVersion": "v1.33.0-svcplane-lab", "kubeProxyVersion": "",
                         "osImage": "svcplane lab", "operatingSystem": "linux",
                         "architecture": std::env::consts::ARCH, "kernelVersion": kernel_version(),
                         "containerRuntimeVersion": "svcplane-echo",
                         "machineID": "", "systemUUID": "", "bootID": ""},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "message": "svcplane lab node is ready",
                            "lastHeartbeatTime": now, "lastTransitionTime": now}],
        }});
        nodes
            .patch_status(&n.name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .with_context(|| format!("setting the status of node {}", n.name))?;
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    for p in &plan.pods {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": p.name, "labels": {
                POD_LABEL.0: POD_LABEL.1,
                "svcplane.io/lab": plan.name,
                "svcplane.io/lab-pod": p.name,
                "svcplane.io/lab-node": p.node,
            }},
            "spec": {
                "nodeName": p.node,
                "containers": [{"name": "echo", "image": "svcplane-echo", "ports": [
                    {"name": "http", "containerPort": HTTP_PORT},
                    {"name": "tcp-echo", "containerPort": ECHO_PORT},
                    {"name": "udp-echo", "containerPort": ECHO_PORT, "protocol": "UDP"},
                ]}],
            },
        }))?;
        create_or_keep(&pods, &pod)
            .await
            .with_context(|| format!("registering pod {}", p.name))?;
        controllers::set_pod_ready(
            client,
            "default",
            &p.name,
            true,
            Some(&format!("{},{}", p.ip, p.ip6)),
        )
        .await
        .with_context(|| format!("setting pod {} ready", p.name))?;
    }
    // The cluster DNS Service, served by `svcplane up` in the control-plane namespace.
    let services: Api<Service> = Api::namespaced(client.clone(), "kube-system");
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "kube-dns", "labels": {"k8s-app": "kube-dns"}},
        "spec": {"clusterIP": DNS_SERVICE_IP, "ports": [
            {"name": "dns", "port": 53, "protocol": "UDP"},
            {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
        ]},
    }))?;
    create_or_keep(&services, &svc)
        .await
        .context("creating kube-dns")?;
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "kube-system");
    let slice: EndpointSlice = serde_json::from_value(json!({
        "metadata": {"name": "kube-dns-lab", "labels": {"kubernetes.io/service-name": "kube-dns"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [plan.cp_ip()], "conditions": {"ready": true}}],
        "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"}],
    }))?;
    create_or_keep(&slices, &slice)
        .await
        .context("creating the kube-dns EndpointSlice")?;
    Ok(())
}

fn kernel_version() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn chrono_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Finishes graceful deletions of pods on lab nodes: their "containers" (the echo servers) are not
/// stopped, but the API object goes, as it would once kubelet saw them exit.
pub async fn finish_deletions(client: Client, plan: &LabPlan) -> anyhow::Result<()> {
    let lab_nodes: BTreeMap<&str, ()> = plan.nodes.iter().map(|n| (n.name.as_str(), ())).collect();
    let pods: Api<Pod> = Api::all(client.clone());
    let mut stream = watcher::watcher(pods, watcher::Config::default()).boxed();
    while let Some(event) = stream.next().await {
        let pod = match event {
            Ok(watcher::Event::Apply(p)) | Ok(watcher::Event::InitApply(p)) => p,
            Ok(_) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "lab kubelet: watch failed; retrying");
                continue;
            }
        };
        let on_lab_node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .is_some_and(|n| lab_nodes.contains_key(n));
        if !on_lab_node || pod.metadata.deletion_timestamp.is_none() {
            continue;
        }
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
        match api
            .delete(&name, &DeleteParams::default().grace_period(0))
            .await
        {
            Ok(_) => tracing::info!(pod = %name, "lab kubelet: pod deleted"),
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => {
                tracing::warn!(pod = %name, error = %e, "lab kubelet: cannot finish deletion")
            }
        }
    }
    Ok(())
}
