//! Strategic merge patch on JSON objects: recursive map merge and the map-level directives
//! (`$patch`, `$retainKeys`, `$setElementOrder/<list>`, `$deleteFromPrimitiveList/<list>`).
//!
//! Behaviour follows kube-apiserver's `StrategicMergeMapPatch` (server side: parallel lists are
//! merged, nulls that match nothing are dropped), including its quirks: a `$patch: delete` map
//! leaves `{}` behind, and a list without merge strategy is replaced verbatim. Values copied from
//! the patch into places the original lacks lose their `$patch` maps and nulls as upstream; they
//! also lose other directive keys, which upstream leaves for its typed decode to drop.

use serde_json::{Map, Value};

use crate::error::{
    PatchError, ERR_BAD_PRIMITIVE_LIST, ERR_BAD_RETAIN_KEYS, ERR_BAD_SET_ELEMENT_ORDER,
};
use crate::gofmt::{fmt_map, fmt_s, go_type, type_name, SLICE_TYPE};
use crate::schema::{lookup, TypeDef};
use crate::strategic_list::{
    merge_slice_handler, normalize_element_order, partition, slice_element_type,
    validate_patch_with_set_order,
};

pub(crate) type JsonMap = Map<String, Value>;
pub(crate) type Schema = Option<&'static TypeDef>;

pub(crate) const DIRECTIVE_MARKER: &str = "$patch";
pub(crate) const DELETE_DIRECTIVE: &str = "delete";
const REPLACE_DIRECTIVE: &str = "replace";
pub(crate) const MERGE_DIRECTIVE: &str = "merge";
const RETAIN_KEYS_DIRECTIVE: &str = "$retainKeys";
const RETAIN_KEYS_STRATEGY: &str = "retainKeys";
const DELETE_FROM_PRIMITIVE_LIST_PREFIX: &str = "$deleteFromPrimitiveList";
pub(crate) const SET_ELEMENT_ORDER_PREFIX: &str = "$setElementOrder";

/// Applies `patch` to `original` with the field strategies of `schema`.
pub(crate) fn merge_map(
    mut original: JsonMap,
    mut patch: JsonMap,
    schema: Schema,
) -> Result<JsonMap, PatchError> {
    if let Some(directive) = patch.get(DIRECTIVE_MARKER) {
        return match directive.as_str() {
            Some(REPLACE_DIRECTIVE) => {
                patch.shift_remove(DIRECTIVE_MARKER);
                Ok(patch)
            }
            Some(DELETE_DIRECTIVE) => Ok(JsonMap::new()),
            _ => Err(bad_patch_type(directive, &patch)),
        };
    }

    apply_retain_keys(&mut original, &mut patch)?;
    merge_set_element_order(&mut original, &mut patch, schema)?;

    for (key, patch_value) in patch {
        let (key, is_delete_list) = if key.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX) {
            (extract_key(&key, DELETE_FROM_PRIMITIVE_LIST_PREFIX)?, true)
        } else {
            (key, false)
        };

        if patch_value.is_null() {
            original.shift_remove(&key);
            continue;
        }

        let Some(current) = original.get_mut(&key) else {
            // A deletion list for a list the object lacks must not create the list.
            if !is_delete_list {
                set_from_patch(&mut original, key, patch_value);
            }
            continue;
        };
        if go_type(current) != go_type(&patch_value) {
            if !is_delete_list {
                set_from_patch(&mut original, key, patch_value);
            }
            continue;
        }

        let (subschema, tag, merge_key) = lookup(schema, &key);
        let (_, strategy) = split_retain_keys(tag)?;
        let merged = match (current.take(), patch_value) {
            (Value::Object(cur), Value::Object(p)) => {
                if strategy == REPLACE_DIRECTIVE {
                    Value::Object(p)
                } else {
                    Value::Object(merge_map(cur, p, subschema)?)
                }
            }
            (Value::Array(cur), Value::Array(p)) => Value::Array(merge_slice_handler(
                cur,
                p,
                subschema,
                strategy,
                merge_key,
                is_delete_list,
            )?),
            (_, scalar) => scalar,
        };
        original.insert(key, merged);
    }
    Ok(original)
}

/// Stores a value taken from the patch where the original had nothing comparable.
fn set_from_patch(original: &mut JsonMap, key: String, mut value: Value) {
    discard_nulls(&mut value);
    match remove_directives(value) {
        Some(mut v) => {
            strip_directive_keys(&mut v);
            original.insert(key, v);
        }
        None => {
            original.shift_remove(&key);
        }
    }
}

/// Drops `$patch` maps (and list items) from a value copied out of the patch; `None` when the
/// value itself is such a map.
pub(crate) fn remove_directives(value: Value) -> Option<Value> {
    match value {
        Value::Object(m) => {
            if m.contains_key(DIRECTIVE_MARKER) {
                return None;
            }
            let kept = m
                .into_iter()
                .filter_map(|(k, v)| remove_directives(v).map(|v| (k, v)))
                .collect();
            Some(Value::Object(kept))
        }
        Value::Array(items) => Some(Value::Array(
            items.into_iter().filter_map(remove_directives).collect(),
        )),
        other => Some(other),
    }
}

/// Removes the parallel-list and `$retainKeys` directive keys from a value copied out of the
/// patch. Upstream leaves them in and relies on the typed decode to drop them; removing them
/// here gives the same object without depending on how the caller decodes or stores it.
pub(crate) fn strip_directive_keys(value: &mut Value) {
    match value {
        Value::Object(m) => {
            m.retain(|k, _| {
                k != RETAIN_KEYS_DIRECTIVE
                    && !k.starts_with(SET_ELEMENT_ORDER_PREFIX)
                    && !k.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX)
            });
            m.values_mut().for_each(strip_directive_keys);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_directive_keys),
        _ => {}
    }
}

