//! Column definitions per resource, as kube-apiserver's printers declare them.
//!
//! Descriptions are the API field documentation (`SwaggerDoc()`) of k8s.io/api v0.33 that the
//! upstream printers reference. Clients receive them verbatim in every Table, so they are kept
//! byte for byte.

use serde_json::{json, Value};

use crate::Resource;

mod doc {
    pub const NAME: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
    pub const CREATION_TIMESTAMP: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

    pub const SERVICE_TYPE: &str = "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, ClusterIP, NodePort, and LoadBalancer. \"ClusterIP\" allocates a cluster-internal IP address for load-balancing to endpoints. Endpoints are determined by the selector or if that is not specified, by manual construction of an Endpoints object or EndpointSlice objects. If clusterIP is \"None\", no virtual IP is allocated and the endpoints are published as a set of endpoints rather than a virtual IP. \"NodePort\" builds on ClusterIP and allocates a port on every node which routes to the same endpoints as the clusterIP. \"LoadBalancer\" builds on NodePort and creates an external load-balancer (if supported in the current cloud) which routes to the same endpoints as the clusterIP. \"ExternalName\" aliases this service to the specified externalName. Several other fields do not apply to ExternalName services. More info: https://kubernetes.io/docs/concepts/services-networking/service/#publishing-services-service-types";
    pub const SERVICE_CLUSTER_IP: &str = "clusterIP is the IP address of the service and is usually assigned randomly. If an address is specified manually, is in-range (as per system configuration), and is not in use, it will be allocated to the service; otherwise creation of the service will fail. This field may not be changed through updates unless the type field is also being changed to ExternalName (which requires this field to be blank) or the type field is being changed from ExternalName (in which case this field may optionally be specified, as describe above).  Valid values are \"None\", empty string (\"\"), or a valid IP address. Setting this to \"None\" makes a \"headless service\" (no virtual IP), which is useful when direct endpoint connections are preferred and proxying is not required.  Only applies to types ClusterIP, NodePort, and LoadBalancer. If this field is specified when creating a Service of type ExternalName, creation will fail. This field will be wiped when updating a Service to type ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies";
    pub const SERVICE_EXTERNAL_IPS: &str = "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.  These IPs are not managed by Kubernetes.  The user is responsible for ensuring that traffic arrives at a node with this IP.  A common example is external load-balancers that are not part of the Kubernetes system.";
    pub const SERVICE_PORTS: &str = "The list of ports that are exposed by this service. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies";
    pub const SERVICE_SELECTOR: &str = "Route service traffic to pods with label keys and values matching this selector. If empty or not present, the service is assumed to have an external process managing its endpoints, which Kubernetes will not modify. Only applies to types ClusterIP, NodePort, and LoadBalancer. Ignored if type is ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/";

    pub const POD_READY: &str = "The aggregate readiness state of this pod for accepting traffic.";
    pub const POD_STATUS: &str = "The aggregate status of the containers in this pod.";
    pub const POD_RESTARTS: &str = "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.";
    pub const POD_IP: &str = "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.";
    pub const POD_NODE_NAME: &str = "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for scheduling by the scheduler defined in schedulerName. Once this field is set, the kubelet for this node becomes responsible for the lifecycle of this pod. This field should not be used to express a desire for the pod to be scheduled on a specific node. https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename";
    pub const POD_NOMINATED_NODE: &str = "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods. This field does not guarantee that the pod will be scheduled on this node. Scheduler may decide to place the pod elsewhere if other nodes become available sooner. Scheduler may also decide to give the resources on this node to a higher priority pod that is created after preemption. As a result, this field may be different than PodSpec.nodeName when the pod is scheduled.";
    pub const POD_READINESS_GATES: &str = "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to \"True\" More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates";

    pub const ENDPOINTS_SUBSETS: &str = "The set of all endpoints is the union of all subsets. Addresses are placed into subsets according to the IPs they share. A single address with multiple ports, some of which are ready and some of which are not (because they come from different containers) will result in the address being displayed in different subsets for the different ports. No address will appear in both Addresses and NotReadyAddresses in the same subset. Sets of addresses and ports that comprise a service.";

    pub const NODE_STATUS: &str = "The status of the node";
    pub const NODE_ROLES: &str = "The roles of the node";
    pub const NODE_KUBELET_VERSION: &str = "Kubelet Version reported by the node.";
    pub const NODE_ADDRESSES: &str = "List of addresses reachable to the node. Queried from cloud provider, if available. More info: https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This field is declared as mergeable, but the merge key is not sufficiently unique, which can cause data corruption when it is merged. Callers should instead use a full-replacement patch. See https://pr.k8s.io/79391 for an example. Consumers should assume that addresses can change during the lifetime of a Node. However, there are some exceptions where this may not be possible, such as Pods that inherit a Node's address in its own status or consumers of the downward API (status.hostIP).";
    pub const NODE_OS_IMAGE: &str =
        "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).";
    pub const NODE_KERNEL_VERSION: &str =
        "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).";
    pub const NODE_CONTAINER_RUNTIME: &str = "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).";

