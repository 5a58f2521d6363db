//! ObjectMeta validation shared by every kind: name/generateName, namespace,
//! labels, annotations, owner references, finalizers, and the update rules
//! (immutable identity fields, resourceVersion required).

use crate::field::FieldError;
use crate::format;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Total bytes of annotation keys and values an object may carry.
pub const TOTAL_ANNOTATION_SIZE_LIMIT_BYTES: usize = 256 * 1024;

const FIELD_IMMUTABLE: &str = "field is immutable";
const STANDARD_FINALIZERS: [&str; 3] = ["kubernetes", "orphan", "foregroundDeletion"];

/// Which name format a kind requires (upstream's ValidateNameFunc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// Services before v1.36 (`RelaxedServiceNameValidation` off).
    Dns1035Label,
    /// Namespaces, and Services since v1.36.
    Dns1123Label,
    /// Most other kinds.
    Dns1123Subdomain,
}

impl NameRule {
    /// Messages for an invalid name; `prefix` is true for generateName, which
    /// may end in '-' because random characters are appended.
    pub fn check(self, name: &str, prefix: bool) -> Vec<String> {
        let masked;
        let name = if prefix && name.ends_with('-') {
            // Upstream replaces the last *two* bytes with "a"; mirror it so the
            // reported length errors agree.
            let keep = name.len().saturating_sub(2);
            masked = format!("{}a", name.get(..keep).unwrap_or(""));
            masked.as_str()
        } else {
            name
        };
        match self {
            NameRule::Dns1035Label => format::is_dns1035_label(name),
            NameRule::Dns1123Label => format::is_dns1123_label(name),
            NameRule::Dns1123Subdomain => format::is_dns1123_subdomain(name),
        }
    }
}

fn s(o: &Option<String>) -> &str {
    o.as_deref().unwrap_or("")
}

fn child(path: &str, name: &str) -> String {
    format!("{path}.{name}")
}

/// Upstream `ValidateObjectMeta` (create): expects name generation to have
/// happened already, but still checks generateName itself.
pub fn validate_object_meta(
    meta: &ObjectMeta,
    requires_namespace: bool,
    rule: NameRule,
    path: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let generate_name = s(&meta.generate_name);
    if !generate_name.is_empty() {
        for msg in rule.check(generate_name, true) {
            errs.push(FieldError::invalid(
                child(path, "generateName"),
                generate_name,
                msg,
            ));
        }
    }
    let name = s(&meta.name);
    if name.is_empty() {
        errs.push(FieldError::required(
            child(path, "name"),
            "name or generateName is required",
        ));
    } else {
        for msg in rule.check(name, false) {
            errs.push(FieldError::invalid(child(path, "name"), name, msg));
        }
    }

    let namespace = s(&meta.namespace);
    if requires_namespace {
        if namespace.is_empty() {
            errs.push(FieldError::required(child(path, "namespace"), ""));
        } else {
            for msg in NameRule::Dns1123Label.check(namespace, false) {
                errs.push(FieldError::invalid(
                    child(path, "namespace"),
                    namespace,
                    msg,
                ));
            }
        }
    } else if !namespace.is_empty() {
        errs.push(FieldError::forbidden(
            child(path, "namespace"),
            "not allowed on this type",
        ));
    }

    if let Some(generation) = meta.generation {
        if generation < 0 {
            errs.push(FieldError::invalid(
                child(path, "generation"),
                generation,
                "must be greater than or equal to 0",
            ));
        }
    }
    errs.extend(validate_common(meta, path, false));
    errs
}

/// Upstream `ValidateObjectMetaUpdate`.
pub fn validate_object_meta_update(
    new: &ObjectMeta,
    old: &ObjectMeta,
    path: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let new_finalizers = new.finalizers.as_deref().unwrap_or(&[]);
    if old.deletion_timestamp.is_some() {
        let old_set: BTreeSet<&str> = old
            .finalizers
            .iter()
            .flatten()
            .map(String::as_str)
            .collect();
        let extra: BTreeSet<&str> = new_finalizers
            .iter()
            .map(String::as_str)
            .filter(|f| !old_set.contains(f))
            .collect();
        if !extra.is_empty() {
            let listed: Vec<String> = extra.iter().map(|f| crate::field::go_quote(f)).collect();
            errs.push(FieldError::forbidden(
                child(path, "finalizers"),
                format!(
                    "no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                    listed.join(", ")
                ),
            ));
        }
    }
    if s(&new.resource_version).is_empty() {
        errs.push(FieldError::invalid(
            child(path, "resourceVersion"),
            "",
            "must be specified for an update",
        ));
    }
    let (new_gen, old_gen) = (new.generation.unwrap_or(0), old.generation.unwrap_or(0));
    if new_gen < old_gen {
        errs.push(FieldError::invalid(
            child(path, "generation"),
            new_gen,
            "must not be decremented",
        ));
    }

    let immutable: [(&str, Value, Value); 6] = [
        ("name", s(&new.name).into(), s(&old.name).into()),
        (
            "namespace",
            s(&new.namespace).into(),
            s(&old.namespace).into(),
        ),
        ("uid", s(&new.uid).into(), s(&old.uid).into()),
        (
            "creationTimestamp",
            to_value(&new.creation_timestamp),
            to_value(&old.creation_timestamp),
        ),
        (
            "deletionTimestamp",
            to_value(&new.deletion_timestamp),
            to_value(&old.deletion_timestamp),
        ),
        (
            "deletionGracePeriodSeconds",
            to_value(&new.deletion_grace_period_seconds),
            to_value(&old.deletion_grace_period_seconds),
        ),
    ];
    for (name, new_val, old_val) in immutable {
        if new_val != old_val {
            errs.push(FieldError::invalid(
                child(path, name),
                new_val,
                FIELD_IMMUTABLE,
            ));
        }
    }
    errs.extend(validate_common(new, path, true));
    errs
}

