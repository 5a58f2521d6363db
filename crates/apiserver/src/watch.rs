//! Watch streams: newline-delimited JSON `WatchEvent`s over a chunked response, as kube-apiserver sends
//! them. Label/field selectors turn modifications into ADDED/DELETED when an object enters or leaves the
//! selection; a compacted start revision is answered in-stream with an ERROR event carrying 410 Expired.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use futures::StreamExt;
use serde_json::{json, Value};
use store::{EventType, StoreError};
use tokio::sync::mpsc;

use crate::http_util::{Params, Rendering};
use crate::meta::decode_stored;
use crate::resources::Resource;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::status::{ApiError, ApiResult};
use crate::Server;

/// How often a watch with allowWatchBookmarks gets a BOOKMARK (kube-apiserver sends about one a minute).
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(30);
/// Default lifetime of a watch without timeoutSeconds (kube-apiserver: 30-60 min).
const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(1800);

struct Filter {
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Filter {
    fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty()
    }

    fn matches(&self, obj: &Value) -> bool {
        self.labels.matches(obj) && self.fields.matches(obj)
    }
}

fn event_line(kind: &str, obj: &Value) -> Bytes {
    let mut out = serde_json::to_vec(&json!({"type": kind, "object": obj})).unwrap_or_default();
    out.push(b'\n');
    Bytes::from(out)
}

