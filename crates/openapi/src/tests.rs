use super::*;
use serde_json::json;

const READ_WRITE: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

fn served() -> Vec<ServedResource> {
    let r = |group, version, kind, plural, namespaced, subresources| ServedResource {
        group,
        version,
        kind,
        plural,
        namespaced,
        subresources,
        verbs: READ_WRITE,
    };
    vec![
        r("", "v1", "Service", "services", true, &["status"]),
        r("", "v1", "Pod", "pods", true, &["status"]),
        r("", "v1", "Node", "nodes", false, &["status"]),
        r("", "v1", "Namespace", "namespaces", false, &["status"]),
        r("", "v1", "Endpoints", "endpoints", true, &[]),
        r("", "v1", "Event", "events", true, &[]),
        r(
            "discovery.k8s.io",
            "v1",
            "EndpointSlice",
            "endpointslices",
            true,
            &[],
        ),
        r("coordination.k8s.io", "v1", "Lease", "leases", true, &[]),
        r(
            "networking.k8s.io",
            "v1",
            "ServiceCIDR",
            "servicecidrs",
            false,
            &["status"],
        ),
        r(
            "networking.k8s.io",
            "v1",
            "IPAddress",
            "ipaddresses",
            false,
            &[],
        ),
    ]
}

fn core_v1() -> Value {
    OpenApi::new(&served())
        .v3_group_version("", "v1")
        .expect("core v1 is served")
}

/// Follows a `$ref` (bare or inside a one-element `allOf`) to the named component schema.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    let r = schema
        .get("$ref")
        .or_else(|| {
            schema
                .get("allOf")
                .and_then(|a| a.get(0))
                .and_then(|a| a.get("$ref"))
        })
        .and_then(Value::as_str);
    match r.and_then(|r| r.strip_prefix("#/components/schemas/")) {
        Some(name) => &doc["components"]["schemas"][name],
        None => schema,
    }
}

fn all_refs(doc: &Value) -> Vec<String> {
    let mut out = Vec::new();
    schema::visit_refs(doc, &mut |r| out.push(r.to_owned()));
    out
}

fn assert_refs_resolve_v3(doc: &Value) {
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let refs = all_refs(doc);
    assert!(!refs.is_empty());
    for r in refs {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("v3 ref with wrong prefix: {r}"));
        assert!(schemas.contains_key(name), "dangling ref {r}");
    }
}

/// OpenAPI 3.0 forbids `$ref` siblings and draft-2020 constructs.
fn assert_openapi30_shape(schemas: &Value) {
    for schema in schemas.as_object().unwrap().values() {
        schema::walk_schemas(schema, &mut |map| {
            if map.contains_key("$ref") {
                assert_eq!(map.len(), 1, "$ref with siblings: {map:?}");
            }
            for k in ["$schema", "$defs", "const", "examples", "prefixItems"] {
                assert!(!map.contains_key(k), "{k} in {map:?}");
            }
            if let Some(t) = map.get("type") {
                assert!(t.is_string(), "non-string type: {map:?}");
            }
        });
    }
}

#[test]
fn service_schema_has_gvk_and_ports_resolve_to_service_port() {
    let doc = core_v1();
    let service = &doc["components"]["schemas"]["io.k8s.api.core.v1.Service"];
    assert_eq!(
        service["x-kubernetes-group-version-kind"],
        json!([{"group": "", "kind": "Service", "version": "v1"}])
    );
    assert!(service["description"]
        .as_str()
        .unwrap()
        .starts_with("Service is a named abstraction"));
    // Upstream does not require metadata on Service; k8s-openapi does.
    assert!(service.get("required").is_none());

    let spec = resolve(&doc, &service["properties"]["spec"]);
    assert!(spec["description"]
        .as_str()
        .unwrap()
        .starts_with("ServiceSpec"));
    let ports = &spec["properties"]["ports"];
    assert_eq!(ports["type"], "array");
    assert!(ports["description"]
        .as_str()
        .unwrap()
        .contains("list of ports"));
    assert_eq!(
        ports["items"]["$ref"],
        "#/components/schemas/io.k8s.api.core.v1.ServicePort"
    );
    let port = resolve(&doc, &ports["items"]);
    assert_eq!(
        port["description"],
        "ServicePort contains information on service's port."
    );
    assert_eq!(port["properties"]["port"]["type"], "integer");
    assert_eq!(port["properties"]["port"]["format"], "int32");
    assert!(port["properties"]["port"]["description"].is_string());
    assert_eq!(port["required"], json!(["port"]));
    let target = &port["properties"]["targetPort"];
    assert!(target["description"]
        .as_str()
        .unwrap()
        .starts_with("Number or name"));
    assert_eq!(
        resolve(&doc, target)["format"],
        "int-or-string",
        "IntOrString as upstream"
    );
}

