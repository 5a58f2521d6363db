//! The lab's layout: which namespaces exist and which addresses they hold. Pure data, written to the lab
//! directory so `lab down`, `lab exec` and the lab's kubelet read the same facts `lab up` used.

use serde::{Deserialize, Serialize};

/// The node LAN: every node, the control plane and the outside client are on it.
pub const LAN_V4: &str = "192.168.50";
pub const LAN_V6: &str = "fd00:50:";
pub const CP_HOST: u8 = 2;
pub const CLIENT_HOST: u8 = 100;
/// Addresses outside every range of the cluster that the client routes to node-1: use them for
/// `externalIPs` and for LoadBalancer ingress IPs written by hand.
pub const EXTERNAL_V4: &str = "192.168.60.0/24";
pub const EXTERNAL_V6: &str = "fd00:60::/64";
/// The LoadBalancer pool of the lab's IPAM controller: on the node LAN itself, so the client resolves the
/// addresses with ARP/NDP and the nodes' announcer answers (no route).
pub const LB_POOL: &str = "192.168.50.200-192.168.50.250,fd00:50::200-fd00:50::250";
pub const SERVICE_CIDRS: &str = "10.96.0.0/16,fd00:96::/112";
pub const CLUSTER_CIDRS: &str = "10.244.0.0/16,fd00:244::/48";
pub const DNS_SERVICE_IP: &str = "10.96.0.10";
pub const POD_LABEL: (&str, &str) = ("app", "web");
pub const HTTP_PORT: u16 = 8080;
pub const ECHO_PORT: u16 = 9000;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabPlan {
    pub name: String,
    pub nodes: Vec<NodePlan>,
    pub pods: Vec<PodPlan>,
    /// Extra flags of every node agent (`lab up --agent-args`).
    #[serde(default)]
    pub agent_args: Vec<String>,
    /// The control plane's `--loadbalancer-ip-pool` (empty: none).
    #[serde(default)]
    pub lb_pool: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodePlan {
    pub name: String,
    pub index: u8,
    pub ip: String,
    pub ip6: String,
    pub zone: String,
    pub pod_cidr: String,
    pub pod_cidr6: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PodPlan {
    pub name: String,
    pub node: String,
    pub ip: String,
    pub ip6: String,
    pub gateway: String,
    pub gateway6: String,
}

impl LabPlan {
    pub fn new(name: &str, nodes: u8, pods_per_node: u8) -> LabPlan {
        let mut plan = LabPlan {
            name: name.to_string(),
            nodes: Vec::new(),
            pods: Vec::new(),
            agent_args: Vec::new(),
            lb_pool: LB_POOL.to_string(),
        };
        for i in 1..=nodes {
            let node = format!("node-{i}");
            plan.nodes.push(NodePlan {
                name: node.clone(),
                index: i,
                ip: format!("{LAN_V4}.{}", 10 + u16::from(i)),
                ip6: format!("{LAN_V6}:{:x}", 10 + u16::from(i)),
                // Zones alternate so PreferClose has a same-zone and an other-zone node to choose from.
                zone: format!("zone-{}", if i % 2 == 1 { 'a' } else { 'b' }),
                pod_cidr: format!("10.244.{i}.0/24"),
                pod_cidr6: format!("fd00:244:{i:x}::/64"),
            });
            for k in 0..pods_per_node {
                let letter = char::from(b'a' + k);
                plan.pods.push(PodPlan {
                    name: format!("pod-{i}-{letter}"),
                    node: node.clone(),
                    ip: format!("10.244.{i}.{}", u16::from(k) + 2),
                    ip6: format!("fd00:244:{i:x}::{:x}", u16::from(k) + 2),
                    gateway: format!("10.244.{i}.1"),
                    gateway6: format!("fd00:244:{i:x}::1"),
                });
            }
        }
        plan
    }

    /// The network namespace of a lab member (`cp`, `lan`, `client`, a node or a pod).
    pub fn netns(&self, member: &str) -> String {
        netns(&self.name, member)
    }

    pub fn cp_ip(&self) -> String {
        format!("{LAN_V4}.{CP_HOST}")
    }
}

pub fn netns(lab: &str, member: &str) -> String {
    format!("{lab}-{member}")
}
