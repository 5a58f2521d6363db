//! The catalog: served kinds and the definitions that describe them, in neutral form.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};

use crate::{builtin, schema, CustomResource, Error, PatchMeta, ServedResource};

/// A served kind with the names of its definitions.
#[derive(Clone, Debug)]
pub(crate) struct Kind {
    pub(crate) group: String,
    pub(crate) version: String,
    pub(crate) kind: String,
    pub(crate) plural: String,
    pub(crate) namespaced: bool,
    pub(crate) subresources: Vec<String>,
    pub(crate) verbs: Vec<String>,
    pub(crate) definition: String,
    pub(crate) list_definition: String,
}

/// Borrowed description of a kind to build from.
pub(crate) struct Spec<'a> {
    pub(crate) group: &'a str,
    pub(crate) version: &'a str,
    pub(crate) kind: &'a str,
    pub(crate) plural: &'a str,
    pub(crate) namespaced: bool,
    pub(crate) subresources: Vec<String>,
    pub(crate) verbs: Vec<String>,
}

/// The definitions and served kinds from which every document is rendered. Build it once at start
/// (and again when custom resources change); rendering is deterministic.
#[derive(Clone, Debug)]
pub struct OpenApi {
    pub(crate) kinds: Vec<Kind>,
    /// Neutral form, see the `schema` module.
    pub(crate) definitions: BTreeMap<String, Value>,
    pub(crate) info_version: String,
}

impl OpenApi {
    /// Builds the catalog for the given built-in resources. Kinds that k8s-openapi has no type for
    /// are published with a permissive object schema rather than dropped, so their paths (and
    /// kubectl's field-validation check) still work.
    pub fn new(resources: &[ServedResource]) -> Self {
        Self::from_specs(resources.iter().map(|r| Spec {
            group: r.group,
            version: r.version,
            kind: r.kind,
            plural: r.plural,
            namespaced: r.namespaced,
            subresources: r.subresources.iter().map(|s| (*s).to_owned()).collect(),
            verbs: r.verbs.iter().map(|s| (*s).to_owned()).collect(),
        }))
    }

