//! Behaviour every Store backend must show, run against each of them: the embedded store, etcd (a real
//! 3-member cluster on loopback, started per test), and the watch cache in front of both (with a small
//! window, so that slow watchers fall back to the store and resume inside a revision).
//!
//! Revisions are counted from the store's revision at the start of each check: a fresh etcd starts at 1,
//! the embedded store at 0, and every successful write transaction adds exactly one on both.

use std::sync::Arc;

use etcd_testcluster::EtcdCluster;
use futures::StreamExt;
use store::embedded::EmbeddedStore;
use store::etcd::{EtcdConfig, EtcdStore};
use store::watch_cache::WatchCache;
use store::{Compare, EventType, Op, Store, StoreError, Txn};

/// A store and whatever keeps it alive (a temporary directory, an etcd cluster).
struct Backend {
    store: Arc<dyn Store>,
    _guard: Box<dyn std::any::Any + Send>,
}

fn embedded() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let s = EmbeddedStore::open(&dir.path().join("store.redb")).unwrap();
    Backend {
        store: Arc::new(s),
        _guard: Box::new(dir),
    }
}

/// A 3-member cluster and a store on it, under `prefix`.
async fn etcd_store(prefix: &str) -> (EtcdCluster, EtcdStore) {
    let cluster = tokio::task::spawn_blocking(|| EtcdCluster::start(3))
        .await
        .unwrap()
        .expect("start etcd (Debian's etcd-server; .ci/run installs it)");
    let cfg = EtcdConfig {
        servers: cluster.endpoints(),
        prefix: prefix.into(),
        ..Default::default()
    };
    let s = EtcdStore::connect(&cfg).await.expect("connect to etcd");
    (cluster, s)
}

async fn etcd() -> Backend {
    let (cluster, s) = etcd_store("/suite").await;
    Backend {
        store: Arc::new(s),
        _guard: Box::new(cluster),
    }
}

/// Small enough that the 6,000-event check overflows it.
const SMALL_WINDOW: usize = 512;

async fn cached(b: Backend) -> Backend {
    let c = WatchCache::start(b.store, SMALL_WINDOW).await.unwrap();
    Backend {
        store: Arc::new(c),
        _guard: b._guard,
    }
}

fn put(k: &str, v: &str) -> Txn {
    Txn::new().then(Op::Put(k.into(), v.as_bytes().to_vec()))
}

async fn put_get_and_revisions(s: Arc<dyn Store>) {
    let b = s.current_revision().await.unwrap();
    let r1 = s.txn(put("/a", "1")).await.unwrap();
    assert!(r1.succeeded);
    assert_eq!(r1.revision, b + 1);
    let r2 = s.txn(put("/a", "2")).await.unwrap();
    assert_eq!(r2.revision, b + 2);
    assert_eq!(s.current_revision().await.unwrap(), b + 2);
    let kv = s.get("/a").await.unwrap().unwrap();
    assert_eq!(kv.value, b"2");
    assert_eq!(kv.create_revision, b + 1);
    assert_eq!(kv.mod_revision, b + 2);
    assert!(s.get("/b").await.unwrap().is_none());
}

async fn compares_guard_every_op_of_a_txn(s: Arc<dyn Store>) {
    let b = s.current_revision().await.unwrap();
    s.txn(put("/a", "1")).await.unwrap();
    // Absent fails on an existing key, and nothing of the txn is applied.
    let r = s
        .txn(
            Txn::new()
                .when(Compare::Absent("/b".into()))
                .when(Compare::Absent("/a".into()))
                .then(Op::Put("/b".into(), b"x".to_vec())),
        )
        .await
        .unwrap();
    assert!(!r.succeeded);
    assert_eq!(r.failed_compare, Some(1));
    assert_eq!(r.revision, b + 1);
    assert!(s.get("/b").await.unwrap().is_none());
    // Stale mod revision fails; the current one succeeds and writes both keys at one revision.
    let stale = Txn::new()
        .when(Compare::ModRevision("/a".into(), b))
        .then(Op::Delete("/a".into()));
    let r = s.txn(stale).await.unwrap();
    assert!(!r.succeeded);
    assert_eq!(r.failed_compare, Some(0));
    let ok = Txn::new()
        .when(Compare::ModRevision("/a".into(), b + 1))
        .when(Compare::Absent("/c".into()))
        .then(Op::Delete("/a".into()))
        .then(Op::Put("/c".into(), b"y".to_vec()));
    let r = s.txn(ok).await.unwrap();
    assert!(r.succeeded);
    assert_eq!(r.revision, b + 2);
    assert!(s.get("/a").await.unwrap().is_none());
    assert_eq!(s.get("/c").await.unwrap().unwrap().mod_revision, b + 2);
    // A compare on a key that does not exist never holds for a mod revision.
    let r = s
        .txn(Txn::new().when(Compare::ModRevision("/a".into(), b + 1)))
        .await
        .unwrap();
    assert!(!r.succeeded);
}

