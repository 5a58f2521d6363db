//! Object metadata the server owns: uid, timestamps, resourceVersion, names from generateName, and the
//! typed round trip that checks an object against its Kubernetes type and drops unknown fields.

use serde_json::{json, Map, Value};

use crate::resources::Resource;
use crate::status::ApiError;

pub fn now_rfc3339() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub fn time_after(seconds: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(seconds))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

pub fn meta(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata").and_then(Value::as_object)
}

pub fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    match obj.get_mut("metadata").and_then(Value::as_object_mut) {
        Some(m) => m,
        None => unreachable!("metadata was just made an object"),
    }
}

pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    meta(obj).and_then(|m| m.get(field)).and_then(Value::as_str)
}

pub fn name(obj: &Value) -> &str {
    meta_str(obj, "name").unwrap_or_default()
}

pub fn uid(obj: &Value) -> &str {
    meta_str(obj, "uid").unwrap_or_default()
}

pub fn finalizers(obj: &Value) -> Vec<String> {
    meta(obj)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

pub fn deletion_requested(obj: &Value) -> bool {
    meta_str(obj, "deletionTimestamp").is_some()
}

/// The JSON body of a stored object, with `resourceVersion` filled from the store's mod revision.
pub fn decode_stored(value: &[u8], mod_revision: i64) -> Result<Value, ApiError> {
    let mut v: Value = serde_json::from_slice(value)
        .map_err(|e| ApiError::internal(format!("stored object: {e}")))?;
    meta_mut(&mut v).insert("resourceVersion".into(), json!(mod_revision.to_string()));
    Ok(v)
}

/// The bytes to store: the object without the fields derived from the store.
pub fn encode_for_store(obj: &Value) -> Vec<u8> {
    let mut o = obj.clone();
    let m = meta_mut(&mut o);
    m.remove("resourceVersion");
    m.remove("selfLink");
    serde_json::to_vec(&o).unwrap_or_default()
}

/// Checks apiVersion/kind of a request body against the resource, filling them when absent.
pub fn check_type(obj: &mut Value, res: &Resource) -> Result<(), ApiError> {
    if !obj.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request must be a JSON object",
        ));
    }
    let want = res.api_version();
    match obj.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => obj["apiVersion"] = json!(want),
        Some(v) if v == want => {}
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({want})"
            )))
        }
    }
    match obj.get("kind").and_then(Value::as_str) {
        None | Some("") => obj["kind"] = json!(res.kind),
        Some(k) if k == res.kind => {}
        Some(k) => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                res.kind
            )))
        }
    }
    Ok(())
}

const GENERATE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

pub fn generate_name(base: &str) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    // As upstream: the base is cut so that base + 5 random characters stays within 63.
    let base: String = base.chars().take(58).collect();
    let suffix: String = (0..5)
        .map(|_| GENERATE_ALPHABET[rng.random_range(0..GENERATE_ALPHABET.len())] as char)
        .collect();
    format!("{base}{suffix}")
}

/// Sets what the server owns on a new object.
pub fn init_new(obj: &mut Value, namespace: Option<&str>) {
    let m = meta_mut(obj);
    if let Some(ns) = namespace {
        m.insert("namespace".into(), json!(ns));
    } else {
        m.remove("namespace");
    }
    m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
    m.insert("creationTimestamp".into(), json!(now_rfc3339()));
    for f in [
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
    ] {
        m.remove(f);
    }
}

/// On update, the fields of metadata a client cannot change are taken from the stored object.
pub fn keep_immutable(new: &mut Value, old: &Value) {
    let Some(old_meta) = meta(old).cloned() else {
        return;
    };
    let m = meta_mut(new);
    for f in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "namespace",
        "generateName",
    ] {
        match old_meta.get(f) {
            Some(v) => {
                m.insert(f.into(), v.clone());
            }
            None => {
                m.remove(f);
            }
        }
    }
}

