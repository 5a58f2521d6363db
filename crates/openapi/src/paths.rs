//! REST operations of each served kind, modelled once and rendered as OpenAPI 3.0 path items or
//! swagger 2.0 path items in kube-apiserver's shape.
//!
//! kubectl depends on two details here: every operation carries `x-kubernetes-group-version-kind`
//! (explain finds the kind through it) and every PATCH operation lists `fieldValidation` inline
//! (kubectl's query-parameter check compares parameter names and does not resolve `$ref`s).

use crate::builtin::{gvk_value, API_RESOURCE_LIST, DELETE_OPTIONS, PATCH, STATUS};
use crate::catalog::Kind;
use crate::schema::{V2_REF_PREFIX, V3_REF_PREFIX};
use serde_json::{json, Map, Value};

const DRY_RUN: &str = "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed";
const FIELD_MANAGER: &str = "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint.";
const FIELD_MANAGER_PATCH: &str = "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint. This field is required for apply requests (application/apply-patch) but optional for non-apply patch types (JsonPatch, MergePatch, StrategicMergePatch).";
const FIELD_VALIDATION: &str = "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. This is the default behavior prior to v1.23. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. The request will still succeed if there are no other errors, and will only persist the last of any duplicate fields. This is the default in v1.23+ - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered.";
const FORCE: &str = "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.";
const GRACE_PERIOD: &str = "The duration in seconds before the object should be deleted. Value must be non-negative integer. The value zero indicates delete immediately. If this value is nil, the default grace period for the specified type will be used. Defaults to a per object value if not specified. zero means delete immediately.";
const ORPHAN_DEPENDENTS: &str = "Deprecated: please use the PropagationPolicy, this field will be deprecated in 1.7. Should the dependent objects be orphaned. If true/false, the \"orphan\" finalizer will be added to/removed from the object's finalizers list. Either this field or PropagationPolicy may be set, but not both.";
const PROPAGATION_POLICY: &str = "Whether and how garbage collection will be performed. Either this field or OrphanDependents may be set, but not both. The default policy is decided by the existing finalizer set in the metadata.finalizers and the resource-specific default policy. Acceptable values are: 'Orphan' - orphan the dependents; 'Background' - allow the garbage collector to delete the dependents in the background; 'Foreground' - a cascading policy that deletes all dependents in the foreground.";
const ALLOW_WATCH_BOOKMARKS: &str = "allowWatchBookmarks requests watch events with type \"BOOKMARK\". Servers that do not implement bookmarks may ignore this flag and bookmarks are sent at the server's discretion. Clients should not assume bookmarks are returned at any specific interval, nor may they assume the server will send any BOOKMARK event during a session. If this is not a watch, this field is ignored.";
const CONTINUE: &str = "The continue option should be set when retrieving more results from the server. Since this value is server defined, clients may only use the continue value from a previous query result with identical query parameters (except for the value of continue) and the server may reject a continue value it does not recognize. If the specified continue value is no longer valid whether due to expiration (generally five to fifteen minutes) or a configuration change on the server, the server will respond with a 410 ResourceExpired error together with a continue token. If the client needs a consistent list, it must restart their list without the continue field. Otherwise, the client may send another list request with the token received with the 410 error, the server will respond with a list starting from the next key, but from the latest snapshot, which is inconsistent from the previous list results - objects that are created, modified, or deleted after the first list request will be included in the response, as long as their keys are after the \"next key\".\n\nThis field is not supported when watch is true. Clients may start a watch from the last resourceVersion value returned by the server and not miss any modifications.";
const FIELD_SELECTOR: &str =
    "A selector to restrict the list of returned objects by their fields. Defaults to everything.";
const LABEL_SELECTOR: &str =
    "A selector to restrict the list of returned objects by their labels. Defaults to everything.";