fn bookmark(res: &Resource, rv: i64, initial_end: bool) -> Value {
    let mut m = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        m["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    json!({"kind": res.kind, "apiVersion": res.api_version(), "metadata": m})
}

impl Server {
    pub async fn watch(
        self: std::sync::Arc<Self>,
        res: &'static Resource,
        ns: Option<String>,
        p: Params,
        rendering: Rendering,
    ) -> ApiResult<Response> {
        let filter = Filter {
            labels: LabelSelector::parse(p.label_selector.as_deref().unwrap_or_default())
                .map_err(ApiError::bad_request)?,
            fields: FieldSelector::parse(p.field_selector.as_deref().unwrap_or_default(), res.kind)
                .map_err(ApiError::bad_request)?,
        };
        let rv: Option<i64> = match p.resource_version.as_deref() {
            None | Some("") | Some("0") => None,
            Some(s) => Some(
                s.parse()
                    .map_err(|_| ApiError::bad_request(format!("invalid resource version: {s}")))?,
            ),
        };
        if p.send_initial_events == Some(true)
            && p.resource_version_match.as_deref() != Some("NotOlderThan")
        {
            return Err(ApiError::invalid_fields(
                res,
                "",
                &[api::field::FieldError::forbidden(
                    "resourceVersionMatch",
                    "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                )],
            ));
        }
        // Without a start revision (or with sendInitialEvents) the watch begins with the current state.
        let initial = rv.is_none() || p.send_initial_events == Some(true);
        let (initial_items, start) = if initial {
            let mut lp = p.clone();
            lp.limit = None;
            lp.continue_token = None;
            let listed = self.list_objects(res, ns.as_deref(), &lp).await?;
            (listed.items, listed.revision)
        } else {
            (Vec::new(), rv.unwrap_or(0))
        };
        self.metrics.watch_started(res.plural);
        let prefix = res.scope_prefix(ns.as_deref());
        let stream = self.store.watch(&prefix, start).await;
        let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(256);
        let timeout = p
            .timeout_seconds
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_WATCH_TIMEOUT);
        let srv = self.clone();
        let mut first_table = true;
        let mut render = move |obj: &Value| -> Value {
            match rendering {
                Rendering::Table => {
                    // Column definitions travel with the first event only, as upstream sends them.
                    let first = std::mem::replace(&mut first_table, false);
                    printers::watch_event_table(
                        res.plural,
                        obj,
                        printers::IncludeObject::Metadata,
                        first,
                        chrono::Utc::now(),
                    )
                }
                Rendering::PartialMetadata => crate::router::partial_metadata(res, obj),
                Rendering::Object => obj.clone(),
            }
        };
        tokio::spawn(async move {
            let _guard = srv.metrics.watch_guard(res.plural);
            let mut stream = match stream {
                Ok(s) => s,
                Err(e) => {
                    let status = ApiError::from(e).body;
                    let _ = tx.send(Ok(event_line("ERROR", &status))).await;
                    return;
                }
            };
            for obj in &initial_items {
                if tx
                    .send(Ok(event_line("ADDED", &render(obj))))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            if p.send_initial_events == Some(true) {
                let _ = tx
                    .send(Ok(event_line("BOOKMARK", &bookmark(res, start, true))))
                    .await;
            }
            let deadline = tokio::time::sleep(timeout);
            tokio::pin!(deadline);
            let mut ticker = tokio::time::interval(BOOKMARK_INTERVAL);
            ticker.tick().await;
            let mut last_rv = start;
            loop {
                tokio::select! {
                    _ = &mut deadline => return,
                    _ = tx.closed() => return,
                    _ = ticker.tick(), if p.allow_watch_bookmarks => {
                        if tx.send(Ok(event_line("BOOKMARK", &bookmark(res, last_rv, false)))).await.is_err() {
                            return;
                        }
                    }
                    ev = stream.next() => {
                        let ev = match ev {
                            None => return,
                            Some(Err(e @ StoreError::Compacted { .. })) => {
                                let _ = tx.send(Ok(event_line("ERROR", &ApiError::from(e).body))).await;
                                return;
                            }
                            Some(Err(e)) => {
                                let _ = tx.send(Ok(event_line("ERROR", &ApiError::internal(e).body))).await;
                                return;
                            }
                            Some(Ok(ev)) => ev,
                        };
                        last_rv = ev.kv.mod_revision;
                        // Keys under a prefix may belong to a longer name (`web` vs `web2/...`): only direct children.
                        let rest = &ev.kv.key[prefix.len()..];
                        if ns.is_none() && res.namespaced && rest.matches('/').count() != 1 {
                            continue;
                        }
                        if (ns.is_some() || !res.namespaced) && rest.contains('/') {
                            continue;
                        }
                        let line = if filter.is_empty() && rendering == Rendering::Object {
                            // The common case: every watcher of this resource sends the same bytes, so the
                            // event is decoded and encoded once for all of them.
                            let kind = match (ev.event_type, ev.prev.is_some()) {
                                (EventType::Put, true) => "MODIFIED",
                                (EventType::Put, false) => "ADDED",
                                (EventType::Delete, _) => "DELETED",
                            };
                            let cached = srv.event_cache.get_or_encode(ev.kv.mod_revision, &ev.kv.key, kind, || {
                                let obj = match ev.event_type {
                                    EventType::Put => decode_stored(&ev.kv.value, ev.kv.mod_revision).ok()?,
                                    EventType::Delete => {
                                        let p = ev.prev.as_ref()?;
                                        decode_stored(&p.value, ev.kv.mod_revision).ok()?
                                    }
                                };
                                Some(event_line(kind, &obj))
                            });
                            match cached {
                                Some(l) => l,
                                None => continue,
                            }
                        } else {
                            let prev = ev.prev.as_ref().and_then(|p| decode_stored(&p.value, p.mod_revision).ok());
                            let prev_match = prev.as_ref().is_some_and(|o| filter.matches(o));
                            match ev.event_type {
                                EventType::Put => {
                                    let Ok(cur) = decode_stored(&ev.kv.value, ev.kv.mod_revision) else { continue };
                                    match (prev_match, filter.matches(&cur)) {
                                        (true, true) => event_line("MODIFIED", &render(&cur)),
                                        (false, true) => event_line("ADDED", &render(&cur)),
                                        (true, false) => event_line("DELETED", &render(&cur)),
                                        (false, false) => continue,
                                    }
                                }
                                EventType::Delete => {
                                    let Some(mut old) = prev.filter(|_| prev_match) else { continue };
                                    old["metadata"]["resourceVersion"] = json!(ev.kv.mod_revision.to_string());
                                    event_line("DELETED", &render(&old))
                                }
                            }
                        };
                        if tx.send(Ok(line)).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
        let body = Body::from_stream(tokio_stream_from(rx));
        let mut resp = Response::new(body);
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        resp.headers_mut().insert(
            http::header::CACHE_CONTROL,
            http::HeaderValue::from_static("no-cache, private"),
        );
        Ok(resp)
    }
}

fn tokio_stream_from(
    mut rx: mpsc::Receiver<Result<Bytes, Infallible>>,
) -> impl futures::Stream<Item = Result<Bytes, Infallible>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Encoded watch event lines of recent revisions, shared by every watcher: with N watchers of a
/// resource each event is decoded and serialised once instead of N times.
pub struct EventCache {
    inner: std::sync::Mutex<EventCacheInner>,
}

#[derive(Default)]
struct EventCacheInner {
    lines: std::collections::HashMap<(i64, String, &'static str), Bytes>,
    order: std::collections::VecDeque<(i64, String, &'static str)>,
}

/// Enough for every watcher to find an event it is a few thousand events behind on.
const EVENT_CACHE_ENTRIES: usize = 16_384;

impl Default for EventCache {
    fn default() -> Self {
        Self {
            inner: std::sync::Mutex::new(EventCacheInner::default()),
        }
    }
}

impl EventCache {
    fn get_or_encode(
        &self,
        rev: i64,
        key: &str,
        kind: &'static str,
        encode: impl FnOnce() -> Option<Bytes>,
    ) -> Option<Bytes> {
        let k = (rev, key.to_string(), kind);
        if let Some(b) = self
            .inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .lines
            .get(&k)
        {
            return Some(b.clone());
        }
        // Encoding happens outside the lock; two watchers racing on one event both encode, harmlessly.
        let line = encode()?;
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.lines.insert(k.clone(), line.clone()).is_none() {
            inner.order.push_back(k);
            while inner.order.len() > EVENT_CACHE_ENTRIES {
                if let Some(old) = inner.order.pop_front() {
                    inner.lines.remove(&old);
                }
            }
        }
        Some(line)
    }
}
