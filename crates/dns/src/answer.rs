//! From a query packet to a reply packet: the Kubernetes DNS specification's records, with CoreDNS's choices
//! where the specification leaves room (which names exist, SRV weights, NXDOMAIN versus NODATA, the SOA).
//!
//! Names under the zone, as CoreDNS's `kubernetes` plugin parses them:
//! - `<svc>.<ns>.svc`: cluster IPs, or a headless Service's answering endpoint addresses; the ExternalName CNAME
//!   (followed when the target is in the zone). SRV without port labels lists every port, unnamed ones included,
//!   weights `100 / entries` at priority 0, addresses as glue.
//! - `_<port>._<proto>.<svc>.<ns>.svc` (also without underscores): SRV, and A/AAAA too.
//! - `<host>.<svc>.<ns>.svc`: one endpoint, for headless and ClusterIP Services alike.
//! - `<ns>.svc`, `svc`, `pod` and the apex exist without records (NODATA); `<ns>.svc` only if the namespace does.
//! - `<a-b-c-d>.<ns>.pod` per [`crate::PodMode`]; `dns-version` TXT; `ns.dns` A/AAAA and the apex NS/SOA.
//!
//! Where we knowingly differ from CoreDNS:
//! - `dns-version` and `ns.dns` answer NODATA for other types (CoreDNS: NXDOMAIN), since the names exist.
//! - SOA queries below the apex are NXDOMAIN or NODATA by the name's existence (CoreDNS: always NODATA).
//! - MX is NODATA (CoreDNS makes MX records from addresses); pod names with an extra label in front are
//!   NXDOMAIN (CoreDNS ignores that label).
//! - SRV and PTR targets spell the zone as configured, not in the question's case.
//! - A reply too large for UDP keeps no records at all, only TC=1 (CoreDNS keeps what fits); glue is dropped
//!   first, without TC, when the answer alone fits.
//!
//! Not offered: CoreDNS's `endpoint_pod_names`, `ignore empty_service`, `namespaces`, multicluster and zonal
//! names, `fallthrough` (reverse names we hold nothing for are outside the zone: forwarded, or REFUSED).

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::config::{PodMode, SCHEMA_VERSION, SCHEMA_VERSION_TTL};
use crate::entry::{Kind, SvcEntry};
use crate::index::{Index, Table};
use crate::wire::{
    rcode, read_edns, rtype, Edns, Header, Name, Writer, CLASS_ANY, CLASS_IN, FLAG_AA, FLAG_CD,
    FLAG_QR, FLAG_RD, FLAG_TC, HEADER_LEN, MAX_POINTER, MIN_UDP, OPT_LEN,
};

/// How the query arrived, which bounds the reply's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// What [`Index::respond`] left in the output buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A complete reply.
    Reply,
    /// A complete reply ending in a CNAME to a name outside the zone (an ExternalName Service). This is where an
    /// upstream resolver may append the target's records, as CoreDNS does; without one the CNAME stands alone.
    ReplyExternalCname,
    /// The name is outside the zone (or an address we know nothing about). The buffer holds the REFUSED reply
    /// to send when there is no upstream to forward the query to.
    NotInZone,
    /// Nothing to send: the packet is not a query or has no readable header.
    Drop,
}

/// Per-worker state reused across queries so that answers that must drop duplicate records do not allocate.
#[derive(Default)]
pub struct Scratch {
    srv_seen: HashSet<(u32, u16)>,
    host_target: HashMap<u32, (usize, usize)>,
    glue_seen: HashSet<(u32, IpAddr)>,
    ip_seen: HashSet<IpAddr>,
    glue: Vec<(usize, usize, IpAddr)>,
}

impl Scratch {
    fn clear(&mut self) {
        self.srv_seen.clear();
        self.host_target.clear();
        self.glue_seen.clear();
        self.ip_seen.clear();
        self.glue.clear();
    }
}

