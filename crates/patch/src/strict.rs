//! The shape check kube-apiserver makes of JSON and merge patch bodies when field validation is
//! Strict or Warn (kubectl sends Strict): before applying, the body is decoded strictly into Go
//! types (`[]jsonPatchOp`, `map[string]interface{}`), and a body of the wrong shape is answered
//! 400 "error decoding patch: ...".

use serde_json::Value;

use crate::error::PatchError;
use crate::PatchType;

/// Checks `body` as upstream's strict pre-decoding does; strategic merge patches are not checked
/// here (their own decoding reports the same shapes). Bodies that are not JSON are left to the
/// patch itself.
pub fn check_strict_decoding(patch_type: PatchType, body: &[u8]) -> Result<(), PatchError> {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Ok(());
    };
    let fail = |detail: String| {
        Err(PatchError::InvalidBody(format!(
            "error decoding patch: json: cannot unmarshal {detail}"
        )))
    };
    match patch_type {
        PatchType::Json => match &value {
            Value::Null => Ok(()),
            Value::Array(ops) => {
                for op in ops {
                    match op {
                        Value::Null => {}
                        Value::Object(fields) => {
                            // Go reports the first field of the wrong type, in document order.
                            for (key, v) in fields {
                                if matches!(key.as_str(), "op" | "path" | "from")
                                    && !matches!(v, Value::String(_) | Value::Null)
                                {
                                    return fail(format!(
                                        "{} into Go struct field jsonPatchOp.{key} of type string",
                                        kind(v)
                                    ));
                                }
                            }
                        }
                        other => {
                            return fail(format!(
                                "{} into Go value of type handlers.jsonPatchOp",
                                kind(other)
                            ))
                        }
                    }
                }
                Ok(())
            }
            other => fail(format!(
                "{} into Go value of type []handlers.jsonPatchOp",
                kind(other)
            )),
        },
        PatchType::Merge => match &value {
            Value::Null | Value::Object(_) => Ok(()),
            other => fail(format!(
                "{} into Go value of type map[string]interface {{}}",
                kind(other)
            )),
        },
        PatchType::StrategicMerge => Ok(()),
    }
}

use crate::rfc6902::json_kind as kind;

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(t: PatchType, body: &str) -> Option<String> {
        check_strict_decoding(t, body.as_bytes())
            .err()
            .map(|e| e.status().message)
    }

    #[test]
    fn shapes_as_upstream_reports_them() {
        assert_eq!(
            msg(PatchType::Json, "\"x\"").as_deref(),
            Some("error decoding patch: json: cannot unmarshal string into Go value of type []handlers.jsonPatchOp")
        );
        assert_eq!(
            msg(PatchType::Json, "{\"a\":1}").as_deref(),
            Some("error decoding patch: json: cannot unmarshal object into Go value of type []handlers.jsonPatchOp")
        );
        assert_eq!(
            msg(PatchType::Json, "[1]").as_deref(),
            Some("error decoding patch: json: cannot unmarshal number into Go value of type handlers.jsonPatchOp")
        );
        assert_eq!(
            msg(PatchType::Json, "[{\"op\":1}]").as_deref(),
            Some("error decoding patch: json: cannot unmarshal number into Go struct field jsonPatchOp.op of type string")
        );
        assert_eq!(
            msg(PatchType::Merge, "[1]").as_deref(),
            Some("error decoding patch: json: cannot unmarshal array into Go value of type map[string]interface {}")
        );
        assert_eq!(msg(PatchType::Merge, "null"), None);
        assert_eq!(
            msg(
                PatchType::Json,
                "[{\"op\":\"add\",\"path\":\"/a\",\"value\":1}]"
            ),
            None
        );
    }
}
