//! Which state a list reads, from its `resourceVersion`, `resourceVersionMatch` and `continue`, with
//! kube-apiserver's validation of those options and its continue tokens.
//!
//! A paged list is a snapshot: every page after the first reads the store at the first page's revision
//! (its continue token carries it), so objects written between pages neither appear nor vanish. Once that
//! revision is compacted the next page is refused with 410 and a token that resumes at the latest state, as
//! upstream's "inconsistent continue" does.

use serde_json::{json, Value};
use store::Revision;

use crate::http_util::Params;
use crate::status::{ApiError, ApiResult};

/// Where a list reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReadPoint {
    /// The revision to read at; `None` is the latest.
    pub at: Option<Revision>,
    /// The revision the latest state must have reached first (`resourceVersion` without `Exact`).
    pub not_older_than: Option<Revision>,
    /// Resume after this key (relative to the listed prefix), from a continue token.
    pub start_after: Option<String>,
    /// Whether the read comes from a continue token (a compacted revision then gets the continue answer).
    pub continuing: bool,
}

/// Upstream's token (`meta.k8s.io/v1`): the revision of the list's first page and the key to resume after.
/// `rv` -1 resumes at the latest revision (the token of a 410 answer).
pub(crate) fn continue_token(rv: Revision, start: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE
        .encode(json!({"v": "meta.k8s.io/v1", "rv": rv, "start": start}).to_string())
}

fn parse_continue(token: &str) -> ApiResult<(Revision, String)> {
    use base64::Engine;
    let bad = |what: &str| ApiError::bad_request(format!("continue key is not valid: {what}"));
    let raw = base64::engine::general_purpose::URL_SAFE
        .decode(token)
        .map_err(|_| bad("illegal base64 data"))?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad("invalid JSON"))?;
    if v.get("v").and_then(Value::as_str) != Some("meta.k8s.io/v1") {
        return Err(bad("server does not recognize this encoded version"));
    }
    let rv = v
        .get("rv")
        .and_then(Value::as_i64)
        .filter(|rv| *rv == -1 || *rv > 0)
        .ok_or_else(|| bad("incorrect encoded start resourceVersion (version meta.k8s.io/v1)"))?;
    let start = v
        .get("start")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("incorrect encoded start resourceVersion (version meta.k8s.io/v1)"))?;
    Ok((rv, start.to_string()))
}

/// `ListOptions` as kube-apiserver validates them for a list (not a watch): 422 on `ListOptions.meta.k8s.io`.
fn validate_list_options(p: &Params) -> ApiResult<()> {
    use api::field::FieldError;
    let mut errs = Vec::new();
    if let Some(m) = p
        .resource_version_match
        .as_deref()
        .filter(|m| !m.is_empty())
    {
        let rv = p.resource_version.as_deref().unwrap_or("");
        if rv.is_empty() {
            errs.push(FieldError::forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden unless resourceVersion is provided",
            ));
        }
        if p.continue_token.is_some() {
            errs.push(FieldError::forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden when continue is provided",
            ));
        }
        if m != "Exact" && m != "NotOlderThan" {
            errs.push(FieldError::not_supported(
                "resourceVersionMatch",
                m,
                &["Exact", "NotOlderThan", ""],
            ));
        }
        if m == "Exact" && rv == "0" {
            errs.push(FieldError::forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
            ));
        }
    }
    if p.send_initial_events.is_some() {
        errs.push(FieldError::forbidden(
            "sendInitialEvents",
            "sendInitialEvents is forbidden for list",
        ));
    }
    list_options_invalid(errs)
}

/// `ListOptions` as kube-apiserver validates them for a watch (the WatchList feature is on, as in v1.34+).
pub(crate) fn validate_watch_options(p: &Params) -> ApiResult<()> {
    use api::field::FieldError;
    let mut errs = Vec::new();
    let m = p.resource_version_match.as_deref().unwrap_or("");
    if p.send_initial_events.is_some() && m != "NotOlderThan" {
        errs.push(FieldError::forbidden(
            "resourceVersionMatch",
            "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
        ));
    }
    if !m.is_empty() {
        if p.send_initial_events.is_none() {
            errs.push(FieldError::forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
            ));
        }
        if m != "NotOlderThan" {
            errs.push(FieldError::not_supported(
                "resourceVersionMatch",
                m,
                &["NotOlderThan"],
            ));
        }
        if p.continue_token.is_some() {
            errs.push(FieldError::forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden when continue is provided",
            ));
        }
    }
    list_options_invalid(errs)
}

fn list_options_invalid(errs: Vec<api::field::FieldError>) -> ApiResult<()> {
    if errs.is_empty() {
        return Ok(());
    }
    Err(ApiError::invalid(api::field::invalid_status(
        "meta.k8s.io",
        "ListOptions",
        "",
        &errs,
    )))
}

