//! Built-in kinds: which k8s-openapi type backs each (group, version, kind), and the schemas
//! k8s-openapi's `schemars` impls produce for them.

use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_openapi::schemars::generate::{SchemaGenerator, SchemaSettings};
use k8s_openapi::schemars::JsonSchema;
use k8s_openapi::Resource;
use serde_json::{Map, Value};

pub(crate) const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
pub(crate) const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
pub(crate) const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
pub(crate) const WATCH_EVENT: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent";
pub(crate) const API_RESOURCE_LIST: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList";
pub(crate) const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
pub(crate) const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

pub(crate) const API_VERSION_DESCRIPTION: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
pub(crate) const KIND_DESCRIPTION: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
pub(crate) const OBJECT_META_DESCRIPTION: &str = "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const LIST_META_DESCRIPTION: &str = "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";

/// A generator whose output is the catalog's neutral form: `#/definitions/` references with
/// siblings kept, no meta-schema, and no transforms (k8s-openapi already emits OpenAPI-shaped
/// schemas; dialect differences are handled when rendering).
pub(crate) fn generator() -> SchemaGenerator {
    SchemaSettings::openapi3()
        .with(|s| {
            s.definitions_path = "/definitions".into();
            s.meta_schema = None;
            s.transforms = Vec::new();
        })
        .into_generator()
}

macro_rules! builtin_kinds {
    ($($ty:ty),* $(,)?) => {
        /// Registers the schema of the built-in kind (and everything it references) in `gen`
        /// and returns its definition name, or `None` for a kind we have no type for.
        pub(crate) fn register_kind(
            gen: &mut SchemaGenerator,
            group: &str,
            version: &str,
            kind: &str,
        ) -> Option<String> {
            $(
                if <$ty as Resource>::GROUP == group
                    && <$ty as Resource>::VERSION == version
                    && <$ty as Resource>::KIND == kind
                {
                    gen.subschema_for::<$ty>();
                    return Some(<$ty as JsonSchema>::schema_name().into_owned());
                }
            )*
            None
        }

        /// Every (group, version, kind) this crate can describe from k8s-openapi types.
        pub fn builtin_kinds() -> Vec<(&'static str, &'static str, &'static str)> {
            vec![$((
                <$ty as Resource>::GROUP,
                <$ty as Resource>::VERSION,
                <$ty as Resource>::KIND,
            )),*]
        }
    };
}

builtin_kinds!(
    k8s_openapi::api::core::v1::Service,
    k8s_openapi::api::core::v1::Pod,
    k8s_openapi::api::core::v1::Node,
    k8s_openapi::api::core::v1::Namespace,
    k8s_openapi::api::core::v1::Endpoints,
    k8s_openapi::api::core::v1::Event,
    k8s_openapi::api::core::v1::ConfigMap,
    k8s_openapi::api::core::v1::Secret,
    k8s_openapi::api::core::v1::ServiceAccount,
    k8s_openapi::api::discovery::v1::EndpointSlice,
    k8s_openapi::api::coordination::v1::Lease,
    k8s_openapi::api::networking::v1::ServiceCIDR,
    k8s_openapi::api::networking::v1::IPAddress,
    k8s_openapi::api::events::v1::Event,
    k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
);

/// Registers the meta types that operations reference.
pub(crate) fn register_meta(gen: &mut SchemaGenerator) {
    gen.subschema_for::<meta::Status>();
    gen.subschema_for::<meta::DeleteOptions>();
    gen.subschema_for::<meta::Patch>();
    gen.subschema_for::<meta::WatchEvent<()>>();
    gen.subschema_for::<meta::APIResourceList>();
    gen.subschema_for::<meta::ListMeta>();
    gen.subschema_for::<meta::ObjectMeta>();
}

