//! The DNS wire format, reduced to what an authoritative server for one zone needs: reading a query's header,
//! question and EDNS0 OPT record, and writing answer records into a reusable buffer.
//!
//! Written by hand instead of through a general DNS library so that the hot path parses into stack buffers and
//! writes into a buffer the caller keeps, with no allocation per query.

/// Record types we answer or recognise.
pub(crate) mod rtype {
    pub const A: u16 = 1;
    pub const NS: u16 = 2;
    pub const CNAME: u16 = 5;
    pub const SOA: u16 = 6;
    pub const PTR: u16 = 12;
    pub const TXT: u16 = 16;
    pub const AAAA: u16 = 28;
    pub const SRV: u16 = 33;
    pub const OPT: u16 = 41;
    pub const IXFR: u16 = 251;
    pub const AXFR: u16 = 252;
}

pub(crate) const CLASS_IN: u16 = 1;
pub(crate) const CLASS_ANY: u16 = 255;

/// Response codes (the low four bits; BADVERS lives in the OPT record's extended rcode).
pub(crate) mod rcode {
    pub const NOERROR: u8 = 0;
    pub const FORMERR: u8 = 1;
    pub const NXDOMAIN: u8 = 3;
    pub const NOTIMP: u8 = 4;
    pub const REFUSED: u8 = 5;
}

pub(crate) const HEADER_LEN: usize = 12;
/// Classic DNS over UDP without EDNS0 (RFC 1035 §4.2.1).
pub(crate) const MIN_UDP: usize = 512;
/// A name on the wire, root label included (RFC 1035 §3.1).
pub(crate) const MAX_NAME: usize = 255;
const MAX_LABELS: usize = 128;
/// Compression pointers carry 14 bits of offset.
pub(crate) const MAX_POINTER: usize = 0x3FFF;
/// Bytes of an OPT record with no options.
pub(crate) const OPT_LEN: usize = 11;

pub(crate) const FLAG_QR: u16 = 0x8000;
pub(crate) const FLAG_AA: u16 = 0x0400;
pub(crate) const FLAG_TC: u16 = 0x0200;
pub(crate) const FLAG_RD: u16 = 0x0100;
pub(crate) const FLAG_CD: u16 = 0x0010;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Header {
    pub id: u16,
    pub flags: u16,
    pub qdcount: u16,
    pub ancount: u16,
    pub nscount: u16,
    pub arcount: u16,
}

impl Header {
    pub fn parse(buf: &[u8]) -> Option<Header> {
        if buf.len() < HEADER_LEN {
            return None;
        }
        let u = |i: usize| u16::from_be_bytes([buf[i], buf[i + 1]]);
        Some(Header {
            id: u(0),
            flags: u(2),
            qdcount: u(4),
            ancount: u(6),
            nscount: u(8),
            arcount: u(10),
        })
    }

    pub fn opcode(&self) -> u8 {
        ((self.flags >> 11) & 0xF) as u8
    }

    pub fn is_response(&self) -> bool {
        self.flags & FLAG_QR != 0
    }
}

/// A domain name held uncompressed in a fixed buffer: its wire form as received (case kept, for echoing the
/// question) and a lowercased copy for matching, plus where each label starts.
pub(crate) struct Name {
    wire: [u8; MAX_NAME],
    lower: [u8; MAX_NAME],
    /// Length of the wire form, root label included.
    len: usize,
    starts: [u8; MAX_LABELS],
    count: usize,
}

impl Name {
    pub fn new() -> Name {
        Name {
            wire: [0; MAX_NAME],
            lower: [0; MAX_NAME],
            len: 0,
            starts: [0; MAX_LABELS],
            count: 0,
        }
    }

