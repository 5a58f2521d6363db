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

/// GET `path` with the client's credentials: the status code and the JSON body, whatever the code.
async fn get_json(c: &Client, path: &str) -> (u16, serde_json::Value) {
    let req = http::Request::get(path).body(Vec::new()).unwrap();
    let resp = c.send(req.map(kube::client::Body::from)).await.unwrap();
    let code = resp.status().as_u16();
    let body = resp.into_body().collect_bytes().await.unwrap();
    (code, serde_json::from_slice(&body).unwrap())
}

fn names(list: &serde_json::Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

async fn paging_namespace(c: &Client) -> Api<Service> {
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(c.clone());
    let ns = serde_json::from_value(serde_json::json!({"metadata": {"name": "paging"}})).unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    Api::namespaced(c.clone(), "paging")
}

#[tokio::test(flavor = "multi_thread")]
async fn paged_lists_are_snapshots_of_the_first_page() {
    let s = ApiServer::start();
    let c = client(&s).await;
    let api = paging_namespace(&c).await;
    let pp = PostParams::default();
    for n in ["a", "c", "e", "g"] {
        api.create(&pp, &svc(n)).await.unwrap();
    }
    let first = api.list(&ListParams::default().limit(2)).await.unwrap();
    let got: Vec<_> = first
        .iter()
        .filter_map(|s| s.metadata.name.clone())
        .collect();
    assert_eq!(got, ["a", "c"]);
    let token = first.metadata.continue_.clone().unwrap();
    let rv = first.metadata.resource_version.clone().unwrap();

    // Between the pages: one created before the cursor, one after it, one deleted, one changed.
    api.create(&pp, &svc("b")).await.unwrap();
    api.create(&pp, &svc("f")).await.unwrap();
    api.delete("e", &DeleteParams::default()).await.unwrap();
    let mut g = api.get("g").await.unwrap();
    g.metadata
        .labels
        .get_or_insert_with(Default::default)
        .insert("changed".into(), "yes".into());
    api.replace("g", &pp, &g).await.unwrap();

    let second = api
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .unwrap();
    let got: Vec<_> = second
        .iter()
        .filter_map(|s| s.metadata.name.clone())
        .collect();
    assert_eq!(
        got,
        ["e", "g"],
        "the second page shows the first page's state"
    );
    assert_eq!(
        second.metadata.resource_version.as_deref(),
        Some(rv.as_str())
    );
    assert!(second.items[1]
        .metadata
        .labels
        .as_ref()
        .unwrap()
        .get("changed")
        .is_none());
    assert!(second.metadata.continue_.is_none());

    // A new list sees the present; the kube crate's pager (every page) agrees with it.
    let now = api.list(&ListParams::default()).await.unwrap();
    let got: Vec<_> = now.iter().filter_map(|s| s.metadata.name.clone()).collect();
    assert_eq!(got, ["a", "b", "c", "f", "g"]);
    let paged: Vec<String> = kube::runtime::watcher::watcher(
        api.clone(),
        kube::runtime::watcher::Config::default().page_size(1),
    )
    .take_while(|e| {
        futures::future::ready(!matches!(e, Ok(kube::runtime::watcher::Event::InitDone)))
    })
    .filter_map(|e| async move {
        match e {
            Ok(kube::runtime::watcher::Event::InitApply(s)) => s.metadata.name,
            _ => None,
        }
    })
    .collect()
    .await;
    assert_eq!(paged, ["a", "b", "c", "f", "g"]);

    // kubectl's own paging (--chunk-size) too.
    let out = s.kubectl_ok(&["get", "svc", "-n", "paging", "--chunk-size=1", "-o", "name"]);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "service/a",
            "service/b",
            "service/c",
            "service/f",
            "service/g"
        ]
    );

    // resourceVersionMatch=Exact reads that revision too.
    let (code, exact) = get_json(
        &c,
        &format!(
            "/api/v1/namespaces/paging/services?resourceVersion={rv}&resourceVersionMatch=Exact"
        ),
    )
    .await;
    assert_eq!(code, 200, "{exact}");
    assert_eq!(names(&exact), ["a", "c", "e", "g"]);
    assert_eq!(exact["metadata"]["resourceVersion"], rv.as_str());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_compacted_continue_is_410_with_a_token_for_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let s = ApiServer::start_in(tmp.path(), &["--etcd-compaction-interval", "1"]);
    let c = client(&s).await;
    let api = paging_namespace(&c).await;
    let pp = PostParams::default();
    for n in ["a", "b", "c"] {
        api.create(&pp, &svc(n)).await.unwrap();
    }
    let (_, first) = get_json(&c, "/api/v1/namespaces/paging/services?limit=1").await;
    assert_eq!(names(&first), ["a"]);
    let token = first["metadata"]["continue"].as_str().unwrap().to_string();
    let path = format!("/api/v1/namespaces/paging/services?limit=1&continue={token}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut writes = 0;
    let expired = loop {
        // Keep writing so that compaction passes the first page's revision.
        writes += 1;
        api.create(&pp, &svc(&format!("z{writes}"))).await.unwrap();
        let (code, body) = get_json(&c, &path).await;
        if code == 410 {
            break body;
        }
        assert_eq!(code, 200, "{body}");
        assert_eq!(names(&body), ["b"], "until compacted, the snapshot");
        assert!(
            std::time::Instant::now() < deadline,
            "not compacted within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(expired["reason"], "Expired");
    assert!(expired["message"].as_str().unwrap().starts_with(
        "The provided continue parameter is too old to display a consistent list result."
    ));
    // The token in the answer resumes after "a" at the latest state.
    let inconsistent = expired["metadata"]["continue"].as_str().unwrap();
    let (code, rest) = get_json(
        &c,
        &format!("/api/v1/namespaces/paging/services?limit=1&continue={inconsistent}"),
    )
    .await;
    assert_eq!(code, 200, "{rest}");
    assert_eq!(names(&rest), ["b"]);
}