/// The read point of a list request, after validating its options.
pub(crate) fn read_point(p: &Params) -> ApiResult<ReadPoint> {
    validate_list_options(p)?;
    let rv = p.resource_version.as_deref().filter(|v| !v.is_empty());
    if let Some(token) = &p.continue_token {
        if rv.is_some_and(|v| v != "0") {
            return Err(ApiError::bad_request(
                "specifying resource version is not allowed when using continue",
            ));
        }
        let (rv, start) = parse_continue(token)?;
        return Ok(ReadPoint {
            at: (rv > 0).then_some(rv),
            not_older_than: None,
            start_after: Some(start),
            continuing: true,
        });
    }
    let parsed = match rv {
        None | Some("0") => None,
        Some(v) => Some(
            v.parse::<u64>()
                .ok()
                .and_then(|n| Revision::try_from(n).ok())
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "invalid resource version: resourceVersion: Invalid value: \"{v}\": must be a non-negative integer"
                    ))
                })?,
        ),
    };
    let exact = p.resource_version_match.as_deref() == Some("Exact");
    Ok(ReadPoint {
        at: parsed.filter(|_| exact),
        not_older_than: parsed.filter(|_| !exact),
        start_after: None,
        continuing: false,
    })
}

/// The answer to a read at a compacted revision: for a continue token, upstream's 410 with a token that
/// resumes after the same key at the latest state; for `resourceVersionMatch=Exact`, its plain 410.
pub(crate) fn expired(point: &ReadPoint) -> ApiError {
    if !point.continuing {
        return ApiError::gone("The resourceVersion for the provided list is too old.");
    }
    let mut e = ApiError::gone(
        "The provided continue parameter is too old to display a consistent list result. You can start a \
         new list without the continue parameter, or use the continue token in this response to retrieve the \
         remainder of the results. Continuing with the provided token results in an inconsistent list - \
         objects that were created, modified, or deleted between the time the first chunk was returned and \
         now may show up in the list.",
    );
    e.body["metadata"] = json!({
        "continue": continue_token(-1, point.start_after.as_deref().unwrap_or_default())
    });
    e
}

/// 504 for a `resourceVersion` the store has not reached in time, as upstream's watch cache answers it.
pub(crate) fn too_large(requested: Revision, current: Revision) -> ApiError {
    let mut e = ApiError::from_parts(
        504,
        "Timeout",
        format!("Too large resource version: {requested}, current: {current}"),
    );
    e.body["details"] = json!({
        "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
        "retryAfterSeconds": 1
    });
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(q: &str) -> Params {
        Params::parse(Some(q)).unwrap()
    }

    #[test]
    fn continue_tokens_round_trip_and_reject_garbage() {
        let t = continue_token(42, "default/web");
        let p = read_point(&params(&format!("limit=1&continue={t}"))).unwrap();
        assert_eq!(p.at, Some(42));
        assert_eq!(p.start_after.as_deref(), Some("default/web"));
        assert!(p.continuing);
        let latest = read_point(&params(&format!("continue={}", continue_token(-1, "x")))).unwrap();
        assert_eq!(latest.at, None);
        for bad in ["%%%", "e30=", &continue_token(0, "x")] {
            let e = read_point(&params(&format!("continue={bad}"))).unwrap_err();
            assert_eq!(e.code, 400, "{bad}: {:?}", e.body);
            assert!(e.body["message"]
                .as_str()
                .unwrap()
                .starts_with("continue key is not valid"));
        }
        let e = read_point(&params(&format!("continue={t}&resourceVersion=5"))).unwrap_err();
        assert_eq!(
            e.body["message"],
            "specifying resource version is not allowed when using continue"
        );
    }

    #[test]
    fn list_options_are_validated_as_upstream() {
        let e = read_point(&params("resourceVersionMatch=Exact")).unwrap_err();
        assert_eq!(e.code, 422);
        assert_eq!(
            e.body["message"],
            "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided"
        );
        let e = read_point(&params("resourceVersion=0&resourceVersionMatch=Exact")).unwrap_err();
        assert!(e.body["message"]
            .as_str()
            .unwrap()
            .ends_with("resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\""));
        let e = read_point(&params("resourceVersion=3&resourceVersionMatch=Newest")).unwrap_err();
        assert!(e.body["message"].as_str().unwrap().ends_with(
            "Unsupported value: \"Newest\": supported values: \"Exact\", \"NotOlderThan\", \"\""
        ));
        let e = read_point(&params("sendInitialEvents=true")).unwrap_err();
        assert_eq!(e.body["details"]["causes"][0]["field"], "sendInitialEvents");
        assert_eq!(
            read_point(&params("resourceVersion=7&resourceVersionMatch=Exact")).unwrap(),
            ReadPoint {
                at: Some(7),
                not_older_than: None,
                start_after: None,
                continuing: false
            }
        );
        let p = read_point(&params("resourceVersion=7")).unwrap();
        assert_eq!((p.at, p.not_older_than), (None, Some(7)));
        let p = read_point(&params("resourceVersion=0")).unwrap();
        assert_eq!((p.at, p.not_older_than), (None, None));
        assert_eq!(
            read_point(&params("resourceVersion=abc")).unwrap_err().code,
            400
        );
    }

    #[test]
    fn a_compacted_continue_gets_a_token_that_resumes_at_the_latest_state() {
        let p = read_point(&params(&format!("continue={}", continue_token(9, "ns/b")))).unwrap();
        let e = expired(&p);
        assert_eq!((e.code, e.body["reason"].as_str()), (410, Some("Expired")));
        let token = e.body["metadata"]["continue"].as_str().unwrap();
        let resumed = read_point(&params(&format!("continue={token}"))).unwrap();
        assert_eq!(resumed.at, None);
        assert_eq!(resumed.start_after.as_deref(), Some("ns/b"));
    }
}