    pub const EVENT_LAST_TIMESTAMP: &str =
        "The time at which the most recent occurrence of this event was recorded.";
    pub const EVENT_TYPE: &str =
        "Type of this event (Normal, Warning), new types could be added in the future";
    pub const EVENT_REASON: &str = "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.";
    pub const EVENT_INVOLVED_OBJECT: &str = "The object that this event is about.";
    pub const EVENT_FIELD_PATH: &str = "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]. For example, if the object reference is to a container within a pod, this would take on a value like: \"spec.containers{name}\" (where \"name\" refers to the name of the container that triggered the event) or if no container name is specified \"spec.containers[2]\" (container with index 2 in this pod). This syntax is chosen only to have some well-defined way of referencing a part of an object.";
    pub const EVENT_SOURCE: &str =
        "The component reporting this event. Should be a short machine understandable string.";
    pub const EVENT_MESSAGE: &str = "A human-readable description of the status of this operation.";
    pub const EVENT_FIRST_TIMESTAMP: &str =
        "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)";
    pub const EVENT_COUNT: &str = "The number of times this event has occurred.";

    pub const NAMESPACE_STATUS: &str = "The status of the namespace";

    pub const LEASE_HOLDER: &str = "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field.";

    // The printers reference discovery/v1beta1 docs, whose texts differ from discovery/v1.
    pub const SLICE_ADDRESS_TYPE: &str = "addressType specifies the type of address carried by this EndpointSlice. All addresses in this slice must be the same type. This field is immutable after creation. The following address types are currently supported: * IPv4: Represents an IPv4 Address. * IPv6: Represents an IPv6 Address. * FQDN: Represents a Fully Qualified Domain Name.";
    pub const SLICE_PORTS: &str = "ports specifies the list of network ports exposed by each endpoint in this slice. Each port must have a unique name. When ports is empty, it indicates that there are no defined ports. When a port is defined with a nil port value, it indicates \"all ports\". Each slice may include a maximum of 100 ports.";
    pub const SLICE_ENDPOINTS: &str = "endpoints is a list of unique endpoints in this slice. Each slice may include a maximum of 1000 endpoints.";

    pub const SERVICE_CIDRS: &str = "CIDRs defines the IP blocks in CIDR notation (e.g. \"192.168.0.0/24\" or \"2001:db8::/64\") from which to assign service cluster IPs. Max of two CIDRs is allowed, one of each IP family. This field is immutable.";
    pub const POOL_CIDRS: &str =
        "IPv4 and IPv6 blocks of the pool: CIDRs or inclusive address ranges.";
    pub const POOL_AUTO_ASSIGN: &str =
        "Whether Services that ask for no pool get addresses from this one.";
    pub const POOL_PRIORITY: &str = "Order in which pools are tried: higher first, then by name.";
    pub const POOL_USED: &str = "Addresses assigned to Services.";
    pub const POOL_TOTAL: &str = "Assignable addresses (saturates at 2^63-1).";
    pub const IP_PARENT_REF: &str = "ParentRef references the resource that an IPAddress is attached to. An IPAddress must reference a parent object.";
}

/// One `meta.k8s.io/v1` TableColumnDefinition.
struct Column {
    name: &'static str,
    kind: &'static str,
    format: &'static str,
    description: &'static str,
    priority: i32,
}

const fn col(name: &'static str, kind: &'static str, description: &'static str) -> Column {
    Column {
        name,
        kind,
        format: "",
        description,
        priority: 0,
    }
}

/// A column only shown by `kubectl get -o wide`.
const fn wide(name: &'static str, description: &'static str) -> Column {
    Column {
        name,
        kind: "string",
        format: "",
        description,
        priority: 1,
    }
}

const NAME: Column = Column {
    name: "Name",
    kind: "string",
    format: "name",
    description: doc::NAME,
    priority: 0,
};
const AGE: Column = col("Age", "string", doc::CREATION_TIMESTAMP);

const SERVICE: &[Column] = &[
    NAME,
    col("Type", "string", doc::SERVICE_TYPE),
    col("Cluster-IP", "string", doc::SERVICE_CLUSTER_IP),
    col("External-IP", "string", doc::SERVICE_EXTERNAL_IPS),
    col("Port(s)", "string", doc::SERVICE_PORTS),
    AGE,
    wide("Selector", doc::SERVICE_SELECTOR),
];