#[test]
fn patch_operations_carry_field_validation_and_gvk() {
    let doc = core_v1();
    for path in [
        "/api/v1/namespaces/{namespace}/services/{name}",
        "/api/v1/namespaces/{namespace}/services/{name}/status",
    ] {
        let patch = &doc["paths"][path]["patch"];
        assert_eq!(patch["x-kubernetes-action"], "patch", "{path}");
        assert_eq!(
            patch["x-kubernetes-group-version-kind"],
            json!({"group": "", "kind": "Service", "version": "v1"})
        );
        let names: Vec<&str> = patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["dryRun", "fieldManager", "fieldValidation", "force"],
            "{path}"
        );
        let content = patch["requestBody"]["content"].as_object().unwrap();
        assert!(content.contains_key("application/strategic-merge-patch+json"));
        assert!(content.contains_key("application/apply-patch+yaml"));
    }
    let post = &doc["paths"]["/api/v1/namespaces/{namespace}/services"]["post"];
    assert!(post["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "fieldValidation" && p["in"] == "query"));
    assert_eq!(post["operationId"], "createCoreV1NamespacedService");
    let put = &doc["paths"]["/api/v1/namespaces/{namespace}/services/{name}"]["put"];
    assert_eq!(put["operationId"], "replaceCoreV1NamespacedService");
    assert_eq!(
        doc["paths"]["/api/v1/services"]["get"]["operationId"],
        "listCoreV1ServiceForAllNamespaces"
    );
    assert_eq!(
        doc["paths"]["/api/v1/nodes/{name}"]["delete"]["operationId"],
        "deleteCoreV1Node"
    );
    assert_eq!(
        doc["paths"]["/api/v1/namespaces/{namespace}/endpoints"]["delete"]["description"],
        "delete collection of Endpoints"
    );
}

/// Replays kubectl's `QueryParamVerifierV3`: the first PATCH operation with the GVK decides.
fn kubectl_supports_field_validation(doc: &Value, group: &str, version: &str, kind: &str) -> bool {
    let want = json!({"group": group, "kind": kind, "version": version});
    for item in doc["paths"].as_object().unwrap().values() {
        let Some(patch) = item.get("patch") else {
            continue;
        };
        if patch["x-kubernetes-group-version-kind"] != want {
            continue;
        }
        return patch["parameters"]
            .as_array()
            .is_some_and(|ps| ps.iter().any(|p| p["name"] == "fieldValidation"));
    }
    false
}

#[test]
fn every_served_kind_supports_server_side_field_validation() {
    let api = OpenApi::new(&served());
    for r in served() {
        let doc = api.v3_group_version(r.group, r.version).unwrap();
        assert!(
            kubectl_supports_field_validation(&doc, r.group, r.version, r.kind),
            "{}",
            r.kind
        );
    }
}

/// Replays kubectl 1.32 explain's template: GVK from the resource's path operations, then the
/// component schema whose `x-kubernetes-group-version-kind` contains it, then the field path.
fn explain<'a>(
    doc: &'a Value,
    group: &str,
    version: &str,
    plural: &str,
    fields: &[&str],
) -> &'a Value {
    let prefix = if group.is_empty() {
        "/api".to_owned()
    } else {
        format!("/apis/{group}")
    };
    let candidates = [
        format!("{prefix}/{version}/{plural}"),
        format!("{prefix}/{version}/{plural}/{{name}}"),
        format!("{prefix}/{version}/namespaces/{{namespace}}/{plural}"),
        format!("{prefix}/{version}/namespaces/{{namespace}}/{plural}/{{name}}"),
    ];
    let gvk = candidates
        .iter()
        .filter_map(|p| doc["paths"].get(p))
        .flat_map(|item| {
            ["get", "post", "put", "patch", "delete"]
                .into_iter()
                .filter_map(move |m| item.get(m))
        })
        .find_map(|op| op.get("x-kubernetes-group-version-kind"))
        .expect("GVR not found in OpenAPI schema");
    let mut schema = doc["components"]["schemas"]
        .as_object()
        .unwrap()
        .values()
        .find(|s| {
            s["x-kubernetes-group-version-kind"]
                .as_array()
                .is_some_and(|l| l.contains(gvk))
        })
        .expect("GVK not found in OpenAPI schema");
    for f in fields {
        let mut resolved = resolve(doc, schema);
        while resolved.get("properties").is_none() {
            resolved = resolve(doc, resolved.get("items").expect("no field"));
        }
        schema = &resolved["properties"][*f];
        assert!(!schema.is_null(), "field {f} does not exist");
    }
    schema
}