/// Upstream's wording for the List kinds we serve; the fallback follows the common pattern.
fn list_descriptions(kind: &str, plural: &str) -> (String, String) {
    let known = match kind {
        "Service" => Some(("ServiceList holds a list of services.", "List of services")),
        "Pod" => Some((
            "PodList is a list of Pods.",
            "List of pods. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md",
        )),
        "Node" => Some((
            "NodeList is the whole list of all Nodes which have been registered with master.",
            "List of nodes",
        )),
        "Namespace" => Some((
            "NamespaceList is a list of Namespaces.",
            "Items is the list of Namespace objects in the list. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/namespaces/",
        )),
        "Endpoints" => Some(("EndpointsList is a list of endpoints.", "List of endpoints.")),
        "Event" => Some(("EventList is a list of events.", "List of events")),
        "ConfigMap" => Some((
            "ConfigMapList is a resource containing a list of ConfigMap objects.",
            "Items is the list of ConfigMaps.",
        )),
        "Secret" => Some((
            "SecretList is a list of Secret.",
            "Items is a list of secret objects. More info: https://kubernetes.io/docs/concepts/configuration/secret",
        )),
        "ServiceAccount" => Some((
            "ServiceAccountList is a list of ServiceAccount objects",
            "List of ServiceAccounts. More info: https://kubernetes.io/docs/tasks/configure-pod-container/configure-service-account/",
        )),
        "EndpointSlice" => Some((
            "EndpointSliceList represents a list of endpoint slices",
            "items is the list of endpoint slices",
        )),
        "Lease" => Some((
            "LeaseList is a list of Lease objects.",
            "items is a list of schema objects.",
        )),
        "ServiceCIDR" => Some((
            "ServiceCIDRList contains a list of ServiceCIDR objects.",
            "items is the list of ServiceCIDRs.",
        )),
        "IPAddress" => Some((
            "IPAddressList contains a list of IPAddress.",
            "items is the list of IPAddresses.",
        )),
        "CustomResourceDefinition" => Some((
            "CustomResourceDefinitionList is a list of CustomResourceDefinition objects.",
            "items list individual CustomResourceDefinition objects",
        )),
        _ => None,
    };
    match known {
        Some((list, items)) => (list.to_owned(), items.to_owned()),
        None => (
            format!("{kind}List is a list of {kind}"),
            format!("List of {plural}. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md"),
        ),
    }
}

/// The neutral-form schema of `<kind>List` whose items reference `item_definition`.
pub(crate) fn list_schema(kind: &str, plural: &str, item_definition: &str) -> Value {
    let (description, items_description) = list_descriptions(kind, plural);
    serde_json::json!({
        "description": description,
        "type": "object",
        "properties": {
            "apiVersion": {"description": API_VERSION_DESCRIPTION, "type": "string"},
            "items": {
                "description": items_description,
                "type": "array",
                "items": {"$ref": format!("{}{}", crate::schema::V2_REF_PREFIX, item_definition)},
            },
            "kind": {"description": KIND_DESCRIPTION, "type": "string"},
            "metadata": {
                "$ref": format!("{}{}", crate::schema::V2_REF_PREFIX, LIST_META),
                "description": LIST_META_DESCRIPTION,
            },
        },
        "required": ["items"],
    })
}

/// k8s-openapi marks `metadata` required on every resource because its Rust field is not an
/// `Option`; upstream only does so where the Go field lacks `omitempty`. `kubectl explain` prints
/// `-required-` from this list, so follow upstream.
pub(crate) fn fix_required_metadata(definition: &str, schema: &mut Value) {
    const UPSTREAM_REQUIRES_METADATA: &[&str] = &["io.k8s.api.core.v1.Event"];
    if UPSTREAM_REQUIRES_METADATA.contains(&definition) {
        return;
    }
    let Some(map) = schema.as_object_mut() else {
        return;
    };
    let now_empty = match map.get_mut("required") {
        Some(Value::Array(required)) => {
            required.retain(|r| r.as_str() != Some("metadata"));
            required.is_empty()
        }
        _ => false,
    };
    if now_empty {
        map.shift_remove("required");
    }
}

/// Adds one `{group, kind, version}` entry to a definition's `x-kubernetes-group-version-kind`.
pub(crate) fn add_gvk(schema: &mut Value, group: &str, version: &str, kind: &str) {
    let Some(map) = schema.as_object_mut() else {
        return;
    };
    let entry = gvk_value(group, version, kind);
    let list = map
        .entry("x-kubernetes-group-version-kind")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(items) = list {
        if !items.contains(&entry) {
            items.push(entry);
            // Sorted like upstream, and so that documents do not depend on registration order.
            items.sort_by_key(|e| {
                let field = |k: &str| {
                    e.get(k)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned()
                };
                (field("group"), field("version"), field("kind"))
            });
        }
    }
}

/// The `{group, kind, version}` object used both on schemas (in a list) and on operations.
/// kubectl compares these maps for equality, so no other keys may appear.
pub(crate) fn gvk_value(group: &str, version: &str, kind: &str) -> Value {
    let mut m = Map::new();
    m.insert("group".into(), group.into());
    m.insert("kind".into(), kind.into());
    m.insert("version".into(), version.into());
    Value::Object(m)
}
