//! Lenient field access on plain Kubernetes JSON.
//!
//! Printers must never fail on an odd object: a missing or mistyped field reads as the Go zero
//! value (empty string, 0, false, empty list, unset time), which is what the upstream printers
//! see after decoding such an object.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

pub(crate) fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, key| cur.get(key))
}

pub(crate) fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    get(v, path).and_then(Value::as_str).unwrap_or("")
}

pub(crate) fn opt_str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    get(v, path).and_then(Value::as_str)
}

pub(crate) fn arr_at<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    get(v, path)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

pub(crate) fn obj_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Map<String, Value>> {
    get(v, path).and_then(Value::as_object)
}

pub(crate) fn i64_at(v: &Value, path: &[&str]) -> i64 {
    get(v, path).and_then(Value::as_i64).unwrap_or(0)
}

pub(crate) fn bool_at(v: &Value, path: &[&str]) -> bool {
    get(v, path).and_then(Value::as_bool).unwrap_or(false)
}

/// A metav1.Time / metav1.MicroTime field; `None` when absent, null or unparsable (Go's zero
/// time, which the printers render as `<unknown>`).
pub(crate) fn time_at(v: &Value, path: &[&str]) -> Option<DateTime<Utc>> {
    let s = opt_str_at(v, path)?;
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

pub(crate) fn name(obj: &Value) -> &str {
    str_at(obj, &["metadata", "name"])
}

pub(crate) fn creation_timestamp(obj: &Value) -> Option<DateTime<Utc>> {
    time_at(obj, &["metadata", "creationTimestamp"])
}

/// `labels.FormatLabels`: `k=v` pairs sorted by key, comma separated, `<none>` when empty.
pub(crate) fn format_labels(map: Option<&Map<String, Value>>) -> String {
    let mut pairs: Vec<(&str, &str)> = map
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or("")))
        .collect();
    if pairs.is_empty() {
        return "<none>".to_string();
    }
    pairs.sort_unstable();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn labels_are_sorted_and_none_when_empty() {
        let v = json!({"b": "2", "a": "1"});
        assert_eq!(format_labels(v.as_object()), "a=1,b=2");
        assert_eq!(format_labels(None), "<none>");
        assert_eq!(format_labels(json!({}).as_object()), "<none>");
    }

    #[test]
    fn odd_fields_read_as_zero_values() {
        let v = json!({"metadata": {"name": 5, "creationTimestamp": null}});
        assert_eq!(name(&v), "");
        assert_eq!(creation_timestamp(&v), None);
        assert_eq!(i64_at(&v, &["spec", "x"]), 0);
        assert!(arr_at(&v, &["metadata"]).is_empty());
    }
}