/// `None` is NXDOMAIN; `Some(n)` is a name that exists, with `n` answer records written (0 is NODATA).
type Found = Option<u32>;

/// How many CNAMEs to ExternalName Services inside the zone we follow before giving up.
const MAX_CHAIN: u8 = 8;

const OPCODE_QUERY: u8 = 0;

impl Index {
    /// Answers one DNS message. `out` is cleared and receives the reply (when the outcome is not
    /// [`Outcome::Drop`]); keep it and `scratch` across calls so the common path does not allocate.
    pub fn respond(
        &self,
        query: &[u8],
        transport: Transport,
        out: &mut Vec<u8>,
        scratch: &mut Scratch,
    ) -> Outcome {
        out.clear();
        let Some(h) = Header::parse(query) else {
            return Outcome::Drop;
        };
        if h.is_response() {
            // Answering responses invites loops between servers and reflection.
            return Outcome::Drop;
        }
        let mut q = Name::new();
        let parsed = if h.qdcount == 1 {
            q.read(query, HEADER_LEN).ok().and_then(|end| {
                let t = query.get(end..end + 4)?;
                let qtype = u16::from_be_bytes([t[0], t[1]]);
                let qclass = u16::from_be_bytes([t[2], t[3]]);
                Some((end + 4, qtype, qclass))
            })
        } else {
            None
        };
        let edns = match parsed {
            Some((end, _, _)) => read_edns(query, end, &h),
            None => Ok(None),
        };

        out.resize(HEADER_LEN, 0);
        let mut r = Reply {
            w: Writer { buf: out },
            h,
            edns: edns.ok().flatten(),
            rcode: rcode::NOERROR,
            ext_rcode: 0,
            aa: false,
            tc_allowed: transport == Transport::Udp,
            an: 0,
            ns: 0,
            ar: 0,
            q_end: HEADER_LEN,
            additional_at: None,
            zone_at: None,
            ttl: self.config.ttl,
            zone_wire: &self.zone.wire,
            external_cname: false,
        };
        let Some((_, qtype, qclass)) = parsed else {
            r.rcode = if h.opcode() == OPCODE_QUERY {
                rcode::FORMERR
            } else {
                rcode::NOTIMP
            };
            r.finish();
            return Outcome::Reply;
        };
        r.w.bytes(q.wire());
        r.w.u16(qtype);
        r.w.u16(qclass);
        r.q_end = r.w.len();
        if h.opcode() != OPCODE_QUERY {
            r.rcode = rcode::NOTIMP;
            r.finish();
            return Outcome::Reply;
        }
        if edns.is_err() {
            r.rcode = rcode::FORMERR;
            r.finish();
            return Outcome::Reply;
        }
        if r.edns.is_some_and(|e| e.version != 0) {
            // BADVERS (16): 1 in the OPT record's upper rcode bits, 0 in the header (RFC 6891 §6.1.3).
            r.ext_rcode = 1;
            r.finish();
            return Outcome::Reply;
        }
        if qclass != CLASS_IN && qclass != CLASS_ANY {
            r.rcode = rcode::REFUSED;
            r.finish();
            return Outcome::Reply;
        }
        scratch.clear();
        let table = self.read();
        let zone_len = self.zone.labels.len();
        if q.ends_with(&self.zone.labels) {
            if qtype == rtype::AXFR || qtype == rtype::IXFR {
                // Zone transfers are not offered, as with CoreDNS's kubernetes plugin on its own.
                r.rcode = rcode::REFUSED;
                r.finish();
                return Outcome::Reply;
            }
            r.aa = true;
            r.zone_at = Some(HEADER_LEN + q.label_offset(q.label_count() - zone_len));
            let look = Lookup {
                idx: self,
                t: &table,
            };
            match look.name(&mut r, scratch, &q, qtype, HEADER_LEN, 0) {
                None => {
                    r.rcode = rcode::NXDOMAIN;
                    r.soa_authority(self.serial());
                }
                Some(0) => r.soa_authority(self.serial()),
                Some(_) => {}
            }
            drop(table);
            let external = r.external_cname;
            r.finish();
            return if external {
                Outcome::ReplyExternalCname
            } else {
                Outcome::Reply
            };
        }
        if qtype == rtype::PTR {
            if let Some(names) = reverse_ip(&q).and_then(|ip| table.ptr.get(&ip)) {
                r.aa = true;
                for name in names.iter() {
                    let at = r.w.begin_rr(HEADER_LEN, rtype::PTR, r.ttl);
                    r.name_in_zone(name);
                    r.w.end_rr(at);
                    r.an += 1;
                }
                drop(table);
                r.finish();
                return Outcome::Reply;
            }
        }
        drop(table);
        r.rcode = rcode::REFUSED;
        r.finish();
        Outcome::NotInZone
    }
}

