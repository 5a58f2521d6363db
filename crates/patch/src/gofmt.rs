//! Go's view of decoded JSON: the dynamic type of a value and its `%v`/`%s` rendering.
//!
//! Strategic merge decisions depend on Go types (an integer literal decodes to `int64`, a
//! fractional one to `float64`, and the two never compare equal), and upstream error texts embed
//! values printed with `fmt`. Both are reproduced here so results and messages match.

use serde_json::{Map, Number, Value};

/// The Go type a JSON value has after kube-apiserver decodes it into `interface{}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GoType {
    Nil,
    Bool,
    Int,
    Float,
    String,
    Map,
    Slice,
}

pub(crate) fn go_type(v: &Value) -> GoType {
    match v {
        Value::Null => GoType::Nil,
        Value::Bool(_) => GoType::Bool,
        Value::Number(n) if n.is_i64() => GoType::Int,
        Value::Number(_) => GoType::Float,
        Value::String(_) => GoType::String,
        Value::Object(_) => GoType::Map,
        Value::Array(_) => GoType::Slice,
    }
}

/// `reflect.TypeOf(v).String()`, or what `%s` prints for a nil type.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match go_type(v) {
        GoType::Nil => "%!s(<nil>)",
        GoType::Bool => "bool",
        GoType::Int => "int64",
        GoType::Float => "float64",
        GoType::String => "string",
        GoType::Map => "map[string]interface {}",
        GoType::Slice => "[]interface {}",
    }
}

pub(crate) const MAP_TYPE: &str = "map[string]interface {}";
pub(crate) const SLICE_TYPE: &str = "[]interface {}";

/// `fmt.Sprintf("%v", v)`.
pub(crate) fn fmt_v(v: &Value) -> String {
    let mut out = String::new();
    write_v(&mut out, v);
    out
}

pub(crate) fn fmt_map(m: &Map<String, Value>) -> String {
    let mut out = String::new();
    write_map(&mut out, m);
    out
}

pub(crate) fn fmt_list(items: &[Value]) -> String {
    let mut out = String::new();
    write_list(&mut out, items);
    out
}

/// `fmt.Sprintf("%s", v)`: strings print bare, anything else as a `%!s(type=value)` complaint.
pub(crate) fn fmt_s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "%!s(<nil>)".to_string(),
        other => format!("%!s({}={})", type_name(other), fmt_v(other)),
    }
}

fn write_v(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&fmt_number(n)),
        Value::String(s) => out.push_str(s),
        Value::Object(m) => write_map(out, m),
        Value::Array(items) => write_list(out, items),
    }
}

fn write_map(out: &mut String, m: &Map<String, Value>) {
    // fmt prints map keys in sorted order.
    let mut keys: Vec<&String> = m.keys().collect();
    keys.sort();
    out.push_str("map[");
    for (i, k) in keys.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(k);
        out.push(':');
        if let Some(v) = m.get(k.as_str()) {
            write_v(out, v);
        }
    }
    out.push(']');
}

fn write_list(out: &mut String, items: &[Value]) {
    out.push('[');
    for (i, v) in items.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        write_v(out, v);
    }
    out.push(']');
}

fn fmt_number(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    let Some(f) = n.as_f64() else {
        return n.to_string();
    };
    fmt_float(f)
}

/// Go's `%v` for float64 (`strconv` 'g' with shortest digits): exponent form when the decimal
/// exponent is < -4 or >= 6, so 1e6 prints as `1e+06`.
fn fmt_float(f: f64) -> String {
    if f == 0.0 || !f.is_finite() {
        return if f == 0.0 {
            "0".to_string()
        } else {
            f.to_string()
        };
    }
    let sci = format!("{f:e}");
    let Some((mantissa, exp)) = sci.split_once('e') else {
        return sci;
    };
    let Ok(exp) = exp.parse::<i32>() else {
        return sci;
    };
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        f.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prints_like_go() {
        assert_eq!(
            fmt_v(&json!({"b": 1, "a": "x", "c": [true, null]})),
            "map[a:x b:1 c:[true <nil>]]"
        );
        assert_eq!(fmt_v(&json!(1.5)), "1.5");
        assert_eq!(fmt_v(&json!(1e6)), "1e+06");
        assert_eq!(fmt_v(&json!(123456.0)), "123456");
        assert_eq!(fmt_s(&json!(5)), "%!s(int64=5)");
        assert_eq!(type_name(&json!(2.0)), "float64");
    }
}
