//! Small HTTP helpers: JSON responses and the query parameters of Kubernetes requests.

use axum::body::Body;
use axum::response::Response;
use http::{header, HeaderMap, StatusCode};
use serde_json::Value;

pub fn json_response(code: StatusCode, body: &Value) -> Response {
    bytes_response(code, serde_json::to_vec(body).unwrap_or_default())
}

pub fn bytes_response(code: StatusCode, body: Vec<u8>) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = code;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

/// What the client wants objects rendered as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rendering {
    Object,
    Table,
    PartialMetadata,
}

pub fn rendering(headers: &HeaderMap) -> Rendering {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    // The first acceptable entry wins; we can answer Table and PartialObjectMetadata(List) in JSON.
    for entry in accept.split(',') {
        let e = entry.trim();
        if e.contains("as=Table") && e.starts_with("application/json") {
            return Rendering::Table;
        }
        if e.contains("as=PartialObjectMetadata") && e.starts_with("application/json") {
            return Rendering::PartialMetadata;
        }
        if e.starts_with("application/json")
            || e.starts_with("*/*")
            || e.starts_with("application/*")
        {
            return Rendering::Object;
        }
    }
    Rendering::Object
}

/// Query parameters of list/watch/get/create/update/patch/delete, as kube-apiserver names them.
#[derive(Clone, Debug, Default)]
pub struct Params {
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
    pub watch: bool,
    pub allow_watch_bookmarks: bool,
    pub send_initial_events: Option<bool>,
    pub timeout_seconds: Option<u64>,
    pub dry_run: bool,
    pub field_validation: Option<String>,
    pub propagation_policy: Option<String>,
    pub grace_period_seconds: Option<i64>,
    pub include_object: Option<String>,
    pub field_manager: Option<String>,
    pub force: bool,
}

fn truthy(v: &str) -> bool {
    matches!(v, "true" | "1" | "True" | "TRUE")
}

impl Params {
    pub fn parse(query: Option<&str>) -> Result<Self, String> {
        let mut p = Params::default();
        for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            let v = v.into_owned();
            match k.as_ref() {
                "labelSelector" => p.label_selector = Some(v),
                "fieldSelector" => p.field_selector = Some(v),
                "resourceVersion" => p.resource_version = Some(v),
                "resourceVersionMatch" => p.resource_version_match = Some(v),
                "limit" => {
                    let n: i64 = v.parse().map_err(|_| format!("invalid limit {v:?}"))?;
                    p.limit = (n > 0).then_some(n as usize);
                }
                "continue" => p.continue_token = Some(v).filter(|s| !s.is_empty()),
                "watch" => p.watch = truthy(&v),
                "allowWatchBookmarks" => p.allow_watch_bookmarks = truthy(&v),
                "sendInitialEvents" => p.send_initial_events = Some(truthy(&v)),
                "timeoutSeconds" => {
                    p.timeout_seconds = Some(
                        v.parse()
                            .map_err(|_| format!("invalid timeoutSeconds {v:?}"))?,
                    )
                }
                "dryRun" => {
                    if v != "All" {
                        return Err(format!(
                            "Invalid dryRun value: {v:?}: supported values: \"All\""
                        ));
                    }
                    p.dry_run = true
                }
                "fieldValidation" => p.field_validation = Some(v),
                "propagationPolicy" => p.propagation_policy = Some(v),
                "gracePeriodSeconds" => {
                    p.grace_period_seconds = Some(
                        v.parse()
                            .map_err(|_| format!("invalid gracePeriodSeconds {v:?}"))?,
                    )
                }
                "includeObject" => p.include_object = Some(v),
                "fieldManager" => p.field_manager = Some(v),
                "force" => p.force = truthy(&v),
                _ => {}
            }
        }
        Ok(p)
    }

    /// Server-side field validation: Strict rejects, Warn (the default) warns, Ignore does nothing.
    pub fn strict_fields(&self) -> bool {
        self.field_validation.as_deref() == Some("Strict")
    }

    pub fn warn_fields(&self) -> bool {
        matches!(
            self.field_validation.as_deref(),
            None | Some("") | Some("Warn")
        )
    }
}