/// A reply being written.
struct Reply<'a> {
    w: Writer<'a>,
    h: Header,
    edns: Option<Edns>,
    rcode: u8,
    ext_rcode: u8,
    aa: bool,
    tc_allowed: bool,
    // Wider than the header's fields: an oversized answer is counted, then cut to size in `finish`.
    an: u32,
    ns: u32,
    ar: u32,
    q_end: usize,
    /// Where the additional section starts, once something was written there.
    additional_at: Option<usize>,
    /// Offset of a copy of the zone name in the message, for compression.
    zone_at: Option<usize>,
    ttl: u32,
    zone_wire: &'a [u8],
    external_cname: bool,
}

impl Reply<'_> {
    /// Writes `prefix` (wire labels) followed by the zone, compressed against an earlier copy of the zone.
    fn name_in_zone(&mut self, prefix: &[u8]) {
        self.w.bytes(prefix);
        match self.zone_at {
            Some(at) if at <= MAX_POINTER => self.w.pointer(at),
            _ => {
                let at = self.w.len();
                self.w.bytes(self.zone_wire);
                self.zone_at.get_or_insert(at);
            }
        }
    }

    /// Writes `prefixes` then the zone uncompressed (SRV targets must not be compressed, RFC 2782); returns where
    /// the name starts and its length.
    fn name_in_zone_plain(&mut self, prefixes: &[&[u8]]) -> (usize, usize) {
        let start = self.w.len();
        for p in prefixes {
            self.w.bytes(p);
        }
        self.w.bytes(self.zone_wire);
        (start, self.w.len() - start)
    }

    /// Owner name of a glue record: a pointer to the name at `start`, or a copy of it when it lies beyond
    /// pointer reach (large TCP answers).
    fn owner_copy(&mut self, start: usize, len: usize, rtype: u16, ttl: u32) -> usize {
        if start <= MAX_POINTER {
            return self.w.begin_rr(start, rtype, ttl);
        }
        self.w.buf.extend_from_within(start..start + len);
        self.w.u16(rtype);
        self.w.u16(CLASS_IN);
        self.w.u32(ttl);
        let at = self.w.len();
        self.w.u16(0);
        at
    }

    fn address(&mut self, owner: usize, ip: IpAddr) {
        match ip {
            IpAddr::V4(a) => self.a(owner, a),
            IpAddr::V6(a) => self.aaaa(owner, a),
        }
    }

    fn a(&mut self, owner: usize, ip: Ipv4Addr) {
        let at = self.w.begin_rr(owner, rtype::A, self.ttl);
        self.w.bytes(&ip.octets());
        self.w.end_rr(at);
    }

    fn aaaa(&mut self, owner: usize, ip: Ipv6Addr) {
        let at = self.w.begin_rr(owner, rtype::AAAA, self.ttl);
        self.w.bytes(&ip.octets());
        self.w.end_rr(at);
    }

    fn start_additional(&mut self) {
        self.additional_at.get_or_insert(self.w.len());
    }

    fn soa_rr(&mut self, serial: u32) {
        let Some(zone) = self.zone_at else { return };
        // CoreDNS caps the SOA's own TTL at 300 s; the minimum (negative TTL) is the configured TTL.
        let at = self.w.begin_rr(zone, rtype::SOA, self.ttl.min(300));
        self.w.bytes(b"\x02ns\x03dns");
        self.w.pointer(zone);
        self.w.bytes(b"\x0ahostmaster");
        self.w.pointer(zone);
        self.w.u32(serial);
        self.w.u32(7200);
        self.w.u32(1800);
        self.w.u32(86400);
        self.w.u32(self.ttl);
        self.w.end_rr(at);
    }

    fn soa_authority(&mut self, serial: u32) {
        self.soa_rr(serial);
        self.ns += 1;
    }

    /// Fills in the header, appends the OPT record, and shrinks the reply to what the client can take.
    fn finish(mut self) {
        let opt_len = if self.edns.is_some() { OPT_LEN } else { 0 };
        let limit = match (self.tc_allowed, self.edns) {
            (false, _) => u16::MAX as usize,
            (true, Some(e)) => (e.udp_size as usize).max(MIN_UDP),
            (true, None) => MIN_UDP,
        };
        let mut tc = false;
        if self.w.len() + opt_len > limit {
            match self.additional_at {
                // Glue is optional: drop it before the answer.
                Some(at) if at + opt_len <= limit => {
                    self.w.buf.truncate(at);
                    self.ar = 0;
                }
                _ => {
                    self.w.buf.truncate(self.q_end);
                    self.an = 0;
                    self.ns = 0;
                    self.ar = 0;
                    tc = true;
                }
            }
        }
        if let Some(e) = self.edns {
            self.w.u8(0);
            self.w.u16(rtype::OPT);
            self.w.u16(e.udp_size.max(MIN_UDP as u16));
            self.w.u8(self.ext_rcode);
            self.w.u8(0);
            self.w.u16(if e.dnssec_ok { 0x8000 } else { 0 });
            self.w.u16(0);
            self.ar += 1;
        }
        let mut flags = FLAG_QR | (self.h.flags & (0xF << 11)) | self.rcode as u16;
        if self.h.opcode() == OPCODE_QUERY {
            flags |= self.h.flags & (FLAG_RD | FLAG_CD);
        }
        if self.aa {
            flags |= FLAG_AA;
        }
        if tc {
            flags |= FLAG_TC;
        }
        let qd = if self.q_end > HEADER_LEN { 1 } else { 0 };
        self.w.set_u16(0, self.h.id);
        self.w.set_u16(2, flags);
        self.w.set_u16(4, qd);
        self.w.set_u16(6, self.an as u16);
        self.w.set_u16(8, self.ns as u16);
        self.w.set_u16(10, self.ar as u16);
    }
}

