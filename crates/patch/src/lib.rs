//! The three Kubernetes PATCH content types as pure functions on `serde_json::Value`:
//! JSON patch (RFC 6902), JSON merge patch (RFC 7386) and strategic merge patch, behaving as
//! kube-apiserver does, plus the patch metadata table (`x-kubernetes-patch-strategy` /
//! `x-kubernetes-patch-merge-key`) of the built-in kinds.
//!
//! This crate owns patch semantics and their error texts only. It must not do I/O, decode into
//! typed objects, default, validate, or decide what a subresource may change: the API server
//! applies the patch to the stored JSON, then decodes, defaults and validates the result.

mod error;
mod gofmt;
mod kinds;
mod rfc6902;
mod rfc7386;
mod schema;
mod strategic;
mod strategic_list;
mod strict;

use serde_json::Value;

pub use error::{
    ErrorStatus, PatchError, ERR_BAD_JSON_DOC, ERR_BAD_PRIMITIVE_LIST, ERR_BAD_RETAIN_KEYS,
    ERR_BAD_SET_ELEMENT_ORDER, MAX_JSON_PATCH_OPERATIONS,
};
pub use schema::{FieldDef, FieldStrategy, Strategy, TypeDef};
pub use strict::check_strict_decoding;

/// A PATCH content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatchType {
    /// `application/json-patch+json`
    Json,
    /// `application/merge-patch+json`
    Merge,
    /// `application/strategic-merge-patch+json`
    StrategicMerge,
}

impl PatchType {
    /// Maps a `Content-Type` header (parameters and case ignored) to a patch type. Server-side
    /// apply (`application/apply-patch+yaml`) and anything else give `None` (415 upstream).
    pub fn from_content_type(ct: &str) -> Option<PatchType> {
        let media = ct.split(';').next().unwrap_or_default().trim();
        match media.to_ascii_lowercase().as_str() {
            "application/json-patch+json" => Some(PatchType::Json),
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/strategic-merge-patch+json" => Some(PatchType::StrategicMerge),
            _ => None,
        }
    }

    /// The media type of this patch type.
    pub fn content_type(&self) -> &'static str {
        match self {
            PatchType::Json => "application/json-patch+json",
            PatchType::Merge => "application/merge-patch+json",
            PatchType::StrategicMerge => "application/strategic-merge-patch+json",
        }
    }
}

/// Applies `patch` (the raw request body) of `patch_type` to `original`, the object of kind
/// `kind` as stored (JSON). Kinds without patch metadata (see [`supports_strategic`]) get
/// strategic merge without any list strategies, i.e. every list is replaced; the API server
/// answers 415 for strategic merge on such kinds before calling this, as upstream does for
/// custom resources.
pub fn apply_patch(
    kind: &str,
    original: &Value,
    patch_type: PatchType,
    patch: &[u8],
) -> Result<Value, PatchError> {
    let result = match patch_type {
        PatchType::Json => rfc6902::apply(original, patch)?,
        PatchType::Merge => rfc7386::apply(original, patch)?,
        PatchType::StrategicMerge => {
            let patch = decode_strategic(patch)?;
            strategic_merge(original, &patch, kinds::root(kind))?
        }
    };
    if !result.is_object() {
        return Err(PatchError::NotAnObject(format!(
            " \"\" is invalid: patch: Invalid value: \"{result}\": the patched document is not a JSON object"
        )));
    }
    Ok(result)
}

/// Applies an already decoded strategic merge patch with the strategies of `schema` (`None`:
/// no strategies). Exposed so callers with their own type metadata can reuse the algorithm.
pub fn strategic_merge(
    original: &Value,
    patch: &Value,
    schema: Option<&'static TypeDef>,
) -> Result<Value, PatchError> {
    let Value::Object(patch) = patch else {
        return Err(PatchError::InvalidBody(format!(
            "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            gofmt::type_name(patch)
        )));
    };
    let original = match original {
        Value::Object(m) => m.clone(),
        // Upstream starts from an empty map when there is no original.
        Value::Null => serde_json::Map::new(),
        _ => return Err(PatchError::BadDirective(ERR_BAD_JSON_DOC)),
    };
    strategic::merge_map(original, patch.clone(), schema).map(Value::Object)
}

/// Decodes a strategic merge patch body: a JSON object, or `null` (an empty patch).
fn decode_strategic(body: &[u8]) -> Result<Value, PatchError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| PatchError::InvalidBody(e.to_string()))?;
    match value {
        Value::Object(_) => Ok(value),
        Value::Null => Ok(Value::Object(serde_json::Map::new())),
        other => Err(PatchError::InvalidBody(format!(
            "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            match other {
                Value::Array(_) => "array",
                Value::String(_) => "string",
                Value::Number(_) => "number",
                _ => "bool",
            }
        ))),
    }
}

/// Whether `kind` has patch metadata, i.e. accepts `application/strategic-merge-patch+json`.
pub fn supports_strategic(kind: &str) -> bool {
    kinds::root(kind).is_some()
}

/// The patch metadata root of `kind`, for [`strategic_merge`] or schema generation.
pub fn type_def(kind: &str) -> Option<&'static TypeDef> {
    kinds::root(kind)
}

/// Every field of `kind` that carries a patch strategy, with its JSON path from the object
/// root. `"*"` lists the fields common to all kinds (those of `metadata`); unknown kinds have
/// none.
pub fn list_strategies(kind: &str) -> Vec<FieldStrategy> {
    if kind == "*" {
        return schema::collect_strategies(&kinds::OBJECT_META, "metadata");
    }
    match kinds::root(kind) {
        Some(root) => schema::collect_strategies(root, ""),
        None => Vec::new(),
    }
}