const LIMIT: &str = "limit is a maximum number of responses to return for a list call. If more items exist, the server will set the `continue` field on the list metadata to a value that can be used with the same initial query to retrieve the next set of results. Setting a limit may return fewer than the requested amount of items (up to zero items) in the event all requested objects are filtered out and clients should only use the presence of the continue field to determine whether more results are available. Servers may choose not to support the limit argument and will return all of the available results. If limit is specified and the continue field is empty, clients may assume that no more results are available. This field is not supported if watch is true.\n\nThe server guarantees that the objects returned when using continue will be identical to issuing a single list call without a limit - that is, no objects created, modified, or deleted after the first request is issued will be included in any subsequent continued requests. This is sometimes referred to as a consistent snapshot, and ensures that a client that is using limit to receive smaller chunks of a very large result can ensure they see all possible objects. If objects are updated during a chunked list the version of the object that was present at the time the first list result was calculated is returned.";
const RESOURCE_VERSION: &str = "resourceVersion sets a constraint on what resource versions a request may be served from. See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset";
const RESOURCE_VERSION_MATCH: &str = "resourceVersionMatch determines how resourceVersion is applied to list calls. It is highly recommended that resourceVersionMatch be set for list calls where resourceVersion is set See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset";
const SEND_INITIAL_EVENTS: &str = "`sendInitialEvents=true` may be set together with `watch=true`. In that case, the watch stream will begin with synthetic events to produce the current state of objects in the collection. Once all such events have been sent, a synthetic \"Bookmark\" event  will be sent. The bookmark will report the ResourceVersion (RV) corresponding to the set of objects, and be marked with `\"k8s.io/initial-events-end\": \"true\"` annotation. Afterwards, the watch stream will proceed as usual, sending watch events corresponding to changes (subsequent to the RV) to objects watched.\n\nWhen `sendInitialEvents` option is set, we require `resourceVersionMatch` option to also be set. The semantic of the watch request is as following: - `resourceVersionMatch` = NotOlderThan\n  is interpreted as \"data at least as new as the provided `resourceVersion`\"\n  and the bookmark event is send when the state is synced\n  to a `resourceVersion` at least as fresh as the one provided by the ListOptions.\n  If `resourceVersion` is unset, this is interpreted as \"consistent read\" and the\n  bookmark event is send when the state is synced at least to the moment\n  when request started being processed.\n- `resourceVersionMatch` set to any other value or unset\n  Invalid error is returned.\n\nDefaults to true if `resourceVersion=\"\"` or `resourceVersion=\"0\"` (for backward compatibility reasons) and to false otherwise.";
const TIMEOUT_SECONDS: &str = "Timeout for the list/watch call. This limits the duration of the call, regardless of any activity or inactivity.";
const WATCH: &str = "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications. Specify resourceVersion.";
const NAMESPACE: &str = "object name and auth scope, such as for teams and projects";
const PRETTY: &str = "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget).";

const RESPONSE_TYPES: &[&str] = &[
    "application/json",
    "application/vnd.kubernetes.protobuf",
    "application/yaml",
];
const LIST_RESPONSE_TYPES: &[&str] = &[
    "application/json",
    "application/json;stream=watch",
    "application/vnd.kubernetes.protobuf",
    "application/vnd.kubernetes.protobuf;stream=watch",
    "application/yaml",
];
const PATCH_TYPES: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];

#[derive(Clone, Copy)]
enum In {
    Path,
    Query,
}

#[derive(Clone)]
struct Param {
    name: &'static str,
    location: In,
    ty: &'static str,
    description: String,
}

fn query(name: &'static str, ty: &'static str, description: &str) -> Param {
    Param {
        name,
        location: In::Query,
        ty,
        description: description.to_owned(),
    }
}

fn path_param(name: &'static str, description: String) -> Param {
    Param {
        name,
        location: In::Path,
        ty: "string",
        description,
    }
}

struct Body {
    definition: String,
    content_types: &'static [&'static str],
    required: bool,
}