/// What a query selects under a Service name.
#[derive(Clone, Copy)]
enum Sel<'q> {
    /// `<svc>...` or `_<port>._<proto>.<svc>...`
    Service {
        port: Option<&'q [u8]>,
        proto: Option<&'q [u8]>,
    },
    /// `<host>.<svc>...`
    Endpoint { host: &'q [u8] },
}

struct Lookup<'a> {
    idx: &'a Index,
    t: &'a Table,
}

fn strip_underscore(l: &[u8]) -> Option<&[u8]> {
    let l = l.strip_prefix(b"_").unwrap_or(l);
    // CoreDNS treats an empty port or protocol as "any".
    (!l.is_empty()).then_some(l)
}

impl Lookup<'_> {
    /// Answers `n` (a name in the zone) into `r` with owner name at `owner`; `depth` counts CNAMEs followed.
    fn name(
        &self,
        r: &mut Reply,
        s: &mut Scratch,
        n: &Name,
        qtype: u16,
        owner: usize,
        depth: u8,
    ) -> Found {
        let rel = n.label_count() - self.idx.zone.labels.len();
        match rel {
            0 => Some(self.apex(r, qtype)),
            1 => match n.label(0) {
                b"dns-version" => {
                    if qtype != rtype::TXT {
                        return Some(0);
                    }
                    let at = r.w.begin_rr(owner, rtype::TXT, SCHEMA_VERSION_TTL);
                    r.w.u8(SCHEMA_VERSION.len() as u8);
                    r.w.bytes(SCHEMA_VERSION.as_bytes());
                    r.w.end_rr(at);
                    r.an += 1;
                    Some(1)
                }
                b"svc" | b"pod" => Some(0),
                _ => None,
            },
            _ => match n.label(rel - 1) {
                b"svc" => self.service(r, s, n, rel, qtype, owner, depth),
                b"pod" => self.pod(r, n, rel, qtype, owner),
                b"dns" if rel == 2 && n.label(0) == b"ns" => {
                    Some(self.nameserver_addrs(r, qtype, owner))
                }
                _ => None,
            },
        }
    }

    fn apex(&self, r: &mut Reply, qtype: u16) -> u32 {
        match qtype {
            rtype::SOA => {
                r.soa_rr(self.idx.serial());
                r.an += 1;
                1
            }
            rtype::NS if !self.idx.config.nameservers.is_empty() => {
                let Some(zone) = r.zone_at else { return 0 };
                let at = r.w.begin_rr(zone, rtype::NS, r.ttl);
                let ns_name = r.w.len();
                r.w.bytes(b"\x02ns\x03dns");
                r.w.pointer(zone);
                r.w.end_rr(at);
                r.an += 1;
                r.start_additional();
                for ip in &self.idx.config.nameservers {
                    r.address(ns_name, *ip);
                    r.ar += 1;
                }
                1
            }
            _ => 0,
        }
    }

    fn nameserver_addrs(&self, r: &mut Reply, qtype: u16, owner: usize) -> u32 {
        let mut n = 0;
        for ip in &self.idx.config.nameservers {
            let wanted = matches!(
                (qtype, ip),
                (rtype::A, IpAddr::V4(_)) | (rtype::AAAA, IpAddr::V6(_))
            );
            if wanted {
                r.address(owner, *ip);
                n += 1;
            }
        }
        r.an += n;
        n
    }

    #[allow(clippy::too_many_arguments)]
    fn service(
        &self,
        r: &mut Reply,
        s: &mut Scratch,
        n: &Name,
        rel: usize,
        qtype: u16,
        owner: usize,
        depth: u8,
    ) -> Found {
        let ns = n.label(rel - 2);
        if rel == 2 {
            return self.t.namespaces.contains(ns).then_some(0);
        }
        let e = self.t.service(n.label(rel - 3), ns)?;
        let sel = match rel {
            3 => Sel::Service {
                port: None,
                proto: None,
            },
            4 => Sel::Endpoint { host: n.label(0) },
            5 => Sel::Service {
                port: strip_underscore(n.label(0)),
                proto: strip_underscore(n.label(1)),
            },
            _ => return None,
        };
        match (&e.kind, sel) {
            (
                Kind::ExternalName(target),
                Sel::Service {
                    port: None,
                    proto: None,
                },
            ) => {
                let target = target.as_deref()?;
                Some(self.external_name(r, s, n, target, qtype, owner, depth))
            }
            (Kind::ExternalName(_), _) => None,
            (Kind::ClusterIp, Sel::Service { port, proto }) => {
                if !e.ports.iter().any(|p| p.matches(port, proto)) {
                    return None;
                }
                Some(match qtype {
                    rtype::A => {
                        e.v4.iter().for_each(|ip| r.a(owner, *ip));
                        r.an += e.v4.len() as u32;
                        e.v4.len() as u32
                    }
                    rtype::AAAA => {
                        e.v6.iter().for_each(|ip| r.aaaa(owner, *ip));
                        r.an += e.v6.len() as u32;
                        e.v6.len() as u32
                    }
                    rtype::SRV => cluster_ip_srv(r, e, port, proto, owner),
                    _ => 0,
                })
            }
            (_, sel) => {
                let (host, port, proto) = match sel {
                    Sel::Service { port, proto } => (None, port, proto),
                    Sel::Endpoint { host } => (Some(host), None, None),
                };
                if pair_count(e, host, port, proto) == 0 {
                    // A headless Service without answering endpoints has no name (the specification's NXDOMAIN).
                    return None;
                }
                let bare = host.is_none() && port.is_none() && proto.is_none();
                Some(match qtype {
                    rtype::A if bare => {
                        e.v4.iter().for_each(|ip| r.a(owner, *ip));
                        r.an += e.v4.len() as u32;
                        e.v4.len() as u32
                    }
                    rtype::AAAA if bare => {
                        e.v6.iter().for_each(|ip| r.aaaa(owner, *ip));
                        r.an += e.v6.len() as u32;
                        e.v6.len() as u32
                    }
                    rtype::A | rtype::AAAA => {
                        endpoint_addrs(r, s, e, host, port, proto, qtype, owner)
                    }
                    rtype::SRV => endpoint_srv(r, s, e, host, port, proto, owner),
                    _ => 0,
                })
            }
        }
    }

    /// An ExternalName Service: its CNAME, followed inside the zone (CoreDNS keeps the CNAME only when the target
    /// answers), left to an upstream outside it.
    #[allow(clippy::too_many_arguments)]
    fn external_name(
        &self,
        r: &mut Reply,
        s: &mut Scratch,
        n: &Name,
        target: &[u8],
        qtype: u16,
        owner: usize,
        depth: u8,
    ) -> u32 {
        let follow = matches!(qtype, rtype::A | rtype::AAAA | rtype::TXT);
        if qtype != rtype::CNAME && !follow {
            return 0;
        }
        let mut t = Name::new();
        if t.load(target).is_err() {
            return 0;
        }
        if follow && depth == 0 && t.lower_wire() == n.lower_wire() {
            // `x CNAME x` loops.
            return 0;
        }
        let mark = (r.w.len(), r.an);
        let at = r.w.begin_rr(owner, rtype::CNAME, r.ttl);
        let target_at = r.w.len();
        r.w.bytes(target);
        r.w.end_rr(at);
        r.an += 1;
        if !follow {
            return 1;
        }
        if !t.ends_with(&self.idx.zone.labels) {
            r.external_cname = true;
            return 1;
        }
        let found = if depth < MAX_CHAIN && target_at <= MAX_POINTER {
            self.name(r, s, &t, qtype, target_at, depth + 1)
        } else {
            None
        };
        match found {
            Some(k) if k > 0 => 1 + k,
            _ => {
                r.w.buf.truncate(mark.0);
                r.an = mark.1;
                0
            }
        }
    }

    fn pod(&self, r: &mut Reply, n: &Name, rel: usize, qtype: u16, owner: usize) -> Found {
        let mode = self.idx.config.pods;
        if mode == PodMode::Disabled {
            return None;
        }
        let ns = n.label(rel - 2);
        if rel == 2 {
            return self.t.namespaces.contains(ns).then_some(0);
        }
        if rel != 3 {
            return None;
        }
        let ip = pod_ip(n.label(0))?;
        let known = match mode {
            PodMode::Insecure => self.t.namespaces.contains(ns),
            _ => self
                .t
                .pods
                .get(&ip)
                .is_some_and(|nss| nss.iter().any(|x| &x[..] == ns)),
        };
        if !known {
            return None;
        }
        let wanted = matches!(
            (qtype, ip),
            (rtype::A, IpAddr::V4(_)) | (rtype::AAAA, IpAddr::V6(_))
        );
        if !wanted {
            return Some(0);
        }
        r.address(owner, ip);
        r.an += 1;
        Some(1)
    }
}

