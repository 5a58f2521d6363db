//! Embedded backend on redb. Writes go through one writer thread that groups every transaction waiting
//! at that moment into a single durable redb commit (group commit): each client transaction keeps its
//! own revision and its own compare outcome, but many share one fsync. A transaction is acknowledged
//! only after the commit that holds it returned, so an acknowledged write survives `kill -9`.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{mpsc, Arc};

use futures::StreamExt;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::{broadcast, oneshot};

use crate::encoding::{decode_event, decode_value, encode_event, encode_value};
use crate::{
    Compare, Event, EventType, KeyValue, Op, RangeResult, Revision, Store, StoreError, Txn,
    TxnResponse, WatchStream,
};

const KV: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");
const LOG: TableDefinition<(i64, u32), &[u8]> = TableDefinition::new("log");
const META: TableDefinition<&str, i64> = TableDefinition::new("meta");
const META_REVISION: &str = "revision";
const META_COMPACTED: &str = "compacted";

/// Most transactions folded into one commit; bounds the latency a single commit adds to its first waiter.
const MAX_BATCH: usize = 2048;
/// Commit batches a watcher may fall behind before it re-reads from the log instead.
const BROADCAST_CAPACITY: usize = 4096;

enum Request {
    Txn(Txn, oneshot::Sender<Result<TxnResponse, StoreError>>),
    Compact(Revision, oneshot::Sender<Result<(), StoreError>>),
}

struct Inner {
    db: Arc<Database>,
    requests: mpsc::Sender<Request>,
    events: broadcast::Sender<Arc<Vec<Event>>>,
    revision: Arc<AtomicI64>,
    compacted: Arc<AtomicI64>,
}

#[derive(Clone)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

fn backend<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl EmbeddedStore {
    /// Opens (or creates) the store file at `path` and starts its writer thread.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Arc::new(Database::create(path).map_err(backend)?);
        let (revision, compacted) = {
            let w = db.begin_write().map_err(backend)?;
            let (r, c) = {
                w.open_table(KV).map_err(backend)?;
                w.open_table(LOG).map_err(backend)?;
                let meta = w.open_table(META).map_err(backend)?;
                let r = meta.get(META_REVISION).map_err(backend)?.map(|v| v.value());
                let c = meta
                    .get(META_COMPACTED)
                    .map_err(backend)?
                    .map(|v| v.value());
                (r.unwrap_or(0), c.unwrap_or(0))
            };
            w.commit().map_err(backend)?;
            (r, c)
        };
        let (tx, rx) = mpsc::channel();
        let (events, _) = broadcast::channel(BROADCAST_CAPACITY);
        let revision = Arc::new(AtomicI64::new(revision));
        let compacted = Arc::new(AtomicI64::new(compacted));
        let writer = Writer {
            db: db.clone(),
            events: events.clone(),
            revision: revision.clone(),
            compacted: compacted.clone(),
        };
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(backend)?;
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                requests: tx,
                events,
                revision,
                compacted,
            }),
        })
    }
}

struct Writer {
    db: Arc<Database>,
    events: broadcast::Sender<Arc<Vec<Event>>>,
    revision: Arc<AtomicI64>,
    compacted: Arc<AtomicI64>,
}

enum Reply {
    Txn(
        oneshot::Sender<Result<TxnResponse, StoreError>>,
        TxnResponse,
    ),
    Compact(oneshot::Sender<Result<(), StoreError>>),
}