struct Response {
    code: &'static str,
    description: &'static str,
    definition: Option<String>,
}

struct Operation {
    method: &'static str,
    id: String,
    description: String,
    action: Option<&'static str>,
    gvk: Option<(String, String, String)>,
    params: Vec<Param>,
    body: Option<Body>,
    responses: Vec<Response>,
    response_types: &'static [&'static str],
}

pub(crate) struct PathItem {
    pub(crate) path: String,
    params: Vec<Param>,
    ops: Vec<Operation>,
}

/// `/api/v1` or `/apis/<group>/<version>`.
pub(crate) fn gv_prefix(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    }
}

/// Upstream's operation-id group segment: "" → Core, rbac.authorization.k8s.io →
/// RbacAuthorization, stable.example.com → StableExampleCom.
fn group_ident(group: &str) -> String {
    if group.is_empty() {
        return "Core".into();
    }
    let trimmed = group.strip_suffix(".k8s.io").unwrap_or(group);
    trimmed
        .split(['.', '-'])
        .map(capitalize)
        .collect::<Vec<_>>()
        .join("")
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn decapitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

pub(crate) fn tag(group: &str, version: &str) -> String {
    format!("{}_{}", decapitalize(&group_ident(group)), version)
}

/// Upstream's "a"/"an"/no article rule for operation descriptions ("delete a Service",
/// "create an Event", "delete Endpoints").
fn article(kind: &str) -> &'static str {
    if kind.ends_with('s') && !kind.ends_with("ss") {
        return " ";
    }
    match kind.chars().next() {
        Some(c) if "aeiouAEIOU".contains(c) => " an ",
        _ => " a ",
    }
}

fn has(kind: &Kind, verb: &str) -> bool {
    kind.verbs.iter().any(|v| v == verb)
}

fn list_params() -> Vec<Param> {
    vec![
        query("allowWatchBookmarks", "boolean", ALLOW_WATCH_BOOKMARKS),
        query("continue", "string", CONTINUE),
        query("fieldSelector", "string", FIELD_SELECTOR),
        query("labelSelector", "string", LABEL_SELECTOR),
        query("limit", "integer", LIMIT),
        query("resourceVersion", "string", RESOURCE_VERSION),
        query("resourceVersionMatch", "string", RESOURCE_VERSION_MATCH),
        query("sendInitialEvents", "boolean", SEND_INITIAL_EVENTS),
        query("timeoutSeconds", "integer", TIMEOUT_SECONDS),
        query("watch", "boolean", WATCH),
    ]
}

fn write_params(field_manager: &str) -> Vec<Param> {
    vec![
        query("dryRun", "string", DRY_RUN),
        query("fieldManager", "string", field_manager),
        query("fieldValidation", "string", FIELD_VALIDATION),
    ]
}

fn patch_params() -> Vec<Param> {
    let mut p = write_params(FIELD_MANAGER_PATCH);
    p.push(query("force", "boolean", FORCE));
    p
}

fn delete_params() -> Vec<Param> {
    vec![
        query("dryRun", "string", DRY_RUN),
        query("gracePeriodSeconds", "integer", GRACE_PERIOD),
        query("orphanDependents", "boolean", ORPHAN_DEPENDENTS),
        query("propagationPolicy", "string", PROPAGATION_POLICY),
    ]
}

fn delete_collection_params() -> Vec<Param> {
    vec![
        query("continue", "string", CONTINUE),
        query("dryRun", "string", DRY_RUN),
        query("fieldSelector", "string", FIELD_SELECTOR),
        query("gracePeriodSeconds", "integer", GRACE_PERIOD),
        query("labelSelector", "string", LABEL_SELECTOR),
        query("limit", "integer", LIMIT),
        query("orphanDependents", "boolean", ORPHAN_DEPENDENTS),
        query("propagationPolicy", "string", PROPAGATION_POLICY),
        query("resourceVersion", "string", RESOURCE_VERSION),
        query("resourceVersionMatch", "string", RESOURCE_VERSION_MATCH),
        query("sendInitialEvents", "boolean", SEND_INITIAL_EVENTS),
        query("timeoutSeconds", "integer", TIMEOUT_SECONDS),
    ]
}

