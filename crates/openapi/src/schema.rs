//! Schema rewriting between the catalog's neutral form and the two published dialects.
//!
//! The catalog keeps every definition in one "neutral" form: references are
//! `#/definitions/<name>` and may carry sibling keywords (a description next to a `$ref`), which is
//! exactly how kube-apiserver's swagger 2.0 document looks. OpenAPI 3.0 ignores siblings of `$ref`,
//! so the v3 rendering wraps such references in a one-element `allOf`, as upstream does.

use serde_json::{Map, Value};

pub(crate) const V2_REF_PREFIX: &str = "#/definitions/";
pub(crate) const V3_REF_PREFIX: &str = "#/components/schemas/";

pub(crate) const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
pub(crate) const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";

/// Calls `f` on every `$ref` string in `value`, recursively.
pub(crate) fn visit_refs(value: &Value, f: &mut dyn FnMut(&str)) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => f(r),
                    _ => visit_refs(v, f),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| visit_refs(v, f)),
        _ => {}
    }
}

/// Definition names referenced (directly) by `value`, given the reference prefix in use.
pub(crate) fn referenced_names(value: &Value, prefix: &str, out: &mut Vec<String>) {
    visit_refs(value, &mut |r| {
        if let Some(name) = r.strip_prefix(prefix) {
            out.push(decode_pointer_token(name));
        }
    });
}