#[test]
fn explain_walk_finds_the_documented_fields() {
    let api = OpenApi::new(&served());
    let core = api.v3_group_version("", "v1").unwrap();
    let ports = explain(&core, "", "v1", "services", &["spec", "ports"]);
    assert!(ports["description"].as_str().unwrap().contains("ports"));
    let pod = explain(&core, "", "v1", "pods", &[]);
    assert!(pod["description"]
        .as_str()
        .unwrap()
        .starts_with("Pod is a collection"));
    let containers = explain(&core, "", "v1", "pods", &["spec", "containers", "ports"]);
    assert_eq!(containers["type"], "array");

    let discovery = api.v3_group_version("discovery.k8s.io", "v1").unwrap();
    let endpoints = explain(
        &discovery,
        "discovery.k8s.io",
        "v1",
        "endpointslices",
        &["endpoints"],
    );
    assert_eq!(
        endpoints["items"]["$ref"],
        "#/components/schemas/io.k8s.api.discovery.v1.Endpoint"
    );
    let addresses = explain(
        &discovery,
        "discovery.k8s.io",
        "v1",
        "endpointslices",
        &["endpoints", "addresses"],
    );
    assert!(addresses["description"].is_string());
}

#[test]
fn every_ref_resolves_and_documents_are_openapi30_shaped() {
    let api = OpenApi::new(&served());
    let gvs = api.group_versions();
    assert_eq!(gvs.len(), 4);
    for (g, v) in gvs {
        let doc = api.v3_group_version(&g, &v).unwrap();
        assert_eq!(doc["openapi"], "3.0.0");
        assert_refs_resolve_v3(&doc);
        assert_openapi30_shape(&doc["components"]["schemas"]);
        // Every kind and list kind of this group-version is findable by GVK.
        for r in served().iter().filter(|r| r.group == g && r.version == v) {
            for kind in [r.kind.to_owned(), format!("{}List", r.kind)] {
                let gvk = json!({"group": r.group, "kind": kind, "version": r.version});
                assert!(
                    doc["components"]["schemas"]
                        .as_object()
                        .unwrap()
                        .values()
                        .any(|s| s["x-kubernetes-group-version-kind"]
                            .as_array()
                            .is_some_and(|l| l.contains(&gvk))),
                    "{gvk}"
                );
            }
        }
    }
    assert!(api.v3_group_version("apps", "v1").is_none());
}

#[test]
fn list_kinds_and_meta_types() {
    let doc = core_v1();
    let schemas = &doc["components"]["schemas"];
    let list = &schemas["io.k8s.api.core.v1.ServiceList"];
    assert_eq!(list["description"], "ServiceList holds a list of services.");
    assert_eq!(list["required"], json!(["items"]));
    assert_eq!(
        list["properties"]["items"]["items"]["$ref"],
        "#/components/schemas/io.k8s.api.core.v1.Service"
    );
    assert_eq!(
        list["properties"]["metadata"]["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"
    );
    for name in [
        "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
        "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions",
        "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList",
    ] {
        assert!(
            schemas[name]["x-kubernetes-group-version-kind"].is_array(),
            "{name}"
        );
    }
    let time = &schemas["io.k8s.apimachinery.pkg.apis.meta.v1.Time"];
    assert_eq!(
        (&time["type"], &time["format"]),
        (&json!("string"), &json!("date-time"))
    );
    let quantity = &schemas["io.k8s.apimachinery.pkg.api.resource.Quantity"];
    assert_eq!(
        quantity["oneOf"],
        json!([{"type": "string"}, {"type": "number"}])
    );
    // Upstream keeps metadata required on core Event only.
    let event = &schemas["io.k8s.api.core.v1.Event"];
    assert!(event["required"]
        .as_array()
        .unwrap()
        .contains(&json!("metadata")));
    let gvks = OpenApi::new(&served())
        .v3_group_version("discovery.k8s.io", "v1")
        .unwrap()["components"]["schemas"]["io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"]
        ["x-kubernetes-group-version-kind"]
        .clone();
    assert!(gvks
        .as_array()
        .unwrap()
        .contains(&json!({"group": "discovery.k8s.io", "kind": "DeleteOptions", "version": "v1"})));
}

#[test]
fn index_points_at_each_group_version_with_stable_hash() {
    let a = OpenApi::new(&served());
    let index = a.v3_index();
    let paths = index["paths"].as_object().unwrap();
    let keys: Vec<&str> = paths.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "api/v1",
            "apis/coordination.k8s.io/v1",
            "apis/discovery.k8s.io/v1",
            "apis/networking.k8s.io/v1"
        ]
    );
    let url = paths["api/v1"]["serverRelativeURL"].as_str().unwrap();
    assert!(url.starts_with("/openapi/v3/api/v1?hash="), "{url}");

    // Same input, rebuilt from scratch and in another order: same hashes.
    let mut reversed = served();
    reversed.reverse();
    let b = OpenApi::new(&reversed);
    assert_eq!(b.v3_index(), index);
    let published = b.publish();
    assert_eq!(published.v3_index, index.to_string());
    let core = &published.v3["api/v1"];
    assert!(url.ends_with(&core.hash));
    assert_eq!(content_hash(core.body.as_bytes()), core.hash);
}