/// Removes `null` members from every map inside `value` (list items that are null stay).
fn discard_nulls(value: &mut Value) {
    match value {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            m.values_mut().for_each(discard_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(discard_nulls),
        _ => {}
    }
}

/// `$retainKeys`: clears every field of `original` not named in the list, after checking that
/// the patch only sets named fields.
fn apply_retain_keys(original: &mut JsonMap, patch: &mut JsonMap) -> Result<(), PatchError> {
    let Some(retain) = patch.shift_remove(RETAIN_KEYS_DIRECTIVE) else {
        return Ok(());
    };
    let Value::Array(retain) = retain else {
        return Err(PatchError::BadDirective(ERR_BAD_RETAIN_KEYS));
    };
    let retained = |k: &str| retain.iter().any(|v| v.as_str() == Some(k));
    for (k, v) in patch.iter() {
        if v.is_null()
            || k.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX)
            || k.starts_with(SET_ELEMENT_ORDER_PREFIX)
        {
            continue;
        }
        if !retained(k) {
            return Err(PatchError::BadDirective(ERR_BAD_RETAIN_KEYS));
        }
    }
    original.retain(|k, _| retained(k));
    Ok(())
}

/// `$setElementOrder/<list>`: merges `<list>` from the patch (if any) and orders the result by
/// the directive, keeping items only the server has next to their former neighbours.
fn merge_set_element_order(
    original: &mut JsonMap,
    patch: &mut JsonMap,
    schema: Schema,
) -> Result<(), PatchError> {
    let keys: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER_PREFIX))
        .cloned()
        .collect();
    for key in keys {
        let order = patch.shift_remove(&key).unwrap_or(Value::Null);
        let Value::Array(order) = order else {
            return Err(bad_arg_type(SLICE_TYPE, &order));
        };
        let field = extract_key(&key, SET_ELEMENT_ORDER_PREFIX)?;
        let original_list = list_at(original, &field)?;
        let patch_list = list_at(patch, &field)?;

        let (subschema, tag, merge_key) = lookup(schema, &field);
        let (_, strategy) = split_retain_keys(tag)?;
        validate_patch_with_set_order(patch_list.as_deref().unwrap_or(&[]), &order, merge_key)?;

        let merged = match (&original_list, &patch_list) {
            (Some(o), None) => o.clone(),
            (None, Some(p)) => match remove_directives(Value::Array(p.clone())) {
                Some(Value::Array(items)) => items,
                _ => continue,
            },
            (Some(o), Some(p)) => {
                merge_slice_handler(o.clone(), p.clone(), subschema, strategy, merge_key, false)?
            }
            (None, None) => continue,
        };

        let (patch_items, server_only) = partition(merged, &order, merge_key)?;
        let server_order = original_list.unwrap_or_default();
        let kind = slice_element_type(&[&server_order, patch_list.as_deref().unwrap_or(&[])])?;
        let ordered = normalize_element_order(
            patch_items,
            server_only,
            &order,
            &server_order,
            merge_key,
            kind,
        )?;
        original.insert(field.clone(), Value::Array(ordered));
        patch.shift_remove(&field);
    }
    Ok(())
}

/// The list stored under `key`, if any; anything else there is a type error.
fn list_at(map: &JsonMap, key: &str) -> Result<Option<Vec<Value>>, PatchError> {
    match map.get(key) {
        None => Ok(None),
        Some(Value::Array(items)) => Ok(Some(items.clone())),
        Some(other) => Err(bad_arg_type(SLICE_TYPE, other)),
    }
}

/// `$setElementOrder/ports` → `ports`; the prefix must be followed by `/`.
fn extract_key(directive: &str, prefix: &str) -> Result<String, PatchError> {
    match directive.split_once('/') {
        Some((head, rest)) if head == prefix => Ok(rest.to_string()),
        _ if prefix == DELETE_FROM_PRIMITIVE_LIST_PREFIX => {
            Err(PatchError::BadDirective(ERR_BAD_PRIMITIVE_LIST))
        }
        _ => Err(PatchError::BadDirective(ERR_BAD_SET_ELEMENT_ORDER)),
    }
}

/// Splits a `patchStrategy` tag into (has retainKeys, the other strategy).
fn split_retain_keys(tag: &'static str) -> Result<(bool, &'static str), PatchError> {
    let parts: Vec<&'static str> = tag.split(',').collect();
    match parts.as_slice() {
        [single] if *single == RETAIN_KEYS_STRATEGY => Ok((true, "")),
        [single] => Ok((false, single)),
        [a, b] if *a == RETAIN_KEYS_STRATEGY => Ok((true, b)),
        [a, b] if *b == RETAIN_KEYS_STRATEGY => Ok((true, a)),
        _ => Err(PatchError::strategic(format!(
            "unexpected patch strategy: [{}]",
            parts.join(" ")
        ))),
    }
}

pub(crate) fn bad_patch_type(directive: &Value, map: &JsonMap) -> PatchError {
    PatchError::strategic(format!(
        "unknown patch type: {} in map: {}",
        fmt_s(directive),
        fmt_map(map)
    ))
}

pub(crate) fn bad_arg_type(expected: &str, actual: &Value) -> PatchError {
    PatchError::strategic(format!(
        "expected a {expected}, but received a {}",
        type_name(actual)
    ))
}

pub(crate) fn no_merge_key(map: &JsonMap, merge_key: &str) -> PatchError {
    PatchError::strategic(format!(
        "map: {} does not contain declared merge key: {merge_key}",
        fmt_map(map)
    ))
}
