//! Field-level validation errors and the 422 `Status` built from them.
//!
//! Clients (kubectl, client-go, tests written against kube-apiserver) compare
//! the rendered text, so the rendering follows apimachinery's
//! `field.Error.ErrorBody()` and `apierrors.NewInvalid()` to the character.

use serde_json::{json, Map, Value};
use std::collections::HashSet;
use std::fmt;

/// Why a field is invalid; one-to-one with metav1.CauseType.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorType {
    NotFound,
    Required,
    Duplicate,
    Invalid,
    NotSupported,
    Forbidden,
    TooLong,
    TooMany,
    Internal,
    TypeInvalid,
}

impl ErrorType {
    /// The metav1.CauseType string put in `details.causes[].reason`.
    pub fn reason(self) -> &'static str {
        match self {
            ErrorType::NotFound => "FieldValueNotFound",
            ErrorType::Required => "FieldValueRequired",
            ErrorType::Duplicate => "FieldValueDuplicate",
            ErrorType::Invalid => "FieldValueInvalid",
            ErrorType::NotSupported => "FieldValueNotSupported",
            ErrorType::Forbidden => "FieldValueForbidden",
            ErrorType::TooLong => "FieldValueTooLong",
            ErrorType::TooMany => "FieldValueTooMany",
            ErrorType::Internal => "InternalError",
            ErrorType::TypeInvalid => "FieldValueTypeInvalid",
        }
    }

    /// The human label that starts every message ("Invalid value", ...).
    pub fn label(self) -> &'static str {
        match self {
            ErrorType::NotFound => "Not found",
            ErrorType::Required => "Required value",
            ErrorType::Duplicate => "Duplicate value",
            ErrorType::Invalid => "Invalid value",
            ErrorType::NotSupported => "Unsupported value",
            ErrorType::Forbidden => "Forbidden",
            ErrorType::TooLong => "Too long",
            ErrorType::TooMany => "Too many",
            ErrorType::Internal => "Internal error",
            ErrorType::TypeInvalid => "Invalid value",
        }
    }
}

/// One validation failure of one field.
///
/// `bad_value` is `None` when upstream omits the value from the message;
/// `Some(Value::Null)` renders as `null` (a nil pointer upstream).
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub error_type: ErrorType,
    pub field: String,
    pub bad_value: Option<Value>,
    pub detail: String,
}

impl FieldError {
    fn new(
        error_type: ErrorType,
        field: impl Into<String>,
        bad_value: Option<Value>,
        detail: impl Into<String>,
    ) -> Self {
        FieldError {
            error_type,
            field: field.into(),
            bad_value,
            detail: detail.into(),
        }
    }

    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Required, field, None, detail)
    }

    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Forbidden, field, None, detail)
    }

    pub fn invalid(
        field: impl Into<String>,
        value: impl Into<Value>,
        detail: impl Into<String>,
    ) -> Self {
        Self::new(ErrorType::Invalid, field, Some(value.into()), detail)
    }

    pub fn duplicate(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Self::new(ErrorType::Duplicate, field, Some(value.into()), "")
    }

    pub fn not_found(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Self::new(ErrorType::NotFound, field, Some(value.into()), "")
    }

    /// `supported` is listed in the order given (upstream sorts its sets first).
    pub fn not_supported(
        field: impl Into<String>,
        value: impl Into<Value>,
        supported: &[&str],
    ) -> Self {
        let detail = if supported.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = supported.iter().map(|s| go_quote(s)).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        Self::new(ErrorType::NotSupported, field, Some(value.into()), detail)
    }

    /// One `Invalid` error per message of a format check, as upstream's `for _, msg := range …` loops.
    pub fn invalid_all(field: &str, value: &str, msgs: Vec<String>) -> Vec<FieldError> {
        msgs.into_iter()
            .map(|m| FieldError::invalid(field, value, m))
            .collect()
    }

    /// A port protocol: required, and one of SCTP, TCP, UDP.
    pub fn check_protocol(field: String, protocol: Option<&str>) -> Option<FieldError> {
        const PROTOCOLS: [&str; 3] = ["SCTP", "TCP", "UDP"];
        match protocol {
            None | Some("") => Some(FieldError::required(field, "")),
            Some(p) if !PROTOCOLS.contains(&p) => {
                Some(FieldError::not_supported(field, p, &PROTOCOLS))
            }
            Some(_) => None,
        }
    }

    /// Upstream's `field.TooMany`: "Too many: 1001: must have at most 1000 items".
    pub fn too_many(field: impl Into<String>, actual: usize, max: usize) -> Self {
        let s = if max == 1 { "" } else { "s" };
        Self::new(
            ErrorType::TooMany,
            field,
            Some(Value::from(actual)),
            format!("must have at most {max} item{s}"),
        )
    }

    pub fn too_long(field: impl Into<String>, max_bytes: usize) -> Self {
        Self::new(
            ErrorType::TooLong,
            field,
            None,
            format!("must have at most {max_bytes} bytes"),
        )
    }

    pub fn internal(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Internal, field, None, detail)
    }

    /// `error_type.reason()`, the metav1.CauseType.
    pub fn reason(&self) -> &'static str {
        self.error_type.reason()
    }

    /// The message without the field path, as upstream's `ErrorBody()`.
    pub fn message(&self) -> String {
        let mut s = match self.error_type {
            ErrorType::Required
            | ErrorType::Forbidden
            | ErrorType::TooLong
            | ErrorType::Internal => self.error_type.label().to_string(),
            _ => match &self.bad_value {
                None => self.error_type.label().to_string(),
                Some(v) => format!("{}: {}", self.error_type.label(), render_value(v)),
            },
        };
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message())
    }
}

