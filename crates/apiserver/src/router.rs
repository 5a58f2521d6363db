//! Request routing: the Kubernetes REST path layout, verbs from method + query, authentication, content
//! negotiation (objects, Tables, metadata), and per-request metrics.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{header, HeaderMap, Method, StatusCode, Uri};
use serde_json::{json, Value};

use crate::http_util::{bytes_response, json_response, Params, Rendering};
use crate::resources::{self, Resource};
use crate::status::{ApiError, ApiResult};
use crate::{discovery, Server};

/// Largest request body accepted (kube-apiserver's limit is 3 MiB for most objects).
const MAX_BODY: usize = 3 * 1024 * 1024;

pub fn router(srv: Arc<Server>) -> axum::Router {
    axum::Router::new()
        .fallback(handle)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(srv)
}

struct Target {
    res: &'static Resource,
    namespace: Option<String>,
    name: Option<String>,
    sub: Option<String>,
}

enum Route {
    Health,
    Version,
    Metrics,
    ApiVersions,
    GroupList,
    Group(String),
    ResourceList(String, String),
    OpenApiV2,
    OpenApiV3Index,
    OpenApiV3(String, String),
    Object(Target),
}

fn parse_route(path: &str) -> Option<Route> {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (group, version, rest): (&str, &str, &[&str]) = match segs.as_slice() {
        ["healthz" | "livez" | "readyz", ..] => return Some(Route::Health),
        ["version"] => return Some(Route::Version),
        ["metrics"] => return Some(Route::Metrics),
        ["openapi", "v2"] => return Some(Route::OpenApiV2),
        ["openapi", "v3"] => return Some(Route::OpenApiV3Index),
        ["openapi", "v3", "api", v] => return Some(Route::OpenApiV3(String::new(), v.to_string())),
        ["openapi", "v3", "apis", g, v] => {
            return Some(Route::OpenApiV3(g.to_string(), v.to_string()))
        }
        ["api"] => return Some(Route::ApiVersions),
        ["apis"] => return Some(Route::GroupList),
        ["apis", g] => return Some(Route::Group(g.to_string())),
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return None,
    };
    if rest.is_empty() {
        return Some(Route::ResourceList(group.to_string(), version.to_string()));
    }
    // The legacy /watch/ path prefix means ?watch=true; handled by the caller through the flag below.
    let rest = if rest.first() == Some(&"watch") {
        &rest[1..]
    } else {
        rest
    };
    let target =
        |plural: &str, ns: Option<&str>, name: Option<&str>, sub: Option<&str>| -> Option<Route> {
            let res = resources::find(group, version, plural)?;
            if ns.is_some() && !res.namespaced {
                return None;
            }
            Some(Route::Object(Target {
                res,
                namespace: ns.map(str::to_string),
                name: name.map(str::to_string),
                sub: sub.map(str::to_string),
            }))
        };
    match rest {
        ["namespaces", ns, plural]
            if group.is_empty() && matches!(*plural, "status" | "finalize") =>
        {
            target("namespaces", None, Some(ns), Some(plural))
        }
        ["namespaces", ns, plural, tail @ ..] => match tail {
            [] => target(plural, Some(ns), None, None),
            [name] => target(plural, Some(ns), Some(name), None),
            [name, sub] => target(plural, Some(ns), Some(name), Some(sub)),
            _ => None,
        },
        [plural] => target(plural, None, None, None),
        [plural, name] => target(plural, None, Some(name), None),
        [plural, name, sub] => target(plural, None, Some(name), Some(sub)),
        _ => None,
    }
}

