//! One watch into a controller's cache, shared by every controller here: re-lists (after a 410 Gone) end
//! with the objects that were not listed again treated as deleted, and `synced` flips after the first
//! complete list.

use std::collections::HashSet;
use std::sync::{Arc, MutexGuard};

use futures::{Stream, StreamExt};
use kube::runtime::watcher::{self, Event};
use kube::ResourceExt;
use tokio::sync::watch;

use crate::cache::Key;

/// A controller's shared state, whose cache lists the keys a watch has fed.
pub(crate) trait Fed {
    type Cache;
    fn lock_cache(&self) -> MutexGuard<'_, Self::Cache>;
}

pub(crate) fn key_of<K: kube::Resource>(o: &K) -> Key {
    (o.namespace().unwrap_or_default(), o.name_any())
}

pub(crate) async fn feed<Sh, K, S>(
    stream: S,
    shared: Arc<Sh>,
    what: &'static str,
    apply: impl Fn(&Sh, K),
    delete: impl Fn(&Sh, &Key),
    cached_keys: impl Fn(&Sh::Cache) -> Vec<Key>,
    synced: watch::Sender<bool>,
) where
    Sh: Fed,
    K: kube::Resource,
    S: Stream<Item = Result<Event<K>, watcher::Error>>,
{
    let mut stream = std::pin::pin!(stream);
    let mut seen: Option<HashSet<Key>> = None;
    while let Some(ev) = stream.next().await {
        match ev {
            Ok(Event::Apply(o)) => apply(&shared, o),
            Ok(Event::Delete(o)) => delete(&shared, &key_of(&o)),
            Ok(Event::Init) => seen = Some(HashSet::new()),
            Ok(Event::InitApply(o)) => {
                if let Some(s) = seen.as_mut() {
                    s.insert(key_of(&o));
                }
                apply(&shared, o);
            }
            Ok(Event::InitDone) => {
                if let Some(s) = seen.take() {
                    let gone: Vec<Key> = cached_keys(&shared.lock_cache())
                        .into_iter()
                        .filter(|k| !s.contains(k))
                        .collect();
                    for k in gone {
                        delete(&shared, &k);
                    }
                }
                let _ = synced.send(true);
                tracing::debug!(resource = what, "watch cache synced");
            }
            Err(e) => tracing::warn!(resource = what, error = %e, "watch failed; retrying"),
        }
    }
}

/// Waits until every watch has flagged its first complete list.
pub(crate) async fn wait_all(ready: &mut [watch::Receiver<bool>]) {
    for r in ready.iter_mut() {
        let _ = r.wait_for(|v| *v).await;
    }
}
