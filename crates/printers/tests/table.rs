use chrono::{DateTime, TimeZone, Utc};
use printers::{
    column_definitions, human_duration, row_cells, single_row_table, table, table_with,
    watch_event_table, IncludeObject, PrintError, TableListMeta,
};
use serde_json::{json, Value};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 5, 1, 12, 0, 0).unwrap()
}

fn service(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": "default", "resourceVersion": "42",
                     "uid": "u-1", "labels": {"app": "web"}, "creationTimestamp": "2025-05-01T11:00:00Z"},
        "spec": {"type": "NodePort", "clusterIP": "10.96.0.20", "clusterIPs": ["10.96.0.20"],
                 "selector": {"app": "web"},
                 "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}]},
        "status": {"loadBalancer": {}}
    })
}

fn names(resource: &str) -> Vec<(String, String, i64)> {
    column_definitions(resource)
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["type"].as_str().unwrap().to_string(),
                c["priority"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn headers(resource: &str) -> Vec<String> {
    names(resource).into_iter().map(|(n, _, _)| n).collect()
}

#[test]
fn column_names_per_resource() {
    assert_eq!(
        headers("services"),
        [
            "Name",
            "Type",
            "Cluster-IP",
            "External-IP",
            "Port(s)",
            "Age",
            "Selector"
        ]
    );
    assert_eq!(
        headers("pods"),
        [
            "Name",
            "Ready",
            "Status",
            "Restarts",
            "Age",
            "IP",
            "Node",
            "Nominated Node",
            "Readiness Gates"
        ]
    );
    assert_eq!(
        headers("nodes"),
        [
            "Name",
            "Status",
            "Roles",
            "Age",
            "Version",
            "Internal-IP",
            "External-IP",
            "OS-Image",
            "Kernel-Version",
            "Container-Runtime"
        ]
    );
    assert_eq!(headers("namespaces"), ["Name", "Status", "Age"]);
    assert_eq!(headers("endpoints"), ["Name", "Endpoints", "Age"]);
    assert_eq!(
        headers("endpointslices"),
        ["Name", "AddressType", "Ports", "Endpoints", "Age"]
    );
    assert_eq!(
        headers("events"),
        [
            "Last Seen",
            "Type",
            "Reason",
            "Object",
            "Subobject",
            "Source",
            "Message",
            "First Seen",
            "Count",
            "Name"
        ]
    );
    assert_eq!(headers("leases"), ["Name", "Holder", "Age"]);
    assert_eq!(headers("servicecidrs"), ["Name", "CIDRs", "Age"]);
    assert_eq!(headers("ipaddresses"), ["Name", "ParentRef"]);
    assert_eq!(headers("configmaps"), ["Name", "Created At"]);
}

#[test]
fn priorities_types_and_formats() {
    let svc = names("services");
    assert!(svc[..6].iter().all(|(_, t, p)| t == "string" && *p == 0));
    assert_eq!(svc[6].2, 1);
    let pods = names("pods");
    assert_eq!(
        pods.iter().map(|c| c.2).collect::<Vec<_>>(),
        [0, 0, 0, 0, 0, 1, 1, 1, 1]
    );
    assert_eq!(
        names("events").iter().map(|c| c.2).collect::<Vec<_>>(),
        [0, 0, 0, 0, 1, 1, 0, 1, 1, 1]
    );
    assert_eq!(names("configmaps")[1].1, "date");

    let cols = column_definitions("services");
    assert_eq!(cols[0]["format"], "name");
    assert_eq!(cols[1]["format"], "");
    // Key order follows the Go struct.
    let keys: Vec<&str> = cols[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["name", "type", "format", "description", "priority"]);
    assert!(cols[0]["description"]
        .as_str()
        .unwrap()
        .starts_with("Name must be unique within a namespace."));
    assert_eq!(
        column_definitions("events")[9]["format"],
        "name",
        "event Name column keeps format name at priority 1"
    );
}

#[test]
fn every_printer_has_one_cell_per_column() {
    let obj = json!({"metadata": {"name": "x", "creationTimestamp": "2025-05-01T11:00:00Z"}});
    for resource in [
        "services",
        "pods",
        "nodes",
        "namespaces",
        "endpoints",
        "endpointslices",
        "events",
        "leases",
        "servicecidrs",
        "configmaps",
    ] {
        assert_eq!(
            row_cells(resource, &obj, now()).len(),
            column_definitions(resource).len(),
            "{resource}"
        );
    }
    // Upstream quirk: an age cell without an Age column.
    assert_eq!(row_cells("ipaddresses", &obj, now()).len(), 3);
}

#[test]
fn list_table_with_partial_metadata() {
    let t = table(
        "services",
        &[service("web"), service("api")],
        IncludeObject::Metadata,
        "1234",
        Some("token"),
        now(),
    );
    let keys: Vec<&str> = t.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "kind",
            "apiVersion",
            "metadata",
            "columnDefinitions",
            "rows"
        ]
    );
    assert_eq!(t["kind"], "Table");
    assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(
        t["metadata"],
        json!({"resourceVersion": "1234", "continue": "token"})
    );
    assert_eq!(t["columnDefinitions"].as_array().unwrap().len(), 7);
    let rows = t["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows[0]["cells"],
        json!([
            "web",
            "NodePort",
            "10.96.0.20",
            "<none>",
            "80:30080/TCP",
            "60m",
            "app=web"
        ])
    );
    assert_eq!(
        rows[1]["object"],
        json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": service("api")["metadata"].clone()
        })
    );
    assert!(rows[0].get("conditions").is_none());
}