fn ok(definition: &str) -> Response {
    Response {
        code: "200",
        description: "OK",
        definition: Some(definition.to_owned()),
    }
}

fn created(definition: &str) -> Response {
    Response {
        code: "201",
        description: "Created",
        definition: Some(definition.to_owned()),
    }
}

fn accepted(definition: &str) -> Response {
    Response {
        code: "202",
        description: "Accepted",
        definition: Some(definition.to_owned()),
    }
}

fn unauthorized() -> Response {
    Response {
        code: "401",
        description: "Unauthorized",
        definition: None,
    }
}

/// The discovery path of a group-version (`GET /api/v1/`).
pub(crate) fn root_item(group: &str, version: &str) -> PathItem {
    PathItem {
        path: format!("{}/", gv_prefix(group, version)),
        params: Vec::new(),
        ops: vec![Operation {
            method: "get",
            id: format!(
                "get{}{}APIResources",
                group_ident(group),
                capitalize(version)
            ),
            description: "get available resources".into(),
            action: None,
            gvk: None,
            params: Vec::new(),
            body: None,
            responses: vec![ok(API_RESOURCE_LIST), unauthorized()],
            response_types: RESPONSE_TYPES,
        }],
    }
}

/// All path items of one served kind.
pub(crate) fn kind_items(kind: &Kind) -> Vec<PathItem> {
    let prefix = gv_prefix(&kind.group, &kind.version);
    let ids = IdParts {
        group: group_ident(&kind.group),
        version: capitalize(&kind.version),
        scope: if kind.namespaced { "Namespaced" } else { "" },
        kind: kind.kind.clone(),
    };
    let gvk = Some((kind.group.clone(), kind.version.clone(), kind.kind.clone()));
    let def = kind.definition.as_str();
    let list_def = kind.list_definition.as_str();
    let k = kind.kind.as_str();
    let art = article(k);

    let collection = if kind.namespaced {
        format!("{prefix}/namespaces/{{namespace}}/{}", kind.plural)
    } else {
        format!("{prefix}/{}", kind.plural)
    };
    let scope_params = |with_name: bool| {
        let mut p = Vec::new();
        if with_name {
            p.push(path_param("name", format!("name of the {k}")));
        }
        if kind.namespaced {
            p.push(path_param("namespace", NAMESPACE.into()));
        }
        p.push(query("pretty", "string", PRETTY));
        p
    };
    let op = |method, id: String, description: String, action| Operation {
        method,
        id,
        description,
        action: Some(action),
        gvk: gvk.clone(),
        params: Vec::new(),
        body: None,
        responses: Vec::new(),
        response_types: RESPONSE_TYPES,
    };

    let mut items = Vec::new();

    // Collection: list, create, deletecollection.
    let mut ops = Vec::new();
    if has(kind, "deletecollection") {
        let mut o = op(
            "delete",
            ids.id("delete", "Collection", ""),
            format!("delete collection of {k}"),
            "deletecollection",
        );
        o.params = delete_collection_params();
        o.body = Some(Body {
            definition: DELETE_OPTIONS.into(),
            content_types: &["*/*"],
            required: false,
        });
        o.responses = vec![ok(STATUS), unauthorized()];
        ops.push(o);
    }
    if has(kind, "list") {
        let mut o = op(
            "get",
            ids.id("list", "", ""),
            format!("list or watch objects of kind {k}"),
            "list",
        );
        o.params = list_params();
        o.responses = vec![ok(list_def), unauthorized()];
        o.response_types = LIST_RESPONSE_TYPES;
        ops.push(o);
    }
    if has(kind, "create") {
        let mut o = op(
            "post",
            ids.id("create", "", ""),
            format!("create{art}{k}"),
            "post",
        );
        o.params = write_params(FIELD_MANAGER);
        o.body = Some(kind_body(def));
        o.responses = vec![ok(def), created(def), accepted(def), unauthorized()];
        ops.push(o);
    }
    if !ops.is_empty() {
        items.push(PathItem {
            path: collection.clone(),
            params: scope_params(false),
            ops,
        });
    }

    // Object: get, put, patch, delete.
    let mut ops = Vec::new();
    if has(kind, "delete") {
        let mut o = op(
            "delete",
            ids.id("delete", "", ""),
            format!("delete{art}{k}"),
            "delete",
        );
        o.params = delete_params();
        o.body = Some(Body {
            definition: DELETE_OPTIONS.into(),
            content_types: &["*/*"],
            required: false,
        });
        o.responses = vec![ok(def), accepted(def), unauthorized()];
        ops.push(o);
    }
    if has(kind, "get") {
        let mut o = op(
            "get",
            ids.id("read", "", ""),
            format!("read the specified {k}"),
            "get",
        );
        o.responses = vec![ok(def), unauthorized()];
        ops.push(o);
    }
    if has(kind, "patch") {
        ops.push(patch_op(
            &op,
            ids.id("patch", "", ""),
            format!("partially update the specified {k}"),
            def,
        ));
    }
    if has(kind, "update") {
        ops.push(put_op(
            &op,
            ids.id("replace", "", ""),
            format!("replace the specified {k}"),
            def,
        ));
    }
    if !ops.is_empty() {
        items.push(PathItem {
            path: format!("{collection}/{{name}}"),
            params: scope_params(true),
            ops,
        });
    }

    // Status subresource: same verbs, same GVK.
    if kind.subresources.iter().any(|s| s == "status") {
        let mut ops = Vec::new();
        if has(kind, "get") {
            let mut o = op(
                "get",
                ids.id("read", "", "Status"),
                format!("read status of the specified {k}"),
                "get",
            );
            o.responses = vec![ok(def), unauthorized()];
            ops.push(o);
        }
        if has(kind, "patch") {
            ops.push(patch_op(
                &op,
                ids.id("patch", "", "Status"),
                format!("partially update status of the specified {k}"),
                def,
            ));
        }
        if has(kind, "update") {
            ops.push(put_op(
                &op,
                ids.id("replace", "", "Status"),
                format!("replace status of the specified {k}"),
                def,
            ));
        }
        if !ops.is_empty() {
            items.push(PathItem {
                path: format!("{collection}/{{name}}/status"),
                params: scope_params(true),
                ops,
            });
        }
    }

    // Cross-namespace list, with its parameters on the path item as upstream does.
    if kind.namespaced && has(kind, "list") {
        let mut o = op(
            "get",
            format!(
                "list{}{}{}ForAllNamespaces",
                ids.group, ids.version, ids.kind
            ),
            format!("list or watch objects of kind {k}"),
            "list",
        );
        o.responses = vec![ok(list_def), unauthorized()];
        o.response_types = LIST_RESPONSE_TYPES;
        let mut params = list_params();
        params.insert(5, query("pretty", "string", PRETTY));
        items.push(PathItem {
            path: format!("{prefix}/{}", kind.plural),
            params,
            ops: vec![o],
        });
    }

    items
}