impl Writer {
    fn run(self, rx: mpsc::Receiver<Request>) {
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            self.commit_batch(batch);
        }
    }

    fn commit_batch(&self, batch: Vec<Request>) {
        let mut replies = Vec::with_capacity(batch.len());
        let mut events = Vec::new();
        let mut rev = self.revision.load(Ordering::SeqCst);
        let mut compacted = self.compacted.load(Ordering::SeqCst);
        let result = (|| -> Result<(), StoreError> {
            let w = self.db.begin_write().map_err(backend)?;
            {
                let mut kv = w.open_table(KV).map_err(backend)?;
                let mut log = w.open_table(LOG).map_err(backend)?;
                let mut meta = w.open_table(META).map_err(backend)?;
                for req in batch {
                    match req {
                        Request::Txn(txn, reply) => {
                            let resp = apply_txn(&mut kv, &mut log, &txn, &mut rev, &mut events)?;
                            replies.push(Reply::Txn(reply, resp));
                        }
                        Request::Compact(at, reply) => {
                            if at > compacted {
                                let at = at.min(rev);
                                log.retain_in((0i64, 0u32)..=(at, u32::MAX), |_, _| false)
                                    .map_err(backend)?;
                                compacted = at;
                            }
                            replies.push(Reply::Compact(reply));
                        }
                    }
                }
                meta.insert(META_REVISION, rev).map_err(backend)?;
                meta.insert(META_COMPACTED, compacted).map_err(backend)?;
            }
            w.commit().map_err(backend)?;
            Ok(())
        })();
        match result {
            Ok(()) => {
                self.revision.store(rev, Ordering::SeqCst);
                self.compacted.store(compacted, Ordering::SeqCst);
                if !events.is_empty() {
                    // No receivers is fine: nobody is watching.
                    let _ = self.events.send(Arc::new(events));
                }
                for r in replies {
                    match r {
                        Reply::Txn(tx, resp) => {
                            let _ = tx.send(Ok(resp));
                        }
                        Reply::Compact(tx) => {
                            let _ = tx.send(Ok(()));
                        }
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "store commit failed; failing its transactions");
                for r in replies {
                    match r {
                        Reply::Txn(tx, _) => {
                            let _ = tx.send(Err(StoreError::Backend(e.to_string())));
                        }
                        Reply::Compact(tx) => {
                            let _ = tx.send(Err(StoreError::Backend(e.to_string())));
                        }
                    }
                }
            }
        }
    }
}

