//! Patch metadata of the built-in kinds, transcribed from the `patchStrategy`/`patchMergeKey`
//! tags of k8s.io/api v0.33 (`core/v1`, `apps/v1`, `batch/v1`, `networking/v1`) and
//! k8s.io/apimachinery `meta/v1`. Kinds whose types carry no tags besides `ObjectMeta`'s
//! (Endpoints, EndpointSlice, Event, Lease, IPAddress, ConfigMap, Secret) only list metadata:
//! their lists, EndpointSlice `endpoints` included, are atomic under strategic merge.

use crate::schema::{FieldDef as F, TypeDef as T};

pub(crate) static OBJECT_META: T = T::new(
    "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
    &[
        F::list("ownerReferences", "merge", "uid", None),
        F::list("finalizers", "merge", "", None),
    ],
);

macro_rules! core {
    ($name:literal) => {
        concat!("io.k8s.api.core.v1.", $name)
    };
}

static CONTAINER: T = T::new(
    core!("Container"),
    &[
        F::list("ports", "merge", "containerPort", None),
        F::list("env", "merge", "name", None),
        F::list("volumeMounts", "merge", "mountPath", None),
        F::list("volumeDevices", "merge", "devicePath", None),
    ],
);

// EphemeralContainer inlines EphemeralContainerCommon, which repeats Container's tags.
static EPHEMERAL_CONTAINER: T = T::new(
    core!("EphemeralContainer"),
    &[
        F::list("ports", "merge", "containerPort", None),
        F::list("env", "merge", "name", None),
        F::list("volumeMounts", "merge", "mountPath", None),
        F::list("volumeDevices", "merge", "devicePath", None),
    ],
);

static POD_SPEC: T = T::new(
    core!("PodSpec"),
    &[
        F::list("volumes", "merge,retainKeys", "name", None),
        F::list("initContainers", "merge", "name", Some(&CONTAINER)),
        F::list("containers", "merge", "name", Some(&CONTAINER)),
        F::list(
            "ephemeralContainers",
            "merge",
            "name",
            Some(&EPHEMERAL_CONTAINER),
        ),
        F::list("imagePullSecrets", "merge", "name", None),
        F::list("hostAliases", "merge", "ip", None),
        F::list("topologySpreadConstraints", "merge", "topologyKey", None),
        F::list("schedulingGates", "merge", "name", None),
        F::list("resourceClaims", "merge,retainKeys", "name", None),
    ],
);

static CONTAINER_STATUS: T = T::new(
    core!("ContainerStatus"),
    &[
        F::list("volumeMounts", "merge", "mountPath", None),
        F::list("allocatedResourcesStatus", "merge", "name", None),
    ],
);

static POD_STATUS: T = T::new(
    core!("PodStatus"),
    &[
        F::list("conditions", "merge", "type", None),
        F::list("hostIPs", "merge", "ip", None),
        F::list("podIPs", "merge", "ip", None),
        F::list("resourceClaimStatuses", "merge,retainKeys", "name", None),
        // The status lists themselves are atomic; listed for their items' tags.
        F::list("initContainerStatuses", "", "", Some(&CONTAINER_STATUS)),
        F::list("containerStatuses", "", "", Some(&CONTAINER_STATUS)),
        F::list(
            "ephemeralContainerStatuses",
            "",
            "",
            Some(&CONTAINER_STATUS),
        ),
    ],
);

static POD: T = T::new(
    core!("Pod"),
    &[
        F::object("metadata", "", Some(&OBJECT_META)),
        F::object("spec", "", Some(&POD_SPEC)),
        F::object("status", "", Some(&POD_STATUS)),
    ],
);

static POD_TEMPLATE_SPEC: T = T::new(
    core!("PodTemplateSpec"),
    &[
        F::object("metadata", "", Some(&OBJECT_META)),
        F::object("spec", "", Some(&POD_SPEC)),
    ],
);

static POD_TEMPLATE: T = T::new(
    core!("PodTemplate"),
    &[
        F::object("metadata", "", Some(&OBJECT_META)),
        F::object("template", "", Some(&POD_TEMPLATE_SPEC)),
    ],
);

static SERVICE_SPEC: T = T::new(
    core!("ServiceSpec"),
    &[F::list("ports", "merge", "port", None)],
);

static SERVICE_STATUS: T = T::new(
    core!("ServiceStatus"),
    &[F::list("conditions", "merge", "type", None)],
);

static SERVICE: T = T::new(
    core!("Service"),
    &[
        F::object("metadata", "", Some(&OBJECT_META)),
        F::object("spec", "", Some(&SERVICE_SPEC)),
        F::object("status", "", Some(&SERVICE_STATUS)),
    ],
);

static NODE_SPEC: T = T::new(core!("NodeSpec"), &[F::list("podCIDRs", "merge", "", None)]);

static NODE_STATUS: T = T::new(
    core!("NodeStatus"),
    &[
        F::list("conditions", "merge", "type", None),
        F::list("addresses", "merge", "type", None),
    ],
);

static NODE: T = T::new(
    core!("Node"),
    &[
        F::object("metadata", "", Some(&OBJECT_META)),
        F::object("spec", "", Some(&NODE_SPEC)),
        F::object("status", "", Some(&NODE_STATUS)),
    ],
);

static NAMESPACE_STATUS: T = T::new(
    core!("NamespaceStatus"),
    &[F::list("conditions", "merge", "type", None)],
);

static NAMESPACE: T = T::new(
    core!("Namespace"),
    &[
        F::object("metadata", "", Some(&OBJECT_META)),
        F::object("status", "", Some(&NAMESPACE_STATUS)),
    ],
);

