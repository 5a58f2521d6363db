//! A per-process watch cache in front of a shared store (etcd): one watch on every key feeds a window of
//! recent events and a broadcast, and every caller's watch is served from them, as kube-apiserver's
//! watch cache does. Without it each API watch would be an etcd watch of its own, and fan-out would cost
//! etcd work per watcher instead of a memory copy per watcher.
//!
//! Reads and writes pass straight through: only watches are cached. A watch from a revision older than
//! the window goes to the store itself (which answers `Compacted` when it is older still).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::broadcast;

use crate::{
    Event, KeyValue, RangeResult, Revision, Store, StoreError, Txn, TxnResponse, WatchStream,
};

/// Events kept for watches that start in the recent past (a relist-free resume after a reconnect).
pub const DEFAULT_WINDOW: usize = 20_000;
const BROADCAST_CAPACITY: usize = 8192;

struct Window {
    events: VecDeque<Arc<Event>>,
    /// Every event with a revision above `floor` is in `events`.
    floor: Revision,
    tx: broadcast::Sender<Arc<Event>>,
    capacity: usize,
}

impl Window {
    fn push(&mut self, ev: Arc<Event>) {
        self.events.push_back(ev.clone());
        if self.events.len() > self.capacity {
            // One transaction can hold several events at one revision: drop all of that revision, so that
            // "everything above floor" stays true.
            if let Some(first) = self.events.pop_front() {
                self.floor = first.kv.mod_revision;
                while self
                    .events
                    .front()
                    .is_some_and(|e| e.kv.mod_revision == self.floor)
                {
                    self.events.pop_front();
                }
            }
        }
        let _ = self.tx.send(ev);
    }
}

pub struct WatchCache {
    inner: Arc<dyn Store>,
    window: Arc<Mutex<Window>>,
}

impl WatchCache {
    /// Starts the feeding watch at the store's current revision.
    pub async fn start(inner: Arc<dyn Store>, capacity: usize) -> Result<Self, StoreError> {
        let rev = inner.current_revision().await?;
        let capacity = capacity.max(1);
        let (tx, _) = broadcast::channel(capacity.min(BROADCAST_CAPACITY));
        let window = Arc::new(Mutex::new(Window {
            events: VecDeque::new(),
            floor: rev,
            tx,
            capacity,
        }));
        let feed = inner.watch("", rev).await?;
        tokio::spawn(feed_window(inner.clone(), window.clone(), feed, rev));
        Ok(WatchCache { inner, window })
    }

    /// Watches currently served from the window (for metrics).
    pub fn watchers(&self) -> usize {
        self.window
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .tx
            .receiver_count()
    }
}

/// Keeps the window fed. If the feeding watch fails for good (its revision compacted while it was
/// disconnected), the window restarts empty at the current revision and every cached watcher ends with
/// `Compacted`, which makes its client relist, as a 410 from kube-apiserver does.
async fn feed_window(
    inner: Arc<dyn Store>,
    window: Arc<Mutex<Window>>,
    mut feed: WatchStream,
    mut last: Revision,
) {
    loop {
        match feed.next().await {
            Some(Ok(ev)) => {
                last = ev.kv.mod_revision;
                window
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(Arc::new(ev));
            }
            other => {
                if let Some(Err(e)) = other {
                    tracing::warn!(error = %e, "watch cache feed failed; restarting it");
                }
                loop {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    if let Ok(f) = inner.watch("", last).await {
                        feed = f;
                        break;
                    }
                    let Ok(rev) = inner.current_revision().await else {
                        continue;
                    };
                    let Ok(f) = inner.watch("", rev).await else {
                        continue;
                    };
                    let mut w = window.lock().unwrap_or_else(|e| e.into_inner());
                    let (tx, _) = broadcast::channel(w.capacity.min(BROADCAST_CAPACITY));
                    w.tx = tx; // dropping the old sender ends every cached watcher
                    w.events.clear();
                    w.floor = rev;
                    last = rev;
                    feed = f;
                    break;
                }
            }
        }
    }
}

/// Where a caller's watch stands: the revision of the last delivered event and how many events of that
/// revision were delivered, which is what a resume needs when one revision holds several events.
struct Cursor {
    prefix: String,
    after: Revision,
    last: Revision,
    delivered_at_last: usize,
}

impl Cursor {
    /// Whether `ev` is new to this caller; records it when it is.
    fn admit(&mut self, ev: &Event) -> bool {
        let rev = ev.kv.mod_revision;
        if rev <= self.after || !ev.kv.key.starts_with(&self.prefix) {
            return false;
        }
        if rev == self.last {
            self.delivered_at_last += 1;
        } else {
            self.last = rev;
            self.delivered_at_last = 1;
        }
        true
    }

    /// Rewinds to just before the last delivered revision; `skip` of its events are then repeats.
    fn resume_point(&mut self) -> (Revision, usize) {
        if self.last > self.after {
            self.after = self.last - 1;
            let skip = self.delivered_at_last;
            self.last = self.after;
            self.delivered_at_last = 0;
            (self.after, skip)
        } else {
            (self.after, 0)
        }
    }
}

enum Source {
    Cache(broadcast::Receiver<Arc<Event>>),
    Store(WatchStream),
}

struct CachedWatch {
    window: Arc<Mutex<Window>>,
    inner: Arc<dyn Store>,
    cursor: Cursor,
    backlog: VecDeque<Arc<Event>>,
    skip: usize,
    source: Option<Source>,
}