async fn concurrent_creates_of_one_key_have_one_winner(s: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for i in 0..64 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let t = Txn::new()
                .when(Compare::Absent("/ip/10.0.0.1".into()))
                .then(Op::Put("/ip/10.0.0.1".into(), format!("{i}").into_bytes()));
            s.txn(t).await.unwrap().succeeded
        }));
    }
    let mut winners = 0;
    for t in tasks {
        winners += t.await.unwrap() as usize;
    }
    assert_eq!(winners, 1);
}

async fn range_by_prefix_with_paging(s: Arc<dyn Store>) {
    let b = s.current_revision().await.unwrap();
    for k in ["/r/a", "/r/b", "/r/c", "/rx/d", "/q/e"] {
        s.txn(put(k, "v")).await.unwrap();
    }
    let all = s.range("/r/", None, 0).await.unwrap();
    let keys: Vec<_> = all.kvs.iter().map(|k| k.key.as_str()).collect();
    assert_eq!(keys, ["/r/a", "/r/b", "/r/c"]);
    assert_eq!(all.revision, b + 5);
    assert!(!all.more);
    let p1 = s.range("/r/", None, 2).await.unwrap();
    assert_eq!(p1.kvs.len(), 2);
    assert!(p1.more);
    let p2 = s.range("/r/", Some("/r/b"), 2).await.unwrap();
    assert_eq!(p2.kvs.len(), 1);
    assert_eq!(p2.kvs[0].key, "/r/c");
    assert!(!p2.more);
    let everything = s.range("", None, 0).await.unwrap();
    assert_eq!(everything.kvs.len(), 5);
}

fn del(k: &str) -> Txn {
    Txn::new().then(Op::Delete(k.to_string()))
}

async fn keys_at(
    s: &Arc<dyn Store>,
    start_after: Option<&str>,
    limit: usize,
    at: i64,
) -> (Vec<String>, bool) {
    let r = s.range_at("/s/", start_after, limit, at).await.unwrap();
    assert_eq!(r.revision, at);
    let keys = r
        .kvs
        .iter()
        .map(|kv| format!("{}={}", kv.key, String::from_utf8_lossy(&kv.value)))
        .collect();
    (keys, r.more)
}

async fn range_at_reads_a_past_snapshot_page_by_page(s: Arc<dyn Store>) {
    for k in ["/s/b", "/s/d", "/s/f", "/t/x"] {
        s.txn(put(k, "1")).await.unwrap();
    }
    let snap = s.current_revision().await.unwrap();
    // After the snapshot: a key before every other, one updated twice, one deleted, one added in the middle
    // of the second page, and one outside the prefix.
    s.txn(put("/s/a", "2")).await.unwrap();
    s.txn(put("/s/d", "2")).await.unwrap();
    s.txn(put("/s/d", "3")).await.unwrap();
    s.txn(del("/s/f")).await.unwrap();
    s.txn(put("/s/e", "2")).await.unwrap();
    s.txn(put("/t/y", "2")).await.unwrap();
    let (p1, more) = keys_at(&s, None, 2, snap).await;
    assert_eq!(p1, ["/s/b=1", "/s/d=1"]);
    assert!(more);
    let (p2, more) = keys_at(&s, Some("/s/d"), 2, snap).await;
    assert_eq!(p2, ["/s/f=1"]);
    assert!(!more);
    let (all, more) = keys_at(&s, None, 0, snap).await;
    assert_eq!(all, ["/s/b=1", "/s/d=1", "/s/f=1"]);
    assert!(!more);
    // Mod revisions are the snapshot's too.
    let r = s.range_at("/s/", None, 0, snap).await.unwrap();
    assert!(r.kvs.iter().all(|kv| kv.mod_revision <= snap), "{r:?}");
    // At the latest revision it is the plain range.
    let now = s.current_revision().await.unwrap();
    let (latest, _) = keys_at(&s, None, 0, now).await;
    assert_eq!(latest, ["/s/a=2", "/s/b=1", "/s/d=3", "/s/e=2"]);
    let (p, more) = keys_at(&s, Some("/s/b"), 1, now).await;
    assert_eq!((p, more), (vec!["/s/d=3".to_string()], true));
    // A compacted snapshot is refused; the one after it still reads.
    s.compact(snap).await.unwrap();
    match s.range_at("/s/", None, 0, snap).await {
        Err(StoreError::Compacted { requested, .. }) => assert_eq!(requested, snap),
        other => panic!("expected Compacted, got {other:?}"),
    }
    let (after, _) = keys_at(&s, None, 0, snap + 1).await;
    assert_eq!(after, ["/s/a=2", "/s/b=1", "/s/d=1", "/s/f=1"]);
}