#[test]
fn free_functions_match_the_catalog() {
    let resources = served();
    assert_eq!(v3_index(&resources), OpenApi::new(&resources).v3_index());
    assert!(v3_group_version(&resources, "coordination.k8s.io", "v1").is_some());
    assert!(v3_group_version(&resources, "coordination.k8s.io", "v2").is_none());
    let (name, schema) = kind_schema("networking.k8s.io", "v1", "IPAddress").unwrap();
    assert_eq!(name, "io.k8s.api.networking.v1.IPAddress");
    assert_eq!(
        schema["x-kubernetes-group-version-kind"],
        json!([{"group": "networking.k8s.io", "kind": "IPAddress", "version": "v1"}])
    );
    let (name, schema) = kind_schema("", "v1", "PodList").unwrap();
    assert_eq!(name, "io.k8s.api.core.v1.PodList");
    assert_eq!(schema["description"], "PodList is a list of Pods.");
    assert!(kind_schema("", "v1", "Nope").is_none());
}

#[test]
fn v2_uses_definitions_and_keeps_ref_siblings() {
    let doc = OpenApi::new(&served()).with_info_version("v1.33.0").v2();
    assert_eq!(doc["swagger"], "2.0");
    assert_eq!(doc["info"]["version"], "v1.33.0");
    let defs = doc["definitions"].as_object().unwrap();
    for r in all_refs(&doc) {
        let name = r
            .strip_prefix("#/definitions/")
            .unwrap_or_else(|| panic!("v2 ref with wrong prefix: {r}"));
        assert!(defs.contains_key(name), "dangling ref {r}");
    }
    let service = &defs["io.k8s.api.core.v1.Service"];
    assert_eq!(
        service["properties"]["spec"]["$ref"],
        "#/definitions/io.k8s.api.core.v1.ServiceSpec"
    );
    assert!(service["properties"]["spec"]["description"].is_string());
    assert_eq!(
        defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["type"],
        "string"
    );
    let patch = &doc["paths"]
        ["/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices/{name}"]["patch"];
    let params = patch["parameters"].as_array().unwrap();
    assert_eq!(params[0]["in"], "body");
    assert!(params.iter().any(|p| p["name"] == "fieldValidation"));
    assert_eq!(patch["consumes"][0], "application/apply-patch+yaml");
}

