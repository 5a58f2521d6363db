//! etcd v3 backend (`--etcd-servers`), on the `etcd-client` crate. etcd already has the semantics the
//! [`Store`] trait was modelled on, so this is a translation: one global revision, compares on create and
//! mod revisions, watch from a revision with the previous value, compaction. Every key is stored under a
//! prefix (`--etcd-prefix`) so that an etcd shared with other users is not trampled.
//!
//! What etcd does not tell us, we derive: which compare of a failed transaction did not hold (the failure
//! branch reads the compared keys and we evaluate the compares on what it read), and the compacted
//! revision (the oldest revision etcd still reads, found by bisection). etcd compacted at C still serves C; the
//! trait's compaction at R forgets R too, so R maps to etcd's R + 1.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{
    Client, Compare as EtcdCompare, CompareOp, ConnectOptions, EventType as EtcdEventType,
    GetOptions, KvClient, SortOrder, SortTarget, Txn as EtcdTxn, TxnOp, TxnOpResponse, WatchClient,
    WatchOptions,
};
use futures::StreamExt;

use crate::{
    Compare, Event, EventType, KeyValue, Op, RangeResult, Revision, Store, StoreError, Txn,
    TxnResponse, WatchStream,
};

/// Where and how to reach etcd, as kube-apiserver's `--etcd-*` flags say it.
#[derive(Clone, Debug, Default)]
pub struct EtcdConfig {
    /// Client URLs (`http://host:port` or `https://host:port`).
    pub servers: Vec<String>,
    /// Prepended to every key.
    pub prefix: String,
    /// PEM files: the CA that signed the etcd servers' certificates, and our client certificate + key.
    pub ca_file: Option<std::path::PathBuf>,
    pub cert_file: Option<std::path::PathBuf>,
    pub key_file: Option<std::path::PathBuf>,
}

/// Responses as large as a full list of 100k objects; the gRPC default (4 MiB) is far too small.
const MAX_MESSAGE: usize = 1 << 30;
/// A watch whose stream broke (a member died) is re-created from its last revision this many times in a
/// row before the error reaches the caller.
const WATCH_RETRIES: usize = 20;

/// One connection per member rather than etcd-client's balanced channel: the balancer keeps sending to
/// a member that is down (connection refused for as long as it stays down), while we want a dead member
/// to cost one failed attempt and then be skipped.
struct Member {
    url: String,
    kv: KvClient,
    watch: WatchClient,
}

#[derive(Clone)]
pub struct EtcdStore {
    members: Arc<Vec<Member>>,
    /// The member requests go to first; moves on when it fails.
    active: Arc<AtomicUsize>,
    prefix: String,
}

/// Whether the member could not serve the request (down, unreachable, or without a leader).
fn unavailable(e: &etcd_client::Error) -> bool {
    match e {
        etcd_client::Error::GRpcStatus(s) => matches!(
            s.code(),
            tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
        ),
        etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => true,
        _ => false,
    }
}

/// Whether the request certainly never reached etcd, so that sending a write again cannot apply it twice.
fn never_sent(e: &etcd_client::Error) -> bool {
    let s = e.to_string();
    s.contains("connect error") || s.contains("Connection refused") || s.contains("no leader")
}

fn backend<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// The first key after every key that starts with `prefix` (etcd's range end for a prefix).
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0] // every key
}

