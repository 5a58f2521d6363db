//! A map in which several owners (Services) may claim the same key, with one active value per key, and
//! which remembers, for every key touched since the last [`ClaimMap::take_changes`], the value the kernel
//! was last given. That is what makes a diff cheap: a sync looks at touched keys only.
//!
//! Shared keys are normal (two Services with endpoints on the same pod share its hairpin element; ports of
//! one Service share its ClusterIP); conflicting values are not (two Services claiming one external IP and
//! port): the lowest (rank, owner) wins, so the outcome does not depend on the order of events.

use std::cmp::Ordering;
// foldhash: the model hashes every element on every change; SipHash was a tenth of its time.
use foldhash::HashMap;
use std::hash::Hash;

pub(crate) type OwnerId = u32;

#[derive(Debug, Clone)]
struct Claim<V> {
    owner: OwnerId,
    rank: u8,
    value: V,
}

#[derive(Debug, Clone)]
enum Claims<V> {
    One(Claim<V>),
    Many(Vec<Claim<V>>),
}

impl<V> Claims<V> {
    fn active(&self) -> &V {
        match self {
            Claims::One(c) => &c.value,
            // Kept sorted with the winner first.
            Claims::Many(list) => &list[0].value,
        }
    }
}

#[derive(Debug)]
pub(crate) struct ClaimMap<K, V> {
    map: HashMap<K, Claims<V>>,
    /// Key → active value at the last `take_changes` (None: absent then).
    pending: HashMap<K, Option<V>>,
    /// Off until the first [`ClaimMap::mark_synced`] when the owner loads the kernel in full first (see
    /// [`ClaimMap::untracked_until_synced`]).
    tracking: bool,
}

impl<K: Hash + Eq + Clone, V: Clone + PartialEq> ClaimMap<K, V> {
    pub fn new() -> Self {
        ClaimMap {
            map: HashMap::default(),
            pending: HashMap::default(),
            tracking: true,
        }
    }