fn patch_op<F>(op: &F, id: String, description: String, def: &str) -> Operation
where
    F: Fn(&'static str, String, String, &'static str) -> Operation,
{
    let mut o = op("patch", id, description, "patch");
    o.params = patch_params();
    o.body = Some(Body {
        definition: PATCH.into(),
        content_types: PATCH_TYPES,
        required: true,
    });
    o.responses = vec![ok(def), created(def), unauthorized()];
    o
}

fn kind_body(def: &str) -> Body {
    Body {
        definition: def.into(),
        content_types: &["*/*"],
        required: true,
    }
}

fn put_op<F>(op: &F, id: String, description: String, def: &str) -> Operation
where
    F: Fn(&'static str, String, String, &'static str) -> Operation,
{
    let mut o = op("put", id, description, "put");
    o.params = write_params(FIELD_MANAGER);
    o.body = Some(kind_body(def));
    o.responses = vec![ok(def), created(def), unauthorized()];
    o
}

struct IdParts {
    group: String,
    version: String,
    scope: &'static str,
    kind: String,
}

impl IdParts {
    /// e.g. ("delete", "Collection", "") → deleteCoreV1CollectionNamespacedService.
    fn id(&self, verb: &str, infix: &str, suffix: &str) -> String {
        format!(
            "{verb}{}{}{infix}{}{}{suffix}",
            self.group, self.version, self.scope, self.kind
        )
    }
}

