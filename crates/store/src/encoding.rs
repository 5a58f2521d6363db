//! Byte layouts of stored records. Fixed little-endian headers, so decoding is a bounds check and a copy.

use crate::{Event, EventType, KeyValue, StoreError};

/// kv table value: create_revision (8) | mod_revision (8) | data.
pub fn encode_value(create: i64, modrev: i64, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + data.len());
    out.extend_from_slice(&create.to_le_bytes());
    out.extend_from_slice(&modrev.to_le_bytes());
    out.extend_from_slice(data);
    out
}

pub fn decode_value(key: &str, raw: &[u8]) -> Result<KeyValue, StoreError> {
    if raw.len() < 16 {
        return Err(StoreError::Corrupt(format!(
            "value of {key} is {} bytes",
            raw.len()
        )));
    }
    Ok(KeyValue {
        key: key.to_string(),
        create_revision: read_i64(&raw[0..8]),
        mod_revision: read_i64(&raw[8..16]),
        value: raw[16..].to_vec(),
    })
}

fn read_i64(b: &[u8]) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    i64::from_le_bytes(a)
}

fn read_u32(b: &[u8]) -> usize {
    let mut a = [0u8; 4];
    a.copy_from_slice(b);
    u32::from_le_bytes(a) as usize
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

struct Reader<'a> {
    raw: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.raw.len())
            .ok_or_else(|| StoreError::Corrupt("truncated log record".into()))?;
        let s = &self.raw[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn i64(&mut self) -> Result<i64, StoreError> {
        Ok(read_i64(self.take(8)?))
    }
    fn bytes(&mut self) -> Result<&'a [u8], StoreError> {
        let n = read_u32(self.take(4)?);
        self.take(n)
    }
}

/// log table value: type (1) | key | create | mod | value | has_prev (1) [| prev create | prev mod | prev value]
pub fn encode_event(ev: &Event) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + ev.kv.value.len());
    out.push(match ev.event_type {
        EventType::Put => 0,
        EventType::Delete => 1,
    });
    put_bytes(&mut out, ev.kv.key.as_bytes());
    out.extend_from_slice(&ev.kv.create_revision.to_le_bytes());
    out.extend_from_slice(&ev.kv.mod_revision.to_le_bytes());
    put_bytes(&mut out, &ev.kv.value);
    match &ev.prev {
        None => out.push(0),
        Some(p) => {
            out.push(1);
            out.extend_from_slice(&p.create_revision.to_le_bytes());
            out.extend_from_slice(&p.mod_revision.to_le_bytes());
            put_bytes(&mut out, &p.value);
        }
    }
    out
}

pub fn decode_event(raw: &[u8]) -> Result<Event, StoreError> {
    let mut r = Reader { raw, pos: 0 };
    let event_type = match r.take(1)?[0] {
        0 => EventType::Put,
        1 => EventType::Delete,
        t => return Err(StoreError::Corrupt(format!("event type {t}"))),
    };
    let key = String::from_utf8(r.bytes()?.to_vec())
        .map_err(|_| StoreError::Corrupt("non-utf8 key".into()))?;
    let create_revision = r.i64()?;
    let mod_revision = r.i64()?;
    let value = r.bytes()?.to_vec();
    let prev = match r.take(1)?[0] {
        0 => None,
        _ => {
            let create_revision = r.i64()?;
            let mod_revision = r.i64()?;
            Some(KeyValue {
                key: key.clone(),
                create_revision,
                mod_revision,
                value: r.bytes()?.to_vec(),
            })
        }
    };
    Ok(Event {
        event_type,
        kv: KeyValue {
            key,
            value,
            create_revision,
            mod_revision,
        },
        prev,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_roundtrip() {
        let ev = Event {
            event_type: EventType::Delete,
            kv: KeyValue {
                key: "/a/b".into(),
                value: vec![],
                create_revision: 0,
                mod_revision: 9,
            },
            prev: Some(KeyValue {
                key: "/a/b".into(),
                value: b"x".to_vec(),
                create_revision: 3,
                mod_revision: 5,
            }),
        };
        assert_eq!(decode_event(&encode_event(&ev)).unwrap(), ev);
    }

    #[test]
    fn truncated_records_are_errors_not_panics() {
        let ev = Event {
            event_type: EventType::Put,
            kv: KeyValue {
                key: "/k".into(),
                value: b"value".to_vec(),
                create_revision: 1,
                mod_revision: 1,
            },
            prev: None,
        };
        let raw = encode_event(&ev);
        for n in 0..raw.len() {
            assert!(decode_event(&raw[..n]).is_err(), "prefix {n} decoded");
        }
        assert!(decode_value("/k", &[1, 2, 3]).is_err());
    }
}