async fn watch_from_revision_sees_history_then_live_events_in_order(s: Arc<dyn Store>) {
    let b = s.current_revision().await.unwrap();
    s.txn(put("/w/a", "1")).await.unwrap(); // b+1
    s.txn(put("/other", "1")).await.unwrap(); // b+2
    s.txn(put("/w/a", "2")).await.unwrap(); // b+3
    let mut w = s.watch("/w/", b + 1).await.unwrap();
    let e = w.next().await.unwrap().unwrap();
    assert_eq!((e.kv.mod_revision, e.event_type), (b + 3, EventType::Put));
    assert_eq!(e.prev.unwrap().value, b"1");
    s.txn(Txn::new().then(Op::Delete("/w/a".into())))
        .await
        .unwrap(); // b+4
    let e = w.next().await.unwrap().unwrap();
    assert_eq!(
        (e.kv.mod_revision, e.event_type),
        (b + 4, EventType::Delete)
    );
    assert_eq!(e.kv.key, "/w/a");
    assert_eq!(e.prev.unwrap().value, b"2");
    // Two keys in one transaction: two events at one revision, both delivered.
    s.txn(put("/w/x", "1").then(Op::Put("/w/y".into(), b"1".to_vec())))
        .await
        .unwrap(); // b+5
    let e1 = w.next().await.unwrap().unwrap();
    let e2 = w.next().await.unwrap().unwrap();
    assert_eq!((e1.kv.mod_revision, e2.kv.mod_revision), (b + 5, b + 5));
    assert_eq!((e1.kv.key.as_str(), e2.kv.key.as_str()), ("/w/x", "/w/y"));
}

/// Writers running while a watcher reads: every event exactly once, in revision order.
async fn watch_under_concurrent_writes_has_no_gap_or_duplicate(s: Arc<dyn Store>) {
    let b = s.current_revision().await.unwrap();
    let n = 3000;
    let mut w = s.watch("/c/", b).await.unwrap();
    let reader = tokio::spawn(async move {
        let mut last = b;
        for _ in 0..n {
            let e = w.next().await.unwrap().unwrap();
            assert_eq!(e.kv.mod_revision, last + 1, "gap or duplicate");
            last = e.kv.mod_revision;
        }
    });
    write_concurrently(&s, "/c/", n).await;
    reader.await.unwrap();
}

/// A watcher that reads nothing while thousands of events pass (more than the embedded broadcast and the
/// cache window hold) catches up from the log or the store with no gap.
async fn slow_watcher_catches_up_without_gap(s: Arc<dyn Store>) {
    let b = s.current_revision().await.unwrap();
    let mut w = s.watch("/c/", b).await.unwrap();
    let n = 6000;
    write_concurrently(&s, "/c/", n).await;
    let mut last = b;
    for _ in 0..n {
        let e = w.next().await.unwrap().unwrap();
        assert_eq!(e.kv.mod_revision, last + 1, "gap or duplicate");
        last = e.kv.mod_revision;
    }
}

async fn write_concurrently(s: &Arc<dyn Store>, prefix: &str, n: usize) {
    let writers: Vec<_> = (0..8)
        .map(|t| {
            let s = s.clone();
            let prefix = prefix.to_string();
            tokio::spawn(async move {
                for i in 0..n / 8 {
                    s.txn(put(&format!("{prefix}{t}-{i}"), "v")).await.unwrap();
                }
            })
        })
        .collect();
    for wr in writers {
        wr.await.unwrap();
    }
}

async fn compaction_makes_old_watches_fail(s: Arc<dyn Store>) {
    let b = s.current_revision().await.unwrap();
    for i in 0..5 {
        s.txn(put("/k", &i.to_string())).await.unwrap();
    }
    s.compact(b + 3).await.unwrap();
    assert_eq!(s.compacted_revision().await.unwrap(), b + 3);
    match s.watch("/", b + 2).await {
        Err(StoreError::Compacted {
            requested,
            compacted,
        }) => assert_eq!((requested, compacted), (b + 2, b + 3)),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("watch from a compacted revision succeeded"),
    }
    let mut w = s.watch("/", b + 3).await.unwrap();
    assert_eq!(w.next().await.unwrap().unwrap().kv.mod_revision, b + 4);
    // Compacting again at or below what is compacted is not an error.
    s.compact(b + 2).await.unwrap();
}

/// One `#[tokio::test]` per check and backend.
macro_rules! suite {
    ($($check:ident),* $(,)?) => {
        mod on_embedded {
            use super::*;
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() { super::$check(embedded().store).await })*
        }
        mod on_embedded_with_watch_cache {
            use super::*;
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let b = cached(embedded()).await;
                super::$check(b.store.clone()).await
            })*
        }
        mod on_etcd {
            use super::*;
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let b = etcd().await;
                super::$check(b.store.clone()).await
            })*
        }
        mod on_etcd_with_watch_cache {
            use super::*;
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let b = cached(etcd().await).await;
                super::$check(b.store.clone()).await
            })*
        }
    };
}

