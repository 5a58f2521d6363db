//! Strategic merge of lists: merging by key, `$patch` items, parallel deletion lists, and the
//! ordering rules (`$setElementOrder` first, then the order in the patch, then the live order).
//!
//! Ordering without `$setElementOrder` is upstream's, not "append": items named in the patch are
//! laid out in patch order, and server-only items are interleaved where the live list had them
//! relative to those; an item new to the list therefore lands before the server-only items that
//! follow the last known neighbour (adding `d` to `[a, b, c]` with patch `[d]` gives
//! `[d, a, b, c]`). `kubectl apply` always sends `$setElementOrder`, so it sees the user's order.

use serde_json::Value;

use crate::error::PatchError;
use crate::gofmt::{fmt_list, go_type, GoType, MAP_TYPE};
use crate::strategic::{
    bad_arg_type, bad_patch_type, merge_map, no_merge_key, strip_directive_keys, JsonMap, Schema,
    DELETE_DIRECTIVE, DIRECTIVE_MARKER, MERGE_DIRECTIVE, SET_ELEMENT_ORDER_PREFIX,
};

/// Merges a list field: with strategy `merge` (or for a deletion list) item by item, otherwise
/// the patch list replaces the original verbatim.
pub(crate) fn merge_slice_handler(
    original: Vec<Value>,
    patch: Vec<Value>,
    schema: Schema,
    strategy: &str,
    merge_key: &str,
    is_delete_list: bool,
) -> Result<Vec<Value>, PatchError> {
    if strategy == MERGE_DIRECTIVE || is_delete_list {
        merge_slice(original, patch, schema, merge_key, is_delete_list)
    } else {
        Ok(patch)
    }
}

fn merge_slice(
    original: Vec<Value>,
    patch: Vec<Value>,
    schema: Schema,
    merge_key: &str,
    is_delete_list: bool,
) -> Result<Vec<Value>, PatchError> {
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    let kind = slice_element_type(&[&original, &patch])?;

    let (merged, patch_order, server_order) = if kind != GoType::Map {
        if is_delete_list {
            return Ok(original
                .into_iter()
                .filter(|v| !patch.contains(v))
                .collect());
        }
        let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
        for v in original.iter().chain(patch.iter()) {
            if !merged.contains(v) {
                merged.push(v.clone());
            }
        }
        (merged, patch, original)
    } else {
        if merge_key.is_empty() {
            // Only lists of scalars are tagged "merge" without a key in the built-in types.
            return Err(PatchError::strategic(
                "cannot merge lists without merge key for string",
            ));
        }
        let (original, patch) = apply_special_items(original, patch, merge_key)?;
        let server_order = original.clone();
        let merged = merge_items_by_key(original, patch.clone(), merge_key, schema)?;
        (merged, patch, server_order)
    };

    let (patch_items, server_only) = partition(merged, &patch_order, merge_key)?;
    normalize_element_order(
        patch_items,
        server_only,
        &patch_order,
        &server_order,
        merge_key,
        kind,
    )
}

/// Handles the items carrying `$patch`: `delete` removes every original item with that key,
/// `replace` makes the rest of the patch list the whole result. Returns the original and patch
/// lists left to merge.
fn apply_special_items(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut rest = Vec::with_capacity(patch.len());
    let mut replace = false;
    for item in patch {
        let Some(directive) = item.get(DIRECTIVE_MARKER) else {
            rest.push(item);
            continue;
        };
        let map = item.as_object().cloned().unwrap_or_default();
        match directive.as_str() {
            Some(DELETE_DIRECTIVE) => {
                let Some(key_value) = map.get(merge_key) else {
                    return Err(no_merge_key(&map, merge_key));
                };
                original.retain(|o| merge_key_of(o, merge_key) != Some(key_value));
            }
            // Keep scanning so later `$patch` items are still validated and dropped.
            Some("replace") => replace = true,
            Some(MERGE_DIRECTIVE) => {
                return Err(PatchError::strategic(
                    "merging lists cannot yet be specified in the patch",
                ))
            }
            _ => return Err(bad_patch_type(directive, &map)),
        }
    }
    if replace {
        Ok((rest, Vec::new()))
    } else {
        Ok((original, rest))
    }
}

