//! The object store behind the API server, shaped like etcd v3: one global revision, values carrying
//! their create/mod revisions, multi-key conditional transactions, watch from a revision, compaction.
//!
//! It owns durability and ordering of writes and nothing else: it knows nothing of Kubernetes objects,
//! validation or allocation (those live in the API server, which composes them into one [`Txn`]).
//! Backends: [`embedded::EmbeddedStore`] (redb, the default) and [`etcd::EtcdStore`] (`--etcd-servers`),
//! which [`watch_cache::WatchCache`] fronts so that every API watch is served from one etcd watch.

pub mod embedded;
mod encoding;
pub mod etcd;
pub mod watch_cache;

use futures::stream::BoxStream;

/// A store revision, as etcd counts them: every successful write transaction increments it by one.
pub type Revision = i64;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Vec<u8>,
    /// Revision of the transaction that created the key (0 for a deleted key's tombstone).
    pub create_revision: Revision,
    /// Revision of the transaction that last wrote (or deleted) the key.
    pub mod_revision: Revision,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Compare {
    /// The key must not exist.
    Absent(String),
    /// The key must exist and have been last written at exactly this revision.
    ModRevision(String, Revision),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Put(String, Vec<u8>),
    Delete(String),
}

/// All compares must hold for the ops to be applied, atomically, at one new revision.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Txn {
    pub compares: Vec<Compare>,
    pub ops: Vec<Op>,
}

impl Txn {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn when(mut self, c: Compare) -> Self {
        self.compares.push(c);
        self
    }
    pub fn then(mut self, op: Op) -> Self {
        self.ops.push(op);
        self
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnResponse {
    pub succeeded: bool,
    /// On success the revision the ops were written at; on failure the store's current revision.
    pub revision: Revision,
    /// On failure, the index of the first compare that did not hold.
    pub failed_compare: Option<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Put,
    Delete,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub event_type: EventType,
    /// For a delete: the key, an empty value, and `mod_revision` the deleting revision.
    pub kv: KeyValue,
    /// The value before this event, if the key existed.
    pub prev: Option<KeyValue>,
}

#[derive(Clone, Debug, Default)]
pub struct RangeResult {
    pub kvs: Vec<KeyValue>,
    /// The store revision the range was read at.
    pub revision: Revision,
    /// Whether keys beyond `limit` remain.
    pub more: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("required revision {requested} has been compacted (compacted revision {compacted})")]
    Compacted {
        requested: Revision,
        compacted: Revision,
    },
    #[error("storage backend: {0}")]
    Backend(String),
    #[error("corrupt record: {0}")]
    Corrupt(String),
    #[error("store is closed")]
    Closed,
}

pub type WatchStream = BoxStream<'static, Result<Event, StoreError>>;

#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError>;
    /// Keys starting with `prefix`, in key order, strictly after `start_after` when given; at most `limit`
    /// (0 = no limit).
    async fn range(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<RangeResult, StoreError>;
    /// [`Store::range`] as the keys were at `revision` (a snapshot read, for list pages that must agree with
    /// the first page); `RangeResult::revision` is `revision`. `Compacted` when `revision` is at or below the
    /// compacted revision.
    async fn range_at(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
        revision: Revision,
    ) -> Result<RangeResult, StoreError>;
    async fn txn(&self, txn: Txn) -> Result<TxnResponse, StoreError>;
    /// Events for keys under `prefix` with revision strictly greater than `after`, in revision order,
    /// with no gap and no duplicate; `Compacted` when `after` is older than the compacted revision.
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError>;
    /// Forget history at and below `revision`: watches from there on fail with `Compacted`.
    async fn compact(&self, revision: Revision) -> Result<(), StoreError>;
    async fn current_revision(&self) -> Result<Revision, StoreError>;
    async fn compacted_revision(&self) -> Result<Revision, StoreError>;
}