suite!(
    put_get_and_revisions,
    compares_guard_every_op_of_a_txn,
    concurrent_creates_of_one_key_have_one_winner,
    range_by_prefix_with_paging,
    range_at_reads_a_past_snapshot_page_by_page,
    watch_from_revision_sees_history_then_live_events_in_order,
    watch_under_concurrent_writes_has_no_gap_or_duplicate,
    compaction_makes_old_watches_fail,
    slow_watcher_catches_up_without_gap,
);

#[tokio::test]
async fn embedded_state_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    {
        let s = EmbeddedStore::open(&path).unwrap();
        s.txn(put("/p", "1")).await.unwrap();
        s.txn(put("/p", "2")).await.unwrap();
        s.compact(1).await.unwrap();
    }
    // The writer thread of the first handle exits when its channel closes; give redb's lock a moment by retrying.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let s = loop {
        match EmbeddedStore::open(&path) {
            Ok(s) => break s,
            Err(e) if std::time::Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(e) => panic!("reopen: {e}"),
        }
    };
    assert_eq!(s.current_revision().await.unwrap(), 2);
    assert_eq!(s.compacted_revision().await.unwrap(), 1);
    assert_eq!(s.get("/p").await.unwrap().unwrap().value, b"2");
}

/// A watch rides out the death of the etcd member it was reading from: it resumes from its last revision,
/// with no gap and no duplicate, and writes continue through the surviving members.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_watch_and_writes_survive_a_member_kill() {
    let (mut cluster, s) = etcd_store("/kill").await;
    let s: Arc<dyn Store> = Arc::new(s);
    let b = s.current_revision().await.unwrap();
    let mut w = s.watch("/", b).await.unwrap();
    let mut acked = 0i64;
    for i in 0..400 {
        if i == 150 {
            cluster.kill(0);
        }
        // A write in flight when the member dies may fail; the client retries, as an API server's
        // client would get a 5xx and retry.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            match s.txn(put(&format!("/k{i}"), "v")).await {
                Ok(r) if r.succeeded => {
                    acked += 1;
                    break;
                }
                other => {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "writes did not resume after a member kill: {other:?}"
                    );
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            }
        }
    }
    // Every acknowledged write is there, and the watch saw each exactly once, in order.
    assert_eq!(s.range("/k", None, 0).await.unwrap().kvs.len(), 400);
    let mut keys = std::collections::BTreeSet::new();
    let mut last = b;
    while keys.len() < 400 {
        let e = tokio::time::timeout(std::time::Duration::from_secs(20), w.next())
            .await
            .expect("watch stalled after the member kill")
            .unwrap()
            .unwrap();
        assert!(e.kv.mod_revision > last, "duplicate or out of order");
        last = e.kv.mod_revision;
        assert!(keys.insert(e.kv.key.clone()), "duplicate {}", e.kv.key);
    }
    assert_eq!(acked, 400);
}

/// `--etcd-cafile/--etcd-certfile/--etcd-keyfile`: against a cluster that requires client certificates,
/// the store works with them and is refused without.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_over_tls_with_a_client_certificate() {
    let cluster = tokio::task::spawn_blocking(|| EtcdCluster::start_tls(1))
        .await
        .unwrap()
        .expect("start etcd with TLS");
    let tls = cluster.client_tls().unwrap().clone();
    let cfg = EtcdConfig {
        servers: cluster.endpoints(),
        prefix: "/tls".into(),
        ca_file: Some(tls.ca_file.clone()),
        cert_file: Some(tls.cert_file.clone()),
        key_file: Some(tls.key_file.clone()),
    };
    let s = EtcdStore::connect(&cfg).await.expect("connect over TLS");
    let r = s.txn(put("/a", "1")).await.unwrap();
    assert!(r.succeeded);
    assert_eq!(s.get("/a").await.unwrap().unwrap().value, b"1");

    // The CA alone (no client certificate) is not enough for a cluster with client-cert-auth.
    let no_cert = EtcdConfig {
        cert_file: None,
        key_file: None,
        ..cfg.clone()
    };
    assert!(EtcdStore::connect(&no_cert).await.is_err());
    // A certificate without its key is refused before connecting.
    let half = EtcdConfig {
        key_file: None,
        ..cfg
    };
    match EtcdStore::connect(&half).await {
        Err(e) => assert!(e.to_string().contains("--etcd-keyfile"), "{e}"),
        Ok(_) => panic!("a certificate without its key was accepted"),
    }
}
