//! The parts of kube-apiserver's Pod defaulting that Service networking reads: container port
//! protocols, the status a new Pod starts with, and the fields `kubectl get pods` shows.

use k8s_openapi::api::core::v1::{Pod, PodStatus};

/// v1 defaults (`SetDefaults_Pod`, `SetDefaults_ContainerPort`, ...) and the status a created Pod gets
/// (`PrepareForCreate`: phase Pending, QoS class from the containers' resources).
pub fn default_pod_create(pod: &mut Pod) {
    let spec = pod.spec.get_or_insert_with(Default::default);
    spec.restart_policy.get_or_insert_with(|| "Always".into());
    spec.dns_policy.get_or_insert_with(|| "ClusterFirst".into());
    spec.termination_grace_period_seconds.get_or_insert(30);
    spec.scheduler_name
        .get_or_insert_with(|| "default-scheduler".into());
    spec.enable_service_links.get_or_insert(true);
    let mut any_resources = false;
    for c in spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten())
    {
        for p in c.ports.iter_mut().flatten() {
            p.protocol.get_or_insert_with(|| "TCP".into());
        }
        c.termination_message_path
            .get_or_insert_with(|| "/dev/termination-log".into());
        c.termination_message_policy
            .get_or_insert_with(|| "File".into());
        if c.image_pull_policy.is_none() {
            let image = c.image.as_deref().unwrap_or_default();
            let tag = image
                .rsplit('/')
                .next()
                .and_then(|last| last.split_once(':'))
                .map(|(_, t)| t);
            let latest = !image.contains('@') && matches!(tag, None | Some("latest"));
            c.image_pull_policy = Some(if latest { "Always" } else { "IfNotPresent" }.into());
        }
        any_resources |= c.resources.as_ref().is_some_and(|r| {
            r.limits.as_ref().is_some_and(|l| !l.is_empty())
                || r.requests.as_ref().is_some_and(|q| !q.is_empty())
        });
    }
    pod.status = Some(PodStatus {
        phase: Some("Pending".into()),
        qos_class: Some(
            if any_resources {
                "Burstable"
            } else {
                "BestEffort"
            }
            .into(),
        ),
        ..Default::default()
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_pods_are_pending_with_defaulted_ports() {
        let mut pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}]},
            "status": {"phase": "Running"},
        }))
        .unwrap();
        default_pod_create(&mut pod);
        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(
            spec.containers[0].ports.as_ref().unwrap()[0]
                .protocol
                .as_deref(),
            Some("TCP")
        );
        assert_eq!(
            spec.containers[0].image_pull_policy.as_deref(),
            Some("IfNotPresent")
        );
        assert_eq!(
            pod.status.as_ref().unwrap().phase.as_deref(),
            Some("Pending")
        );
        assert_eq!(
            pod.status.as_ref().unwrap().qos_class.as_deref(),
            Some("BestEffort")
        );
    }
}
