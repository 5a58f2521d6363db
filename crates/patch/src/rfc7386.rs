//! JSON merge patch (RFC 7386, `application/merge-patch+json`) as kube-apiserver applies it
//! (evanphx/json-patch v4 `MergePatch`): nulls delete, objects merge recursively, anything else
//! replaces; values copied from the patch lose their null members and null list items.

use serde_json::{Map, Value};

use crate::error::PatchError;

const ERR_BAD_JSON_PATCH: &str = "Invalid JSON Patch";

pub(crate) fn apply(original: &Value, body: &[u8]) -> Result<Value, PatchError> {
    let patch: Value = serde_json::from_slice(body)
        .map_err(|_| PatchError::MergePatch(ERR_BAD_JSON_PATCH.to_string()))?;
    match patch {
        Value::Object(patch) => match original {
            Value::Object(doc) => {
                let mut doc = doc.clone();
                merge_objects(&mut doc, patch);
                Ok(Value::Object(doc))
            }
            _ => {
                let mut v = Value::Object(patch);
                prune_nulls(&mut v);
                Ok(v)
            }
        },
        Value::Array(_) => {
            // Upstream returns the array itself; decoding it as an object then fails.
            let mut v = patch;
            prune_nulls(&mut v);
            Err(PatchError::NotAnObject(format!(
                " \"\" is invalid: patch: Invalid value: \"{v}\": json: cannot unmarshal array into Go value of type map[string]interface {{}}"
            )))
        }
        _ => Err(PatchError::MergePatch(ERR_BAD_JSON_PATCH.to_string())),
    }
}

fn merge_objects(doc: &mut Map<String, Value>, patch: Map<String, Value>) {
    for (key, value) in patch {
        if value.is_null() {
            doc.shift_remove(&key);
            continue;
        }
        match doc.get_mut(&key) {
            Some(Value::Object(current)) => match value {
                Value::Object(p) => merge_objects(current, p),
                other => {
                    doc.insert(key, other);
                }
            },
            _ => {
                let mut value = value;
                prune_nulls(&mut value);
                doc.insert(key, value);
            }
        }
    }
}

fn prune_nulls(value: &mut Value) {
    match value {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            m.values_mut().for_each(prune_nulls);
        }
        Value::Array(items) => {
            items.retain(|v| !v.is_null());
            items.iter_mut().for_each(prune_nulls);
        }
        _ => {}
    }
}