fn read_kv(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Option<KeyValue>, StoreError> {
    match table.get(key).map_err(backend)? {
        None => Ok(None),
        Some(v) => decode_value(key, v.value()).map(Some),
    }
}

fn apply_txn(
    kv: &mut redb::Table<&'static str, &'static [u8]>,
    log: &mut redb::Table<(i64, u32), &'static [u8]>,
    txn: &Txn,
    rev: &mut Revision,
    events: &mut Vec<Event>,
) -> Result<TxnResponse, StoreError> {
    for (i, c) in txn.compares.iter().enumerate() {
        let holds = match c {
            Compare::Absent(k) => kv.get(k.as_str()).map_err(backend)?.is_none(),
            Compare::ModRevision(k, want) => {
                read_kv(kv, k)?.is_some_and(|cur| cur.mod_revision == *want)
            }
        };
        if !holds {
            return Ok(TxnResponse {
                succeeded: false,
                revision: *rev,
                failed_compare: Some(i),
            });
        }
    }
    let new_rev = *rev + 1;
    let mut produced = 0u32;
    for op in &txn.ops {
        let ev = match op {
            Op::Put(k, v) => {
                let prev = read_kv(kv, k)?;
                let create = prev.as_ref().map_or(new_rev, |p| p.create_revision);
                kv.insert(k.as_str(), encode_value(create, new_rev, v).as_slice())
                    .map_err(backend)?;
                Event {
                    event_type: EventType::Put,
                    kv: KeyValue {
                        key: k.clone(),
                        value: v.clone(),
                        create_revision: create,
                        mod_revision: new_rev,
                    },
                    prev,
                }
            }
            Op::Delete(k) => {
                let Some(prev) = read_kv(kv, k)? else {
                    continue;
                };
                kv.remove(k.as_str()).map_err(backend)?;
                Event {
                    event_type: EventType::Delete,
                    kv: KeyValue {
                        key: k.clone(),
                        value: Vec::new(),
                        create_revision: 0,
                        mod_revision: new_rev,
                    },
                    prev: Some(prev),
                }
            }
        };
        log.insert((new_rev, produced), encode_event(&ev).as_slice())
            .map_err(backend)?;
        produced += 1;
        events.push(ev);
    }
    if produced > 0 {
        *rev = new_rev;
    }
    Ok(TxnResponse {
        succeeded: true,
        revision: *rev,
        failed_compare: None,
    })
}

/// Events after `after` under `prefix` from the log, and the revision the read saw.
/// A revision counter kept in the meta table (0 before the first write), read in `r`'s snapshot.
fn read_meta(r: &redb::ReadTransaction, key: &str) -> Result<Revision, StoreError> {
    let meta = r.open_table(META).map_err(backend)?;
    let value = meta.get(key).map_err(backend)?.map_or(0, |v| v.value());
    Ok(value)
}

fn read_log(
    db: &Database,
    prefix: &str,
    after: Revision,
) -> Result<(VecDeque<Event>, Revision), StoreError> {
    let r = db.begin_read().map_err(backend)?;
    let current = read_meta(&r, META_REVISION)?;
    let compacted = read_meta(&r, META_COMPACTED)?;
    if after < compacted {
        return Err(StoreError::Compacted {
            requested: after,
            compacted,
        });
    }
    let log = r.open_table(LOG).map_err(backend)?;
    let mut out = VecDeque::new();
    for entry in log.range((after + 1, 0u32)..).map_err(backend)? {
        let (_, v) = entry.map_err(backend)?;
        let ev = decode_event(v.value())?;
        if ev.kv.key.starts_with(prefix) {
            out.push_back(ev);
        }
    }
    Ok((out, current))
}

/// The range as it was at `revision`, in one read transaction: today's keys, with every key written since put
/// back as the log says it was before its first write after `revision` (the log keeps each event's previous
/// value). Costs one pass over the log since `revision`, which compaction keeps short.
fn range_at(
    db: &Database,
    prefix: &str,
    start_after: Option<&str>,
    limit: usize,
    revision: Revision,
) -> Result<RangeResult, StoreError> {
    let r = db.begin_read().map_err(backend)?;
    let compacted = read_meta(&r, META_COMPACTED)?;
    if revision <= compacted {
        return Err(StoreError::Compacted {
            requested: revision,
            compacted,
        });
    }
    let in_range = |k: &str| k.starts_with(prefix) && start_after.is_none_or(|s| k > s);
    // Key -> its value at `revision` (None: absent then), for keys written since.
    let mut then: HashMap<String, Option<KeyValue>> = HashMap::new();
    let log = r.open_table(LOG).map_err(backend)?;
    for entry in log.range((revision + 1, 0u32)..).map_err(backend)? {
        let (_, v) = entry.map_err(backend)?;
        let ev = decode_event(v.value())?;
        if in_range(&ev.kv.key) && !then.contains_key(&ev.kv.key) {
            then.insert(ev.kv.key, ev.prev);
        }
    }
    let kv = r.open_table(KV).map_err(backend)?;
    let start = start_after.unwrap_or(prefix);
    let mut current = Vec::new();
    for entry in kv.range(start..).map_err(backend)? {
        let (k, v) = entry.map_err(backend)?;
        let key = k.value();
        if !key.starts_with(prefix) {
            break;
        }
        if !in_range(key) || then.contains_key(key) {
            continue;
        }
        current.push(decode_value(key, v.value())?);
        // Restored keys may all sort before the next current one: `limit + 1` current keys always suffice.
        if limit > 0 && current.len() > limit {
            break;
        }
    }
    let restored = then.into_values().flatten();
    let mut merged: Vec<KeyValue> = current.into_iter().chain(restored).collect();
    merged.sort_by(|a, b| a.key.cmp(&b.key));
    let more = limit > 0 && merged.len() > limit;
    if more {
        merged.truncate(limit);
    }
    Ok(RangeResult {
        revision,
        more,
        kvs: merged,
    })
}

struct WatchState {
    db: Arc<Database>,
    rx: broadcast::Receiver<Arc<Vec<Event>>>,
    backlog: VecDeque<Event>,
    last: Revision,
    prefix: String,
    failed: bool,
}

impl WatchState {
    async fn next(&mut self) -> Option<Result<Event, StoreError>> {
        if self.failed {
            return None;
        }
        loop {
            if let Some(e) = self.backlog.pop_front() {
                return Some(Ok(e));
            }
            match self.rx.recv().await {
                Ok(batch) => {
                    for e in batch.iter() {
                        if e.kv.mod_revision > self.last && e.kv.key.starts_with(&self.prefix) {
                            self.backlog.push_back(e.clone());
                        }
                    }
                    if let Some(last) = batch.last() {
                        self.last = self.last.max(last.kv.mod_revision);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let (db, prefix, after) = (self.db.clone(), self.prefix.clone(), self.last);
                    let read =
                        tokio::task::spawn_blocking(move || read_log(&db, &prefix, after)).await;
                    match read {
                        Ok(Ok((events, current))) => {
                            self.backlog = events;
                            self.last = current;
                        }
                        Ok(Err(e)) => {
                            self.failed = true;
                            return Some(Err(e));
                        }
                        Err(e) => {
                            self.failed = true;
                            return Some(Err(backend(e)));
                        }
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

#[async_trait::async_trait]
impl Store for EmbeddedStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let r = self.inner.db.begin_read().map_err(backend)?;
        let kv = r.open_table(KV).map_err(backend)?;
        read_kv(&kv, key)
    }

    async fn range(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<RangeResult, StoreError> {
        let db = self.inner.db.clone();
        let prefix = prefix.to_string();
        let start_after = start_after.map(str::to_string);
        tokio::task::spawn_blocking(move || {
            let r = db.begin_read().map_err(backend)?;
            let revision = read_meta(&r, META_REVISION)?;
            let kv = r.open_table(KV).map_err(backend)?;
            let start = start_after.as_deref().unwrap_or(prefix.as_str());
            let mut out = RangeResult {
                revision,
                ..Default::default()
            };
            for entry in kv.range(start..).map_err(backend)? {
                let (k, v) = entry.map_err(backend)?;
                let key = k.value();
                if start_after.as_deref() == Some(key) {
                    continue;
                }
                if !key.starts_with(prefix.as_str()) {
                    break;
                }
                if limit > 0 && out.kvs.len() == limit {
                    out.more = true;
                    break;
                }
                out.kvs.push(decode_value(key, v.value())?);
            }
            Ok(out)
        })
        .await
        .map_err(backend)?
    }

    async fn range_at(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
        revision: Revision,
    ) -> Result<RangeResult, StoreError> {
        let db = self.inner.db.clone();
        let prefix = prefix.to_string();
        let start_after = start_after.map(str::to_string);
        tokio::task::spawn_blocking(move || {
            range_at(&db, &prefix, start_after.as_deref(), limit, revision)
        })
        .await
        .map_err(backend)?
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResponse, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .requests
            .send(Request::Txn(txn, tx))
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError> {
        let rx = self.inner.events.subscribe();
        let db = self.inner.db.clone();
        let p = prefix.to_string();
        let (backlog, current) = tokio::task::spawn_blocking(move || read_log(&db, &p, after))
            .await
            .map_err(backend)??;
        let state = WatchState {
            db: self.inner.db.clone(),
            rx,
            backlog,
            last: current.max(after),
            prefix: prefix.to_string(),
            failed: false,
        };
        Ok(
            futures::stream::unfold(state, |mut s| async move { s.next().await.map(|r| (r, s)) })
                .boxed(),
        )
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .requests
            .send(Request::Compact(revision, tx))
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        Ok(self.inner.revision.load(Ordering::SeqCst))
    }

    async fn compacted_revision(&self) -> Result<Revision, StoreError> {
        Ok(self.inner.compacted.load(Ordering::SeqCst))
    }
}
