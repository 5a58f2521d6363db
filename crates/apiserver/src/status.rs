//! Errors as the `Status` objects kube-apiserver answers with: same codes, reasons and message texts.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::{json, Value};

use crate::resources::Resource;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub body: Value,
}

pub type ApiResult<T> = Result<T, ApiError>;

fn status(code: u16, reason: &str, message: String, details: Option<Value>) -> ApiError {
    let mut body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    });
    if let Some(d) = details {
        body["details"] = d;
    }
    ApiError { code, body }
}

fn details(res: &Resource, name: &str) -> Value {
    let mut d = json!({"name": name});
    if !res.group.is_empty() {
        d["group"] = json!(res.group);
    }
    d["kind"] = json!(res.plural);
    d
}

impl ApiError {
    pub fn from_parts(code: u16, reason: &str, message: String) -> Self {
        status(code, reason, message, None)
    }

    pub fn not_found(res: &Resource, name: &str) -> Self {
        status(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", res.group_resource()),
            Some(details(res, name)),
        )
    }

    pub fn namespace_not_found(ns: &str) -> Self {
        Self::not_found(&crate::resources::NAMESPACES, ns)
    }

    pub fn already_exists(res: &Resource, name: &str) -> Self {
        status(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", res.group_resource()),
            Some(details(res, name)),
        )
    }

    pub fn conflict(res: &Resource, name: &str) -> Self {
        status(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                res.group_resource()
            ),
            Some(details(res, name)),
        )
    }

    pub fn conflict_msg(res: &Resource, name: &str, msg: &str) -> Self {
        status(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": {msg}",
                res.group_resource()
            ),
            Some(details(res, name)),
        )
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        status(400, "BadRequest", message.into(), None)
    }

    pub fn forbidden(res: &Resource, name: &str, msg: &str) -> Self {
        let what = if name.is_empty() {
            res.group_resource()
        } else {
            format!("{} \"{name}\"", res.group_resource())
        };
        status(
            403,
            "Forbidden",
            format!("{what} is forbidden: {msg}"),
            Some(details(res, name)),
        )
    }

    pub fn method_not_supported(res: &Resource, verb: &str) -> Self {
        status(
            405,
            "MethodNotAllowed",
            format!(
                "{verb} is not supported on resources of kind \"{}\"",
                res.group_resource()
            ),
            Some(json!({"kind": res.plural})),
        )
    }

    pub fn unsupported_media_type(ct: &str) -> Self {
        status(
            415,
            "UnsupportedMediaType",
            format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got {ct})"),
            None,
        )
    }

    pub fn unauthorized() -> Self {
        status(401, "Unauthorized", "Unauthorized".into(), None)
    }

    pub fn path_not_found() -> Self {
        status(
            404,
            "NotFound",
            "the server could not find the requested resource".into(),
            Some(json!({})),
        )
    }

    pub fn gone(message: impl Into<String>) -> Self {
        status(410, "Expired", message.into(), None)
    }

    pub fn internal(message: impl std::fmt::Display) -> Self {
        status(
            500,
            "InternalError",
            format!("Internal error occurred: {message}"),
            Some(json!({"causes": [{"message": message.to_string()}]})),
        )
    }

    /// A 422 whose body the `api` crate built (field causes and upstream message text).
    pub fn invalid(body: Value) -> Self {
        ApiError { code: 422, body }
    }

    pub fn invalid_fields(res: &Resource, name: &str, errors: &[api::field::FieldError]) -> Self {
        Self::invalid(api::field::invalid_status(
            res.group, res.kind, name, errors,
        ))
    }
}

impl From<store::StoreError> for ApiError {
    fn from(e: store::StoreError) -> Self {
        match e {
            store::StoreError::Compacted {
                requested,
                compacted,
            } => Self::gone(format!(
                "too old resource version: {requested} ({compacted})"
            )),
            other => Self::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        crate::http_util::json_response(code, &self.body)
    }
}