impl EtcdStore {
    pub async fn connect(cfg: &EtcdConfig) -> Result<Self, StoreError> {
        if cfg.servers.is_empty() {
            return Err(StoreError::Backend("no etcd servers given".into()));
        }
        let mut opts = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(2))
            // A member cut off from the leader must not answer: reads stay linearizable.
            .with_require_leader(true);
        if cfg.ca_file.is_some() || cfg.cert_file.is_some() {
            opts = opts.with_tls(tls_options(cfg)?);
        }
        let mut members = Vec::new();
        for url in &cfg.servers {
            // Connections are made lazily: a member that is down now is tried when it is needed. Watches
            // get a connection of their own: a watcher that reads slowly fills its HTTP/2 window, and on a
            // shared connection that stalls (or gets reset) the reads and writes behind it.
            let connect = || async {
                Client::connect([url], Some(opts.clone()))
                    .await
                    .map_err(|e| StoreError::Backend(format!("{url}: {e}")))
            };
            members.push(Member {
                url: url.clone(),
                kv: connect()
                    .await?
                    .kv_client()
                    .max_decoding_message_size(MAX_MESSAGE),
                watch: connect()
                    .await?
                    .watch_client()
                    .max_decoding_message_size(MAX_MESSAGE),
            });
        }
        let store = EtcdStore {
            members: Arc::new(members),
            active: Arc::new(AtomicUsize::new(0)),
            prefix: cfg.prefix.clone(),
        };
        // Fail at start, not at the first request, when no member answers.
        store.current_revision().await?;
        Ok(store)
    }

    /// Runs `call` on the active member, moving to the next one while members are unavailable. A write is
    /// only sent again when the failed attempt certainly never reached etcd.
    async fn on_member<T, F, Fut>(&self, write: bool, call: F) -> Result<T, StoreError>
    where
        F: Fn(KvClient) -> Fut,
        Fut: std::future::Future<Output = Result<T, etcd_client::Error>>,
    {
        let n = self.members.len();
        let first = self.active.load(Ordering::Relaxed) % n;
        let mut last = None;
        for k in 0..n {
            let i = (first + k) % n;
            match call(self.members[i].kv.clone()).await {
                Ok(v) => {
                    if k > 0 {
                        self.active.store(i, Ordering::Relaxed);
                    }
                    return Ok(v);
                }
                Err(e) if unavailable(&e) => {
                    tracing::debug!(member = %self.members[i].url, error = %e, "etcd member unavailable");
                    self.active.store((i + 1) % n, Ordering::Relaxed);
                    if write && !never_sent(&e) {
                        return Err(backend(e));
                    }
                    last = Some(e);
                }
                Err(e) => return Err(backend(e)),
            }
        }
        Err(last.map(backend).unwrap_or(StoreError::Closed))
    }

    fn full(&self, key: &str) -> Vec<u8> {
        let mut k = Vec::with_capacity(self.prefix.len() + key.len());
        k.extend_from_slice(self.prefix.as_bytes());
        k.extend_from_slice(key.as_bytes());
        k
    }

    /// Key and range end of every key under `prefix` (etcd refuses an empty key: all keys are `\0..`).
    fn range_of(&self, prefix: &str) -> (Vec<u8>, Vec<u8>) {
        let full = self.full(prefix);
        let end = prefix_end(&full);
        if full.is_empty() {
            (vec![0], end)
        } else {
            (full, end)
        }
    }

    fn kv_of(&self, kv: &etcd_client::KeyValue) -> Result<KeyValue, StoreError> {
        let key = kv
            .key()
            .strip_prefix(self.prefix.as_bytes())
            .ok_or_else(|| StoreError::Corrupt("key outside the store prefix".into()))?;
        Ok(KeyValue {
            key: String::from_utf8(key.to_vec()).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            value: kv.value().to_vec(),
            create_revision: kv.create_revision(),
            mod_revision: kv.mod_revision(),
        })
    }

    fn event_of(&self, e: &etcd_client::Event) -> Result<Event, StoreError> {
        let kv = e
            .kv()
            .ok_or_else(|| StoreError::Corrupt("watch event without key".into()))?;
        let prev = e.prev_kv().map(|p| self.kv_of(p)).transpose()?;
        Ok(match e.event_type() {
            EtcdEventType::Put => Event {
                event_type: EventType::Put,
                kv: self.kv_of(kv)?,
                prev,
            },
            EtcdEventType::Delete => {
                let mut k = self.kv_of(kv)?;
                k.value.clear();
                k.create_revision = 0;
                Event {
                    event_type: EventType::Delete,
                    kv: k,
                    prev,
                }
            }
        })
    }
}