    /// Records no changes until the first [`ClaimMap::mark_synced`]: for an owner whose first load of the
    /// kernel is a full one, the record of a cold start (every key, from absent) would only be thrown away,
    /// after costing as much memory as the map itself.
    pub fn untracked_until_synced(&mut self) {
        self.tracking = false;
        self.pending = HashMap::default();
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn active(&self) -> impl Iterator<Item = (&K, &V)> {
        self.map.iter().map(|(k, c)| (k, c.active()))
    }

    fn touch(&mut self, key: &K) {
        if self.tracking && !self.pending.contains_key(key) {
            let before = self.map.get(key).map(|c| c.active().clone());
            self.pending.insert(key.clone(), before);
        }
    }

    /// Sets `owner`'s claim on `key` (replacing its previous one).
    pub fn claim(
        &mut self,
        key: K,
        owner: OwnerId,
        rank: u8,
        value: V,
        order: &dyn Fn(OwnerId, OwnerId) -> Ordering,
    ) {
        self.touch(&key);
        let new = Claim { owner, rank, value };
        match self.map.get_mut(&key) {
            None => {
                self.map.insert(key, Claims::One(new));
            }
            Some(claims) => {
                let mut list = match std::mem::replace(claims, Claims::Many(Vec::new())) {
                    Claims::One(c) => vec![c],
                    Claims::Many(list) => list,
                };
                list.retain(|c| c.owner != owner);
                list.push(new);
                list.sort_by(|a, b| a.rank.cmp(&b.rank).then_with(|| order(a.owner, b.owner)));
                *claims = if list.len() == 1 {
                    Claims::One(list.remove(0))
                } else {
                    Claims::Many(list)
                };
            }
        }
    }

    /// Drops `owner`'s claim on `key`, if any.
    pub fn release(&mut self, key: &K, owner: OwnerId) {
        let Some(claims) = self.map.get(key) else {
            return;
        };
        let holds = match claims {
            Claims::One(c) => c.owner == owner,
            Claims::Many(list) => list.iter().any(|c| c.owner == owner),
        };
        if !holds {
            return;
        }
        self.touch(key);
        let Some(claims) = self.map.get_mut(key) else {
            return;
        };
        match claims {
            Claims::One(_) => {
                self.map.remove(key);
            }
            Claims::Many(list) => {
                list.retain(|c| c.owner != owner);
                if list.len() == 1 {
                    *claims = Claims::One(list.remove(0));
                }
            }
        }
    }

    /// `owner`'s claim on `key`, whether or not it is the active one.
    pub fn claimed(&self, key: &K, owner: OwnerId) -> Option<&V> {
        match self.map.get(key)? {
            Claims::One(c) => (c.owner == owner).then_some(&c.value),
            Claims::Many(list) => list.iter().find(|c| c.owner == owner).map(|c| &c.value),
        }
    }

    /// Whether more than one owner claims `key` with different values.
    pub fn conflicted(&self, key: &K) -> bool {
        match self.map.get(key) {
            Some(Claims::Many(list)) => list.iter().any(|c| c.value != list[0].value),
            _ => false,
        }
    }

    /// The keys whose active value changed since the last call: (key, before, after).
    pub fn take_changes(&mut self) -> Vec<(K, Option<V>, Option<V>)> {
        let mut out = Vec::new();
        for (key, before) in self.pending.drain() {
            let after = self.map.get(&key).map(|c| c.active().clone());
            if before != after {
                out.push((key, before, after));
            }
        }
        self.release_pending();
        out
    }

    /// Forgets what the kernel was given: the next `take_changes` reports nothing until keys are touched.
    /// For after a full load of [`ClaimMap::active`].
    pub fn mark_synced(&mut self) {
        self.tracking = true;
        self.pending.clear();
        self.release_pending();
    }

    /// A cold start or a resync touches every key once; keeping the table that grew for it would hold as
    /// much memory as the map itself for the rest of the process. Small tables are kept for reuse.
    fn release_pending(&mut self) {
        const KEEP: usize = 4096;
        if self.pending.capacity() > KEEP {
            self.pending = HashMap::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn by_id(a: OwnerId, b: OwnerId) -> Ordering {
        a.cmp(&b)
    }

    #[test]
    fn shared_key_lives_while_any_owner_claims_it() {
        let mut m: ClaimMap<&str, u8> = ClaimMap::new();
        m.claim("k", 1, 0, 7, &by_id);
        m.claim("k", 2, 0, 7, &by_id);
        assert_eq!(m.take_changes(), vec![("k", None, Some(7))]);
        m.release(&"k", 1);
        assert!(m.take_changes().is_empty());
        m.release(&"k", 2);
        assert_eq!(m.take_changes(), vec![("k", Some(7), None)]);
    }

    #[test]
    fn conflicts_resolve_by_rank_then_owner_whatever_the_order() {
        let mut a: ClaimMap<&str, u8> = ClaimMap::new();
        a.claim("k", 5, 0, 1, &by_id);
        a.claim("k", 3, 0, 2, &by_id);
        a.claim("k", 1, 1, 3, &by_id);
        let mut b: ClaimMap<&str, u8> = ClaimMap::new();
        b.claim("k", 1, 1, 3, &by_id);
        b.claim("k", 3, 0, 2, &by_id);
        b.claim("k", 5, 0, 1, &by_id);
        assert_eq!(a.take_changes(), vec![("k", None, Some(2))]);
        assert_eq!(b.take_changes(), vec![("k", None, Some(2))]);
        assert!(a.conflicted(&"k"));
        a.release(&"k", 3);
        assert_eq!(a.take_changes(), vec![("k", Some(2), Some(1))]);
    }

    #[test]
    fn untracked_until_synced_records_nothing_until_then() {
        let mut m: ClaimMap<u32, u8> = ClaimMap::new();
        m.untracked_until_synced();
        for k in 0..10_000 {
            m.claim(k, 1, 0, 1, &by_id);
        }
        assert!(m.take_changes().is_empty(), "the first load is a full one");
        m.mark_synced();
        m.claim(3, 1, 0, 2, &by_id);
        m.release(&4, 1);
        let mut changes = m.take_changes();
        changes.sort();
        assert_eq!(changes, vec![(3, Some(1), Some(2)), (4, Some(1), None)]);
    }

    #[test]
    fn claimed_is_the_owners_value_active_or_not() {
        let mut m: ClaimMap<&str, u8> = ClaimMap::new();
        m.claim("k", 1, 0, 7, &by_id);
        m.claim("k", 2, 0, 8, &by_id);
        assert_eq!(m.claimed(&"k", 1), Some(&7));
        assert_eq!(m.claimed(&"k", 2), Some(&8));
        assert_eq!(m.claimed(&"k", 3), None);
        assert_eq!(m.claimed(&"x", 1), None);
    }

    #[test]
    fn a_change_undone_before_the_sync_is_no_change() {
        let mut m: ClaimMap<&str, u8> = ClaimMap::new();
        m.claim("k", 1, 0, 1, &by_id);
        m.take_changes();
        m.claim("k", 1, 0, 2, &by_id);
        m.claim("k", 1, 0, 1, &by_id);
        assert!(m.take_changes().is_empty());
    }
}
