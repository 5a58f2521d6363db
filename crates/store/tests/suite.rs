//! Behaviour every Store backend must show. Runs against the embedded backend here; the etcd backend
//! reuses the same checks.

use std::sync::Arc;

use futures::StreamExt;
use store::embedded::EmbeddedStore;
use store::{Compare, EventType, Op, Store, StoreError, Txn};

fn open() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let s = EmbeddedStore::open(&dir.path().join("store.redb")).unwrap();
    (dir, Arc::new(s))
}

fn put(k: &str, v: &str) -> Txn {
    Txn::new().then(Op::Put(k.into(), v.as_bytes().to_vec()))
}

#[tokio::test]
async fn put_get_and_revisions() {
    let (_d, s) = open();
    assert_eq!(s.current_revision().await.unwrap(), 0);
    let r1 = s.txn(put("/a", "1")).await.unwrap();
    assert!(r1.succeeded);
    assert_eq!(r1.revision, 1);
    let r2 = s.txn(put("/a", "2")).await.unwrap();
    assert_eq!(r2.revision, 2);
    let kv = s.get("/a").await.unwrap().unwrap();
    assert_eq!(kv.value, b"2");
    assert_eq!(kv.create_revision, 1);
    assert_eq!(kv.mod_revision, 2);
    assert!(s.get("/b").await.unwrap().is_none());
}

#[tokio::test]
async fn compares_guard_every_op_of_a_txn() {
    let (_d, s) = open();
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
    assert!(s.get("/b").await.unwrap().is_none());
    // Stale mod revision fails; the current one succeeds and writes both keys at one revision.
    let stale = Txn::new()
        .when(Compare::ModRevision("/a".into(), 0))
        .then(Op::Delete("/a".into()));
    assert!(!s.txn(stale).await.unwrap().succeeded);
    let ok = Txn::new()
        .when(Compare::ModRevision("/a".into(), 1))
        .then(Op::Delete("/a".into()))
        .then(Op::Put("/c".into(), b"y".to_vec()));
    let r = s.txn(ok).await.unwrap();
    assert!(r.succeeded);
    assert_eq!(r.revision, 2);
    assert!(s.get("/a").await.unwrap().is_none());
    assert_eq!(s.get("/c").await.unwrap().unwrap().mod_revision, 2);
}

#[tokio::test]
async fn concurrent_creates_of_one_key_have_one_winner() {
    let (_d, s) = open();
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

#[tokio::test]
async fn range_by_prefix_with_paging() {
    let (_d, s) = open();
    for k in ["/r/a", "/r/b", "/r/c", "/rx/d", "/q/e"] {
        s.txn(put(k, "v")).await.unwrap();
    }
    let all = s.range("/r/", None, 0).await.unwrap();
    let keys: Vec<_> = all.kvs.iter().map(|k| k.key.as_str()).collect();
    assert_eq!(keys, ["/r/a", "/r/b", "/r/c"]);
    assert_eq!(all.revision, 5);
    let p1 = s.range("/r/", None, 2).await.unwrap();
    assert_eq!(p1.kvs.len(), 2);
    assert!(p1.more);
    let p2 = s.range("/r/", Some("/r/b"), 2).await.unwrap();
    assert_eq!(p2.kvs.len(), 1);
    assert_eq!(p2.kvs[0].key, "/r/c");
    assert!(!p2.more);
}

#[tokio::test]
async fn watch_from_revision_sees_history_then_live_events_in_order() {
    let (_d, s) = open();
    s.txn(put("/w/a", "1")).await.unwrap(); // rev 1
    s.txn(put("/other", "1")).await.unwrap(); // rev 2
    s.txn(put("/w/a", "2")).await.unwrap(); // rev 3
    let mut w = s.watch("/w/", 1).await.unwrap();
    let e = w.next().await.unwrap().unwrap();
    assert_eq!((e.kv.mod_revision, e.event_type), (3, EventType::Put));
    assert_eq!(e.prev.unwrap().value, b"1");
    s.txn(Txn::new().then(Op::Delete("/w/a".into())))
        .await
        .unwrap(); // rev 4
    let e = w.next().await.unwrap().unwrap();
    assert_eq!((e.kv.mod_revision, e.event_type), (4, EventType::Delete));
    assert_eq!(e.prev.unwrap().value, b"2");
}

#[tokio::test]
async fn watch_under_concurrent_writes_has_no_gap_or_duplicate() {
    let (_d, s) = open();
    let mut w = s.watch("/c/", 0).await.unwrap();
    let n = 6000; // more than the broadcast capacity, so a slow watcher exercises log catch-up
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let s = s.clone();
            tokio::spawn(async move {
                for i in 0..n / 4 {
                    s.txn(put(&format!("/c/{t}-{i}"), "v")).await.unwrap();
                }
            })
        })
        .collect();
    for wr in writers {
        wr.await.unwrap();
    }
    let mut last = 0;
    for _ in 0..n {
        let e = w.next().await.unwrap().unwrap();
        assert_eq!(e.kv.mod_revision, last + 1, "gap or duplicate");
        last = e.kv.mod_revision;
    }
}

#[tokio::test]
async fn compaction_makes_old_watches_fail() {
    let (_d, s) = open();
    for i in 0..5 {
        s.txn(put("/k", &i.to_string())).await.unwrap();
    }
    s.compact(3).await.unwrap();
    assert_eq!(s.compacted_revision().await.unwrap(), 3);
    match s.watch("/", 2).await {
        Err(StoreError::Compacted {
            requested: 2,
            compacted: 3,
        }) => {}
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("watch from a compacted revision succeeded"),
    }
    let mut w = s.watch("/", 3).await.unwrap();
    assert_eq!(w.next().await.unwrap().unwrap().kv.mod_revision, 4);
}

#[tokio::test]
async fn state_survives_reopen() {
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
