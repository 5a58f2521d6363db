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
use crate::listing;
use crate::meta::decode_stored;
use crate::resources::Resource;
use crate::selectors::Selection;
use crate::status::{ApiError, ApiResult};
use crate::Server;

/// How often a watch with allowWatchBookmarks gets a BOOKMARK (kube-apiserver sends about one a minute).
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(30);
/// Default lifetime of a watch without timeoutSeconds (kube-apiserver: 30-60 min).
const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(1800);

fn event_line(kind: &str, obj: &Value) -> Bytes {
    let mut out = serde_json::to_vec(&json!({"type": kind, "object": obj})).unwrap_or_default();
    out.push(b'\n');
    Bytes::from(out)
}

/// A watch event line straight from stored bytes, decoding only if they cannot be spliced.
fn stored_event_line(kind: &str, stored: &[u8], rev: i64) -> Option<Bytes> {
    match crate::rawjson::event_line(kind, stored, rev) {
        Some(line) => Some(Bytes::from(line)),
        None => decode_stored(stored, rev)
            .ok()
            .map(|o| event_line(kind, &o)),
    }
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
        let filter = Selection::parse(
            p.label_selector.as_deref(),
            p.field_selector.as_deref(),
            res.kind,
        )
        .map_err(ApiError::bad_request)?;
        let rv: Option<i64> = match p.resource_version.as_deref() {
            None | Some("") | Some("0") => None,
            Some(s) => Some(
                s.parse()
                    .map_err(|_| ApiError::bad_request(format!("invalid resource version: {s}")))?,
            ),
        };
        listing::validate_watch_options(&p)?;
        // Without a start revision (or with sendInitialEvents) the watch begins with the current state.
        let initial = rv.is_none() || p.send_initial_events == Some(true);
        let (initial_items, start) = if initial {
            let mut lp = p.clone();
            lp.limit = None;
            lp.continue_token = None;
            lp.send_initial_events = None;
            lp.resource_version_match = None;
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
                        let kind = |prev_match: bool| match (ev.event_type, prev_match) {
                            (EventType::Put, true) => "MODIFIED",
                            (EventType::Put, false) => "ADDED",
                            (EventType::Delete, _) => "DELETED",
                        };
                        // A deletion shows the last state, at the deletion's revision.
                        let (shown, shown_rev) = match ev.event_type {
                            EventType::Put => (Some(&ev.kv.value), ev.kv.mod_revision),
                            EventType::Delete => (ev.prev.as_ref().map(|p| &p.value), ev.kv.mod_revision),
                        };
                        let Some(shown) = shown else { continue };
                        let line = if filter.is_empty() && rendering == Rendering::Object {
                            // The common case: every watcher of this resource sends the same bytes, made
                            // once for all of them.
                            let kind = kind(ev.prev.is_some());
                            let cached = srv.event_cache.get_or_encode(ev.kv.mod_revision, &ev.kv.key, kind, || {
                                stored_event_line(kind, shown, shown_rev)
                            });
                            match cached {
                                Some(l) => l,
                                None => continue,
                            }
                        } else {
                            let prev_match = ev.prev.as_ref().is_some_and(|p| filter.matches_stored(&p.value) == Some(true));
                            let kind = match ev.event_type {
                                EventType::Put => match (prev_match, filter.matches_stored(shown)) {
                                    (_, None) => continue,
                                    (_, Some(true)) => kind(prev_match),
                                    (true, Some(false)) => "DELETED",
                                    (false, Some(false)) => continue,
                                },
                                EventType::Delete if prev_match => "DELETED",
                                EventType::Delete => continue,
                            };
                            if rendering == Rendering::Object {
                                match stored_event_line(kind, shown, shown_rev) {
                                    Some(l) => l,
                                    None => continue,
                                }
                            } else {
                                let Ok(obj) = decode_stored(shown, shown_rev) else { continue };
                                event_line(kind, &render(&obj))
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
