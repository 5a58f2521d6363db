//! Strategic merge cases ported from upstream's strategicpatch tests (apimachinery
//! `pkg/util/strategicpatch/patch_test.go`), run against the same test type ("mergeItem").
//! Where upstream checks both a two-way and a three-way application, the three-way one (the
//! patch `kubectl apply` sends against a live object with server-side extras) is used.

use patch::{strategic_merge, FieldDef, PatchError, TypeDef};
use serde_json::{json, Value};

static MERGE_ITEM: TypeDef = TypeDef::new(
    "mergeItem",
    &[
        FieldDef::list("mergingList", "merge", "name", Some(&MERGE_ITEM)),
        FieldDef::list("nonMergingList", "", "", Some(&MERGE_ITEM)),
        FieldDef::list("mergingIntList", "merge", "", None),
        FieldDef::list("nonMergingIntList", "", "", None),
        FieldDef::list("mergeItemPtr", "merge", "name", Some(&MERGE_ITEM)),
        FieldDef::object("replacingItem", "replace", None),
        FieldDef::object("retainKeysMap", "retainKeys", Some(&RETAIN_KEYS_ITEM)),
        FieldDef::list(
            "retainKeysMergingList",
            "merge,retainKeys",
            "name",
            Some(&MERGE_ITEM),
        ),
    ],
);

static RETAIN_KEYS_ITEM: TypeDef = TypeDef::new(
    "retainKeysMergeItem",
    &[
        FieldDef::list("mergingIntList", "merge", "", None),
        FieldDef::list("mergingList", "merge", "name", Some(&MERGE_ITEM)),
        FieldDef::list("nonMergingList", "", "", Some(&MERGE_ITEM)),
    ],
);

fn smp(original: Value, patch: Value) -> Result<Value, PatchError> {
    strategic_merge(&original, &patch, Some(&MERGE_ITEM))
}

fn ok(original: Value, patch: Value, expected: Value) {
    match smp(original.clone(), patch.clone()) {
        Ok(got) => assert_eq!(
            got, expected,
            "\noriginal: {original}\npatch: {patch}\ngot: {got}\nwant: {expected}"
        ),
        Err(e) => panic!("patch {patch} on {original} failed: {e}"),
    }
}

fn err(original: Value, patch: Value, contains: &str) -> PatchError {
    match smp(original, patch.clone()) {
        Ok(got) => panic!("patch {patch} should fail with {contains:?}, got {got}"),
        Err(e) => {
            assert!(
                e.to_string().contains(contains),
                "error {e:?} does not contain {contains:?}"
            );
            e
        }
    }
}

#[test]
fn unique_scalars_when_merging_lists() {
    ok(
        json!({"mergingIntList": [1, 2]}),
        json!({"mergingIntList": [2, 3]}),
        json!({"mergingIntList": [1, 2, 3]}),
    );
}

#[test]
fn delete_map_from_nested_map_leaves_empty_map() {
    ok(
        json!({"simpleMap": {"key1": 1, "key2": 1}}),
        json!({"simpleMap": {"$patch": "delete"}}),
        json!({"simpleMap": {}}),
    );
}

#[test]
fn replace_directive_empties_merging_list() {
    ok(
        json!({"mergingList": [{"name": 1}, {"name": 2}]}),
        json!({"mergingList": [{"$patch": "replace"}]}),
        json!({"mergingList": []}),
    );
}

#[test]
fn merge_empty_merging_lists() {
    ok(
        json!({"mergingList": []}),
        json!({"mergingList": []}),
        json!({"mergingList": []}),
    );
}

#[test]
fn replace_directive_on_root_map() {
    ok(
        json!({"name": 1, "value": 1}),
        json!({"$patch": "replace"}),
        json!({}),
    );
    ok(
        json!({"name": 1, "value": 1}),
        json!({"other": "a", "$patch": "replace"}),
        json!({"other": "a"}),
    );
}

#[test]
fn delete_all_duplicate_entries_in_merging_list() {
    ok(
        json!({"mergingList": [
            {"name": 1}, {"name": 1}, {"name": 2, "value": "a"}, {"name": 3}, {"name": 3}
        ]}),
        json!({"mergingList": [
            {"name": 1, "$patch": "delete"}, {"name": 3, "$patch": "delete"}
        ]}),
        json!({"mergingList": [{"name": 2, "value": "a"}]}),
    );
}