/// Number of (endpoint, port) pairs selected, CoreDNS's count of matching entries (sentinel ports included).
fn pair_count(
    e: &SvcEntry,
    host: Option<&[u8]>,
    port: Option<&[u8]>,
    proto: Option<&[u8]>,
) -> usize {
    let mut n = 0;
    e.each_endpoint(host, |_, ep| {
        n += e
            .ports_of(ep)
            .iter()
            .filter(|p| p.matches(port, proto))
            .count()
    });
    n
}

/// CoreDNS's SRV weight: 100 shared among the entries of the (single, zero) priority, at least 1.
fn srv_weight(entries: usize) -> u16 {
    (100 / entries.max(1)).max(1) as u16
}

fn write_srv(
    r: &mut Reply,
    owner: usize,
    weight: u16,
    port: i32,
    target: &[&[u8]],
) -> (usize, usize) {
    let at = r.w.begin_rr(owner, rtype::SRV, r.ttl);
    r.w.u16(0);
    r.w.u16(weight);
    r.w.u16(port as u16);
    let t = r.name_in_zone_plain(target);
    r.w.end_rr(at);
    r.an += 1;
    t
}

fn cluster_ip_srv(
    r: &mut Reply,
    e: &SvcEntry,
    port: Option<&[u8]>,
    proto: Option<&[u8]>,
    owner: usize,
) -> u32 {
    let matched = || e.ports.iter().filter(|p| p.matches(port, proto));
    let weight = srv_weight(matched().count() * e.cluster_ips.len());
    if e.cluster_ips.is_empty() {
        return 0;
    }
    let mut written = 0;
    let mut target = None;
    for (j, p) in e.ports.iter().enumerate() {
        if p.port < 0 || !p.matches(port, proto) {
            continue;
        }
        // Two ports with one number (53/UDP and 53/TCP) make the same SRV record.
        if e.ports[..j]
            .iter()
            .any(|d| d.port == p.port && d.matches(port, proto))
        {
            continue;
        }
        let t = write_srv(r, owner, weight, p.port, &[&e.prefix]);
        target.get_or_insert(t);
        written += 1;
    }
    if let Some((start, len)) = target {
        r.start_additional();
        for ip in e.cluster_ips.iter() {
            let ty = if ip.is_ipv4() { rtype::A } else { rtype::AAAA };
            let at = r.owner_copy(start, len, ty, r.ttl);
            match ip {
                IpAddr::V4(a) => r.w.bytes(&a.octets()),
                IpAddr::V6(a) => r.w.bytes(&a.octets()),
            }
            r.w.end_rr(at);
            r.ar += 1;
        }
    }
    written
}