fn decode_pointer_token(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// Renders a neutral definition as an OpenAPI 3.0 schema.
pub(crate) fn to_v3(name: &str, schema: &Value) -> Value {
    // Upstream publishes these two as `oneOf` in v3, which is also what makes `kubectl explain`
    // print `<IntOrString>` / `<Quantity>` rather than `<string>`.
    match name {
        INT_OR_STRING => {
            return with_description(
                schema,
                [
                    ("format", Value::from("int-or-string")),
                    (
                        "oneOf",
                        serde_json::json!([{"type": "integer"}, {"type": "string"}]),
                    ),
                ],
            )
        }
        QUANTITY => {
            return with_description(
                schema,
                [(
                    "oneOf",
                    serde_json::json!([{"type": "string"}, {"type": "number"}]),
                )],
            )
        }
        _ => {}
    }
    let mut out = schema.clone();
    rewrite_v3(&mut out);
    out
}

/// Renders a neutral definition as a swagger 2.0 schema.
pub(crate) fn to_v2(name: &str, schema: &Value) -> Value {
    match name {
        INT_OR_STRING => {
            return with_description(
                schema,
                [
                    ("format", Value::from("int-or-string")),
                    ("type", Value::from("string")),
                ],
            )
        }
        QUANTITY => return with_description(schema, [("type", Value::from("string"))]),
        _ => {}
    }
    let mut out = schema.clone();
    rewrite_v2(&mut out);
    out
}

fn with_description<const N: usize>(schema: &Value, fields: [(&str, Value); N]) -> Value {
    let mut map = Map::new();
    if let Some(d) = schema.get("description") {
        map.insert("description".into(), d.clone());
    }
    for (k, v) in fields {
        map.insert(k.into(), v);
    }
    Value::Object(map)
}

/// Keywords whose value is one subschema.
const SCHEMA_KEYWORDS: &[&str] = &[
    "items",
    "additionalProperties",
    "not",
    "additionalItems",
    "contains",
    "propertyNames",
    "if",
    "then",
    "else",
    "unevaluatedProperties",
    "unevaluatedItems",
];
/// Keywords whose value is an array of subschemas.
const SCHEMA_ARRAY_KEYWORDS: &[&str] = &["allOf", "anyOf", "oneOf", "prefixItems"];
/// Keywords whose value maps names to subschemas.
const SCHEMA_MAP_KEYWORDS: &[&str] = &["properties", "patternProperties", "definitions", "$defs"];

/// Calls `f` on `schema` and every subschema, children first. Only schema positions are visited:
/// a property *named* `type` or `const`, or the data in `default`/`enum`/`x-*`, is never touched.
pub(crate) fn walk_schemas_mut(schema: &mut Value, f: &mut dyn FnMut(&mut Map<String, Value>)) {
    let Value::Object(map) = schema else {
        return;
    };
    for (k, v) in map.iter_mut() {
        let k = k.as_str();
        if SCHEMA_KEYWORDS.contains(&k) {
            // `items` may still be a tuple array in older drafts.
            match v {
                Value::Array(items) => items.iter_mut().for_each(|i| walk_schemas_mut(i, f)),
                _ => walk_schemas_mut(v, f),
            }
        } else if SCHEMA_ARRAY_KEYWORDS.contains(&k) {
            if let Value::Array(items) = v {
                items.iter_mut().for_each(|i| walk_schemas_mut(i, f));
            }
        } else if SCHEMA_MAP_KEYWORDS.contains(&k) {
            if let Value::Object(named) = v {
                named.values_mut().for_each(|i| walk_schemas_mut(i, f));
            }
        }
    }
    f(map);
}

/// Read-only counterpart of [`walk_schemas_mut`].
#[cfg(test)]
pub(crate) fn walk_schemas(schema: &Value, f: &mut dyn FnMut(&Map<String, Value>)) {
    let Value::Object(map) = schema else {
        return;
    };
    for (k, v) in map {
        let k = k.as_str();
        if SCHEMA_KEYWORDS.contains(&k) {
            match v {
                Value::Array(items) => items.iter().for_each(|i| walk_schemas(i, f)),
                _ => walk_schemas(v, f),
            }
        } else if SCHEMA_ARRAY_KEYWORDS.contains(&k) {
            if let Value::Array(items) = v {
                items.iter().for_each(|i| walk_schemas(i, f));
            }
        } else if SCHEMA_MAP_KEYWORDS.contains(&k) {
            if let Value::Object(named) = v {
                named.values().for_each(|i| walk_schemas(i, f));
            }
        }
    }
    f(map);
}

fn rewrite_v3(value: &mut Value) {
    walk_schemas_mut(value, &mut |map| {
        if let Some(Value::String(r)) = map.get_mut("$ref") {
            if let Some(rest) = r.strip_prefix(V2_REF_PREFIX) {
                *r = format!("{V3_REF_PREFIX}{rest}");
            }
        }
        if map.contains_key("$ref") && map.len() > 1 {
            if let Some(r) = map.shift_remove("$ref") {
                let mut all_of = match map.shift_remove("allOf") {
                    Some(Value::Array(items)) => items,
                    _ => Vec::new(),
                };
                all_of.insert(0, serde_json::json!({ "$ref": r }));
                map.insert("allOf".into(), Value::Array(all_of));
            }
        }
        draft2020_to_openapi30(map);
    });
}

fn rewrite_v2(value: &mut Value) {
    walk_schemas_mut(value, &mut |map| {
        if let Some(Value::String(r)) = map.get_mut("$ref") {
            if let Some(rest) = r.strip_prefix(V3_REF_PREFIX) {
                *r = format!("{V2_REF_PREFIX}{rest}");
            }
        }
        draft2020_to_openapi30(map);
        // Swagger 2.0 has no `nullable` and no schema composition other than `allOf`;
        // kube-apiserver drops these when it publishes CRD schemas in v2 too.
        map.shift_remove("nullable");
        map.shift_remove("oneOf");
        map.shift_remove("anyOf");
        map.shift_remove("not");
    });
}

/// Folds JSON Schema draft 2019/2020 keywords that schemars may emit into their OpenAPI 3.0
/// equivalents. k8s-openapi's own schemas need none of this; custom resource schemas might.
fn draft2020_to_openapi30(map: &mut Map<String, Value>) {
    map.shift_remove("$schema");
    map.shift_remove("$id");
    if let Some(Value::Array(types)) = map.get("type").cloned() {
        let non_null: Vec<Value> = types
            .iter()
            .filter(|t| t.as_str() != Some("null"))
            .cloned()
            .collect();
        if non_null.len() != types.len() {
            map.insert("nullable".into(), Value::Bool(true));
        }
        match non_null.len() {
            0 => {
                map.shift_remove("type");
            }
            1 => {
                map.insert("type".into(), non_null[0].clone());
            }
            _ => {
                // OpenAPI 3.0 has no multi-type schemas; `oneOf` keeps the meaning.
                map.shift_remove("type");
                let alternatives = non_null
                    .into_iter()
                    .map(|t| serde_json::json!({ "type": t }))
                    .collect();
                map.insert("oneOf".into(), Value::Array(alternatives));
            }
        }
    }
    if let Some(c) = map.shift_remove("const") {
        map.insert("enum".into(), Value::Array(vec![c]));
    }
    if let Some(Value::Array(mut examples)) = map.shift_remove("examples") {
        if !examples.is_empty() {
            map.insert("example".into(), examples.swap_remove(0));
        }
    }
}

/// Normalises a user-supplied schema (a CRD's `openAPIV3Schema`) into the catalog's neutral form:
/// local `$defs`/`definitions` are not supported by Kubernetes structural schemas, so only the
/// draft-2020 spellings are folded and references are left as they are.
pub(crate) fn normalize_custom(schema: &Value) -> Value {
    let mut out = schema.clone();
    normalize_in_place(&mut out);
    out
}

fn normalize_in_place(value: &mut Value) {
    walk_schemas_mut(value, &mut draft2020_to_openapi30);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn v3_wraps_ref_with_siblings_in_all_of() {
        let s = json!({"properties": {"m": {"$ref": "#/definitions/a.B", "description": "d"}}});
        let out = to_v3("x", &s);
        assert_eq!(
            out["properties"]["m"],
            json!({"description": "d", "allOf": [{"$ref": "#/components/schemas/a.B"}]})
        );
    }

    #[test]
    fn v3_keeps_bare_ref() {
        let s = json!({"items": {"$ref": "#/definitions/a.B"}});
        assert_eq!(
            to_v3("x", &s)["items"],
            json!({"$ref": "#/components/schemas/a.B"})
        );
    }

    #[test]
    fn property_names_are_not_keywords() {
        let s = json!({"properties": {"const": {"type": "string"}, "type": {"type": "string"}}});
        assert_eq!(normalize_custom(&s), s);
    }

    #[test]
    fn type_arrays_become_nullable() {
        let s = json!({"type": ["string", "null"], "const": "x", "$schema": "s"});
        assert_eq!(
            normalize_custom(&s),
            json!({"type": "string", "nullable": true, "enum": ["x"]})
        );
    }

    #[test]
    fn v2_drops_openapi3_only_keywords() {
        let s = json!({"properties": {"a": {"type": "string", "nullable": true, "anyOf": []}}});
        assert_eq!(to_v2("x", &s)["properties"]["a"], json!({"type": "string"}));
    }

    #[test]
    fn int_or_string_shapes_match_upstream() {
        let s = json!({"description": "d", "x-kubernetes-int-or-string": true});
        assert_eq!(
            to_v3(INT_OR_STRING, &s),
            json!({"description": "d", "format": "int-or-string", "oneOf": [{"type": "integer"}, {"type": "string"}]})
        );
        assert_eq!(
            to_v2(INT_OR_STRING, &s),
            json!({"description": "d", "format": "int-or-string", "type": "string"})
        );
    }
}