/// Merges each patch item into the original item with the same merge key, appending new ones.
fn merge_items_by_key(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    merge_key: &str,
    schema: Schema,
) -> Result<Vec<Value>, PatchError> {
    for item in patch {
        let Value::Object(item) = item else {
            return Err(bad_arg_type(MAP_TYPE, &item));
        };
        let Some(key_value) = item.get(merge_key).cloned() else {
            return Err(no_merge_key(&item, merge_key));
        };
        let found = original
            .iter()
            .position(|o| merge_key_of(o, merge_key) == Some(&key_value));
        match found {
            Some(i) => {
                let current = match original[i].take() {
                    Value::Object(m) => m,
                    _ => JsonMap::new(),
                };
                original[i] = Value::Object(merge_map(current, item, schema)?);
            }
            None => {
                let mut item = Value::Object(item);
                strip_directive_keys(&mut item);
                original.push(item);
            }
        }
    }
    Ok(original)
}

fn merge_key_of<'a>(item: &'a Value, merge_key: &str) -> Option<&'a Value> {
    item.as_object().and_then(|m| m.get(merge_key))
}

/// The common Go type of all items of `lists`; lists of lists and mixed types are errors.
pub(crate) fn slice_element_type(lists: &[&[Value]]) -> Result<GoType, PatchError> {
    let mut found: Option<GoType> = None;
    for item in lists.iter().flat_map(|l| l.iter()) {
        let t = go_type(item);
        match found {
            None if t == GoType::Slice => return Err(PatchError::ListOfLists),
            None => found = Some(t),
            Some(prev) if prev != t => {
                let all: Vec<Value> = lists.iter().map(|l| Value::Array(l.to_vec())).collect();
                return Err(PatchError::strategic(format!(
                    "list element types are not identical: {}",
                    fmt_list(&all)
                )));
            }
            Some(_) => {}
        }
    }
    found.ok_or_else(|| PatchError::strategic("no elements in any of the given slices"))
}

/// Splits `items` into those present in `by` (by merge key, or by value for scalars) and the rest.
pub(crate) fn partition(
    items: Vec<Value>,
    by: &[Value],
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut present = Vec::new();
    let mut absent = Vec::new();
    for item in items {
        let is_present = if merge_key.is_empty() {
            by.contains(&item)
        } else {
            let Some(map) = item.as_object() else {
                return Err(bad_arg_type(MAP_TYPE, &item));
            };
            let Some(key_value) = map.get(merge_key) else {
                return Err(no_merge_key(map, merge_key));
            };
            let mut hit = false;
            for (i, candidate) in by.iter().enumerate() {
                let Some(candidate) = candidate.as_object() else {
                    return Err(PatchError::strategic(format!(
                        "value for key {i} is not a map"
                    )));
                };
                if candidate.get(merge_key) == Some(key_value) {
                    hit = true;
                    break;
                }
            }
            hit
        };
        if is_present {
            present.push(item);
        } else {
            absent.push(item);
        }
    }
    Ok((present, absent))
}

/// Checks that the non-directive items of the patch list appear in `$setElementOrder` in the
/// same relative order.
pub(crate) fn validate_patch_with_set_order(
    patch_list: &[Value],
    order: &[Value],
    merge_key: &str,
) -> Result<(), PatchError> {
    if order.is_empty() || patch_list.is_empty() {
        return Ok(());
    }
    let mut kept: Vec<&Value> = Vec::with_capacity(patch_list.len());
    for item in patch_list {
        if merge_key.is_empty() {
            kept.push(item);
            continue;
        }
        if !item.is_object() {
            return Err(bad_arg_type(MAP_TYPE, item));
        }
        if !is_delete_item(item) {
            kept.push(item);
        }
    }
    let (mut pi, mut oi) = (0, 0);
    while pi < kept.len() && oi < order.len() {
        if kept[pi].get(DIRECTIVE_MARKER).is_some() {
            pi += 1;
            continue;
        }
        if merge_key_value_equal(kept[pi], &order[oi], merge_key)? {
            pi += 1;
        }
        oi += 1;
    }
    if pi < kept.len() && oi >= order.len() {
        return Err(PatchError::strategic(format!(
            "The order in patch list:\n{}\n doesn't match {SET_ELEMENT_ORDER_PREFIX} list:\n{}\n",
            fmt_list(patch_list),
            fmt_list(order)
        )));
    }
    Ok(())
}

