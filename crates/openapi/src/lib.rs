//! The OpenAPI documents the API server publishes: `/openapi/v3` (index), `/openapi/v3/api/v1` and
//! `/openapi/v3/apis/<group>/<version>` (OpenAPI 3.0), and `/openapi/v2` (swagger 2.0).
//!
//! Schemas come from k8s-openapi's `schemars::JsonSchema` impls, never from hand-written copies;
//! this crate only adds what kube-apiserver adds around them: List kinds,
//! `x-kubernetes-group-version-kind`, the REST operations of each served resource (kubectl's
//! `explain` and its server-side field validation check read those), and dialect conversion.
//! Custom resources can be added from a CRD's `openAPIV3Schema`, and patch-strategy metadata can be
//! attached through [`OpenApi::apply_patch_meta`].
//!
//! This crate owns document *content* only. It must not do HTTP (content negotiation, `ETag`,
//! caching headers are the API server's) and must not decide what is served: callers pass the
//! served resources in.

mod builtin;
mod catalog;
mod documents;
mod error;
mod hash;
mod paths;
mod schema;

use serde_json::Value;

pub use builtin::builtin_kinds;
pub use catalog::OpenApi;
pub use documents::{Published, PublishedDocument};
pub use error::Error;
pub use hash::content_hash;

/// One REST resource the server serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServedResource {
    /// API group, `""` for the core group.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    /// Lower-case plural used in URLs, e.g. `services`.
    pub plural: &'static str,
    pub namespaced: bool,
    /// Subresources; only `status` produces paths.
    pub subresources: &'static [&'static str],
    /// Discovery verbs: get, list, watch, create, update, patch, delete, deletecollection.
    pub verbs: &'static [&'static str],
}

/// A kind defined by a CustomResourceDefinition, for [`OpenApi::with_custom`].
#[derive(Clone, Debug, PartialEq)]
pub struct CustomResource {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub namespaced: bool,
    pub subresources: Vec<String>,
    pub verbs: Vec<String>,
    /// The version's `schema.openAPIV3Schema`; `None` publishes an object that keeps unknown
    /// fields.
    pub schema: Option<Value>,
}

/// One patch-strategy annotation for a field of a definition, e.g.
/// `("io.k8s.api.core.v1.ServiceSpec", "ports", "merge", Some("port"))`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PatchMeta<'a> {
    /// Definition name, e.g. `io.k8s.api.core.v1.ServiceSpec`.
    pub definition: &'a str,
    /// JSON field name within that definition.
    pub field: &'a str,
    /// `x-kubernetes-patch-strategy`, e.g. `merge` or `merge,retainKeys`.
    pub strategy: &'a str,
    /// `x-kubernetes-patch-merge-key`, for list fields merged by key.
    pub merge_key: Option<&'a str>,
}

/// `GET /openapi/v3`.
///
/// Builds the whole catalog on every call; a server should build one [`OpenApi`] at start and
/// serve [`OpenApi::publish`]'s output.
pub fn v3_index(resources: &[ServedResource]) -> Value {
    OpenApi::new(resources).v3_index()
}

/// `GET /openapi/v3/api/v1` or `/openapi/v3/apis/<group>/<version>`.
///
/// Builds the whole catalog on every call; a server should build one [`OpenApi`] at start and
/// serve [`OpenApi::publish`]'s output.
pub fn v3_group_version(resources: &[ServedResource], group: &str, version: &str) -> Option<Value> {
    OpenApi::new(resources).v3_group_version(group, version)
}

/// `GET /openapi/v2`.
///
/// Builds the whole catalog on every call; a server should build one [`OpenApi`] at start and
/// serve [`OpenApi::publish`]'s output.
pub fn v2(resources: &[ServedResource]) -> Value {
    OpenApi::new(resources).v2()
}

/// Component-schema name and OpenAPI 3.0 schema of a built-in kind or its List kind, e.g.
/// `("io.k8s.api.core.v1.Service", {...})`. Referenced definitions are not included.
pub fn kind_schema(group: &str, version: &str, kind: &str) -> Option<(String, Value)> {
    let has_type = |k: &str| {
        builtin_kinds()
            .into_iter()
            .find(|(g, v, bk)| *g == group && *v == version && *bk == k)
    };
    let (g, v, base) = has_type(kind).or_else(|| kind.strip_suffix("List").and_then(has_type))?;
    let plural = format!("{}s", base.to_lowercase());
    let api = OpenApi::from_specs([catalog::Spec {
        group: g,
        version: v,
        kind: base,
        plural: &plural,
        namespaced: false,
        subresources: Vec::new(),
        verbs: Vec::new(),
    }]);
    let name = api.definition_for(group, version, kind)?.to_owned();
    let schema = api.schema_v3(&name)?;
    Some((name, schema))
}

#[cfg(test)]
mod tests;
