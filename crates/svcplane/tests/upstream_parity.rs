//! Behaviour found to differ from kube-apiserver v1.36 (run side by side with the same kubectl
//! commands), pinned to the text upstream printed. Each test drives the real binary with kubectl.

mod common;

use common::ApiServer;

fn svc(name: &str, spec: &str) -> String {
    format!("apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n{spec}\n")
}

/// `kubectl create -f -` that must fail; returns stderr.
fn create_err(s: &ApiServer, manifest: &str) -> String {
    let out = s.kubectl_stdin(&["create", "-f", "-"], manifest);
    assert!(
        !out.status.success(),
        "unexpectedly created: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn create_ok(s: &ApiServer, manifest: &str) {
    let out = s.kubectl_stdin(&["create", "-f", "-"], manifest);
    assert!(
        out.status.success(),
        "create failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn assert_has(haystack: &str, needle: &str) {
    assert!(
        haystack.contains(needle),
        "expected {needle:?} in:\n{haystack}"
    );
}

#[test]
fn service_names_are_rfc1123_labels() {
    // RelaxedServiceNameValidation is beta and on in v1.36: names may start with a digit.
    let s = ApiServer::start();
    s.kubectl_ok(&["create", "service", "clusterip", "1abc", "--tcp=80"]);
    s.kubectl_ok(&["create", "service", "clusterip", "1-2", "--tcp=80"]);
    let err = s.kubectl_err(&["create", "service", "clusterip", "a.b", "--tcp=80"]);
    assert_has(
        &err,
        r#"Service "a.b" is invalid: metadata.name: Invalid value: "a.b": must not contain dots"#,
    );
    let err = create_err(&s, &svc("Bad_Name", "  ports: [{port: 80}]"));
    assert_has(
        &err,
        r#"The Service "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"#,
    );
}

#[test]
fn traffic_distribution_accepts_prefer_same_zone_and_node() {
    let s = ApiServer::start();
    let err = create_err(
        &s,
        &svc("tdp", "  trafficDistribution: Foo\n  ports: [{port: 80}]"),
    );
    assert_has(
        &err,
        r#"The Service "tdp" is invalid: spec.trafficDistribution: Unsupported value: "Foo": supported values: "PreferClose", "PreferSameZone", "PreferSameNode""#,
    );
    create_ok(
        &s,
        &svc(
            "zone",
            "  trafficDistribution: PreferSameZone\n  ports: [{port: 80}]",
        ),
    );
    create_ok(
        &s,
        &svc(
            "node",
            "  trafficDistribution: PreferSameNode\n  ports: [{port: 80}]",
        ),
    );
}

#[test]
fn allocation_errors_come_first_with_upstream_texts() {
    let s = ApiServer::start();
    // Outside the service CIDR, or its network address: the IPAddress allocator's wording.
    for (name, ip) in [("outside", "192.168.1.1"), ("net", "10.96.0.0")] {
        let err = create_err(
            &s,
            &svc(name, &format!("  clusterIP: {ip}\n  ports: [{{port: 80}}]")),
        );
        assert_has(
            &err,
            &format!(
                r#"The Service "{name}" is invalid: spec.clusterIPs: Invalid value: ["{ip}"]: failed to allocate IP {ip}: the provided network does not match the current range"#
            ),
        );
    }
    // A taken IP is reported alone, before a validation error of the same object.
    let err = create_err(
        &s,
        &svc(
            "taken",
            "  clusterIP: 10.96.0.1\n  ports: [{port: 80, protocol: FOO}]",
        ),
    );
    assert_has(
        &err,
        r#"The Service "taken" is invalid: spec.clusterIPs: Invalid value: ["10.96.0.1"]: failed to allocate IP 10.96.0.1: provided IP is already allocated"#,
    );
    assert!(!err.contains("protocol"), "{err}");

    // Node ports: out of range (negative too, which used to be stored), and before validation.
    let err = create_err(
        &s,
        &svc(
            "npneg",
            "  type: NodePort\n  ports: [{port: 80, nodePort: -3}]",
        ),
    );
    assert_has(
        &err,
        r#"The Service "npneg" is invalid: spec.ports[0].nodePort: Invalid value: -3: provided port is not in the valid range. The range of valid ports is 30000-32767"#,
    );
    let err = create_err(
        &s,
        &svc(
            "npbig",
            "  type: NodePort\n  ports: [{name: A_, port: 80, nodePort: 70000}]",
        ),
    );
    assert_has(
        &err,
        r#"The Service "npbig" is invalid: spec.ports[0].nodePort: Invalid value: 70000: provided port is not in the valid range. The range of valid ports is 30000-32767"#,
    );
    // One node port on two port numbers: the second is "already allocated", whatever the protocol.
    for (name, proto) in [("npdup", "TCP"), ("npdup-udp", "UDP")] {
        let err = create_err(
            &s,
            &svc(
                name,
                &format!("  type: NodePort\n  ports: [{{name: a, port: 80, nodePort: 30500}}, {{name: b, port: 81, protocol: {proto}, nodePort: 30500}}]"),
            ),
        );
        assert_has(
            &err,
            &format!(
                r#"The Service "{name}" is invalid: spec.ports[1].nodePort: Invalid value: 30500: provided port is already allocated"#
            ),
        );
    }
    // Health-check node ports the allocator cannot give are internal errors upstream.
    for (name, hc, why) in [
        (
            "hc-range",
            "40000",
            "provided port is not in the valid range. The range of valid ports is 30000-32767",
        ),
        (
            "hc-neg",
            "-1",
            "provided port is not in the valid range. The range of valid ports is 30000-32767",
        ),
        ("hc-same", "30950", "provided port is already allocated"),
    ] {
        let err = create_err(
            &s,
            &svc(
                name,
                &format!("  type: LoadBalancer\n  externalTrafficPolicy: Local\n  healthCheckNodePort: {hc}\n  ports: [{{port: 80, nodePort: 30950}}]"),
            ),
        );
        assert_has(
            &err,
            &format!(
                r#"Error from server (InternalError): error when creating "STDIN": Internal error occurred: failed to allocate requested HealthCheck NodePort {hc}: {why}"#
            ),
        );
    }
    // Nothing of the failed creates stayed allocated.
    create_ok(
        &s,
        &svc(
            "after",
            "  type: NodePort\n  clusterIP: 10.96.0.10\n  ports: [{name: a, port: 80, nodePort: 30500}, {name: b, port: 80, protocol: UDP}]",
        ),
    );
    // TCP and UDP on one port number share the node port.
    let ports = s.kubectl_ok(&[
        "get",
        "svc",
        "after",
        "-o",
        "jsonpath={.spec.ports[*].nodePort}",
    ]);
    assert_eq!(ports.trim(), "30500 30500");
}

#[test]
fn update_with_a_duplicate_node_port_is_a_plain_500() {
    let s = ApiServer::start();
    create_ok(
        &s,
        &svc(
            "np",
            "  type: NodePort\n  ports: [{name: http, port: 80, nodePort: 30080}]",
        ),
    );
    let err = s.kubectl_err(&[
        "patch",
        "svc",
        "np",
        "--type=merge",
        "-p",
        r#"{"spec":{"ports":[{"name":"http","port":80,"nodePort":30778},{"name":"h2","port":81,"nodePort":30778}]}}"#,
    ]);
    assert_eq!(
        err.trim(),
        "Error from server: duplicate nodePort: {TCP 30778}"
    );
    // A changed health-check node port is refused by validation, not by the allocator.
    s.kubectl_ok(&[
        "patch",
        "svc",
        "np",
        "--type=merge",
        "-p",
        r#"{"spec":{"type":"LoadBalancer","externalTrafficPolicy":"Local","healthCheckNodePort":30779}}"#,
    ]);
    let err = s.kubectl_err(&[
        "patch",
        "svc",
        "np",
        "--type=merge",
        "-p",
        r#"{"spec":{"healthCheckNodePort":30080}}"#,
    ]);
    assert_has(
        &err,
        r#"The Service "np" is invalid: spec.healthCheckNodePort: Forbidden: field is immutable"#,
    );
}

#[test]
fn patch_bodies_are_decoded_strictly_and_no_ops_write_nothing() {
    let s = ApiServer::start();
    s.kubectl_ok(&["create", "service", "clusterip", "web", "--tcp=80"]);
    let cases = [
        ("json", r#""x""#, "Error from server (BadRequest): error decoding patch: json: cannot unmarshal string into Go value of type []handlers.jsonPatchOp"),
        ("json", r#"{"a":1}"#, "Error from server (BadRequest): error decoding patch: json: cannot unmarshal object into Go value of type []handlers.jsonPatchOp"),
        ("json", "[1]", "Error from server (BadRequest): error decoding patch: json: cannot unmarshal number into Go value of type handlers.jsonPatchOp"),
        ("json", r#"[{"op":1}]"#, "Error from server (BadRequest): error decoding patch: json: cannot unmarshal number into Go struct field jsonPatchOp.op of type string"),
        ("merge", "[1]", "Error from server (BadRequest): error decoding patch: json: cannot unmarshal array into Go value of type map[string]interface {}"),
        ("merge", r#""x""#, "Error from server (BadRequest): error decoding patch: json: cannot unmarshal string into Go value of type map[string]interface {}"),
        ("merge", "null", "Error from server (BadRequest): Invalid JSON Patch"),
    ];
    for (ty, body, want) in cases {
        let err = s.kubectl_err(&["patch", "svc", "web", &format!("--type={ty}"), "-p", body]);
        assert_eq!(err.trim(), want, "--type={ty} -p {body}");
    }
    let rv = || {
        s.kubectl_ok(&[
            "get",
            "svc",
            "web",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ])
    };
    let before = rv();
    for (ty, body) in [
        ("json", "null"),
        ("json", "[]"),
        ("merge", "{}"),
        ("merge", r#"{"spec":{"sessionAffinity":"None"}}"#),
    ] {
        let out = s.kubectl_ok(&["patch", "svc", "web", &format!("--type={ty}"), "-p", body]);
        assert_eq!(
            out.trim(),
            "service/web patched (no change)",
            "--type={ty} -p {body}"
        );
    }
    assert_eq!(rv(), before, "a no-op patch must not write");
    let out = s.kubectl_ok(&[
        "patch",
        "svc",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"sessionAffinity":"ClientIP"}}"#,
    ]);
    assert_eq!(out.trim(), "service/web patched");
    assert_ne!(rv(), before);
}

#[test]
fn unknown_field_validation_directives_are_refused() {
    let s = ApiServer::start();
    let body = r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"fv"},"spec":{"ports":[{"port":80}]}}"#;
    let raw = |verb: &str, path: &str| {
        let out = s.kubectl_stdin(&[verb, "--raw", path, "-f", "-"], body);
        assert!(!out.status.success(), "{verb} {path} was accepted");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert_has(
        &raw(
            "create",
            "/api/v1/namespaces/default/services?fieldValidation=Bogus",
        ),
        r#"The CreateOptions "" is invalid: fieldValidation: Unsupported value: "Bogus": supported values: "", "Ignore", "Strict", "Warn""#,
    );
    // Spelled exactly: upstream refuses lower case too.
    assert_has(
        &raw(
            "replace",
            "/api/v1/namespaces/default/services/kubernetes?fieldValidation=warn",
        ),
        r#"The UpdateOptions "" is invalid: fieldValidation: Unsupported value: "warn": supported values: "", "Ignore", "Strict", "Warn""#,
    );
    // Nothing was created, and the valid directives (and none) still work.
    s.kubectl_err(&["get", "svc", "fv"]);
    let out = s.kubectl_stdin(
        &[
            "create",
            "--raw",
            "/api/v1/namespaces/default/services?fieldValidation=Strict",
            "-f",
            "-",
        ],
        body,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
