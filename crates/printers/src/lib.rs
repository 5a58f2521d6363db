//! Server-side printing: the `meta.k8s.io/v1` Table that kube-apiserver returns for
//! `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`, which `kubectl get` renders.
//!
//! This crate owns the column definitions (names, types, formats, descriptions, priorities)
//! and the row cells for the resources svcplane serves, matching kube-apiserver v1.33's
//! `pkg/printers/internalversion` printers and the generic default convertor for everything
//! else, plus assembling whole Tables (list, single object, watch event).
//!
//! It works on plain Kubernetes JSON and is pure: no I/O, no clock (callers pass `now`), and it
//! must not validate or default objects — a malformed field simply prints as its zero value.
//! Content negotiation and the HTTP side stay in the API server.

mod columns;
mod duration;
mod json;
mod rows;
mod table;

use chrono::{DateTime, Utc};
use serde_json::Value;

pub use duration::human_duration;
pub use table::{table_with, IncludeObject, PrintError, TableListMeta};

/// The printers this crate knows, by plural resource name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Services,
    Pods,
    Nodes,
    Namespaces,
    Endpoints,
    EndpointSlices,
    Events,
    Leases,
    ServiceCidrs,
    IpAddresses,
    /// svcplane.io LoadBalancerIPPools.
    LoadBalancerIpPools,
    /// Resources without a dedicated printer: the generic Name / Created At table.
    Other,
}

impl Resource {
    pub fn from_plural(resource: &str) -> Self {
        match resource {
            "services" => Self::Services,
            "pods" => Self::Pods,
            "nodes" => Self::Nodes,
            "namespaces" => Self::Namespaces,
            "endpoints" => Self::Endpoints,
            "endpointslices" => Self::EndpointSlices,
            "events" => Self::Events,
            "leases" => Self::Leases,
            "servicecidrs" => Self::ServiceCidrs,
            "ipaddresses" => Self::IpAddresses,
            "loadbalancerippools" => Self::LoadBalancerIpPools,
            _ => Self::Other,
        }
    }

    /// The apiVersion and kind an object of this resource is served as.
    fn type_meta(self) -> Option<(&'static str, &'static str)> {
        Some(match self {
            Self::Services => ("v1", "Service"),
            Self::Pods => ("v1", "Pod"),
            Self::Nodes => ("v1", "Node"),
            Self::Namespaces => ("v1", "Namespace"),
            Self::Endpoints => ("v1", "Endpoints"),
            Self::EndpointSlices => ("discovery.k8s.io/v1", "EndpointSlice"),
            Self::Events => ("v1", "Event"),
            Self::Leases => ("coordination.k8s.io/v1", "Lease"),
            Self::ServiceCidrs => ("networking.k8s.io/v1", "ServiceCIDR"),
            Self::IpAddresses => ("networking.k8s.io/v1", "IPAddress"),
            Self::LoadBalancerIpPools => ("svcplane.io/v1alpha1", "LoadBalancerIPPool"),
            Self::Other => return None,
        })
    }
}

/// Column definitions for `resource` (plural name), wide columns included with priority 1.
/// Unknown resources get the default convertor's Name and Created At columns.
pub fn column_definitions(resource: &str) -> Vec<Value> {
    columns::for_resource(Resource::from_plural(resource))
}

/// The cells of one object's row, one per column definition, wide cells included (the
/// server always prints wide; kubectl hides priority-1 columns itself). IPAddresses are the
/// one upstream exception: three cells for two columns.
pub fn row_cells(resource: &str, obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    row_cells_for(Resource::from_plural(resource), obj, now)
}

pub(crate) fn row_cells_for(resource: Resource, obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    match resource {
        Resource::Services => rows::service::cells(obj, now),
        Resource::Pods => rows::pod::cells(obj, now),
        Resource::Nodes => rows::node::cells(obj, now),
        Resource::Namespaces => rows::simple::namespace_cells(obj, now),
        Resource::Endpoints => rows::endpoints::endpoints_cells(obj, now),
        Resource::EndpointSlices => rows::endpoints::slice_cells(obj, now),
        Resource::Events => rows::event::cells(obj, now),
        Resource::Leases => rows::simple::lease_cells(obj, now),
        Resource::ServiceCidrs => rows::simple::service_cidr_cells(obj, now),
        Resource::IpAddresses => rows::simple::ip_address_cells(obj, now),
        Resource::LoadBalancerIpPools => rows::simple::lb_ip_pool_cells(obj, now),
        Resource::Other => rows::simple::default_cells(obj),
    }
}

/// Row conditions (`[{"type":"Completed",...}]` for finished pods), if any.
pub(crate) fn row_conditions(resource: Resource, obj: &Value) -> Option<Value> {
    match resource {
        Resource::Pods => rows::pod::conditions(obj),
        _ => None,
    }
}

/// A whole Table for a list response, with column definitions.
pub fn table(
    resource: &str,
    items: &[Value],
    include: IncludeObject,
    resource_version: &str,
    continue_token: Option<&str>,
    now: DateTime<Utc>,
) -> Value {
    let meta = TableListMeta {
        resource_version,
        continue_token,
        remaining_item_count: None,
    };
    table_with(resource, items, include, meta, true, now)
}

/// The Table for one object (a GET of a single object, or the first watch event): column
/// definitions included, `metadata.resourceVersion` taken from the object.
pub fn single_row_table(
    resource: &str,
    obj: &Value,
    include: IncludeObject,
    now: DateTime<Utc>,
) -> Value {
    watch_event_table(resource, obj, include, true, now)
}

/// A watch event's object in Table form. kube-apiserver sends column definitions only with the
/// first event of a watch; later events carry `"columnDefinitions": null`.
pub fn watch_event_table(
    resource: &str,
    obj: &Value,
    include: IncludeObject,
    first_event: bool,
    now: DateTime<Utc>,
) -> Value {
    let meta = TableListMeta {
        resource_version: table::object_resource_version(obj),
        continue_token: None,
        remaining_item_count: None,
    };
    table_with(
        resource,
        std::slice::from_ref(obj),
        include,
        meta,
        first_event,
        now,
    )
}