#[test]
fn retain_keys_map_without_directive_merges() {
    ok(
        json!({"retainKeysMap": {"name": "foo"}}),
        json!({"retainKeysMap": {"value": "bar"}}),
        json!({"retainKeysMap": {"name": "foo", "value": "bar"}}),
    );
}

#[test]
fn preserve_patch_order_in_merging_list() {
    ok(
        json!({"mergingList": [{"name": 1}, {"name": 2, "value": "b"}, {"name": 3}]}),
        json!({"mergingList": [
            {"name": 3, "value": "c"}, {"name": 1, "value": "a"}, {"name": 2, "other": "x"}
        ]}),
        json!({"mergingList": [
            {"name": 3, "value": "c"}, {"name": 1, "value": "a"},
            {"name": 2, "value": "b", "other": "x"}
        ]}),
    );
}

#[test]
fn preserve_patch_order_with_server_only_item() {
    ok(
        json!({"mergingList": [{"name": 1}, {"name": 2, "value": "b"}, {"name": 3}]}),
        json!({"mergingList": [{"name": 3, "value": "c"}, {"name": 1, "value": "a"}]}),
        json!({"mergingList": [
            {"name": 2, "value": "b"}, {"name": 3, "value": "c"}, {"name": 1, "value": "a"}
        ]}),
    );
}

#[test]
fn preserve_patch_order_in_int_list() {
    ok(
        json!({"mergingIntList": [1, 2, 3]}),
        json!({"mergingIntList": [3, 1, 2]}),
        json!({"mergingIntList": [3, 1, 2]}),
    );
    ok(
        json!({"mergingIntList": [1, 2, 3]}),
        json!({"mergingIntList": [3, 1]}),
        json!({"mergingIntList": [2, 3, 1]}),
    );
}

#[test]
fn new_item_without_set_element_order_goes_first() {
    // Upstream ordering, not "append": the patch item is not in the live list, so it is placed
    // before the server-only items.
    ok(
        json!({"mergingList": [{"name": "a"}, {"name": "b"}]}),
        json!({"mergingList": [{"name": "c"}]}),
        json!({"mergingList": [{"name": "c"}, {"name": "a"}, {"name": "b"}]}),
    );
}

