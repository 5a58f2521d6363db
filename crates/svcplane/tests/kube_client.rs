//! The API server driven by the `kube` crate, as controllers drive it: CRUD, optimistic concurrency,
//! watches resuming from a revision, and 410 after compaction.

mod common;

use std::time::Duration;

use common::ApiServer;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, DeleteParams, ListParams, PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::Client;

async fn client(s: &ApiServer) -> Client {
    let kc = Kubeconfig::read_from(s.kubeconfig()).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    Client::try_from(cfg).unwrap()
}

fn svc(name: &str) -> Service {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "labels": {"suite": "kube"}},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80}]},
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn crud_conflicts_and_watch_resume() {
    let s = ApiServer::start();
    let c = client(&s).await;
    let api: Api<Service> = Api::namespaced(c, "default");
    let created = api.create(&PostParams::default(), &svc("a")).await.unwrap();
    let rv1 = created.metadata.resource_version.clone().unwrap();
    assert!(created.spec.as_ref().unwrap().cluster_ip.is_some());

    // A second create of the same name is 409 AlreadyExists.
    match api.create(&PostParams::default(), &svc("a")).await {
        Err(kube::Error::Api(e)) => assert_eq!((e.code, e.reason.as_str()), (409, "AlreadyExists")),
        other => panic!("expected 409, got {other:?}"),
    }

    // Update with the current version succeeds; replaying the stale one is 409 Conflict.
    let mut upd = created.clone();
    upd.metadata
        .labels
        .get_or_insert_with(Default::default)
        .insert("v".into(), "2".into());
    let updated = api
        .replace("a", &PostParams::default(), &upd)
        .await
        .unwrap();
    assert_ne!(
        updated.metadata.resource_version.as_deref(),
        Some(rv1.as_str())
    );
    match api.replace("a", &PostParams::default(), &upd).await {
        Err(kube::Error::Api(e)) => assert_eq!((e.code, e.reason.as_str()), (409, "Conflict")),
        other => panic!("expected 409, got {other:?}"),
    }

    // A watch resumed from rv1 sees the update and then new events, in order.
    api.create(&PostParams::default(), &svc("b")).await.unwrap();
    api.delete("b", &DeleteParams::default()).await.unwrap();
    let events: Vec<WatchEvent<Service>> = api
        .watch(&WatchParams::default().timeout(10), &rv1)
        .await
        .unwrap()
        .take(3)
        .try_collect()
        .await
        .unwrap();
    let kinds: Vec<String> = events
        .iter()
        .map(|e| match e {
            WatchEvent::Added(o) => format!("ADDED {}", o.metadata.name.as_deref().unwrap_or("")),
            WatchEvent::Modified(o) => {
                format!("MODIFIED {}", o.metadata.name.as_deref().unwrap_or(""))
            }
            WatchEvent::Deleted(o) => {
                format!("DELETED {}", o.metadata.name.as_deref().unwrap_or(""))
            }
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(kinds, ["MODIFIED a", "ADDED b", "DELETED b"]);

    // Paging and label selectors.
    for n in ["c", "d", "e"] {
        api.create(&PostParams::default(), &svc(n)).await.unwrap();
    }
    let page1 = api
        .list(&ListParams::default().labels("suite=kube").limit(2))
        .await
        .unwrap();
    assert_eq!(page1.items.len(), 2);
    let token = page1.metadata.continue_.clone().expect("continue token");
    let page2 = api
        .list(
            &ListParams::default()
                .labels("suite=kube")
                .limit(2)
                .continue_token(&token),
        )
        .await
        .unwrap();
    let mut names: Vec<String> = page1
        .items
        .iter()
        .chain(page2.items.iter())
        .filter_map(|s| s.metadata.name.clone())
        .collect();
    names.sort();
    assert_eq!(names, ["a", "c", "d", "e"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_from_a_compacted_revision_is_410() {
    let tmp = tempfile::tempdir().unwrap();
    let s = ApiServer::start_in(tmp.path(), &["--etcd-compaction-interval", "1"]);
    let c = client(&s).await;
    let api: Api<Service> = Api::namespaced(c, "default");
    let first = api
        .create(&PostParams::default(), &svc("old"))
        .await
        .unwrap();
    let rv = first.metadata.resource_version.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        // Keep writing so compaction has something to pass.
        let mut o = api.get("old").await.unwrap();
        o.metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert(
                "tick".into(),
                format!("{:?}", std::time::Instant::now())
                    .chars()
                    .filter(|c| c.is_ascii_digit())
                    .take(8)
                    .collect(),
            );
        api.replace("old", &PostParams::default(), &o)
            .await
            .unwrap();
        let mut w = api
            .watch(&WatchParams::default().timeout(2), &rv)
            .await
            .unwrap()
            .boxed();
        match w.next().await {
            Some(Ok(WatchEvent::Error(e))) => {
                assert_eq!((e.code, e.reason.as_str()), (410, "Expired"));
                return;
            }
            _ if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            other => panic!("no 410 within 30 s; last: {other:?}"),
        }
    }
}
