//! JSON patch (RFC 6902, `application/json-patch+json`), applied with the `json-patch` crate
//! but decoded and reported the way kube-apiserver (evanphx/json-patch v4) does: a body that is
//! not a list of objects is a 400, an operation that cannot be applied is a 422, an unknown `op`
//! is only found when it is reached, and `replace` of a missing object member adds it.

use json_patch::{PatchErrorKind, PatchOperation};
use serde_json::{Map, Value};

use crate::error::{PatchError, MAX_JSON_PATCH_OPERATIONS};

pub(crate) fn apply(original: &Value, body: &[u8]) -> Result<Value, PatchError> {
    let ops = decode(body)?;
    if ops.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(PatchError::TooManyOperations {
            max: MAX_JSON_PATCH_OPERATIONS,
            got: ops.len(),
        });
    }
    let mut doc = original.clone();
    for op in ops {
        apply_one(&mut doc, op)?;
    }
    Ok(doc)
}

/// Decodes the body into raw operation objects (a JSON `null` item is an operation of kind
/// "unknown", as in Go).
fn decode(body: &[u8]) -> Result<Vec<Map<String, Value>>, PatchError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| PatchError::InvalidBody(e.to_string()))?;
    // Go decodes `null` into a nil patch: no operations.
    if value.is_null() {
        return Ok(Vec::new());
    }
    let Value::Array(items) = value else {
        return Err(PatchError::InvalidBody(format!(
            "json: cannot unmarshal {} into Go value of type jsonpatch.Patch",
            json_kind(&value)
        )));
    };
    items
        .into_iter()
        .map(|item| match item {
            Value::Object(m) => Ok(m),
            Value::Null => Ok(Map::new()),
            other => Err(PatchError::InvalidBody(format!(
                "json: cannot unmarshal {} into Go value of type jsonpatch.Operation",
                json_kind(&other)
            ))),
        })
        .collect()
}

/// The JSON kind Go's `UnmarshalTypeError` names.
pub(crate) fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn apply_one(doc: &mut Value, mut raw: Map<String, Value>) -> Result<(), PatchError> {
    let kind = raw
        .get("op")
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_string();
    if !matches!(
        kind.as_str(),
        "add" | "remove" | "replace" | "move" | "copy" | "test"
    ) {
        return Err(PatchError::JsonPatch(format!("Unexpected kind: {kind}")));
    }
    let path = match raw.get("path") {
        Some(Value::String(p)) => p.clone(),
        _ => {
            return Err(PatchError::JsonPatch(format!(
                "{kind} operation failed to decode path: missing value"
            )))
        }
    };
    // evanphx never resolves the empty (whole document) pointer.
    if !path.starts_with('/') {
        return Err(PatchError::JsonPatch(format!(
            "{kind} operation does not apply: doc is missing path: \"{path}\": missing value"
        )));
    }
    // A missing "value" is a JSON null upstream.
    if matches!(kind.as_str(), "add" | "replace" | "test") && !raw.contains_key("value") {
        raw.insert("value".to_string(), Value::Null);
    }
    let from = raw
        .get("from")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut op: PatchOperation = serde_json::from_value(Value::Object(raw))
        .map_err(|e| PatchError::JsonPatch(format!("{kind} operation failed to decode: {e}")))?;

    if let PatchOperation::Replace(replace) = &op {
        if replaces_missing_member(doc, &path) {
            op = PatchOperation::Add(json_patch::AddOperation {
                path: replace.path.clone(),
                value: replace.value.clone(),
            });
        }
    }

    // patch_unsafe: the caller works on a copy, so there is nothing to roll back on failure.
    json_patch::patch_unsafe(doc, std::slice::from_ref(&op)).map_err(|e| {
        PatchError::JsonPatch(match e.kind {
            PatchErrorKind::TestFailed => format!("testing value {path} failed: test failed"),
            PatchErrorKind::InvalidPointer => format!(
                "{kind} operation does not apply: doc is missing path: \"{path}\": missing value"
            ),
            PatchErrorKind::InvalidFromPointer => format!(
                "{kind} operation does not apply: doc is missing from path: {from}: missing value"
            ),
            _ => format!("{kind} operation failed for path '{path}': {}", e.kind),
        })
    })
}

/// Whether `path` names a member that an existing object lacks (upstream's `replace` then adds).
fn replaces_missing_member(doc: &Value, path: &str) -> bool {
    let Some((parent, last)) = path.rsplit_once('/') else {
        return false;
    };
    let key = last.replace("~1", "/").replace("~0", "~");
    match doc.pointer(parent) {
        Some(Value::Object(m)) => !m.contains_key(&key),
        _ => false,
    }
}