#[test]
fn set_element_order_with_item_missing_from_list() {
    ok(
        json!({"mergingList": [{"name": 1}, {"name": 3}]}),
        json!({
            "$setElementOrder/mergingList": [{"name": 3}, {"name": 2}, {"name": 1}],
            "mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]
        }),
        json!({"mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]}),
    );
}

#[test]
fn set_element_order_int_list_with_missing_item() {
    ok(
        json!({"mergingIntList": [1, 3]}),
        json!({"$setElementOrder/mergingIntList": [3, 2, 1]}),
        json!({"mergingIntList": [3, 1]}),
    );
}

#[test]
fn set_element_order_must_match_patch_order() {
    let e = err(
        json!({"mergingList": [{"name": 1}, {"name": 3}, {"name": 2}]}),
        json!({
            "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}, {"name": 3}],
            "mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]
        }),
        "doesn't match",
    );
    assert_eq!(
        e.to_string(),
        "The order in patch list:\n[map[name:3 value:3] map[name:1 value:1]]\n doesn't match \
         $setElementOrder list:\n[map[name:1] map[name:2] map[name:3]]\n"
    );
    assert_eq!(e.status().code, 500);

    err(
        json!({"mergingIntList": [1, 3, 2]}),
        json!({"$setElementOrder/mergingIntList": [1, 2, 3], "mergingIntList": [3, 1]}),
        "doesn't match",
    );
}

#[test]
fn missing_merge_key_errors() {
    let e = err(
        json!({"mergingList": [{"name": 1, "value": "a"}]}),
        json!({"mergingList": [{"value": "b"}]}),
        "does not contain declared merge key",
    );
    assert_eq!(
        e.to_string(),
        "map: map[value:b] does not contain declared merge key: name"
    );
}

#[test]
fn delete_from_primitive_list_of_missing_item_is_noop() {
    ok(
        json!({"mergingIntList": [1, 2]}),
        json!({"$deleteFromPrimitiveList/mergingIntList": [3]}),
        json!({"mergingIntList": [1, 2]}),
    );
}

#[test]
fn delete_from_primitive_list_on_null_list_keeps_null() {
    ok(
        json!({"mergingIntList": null}),
        json!({"$deleteFromPrimitiveList/mergingIntList": [3]}),
        json!({"mergingIntList": null}),
    );
}

#[test]
fn delete_from_primitive_list_does_not_create_list() {
    ok(
        json!({"foo": ["bar"]}),
        json!({"$deleteFromPrimitiveList/mergingIntList": [3]}),
        json!({"foo": ["bar"]}),
    );
}

#[test]
fn delete_from_primitive_list_with_and_without_merge_strategy() {
    ok(
        json!({"mergingIntList": [1, 2, 3]}),
        json!({"$deleteFromPrimitiveList/mergingIntList": [2]}),
        json!({"mergingIntList": [1, 3]}),
    );
    ok(
        json!({"nonMergingIntList": [1, 2, 3]}),
        json!({"$deleteFromPrimitiveList/nonMergingIntList": [2]}),
        json!({"nonMergingIntList": [1, 3]}),
    );
}

#[test]
fn merge_lists_of_maps_three_way() {
    ok(
        json!({"mergingList": [
            {"name": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}
        ]}),
        json!({
            "$setElementOrder/mergingList": [{"name": 4}, {"name": 1}, {"name": 2}, {"name": 3}],
            "mergingList": [{"name": 4, "value": 4}, {"name": 3, "value": 3}]
        }),
        json!({"mergingList": [
            {"name": 4, "value": 4}, {"name": 1, "other": "a"},
            {"name": 2, "value": 2, "other": "b"}, {"name": 3, "value": 3}
        ]}),
    );
}

#[test]
fn set_element_order_keeps_server_only_items_in_place() {
    ok(
        json!({"mergingList": [
            {"name": 1, "other": "a"}, {"name": 2, "value": 2}, {"name": 9},
            {"name": 3, "value": 3}, {"name": 4, "value": 4}
        ]}),
        json!({"$setElementOrder/mergingList": [
            {"name": 2}, {"name": 1}, {"name": 4}, {"name": 3}
        ]}),
        json!({"mergingList": [
            {"name": 2, "value": 2}, {"name": 1, "other": "a"}, {"name": 9},
            {"name": 4, "value": 4}, {"name": 3, "value": 3}
        ]}),
    );
    ok(
        json!({"mergingList": [
            {"name": 1, "other": "a"}, {"name": 2, "value": 2}, {"name": 7}, {"name": 9},
            {"name": 8}, {"name": 3, "value": 3}, {"name": 4, "value": 4}
        ]}),
        json!({"$setElementOrder/mergingList": [
            {"name": 2}, {"name": 1}, {"name": 4}, {"name": 3}
        ]}),
        json!({"mergingList": [
            {"name": 2, "value": 2}, {"name": 1, "other": "a"}, {"name": 7}, {"name": 9},
            {"name": 8}, {"name": 4, "value": 4}, {"name": 3, "value": 3}
        ]}),
    );
}

#[test]
fn set_element_order_with_trailing_server_only_item() {
    ok(
        json!({"mergingList": [
            {"name": 1, "other": "a"}, {"name": 3, "value": 3}, {"name": 4, "value": 4},
            {"name": 2, "value": 2}, {"name": 9}
        ]}),
        json!({"$setElementOrder/mergingList": [
            {"name": 4}, {"name": 2}, {"name": 3}, {"name": 1}
        ]}),
        json!({"mergingList": [
            {"name": 4, "value": 4}, {"name": 2, "value": 2}, {"name": 3, "value": 3},
            {"name": 1, "other": "a"}, {"name": 9}
        ]}),
    );
}

#[test]
fn delete_and_reorder_in_one_list_reorder_in_another() {
    ok(
        json!({
            "mergingList": [{"name": "a", "value": "a"}, {"name": "b", "value": "b"}],
            "mergeItemPtr": [{"name": "c", "value": "c"}, {"name": "d", "value": "d"}]
        }),
        json!({
            "$setElementOrder/mergingList": [{"name": "b"}],
            "$setElementOrder/mergeItemPtr": [{"name": "d"}, {"name": "c"}],
            "mergingList": [{"$patch": "delete", "name": "a"}]
        }),
        json!({
            "mergingList": [{"name": "b", "value": "b"}],
            "mergeItemPtr": [{"name": "d", "value": "d"}, {"name": "c", "value": "c"}]
        }),
    );
}

#[test]
fn add_and_delete_items_in_int_list_with_order() {
    ok(
        json!({"mergingIntList": [1, 2, 3]}),
        json!({
            "$setElementOrder/mergingIntList": [4, 1, 3],
            "mergingIntList": [4],
            "$deleteFromPrimitiveList/mergingIntList": [2]
        }),
        json!({"mergingIntList": [4, 1, 3]}),
    );
}

#[test]
fn retain_keys_clears_defaulted_field() {
    ok(
        json!({"retainKeysMap": {"value": "foo"}}),
        json!({"retainKeysMap": {"$retainKeys": ["other"], "other": "bar"}}),
        json!({"retainKeysMap": {"other": "bar"}}),
    );
}

#[test]
fn retain_keys_adds_a_field_and_clears_a_field() {
    ok(
        json!({"retainKeysMap": {"name": "foo", "other": "a"}}),
        json!({"retainKeysMap": {"$retainKeys": ["name", "value"], "value": "bar"}}),
        json!({"retainKeysMap": {"name": "foo", "value": "bar"}}),
    );
}

#[test]
fn retain_keys_in_merging_list_item() {
    ok(
        json!({"retainKeysMergingList": [
            {"name": "bar"}, {"name": "foo", "value": "a", "other": "x"}
        ]}),
        json!({
            "$setElementOrder/retainKeysMergingList": [{"name": "bar"}, {"name": "foo"}],
            "retainKeysMergingList": [{"$retainKeys": ["name", "value"], "name": "foo"}]
        }),
        json!({"retainKeysMergingList": [{"name": "bar"}, {"name": "foo", "value": "a"}]}),
    );
}

#[test]
fn retain_keys_rejects_patch_fields_outside_list() {
    let e = err(
        json!({"retainKeysMap": {"name": "foo"}}),
        json!({"retainKeysMap": {"$retainKeys": ["name"], "value": "bar"}}),
        "invalid patch format of retainKeys",
    );
    assert_eq!(e.status().code, 400);
    assert_eq!(e.status().reason, "BadRequest");
    err(
        json!({"retainKeysMap": {"name": "foo"}}),
        json!({"retainKeysMap": {"$retainKeys": "name"}}),
        "invalid patch format of retainKeys",
    );
}

#[test]
fn replace_non_merging_list_nested_in_merging_list() {
    ok(
        json!({"mergingList": [
            {"name": 1, "nonMergingList": [{"name": 1}, {"name": 2, "value": 2}]},
            {"name": 2}
        ]}),
        json!({
            "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}],
            "mergingList": [{"name": 1, "nonMergingList": [{"name": 1, "value": 1}]}]
        }),
        json!({"mergingList": [
            {"name": 1, "nonMergingList": [{"name": 1, "value": 1}]},
            {"name": 2}
        ]}),
    );
}

#[test]
fn add_field_to_map_in_list_nested_in_merging_list() {
    ok(
        json!({"mergingList": [
            {"name": 1, "mergingList": [{"name": 1}, {"name": 2, "value": 2}]},
            {"name": 2}
        ]}),
        json!({
            "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}],
            "mergingList": [{
                "name": 1,
                "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}],
                "mergingList": [{"name": 1, "value": 1}]
            }]
        }),
        json!({"mergingList": [
            {"name": 1, "mergingList": [{"name": 1, "value": 1}, {"name": 2, "value": 2}]},
            {"name": 2}
        ]}),
    );
}

#[test]
fn delete_missing_map_from_merging_list_is_noop() {
    ok(
        json!({"mergingList": [{"name": 1}, {"name": 2}]}),
        json!({"mergingList": [{"name": 3, "$patch": "delete"}]}),
        json!({"mergingList": [{"name": 1}, {"name": 2}]}),
    );
}

#[test]
fn delete_field_from_map_in_merging_list() {
    ok(
        json!({"mergingList": [{"name": 1, "value": 1}, {"name": 2, "value": 2}]}),
        json!({
            "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}],
            "mergingList": [{"name": 1, "value": null}]
        }),
        json!({"mergingList": [{"name": 1}, {"name": 2, "value": 2}]}),
    );
}

#[test]
fn replace_strategy_replaces_whole_map() {
    ok(
        json!({"replacingItem": {"a": 1, "b": 2}}),
        json!({"replacingItem": {"c": 3}}),
        json!({"replacingItem": {"c": 3}}),
    );
}

#[test]
fn null_deletes_and_nulls_in_new_values_are_dropped() {
    ok(
        json!({"name": 1, "value": 1, "simpleMap": {"a": "x"}}),
        json!({"value": null, "missing": null, "other": {"keep": 1, "drop": null}}),
        json!({"name": 1, "simpleMap": {"a": "x"}, "other": {"keep": 1}}),
    );
}

#[test]
fn type_change_replaces_value() {
    ok(
        json!({"simpleMap": {"a": "x"}, "mergingList": [{"name": 1}]}),
        json!({"simpleMap": "flat", "mergingList": {"name": 2}}),
        json!({"simpleMap": "flat", "mergingList": {"name": 2}}),
    );
}

#[test]
fn merge_directive_in_list_is_rejected() {
    err(
        json!({"mergingList": [{"name": 1}]}),
        json!({"mergingList": [{"name": 1, "$patch": "merge"}]}),
        "merging lists cannot yet be specified in the patch",
    );
}

#[test]
fn unknown_patch_directive_is_rejected() {
    let e = err(
        json!({"simpleMap": {"a": "x"}}),
        json!({"simpleMap": {"$patch": "frobnicate", "b": "y"}}),
        "unknown patch type",
    );
    assert_eq!(
        e.to_string(),
        "unknown patch type: frobnicate in map: map[$patch:frobnicate b:y]"
    );
    // `$patch: merge` is not accepted on maps either.
    err(
        json!({"simpleMap": {"a": "x"}}),
        json!({"simpleMap": {"$patch": "merge"}}),
        "unknown patch type: merge",
    );
}

#[test]
fn lists_of_lists_are_rejected() {
    // A list item after scalars is a type mismatch; a list first is a list of lists.
    err(
        json!({"mergingIntList": [1]}),
        json!({"mergingIntList": [[2]]}),
        "list element types are not identical: [[1] [[2]]]",
    );
    let e = err(
        json!({"mergingIntList": [[1]]}),
        json!({"mergingIntList": [[2]]}),
        "lists of lists are not supported",
    );
    assert_eq!(e.status().code, 422);
}

#[test]
fn mixed_element_types_are_rejected() {
    err(
        json!({"mergingIntList": [1, 2]}),
        json!({"mergingIntList": ["3"]}),
        "list element types are not identical: [[1 2] [3]]",
    );
}

#[test]
fn malformed_parallel_list_keys_are_bad_requests() {
    let e = err(
        json!({"mergingIntList": [1]}),
        json!({"$setElementOrdermergingIntList": [1]}),
        "invalid patch format of setElementOrder list",
    );
    assert_eq!(e.status().code, 400);
    err(
        json!({"mergingIntList": [1]}),
        json!({"$deleteFromPrimitiveListmergingIntList": [1]}),
        "invalid patch format of primitive list",
    );
    err(
        json!({"mergingIntList": [1]}),
        json!({"$setElementOrder/mergingIntList": "1"}),
        "expected a []interface {}, but received a string",
    );
}

#[test]
fn new_subtree_loses_patch_directive_items() {
    ok(
        json!({}),
        json!({"mergingList": [{"name": 1}, {"name": 2, "$patch": "delete"}]}),
        json!({"mergingList": [{"name": 1}]}),
    );
}

#[test]
fn new_subtree_loses_parallel_list_directives() {
    ok(
        json!({"name": 1}),
        json!({"retainKeysMap": {
            "$retainKeys": ["mergingList"],
            "$setElementOrder/mergingList": [{"name": 1}],
            "mergingList": [{"name": 1, "$deleteFromPrimitiveList/mergingIntList": [2]}]
        }}),
        json!({"name": 1, "retainKeysMap": {"mergingList": [{"name": 1}]}}),
    );
    ok(
        json!({"mergingList": [{"name": 1}]}),
        json!({"mergingList": [{"name": 2, "$setElementOrder/mergingList": [{"name": 3}]}]}),
        json!({"mergingList": [{"name": 2}, {"name": 1}]}),
    );
}