const POD: &[Column] = &[
    NAME,
    col("Ready", "string", doc::POD_READY),
    col("Status", "string", doc::POD_STATUS),
    col("Restarts", "string", doc::POD_RESTARTS),
    AGE,
    wide("IP", doc::POD_IP),
    wide("Node", doc::POD_NODE_NAME),
    wide("Nominated Node", doc::POD_NOMINATED_NODE),
    wide("Readiness Gates", doc::POD_READINESS_GATES),
];

const NODE: &[Column] = &[
    NAME,
    col("Status", "string", doc::NODE_STATUS),
    col("Roles", "string", doc::NODE_ROLES),
    AGE,
    col("Version", "string", doc::NODE_KUBELET_VERSION),
    wide("Internal-IP", doc::NODE_ADDRESSES),
    wide("External-IP", doc::NODE_ADDRESSES),
    wide("OS-Image", doc::NODE_OS_IMAGE),
    wide("Kernel-Version", doc::NODE_KERNEL_VERSION),
    wide("Container-Runtime", doc::NODE_CONTAINER_RUNTIME),
];

const NAMESPACE: &[Column] = &[NAME, col("Status", "string", doc::NAMESPACE_STATUS), AGE];

const ENDPOINTS: &[Column] = &[
    NAME,
    col("Endpoints", "string", doc::ENDPOINTS_SUBSETS),
    AGE,
];

const ENDPOINT_SLICE: &[Column] = &[
    NAME,
    col("AddressType", "string", doc::SLICE_ADDRESS_TYPE),
    col("Ports", "string", doc::SLICE_PORTS),
    col("Endpoints", "string", doc::SLICE_ENDPOINTS),
    AGE,
];

const EVENT: &[Column] = &[
    col("Last Seen", "string", doc::EVENT_LAST_TIMESTAMP),
    col("Type", "string", doc::EVENT_TYPE),
    col("Reason", "string", doc::EVENT_REASON),
    col("Object", "string", doc::EVENT_INVOLVED_OBJECT),
    wide("Subobject", doc::EVENT_FIELD_PATH),
    wide("Source", doc::EVENT_SOURCE),
    col("Message", "string", doc::EVENT_MESSAGE),
    wide("First Seen", doc::EVENT_FIRST_TIMESTAMP),
    wide("Count", doc::EVENT_COUNT),
    Column {
        name: "Name",
        kind: "string",
        format: "name",
        description: doc::NAME,
        priority: 1,
    },
];

const LEASE: &[Column] = &[NAME, col("Holder", "string", doc::LEASE_HOLDER), AGE];

const SERVICE_CIDR: &[Column] = &[NAME, col("CIDRs", "string", doc::SERVICE_CIDRS), AGE];

// Upstream declares no Age column for IPAddresses although the rows carry an age cell.
const IP_ADDRESS: &[Column] = &[NAME, col("ParentRef", "string", doc::IP_PARENT_REF)];

// svcplane's LoadBalancerIPPool; the same columns as the additionalPrinterColumns of its CRD.
const LB_IP_POOL: &[Column] = &[
    NAME,
    col("CIDRs", "string", doc::POOL_CIDRS),
    col("Auto Assign", "boolean", doc::POOL_AUTO_ASSIGN),
    col("Priority", "integer", doc::POOL_PRIORITY),
    col("IPv4 Used", "integer", doc::POOL_USED),
    Column {
        priority: 1,
        ..col("IPv4 Total", "integer", doc::POOL_TOTAL)
    },
    col("IPv6 Used", "integer", doc::POOL_USED),
    Column {
        priority: 1,
        ..col("IPv6 Total", "integer", doc::POOL_TOTAL)
    },
    AGE,
];

/// The generic apiserver's convertor for resources without a printer.
const DEFAULT: &[Column] = &[NAME, col("Created At", "date", doc::CREATION_TIMESTAMP)];

pub(crate) fn for_resource(resource: Resource) -> Vec<Value> {
    let columns = match resource {
        Resource::Services => SERVICE,
        Resource::Pods => POD,
        Resource::Nodes => NODE,
        Resource::Namespaces => NAMESPACE,
        Resource::Endpoints => ENDPOINTS,
        Resource::EndpointSlices => ENDPOINT_SLICE,
        Resource::Events => EVENT,
        Resource::Leases => LEASE,
        Resource::ServiceCidrs => SERVICE_CIDR,
        Resource::IpAddresses => IP_ADDRESS,
        Resource::LoadBalancerIpPools => LB_IP_POOL,
        Resource::Other => DEFAULT,
    };
    columns
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "type": c.kind,
                "format": c.format,
                "description": c.description,
                "priority": c.priority,
            })
        })
        .collect()
}
