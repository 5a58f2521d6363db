//! A work queue keyed by Service, with client-go's workqueue guarantees: a key queued many times is
//! processed once, never by two workers at the same time, and a key added while it is being processed is
//! processed again afterwards. Failed keys come back after a per-key exponential delay.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

struct State<K> {
    queue: VecDeque<K>,
    dirty: HashSet<K>,
    processing: HashSet<K>,
    failures: HashMap<K, u32>,
    shut_down: bool,
}

pub struct WorkQueue<K> {
    state: Mutex<State<K>>,
    notify: Notify,
}

/// Delay before the n-th retry: 5 ms doubling up to 1000 s (client-go's default controller rate limiter).
pub fn backoff(failures: u32) -> Duration {
    let ms = 5u64.saturating_mul(1u64 << failures.min(30));
    Duration::from_millis(ms.min(1_000_000))
}

impl<K: Clone + Eq + Hash + Send + 'static> WorkQueue<K> {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                dirty: HashSet::new(),
                processing: HashSet::new(),
                failures: HashMap::new(),
                shut_down: false,
            }),
            notify: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<K>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn add(&self, key: K) {
        let mut s = self.lock();
        if s.shut_down || !s.dirty.insert(key.clone()) {
            return;
        }
        if !s.processing.contains(&key) {
            s.queue.push_back(key);
            drop(s);
            self.notify.notify_one();
        }
    }

    /// Waits for the next key; `None` once shut down.
    pub async fn get(&self) -> Option<K> {
        loop {
            let notified = self.notify.notified();
            {
                let mut s = self.lock();
                if s.shut_down {
                    return None;
                }
                if let Some(k) = s.queue.pop_front() {
                    s.dirty.remove(&k);
                    s.processing.insert(k.clone());
                    let more = !s.queue.is_empty();
                    drop(s);
                    if more {
                        // Notify keeps one permit at most: pass the wake-up on so idle workers drain too.
                        self.notify.notify_one();
                    }
                    return Some(k);
                }
            }
            notified.await;
        }
    }

    /// Marks a key finished; if it was added meanwhile it is queued again.
    pub fn done(&self, key: &K) {
        let mut s = self.lock();
        s.processing.remove(key);
        if s.dirty.contains(key) {
            s.queue.push_back(key.clone());
            drop(s);
            self.notify.notify_one();
        }
    }

    /// Forgets a key's failures after a successful sync.
    pub fn forget(&self, key: &K) {
        self.lock().failures.remove(key);
    }

    /// Number of failures recorded for a key.
    pub fn failures(&self, key: &K) -> u32 {
        self.lock().failures.get(key).copied().unwrap_or(0)
    }

    /// Queues the key again after its backoff delay.
    pub fn add_rate_limited(self: &Arc<Self>, key: K) {
        let n = {
            let mut s = self.lock();
            let n = s.failures.entry(key.clone()).or_insert(0);
            *n += 1;
            *n - 1
        };
        let q = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(backoff(n)).await;
            q.add(key);
        });
    }

    /// Puts keys whose workers were stopped mid-sync back in the queue.
    pub fn requeue_in_flight(&self) {
        let mut s = self.lock();
        let keys: Vec<K> = s.processing.drain().collect();
        for k in keys {
            if s.dirty.insert(k.clone()) {
                s.queue.push_back(k);
            }
        }
        drop(s);
        self.notify.notify_one();
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().queue.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Wakes every waiting worker and makes `get` return `None` from now on.
    pub fn shut_down(&self) {
        self.lock().shut_down = true;
        self.notify.notify_waiters();
        self.notify.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dedups_and_requeues_keys_added_while_processing() {
        let q = WorkQueue::new();
        q.add("a");
        q.add("a");
        q.add("b");
        assert_eq!(q.len(), 2);
        let k = q.get().await.unwrap();
        assert_eq!(k, "a");
        q.add("a"); // while processing: must not be handed to another worker yet
        assert_eq!(q.get().await.unwrap(), "b");
        assert!(q.is_empty());
        q.done(&"a");
        assert_eq!(q.get().await.unwrap(), "a");
        q.shut_down();
        assert_eq!(q.get().await, None);
    }

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(0), Duration::from_millis(5));
        assert_eq!(backoff(3), Duration::from_millis(40));
        assert_eq!(backoff(40), Duration::from_secs(1000));
    }
}
