//! Stored objects sent as they are: the store keeps each object's JSON without `resourceVersion`, and lists
//! and watch events only need that field added. Splicing it into the bytes costs a scan of the top-level
//! keys; decoding every object into a `Value` and encoding it again was most of the cost of a large list and
//! of every watch event.

/// `stored` with `"resourceVersion":"<rv>"` appended to its top-level `metadata`, or `None` when the bytes
/// are not an object with a metadata object (or already carry a resourceVersion): callers then decode.
pub fn with_resource_version(stored: &[u8], rv: i64) -> Option<Vec<u8>> {
    let close = metadata_end(stored)?;
    let rv = rv.to_string();
    let mut out = Vec::with_capacity(stored.len() + rv.len() + 24);
    out.extend_from_slice(&stored[..close]);
    // Empty metadata ends in `{`, anything else in a value.
    if stored[..close]
        .iter()
        .rev()
        .find(|b| !b.is_ascii_whitespace())
        != Some(&b'{')
    {
        out.push(b',');
    }
    out.extend_from_slice(b"\"resourceVersion\":\"");
    out.extend_from_slice(rv.as_bytes());
    out.push(b'"');
    out.extend_from_slice(&stored[close..]);
    Some(out)
}

/// A watch event line (`{"type":…,"object":…}` and a newline) around a stored object.
pub fn event_line(kind: &str, stored: &[u8], rv: i64) -> Option<Vec<u8>> {
    let obj = with_resource_version(stored, rv)?;
    let mut out = Vec::with_capacity(obj.len() + kind.len() + 24);
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\",\"object\":");
    out.extend_from_slice(&obj);
    out.extend_from_slice(b"}\n");
    Some(out)
}

/// The index of the `}` closing the top-level `metadata` object.
fn metadata_end(b: &[u8]) -> Option<usize> {
    let mut i = ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    loop {
        i = ws(b, i);
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let key_end = string_end(b, i)?;
        let key = &b[i + 1..key_end - 1];
        i = ws(b, key_end);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = ws(b, i + 1);
        if key == b"metadata" {
            return object_end_without(b, i, b"resourceVersion");
        }
        i = ws(b, value_end(b, i)?);
        match b.get(i) {
            Some(b',') => i += 1,
            _ => return None,
        }
    }
}

/// The index of the `}` closing the object at `i`, or `None` if it has the key `absent`.
fn object_end_without(b: &[u8], mut i: usize, absent: &[u8]) -> Option<usize> {
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return Some(i);
    }
    loop {
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let key_end = string_end(b, i)?;
        if &b[i + 1..key_end - 1] == absent {
            return None;
        }
        i = ws(b, key_end);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = ws(b, value_end(b, ws(b, i + 1))?);
        match b.get(i) {
            Some(b',') => i = ws(b, i + 1),
            Some(b'}') => return Some(i),
            _ => return None,
        }
    }
}

fn ws(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(|c| c.is_ascii_whitespace()) {
        i += 1;
    }
    i
}

/// One past the closing quote of the string starting at `i`.
fn string_end(b: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    loop {
        match b.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
}

/// One past the end of the value starting at `i`.
fn value_end(b: &[u8], mut i: usize) -> Option<usize> {
    match b.get(i)? {
        b'"' => string_end(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            loop {
                match b.get(i)? {
                    b'"' => {
                        i = string_end(b, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            while b
                .get(i)
                .is_some_and(|c| !matches!(c, b',' | b'}' | b']') && !c.is_ascii_whitespace())
            {
                i += 1;
            }
            Some(i)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn spliced(v: &Value, rv: i64) -> Option<Value> {
        let bytes = serde_json::to_vec(v).unwrap();
        with_resource_version(&bytes, rv).map(|b| serde_json::from_slice(&b).unwrap())
    }

    #[test]
    fn adds_the_resource_version_to_metadata_only() {
        let obj = json!({"apiVersion": "v1", "kind": "Pod", "spec": {"metadata": {"x": "}{\"\\"}, "a": [1, {"b": "]"}]},
            "metadata": {"name": "p", "labels": {"metadata": "{"}}, "status": {"phase": "Running"}});
        let mut want = obj.clone();
        want["metadata"]["resourceVersion"] = json!("42");
        assert_eq!(spliced(&obj, 42), Some(want));
        assert_eq!(
            spliced(&json!({"metadata": {}, "kind": "X"}), 7),
            Some(json!({"metadata": {"resourceVersion": "7"}, "kind": "X"}))
        );
        let pretty = b"{ \"kind\" : \"X\" , \"metadata\" : { \"name\" : \"a\" , \"n\" : 1 } }";
        let v: Value = serde_json::from_slice(&with_resource_version(pretty, 3).unwrap()).unwrap();
        assert_eq!(
            v,
            json!({"kind": "X", "metadata": {"name": "a", "n": 1, "resourceVersion": "3"}})
        );
    }

    #[test]
    fn declines_what_it_cannot_splice() {
        assert_eq!(spliced(&json!({"kind": "X"}), 1), None);
        assert_eq!(spliced(&json!({"metadata": "x"}), 1), None);
        assert_eq!(
            spliced(&json!({"metadata": {"resourceVersion": "3"}}), 1),
            None
        );
        assert_eq!(spliced(&json!([1]), 1), None);
        for bad in [
            &b""[..],
            b"{",
            b"{\"metadata\":{\"a\":",
            b"{\"metadata\"",
            b"{\"a\":\"\\",
        ] {
            assert_eq!(with_resource_version(bad, 1), None);
        }
    }

    #[test]
    fn event_lines_are_watch_events() {
        let line = event_line("ADDED", br#"{"metadata":{"name":"a"}}"#, 5).unwrap();
        assert_eq!(line.last(), Some(&b'\n'));
        let v: Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(
            v,
            json!({"type": "ADDED", "object": {"metadata": {"name": "a", "resourceVersion": "5"}}})
        );
    }
}