fn param_v3(p: &Param) -> Value {
    let mut m = Map::new();
    m.insert("description".into(), p.description.clone().into());
    match p.location {
        In::Path => {
            m.insert("in".into(), "path".into());
            m.insert("name".into(), p.name.into());
            m.insert("required".into(), true.into());
        }
        In::Query => {
            m.insert("in".into(), "query".into());
            m.insert("name".into(), p.name.into());
        }
    }
    m.insert("schema".into(), json!({"type": p.ty, "uniqueItems": true}));
    Value::Object(m)
}

fn param_v2(p: &Param) -> Value {
    let mut m = Map::new();
    m.insert("description".into(), p.description.clone().into());
    m.insert(
        "in".into(),
        match p.location {
            In::Path => "path",
            In::Query => "query",
        }
        .into(),
    );
    m.insert("name".into(), p.name.into());
    if matches!(p.location, In::Path) {
        m.insert("required".into(), true.into());
    }
    m.insert("type".into(), p.ty.into());
    m.insert("uniqueItems".into(), true.into());
    Value::Object(m)
}

fn gvk_ext(gvk: &(String, String, String)) -> Value {
    gvk_value(&gvk.0, &gvk.1, &gvk.2)
}

impl PathItem {
    /// Renders as an OpenAPI 3.0 path item.
    pub(crate) fn to_v3(&self) -> Value {
        let mut item = Map::new();
        for o in &self.ops {
            let mut m = Map::new();
            m.insert("description".into(), o.description.clone().into());
            m.insert("operationId".into(), o.id.clone().into());
            if !o.params.is_empty() {
                m.insert("parameters".into(), o.params.iter().map(param_v3).collect());
            }
            let body = o
                .body
                .as_ref()
                .map(|b| (b.definition.as_str(), b.content_types, b.required));
            if let Some((def, types, required)) = body {
                let content: Map<String, Value> = types
                    .iter()
                    .map(|t| {
                        (
                            (*t).to_owned(),
                            json!({"schema": {"$ref": format!("{V3_REF_PREFIX}{def}")}}),
                        )
                    })
                    .collect();
                let mut rb = Map::new();
                rb.insert("content".into(), Value::Object(content));
                if required {
                    rb.insert("required".into(), true.into());
                }
                m.insert("requestBody".into(), Value::Object(rb));
            }
            let mut responses = Map::new();
            for r in &o.responses {
                let mut rm = Map::new();
                if let Some(def) = &r.definition {
                    let content: Map<String, Value> = o
                        .response_types
                        .iter()
                        .map(|t| {
                            (
                                (*t).to_owned(),
                                json!({"schema": {"$ref": format!("{V3_REF_PREFIX}{def}")}}),
                            )
                        })
                        .collect();
                    rm.insert("content".into(), Value::Object(content));
                }
                rm.insert("description".into(), r.description.into());
                responses.insert(r.code.into(), Value::Object(rm));
            }
            m.insert("responses".into(), Value::Object(responses));
            m.insert("tags".into(), json!([self.tag()]));
            if let Some(a) = o.action {
                m.insert("x-kubernetes-action".into(), a.into());
            }
            if let Some(g) = &o.gvk {
                m.insert("x-kubernetes-group-version-kind".into(), gvk_ext(g));
            }
            item.insert(o.method.into(), Value::Object(m));
        }
        if !self.params.is_empty() {
            item.insert(
                "parameters".into(),
                self.params.iter().map(param_v3).collect(),
            );
        }
        Value::Object(item)
    }