fn authorized(srv: &Server, headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| constant_time_eq(t.trim().as_bytes(), srv.token.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn handle(
    State(srv): State<Arc<Server>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let route = parse_route(uri.path());
    let is_watch_path = uri.path().contains("/watch/");
    let public = matches!(route, Some(Route::Health) | Some(Route::Version));
    if !public && !authorized(&srv, &headers) {
        return ApiError::unauthorized().into_response();
    }
    let (verb, resource) = match &route {
        Some(Route::Object(t)) => (verb_of(&method, t, &uri, is_watch_path), t.res.plural),
        _ => (method.as_str().to_lowercase().leak() as &str, ""),
    };
    let (result, warnings) = crate::warnings::collect(async {
        match route {
            None => Err(ApiError::path_not_found()),
            Some(r) => dispatch(srv.clone(), r, method, &uri, &headers, body, is_watch_path).await,
        }
    })
    .await;
    let mut resp = result.unwrap_or_else(IntoResponse::into_response);
    for w in &warnings {
        if let Some(v) = crate::warnings::header_value(w) {
            resp.headers_mut().append(header::WARNING, v);
        }
    }
    if !resource.is_empty() {
        srv.metrics
            .observe(verb, resource, resp.status().as_u16(), started.elapsed());
    }
    tracing::debug!(%uri, status = resp.status().as_u16(), took_ms = started.elapsed().as_secs_f64() * 1e3, "request");
    resp
}

fn verb_of(method: &Method, t: &Target, uri: &Uri, watch_path: bool) -> &'static str {
    let watch = watch_path
        || uri
            .query()
            .is_some_and(|q| q.contains("watch=true") || q.contains("watch=1"));
    match *method {
        Method::GET if watch => "WATCH",
        Method::GET if t.name.is_none() => "LIST",
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE if t.name.is_none() => "DELETECOLLECTION",
        Method::DELETE => "DELETE",
        _ => "OTHER",
    }
}

fn ok_json(v: &Value) -> ApiResult<Response> {
    Ok(json_response(StatusCode::OK, v))
}

async fn dispatch(
    srv: Arc<Server>,
    route: Route,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
    watch_path: bool,
) -> ApiResult<Response> {
    match route {
        Route::Health => Ok((
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "ok",
        )
            .into_response()),
        Route::Version => ok_json(&discovery::version()),
        Route::Metrics => {
            let rev = srv.store.current_revision().await.unwrap_or(0);
            let text = srv.metrics.render(rev, &srv.allocs.usage());
            Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
        }
        Route::ApiVersions => ok_json(&discovery::api_versions(&srv.advertise)),
        Route::GroupList => ok_json(&discovery::api_group_list()),
        Route::Group(g) => discovery::api_group(&g)
            .map_or_else(|| Err(ApiError::path_not_found()), |v| ok_json(&v)),
        Route::ResourceList(g, v) => discovery::resource_list(&g, &v)
            .map_or_else(|| Err(ApiError::path_not_found()), |v| ok_json(&v)),
        Route::OpenApiV2 => Ok(bytes_response(StatusCode::OK, srv.openapi.v2().to_vec())),
        Route::OpenApiV3Index => Ok(bytes_response(
            StatusCode::OK,
            srv.openapi.v3_index().to_vec(),
        )),
        Route::OpenApiV3(g, v) => match srv.openapi.v3_group_version(&g, &v) {
            Some(doc) => Ok(bytes_response(StatusCode::OK, doc.to_vec())),
            None => Err(ApiError::path_not_found()),
        },
        Route::Object(t) => object(srv, t, method, uri, headers, body, watch_path).await,
    }
}

/// The request body as a Value, with the paths of duplicate JSON keys (none for YAML and protobuf).
fn parse_body(body: &[u8], headers: &HeaderMap) -> ApiResult<(Value, Vec<String>)> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    if ct.contains("yaml") {
        return serde_yaml::from_slice(body)
            .map(|v| (v, Vec::new()))
            .map_err(|e| ApiError::bad_request(format!("yaml: {e}")));
    }
    if ct.starts_with("application/vnd.kubernetes.protobuf") {
        return crate::protobuf::decode(body)
            .map(|v| (v, Vec::new()))
            .map_err(|e| match e {
                crate::protobuf::ProtobufError::Kind(_)
                | crate::protobuf::ProtobufError::Field(..) => {
                    ApiError::from_parts(415, "UnsupportedMediaType", e.to_string())
                }
                other => ApiError::bad_request(other.to_string()),
            });
    }
    crate::meta::parse_json_noting_duplicates(body).map_err(|e| {
        ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
    })
}

