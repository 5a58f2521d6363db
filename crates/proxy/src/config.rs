//! What the node agent tells the model about its node and its flags.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use k8s_openapi::api::core::v1::Node;

use crate::types::Family;

/// The node label that places a node in a zone (`topology.kubernetes.io/zone`).
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// The default ClientIP session affinity timeout (3 hours), as the API server defaults it.
pub const DEFAULT_AFFINITY_TIMEOUT_SECONDS: u32 = 10800;

/// The default nftables table name, in both families.
pub const DEFAULT_TABLE: &str = "svcplane";

/// Which node addresses NodePorts answer on (`--nodeport-addresses`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum NodePortAddresses {
    /// kube-proxy's default (`primary`): the node's primary IP of the family.
    #[default]
    Primary,
    /// The node's addresses inside any of these CIDRs.
    Cidrs(Vec<IpNet>),
}

impl NodePortAddresses {
    /// Parses the flag value: `primary`, empty, or a comma-separated list of CIDRs.
    pub fn parse(value: &str) -> Result<NodePortAddresses, ipnet::AddrParseError> {
        let value = value.trim();
        if value.is_empty() || value == "primary" {
            return Ok(NodePortAddresses::Primary);
        }
        let cidrs = value
            .split(',')
            .map(|c| c.trim().parse::<IpNet>())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(NodePortAddresses::Cidrs(cidrs))
    }
}

/// Flags and facts of this node that shape the rules; fixed for the life of a model.
#[derive(Debug, Clone)]
pub struct Config {
    pub family: Family,
    /// The nftables table (in family `ip` or `ip6`); default [`DEFAULT_TABLE`].
    pub table: String,
    /// This node's name (`--hostname-override` / `--node-name`): endpoints with this `nodeName` are local.
    pub node_name: String,
    pub nodeport_addresses: NodePortAddresses,
    /// Pod CIDRs of the cluster (`--cluster-cidr`): traffic from them is "from a pod" (kube-proxy's
    /// ClusterCIDR local-traffic detector). Empty: no detector, so ClusterIP traffic from outside the pod
    /// network is not masqueraded and pod traffic to eTP:Local external IPs is not short-circuited.
    pub cluster_cidrs: Vec<IpNet>,
    /// The Service ClusterIP ranges: packets to an address in them that no Service owns are dropped.
    pub service_cidrs: Vec<IpNet>,
    /// `--masquerade-all`: masquerade every packet sent to a ClusterIP.
    pub masquerade_all: bool,
    /// Honour `hints.forNodes` (kube-proxy's PreferSameTrafficDistribution gate: alpha in 1.33, beta and on
    /// since 1.34; the API server accepts `trafficDistribution: PreferSameNode` as v1.36 does).
    pub prefer_same_node_hints: bool,
}

impl Config {
    pub fn new(family: Family, node_name: impl Into<String>) -> Config {
        Config {
            family,
            table: DEFAULT_TABLE.to_string(),
            node_name: node_name.into(),
            nodeport_addresses: NodePortAddresses::Primary,
            cluster_cidrs: Vec::new(),
            service_cidrs: Vec::new(),
            masquerade_all: false,
            prefer_same_node_hints: true,
        }
    }

    /// The CIDRs of this family only, so a dual-stack flag can be handed to both models.
    pub(crate) fn family_cidrs<'a>(
        &'a self,
        cidrs: &'a [IpNet],
    ) -> impl Iterator<Item = &'a IpNet> + 'a {
        cidrs.iter().filter(|c| self.family.matches(&c.addr()))
    }
}

/// What the model needs of the Node object: its addresses and its topology labels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeInfo {
    /// `status.addresses` of type InternalIP, then ExternalIP, in API order.
    pub addresses: Vec<IpAddr>,
    pub labels: BTreeMap<String, String>,
}

impl NodeInfo {
    pub fn from_node(node: &Node) -> NodeInfo {
        let mut internal = Vec::new();
        let mut external = Vec::new();
        for address in node
            .status
            .as_ref()
            .and_then(|s| s.addresses.as_ref())
            .into_iter()
            .flatten()
        {
            let Ok(ip) = address.address.trim().parse::<IpAddr>() else {
                continue;
            };
            match address.type_.as_str() {
                "InternalIP" => internal.push(ip),
                "ExternalIP" => external.push(ip),
                _ => {}
            }
        }
        internal.extend(external);
        NodeInfo {
            addresses: internal,
            labels: node.metadata.labels.clone().unwrap_or_default(),
        }
    }

    pub fn zone(&self) -> Option<&str> {
        self.labels
            .get(ZONE_LABEL)
            .map(String::as_str)
            .filter(|z| !z.is_empty())
    }

    /// The node's primary IP of a family: the first InternalIP of it, else the first ExternalIP (the order
    /// `from_node` keeps), as kubelet and kube-proxy choose the node IPs.
    pub fn primary(&self, family: Family) -> Option<IpAddr> {
        self.addresses.iter().copied().find(|ip| family.matches(ip))
    }

    /// The addresses NodePorts answer on, for one family.
    pub(crate) fn nodeport_ips(&self, config: &Config) -> Vec<IpAddr> {
        let mut ips: Vec<IpAddr> = match &config.nodeport_addresses {
            NodePortAddresses::Primary => self.primary(config.family).into_iter().collect(),
            NodePortAddresses::Cidrs(cidrs) => self
                .addresses
                .iter()
                .copied()
                .filter(|ip| config.family.matches(ip) && cidrs.iter().any(|c| c.contains(ip)))
                .collect(),
        };
        ips.sort();
        ips.dedup();
        ips
    }
}