    /// Renders as a swagger 2.0 path item.
    pub(crate) fn to_v2(&self) -> Value {
        let mut item = Map::new();
        for o in &self.ops {
            let mut m = Map::new();
            let body = o
                .body
                .as_ref()
                .map(|b| (b.definition.as_str(), b.content_types, b.required));
            m.insert(
                "consumes".into(),
                match body {
                    Some((_, types, _)) => json!(types),
                    None => json!(["*/*"]),
                },
            );
            m.insert("description".into(), o.description.clone().into());
            m.insert("operationId".into(), o.id.clone().into());
            let mut params: Vec<Value> = Vec::new();
            if let Some((def, _, required)) = body {
                let mut b = Map::new();
                b.insert("in".into(), "body".into());
                b.insert("name".into(), "body".into());
                if required {
                    b.insert("required".into(), true.into());
                }
                b.insert(
                    "schema".into(),
                    json!({"$ref": format!("{V2_REF_PREFIX}{def}")}),
                );
                params.push(Value::Object(b));
            }
            params.extend(o.params.iter().map(param_v2));
            if !params.is_empty() {
                m.insert("parameters".into(), Value::Array(params));
            }
            m.insert("produces".into(), json!(o.response_types));
            let mut responses = Map::new();
            for r in &o.responses {
                let mut rm = Map::new();
                rm.insert("description".into(), r.description.into());
                if let Some(def) = &r.definition {
                    rm.insert(
                        "schema".into(),
                        json!({"$ref": format!("{V2_REF_PREFIX}{def}")}),
                    );
                }
                responses.insert(r.code.into(), Value::Object(rm));
            }
            m.insert("responses".into(), Value::Object(responses));
            m.insert("schemes".into(), json!(["https"]));
            m.insert("tags".into(), json!([self.tag()]));
            if let Some(a) = o.action {
                m.insert("x-kubernetes-action".into(), a.into());
            }
            if let Some(g) = &o.gvk {
                m.insert("x-kubernetes-group-version-kind".into(), gvk_ext(g));
            }
            item.insert(o.method.into(), Value::Object(m));
        }
        if !self.params.is_empty() {
            item.insert(
                "parameters".into(),
                self.params.iter().map(param_v2).collect(),
            );
        }
        Value::Object(item)
    }

    fn tag(&self) -> String {
        // The tag is derived from the path so that root items (which have no kind) get one too.
        let mut segments = self.path.trim_start_matches('/').split('/');
        match segments.next() {
            Some("api") => tag("", segments.next().unwrap_or_default()),
            _ => {
                let group = segments.next().unwrap_or_default();
                let version = segments.next().unwrap_or_default();
                tag(group, version)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_naming_follows_upstream() {
        assert_eq!(group_ident(""), "Core");
        assert_eq!(
            group_ident("rbac.authorization.k8s.io"),
            "RbacAuthorization"
        );
        assert_eq!(group_ident("stable.example.com"), "StableExampleCom");
        assert_eq!(tag("discovery.k8s.io", "v1"), "discovery_v1");
        assert_eq!(tag("", "v1"), "core_v1");
        assert_eq!(article("Service"), " a ");
        assert_eq!(article("Event"), " an ");
        assert_eq!(article("Endpoints"), " ");
        assert_eq!(article("IngressClass"), " an ");
    }
}