pub fn partial_metadata(res: &Resource, obj: &Value) -> Value {
    let _ = res;
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or_default(),
    })
}

fn render_one(res: &Resource, obj: Value, rendering: Rendering) -> Value {
    match rendering {
        Rendering::Object => obj,
        Rendering::Table => printers::table(
            res.plural,
            std::slice::from_ref(&obj),
            printers::IncludeObject::Metadata,
            crate::meta::meta_str(&obj, "resourceVersion").unwrap_or_default(),
            None,
            chrono::Utc::now(),
        ),
        Rendering::PartialMetadata => partial_metadata(res, &obj),
    }
}

fn include_object(p: &Params) -> printers::IncludeObject {
    match p.include_object.as_deref() {
        Some("None") => printers::IncludeObject::None,
        Some("Object") => printers::IncludeObject::Object,
        _ => printers::IncludeObject::Metadata,
    }
}

async fn object(
    srv: Arc<Server>,
    t: Target,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
    watch_path: bool,
) -> ApiResult<Response> {
    let p = Params::parse(uri.query()).map_err(ApiError::bad_request)?;
    let rendering = crate::http_util::rendering(headers);
    let res = t.res;
    if res.kind == "Endpoints" {
        // As kube-apiserver says on every request for them since v1.33.
        crate::warnings::add(
            "v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice",
        );
    }
    let ns = t.namespace.as_deref();
    if let Some(sub) = t.sub.as_deref() {
        if !(res.subresources.contains(&sub) || res.kind == "Namespace" && sub == "finalize") {
            return Err(ApiError::path_not_found());
        }
    }
    check_field_validation(&method, &p)?;
    match (method, t.name.as_deref()) {
        (Method::GET, None) if p.watch || watch_path => {
            if ns.is_some() {
                srv.namespace_check(res, ns, false).await.or_else(|e| {
                    if e.code == 404 {
                        Ok(())
                    } else {
                        Err(e)
                    }
                })?;
            }
            srv.clone()
                .watch(res, t.namespace.clone(), p, rendering)
                .await
        }
        (Method::GET, Some(name)) if p.watch || watch_path => {
            // A watch on one object: a name field selector over the collection.
            let mut p = p;
            p.field_selector = Some(match p.field_selector.take() {
                Some(f) if !f.is_empty() => format!("{f},metadata.name={name}"),
                _ => format!("metadata.name={name}"),
            });
            srv.clone()
                .watch(res, t.namespace.clone(), p, rendering)
                .await
        }
        (Method::GET, None) if rendering == Rendering::Object => {
            let listed = srv.list_raw(res, ns, &p).await?;
            let head = json!({
                "kind": format!("{}List", res.kind),
                "apiVersion": res.api_version(),
                "metadata": list_meta(&listed.revision.to_string(), &listed.continue_token),
            });
            let mut body = serde_json::to_vec(&head).map_err(ApiError::internal)?;
            // Replace the closing brace with the items, which are JSON already.
            body.pop();
            body.extend_from_slice(b",\"items\":[");
            for (i, item) in listed.items.iter().enumerate() {
                if i > 0 {
                    body.push(b',');
                }
                body.extend_from_slice(item);
            }
            body.extend_from_slice(b"]}");
            Ok(bytes_response(StatusCode::OK, body))
        }
        (Method::GET, None) => {
            let listed = srv.list_objects(res, ns, &p).await?;
            let rv = listed.revision.to_string();
            let v = match rendering {
                Rendering::Table => printers::table(
                    res.plural,
                    &listed.items,
                    include_object(&p),
                    &rv,
                    listed.continue_token.as_deref(),
                    chrono::Utc::now(),
                ),
                _ => {
                    let items: Vec<Value> = listed
                        .items
                        .iter()
                        .map(|o| partial_metadata(res, o))
                        .collect();
                    json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
                        "metadata": list_meta(&rv, &listed.continue_token), "items": items})
                }
            };
            ok_json(&v)
        }
        (Method::GET, Some(name)) => {
            let obj = srv.get_object(res, ns, name).await?;
            ok_json(&render_one(res, obj, rendering))
        }
        (Method::POST, None) => {
            let (obj, dups) = parse_body(&body, headers)?;
            let created = srv.create_object(res, ns, obj, &p, &dups).await?;
            Ok(json_response(
                StatusCode::CREATED,
                &render_one(res, created, rendering),
            ))
        }
        (Method::PUT, Some(name)) => {
            let (obj, dups) = parse_body(&body, headers)?;
            let (out, created) = srv
                .update_object(res, ns, name, t.sub.as_deref(), obj, &p, &dups)
                .await?;
            let code = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok(json_response(code, &render_one(res, out, rendering)))
        }
        (Method::PATCH, Some(name)) => {
            let ct = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            if ct.starts_with("application/apply-patch") {
                return Err(ApiError::unsupported_media_type(&ct));
            }
            let out = srv
                .patch_object(res, ns, name, t.sub.as_deref(), &ct, &body, &p)
                .await?;
            ok_json(&render_one(res, out, rendering))
        }
        (Method::DELETE, Some(name)) => {
            let mut p = p;
            let mut precondition = None;
            if !body.is_empty() {
                // DeleteOptions in the body (kubectl sends them there).
                if let Ok(opts) = serde_json::from_slice::<Value>(&body) {
                    if let Some(g) = opts.get("gracePeriodSeconds").and_then(Value::as_i64) {
                        p.grace_period_seconds = Some(g);
                    }
                    if let Some(pp) = opts.get("propagationPolicy").and_then(Value::as_str) {
                        p.propagation_policy = Some(pp.to_string());
                    }
                    if opts
                        .get("dryRun")
                        .and_then(Value::as_array)
                        .is_some_and(|a| !a.is_empty())
                    {
                        p.dry_run = true;
                    }
                    if let Some(pre) = opts.get("preconditions") {
                        precondition = Some((
                            pre.get("uid").and_then(Value::as_str).map(str::to_string),
                            pre.get("resourceVersion")
                                .and_then(Value::as_str)
                                .map(str::to_string),
                        ));
                    }
                }
            }
            let out = srv.delete_object(res, ns, name, &p, precondition).await?;
            ok_json(&render_one(res, out, rendering))
        }
        (Method::DELETE, None) => {
            if res.read_only {
                return Err(ApiError::method_not_supported(res, "deletecollection"));
            }
            let out = srv.delete_collection(res, ns, &p).await?;
            ok_json(&out)
        }
        (m, _) => Err(ApiError::method_not_supported(res, m.as_str())),
    }
}

/// A write's `fieldValidation` must be one of the directives, spelled exactly; kube-apiserver refuses anything
/// else as an invalid Create/Update/PatchOptions before looking at the body.
fn check_field_validation(method: &Method, p: &Params) -> ApiResult<()> {
    const DIRECTIVES: [&str; 4] = ["", "Ignore", "Strict", "Warn"];
    let options = match *method {
        Method::POST => "CreateOptions",
        Method::PUT => "UpdateOptions",
        Method::PATCH => "PatchOptions",
        _ => return Ok(()),
    };
    match p.field_validation.as_deref() {
        Some(v) if !DIRECTIVES.contains(&v) => Err(ApiError::invalid(api::field::invalid_status(
            "meta.k8s.io",
            options,
            "",
            &[api::field::FieldError::not_supported(
                "fieldValidation",
                v,
                &DIRECTIVES,
            )],
        ))),
        _ => Ok(()),
    }
}

fn list_meta(rv: &str, cont: &Option<String>) -> Value {
    let mut m = json!({"resourceVersion": rv});
    if let Some(c) = cont {
        m["continue"] = json!(c);
    }
    m
}

#[allow(dead_code)]
fn empty() -> Body {
    Body::empty()
}
