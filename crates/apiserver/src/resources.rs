//! The resources this server serves, with what discovery, routing and storage need to know of each.

#[derive(Debug)]
pub struct Resource {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub subresources: &'static [&'static str],
    /// Read-only views (kube-apiserver's allocator objects we expose but never accept writes for).
    pub read_only: bool,
    /// Whether writes to the main resource bump metadata.generation on spec changes and ignore status.
    pub has_status: bool,
}

impl Resource {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Store key prefix of all objects of this resource, as kube-apiserver lays out etcd.
    pub fn prefix(&self) -> String {
        // Plurals of the built-in resources are unique, so (as kube-apiserver does for them) the group is
        // left out; custom resources are stored under their group, as kube-apiserver stores CRs.
        if self.is_custom() {
            format!("/registry/{}/{}/", self.group, self.plural)
        } else {
            format!("/registry/{}/", self.plural)
        }
    }

    /// A kind that real clusters serve from a CustomResourceDefinition (our own group): it follows CRD
    /// rules where they differ from built-in kinds (no strategic merge patch, storage layout).
    pub fn is_custom(&self) -> bool {
        !self.group.is_empty() && !self.group.ends_with(".k8s.io")
    }

    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        match namespace {
            Some(ns) if self.namespaced => format!("{}{}/{}", self.prefix(), ns, name),
            _ => format!("{}{}", self.prefix(), name),
        }
    }

    /// Prefix of the objects of one namespace (or of all, for `None`).
    pub fn scope_prefix(&self, namespace: Option<&str>) -> String {
        match namespace {
            Some(ns) if self.namespaced => format!("{}{}/", self.prefix(), ns),
            _ => self.prefix(),
        }
    }

    pub fn verbs(&self) -> &'static [&'static str] {
        if self.read_only {
            &["get", "list", "watch"]
        } else {
            &[
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            ]
        }
    }

    pub fn group_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

#[allow(clippy::too_many_arguments)] // a row of the table below
const fn res(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    has_status: bool,
) -> Resource {
    Resource {
        group,
        version,
        kind,
        plural,
        singular,
        namespaced,
        short_names,
        categories: &[],
        subresources: if has_status { &["status"] } else { &[] },
        read_only: false,
        has_status,
    }
}

pub static NAMESPACES: Resource = res(
    "",
    "v1",
    "Namespace",
    "namespaces",
    "namespace",
    false,
    &["ns"],
    true,
);
pub static SERVICES: Resource = Resource {
    categories: &["all"],
    ..res(
        "",
        "v1",
        "Service",
        "services",
        "service",
        true,
        &["svc"],
        true,
    )
};
pub static PODS: Resource = Resource {
    categories: &["all"],
    ..res("", "v1", "Pod", "pods", "pod", true, &["po"], true)
};
pub static NODES: Resource = res("", "v1", "Node", "nodes", "node", false, &["no"], true);
pub static ENDPOINTS: Resource = res(
    "",
    "v1",
    "Endpoints",
    "endpoints",
    "endpoints",
    true,
    &["ep"],
    false,
);
pub static EVENTS: Resource = res("", "v1", "Event", "events", "event", true, &["ev"], false);
pub static ENDPOINT_SLICES: Resource = res(
    "discovery.k8s.io",
    "v1",
    "EndpointSlice",
    "endpointslices",
    "endpointslice",
    true,
    &[],
    false,
);
pub static LEASES: Resource = res(
    "coordination.k8s.io",
    "v1",
    "Lease",
    "leases",
    "lease",
    true,
    &[],
    false,
);
pub static SERVICE_CIDRS: Resource = Resource {
    read_only: true,
    ..res(
        "networking.k8s.io",
        "v1",
        "ServiceCIDR",
        "servicecidrs",
        "servicecidr",
        false,
        &[],
        true,
    )
};
pub static IP_ADDRESSES: Resource = Resource {
    read_only: true,
    ..res(
        "networking.k8s.io",
        "v1",
        "IPAddress",
        "ipaddresses",
        "ipaddress",
        false,
        &["ip"],
        false,
    )
};

/// svcplane's own kind: the LoadBalancer address pools (the CRD in `deploy/crds/` for real clusters).
pub static LOAD_BALANCER_IP_POOLS: Resource = res(
    crate::pools::GROUP,
    crate::pools::VERSION,
    crate::pools::KIND,
    "loadbalancerippools",
    "loadbalancerippool",
    false,
    &["lbippool"],
    true,
);

pub static ALL: &[&Resource] = &[
    &NAMESPACES,
    &SERVICES,
    &PODS,
    &NODES,
    &ENDPOINTS,
    &EVENTS,
    &ENDPOINT_SLICES,
    &LEASES,
    &SERVICE_CIDRS,
    &IP_ADDRESSES,
    &LOAD_BALANCER_IP_POOLS,
];

/// API groups in discovery order, with their (single, preferred) version.
pub static GROUPS: &[(&str, &str)] = &[
    ("discovery.k8s.io", "v1"),
    ("coordination.k8s.io", "v1"),
    ("networking.k8s.io", "v1"),
    (crate::pools::GROUP, crate::pools::VERSION),
];

pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
    ALL.iter()
        .copied()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

pub fn in_group_version<'a>(
    group: &'a str,
    version: &'a str,
) -> impl Iterator<Item = &'static Resource> + 'a {
    ALL.iter()
        .copied()
        .filter(move |r| r.group == group && r.version == version)
}

pub fn by_kind(kind: &str) -> Option<&'static Resource> {
    ALL.iter().copied().find(|r| r.kind == kind)
}