    /// Reads a possibly compressed name at `pos`; returns the offset just past it in `buf`.
    pub fn read(&mut self, buf: &[u8], mut pos: usize) -> Result<usize, WireError> {
        self.len = 0;
        self.count = 0;
        let mut end = None;
        let mut hops = 0;
        loop {
            let len = *buf.get(pos).ok_or(WireError)? as usize;
            match len & 0xC0 {
                0x00 => {}
                0xC0 => {
                    let lo = *buf.get(pos + 1).ok_or(WireError)? as usize;
                    let target = ((len & 0x3F) << 8) | lo;
                    // Only backwards jumps, and few of them: a forward or self pointer could loop.
                    if target >= pos || hops >= 16 {
                        return Err(WireError);
                    }
                    hops += 1;
                    end.get_or_insert(pos + 2);
                    pos = target;
                    continue;
                }
                _ => return Err(WireError),
            }
            if self.len + 1 + len > MAX_NAME {
                return Err(WireError);
            }
            if len == 0 {
                self.wire[self.len] = 0;
                self.lower[self.len] = 0;
                self.len += 1;
                return Ok(end.unwrap_or(pos + 1));
            }
            let label = buf.get(pos + 1..pos + 1 + len).ok_or(WireError)?;
            if self.count == MAX_LABELS {
                return Err(WireError);
            }
            self.starts[self.count] = self.len as u8;
            self.count += 1;
            self.wire[self.len] = len as u8;
            self.lower[self.len] = len as u8;
            self.wire[self.len + 1..self.len + 1 + len].copy_from_slice(label);
            for (d, s) in self.lower[self.len + 1..self.len + 1 + len]
                .iter_mut()
                .zip(label)
            {
                *d = s.to_ascii_lowercase();
            }
            self.len += 1 + len;
            pos += 1 + len;
        }
    }

    /// Loads an uncompressed wire name we produced ourselves (e.g. an ExternalName target).
    pub fn load(&mut self, wire: &[u8]) -> Result<(), WireError> {
        self.read(wire, 0).map(|_| ())
    }

    pub fn wire(&self) -> &[u8] {
        &self.wire[..self.len]
    }

    /// The lowercased wire form.
    pub fn lower_wire(&self) -> &[u8] {
        &self.lower[..self.len]
    }

    pub fn label_count(&self) -> usize {
        self.count
    }

    /// Label `i` counted from the left, lowercased, without its length byte.
    pub fn label(&self, i: usize) -> &[u8] {
        let s = self.starts[i] as usize;
        let l = self.lower[s] as usize;
        &self.lower[s + 1..s + 1 + l]
    }

    /// Offset of label `i` within the wire form (so within the question when the name is the question).
    pub fn label_offset(&self, i: usize) -> usize {
        if i >= self.count {
            self.len - 1
        } else {
            self.starts[i] as usize
        }
    }

    /// Whether the rightmost labels are `suffix` (lowercase labels, left to right).
    pub fn ends_with(&self, suffix: &[Box<[u8]>]) -> bool {
        if suffix.len() > self.count {
            return false;
        }
        let skip = self.count - suffix.len();
        suffix
            .iter()
            .enumerate()
            .all(|(i, l)| self.label(skip + i) == &l[..])
    }
}

/// What the caller learnt from the packet apart from the question.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Edns {
    pub udp_size: u16,
    pub version: u8,
    pub dnssec_ok: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WireError;

/// Skips a name without decoding it; returns the offset just past it.
fn skip_name(buf: &[u8], mut pos: usize) -> Result<usize, WireError> {
    loop {
        let len = *buf.get(pos).ok_or(WireError)? as usize;
        match len & 0xC0 {
            0x00 if len == 0 => return Ok(pos + 1),
            0x00 => pos += 1 + len,
            0xC0 => {
                if pos + 2 > buf.len() {
                    return Err(WireError);
                }
                return Ok(pos + 2);
            }
            _ => return Err(WireError),
        }
    }
}

fn u16_at(buf: &[u8], pos: usize) -> Result<u16, WireError> {
    match buf.get(pos..pos + 2) {
        Some(b) => Ok(u16::from_be_bytes([b[0], b[1]])),
        None => Err(WireError),
    }
}

