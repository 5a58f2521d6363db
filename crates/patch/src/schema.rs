//! Patch metadata: which fields of a type carry a patch strategy and merge key.
//!
//! Upstream reads the `patchStrategy`/`patchMergeKey` struct tags by reflection; here the same
//! facts are a static graph of [`TypeDef`]s. Only fields that carry a strategy, or lead to one,
//! need to be described: a field missing from a `TypeDef` behaves like an untagged field (maps
//! merge key by key, lists are replaced), which is what upstream does for untagged fields.

/// A struct type, named by its OpenAPI definition (e.g. `io.k8s.api.core.v1.PodSpec`).
#[derive(Debug)]
pub struct TypeDef {
    pub name: &'static str,
    pub fields: &'static [FieldDef],
}

/// One JSON field of a [`TypeDef`].
#[derive(Debug)]
pub struct FieldDef {
    /// JSON name of the field.
    pub name: &'static str,
    /// Raw `patchStrategy` tag: "", "merge", "replace", "retainKeys" or "merge,retainKeys".
    pub strategy: &'static str,
    /// `patchMergeKey` tag, "" when absent.
    pub merge_key: &'static str,
    /// Whether the field is a list (its type is then the type of the items).
    pub list: bool,
    /// The field's struct type (item type for lists), when it has tagged fields of its own.
    pub ty: Option<&'static TypeDef>,
}

impl TypeDef {
    pub const fn new(name: &'static str, fields: &'static [FieldDef]) -> Self {
        TypeDef { name, fields }
    }

    pub fn field(&self, name: &str) -> Option<&'static FieldDef> {
        // `fields` is 'static, so the found entry is too.
        let fields: &'static [FieldDef] = self.fields;
        fields.iter().find(|f| f.name == name)
    }
}

impl FieldDef {
    /// A list field.
    pub const fn list(
        name: &'static str,
        strategy: &'static str,
        merge_key: &'static str,
        ty: Option<&'static TypeDef>,
    ) -> Self {
        FieldDef {
            name,
            strategy,
            merge_key,
            list: true,
            ty,
        }
    }

    /// A struct (JSON object) field.
    pub const fn object(
        name: &'static str,
        strategy: &'static str,
        ty: Option<&'static TypeDef>,
    ) -> Self {
        FieldDef {
            name,
            strategy,
            merge_key: "",
            list: false,
            ty,
        }
    }
}

/// Value of `x-kubernetes-patch-strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Strategy {
    Merge,
    Replace,
    RetainKeys,
    MergeRetainKeys,
}

impl Strategy {
    /// Parses a `patchStrategy` tag; `None` for an empty or unknown tag.
    pub fn from_tag(tag: &str) -> Option<Strategy> {
        match tag {
            "merge" => Some(Strategy::Merge),
            "replace" => Some(Strategy::Replace),
            "retainKeys" => Some(Strategy::RetainKeys),
            "merge,retainKeys" | "retainKeys,merge" => Some(Strategy::MergeRetainKeys),
            _ => None,
        }
    }

    /// The text used for `x-kubernetes-patch-strategy`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Strategy::Merge => "merge",
            Strategy::Replace => "replace",
            Strategy::RetainKeys => "retainKeys",
            Strategy::MergeRetainKeys => "merge,retainKeys",
        }
    }
}

/// One annotated field of a kind, as listed by [`crate::list_strategies`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldStrategy {
    /// Dotted JSON path from the object root; `[]` marks a step into list items, e.g.
    /// `spec.containers` or `spec.containers[].ports`.
    pub path: String,
    /// OpenAPI definition that declares the field, e.g. `io.k8s.api.core.v1.Container`.
    pub definition: &'static str,
    /// JSON name of the field inside `definition`.
    pub field: &'static str,
    pub strategy: Strategy,
    pub merge_key: Option<&'static str>,
}

/// Walks `root` depth first and lists every field that carries a patch strategy.
pub(crate) fn collect_strategies(root: &'static TypeDef, prefix: &str) -> Vec<FieldStrategy> {
    let mut out = Vec::new();
    walk(root, prefix, &mut out, 0);
    out
}

// The graph is acyclic for Kubernetes kinds, but a caller-built TypeDef may recurse into itself;
// the depth bound keeps the listing finite.
const MAX_DEPTH: usize = 16;

fn walk(ty: &'static TypeDef, prefix: &str, out: &mut Vec<FieldStrategy>, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    for f in ty.fields {
        let path = if prefix.is_empty() {
            f.name.to_string()
        } else {
            format!("{prefix}.{}", f.name)
        };
        if let Some(strategy) = Strategy::from_tag(f.strategy) {
            out.push(FieldStrategy {
                path: path.clone(),
                definition: ty.name,
                field: f.name,
                strategy,
                merge_key: (!f.merge_key.is_empty()).then_some(f.merge_key),
            });
        }
        if let Some(child) = f.ty {
            let child_prefix = if f.list { format!("{path}[]") } else { path };
            walk(child, &child_prefix, out, depth + 1);
        }
    }
}

/// Looks up `key` in `schema`: the field's own type, its raw strategy tag and its merge key.
pub(crate) fn lookup(
    schema: Option<&'static TypeDef>,
    key: &str,
) -> (Option<&'static TypeDef>, &'static str, &'static str) {
    match schema.and_then(|t| t.field(key)) {
        Some(f) => (f.ty, f.strategy, f.merge_key),
        None => (None, "", ""),
    }
}