impl CachedWatch {
    /// Attaches at the cursor: from the window when it reaches back far enough, else from the store.
    async fn attach(&mut self) -> Result<(), StoreError> {
        let (after, skip) = self.cursor.resume_point();
        self.skip = skip;
        {
            let w = self.window.lock().unwrap_or_else(|e| e.into_inner());
            if after >= w.floor {
                // Snapshot and subscribe under one lock: nothing is missed or seen twice.
                self.backlog = w
                    .events
                    .iter()
                    .filter(|e| {
                        e.kv.mod_revision > after && e.kv.key.starts_with(&self.cursor.prefix)
                    })
                    .cloned()
                    .collect();
                self.source = Some(Source::Cache(w.tx.subscribe()));
                return Ok(());
            }
        }
        self.backlog.clear();
        self.source = Some(Source::Store(
            self.inner.watch(&self.cursor.prefix, after).await?,
        ));
        Ok(())
    }

    fn deliver(&mut self, ev: &Event) -> bool {
        if !self.cursor.admit(ev) {
            return false;
        }
        if self.skip > 0 && ev.kv.mod_revision == self.cursor.after + 1 {
            self.skip -= 1;
            return false;
        }
        true
    }

    async fn next(&mut self) -> Option<Result<Event, StoreError>> {
        loop {
            while let Some(ev) = self.backlog.pop_front() {
                if self.deliver(&ev) {
                    return Some(Ok((*ev).clone()));
                }
            }
            let got = match self.source.as_mut()? {
                Source::Cache(rx) => match rx.recv().await {
                    Ok(ev) => Ok(Some(ev)),
                    Err(broadcast::error::RecvError::Lagged(_)) => Ok(None),
                    Err(broadcast::error::RecvError::Closed) => {
                        self.source = None;
                        return Some(Err(StoreError::Compacted {
                            requested: self.cursor.last,
                            compacted: self.cursor.last,
                        }));
                    }
                },
                Source::Store(s) => match s.next().await {
                    Some(Ok(ev)) => Ok(Some(Arc::new(ev))),
                    Some(Err(e)) => Err(e),
                    None => return None,
                },
            };
            match got {
                Ok(Some(ev)) => {
                    if self.deliver(&ev) {
                        return Some(Ok((*ev).clone()));
                    }
                }
                // Fell behind the broadcast: attach again from what was delivered.
                Ok(None) => {
                    if let Err(e) = self.attach().await {
                        self.source = None;
                        return Some(Err(e));
                    }
                }
                Err(e) => {
                    self.source = None;
                    return Some(Err(e));
                }
            }
        }
    }
}

#[async_trait::async_trait]
impl Store for WatchCache {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        self.inner.get(key).await
    }

    async fn range(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<RangeResult, StoreError> {
        self.inner.range(prefix, start_after, limit).await
    }

    async fn range_at(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
        revision: Revision,
    ) -> Result<RangeResult, StoreError> {
        self.inner
            .range_at(prefix, start_after, limit, revision)
            .await
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResponse, StoreError> {
        self.inner.txn(txn).await
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError> {
        let mut w = CachedWatch {
            window: self.window.clone(),
            inner: self.inner.clone(),
            cursor: Cursor {
                prefix: prefix.to_string(),
                after,
                last: after,
                delivered_at_last: 0,
            },
            backlog: VecDeque::new(),
            skip: 0,
            source: None,
        };
        w.attach().await?;
        Ok(futures::stream::unfold(
            w,
            |mut w| async move { w.next().await.map(|item| (item, w)) },
        )
        .boxed())
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        self.inner.compact(revision).await?;
        // Forget the same history here, so that a watch from before it gets `Compacted` from the store
        // rather than events the store no longer has. (Another API server's compaction is not seen: until
        // this window moves past it, watches that it still covers are served, as kube-apiserver's watch
        // cache serves what it holds.)
        let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
        if revision > w.floor {
            w.floor = revision;
            while w
                .events
                .front()
                .is_some_and(|e| e.kv.mod_revision <= revision)
            {
                w.events.pop_front();
            }
        }
        Ok(())
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        self.inner.current_revision().await
    }

    async fn compacted_revision(&self) -> Result<Revision, StoreError> {
        self.inner.compacted_revision().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EventType, KeyValue};

    fn ev(key: &str, rev: Revision) -> Event {
        Event {
            event_type: EventType::Put,
            kv: KeyValue {
                key: key.into(),
                value: vec![],
                create_revision: rev,
                mod_revision: rev,
            },
            prev: None,
        }
    }

    #[test]
    fn window_drops_whole_revisions() {
        let (tx, _) = broadcast::channel(4);
        let mut w = Window {
            events: VecDeque::new(),
            floor: 0,
            tx,
            capacity: 2,
        };
        w.push(Arc::new(ev("/a", 1)));
        w.push(Arc::new(ev("/b", 2)));
        w.push(Arc::new(ev("/c", 2)));
        // Over capacity: revision 1 goes and floor says so.
        assert_eq!(w.floor, 1);
        assert_eq!(w.events.len(), 2);
        w.push(Arc::new(ev("/d", 3)));
        // Revision 2 had two events: both go, so "everything above floor is here" still holds.
        assert_eq!(w.floor, 2);
        assert_eq!(w.events.len(), 1);
    }

    #[test]
    fn cursor_resumes_inside_a_revision_without_repeats() {
        let mut c = Cursor {
            prefix: "/".into(),
            after: 0,
            last: 0,
            delivered_at_last: 0,
        };
        assert!(c.admit(&ev("/a", 1)));
        assert!(c.admit(&ev("/b", 2)));
        assert!(!c.admit(&ev("/a", 0)), "at or before the start revision");
        let (after, skip) = c.resume_point();
        assert_eq!((after, skip), (1, 1));
        let mut only_a = Cursor {
            prefix: "/a/".into(),
            after: 0,
            last: 0,
            delivered_at_last: 0,
        };
        assert!(!only_a.admit(&ev("/b/x", 3)));
        assert!(only_a.admit(&ev("/a/x", 3)));
    }
}