fn tls_options(cfg: &EtcdConfig) -> Result<etcd_client::TlsOptions, StoreError> {
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| StoreError::Backend(format!("{}: {e}", p.display())))
    };
    let mut tls = etcd_client::TlsOptions::new();
    if let Some(ca) = &cfg.ca_file {
        tls = tls.ca_certificate(etcd_client::Certificate::from_pem(read(ca)?));
    }
    match (&cfg.cert_file, &cfg.key_file) {
        (Some(c), Some(k)) => {
            tls = tls.identity(etcd_client::Identity::from_pem(read(c)?, read(k)?));
        }
        (None, None) => {}
        _ => {
            return Err(StoreError::Backend(
                "--etcd-certfile and --etcd-keyfile go together".into(),
            ))
        }
    }
    Ok(tls)
}

/// Index of the first compare that does not hold on `current` (the compared keys as the failure branch
/// read them).
fn first_failed(compares: &[Compare], current: &[Option<Revision>]) -> Option<usize> {
    compares
        .iter()
        .zip(current)
        .position(|(c, mod_rev)| match c {
            Compare::Absent(_) => mod_rev.is_some(),
            Compare::ModRevision(_, r) => *mod_rev != Some(*r),
        })
}

#[async_trait::async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let k = self.full(key);
        let resp = self
            .on_member(false, |mut kv| {
                let k = k.clone();
                async move { kv.get(k, None).await }
            })
            .await?;
        resp.kvs().first().map(|kv| self.kv_of(kv)).transpose()
    }

    async fn range(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<RangeResult, StoreError> {
        self.range_maybe_at(prefix, start_after, limit, None).await
    }

    async fn range_at(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
        revision: Revision,
    ) -> Result<RangeResult, StoreError> {
        // The trait's compaction at C is etcd's at C + 1, so etcd refuses exactly the revisions the trait
        // calls compacted.
        match self
            .range_maybe_at(prefix, start_after, limit, Some(revision))
            .await
        {
            Err(e) if e.to_string().contains("compacted") => Err(StoreError::Compacted {
                requested: revision,
                compacted: self.compacted_revision().await?,
            }),
            r => r.map(|r| RangeResult { revision, ..r }),
        }
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResponse, StoreError> {
        let compares: Vec<EtcdCompare> = txn
            .compares
            .iter()
            .map(|c| match c {
                // A missing key compares as revision 0.
                Compare::Absent(k) => EtcdCompare::mod_revision(self.full(k), CompareOp::Equal, 0),
                Compare::ModRevision(k, r) => {
                    EtcdCompare::mod_revision(self.full(k), CompareOp::Equal, *r)
                }
            })
            .collect();
        let ops: Vec<TxnOp> = txn
            .ops
            .iter()
            .map(|op| match op {
                Op::Put(k, v) => TxnOp::put(self.full(k), v.clone(), None),
                Op::Delete(k) => TxnOp::delete(self.full(k), None),
            })
            .collect();
        let reads: Vec<TxnOp> = txn
            .compares
            .iter()
            .map(|c| {
                let k = match c {
                    Compare::Absent(k) | Compare::ModRevision(k, _) => k,
                };
                TxnOp::get(self.full(k), Some(GetOptions::new().with_keys_only()))
            })
            .collect();
        let etcd_txn = EtcdTxn::new().when(compares).and_then(ops).or_else(reads);
        let resp = self
            .on_member(true, |mut kv| {
                let t = etcd_txn.clone();
                async move { kv.txn(t).await }
            })
            .await?;
        let revision = resp.header().map(|h| h.revision()).unwrap_or(0);
        if resp.succeeded() {
            return Ok(TxnResponse {
                succeeded: true,
                revision,
                failed_compare: None,
            });
        }
        let current: Vec<Option<Revision>> = resp
            .op_responses()
            .iter()
            .map(|r| match r {
                TxnOpResponse::Get(g) => g.kvs().first().map(|kv| kv.mod_revision()),
                _ => None,
            })
            .collect();
        Ok(TxnResponse {
            succeeded: false,
            revision,
            failed_compare: first_failed(&txn.compares, &current).or(Some(0)),
        })
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError> {
        let state = EtcdWatch {
            store: self.clone(),
            prefix: prefix.to_string(),
            last: after,
            stream: None,
            pending: std::collections::VecDeque::new(),
            failures: 0,
            done: false,
        };
        // A compacted start revision is an error of this call, as on the embedded store (etcd itself
        // would accept the watch and cancel it a moment later).
        self.check_watchable(after).await?;
        let mut state = state;
        state.open().await?;
        Ok(futures::stream::unfold(state, |mut s| async move {
            s.next().await.map(|item| (item, s))
        })
        .boxed())
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        // etcd compacted at C still serves revision C itself; the trait forgets `revision` too, so
        // etcd compacts one further. A revision etcd has not reached yet means nothing was written since.
        let r = self
            .on_member(true, |mut kv| async move {
                kv.compact(revision + 1, None).await
            })
            .await;
        match r {
            Ok(_) => Ok(()),
            // Another API server compacted there (or further) first: nothing left to do.
            Err(e) if e.to_string().contains("compacted") || e.to_string().contains("future") => {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        let k = self.full("\u{0}revision-probe");
        let resp = self
            .on_member(false, |mut kv| {
                let k = k.clone();
                async move { kv.get(k, Some(GetOptions::new().with_count_only())).await }
            })
            .await?;
        Ok(resp.header().map(|h| h.revision()).unwrap_or(0))
    }

    async fn compacted_revision(&self) -> Result<Revision, StoreError> {
        // etcd does not say where it compacted, only whether a revision is still readable: find the
        // oldest readable one by bisection (a few dozen cheap reads, on rare paths only).
        if self.readable_at(1).await? {
            return Ok(0);
        }
        let (mut lo, mut hi) = (1, self.current_revision().await?); // lo unreadable, hi readable
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.readable_at(mid).await? {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        Ok(hi - 1)
    }
}

impl EtcdStore {
    /// A range at the latest revision, or at `revision`.
    async fn range_maybe_at(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
        revision: Option<Revision>,
    ) -> Result<RangeResult, StoreError> {
        let (first, end) = self.range_of(prefix);
        let start = match start_after {
            Some(k) => {
                let mut s = self.full(k);
                s.push(0);
                s
            }
            None => first,
        };
        let mut opts = GetOptions::new()
            .with_range(end)
            .with_sort(SortTarget::Key, SortOrder::Ascend);
        if limit > 0 {
            opts = opts.with_limit(limit as i64);
        }
        if let Some(rev) = revision {
            opts = opts.with_revision(rev);
        }
        let resp = self
            .on_member(false, |mut kv| {
                let (start, opts) = (start.clone(), opts.clone());
                async move { kv.get(start, Some(opts)).await }
            })
            .await?;
        let kvs = resp
            .kvs()
            .iter()
            .map(|kv| self.kv_of(kv))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RangeResult {
            revision: resp.header().map(|h| h.revision()).unwrap_or(0),
            more: resp.more(),
            kvs,
        })
    }

    /// Whether etcd can still read at `revision` (false once compacted past it).
    async fn readable_at(&self, revision: Revision) -> Result<bool, StoreError> {
        let k = self.full("\u{0}probe");
        let r = self
            .on_member(false, |mut kv| {
                let k = k.clone();
                let opts = GetOptions::new().with_count_only().with_revision(revision);
                async move { kv.get(k, Some(opts)).await }
            })
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(e) if e.to_string().contains("compacted") => Ok(false),
            Err(e) if e.to_string().contains("future") => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// `Compacted` when a watch after `after` can no longer be served.
    async fn check_watchable(&self, after: Revision) -> Result<(), StoreError> {
        if self.readable_at(after + 1).await? {
            return Ok(());
        }
        Err(StoreError::Compacted {
            requested: after,
            compacted: self.compacted_revision().await?,
        })
    }

    /// Client URLs of the members, the one requests go to first leading.
    pub fn members(&self) -> Vec<String> {
        let n = self.members.len();
        let a = self.active.load(Ordering::Relaxed);
        (0..n)
            .map(|k| self.members[(a + k) % n].url.clone())
            .collect()
    }
}

/// One caller's watch: re-created from the last delivered revision when its stream breaks, so that a
/// dying etcd member costs a reconnect, not a relist.
struct EtcdWatch {
    store: EtcdStore,
    prefix: String,
    last: Revision,
    stream: Option<etcd_client::WatchStream>,
    pending: std::collections::VecDeque<Event>,
    failures: usize,
    done: bool,
}

impl EtcdWatch {
    async fn open(&mut self) -> Result<(), StoreError> {
        let (full, end) = self.store.range_of(&self.prefix);
        let opts = WatchOptions::new()
            .with_range(end)
            .with_start_revision(self.last + 1)
            .with_prev_key()
            .with_progress_notify();
        let n = self.store.members.len();
        let i = self.store.active.load(Ordering::Relaxed) % n;
        let mut stream = match self.store.members[i]
            .watch
            .clone()
            .watch(full, Some(opts))
            .await
        {
            Ok(s) => s,
            Err(e) => {
                self.store.active.store((i + 1) % n, Ordering::Relaxed);
                return Err(backend(e));
            }
        };
        // The first response confirms the watch, or cancels it because the revision is compacted.
        match stream.message().await.map_err(backend)? {
            Some(r) if r.canceled() && r.compact_revision() > 0 => {
                return Err(StoreError::Compacted {
                    requested: self.last,
                    compacted: r.compact_revision() - 1,
                })
            }
            Some(r) if r.canceled() => {
                return Err(StoreError::Backend(format!(
                    "etcd canceled the watch: {}",
                    r.cancel_reason()
                )))
            }
            Some(r) => self.take(&r)?,
            None => return Err(StoreError::Backend("etcd closed the watch".into())),
        }
        self.stream = Some(stream);
        Ok(())
    }

    fn take(&mut self, r: &etcd_client::WatchResponse) -> Result<(), StoreError> {
        for e in r.events() {
            let ev = self.store.event_of(e)?;
            if ev.kv.mod_revision > self.last {
                self.pending.push_back(ev);
            }
        }
        Ok(())
    }

    async fn next(&mut self) -> Option<Result<Event, StoreError>> {
        loop {
            if self.done {
                return None;
            }
            if let Some(ev) = self.pending.pop_front() {
                self.last = ev.kv.mod_revision;
                self.failures = 0;
                return Some(Ok(ev));
            }
            let result = match self.stream.as_mut() {
                Some(s) => s.message().await.map_err(backend),
                None => match self.open().await {
                    Ok(()) => continue,
                    Err(e) => Err(e),
                },
            };
            match result {
                Ok(Some(r)) if r.canceled() && r.compact_revision() > 0 => {
                    self.done = true;
                    return Some(Err(StoreError::Compacted {
                        requested: self.last,
                        compacted: r.compact_revision() - 1,
                    }));
                }
                Ok(Some(r)) if !r.canceled() => {
                    if let Err(e) = self.take(&r) {
                        self.done = true;
                        return Some(Err(e));
                    }
                }
                Err(e @ StoreError::Compacted { .. }) => {
                    self.done = true;
                    return Some(Err(e));
                }
                // The stream ended or broke (a member went away): open it again from where we are.
                other => {
                    self.stream = None;
                    self.failures += 1;
                    let n = self.store.members.len();
                    let i = self.store.active.load(Ordering::Relaxed);
                    self.store.active.store((i + 1) % n, Ordering::Relaxed);
                    if self.failures > WATCH_RETRIES {
                        self.done = true;
                        let e = match other {
                            Err(e) => e,
                            _ => StoreError::Backend("etcd watch keeps closing".into()),
                        };
                        return Some(Err(e));
                    }
                    tracing::debug!(prefix = %self.prefix, last = self.last, "re-creating etcd watch");
                    tokio::time::sleep(Duration::from_millis(50 * self.failures as u64)).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_the_last_byte_that_can_be() {
        assert_eq!(prefix_end(b"/a/"), b"/a0".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
    }

    #[test]
    fn first_failed_names_the_compare_that_did_not_hold() {
        let cs = vec![
            Compare::Absent("/a".into()),
            Compare::ModRevision("/b".into(), 4),
            Compare::Absent("/c".into()),
        ];
        assert_eq!(first_failed(&cs, &[None, Some(4), None]), None);
        assert_eq!(first_failed(&cs, &[None, Some(5), None]), Some(1));
        assert_eq!(first_failed(&cs, &[None, Some(4), Some(9)]), Some(2));
        assert_eq!(first_failed(&cs, &[Some(1), None, None]), Some(0));
    }
}