fn to_value<T: serde::Serialize>(v: &Option<T>) -> Value {
    v.as_ref()
        .and_then(|v| serde_json::to_value(v).ok())
        .unwrap_or(Value::Null)
}

/// Checks shared by create and update: labels, annotations, owner
/// references and finalizers. Upstream skips the generic finalizer checks on
/// update and keeps only core's "standard or fully qualified" rule.
fn validate_common(meta: &ObjectMeta, path: &str, on_update: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(labels) = &meta.labels {
        errs.extend(validate_labels(labels, &child(path, "labels")));
    }
    if let Some(annotations) = &meta.annotations {
        errs.extend(validate_annotations(
            annotations,
            &child(path, "annotations"),
        ));
    }
    if let Some(refs) = &meta.owner_references {
        errs.extend(validate_owner_references(
            refs,
            &child(path, "ownerReferences"),
        ));
    }
    let finalizers = meta.finalizers.as_deref().unwrap_or(&[]);
    let finalizers_path = child(path, "finalizers");
    if !on_update {
        errs.extend(validate_finalizers(finalizers, &finalizers_path));
    }
    errs.extend(validate_kube_finalizer_names(finalizers, &finalizers_path));
    errs
}

/// Upstream `ValidateLabels`: keys are qualified names, values label values.
/// Errors carry the map's path, not the key's.
pub fn validate_labels(labels: &BTreeMap<String, String>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (k, v) in labels {
        for msg in format::is_qualified_name(k) {
            errs.push(FieldError::invalid(path, k.as_str(), msg));
        }
        for msg in format::is_valid_label_value(v) {
            errs.push(FieldError::invalid(path, v.as_str(), msg));
        }
    }
    errs
}

/// Upstream `ValidateAnnotations`: keys are case-insensitive qualified names;
/// keys and values together may not exceed 256 KiB.
pub fn validate_annotations(annotations: &BTreeMap<String, String>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for k in annotations.keys() {
        for msg in format::is_qualified_name(&k.to_lowercase()) {
            errs.push(FieldError::invalid(path, k.as_str(), msg));
        }
    }
    let total: usize = annotations.iter().map(|(k, v)| k.len() + v.len()).sum();
    if total > TOTAL_ANNOTATION_SIZE_LIMIT_BYTES {
        errs.push(FieldError::too_long(
            path,
            TOTAL_ANNOTATION_SIZE_LIMIT_BYTES,
        ));
    }
    errs
}

fn validate_owner_references(refs: &[OwnerReference], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut first_controller: Option<String> = None;
    for r in refs {
        // apiVersion is "group/version" or "version"; anything else parses as
        // no version at all.
        let (group, version) = match r.api_version.split('/').collect::<Vec<_>>().as_slice() {
            [v] => ("", *v),
            [g, v] => (*g, *v),
            _ => ("", ""),
        };
        if version.is_empty() {
            errs.push(FieldError::invalid(
                child(path, "apiVersion"),
                r.api_version.as_str(),
                "version must not be empty",
            ));
        }
        if r.kind.is_empty() {
            errs.push(FieldError::invalid(
                child(path, "kind"),
                r.kind.as_str(),
                "must not be empty",
            ));
        }
        if r.name.is_empty() {
            errs.push(FieldError::invalid(
                child(path, "name"),
                r.name.as_str(),
                "must not be empty",
            ));
        }
        if r.uid.is_empty() {
            errs.push(FieldError::invalid(
                child(path, "uid"),
                r.uid.as_str(),
                "must not be empty",
            ));
        }
        if group.is_empty() && version == "v1" && r.kind == "Event" {
            errs.push(FieldError::invalid(
                path,
                serde_json::to_value(r).unwrap_or(Value::Null),
                "/v1, Kind=Event is disallowed from being an owner",
            ));
        }
        if r.controller == Some(true) {
            let current = format!("{}/{}", r.kind, r.name);
            match &first_controller {
                Some(first) => errs.push(FieldError::invalid(
                    path,
                    serde_json::to_value(refs).unwrap_or(Value::Null),
                    format!(
                        "Only one reference can have Controller set to true. Found \"true\" in references for {first} and {current}"
                    ),
                )),
                None => first_controller = Some(current),
            }
        }
    }
    errs
}

/// Upstream `ValidateFinalizers`: qualified names, and not both orphan and
/// foreground deletion.
pub fn validate_finalizers(finalizers: &[String], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for f in finalizers {
        for msg in format::is_qualified_name(f) {
            errs.push(FieldError::invalid(path, f.as_str(), msg));
        }
    }
    let has = |name: &str| finalizers.iter().any(|f| f == name);
    if has("orphan") && has("foregroundDeletion") {
        errs.push(FieldError::invalid(
            path,
            serde_json::to_value(finalizers).unwrap_or(Value::Null),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
    errs
}

/// Core's rule: a finalizer without a '/' must be one of the standard names.
pub fn validate_kube_finalizer_names(finalizers: &[String], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, f) in finalizers.iter().enumerate() {
        if !f.contains('/') && !STANDARD_FINALIZERS.contains(&f.as_str()) {
            errs.push(FieldError::invalid(
                format!("{path}[{i}]"),
                f.as_str(),
                "name is neither a standard finalizer name nor is it fully qualified",
            ));
        }
    }
    errs
}