impl std::error::Error for FieldError {}

/// Upstream prints scalars with `%v`/`%q` and everything else as JSON.
fn render_value(v: &Value) -> String {
    match v {
        Value::String(s) => go_quote(s),
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(_) | Value::Object(_) => go_json(v),
    }
}

/// JSON as Go's encoding/json writes it: HTML-sensitive characters escaped.
fn go_json(v: &Value) -> String {
    // These characters can only occur inside JSON strings, so a textual
    // replacement cannot touch the structure.
    v.to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// Go's `strconv.Quote` (what `%q` prints).
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if c == ' ' || !(c.is_control() || c.is_whitespace()) => out.push(c),
            c if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if (c as u32) <= 0xffff => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// The text of upstream's `utilerrors.Aggregate` of field errors: duplicate
/// lines are dropped, one line stands alone, several are bracketed.
pub fn aggregate_message(errors: &[FieldError]) -> String {
    let mut seen = HashSet::new();
    let mut lines = Vec::new();
    for e in errors {
        let line = e.to_string();
        if seen.insert(line.clone()) {
            lines.push(line);
        }
    }
    match lines.len() {
        0 => String::new(),
        1 => lines.remove(0),
        _ => format!("[{}]", lines.join(", ")),
    }
}

/// The full 422 `Status` kube-apiserver returns for invalid objects.
pub fn invalid_status(group: &str, kind: &str, name: &str, errors: &[FieldError]) -> Value {
    let qualified = if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    };
    let message = if errors.is_empty() {
        format!("{qualified} {} is invalid", go_quote(name))
    } else {
        format!(
            "{qualified} {} is invalid: {}",
            go_quote(name),
            aggregate_message(errors)
        )
    };

    let mut details = Map::new();
    if !name.is_empty() {
        details.insert("name".into(), json!(name));
    }
    if !group.is_empty() {
        details.insert("group".into(), json!(group));
    }
    if !kind.is_empty() {
        details.insert("kind".into(), json!(kind));
    }
    if !errors.is_empty() {
        let causes: Vec<Value> = errors
            .iter()
            .map(|e| {
                let mut c = Map::new();
                c.insert("reason".into(), json!(e.reason()));
                c.insert("message".into(), json!(e.message()));
                if !e.field.is_empty() {
                    c.insert("field".into(), json!(e.field));
                }
                Value::Object(c)
            })
            .collect();
        details.insert("causes".into(), Value::Array(causes));
    }

    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "Invalid",
        "details": Value::Object(details),
        "code": 422
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_error_body() {
        assert_eq!(
            FieldError::invalid(
                "spec.ports[0].port",
                0,
                "must be between 1 and 65535, inclusive"
            )
            .message(),
            "Invalid value: 0: must be between 1 and 65535, inclusive"
        );
        assert_eq!(
            FieldError::not_supported(
                "spec.type",
                "Foo",
                &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]
            )
            .message(),
            r#"Unsupported value: "Foo": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort""#
        );
        assert_eq!(
            FieldError::required("spec.ports", "").message(),
            "Required value"
        );
        assert_eq!(
            FieldError::duplicate("spec.ports[1].name", "http").message(),
            r#"Duplicate value: "http""#
        );
        assert_eq!(
            FieldError::invalid("spec.clusterIPs", json!(["1.2.3.4", "5.6.7.8"]), "x").message(),
            r#"Invalid value: ["1.2.3.4","5.6.7.8"]: x"#
        );
        assert_eq!(
            FieldError::invalid("a", Value::Null, "x").message(),
            "Invalid value: null: x"
        );
        assert_eq!(
            FieldError::too_long("metadata.annotations", 262144).message(),
            "Too long: must have at most 262144 bytes"
        );
    }

    #[test]
    fn quotes_like_go() {
        assert_eq!(go_quote("a\"b\\c\n\u{1}é"), "\"a\\\"b\\\\c\\n\\x01é\"");
    }

    #[test]
    fn aggregates_dedupe() {
        let e = FieldError::required("spec.ports", "");
        assert_eq!(
            aggregate_message(&[e.clone(), e.clone()]),
            "spec.ports: Required value"
        );
        let f = FieldError::required("spec.type", "");
        assert_eq!(
            aggregate_message(&[e, f]),
            "[spec.ports: Required value, spec.type: Required value]"
        );
    }
}