/// Walks the answer, authority and additional sections after the question, returning the OPT record if any.
/// A second OPT record or a record running past the end is a format error (RFC 6891 §6.1.1).
pub(crate) fn read_edns(buf: &[u8], mut pos: usize, h: &Header) -> Result<Option<Edns>, WireError> {
    let before_additional = h.ancount as usize + h.nscount as usize;
    let total = before_additional + h.arcount as usize;
    let mut edns = None;
    for i in 0..total {
        let name_at = pos;
        pos = skip_name(buf, pos)?;
        let rtype = u16_at(buf, pos)?;
        let class = u16_at(buf, pos + 2)?;
        let ttl_hi = u16_at(buf, pos + 4)?;
        let ttl_lo = u16_at(buf, pos + 6)?;
        let rdlen = u16_at(buf, pos + 8)? as usize;
        pos += 10;
        if pos + rdlen > buf.len() {
            return Err(WireError);
        }
        pos += rdlen;
        if rtype == rtype::OPT {
            let root = buf.get(name_at) == Some(&0);
            if i < before_additional || edns.is_some() || !root {
                return Err(WireError);
            }
            edns = Some(Edns {
                udp_size: class,
                version: (ttl_hi & 0xFF) as u8,
                dnssec_ok: ttl_lo & 0x8000 != 0,
            });
        }
    }
    Ok(edns)
}

/// Appends to a response buffer. Offsets are absolute within the message.
pub(crate) struct Writer<'a> {
    pub buf: &'a mut Vec<u8>,
}

impl Writer<'_> {
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    pub fn set_u16(&mut self, at: usize, v: u16) {
        self.buf[at..at + 2].copy_from_slice(&v.to_be_bytes());
    }

    /// A compression pointer to an earlier name at `offset`, which must be at most [`MAX_POINTER`].
    pub fn pointer(&mut self, offset: usize) {
        self.u16(0xC000 | offset as u16);
    }

    /// Starts a record of class IN whose owner is the name at `owner` (a pointer); returns where its RDLENGTH
    /// goes, for [`Writer::end_rr`].
    pub fn begin_rr(&mut self, owner: usize, rtype: u16, ttl: u32) -> usize {
        self.pointer(owner);
        self.u16(rtype);
        self.u16(CLASS_IN);
        self.u32(ttl);
        let at = self.len();
        self.u16(0);
        at
    }

    pub fn end_rr(&mut self, rdlen_at: usize) {
        let len = self.len() - rdlen_at - 2;
        self.set_u16(rdlen_at, len as u16);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_compressed_names_backwards_only() {
        // "\x03www\x07example\x03com\x00" at 0, then "\x04mail" + pointer to 4 ("example.com").
        let mut buf = b"\x03www\x07example\x03com\x00".to_vec();
        buf.extend_from_slice(b"\x04MAIL\xC0\x04");
        let mut n = Name::new();
        assert_eq!(n.read(&buf, 17), Ok(24));
        assert_eq!(n.wire(), b"\x04MAIL\x07example\x03com\x00");
        assert_eq!(n.label(0), b"mail");
        assert_eq!(n.label_count(), 3);
        // A pointer to itself must not loop.
        assert_eq!(n.read(b"\xC0\x00", 0), Err(WireError));
        // Forward pointers are refused.
        assert_eq!(n.read(b"\xC0\x02\x00", 0), Err(WireError));
        // Extended label types are refused.
        assert_eq!(n.read(b"\x41\x00", 0), Err(WireError));
    }

    #[test]
    fn names_longer_than_255_are_refused() {
        let mut buf = Vec::new();
        for _ in 0..5 {
            buf.push(63);
            buf.extend_from_slice(&[b'a'; 63]);
        }
        buf.push(0);
        assert_eq!(Name::new().read(&buf, 0), Err(WireError));
    }
}