    pub(crate) fn from_specs<'a>(specs: impl IntoIterator<Item = Spec<'a>>) -> Self {
        let mut gen = builtin::generator();
        builtin::register_meta(&mut gen);
        let mut kinds = Vec::new();
        let mut typed = BTreeSet::new();
        for r in specs {
            let definition = match builtin::register_kind(&mut gen, r.group, r.version, r.kind) {
                Some(name) => {
                    typed.insert(name.clone());
                    name
                }
                None => definition_name(r.group, r.version, r.kind),
            };
            kinds.push(Kind {
                group: r.group.into(),
                version: r.version.into(),
                kind: r.kind.into(),
                plural: r.plural.into(),
                namespaced: r.namespaced,
                subresources: r.subresources,
                verbs: r.verbs,
                list_definition: format!("{definition}List"),
                definition,
            });
        }
        let definitions: BTreeMap<String, Value> =
            gen.take_definitions(false).into_iter().collect();
        let mut api = OpenApi {
            kinds: Vec::new(),
            definitions,
            info_version: "unversioned".into(),
        };
        add_gvk(&mut api.definitions, builtin::STATUS, "", "v1", "Status");
        add_gvk(
            &mut api.definitions,
            builtin::API_RESOURCE_LIST,
            "",
            "v1",
            "APIResourceList",
        );
        api.add_shared_gvks("", "v1");
        for kind in kinds {
            if typed.contains(&kind.definition) {
                if let Some(s) = api.definitions.get_mut(&kind.definition) {
                    builtin::fix_required_metadata(&kind.definition, s);
                }
            } else {
                api.definitions
                    .entry(kind.definition.clone())
                    .or_insert_with(|| object_schema(None));
            }
            api.register(kind);
        }
        api
    }

    /// Sets `info.version` of every document (kube-apiserver publishes its git version there,
    /// e.g. `v1.33.0`; the default is `unversioned`, as in upstream's checked-in specs).
    pub fn with_info_version(mut self, version: impl Into<String>) -> Self {
        self.info_version = version.into();
        self
    }

    /// Adds a custom resource kind. Its definition is named like kube-apiserver names CRD
    /// definitions (reversed group, e.g. `com.example.stable.v1.CronTab`) and gets the standard
    /// `apiVersion`/`kind`/`metadata` properties.
    pub fn with_custom(&mut self, cr: CustomResource) -> Result<(), Error> {
        for (field, value) in [
            ("group", &cr.group),
            ("version", &cr.version),
            ("kind", &cr.kind),
            ("plural", &cr.plural),
        ] {
            if value.is_empty() {
                return Err(Error::Empty { field });
            }
        }
        let group_version = format!("{}/{}", cr.group, cr.version);
        for k in &self.kinds {
            if k.group == cr.group && k.version == cr.version {
                if k.kind == cr.kind {
                    return Err(Error::DuplicateKind {
                        group_version,
                        kind: cr.kind,
                    });
                }
                if k.plural == cr.plural {
                    return Err(Error::DuplicatePlural {
                        group_version,
                        plural: cr.plural,
                    });
                }
            }
        }
        let schema = match &cr.schema {
            Some(s) if !s.is_object() => return Err(Error::SchemaNotObject { kind: cr.kind }),
            Some(s) => Some(schema::normalize_custom(s)),
            None => None,
        };
        let definition = definition_name(&cr.group, &cr.version, &cr.kind);
        self.definitions
            .insert(definition.clone(), object_schema(schema));
        self.register(Kind {
            list_definition: format!("{definition}List"),
            definition,
            group: cr.group,
            version: cr.version,
            kind: cr.kind,
            plural: cr.plural,
            namespaced: cr.namespaced,
            subresources: cr.subresources,
            verbs: cr.verbs,
        });
        Ok(())
    }

    /// Hook for the patch crate's table: sets `x-kubernetes-patch-strategy` and
    /// `x-kubernetes-patch-merge-key` on `definition.properties.field`. Returns the entries whose
    /// definition or field is not in this catalog (normal for types that are not served).
    pub fn apply_patch_meta<'a>(
        &mut self,
        entries: impl IntoIterator<Item = PatchMeta<'a>>,
    ) -> Vec<PatchMeta<'a>> {
        let mut unmatched = Vec::new();
        for e in entries {
            let field = self
                .definitions
                .get_mut(e.definition)
                .and_then(|d| d.get_mut("properties"))
                .and_then(|p| p.get_mut(e.field))
                .and_then(Value::as_object_mut);
            match field {
                Some(f) => {
                    f.insert("x-kubernetes-patch-strategy".into(), e.strategy.into());
                    if let Some(key) = e.merge_key {
                        f.insert("x-kubernetes-patch-merge-key".into(), key.into());
                    }
                }
                None => unmatched.push(e),
            }
        }
        unmatched
    }

    /// The group-versions that have at least one served kind, as (group, version), sorted.
    pub fn group_versions(&self) -> Vec<(String, String)> {
        let set: BTreeSet<(String, String)> = self
            .kinds
            .iter()
            .map(|k| (k.group.clone(), k.version.clone()))
            .collect();
        set.into_iter().collect()
    }

    /// Definition name of a served kind (or of its List kind), e.g. `io.k8s.api.core.v1.Service`.
    pub fn definition_for(&self, group: &str, version: &str, kind: &str) -> Option<&str> {
        self.kinds.iter().find_map(|k| {
            if k.group != group || k.version != version {
                return None;
            }
            if k.kind == kind {
                Some(k.definition.as_str())
            } else if kind.strip_suffix("List") == Some(k.kind.as_str()) {
                Some(k.list_definition.as_str())
            } else {
                None
            }
        })
    }

    /// A definition rendered as an OpenAPI 3.0 schema (references point into
    /// `#/components/schemas/`).
    pub fn schema_v3(&self, definition: &str) -> Option<Value> {
        self.definitions
            .get(definition)
            .map(|s| schema::to_v3(definition, s))
    }

    fn register(&mut self, kind: Kind) {
        self.add_shared_gvks(&kind.group, &kind.version);
        add_gvk(
            &mut self.definitions,
            &kind.definition,
            &kind.group,
            &kind.version,
            &kind.kind,
        );
        if !self.definitions.contains_key(&kind.list_definition) {
            let list = builtin::list_schema(&kind.kind, &kind.plural, &kind.definition);
            self.definitions.insert(kind.list_definition.clone(), list);
        }
        add_gvk(
            &mut self.definitions,
            &kind.list_definition,
            &kind.group,
            &kind.version,
            &format!("{}List", kind.kind),
        );
        self.kinds.push(kind);
    }

    /// DeleteOptions and WatchEvent are registered in every group-version upstream.
    fn add_shared_gvks(&mut self, group: &str, version: &str) {
        add_gvk(
            &mut self.definitions,
            builtin::DELETE_OPTIONS,
            group,
            version,
            "DeleteOptions",
        );
        add_gvk(
            &mut self.definitions,
            builtin::WATCH_EVENT,
            group,
            version,
            "WatchEvent",
        );
    }
}

fn add_gvk(defs: &mut BTreeMap<String, Value>, name: &str, group: &str, version: &str, kind: &str) {
    if let Some(s) = defs.get_mut(name) {
        builtin::add_gvk(s, group, version, kind);
    }
}

/// Definition name for a kind k8s-openapi does not know: upstream's convention for CRDs
/// (reversed group) and for built-in groups (`io.k8s.api.<short group>`).
fn definition_name(group: &str, version: &str, kind: &str) -> String {
    if group.is_empty() {
        return format!("io.k8s.api.core.{version}.{kind}");
    }
    // Built-in groups are either dotless (apps, batch) or `<name>.k8s.io`.
    let short = group.strip_suffix(".k8s.io").unwrap_or(group);
    if !short.contains('.') {
        return format!("io.k8s.api.{short}.{version}.{kind}");
    }
    let reversed: Vec<&str> = group.split('.').rev().collect();
    format!("{}.{version}.{kind}", reversed.join("."))
}

/// An object schema with the standard top-level properties, around `schema` if given.
fn object_schema(schema: Option<Value>) -> Value {
    let mut map = match schema {
        Some(Value::Object(m)) => m,
        _ => {
            let mut m = Map::new();
            m.insert("x-kubernetes-preserve-unknown-fields".into(), true.into());
            m
        }
    };
    map.insert("type".into(), "object".into());
    let props = map
        .entry("properties")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(props) = props {
        props.insert(
            "apiVersion".into(),
            json!({"description": builtin::API_VERSION_DESCRIPTION, "type": "string"}),
        );
        props.insert(
            "kind".into(),
            json!({"description": builtin::KIND_DESCRIPTION, "type": "string"}),
        );
        props.insert(
            "metadata".into(),
            json!({
                "$ref": format!("{}{}", schema::V2_REF_PREFIX, builtin::OBJECT_META),
                "description": builtin::OBJECT_META_DESCRIPTION,
            }),
        );
    }
    Value::Object(map)
}