#[test]
fn include_object_variants() {
    let mut bare = service("web");
    bare.as_object_mut().unwrap().remove("kind");
    let full = table("services", &[bare], IncludeObject::Object, "", None, now());
    let object = &full["rows"][0]["object"];
    assert_eq!(object["kind"], "Service");
    assert_eq!(object["apiVersion"], "v1");
    assert_eq!(object["spec"]["type"], "NodePort");
    assert_eq!(full["metadata"], json!({}));

    let none = table(
        "services",
        &[service("web")],
        IncludeObject::None,
        "1",
        None,
        now(),
    );
    assert_eq!(none["rows"][0]["object"], Value::Null);
    assert!(none["rows"][0].as_object().unwrap().contains_key("object"));
}

#[test]
fn include_object_query_parsing() {
    assert_eq!(IncludeObject::from_query(None), Ok(IncludeObject::Metadata));
    assert_eq!(
        IncludeObject::from_query(Some("")),
        Ok(IncludeObject::Metadata)
    );
    assert_eq!(
        IncludeObject::from_query(Some("Object")),
        Ok(IncludeObject::Object)
    );
    assert_eq!(
        IncludeObject::from_query(Some("None")),
        Ok(IncludeObject::None)
    );
    let err = IncludeObject::from_query(Some("All")).unwrap_err();
    assert_eq!(err, PrintError::InvalidIncludeObject("All".into()));
    assert_eq!(
        err.to_string(),
        "Unable to convert to Table as requested: includeObject: Invalid value: \"All\": must be 'Metadata', 'Object', 'None', or empty"
    );
    assert_eq!(IncludeObject::default(), IncludeObject::Metadata);
}

#[test]
fn single_object_and_watch_tables() {
    let t = single_row_table("services", &service("web"), IncludeObject::Metadata, now());
    assert_eq!(t["metadata"], json!({"resourceVersion": "42"}));
    assert_eq!(t["columnDefinitions"].as_array().unwrap().len(), 7);
    assert_eq!(t["rows"].as_array().unwrap().len(), 1);

    let later = watch_event_table(
        "services",
        &service("web"),
        IncludeObject::Metadata,
        false,
        now(),
    );
    assert_eq!(later["columnDefinitions"], Value::Null);
    assert_eq!(later["rows"][0]["cells"][0], "web");
}

#[test]
fn finished_pods_carry_row_conditions() {
    let pod = json!({
        "metadata": {"name": "job-x", "creationTimestamp": "2025-05-01T11:00:00Z"},
        "spec": {"containers": [{"name": "main"}]},
        "status": {"phase": "Succeeded", "containerStatuses": [
            {"name": "main", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}
    });
    let t = table("pods", &[pod], IncludeObject::None, "9", None, now());
    let row = t["rows"][0].as_object().unwrap();
    let keys: Vec<&str> = row.keys().map(String::as_str).collect();
    assert_eq!(keys, ["cells", "conditions", "object"]);
    assert_eq!(
        row["conditions"],
        json!([{"type": "Completed", "status": "True", "reason": "Succeeded",
                "message": "The pod has completed successfully."}])
    );
    assert_eq!(row["cells"][2], "Completed");
}

#[test]
fn remaining_item_count_and_empty_list() {
    let t = table_with(
        "configmaps",
        &[],
        IncludeObject::Metadata,
        TableListMeta {
            resource_version: "7",
            continue_token: Some(""),
            remaining_item_count: Some(3),
        },
        true,
        now(),
    );
    assert_eq!(
        t["metadata"],
        json!({"resourceVersion": "7", "remainingItemCount": 3})
    );
    assert_eq!(t["rows"], json!([]));
    assert_eq!(
        t["columnDefinitions"][1]["description"]
            .as_str()
            .unwrap()
            .lines()
            .next(),
        Some("CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.")
    );
}

#[test]
fn human_duration_is_public() {
    assert_eq!(human_duration(chrono::Duration::seconds(200)), "3m20s");
    assert_eq!(
        human_duration(chrono::Duration::hours(51)),
        "2d3h",
        "51h = 2 days 3 hours"
    );
    assert_eq!(human_duration(chrono::Duration::days(3650)), "10y");
}
