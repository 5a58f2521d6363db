//! Assembling `meta.k8s.io/v1` Table objects the way kube-apiserver's `asTable` does.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use crate::{columns, row_cells_for, row_conditions, Resource};

const TABLE_API_VERSION: &str = "meta.k8s.io/v1";

/// The `includeObject` query parameter: what each row's `object` carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    /// `"object": null`.
    None,
    /// A `PartialObjectMetadata` with the object's metadata. Upstream's default, and what
    /// kubectl gets since it sends `includeObject=Object` only with `--sort-by`.
    #[default]
    Metadata,
    /// The whole object.
    Object,
}

/// Errors from interpreting Table request options.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrintError {
    /// kube-apiserver answers this with 400 Bad Request.
    #[error("Unable to convert to Table as requested: includeObject: Invalid value: {0:?}: must be 'Metadata', 'Object', 'None', or empty")]
    InvalidIncludeObject(String),
}

impl IncludeObject {
    /// Parses the `includeObject` query parameter; absent or empty means `Metadata`.
    pub fn from_query(value: Option<&str>) -> Result<Self, PrintError> {
        match value.unwrap_or("") {
            "" | "Metadata" => Ok(Self::Metadata),
            "None" => Ok(Self::None),
            "Object" => Ok(Self::Object),
            other => Err(PrintError::InvalidIncludeObject(other.to_string())),
        }
    }
}

/// The list metadata a Table carries over from the list it was made of.
#[derive(Debug, Clone, Copy, Default)]
pub struct TableListMeta<'a> {
    pub resource_version: &'a str,
    pub continue_token: Option<&'a str>,
    pub remaining_item_count: Option<i64>,
}

/// Builds the Table. `with_headers` false gives `"columnDefinitions": null`, as watch events
/// after the first carry.
pub fn table_with(
    resource: &str,
    items: &[Value],
    include: IncludeObject,
    list_meta: TableListMeta<'_>,
    with_headers: bool,
    now: DateTime<Utc>,
) -> Value {
    let kind = Resource::from_plural(resource);
    let mut metadata = Map::new();
    if !list_meta.resource_version.is_empty() {
        metadata.insert("resourceVersion".into(), json!(list_meta.resource_version));
    }
    if let Some(token) = list_meta.continue_token.filter(|t| !t.is_empty()) {
        metadata.insert("continue".into(), json!(token));
    }
    if let Some(remaining) = list_meta.remaining_item_count {
        metadata.insert("remainingItemCount".into(), json!(remaining));
    }
    let column_definitions = if with_headers {
        Value::Array(columns::for_resource(kind))
    } else {
        Value::Null
    };
    let rows: Vec<Value> = items
        .iter()
        .map(|item| row(kind, item, include, now))
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": TABLE_API_VERSION,
        "metadata": metadata,
        "columnDefinitions": column_definitions,
        "rows": rows,
    })
}

fn row(kind: Resource, obj: &Value, include: IncludeObject, now: DateTime<Utc>) -> Value {
    let mut row = Map::new();
    row.insert("cells".into(), Value::Array(row_cells_for(kind, obj, now)));
    if let Some(conditions) = row_conditions(kind, obj) {
        row.insert("conditions".into(), conditions);
    }
    row.insert("object".into(), embedded_object(kind, obj, include));
    Value::Object(row)
}

fn embedded_object(kind: Resource, obj: &Value, include: IncludeObject) -> Value {
    match include {
        IncludeObject::None => Value::Null,
        IncludeObject::Metadata => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": TABLE_API_VERSION,
            "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
        }),
        IncludeObject::Object => with_type_meta(kind, obj),
    }
}

/// Upstream converts the object to the served version, which always sets apiVersion and kind;
/// fill them in when the stored JSON lacks them.
fn with_type_meta(kind: Resource, obj: &Value) -> Value {
    let mut out = obj.clone();
    if let (Some(map), Some((api_version, kind_name))) = (out.as_object_mut(), kind.type_meta()) {
        let missing = |m: &Map<String, Value>, k: &str| {
            m.get(k).and_then(Value::as_str).is_none_or(str::is_empty)
        };
        if missing(map, "apiVersion") || missing(map, "kind") {
            let mut typed = Map::new();
            typed.insert("apiVersion".into(), json!(api_version));
            typed.insert("kind".into(), json!(kind_name));
            for (k, v) in std::mem::take(map) {
                if k != "apiVersion" && k != "kind" {
                    typed.insert(k, v);
                }
            }
            *map = typed;
        }
    }
    out
}

/// The resourceVersion of a single object, which a one-row Table reports as its own.
pub(crate) fn object_resource_version(obj: &Value) -> &str {
    obj.get("metadata")
        .and_then(|m| m.get("resourceVersion"))
        .and_then(Value::as_str)
        .unwrap_or("")
}
