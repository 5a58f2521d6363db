//! The agent's watches (Services, EndpointSlices, its Node) through `kube`'s watcher, so the same agent runs
//! against svcplane's API server and a real cluster. Each event is sent to the sync loop as it comes; the loop
//! batches whatever arrived while it was applying.

use std::sync::mpsc::Sender;
use std::time::Instant;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client, ResourceExt};

use announce::{Feed, FeedKind};

/// One change for the sync loop.
#[derive(Debug)]
pub enum Change {
    Service(Box<Service>),
    ServiceGone(String, String),
    Slice(Box<EndpointSlice>),
    SliceGone(String, String),
    Node(Box<Node>),
    /// A list of this kind begins (after a watch could not resume): objects it does not hold are gone.
    ListStart(Kind),
    ListDone(Kind),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Service,
    Slice,
    Node,
}

pub type Timed = (Instant, Change);

/// Runs the three watches until the receiver is gone; Service and EndpointSlice events go to the
/// announcer's `feed` too.
pub async fn run(client: Client, node_name: String, tx: Sender<Timed>, feed: Option<Feed>) {
    let nodes = Api::<Node>::all(client.clone());
    let node_cfg = watcher::Config::default().fields(&format!("metadata.name={node_name}"));
    tokio::join!(
        watch(
            Api::<Service>::all(client.clone()),
            watcher::Config::default(),
            Kind::Service,
            tx.clone(),
            feed.clone()
        ),
        watch(
            Api::<EndpointSlice>::all(client),
            watcher::Config::default(),
            Kind::Slice,
            tx.clone(),
            feed
        ),
        watch(nodes, node_cfg, Kind::Node, tx, None),
    );
}

fn change(kind: Kind, obj: Obj, gone: bool) -> Change {
    match (obj, gone) {
        (Obj::Service(s), false) => Change::Service(s),
        (Obj::Service(s), true) => {
            Change::ServiceGone(s.namespace().unwrap_or_default(), s.name_any())
        }
        (Obj::Slice(s), false) => Change::Slice(s),
        (Obj::Slice(s), true) => Change::SliceGone(s.namespace().unwrap_or_default(), s.name_any()),
        (Obj::Node(n), _) => {
            let _ = kind;
            Change::Node(n)
        }
    }
}

enum Obj {
    Service(Box<Service>),
    Slice(Box<EndpointSlice>),
    Node(Box<Node>),
}

trait IntoObj {
    fn into_obj(self) -> Obj;
}
impl IntoObj for Service {
    fn into_obj(self) -> Obj {
        Obj::Service(Box::new(self))
    }
}
impl IntoObj for EndpointSlice {
    fn into_obj(self) -> Obj {
        Obj::Slice(Box::new(self))
    }
}
impl IntoObj for Node {
    fn into_obj(self) -> Obj {
        Obj::Node(Box::new(self))
    }
}

async fn watch<K>(
    api: Api<K>,
    cfg: watcher::Config,
    kind: Kind,
    tx: Sender<Timed>,
    feed: Option<Feed>,
) where
    K: kube::Resource
        + IntoObj
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + 'static,
    K::DynamicType: Default,
{
    let mut stream = watcher::watcher(api, cfg).default_backoff().boxed();
    while let Some(event) = stream.next().await {
        let msg = match event {
            Ok(Event::Apply(obj)) | Ok(Event::InitApply(obj)) => {
                change(kind, obj.into_obj(), false)
            }
            Ok(Event::Delete(obj)) => {
                if kind == Kind::Node {
                    continue;
                }
                change(kind, obj.into_obj(), true)
            }
            Ok(Event::Init) => Change::ListStart(kind),
            Ok(Event::InitDone) => Change::ListDone(kind),
            Err(e) => {
                tracing::warn!(?kind, error = %e, "agent: watch failed; retrying");
                continue;
            }
        };
        if let Some(f) = &feed {
            tell(f, &msg);
        }
        if tx.send((Instant::now(), msg)).is_err() {
            return;
        }
    }
}

/// Passes a change on to the announcer.
fn tell(feed: &Feed, change: &Change) {
    match change {
        Change::Service(s) => feed.service(s),
        Change::ServiceGone(ns, name) => feed.service_gone(ns, name),
        Change::Slice(s) => feed.slice(s),
        Change::SliceGone(ns, name) => feed.slice_gone(ns, name),
        Change::ListStart(Kind::Service) => feed.list_start(FeedKind::Service),
        Change::ListDone(Kind::Service) => feed.list_done(FeedKind::Service),
        Change::ListStart(Kind::Slice) => feed.list_start(FeedKind::Slice),
        Change::ListDone(Kind::Slice) => feed.list_done(FeedKind::Slice),
        Change::Node(_) | Change::ListStart(Kind::Node) | Change::ListDone(Kind::Node) => {}
    }
}