#[allow(clippy::too_many_arguments)]
fn endpoint_addrs(
    r: &mut Reply,
    s: &mut Scratch,
    e: &SvcEntry,
    host: Option<&[u8]>,
    port: Option<&[u8]>,
    proto: Option<&[u8]>,
    qtype: u16,
    owner: usize,
) -> u32 {
    let mut n = 0;
    e.each_endpoint(host, |_, ep| {
        let family = matches!(
            (qtype, ep.ip),
            (rtype::A, IpAddr::V4(_)) | (rtype::AAAA, IpAddr::V6(_))
        );
        if !family || !e.ports_of(ep).iter().any(|p| p.matches(port, proto)) {
            return;
        }
        if e.may_repeat && !s.ip_seen.insert(ep.ip) {
            return;
        }
        r.address(owner, ep.ip);
        n += 1;
    });
    r.an += n;
    n
}

fn endpoint_srv(
    r: &mut Reply,
    s: &mut Scratch,
    e: &SvcEntry,
    host: Option<&[u8]>,
    port: Option<&[u8]>,
    proto: Option<&[u8]>,
    owner: usize,
) -> u32 {
    let weight = srv_weight(pair_count(e, host, port, proto));
    let mut written = 0;
    e.each_endpoint(host, |_, ep| {
        let mut target = None;
        for p in e
            .ports_of(ep)
            .iter()
            .filter(|p| p.port >= 0 && p.matches(port, proto))
        {
            if e.may_repeat && !s.srv_seen.insert((ep.host_id, p.port as u16)) {
                target = target.or_else(|| s.host_target.get(&ep.host_id).copied());
                continue;
            }
            let t = write_srv(
                r,
                owner,
                weight,
                p.port,
                &[&[ep.host.len() as u8], &ep.host, &e.prefix],
            );
            written += 1;
            if e.may_repeat {
                s.host_target.entry(ep.host_id).or_insert(t);
            }
            target.get_or_insert(t);
        }
        if let Some((start, len)) = target {
            if !e.may_repeat || s.glue_seen.insert((ep.host_id, ep.ip)) {
                s.glue.push((start, len, ep.ip));
            }
        }
    });
    if !s.glue.is_empty() {
        r.start_additional();
        for &(start, len, ip) in &s.glue {
            let ty = if ip.is_ipv4() { rtype::A } else { rtype::AAAA };
            let at = r.owner_copy(start, len, ty, r.ttl);
            match ip {
                IpAddr::V4(a) => r.w.bytes(&a.octets()),
                IpAddr::V6(a) => r.w.bytes(&a.octets()),
            }
            r.w.end_rr(at);
            r.ar += 1;
        }
    }
    written
}

