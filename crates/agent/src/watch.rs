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
            tx.clone(),
            feed.clone()
        ),
        watch(
            Api::<EndpointSlice>::all(client),
            watcher::Config::default(),
            tx.clone(),
            feed
        ),
        watch(nodes, node_cfg, tx, None),
    );
}

/// A kind the agent watches, and how its events become changes.
trait Watched:
    kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static
{
    const KIND: Kind;
    fn applied(self) -> Change;
    /// `None` for a deletion the sync loop does not act on (its own Node going away).
    fn gone(self) -> Option<Change>;
}

impl Watched for Service {
    const KIND: Kind = Kind::Service;
    fn applied(self) -> Change {
        Change::Service(Box::new(self))
    }
    fn gone(self) -> Option<Change> {
        Some(Change::ServiceGone(
            self.namespace().unwrap_or_default(),
            self.name_any(),
        ))
    }
}

impl Watched for EndpointSlice {
    const KIND: Kind = Kind::Slice;
    fn applied(self) -> Change {
        Change::Slice(Box::new(self))
    }
    fn gone(self) -> Option<Change> {
        Some(Change::SliceGone(
            self.namespace().unwrap_or_default(),
            self.name_any(),
        ))
    }
}

impl Watched for Node {
    const KIND: Kind = Kind::Node;
    fn applied(self) -> Change {
        Change::Node(Box::new(self))
    }
    fn gone(self) -> Option<Change> {
        None
    }
}

async fn watch<K>(api: Api<K>, cfg: watcher::Config, tx: Sender<Timed>, feed: Option<Feed>)
where
    K: Watched,
    K::DynamicType: Default,
{
    let kind = K::KIND;
    let mut stream = watcher::watcher(api, cfg).default_backoff().boxed();
    while let Some(event) = stream.next().await {
        let msg = match event {
            Ok(Event::Apply(obj)) | Ok(Event::InitApply(obj)) => obj.applied(),
            Ok(Event::Delete(obj)) => match obj.gone() {
                Some(change) => change,
                None => continue,
            },
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
