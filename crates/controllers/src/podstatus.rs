//! Pod status written as a kubelet would, for clusters without one (svcplane's own, and the lab): phase,
//! readiness conditions and pod IPs, through the status subresource.

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStatus, Pod, PodCondition, PodIP,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::Api;

use crate::Error;

fn set_condition(conds: &mut Vec<PodCondition>, type_: &str, status: bool, now: Timestamp) {
    let status = if status { "True" } else { "False" };
    match conds.iter_mut().find(|c| c.type_ == type_) {
        Some(c) if c.status == status => {}
        Some(c) => {
            c.status = status.into();
            c.last_transition_time = Some(Time(now));
        }
        None => conds.push(PodCondition {
            type_: type_.into(),
            status: status.into(),
            last_transition_time: Some(Time(now)),
            ..Default::default()
        }),
    }
}

/// Marks a pod ready or not ready: phase Running, Initialized/PodScheduled true, Ready and ContainersReady
/// as asked. `ip` sets status.podIP and status.podIPs; it may list one address per family separated by
/// commas ("10.244.0.5,fd00::5"). Without it, IPs already in the status stay.
pub async fn set_pod_ready(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    ready: bool,
    ip: Option<&str>,
) -> Result<(), Error> {
    let ips: Vec<String> = match ip {
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<std::net::IpAddr>()
                    .map(|ip| ip.to_string())
                    .map_err(|_| Error::InvalidIp(s.to_string()))
            })
            .collect::<Result<_, _>>()?,
        None => Vec::new(),
    };
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    // Read-modify-write with the resourceVersion; a concurrent writer makes us read again.
    let mut attempts = 0;
    loop {
        attempts += 1;
        let mut pod = api.get(name).await?;
        let now = Timestamp::now();
        let mut status = pod.status.take().unwrap_or_default();
        status.phase = Some("Running".into());
        let mut conds = status.conditions.take().unwrap_or_default();
        set_condition(&mut conds, "Initialized", true, now);
        set_condition(&mut conds, "PodScheduled", true, now);
        set_condition(&mut conds, "ContainersReady", ready, now);
        set_condition(&mut conds, "Ready", ready, now);
        status.conditions = Some(conds);
        if !ips.is_empty() {
            status.pod_ip = ips.first().cloned();
            status.pod_ips = Some(ips.iter().map(|ip| PodIP { ip: ip.clone() }).collect());
        } else if status.pod_ips.as_ref().is_none_or(Vec::is_empty) {
            if let Some(ip) = status.pod_ip.clone() {
                status.pod_ips = Some(vec![PodIP { ip }]);
            }
        }
        if status.start_time.is_none() {
            status.start_time = Some(Time(now));
        }
        // kubectl's READY column counts ready containers: report each container running, as kubelet would.
        let started = status.start_time.clone();
        let containers = pod
            .spec
            .as_ref()
            .map(|s| s.containers.as_slice())
            .unwrap_or(&[]);
        status.container_statuses = Some(
            containers
                .iter()
                .map(|c| ContainerStatus {
                    name: c.name.clone(),
                    image: c.image.clone().unwrap_or_default(),
                    image_id: String::new(),
                    ready,
                    started: Some(true),
                    restart_count: 0,
                    state: Some(ContainerState {
                        running: Some(ContainerStateRunning {
                            started_at: started.clone(),
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .collect(),
        );
        pod.status = Some(status);
        match api.replace_status(name, &PostParams::default(), &pod).await {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(s)) if s.is_conflict() && attempts < 5 => continue,
            Err(e) => return Err(e.into()),
        }
    }
}
