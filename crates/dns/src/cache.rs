//! The forwarding cache: upstream replies kept for their TTL, bounded in entries.
//!
//! Positive answers live for their smallest record TTL; NXDOMAIN and NODATA for the negative TTL of RFC 2308
//! §5 (the SOA's own TTL or its minimum, whichever is smaller), and not at all without an SOA. Both are capped
//! as CoreDNS's `cache` plugin caps them (3600 s and 1800 s). Served copies have their TTLs counted down.
//! When full, expired entries go first, then arbitrary ones (CoreDNS evicts at random too).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};

use crate::metrics::CacheKind;

pub(crate) const MAX_POSITIVE_TTL: u32 = 3600;
pub(crate) const MAX_NEGATIVE_TTL: u32 = 1800;

/// Lowercase name, type, class, and the two query bits that change what an upstream returns.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub name: String,
    pub qtype: u16,
    pub qclass: u16,
    pub dnssec_ok: bool,
    pub checking_disabled: bool,
}

struct Entry {
    msg: Message,
    stored: Instant,
    ttl: u32,
    kind: CacheKind,
}

pub(crate) struct Cache {
    map: Mutex<HashMap<Key, Entry>>,
    capacity: usize,
}

/// How long `msg` may be cached and as what, or `None` when it must not be.
pub(crate) fn cache_ttl(msg: &Message) -> Option<(u32, CacheKind)> {
    if msg.metadata.truncation {
        return None;
    }
    let rcode = msg.metadata.response_code;
    let positive = rcode == ResponseCode::NoError && !msg.answers.is_empty();
    let negative = rcode == ResponseCode::NXDomain
        || (rcode == ResponseCode::NoError && msg.answers.is_empty());
    let (ttl, kind) = if positive {
        let ttl = msg
            .answers
            .iter()
            .chain(msg.authorities.iter())
            .map(|r| r.ttl)
            .min()?;
        (ttl.min(MAX_POSITIVE_TTL), CacheKind::Success)
    } else if negative {
        let ttl = msg.authorities.iter().find_map(|r| match &r.data {
            RData::SOA(soa) if r.record_type() == RecordType::SOA => Some(r.ttl.min(soa.minimum)),
            _ => None,
        })?;
        (ttl.min(MAX_NEGATIVE_TTL), CacheKind::Denial)
    } else {
        return None;
    };
    (ttl > 0).then_some((ttl, kind))
}