static SERVICE_ACCOUNT: T = T::new(
    core!("ServiceAccount"),
    &[
        F::object("metadata", "", Some(&OBJECT_META)),
        F::list("secrets", "merge", "name", None),
    ],
);

static PVC_STATUS: T = T::new(
    core!("PersistentVolumeClaimStatus"),
    &[F::list("conditions", "merge", "type", None)],
);

static PVC: T = T::new(
    core!("PersistentVolumeClaim"),
    &[
        F::object("metadata", "", Some(&OBJECT_META)),
        F::object("status", "", Some(&PVC_STATUS)),
    ],
);

static RC_SPEC: T = T::new(
    core!("ReplicationControllerSpec"),
    &[F::object("template", "", Some(&POD_TEMPLATE_SPEC))],
);

static RC_STATUS: T = T::new(
    core!("ReplicationControllerStatus"),
    &[F::list("conditions", "merge", "type", None)],
);

static REPLICATION_CONTROLLER: T = T::new(
    core!("ReplicationController"),
    &[
        F::object("metadata", "", Some(&OBJECT_META)),
        F::object("spec", "", Some(&RC_SPEC)),
        F::object("status", "", Some(&RC_STATUS)),
    ],
);

static SERVICE_CIDR_STATUS: T = T::new(
    "io.k8s.api.networking.v1.ServiceCIDRStatus",
    &[F::list("conditions", "merge", "type", None)],
);

static SERVICE_CIDR: T = T::new(
    "io.k8s.api.networking.v1.ServiceCIDR",
    &[
        F::object("metadata", "", Some(&OBJECT_META)),
        F::object("status", "", Some(&SERVICE_CIDR_STATUS)),
    ],
);

/// A kind whose only tagged fields are its metadata's.
macro_rules! meta_only {
    ($ident:ident, $name:expr) => {
        static $ident: T = T::new($name, &[F::object("metadata", "", Some(&OBJECT_META))]);
    };
}

meta_only!(ENDPOINTS, core!("Endpoints"));
meta_only!(EVENT, core!("Event"));
meta_only!(CONFIG_MAP, core!("ConfigMap"));
meta_only!(SECRET, core!("Secret"));
meta_only!(ENDPOINT_SLICE, "io.k8s.api.discovery.v1.EndpointSlice");
meta_only!(LEASE, "io.k8s.api.coordination.v1.Lease");
meta_only!(IP_ADDRESS, "io.k8s.api.networking.v1.IPAddress");

/// A workload: `spec.template` is a pod template, `status.conditions` merge by type.
macro_rules! workload {
    ($ident:ident, $spec:ident, $status:ident, $group:literal, $kind:literal, [$($extra:expr),*]) => {
        static $spec: T = T::new(
            concat!($group, ".", $kind, "Spec"),
            &[F::object("template", "", Some(&POD_TEMPLATE_SPEC)) $(, $extra)*],
        );
        static $status: T = T::new(
            concat!($group, ".", $kind, "Status"),
            &[F::list("conditions", "merge", "type", None)],
        );
        static $ident: T = T::new(
            concat!($group, ".", $kind),
            &[
                F::object("metadata", "", Some(&OBJECT_META)),
                F::object("spec", "", Some(&$spec)),
                F::object("status", "", Some(&$status)),
            ],
        );
    };
}

workload!(
    DEPLOYMENT,
    DEPLOYMENT_SPEC,
    DEPLOYMENT_STATUS,
    "io.k8s.api.apps.v1",
    "Deployment",
    [F::object("strategy", "retainKeys", None)]
);
workload!(
    REPLICA_SET,
    REPLICA_SET_SPEC,
    REPLICA_SET_STATUS,
    "io.k8s.api.apps.v1",
    "ReplicaSet",
    []
);
workload!(
    DAEMON_SET,
    DAEMON_SET_SPEC,
    DAEMON_SET_STATUS,
    "io.k8s.api.apps.v1",
    "DaemonSet",
    []
);
workload!(
    STATEFUL_SET,
    STATEFUL_SET_SPEC,
    STATEFUL_SET_STATUS,
    "io.k8s.api.apps.v1",
    "StatefulSet",
    [F::list("volumeClaimTemplates", "", "", Some(&PVC))]
);
workload!(JOB, JOB_SPEC, JOB_STATUS, "io.k8s.api.batch.v1", "Job", []);

/// The root type of `kind`, or `None` for kinds without patch metadata (custom resources).
pub(crate) fn root(kind: &str) -> Option<&'static T> {
    let t: &'static T = match kind {
        "Pod" => &POD,
        "PodTemplate" => &POD_TEMPLATE,
        "Service" => &SERVICE,
        "Node" => &NODE,
        "Namespace" => &NAMESPACE,
        "Endpoints" => &ENDPOINTS,
        "EndpointSlice" => &ENDPOINT_SLICE,
        "Event" => &EVENT,
        "Lease" => &LEASE,
        "ServiceCIDR" => &SERVICE_CIDR,
        "IPAddress" => &IP_ADDRESS,
        "ConfigMap" => &CONFIG_MAP,
        "Secret" => &SECRET,
        "ServiceAccount" => &SERVICE_ACCOUNT,
        "PersistentVolumeClaim" => &PVC,
        "ReplicationController" => &REPLICATION_CONTROLLER,
        "Deployment" => &DEPLOYMENT,
        "ReplicaSet" => &REPLICA_SET,
        "DaemonSet" => &DAEMON_SET,
        "StatefulSet" => &STATEFUL_SET,
        "Job" => &JOB,
        _ => return None,
    };
    Some(t)
}