fn is_delete_item(item: &Value) -> bool {
    item.get(DIRECTIVE_MARKER).and_then(Value::as_str) == Some(DELETE_DIRECTIVE)
}

fn merge_key_value_equal(left: &Value, right: &Value, merge_key: &str) -> Result<bool, PatchError> {
    if merge_key.is_empty() {
        return Ok(left == right);
    }
    let key_of = |v: &Value| -> Result<Value, PatchError> {
        let Some(map) = v.as_object() else {
            return Err(bad_arg_type(MAP_TYPE, v));
        };
        map.get(merge_key)
            .cloned()
            .ok_or_else(|| no_merge_key(map, merge_key))
    };
    Ok(key_of(left)? == key_of(right)?)
}

/// Orders `patch_items` by `patch_order` and `server_only` by `server_order`, then interleaves
/// them so each server-only item stays before the patch items it preceded on the server.
pub(crate) fn normalize_element_order(
    patch_items: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: &str,
    kind: GoType,
) -> Result<Vec<Value>, PatchError> {
    let patch_items = normalize_slice_order(patch_items, patch_order, merge_key, kind)?;
    let server_only = normalize_slice_order(server_only, server_order, merge_key, kind)?;
    Ok(merge_sorted(
        server_only,
        patch_items,
        server_order,
        merge_key,
        kind,
    ))
}

fn normalize_slice_order(
    items: Vec<Value>,
    order: &[Value],
    merge_key: &str,
    kind: GoType,
) -> Result<Vec<Value>, PatchError> {
    let (mut keep, deletes): (Vec<Value>, Vec<Value>) = if kind == GoType::Map {
        for v in items.iter().chain(order.iter()) {
            let Some(map) = v.as_object() else {
                return Err(bad_arg_type(MAP_TYPE, v));
            };
            if !map.contains_key(merge_key) {
                return Err(no_merge_key(map, merge_key));
            }
        }
        items.into_iter().partition(|v| !is_delete_item(v))
    } else {
        (items, Vec::new())
    };
    let mut keyed: Vec<(Option<usize>, Value)> = keep
        .drain(..)
        .map(|v| (index_of(order, &v, merge_key, kind), v))
        .collect();
    sort_like_go(&mut keyed);
    keep.extend(keyed.into_iter().map(|(_, v)| v));
    keep.extend(deletes);
    Ok(keep)
}

/// Upstream sorts with `sort.SliceStable` and a comparator that calls an item "less" whenever
/// either side is missing from the order list. That comparator is inconsistent, so the result
/// depends on the algorithm: Go's stable sort is an insertion sort for lists this short, and an
/// insertion sort here gives the same result in every case (and a plain stable sort whenever
/// every item is found).
fn sort_like_go(items: &mut [(Option<usize>, Value)]) {
    let less = |a: Option<usize>, b: Option<usize>| match (a, b) {
        (Some(a), Some(b)) => a < b,
        _ => true,
    };
    for i in 1..items.len() {
        let mut j = i;
        while j > 0 && less(items[j].0, items[j - 1].0) {
            items.swap(j, j - 1);
            j -= 1;
        }
    }
}

fn index_of(list: &[Value], item: &Value, merge_key: &str, kind: GoType) -> Option<usize> {
    if kind == GoType::Map {
        let wanted = merge_key_of(item, merge_key);
        list.iter()
            .position(|v| merge_key_of(v, merge_key) == wanted)
    } else {
        list.iter().position(|v| v == item)
    }
}

/// Merges two sorted lists; an item of `left` goes first only when both it and the next item of
/// `right` are in `server_order` and it came earlier there.
fn merge_sorted(
    left: Vec<Value>,
    right: Vec<Value>,
    server_order: &[Value],
    merge_key: &str,
    kind: GoType,
) -> Vec<Value> {
    let mut out = Vec::with_capacity(left.len() + right.len());
    let mut left = left.into_iter().peekable();
    let mut right = right.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => {
                match (
                    index_of(server_order, l, merge_key, kind),
                    index_of(server_order, r, merge_key, kind),
                ) {
                    (Some(li), Some(ri)) => li < ri,
                    _ => false,
                }
            }
        };
        let next = if take_left { left.next() } else { right.next() };
        if let Some(v) = next {
            out.push(v);
        }
    }
    out
}
