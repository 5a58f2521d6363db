//! Errors from adding kinds to the catalog.

/// Why a custom kind could not be added.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The group/version/kind is already described (built-in or added before).
    #[error("kind {kind} in {group_version} is already described")]
    DuplicateKind { group_version: String, kind: String },
    /// The plural is already used by another kind of the same group/version.
    #[error("resource {plural} in {group_version} is already described")]
    DuplicatePlural {
        group_version: String,
        plural: String,
    },
    /// The supplied schema is not a JSON object.
    #[error("schema for {kind} must be a JSON object")]
    SchemaNotObject { kind: String },
    /// A required name is empty.
    #[error("custom resource {field} must not be empty")]
    Empty { field: &'static str },
}