/// Deserialises into the Kubernetes type and back: rejects wrongly typed fields (400, as upstream) and
/// returns the pruned object plus the paths of unknown fields that were dropped.
pub fn typed_roundtrip(res: &Resource, obj: &Value) -> Result<(Value, Vec<String>), ApiError> {
    use k8s_openapi::api::{coordination, core, discovery, networking};
    macro_rules! rt {
        ($t:ty) => {
            serde_json::from_value::<$t>(obj.clone()).and_then(|o| serde_json::to_value(o))
        };
    }
    let out = match res.kind {
        "Service" => rt!(core::v1::Service),
        "Pod" => rt!(core::v1::Pod),
        "Node" => rt!(core::v1::Node),
        "Namespace" => rt!(core::v1::Namespace),
        "Endpoints" => rt!(core::v1::Endpoints),
        "Event" => rt!(core::v1::Event),
        "EndpointSlice" => rt!(discovery::v1::EndpointSlice),
        "Lease" => rt!(coordination::v1::Lease),
        "ServiceCIDR" => rt!(networking::v1::ServiceCIDR),
        "IPAddress" => rt!(networking::v1::IPAddress),
        crate::pools::KIND => rt!(crate::pools::LoadBalancerIPPool),
        _ => Ok(obj.clone()),
    }
    .map_err(|e| {
        ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: {e}",
            res.kind, res.version, res.kind
        ))
    })?;
    let mut unknown = Vec::new();
    unknown_fields(obj, &out, "", &mut unknown);
    Ok((out, unknown))
}

fn unknown_fields(input: &Value, known: &Value, path: &str, out: &mut Vec<String>) {
    match (input, known) {
        (Value::Object(i), Value::Object(k)) => {
            for (key, v) in i {
                let p = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match k.get(key) {
                    Some(kv) => unknown_fields(v, kv, &p, out),
                    // Nulls and empty values a type drops on output are not unknown fields.
                    None if v.is_null() => {}
                    None if path.ends_with("labels") || path.ends_with("annotations") => {}
                    None => {
                        if !(v.as_object().is_some_and(Map::is_empty)
                            || v.as_array().is_some_and(Vec::is_empty))
                        {
                            out.push(p)
                        }
                    }
                }
            }
        }
        (Value::Array(i), Value::Array(k)) => {
            for (n, (iv, kv)) in i.iter().zip(k.iter()).enumerate() {
                unknown_fields(iv, kv, &format!("{path}[{n}]"), out);
            }
        }
        _ => {}
    }
}

/// Paths of JSON object keys that occur twice in one object, for strict field validation.
pub fn duplicate_fields(raw: &[u8]) -> Vec<String> {
    use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
    struct Seed<'a> {
        path: String,
        out: &'a mut Vec<String>,
    }
    impl<'de> DeserializeSeed<'de> for Seed<'_> {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }
    impl<'de> Visitor<'de> for Seed<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut seen = std::collections::HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                let p = if self.path.is_empty() {
                    key.clone()
                } else {
                    format!("{}.{key}", self.path)
                };
                if !seen.insert(key) {
                    self.out.push(p.clone());
                }
                map.next_value_seed(Seed {
                    path: p,
                    out: self.out,
                })?;
            }
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let mut i = 0;
            while seq
                .next_element_seed(Seed {
                    path: format!("{}[{i}]", self.path),
                    out: self.out,
                })?
                .is_some()
            {
                i += 1;
            }
            Ok(())
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
    }
    let mut out = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(raw);
    let _ = Seed {
        path: String::new(),
        out: &mut out,
    }
    .deserialize(&mut de);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_unknown_and_duplicate_fields() {
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a", "labels": {"x": "y"}},
            "spec": {"ports": [{"port": 80, "bogus": 1}], "foo": "bar", "selector": {"k": "v"}}});
        let (_, unknown) = typed_roundtrip(&crate::resources::SERVICES, &svc).unwrap();
        assert_eq!(unknown, ["spec.ports[0].bogus", "spec.foo"]);
        let raw = br#"{"a": 1, "b": {"c": 1, "c": 2}, "a": 3, "l": [{"x": 1, "x": 1}]}"#;
        assert_eq!(duplicate_fields(raw), ["b.c", "a", "l[0].x"]);
    }

    #[test]
    fn wrong_types_are_bad_requests() {
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a"},
            "spec": {"ports": [{"port": "eighty"}]}});
        let e = typed_roundtrip(&crate::resources::SERVICES, &svc).unwrap_err();
        assert_eq!(e.code, 400);
    }
}