impl Cache {
    pub fn new(capacity: usize) -> Cache {
        Cache {
            map: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Entry>> {
        // Entries are replaced whole: a panic elsewhere cannot leave one half-written.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// A copy of the cached reply with TTLs reduced by its age, if it has not expired.
    pub fn get(&self, key: &Key, now: Instant) -> Option<(Message, CacheKind)> {
        let mut map = self.lock();
        let e = map.get(key)?;
        let age = now.saturating_duration_since(e.stored).as_secs();
        if age >= u64::from(e.ttl) {
            map.remove(key);
            return None;
        }
        let mut msg = e.msg.clone();
        let kind = e.kind;
        drop(map);
        let age = age as u32;
        for r in msg
            .answers
            .iter_mut()
            .chain(msg.authorities.iter_mut())
            .chain(msg.additionals.iter_mut())
        {
            r.ttl = r.ttl.saturating_sub(age);
        }
        Some((msg, kind))
    }

    /// Stores `msg` if it may be cached; returns whether it was.
    pub fn insert(&self, key: Key, msg: &Message, now: Instant) -> bool {
        if self.capacity == 0 {
            return false;
        }
        let Some((ttl, kind)) = cache_ttl(msg) else {
            return false;
        };
        let mut map = self.lock();
        if map.len() >= self.capacity && !map.contains_key(&key) {
            map.retain(|_, e| {
                now.saturating_duration_since(e.stored) < Duration::from_secs(e.ttl.into())
            });
            while map.len() >= self.capacity {
                let Some(victim) = map.keys().next().cloned() else {
                    break;
                };
                map.remove(&victim);
            }
        }
        map.insert(
            key,
            Entry {
                msg: msg.clone(),
                stored: now,
                ttl,
                kind,
            },
        );
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{MessageType, OpCode};
    use hickory_proto::rr::rdata::{A, SOA};
    use hickory_proto::rr::{Name, Record};

    fn key(name: &str) -> Key {
        Key {
            name: name.to_string(),
            qtype: 1,
            qclass: 1,
            dnssec_ok: false,
            checking_disabled: false,
        }
    }

    fn positive(ttls: &[u32]) -> Message {
        let mut m = Message::new(1, MessageType::Response, OpCode::Query);
        for (i, t) in ttls.iter().enumerate() {
            m.add_answer(Record::from_rdata(
                Name::from_ascii("a.example.").unwrap(),
                *t,
                RData::A(A::new(192, 0, 2, i as u8)),
            ));
        }
        m
    }

    fn negative(rcode: ResponseCode, soa_ttl: u32, minimum: u32) -> Message {
        let mut m = Message::new(1, MessageType::Response, OpCode::Query);
        m.metadata.response_code = rcode;
        let soa = SOA::new(
            Name::from_ascii("ns.example.").unwrap(),
            Name::from_ascii("hostmaster.example.").unwrap(),
            1,
            7200,
            1800,
            86400,
            minimum,
        );
        m.add_authority(Record::from_rdata(
            Name::from_ascii("example.").unwrap(),
            soa_ttl,
            RData::SOA(soa),
        ));
        m
    }

    #[test]
    fn ttls_follow_the_records_and_rfc2308() {
        assert_eq!(
            cache_ttl(&positive(&[30, 10, 20])),
            Some((10, CacheKind::Success))
        );
        assert_eq!(
            cache_ttl(&positive(&[90000])),
            Some((MAX_POSITIVE_TTL, CacheKind::Success))
        );
        assert_eq!(cache_ttl(&positive(&[0])), None);
        assert_eq!(
            cache_ttl(&negative(ResponseCode::NXDomain, 300, 60)),
            Some((60, CacheKind::Denial))
        );
        assert_eq!(
            cache_ttl(&negative(ResponseCode::NoError, 30, 60)),
            Some((30, CacheKind::Denial))
        );
        assert_eq!(
            cache_ttl(&negative(ResponseCode::NXDomain, 86400, 86400)),
            Some((MAX_NEGATIVE_TTL, CacheKind::Denial))
        );
        // No SOA: not cached (RFC 2308 §5); nor failures or truncated replies.
        let mut nx = Message::new(1, MessageType::Response, OpCode::Query);
        nx.metadata.response_code = ResponseCode::NXDomain;
        assert_eq!(cache_ttl(&nx), None);
        let mut fail = positive(&[30]);
        fail.metadata.response_code = ResponseCode::ServFail;
        assert_eq!(cache_ttl(&fail), None);
        let mut tc = positive(&[30]);
        tc.metadata.truncation = true;
        assert_eq!(cache_ttl(&tc), None);
    }

    #[test]
    fn entries_age_expire_and_stay_bounded() {
        let c = Cache::new(2);
        let t0 = Instant::now();
        assert!(c.insert(key("a"), &positive(&[10]), t0));
        let (m, kind) = c.get(&key("a"), t0 + Duration::from_secs(4)).unwrap();
        assert_eq!(kind, CacheKind::Success);
        assert_eq!(m.answers[0].ttl, 6);
        assert!(c.get(&key("a"), t0 + Duration::from_secs(10)).is_none());
        assert_eq!(c.len(), 0);
        for n in 0..5 {
            assert!(c.insert(key(&format!("n{n}")), &positive(&[10]), t0));
        }
        assert_eq!(c.len(), 2);
        assert!(c.get(&key("n4"), t0).is_some());
        assert!(!c.insert(key("z"), &positive(&[0]), t0));
        assert!(!Cache::new(0).insert(key("a"), &positive(&[10]), t0));
    }
}