#[test]
fn custom_resources_join_the_documents() {
    let mut api = OpenApi::new(&served());
    let crd = CustomResource {
        group: "stable.example.com".into(),
        version: "v1".into(),
        kind: "CronTab".into(),
        plural: "crontabs".into(),
        namespaced: true,
        subresources: vec!["status".into()],
        verbs: READ_WRITE.iter().map(|v| (*v).to_owned()).collect(),
        schema: Some(json!({
            "type": "object",
            "description": "A cron tab.",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {
                        "cronSpec": {"type": "string", "description": "When to run."},
                        "replicas": {"type": ["integer", "null"], "format": "int32"},
                    },
                },
            },
        })),
    };
    api.with_custom(crd.clone()).unwrap();
    assert_eq!(
        api.with_custom(crd.clone()),
        Err(Error::DuplicateKind {
            group_version: "stable.example.com/v1".into(),
            kind: "CronTab".into()
        })
    );
    let bad = CustomResource {
        kind: "Other".into(),
        plural: "others".into(),
        schema: Some(json!("nope")),
        ..crd
    };
    assert!(matches!(
        api.with_custom(bad),
        Err(Error::SchemaNotObject { .. })
    ));

    let doc = api.v3_group_version("stable.example.com", "v1").unwrap();
    assert_refs_resolve_v3(&doc);
    assert_openapi30_shape(&doc["components"]["schemas"]);
    let schema = &doc["components"]["schemas"]["com.example.stable.v1.CronTab"];
    assert_eq!(schema["description"], "A cron tab.");
    assert_eq!(
        schema["properties"]["spec"]["properties"]["replicas"],
        json!({"type": "integer", "format": "int32", "nullable": true})
    );
    assert!(kubectl_supports_field_validation(
        &doc,
        "stable.example.com",
        "v1",
        "CronTab"
    ));
    let cron = explain(
        &doc,
        "stable.example.com",
        "v1",
        "crontabs",
        &["spec", "cronSpec"],
    );
    assert_eq!(cron["description"], "When to run.");
    assert_eq!(
        doc["paths"]["/apis/stable.example.com/v1/namespaces/{namespace}/crontabs"]["get"]
            ["operationId"],
        "listStableExampleComV1NamespacedCronTab"
    );
    assert!(api.v3_index()["paths"]
        .get("apis/stable.example.com/v1")
        .is_some());
    assert!(api.v2()["definitions"]
        .get("com.example.stable.v1.CronTabList")
        .is_some());
}

#[test]
fn unknown_builtin_kind_gets_a_permissive_schema() {
    let api = OpenApi::new(&[ServedResource {
        group: "apps",
        version: "v1",
        kind: "Deployment",
        plural: "deployments",
        namespaced: true,
        subresources: &[],
        verbs: READ_WRITE,
    }]);
    let doc = api.v3_group_version("apps", "v1").unwrap();
    assert_refs_resolve_v3(&doc);
    let s = &doc["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"];
    assert_eq!(s["x-kubernetes-preserve-unknown-fields"], true, "{s}");
    assert!(kubectl_supports_field_validation(
        &doc,
        "apps",
        "v1",
        "Deployment"
    ));
}

#[test]
fn patch_meta_hook_sets_extensions() {
    let mut api = OpenApi::new(&served());
    let unmatched = api.apply_patch_meta([
        PatchMeta {
            definition: "io.k8s.api.core.v1.ServiceSpec",
            field: "ports",
            strategy: "merge",
            merge_key: Some("port"),
        },
        PatchMeta {
            definition: "io.k8s.api.core.v1.ObjectMeta",
            field: "finalizers",
            strategy: "merge",
            merge_key: None,
        },
        PatchMeta {
            definition: "io.k8s.api.apps.v1.DeploymentSpec",
            field: "template",
            strategy: "merge",
            merge_key: None,
        },
    ]);
    assert_eq!(
        unmatched.len(),
        2,
        "ObjectMeta is in meta, DeploymentSpec not served"
    );
    let doc = api.v3_group_version("", "v1").unwrap();
    let ports =
        &doc["components"]["schemas"]["io.k8s.api.core.v1.ServiceSpec"]["properties"]["ports"];
    assert_eq!(ports["x-kubernetes-patch-strategy"], "merge");
    assert_eq!(ports["x-kubernetes-patch-merge-key"], "port");
}

/// Sizes and timings for the report; run with `--nocapture`.
#[test]
fn sizes_and_timings() {
    let start = std::time::Instant::now();
    let api = OpenApi::new(&served());
    let built = start.elapsed();
    let published = api.publish();
    let total = start.elapsed();
    println!("catalog build: {built:?}, build + publish all: {total:?}");
    println!("v2: {} bytes", published.v2.len());
    println!("v3 index: {} bytes", published.v3_index.len());
    for (k, d) in &published.v3 {
        println!("v3 {k}: {} bytes", d.body.len());
    }
}

/// Writes the published documents to `$OPENAPI_DUMP_DIR` for checks with a real kubectl:
/// `OPENAPI_DUMP_DIR=/tmp/oa cargo test -p openapi -- --ignored dump_documents`.
#[test]
#[ignore]
fn dump_documents() {
    let dir = std::path::PathBuf::from(std::env::var("OPENAPI_DUMP_DIR").unwrap());
    let published = OpenApi::new(&served()).publish();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("v2.json"), &published.v2).unwrap();
    std::fs::write(dir.join("v3.json"), &published.v3_index).unwrap();
    for (key, doc) in &published.v3 {
        let file = dir.join(format!("v3-{}.json", key.replace('/', "_")));
        std::fs::write(file, &doc.body).unwrap();
    }
}
