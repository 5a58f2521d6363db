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

/// Only the `metadata` of a stored object, as `{"metadata": …}`, for readers that look no further (the
/// garbage collector, label and name selectors): the rest of the object is skipped, not built.
pub fn decode_metadata_only(value: &[u8]) -> Result<Value, serde_json::Error> {
    #[derive(serde::Deserialize)]
    struct MetadataOnly {
        #[serde(default)]
        metadata: Value,
    }
    let m: MetadataOnly = serde_json::from_slice(value)?;
    Ok(Value::Object(Map::from_iter([(
        "metadata".to_string(),
        m.metadata,
    )])))
}

/// The bytes to store: the object without the fields derived from the store.
pub fn encode_for_store(obj: &Value) -> Vec<u8> {
    let Value::Object(top) = obj else {
        return serde_json::to_vec(obj).unwrap_or_default();
    };
    // Written field by field so the object is not copied only to leave two metadata fields out.
    let mut out = Vec::with_capacity(512);
    out.push(b'{');
    for (i, (k, v)) in top.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let _ = serde_json::to_writer(&mut out, k);
        out.push(b':');
        match v {
            Value::Object(m) if k == "metadata" => {
                out.push(b'{');
                let mut first = true;
                for (mk, mv) in m {
                    if mk == "resourceVersion" || mk == "selfLink" {
                        continue;
                    }
                    if !std::mem::replace(&mut first, false) {
                        out.push(b',');
                    }
                    let _ = serde_json::to_writer(&mut out, mk);
                    out.push(b':');
                    let _ = serde_json::to_writer(&mut out, mv);
                }
                out.push(b'}');
            }
            _ => {
                let _ = serde_json::to_writer(&mut out, v);
            }
        }
    }
    out.push(b'}');
    out
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
            <$t as serde::Deserialize>::deserialize(obj).and_then(|o| serde_json::to_value(o))
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
    unknown_fields(obj, &out, &mut Vec::new(), &mut unknown);
    Ok((out, unknown))
}

fn unknown_fields<'a>(
    input: &'a Value,
    known: &Value,
    path: &mut Vec<Seg<&'a str>>,
    out: &mut Vec<String>,
) {
    match (input, known) {
        (Value::Object(i), Value::Object(k)) => {
            for (key, v) in i {
                match k.get(key) {
                    Some(kv) => {
                        path.push(Seg::Key(key));
                        unknown_fields(v, kv, path, out);
                        path.pop();
                    }
                    // Nulls and empty values a type drops on output are not unknown fields.
                    None if v.is_null() => {}
                    None if matches!(path.last(), Some(Seg::Key(k)) if k.ends_with("labels") || k.ends_with("annotations")) =>
                        {}
                    None => {
                        if !(v.as_object().is_some_and(Map::is_empty)
                            || v.as_array().is_some_and(Vec::is_empty))
                        {
                            out.push(render_path(path, Some(key)))
                        }
                    }
                }
            }
        }
        (Value::Array(i), Value::Array(k)) => {
            for (n, (iv, kv)) in i.iter().zip(k.iter()).enumerate() {
                path.push(Seg::Index(n));
                unknown_fields(iv, kv, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

/// One step of a path into a JSON document, its key borrowed (`&str`) or owned (`String`); paths are
/// rendered only when something is reported.
enum Seg<K> {
    Key(K),
    Index(usize),
}

fn render_path<K: AsRef<str>>(path: &[Seg<K>], last: Option<&str>) -> String {
    fn push_key(out: &mut String, k: &str) {
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(k);
    }
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => push_key(&mut out, k.as_ref()),
            Seg::Index(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
    if let Some(k) = last {
        push_key(&mut out, k);
    }
    out
}

/// Parses a JSON request body and, in the same pass, notes the paths of object keys that occur twice
/// (for strict field validation). The value is what `serde_json::from_slice` gives: the last duplicate
/// wins, in the first one's place.
pub fn parse_json_noting_duplicates(raw: &[u8]) -> Result<(Value, Vec<String>), serde_json::Error> {
    use serde::de::DeserializeSeed;
    let mut dups = Vec::new();
    let mut path = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(raw);
    let v = Build {
        path: &mut path,
        dups: &mut dups,
    }
    .deserialize(&mut de)?;
    de.end()?;
    Ok((v, dups))
}

/// Builds a `Value` like serde_json's own visitor, keeping the path (as owned keys) for reports.
struct Build<'p> {
    path: &'p mut Vec<Seg<String>>,
    dups: &'p mut Vec<String>,
}

impl<'de> serde::de::DeserializeSeed<'de> for Build<'_> {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Build<'_> {
    type Value = Value;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any valid JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        loop {
            self.path.push(Seg::Index(out.len()));
            let el = seq.next_element_seed(Build {
                path: &mut *self.path,
                dups: &mut *self.dups,
            });
            self.path.pop();
            match el? {
                Some(v) => out.push(v),
                None => return Ok(Value::Array(out)),
            }
        }
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                self.dups.push(render_path(self.path, Some(&key)));
            }
            self.path.push(Seg::Key(key));
            let v = map.next_value_seed(Build {
                path: &mut *self.path,
                dups: &mut *self.dups,
            });
            let Some(Seg::Key(key)) = self.path.pop() else {
                unreachable!("the key pushed above")
            };
            out.insert(key, v?);
        }
        Ok(Value::Object(out))
    }
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
        let (v, dups) = parse_json_noting_duplicates(raw).unwrap();
        assert_eq!(dups, ["b.c", "a", "l[0].x"]);
        assert_eq!(v, serde_json::from_slice::<Value>(raw).unwrap());
        let nested = br#"{"x": {}, "x": {"y": 1, "y": 2}}"#;
        assert_eq!(
            parse_json_noting_duplicates(nested).unwrap().1,
            ["x", "x.y"]
        );
        assert!(parse_json_noting_duplicates(b"{} x").is_err());
    }

    #[test]
    fn wrong_types_are_bad_requests() {
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a"},
            "spec": {"ports": [{"port": "eighty"}]}});
        let e = typed_roundtrip(&crate::resources::SERVICES, &svc).unwrap_err();
        assert_eq!(e.code, 400);
    }
}
