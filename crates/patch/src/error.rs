//! Patch failures, and the HTTP status kube-apiserver answers for each.
//!
//! The `Display` text of every variant is the detailed error upstream produces (useful in logs and
//! in tests); [`PatchError::status`] gives what kube-apiserver actually puts on the wire, which for
//! some failures is a generic sentence that hides the detail.

use thiserror::Error;

/// Upstream's `mergepatch` sentinel messages that kube-apiserver turns into 400 Bad Request.
pub const ERR_BAD_JSON_DOC: &str = "invalid JSON document";
pub const ERR_BAD_PRIMITIVE_LIST: &str = "invalid patch format of primitive list";
pub const ERR_BAD_RETAIN_KEYS: &str = "invalid patch format of retainKeys";
pub const ERR_BAD_SET_ELEMENT_ORDER: &str = "invalid patch format of setElementOrder list";

/// Upper bound kube-apiserver puts on the number of operations in one JSON patch.
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10000;

/// Why a patch could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PatchError {
    /// The request body is not a document of the patch type (not JSON, wrong JSON type).
    #[error("{0}")]
    InvalidBody(String),
    /// A strategic-merge directive is malformed (`$retainKeys`, `$setElementOrder/...`,
    /// `$deleteFromPrimitiveList/...`); the text is upstream's exact sentinel.
    #[error("{0}")]
    BadDirective(&'static str),
    /// A strategic merge met a list whose items are lists.
    #[error("lists of lists are not supported")]
    ListOfLists,
    /// Any other strategic-merge failure (missing merge key, unknown `$patch` value, order
    /// mismatch, element types differ, ...). Upstream returns these as plain errors, which the
    /// API server reports as a 500 carrying the text.
    #[error("{0}")]
    Strategic(String),
    /// A JSON patch operation could not be applied (failed `test`, missing path, unknown op).
    #[error("{0}")]
    JsonPatch(String),
    /// A JSON patch has more operations than kube-apiserver accepts.
    #[error("The allowed maximum operations in a JSON patch is {max}, got {got}")]
    TooManyOperations { max: usize, got: usize },
    /// A JSON merge patch body that is not a mergeable document (`null`, a scalar, bad JSON).
    #[error("{0}")]
    MergePatch(String),
    /// The patch produced something that is not a JSON object, so it cannot be an API object.
    #[error("{0}")]
    NotAnObject(String),
}

/// The `Status` kube-apiserver would answer for a [`PatchError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorStatus {
    /// HTTP status code (`Status.code`).
    pub code: u16,
    /// `Status.reason` (empty for errors upstream does not classify).
    pub reason: &'static str,
    /// `Status.message`.
    pub message: String,
}

/// The text upstream's generic 422 response carries instead of the underlying error.
const GENERIC_UNPROCESSABLE: &str =
    "the server rejected our request due to an error in our request";

impl PatchError {
    pub(crate) fn strategic(message: impl Into<String>) -> Self {
        PatchError::Strategic(message.into())
    }

    /// The status kube-apiserver sends for this error, message included.
    pub fn status(&self) -> ErrorStatus {
        let (code, reason, message) = match self {
            PatchError::InvalidBody(m) => (400, "BadRequest", m.clone()),
            PatchError::BadDirective(m) => (400, "BadRequest", (*m).to_string()),
            // Upstream builds these with NewGenericServerResponse(422, ...), whose message is a
            // fixed sentence: kubectl shows "The request is invalid: the server rejected ...".
            PatchError::ListOfLists | PatchError::JsonPatch(_) => {
                (422, "Invalid", GENERIC_UNPROCESSABLE.to_string())
            }
            PatchError::TooManyOperations { .. } => (
                413,
                "RequestEntityTooLarge",
                format!("Request entity too large: {self}"),
            ),
            // Errors that are not API statuses become 500 with an empty reason upstream.
            // Upstream turns json-patch's ErrBadJSONPatch sentinel into a 400.
            PatchError::MergePatch(m) if m == "Invalid JSON Patch" => {
                (400, "BadRequest", m.clone())
            }
            PatchError::Strategic(m) | PatchError::MergePatch(m) => (500, "", m.clone()),
            PatchError::NotAnObject(m) => (422, "Invalid", m.clone()),
        };
        ErrorStatus {
            code,
            reason,
            message,
        }
    }
}