/// CoreDNS's reading of a pod label: three dashes and no `--` is IPv4, anything else is IPv6 with `-` for `:`.
fn pod_ip(label: &[u8]) -> Option<IpAddr> {
    if label.len() > 45 {
        return None;
    }
    let dashes = label.iter().filter(|&&b| b == b'-').count();
    let v4 = dashes == 3 && !label.windows(2).any(|w| w == b"--");
    let mut buf = [0u8; 45];
    for (d, s) in buf.iter_mut().zip(label) {
        *d = if *s == b'-' {
            if v4 {
                b'.'
            } else {
                b':'
            }
        } else {
            *s
        };
    }
    let text = std::str::from_utf8(&buf[..label.len()]).ok()?;
    if v4 {
        text.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
    } else {
        text.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
    }
}

/// The address a full reverse name stands for (`d.c.b.a.in-addr.arpa` or 32 nibbles under `ip6.arpa`).
fn reverse_ip(n: &Name) -> Option<IpAddr> {
    let c = n.label_count();
    if c == 6 && n.label(4) == b"in-addr" && n.label(5) == b"arpa" {
        let mut o = [0u8; 4];
        for (i, slot) in o.iter_mut().rev().enumerate() {
            let l = n.label(i);
            if l.is_empty() || l.len() > 3 || !l.iter().all(u8::is_ascii_digit) {
                return None;
            }
            *slot = std::str::from_utf8(l).ok()?.parse().ok()?;
        }
        return Some(IpAddr::V4(Ipv4Addr::from(o)));
    }
    if c == 34 && n.label(32) == b"ip6" && n.label(33) == b"arpa" {
        let mut v: u128 = 0;
        for i in (0..32).rev() {
            let l = n.label(i);
            if l.len() != 1 {
                return None;
            }
            let d = (l[0] as char).to_digit(16)?;
            v = (v << 4) | d as u128;
        }
        return Some(IpAddr::V6(Ipv6Addr::from(v)));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_labels_parse_like_coredns() {
        assert_eq!(pod_ip(b"10-244-1-7"), Some("10.244.1.7".parse().unwrap()));
        assert_eq!(pod_ip(b"fd00--1"), Some("fd00::1".parse().unwrap()));
        assert_eq!(pod_ip(b"10-244-1"), None);
        assert_eq!(pod_ip(b"a-b-c-d"), None);
        assert_eq!(pod_ip(b"1-2-3-4-5"), None);
    }

    #[test]
    fn srv_weights_share_100() {
        assert_eq!(srv_weight(1), 100);
        assert_eq!(srv_weight(3), 33);
        assert_eq!(srv_weight(200), 1);
    }
}
