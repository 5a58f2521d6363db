//! NETLINK_NETFILTER plumbing: the socket, the message and attribute encoding of nfnetlink batches, and the
//! parsing of the kernel's acknowledgements. Nothing here knows about Services; [`crate::encode`] turns the
//! proxy's elements into the attribute bytes that this module frames.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Result};

// Kernel ABI numbers (include/uapi/linux/netlink.h, netfilter/nfnetlink.h, netfilter/nf_tables.h). Written
// out here rather than taken from libc because libc lacks several of them on linux-gnu and the numbers are
// a stable ABI.
pub(crate) const NETLINK_NETFILTER: libc::c_int = 12;
const SOL_NETLINK: libc::c_int = 270;
const NETLINK_CAP_ACK: libc::c_int = 10;
const NETLINK_EXT_ACK: libc::c_int = 11;

const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_MULTI: u16 = 0x2;
pub(crate) const NLM_F_ACK: u16 = 0x4;
const NLM_F_CAPPED: u16 = 0x100;
const NLM_F_ACK_TLVS: u16 = 0x200;
pub(crate) const NLM_F_CREATE: u16 = 0x400;
const NLM_F_DUMP: u16 = 0x300;
const NLMSGERR_ATTR_MSG: u16 = 1;
const NLMSGERR_ATTR_OFFS: u16 = 2;
pub(crate) const NLA_F_NESTED: u16 = 0x8000;

const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFNL_SUBSYS_NFTABLES: u16 = 10;

pub(crate) const NFT_MSG_GETCHAIN: u16 = 4;
pub(crate) const NFT_MSG_DELCHAIN: u16 = 5;
pub(crate) const NFT_MSG_DELTABLE: u16 = 2;
pub(crate) const NFT_MSG_NEWSETELEM: u16 = 12;
pub(crate) const NFT_MSG_DELSETELEM: u16 = 14;
/// Kernel 6.3+: like DELSETELEM but an absent element is not an error.
pub(crate) const NFT_MSG_DESTROYSETELEM: u16 = 30;

pub(crate) const NFTA_TABLE_NAME: u16 = 1;
pub(crate) const NFTA_CHAIN_TABLE: u16 = 1;
pub(crate) const NFTA_CHAIN_NAME: u16 = 3;
pub(crate) const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
pub(crate) const NFTA_SET_ELEM_LIST_SET: u16 = 2;
pub(crate) const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;

/// The largest attribute payload: `nla_len` is 16 bits, and a message's elements are one nested attribute.
pub(crate) const MAX_NESTED_PAYLOAD: usize = 60_000;

/// nftables families as nfnetlink spells them.
pub(crate) const NFPROTO_IPV4: u8 = 2;
pub(crate) const NFPROTO_IPV6: u8 = 10;

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Appends one attribute (header, payload, padding).
pub(crate) fn put_attr(buf: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    let len = 4 + payload.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(payload);
    buf.resize(align4(buf.len()), 0);
}

/// Appends a NUL-terminated string attribute, as the kernel's NLA_STRING policies expect from nft.
pub(crate) fn put_str(buf: &mut Vec<u8>, kind: u16, value: &str) {
    let mut payload = Vec::with_capacity(value.len() + 1);
    payload.extend_from_slice(value.as_bytes());
    payload.push(0);
    put_attr(buf, kind, &payload);
}

/// Opens a nested attribute; returns where its header is, for [`end_nested`].
pub(crate) fn begin_nested(buf: &mut Vec<u8>, kind: u16) -> usize {
    let start = buf.len();
    buf.extend_from_slice(&[0, 0]);
    buf.extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
    start
}

pub(crate) fn end_nested(buf: &mut [u8], start: usize) {
    let len = (buf.len() - start) as u16;
    buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
}

/// One message of a batch, as built; the batch frames it with a header and a sequence number.
pub(crate) struct Message {
    pub kind: u16,
    pub flags: u16,
    pub family: u8,
    /// Attributes, already encoded.
    pub body: Vec<u8>,
}

/// What the kernel said about one message of a batch.
#[derive(Debug, Clone)]
pub(crate) struct MessageError {
    /// Index of the message in the batch (not counting BEGIN/END).
    pub index: usize,
    pub errno: i32,
    /// Offset of the offending attribute from the start of the message's body (after nlmsghdr + nfgenmsg),
    /// when the kernel pointed at one (extended ack).
    pub body_offset: Option<usize>,
    pub message: Option<String>,
}

/// The outcome of one batch.
#[derive(Debug, Default)]
pub(crate) struct BatchResult {
    /// Errors of individual messages; any error means the kernel aborted the whole batch.
    pub errors: Vec<MessageError>,
    /// An error that concerns the batch as a whole (commit failure, out of memory).
    pub batch_error: Option<(i32, Option<String>)>,
    pub bytes: usize,
}

impl BatchResult {
    pub fn ok(&self) -> bool {
        self.errors.is_empty() && self.batch_error.is_none()
    }
}

/// A NETLINK_NETFILTER socket bound to the network namespace it was created in.
pub(crate) struct Socket {
    fd: OwnedFd,
    seq: u32,
    sndbuf: usize,
    recv_buf: Vec<u8>,
}

const RCVBUF: usize = 8 << 20;
const INITIAL_SNDBUF: usize = 4 << 20;

impl Socket {
    /// Opens a socket in the calling thread's network namespace.
    pub fn open() -> Result<Socket> {
        // SAFETY: plain socket(2); the result is checked and owned right away.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                NETLINK_NETFILTER,
            )
        };
        if raw < 0 {
            return Err(Error::Socket(io::Error::last_os_error()));
        }
        // SAFETY: `raw` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: sockaddr_nl is plain data; zeroed is its "any port, no groups" value.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: addr is a valid sockaddr_nl of the size passed.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                &addr as *const libc::sockaddr_nl as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(Error::Socket(io::Error::last_os_error()));
        }
        let mut socket = Socket {
            fd,
            seq: initial_seq(),
            sndbuf: 0,
            recv_buf: vec![0; 1 << 20],
        };
        // Extended acks point at the element the kernel refused (so one bad element can be told apart from
        // its neighbours in a message of a thousand); capped acks keep a refused 60 kB message from being
        // echoed back whole.
        socket.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)?;
        socket.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)?;
        // A cold sync acks a few hundred messages; the FORCE variants pass the rmem/wmem sysctl limits (we
        // are root, as anything programming nftables is). Fall back to the plain ones when not permitted.
        if socket
            .setsockopt(libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, RCVBUF as i32)
            .is_err()
        {
            socket.setsockopt(libc::SOL_SOCKET, libc::SO_RCVBUF, RCVBUF as i32)?;
        }
        socket.ensure_sndbuf(INITIAL_SNDBUF)?;
        // A reply never takes long (the kernel handles a batch synchronously inside sendmsg); the timeout
        // only turns a protocol bug into an error instead of a hang.
        let timeout = libc::timeval {
            tv_sec: 30,
            tv_usec: 0,
        };
        // SAFETY: timeval of the size passed.
        let rc = unsafe {
            libc::setsockopt(
                socket.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &timeout as *const libc::timeval as *const libc::c_void,
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(Error::Socket(io::Error::last_os_error()));
        }
        Ok(socket)
    }

    /// Opens a socket inside the network namespace at `path`. A socket belongs to the namespace it was
    /// created in for its whole life, so a short-lived thread enters the namespace (setns only changes the
    /// calling thread), creates the socket and exits; the process's other threads never move.
    pub fn open_in_netns(path: &Path) -> Result<Socket> {
        let file = std::fs::File::open(path).map_err(|source| Error::Netns {
            path: path.to_path_buf(),
            source,
        })?;
        let owned = path.to_path_buf();
        std::thread::Builder::new()
            .name("netfilter-setns".into())
            .spawn(move || -> Result<Socket> {
                // SAFETY: setns(2) on a descriptor we own; it affects only this thread.
                let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                if rc != 0 {
                    return Err(Error::Netns {
                        path: owned,
                        source: io::Error::last_os_error(),
                    });
                }
                Socket::open()
            })
            .map_err(Error::Socket)?
            .join()
            .map_err(|_| Error::Protocol("the setns thread panicked".into()))?
    }

    fn setsockopt(&self, level: libc::c_int, name: libc::c_int, value: i32) -> Result<()> {
        // SAFETY: an int option of the size passed.
        let rc = unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                level,
                name,
                &value as *const i32 as *const libc::c_void,
                std::mem::size_of::<i32>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(Error::Socket(io::Error::last_os_error()));
        }
        Ok(())
    }

    /// A batch must reach the kernel in one sendmsg (nfnetlink treats one skb as one batch), and the kernel
    /// refuses a datagram larger than the send buffer: grow it to fit, as nft does.
    fn ensure_sndbuf(&mut self, len: usize) -> Result<()> {
        if len + 4096 <= self.sndbuf {
            return Ok(());
        }
        let want = (len + (1 << 20)).min(i32::MAX as usize / 2);
        if self
            .setsockopt(libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, want as i32)
            .is_err()
        {
            self.setsockopt(libc::SOL_SOCKET, libc::SO_SNDBUF, want as i32)?;
        }
        self.sndbuf = want;
        Ok(())
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Sends `messages` as one nfnetlink batch (BEGIN … END) with an ack requested for each, and collects
    /// the kernel's answers. The kernel processes every message even after one fails, reports each
    /// failure, then aborts the whole batch: so either everything applied or nothing did.
    pub fn batch(&mut self, messages: &[Message]) -> Result<BatchResult> {
        let mut buf =
            Vec::with_capacity(messages.iter().map(|m| m.body.len() + 20).sum::<usize>() + 64);
        let begin_seq = self.next_seq();
        push_header(
            &mut buf,
            NFNL_MSG_BATCH_BEGIN,
            NLM_F_REQUEST,
            begin_seq,
            libc::AF_UNSPEC as u8,
            NFNL_SUBSYS_NFTABLES,
            &[],
        );
        let first_seq = begin_seq.wrapping_add(1);
        for message in messages {
            let seq = self.next_seq();
            push_header(
                &mut buf,
                (NFNL_SUBSYS_NFTABLES << 8) | message.kind,
                NLM_F_REQUEST | NLM_F_ACK | message.flags,
                seq,
                message.family,
                0,
                &message.body,
            );
        }
        let end_seq = self.next_seq();
        push_header(
            &mut buf,
            NFNL_MSG_BATCH_END,
            NLM_F_REQUEST,
            end_seq,
            libc::AF_UNSPEC as u8,
            NFNL_SUBSYS_NFTABLES,
            &[],
        );
        self.ensure_sndbuf(buf.len())?;
        self.send(&buf)?;

        let mut result = BatchResult {
            bytes: buf.len(),
            ..BatchResult::default()
        };
        let mut acked = vec![false; messages.len()];
        let mut pending = messages.len();
        // The kernel has processed the batch when sendmsg returns and queued one ack per message (an error
        // or 0), plus an error on BEGIN if the commit itself failed. Read until every message is answered;
        // after a batch-level error, take whatever else is queued without waiting.
        let mut nonblocking = false;
        while pending > 0 {
            let Some(len) = self.recv(nonblocking)? else {
                break;
            };
            let mut off = 0;
            while off + NLMSG_HDRLEN <= len {
                let data = &self.recv_buf[off..len];
                let header = parse_header(data)?;
                let msg_len = header.len as usize;
                if msg_len < NLMSG_HDRLEN || msg_len > data.len() {
                    return Err(Error::Protocol(format!(
                        "netlink message length {msg_len} out of bounds"
                    )));
                }
                let payload = &data[NLMSG_HDRLEN..msg_len];
                if header.kind == NLMSG_ERROR {
                    let ack = parse_ack(payload, header.flags)?;
                    let index = header.seq.wrapping_sub(first_seq) as usize;
                    if header.seq == begin_seq || header.seq == end_seq {
                        if ack.errno != 0 {
                            result.batch_error = Some((ack.errno, ack.message));
                            nonblocking = true;
                        }
                    } else if index < messages.len() {
                        if !acked[index] {
                            acked[index] = true;
                            pending -= 1;
                        }
                        if ack.errno != 0 {
                            result.errors.push(MessageError {
                                index,
                                errno: ack.errno,
                                // The kernel's offset counts from the nlmsghdr; ours from the body.
                                body_offset: ack
                                    .offset
                                    .and_then(|o| o.checked_sub(NLMSG_HDRLEN + 4)),
                                message: ack.message,
                            });
                        }
                    }
                    // Anything else is a late answer to an earlier batch that timed out: ignore it.
                }
                off += align4(msg_len);
            }
        }
        if pending > 0 && result.batch_error.is_none() {
            return Err(Error::Protocol(format!(
                "{pending} of {} messages were not acknowledged",
                messages.len()
            )));
        }
        Ok(result)
    }

    /// Sends a dump request (e.g. GETCHAIN) and returns the body (after nfgenmsg) of every reply message.
    pub fn dump(&mut self, kind: u16, family: u8, body: &[u8]) -> Result<Vec<Vec<u8>>> {
        let seq = self.next_seq();
        let mut buf = Vec::new();
        push_header(
            &mut buf,
            (NFNL_SUBSYS_NFTABLES << 8) | kind,
            NLM_F_REQUEST | NLM_F_DUMP,
            seq,
            family,
            0,
            body,
        );
        self.send(&buf)?;
        let mut out = Vec::new();
        loop {
            let Some(len) = self.recv(false)? else {
                return Err(Error::Protocol("dump ended without NLMSG_DONE".into()));
            };
            let mut off = 0;
            while off + NLMSG_HDRLEN <= len {
                let data = &self.recv_buf[off..len];
                let header = parse_header(data)?;
                let msg_len = header.len as usize;
                if msg_len < NLMSG_HDRLEN || msg_len > data.len() {
                    return Err(Error::Protocol(format!(
                        "netlink message length {msg_len} out of bounds"
                    )));
                }
                off += align4(msg_len);
                if header.seq != seq {
                    continue;
                }
                let payload = &data[NLMSG_HDRLEN..msg_len];
                match header.kind {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => {
                        let ack = parse_ack(payload, header.flags)?;
                        if ack.errno == 0 {
                            return Ok(out);
                        }
                        return Err(Error::Kernel {
                            what: "dump".into(),
                            errno: ack.errno,
                            message: ack.message,
                        });
                    }
                    _ => {
                        if payload.len() >= 4 {
                            out.push(payload[4..].to_vec());
                        }
                        if header.flags & NLM_F_MULTI == 0 {
                            return Ok(out);
                        }
                    }
                }
            }
        }
    }

    fn send(&self, buf: &[u8]) -> Result<()> {
        // SAFETY: sockaddr_nl zeroed is the kernel's address (port 0).
        let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        loop {
            // SAFETY: buf and kernel are valid for the sizes passed.
            let rc = unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    buf.as_ptr() as *const libc::c_void,
                    buf.len(),
                    0,
                    &kernel as *const libc::sockaddr_nl as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
                )
            };
            if rc < 0 {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(Error::Socket(err));
            }
            if rc as usize != buf.len() {
                return Err(Error::Protocol(format!(
                    "short netlink send: {rc} of {} bytes",
                    buf.len()
                )));
            }
            return Ok(());
        }
    }

    /// One datagram into `recv_buf`; `None` when nonblocking and nothing is queued.
    fn recv(&mut self, nonblocking: bool) -> Result<Option<usize>> {
        let flags = if nonblocking { libc::MSG_DONTWAIT } else { 0 } | libc::MSG_TRUNC;
        loop {
            // SAFETY: recv into our buffer of the length passed.
            let rc = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    self.recv_buf.as_mut_ptr() as *mut libc::c_void,
                    self.recv_buf.len(),
                    flags,
                )
            };
            if rc < 0 {
                let err = io::Error::last_os_error();
                match err.kind() {
                    io::ErrorKind::Interrupted => continue,
                    io::ErrorKind::WouldBlock if nonblocking => return Ok(None),
                    io::ErrorKind::WouldBlock => {
                        return Err(Error::Protocol("timed out waiting for the kernel".into()))
                    }
                    _ => return Err(Error::Socket(err)),
                }
            }
            let len = rc as usize;
            if len > self.recv_buf.len() {
                return Err(Error::Protocol(format!(
                    "netlink datagram of {len} bytes truncated"
                )));
            }
            return Ok(Some(len));
        }
    }
}

fn initial_seq() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs() as u32
}

fn push_header(
    buf: &mut Vec<u8>,
    kind: u16,
    flags: u16,
    seq: u32,
    family: u8,
    res_id: u16,
    body: &[u8],
) {
    let len = NLMSG_HDRLEN + 4 + body.len();
    buf.extend_from_slice(&(len as u32).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(&flags.to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes());
    // nfgenmsg: family, version 0, resource id (big endian; the subsystem for batch delimiters).
    buf.push(family);
    buf.push(0);
    buf.extend_from_slice(&res_id.to_be_bytes());
    buf.extend_from_slice(body);
    buf.resize(align4(buf.len()), 0);
}

struct Header {
    len: u32,
    kind: u16,
    flags: u16,
    seq: u32,
}

fn parse_header(data: &[u8]) -> Result<Header> {
    let get = |range: std::ops::Range<usize>| -> Result<&[u8]> {
        data.get(range)
            .ok_or_else(|| Error::Protocol("short netlink header".into()))
    };
    Ok(Header {
        len: u32::from_ne_bytes(to4(get(0..4)?)),
        kind: u16::from_ne_bytes(to2(get(4..6)?)),
        flags: u16::from_ne_bytes(to2(get(6..8)?)),
        seq: u32::from_ne_bytes(to4(get(8..12)?)),
    })
}

fn to4(s: &[u8]) -> [u8; 4] {
    let mut a = [0; 4];
    a.copy_from_slice(&s[..4]);
    a
}

fn to2(s: &[u8]) -> [u8; 2] {
    let mut a = [0; 2];
    a.copy_from_slice(&s[..2]);
    a
}

struct Ack {
    /// Positive errno, 0 for success.
    errno: i32,
    offset: Option<usize>,
    message: Option<String>,
}

/// Parses `struct nlmsgerr` and, with extended acks, its TLVs (message text and offending offset).
fn parse_ack(payload: &[u8], flags: u16) -> Result<Ack> {
    let error = payload
        .get(0..4)
        .map(|b| i32::from_ne_bytes(to4(b)))
        .ok_or_else(|| Error::Protocol("short netlink ack".into()))?;
    let mut ack = Ack {
        errno: error.saturating_neg(),
        offset: None,
        message: None,
    };
    if flags & NLM_F_ACK_TLVS == 0 {
        return Ok(ack);
    }
    // After the error comes the original header, and its payload unless the ack is capped.
    let orig_len = payload
        .get(4..8)
        .map(|b| u32::from_ne_bytes(to4(b)) as usize)
        .unwrap_or(0);
    let mut off = 4 + if flags & NLM_F_CAPPED != 0 {
        NLMSG_HDRLEN
    } else {
        align4(orig_len)
    };
    while off + 4 <= payload.len() {
        let len = u16::from_ne_bytes(to2(&payload[off..off + 2])) as usize;
        let kind = u16::from_ne_bytes(to2(&payload[off + 2..off + 4])) & 0x3fff;
        if len < 4 || off + len > payload.len() {
            break;
        }
        let value = &payload[off + 4..off + len];
        match kind {
            NLMSGERR_ATTR_MSG => {
                let text = value.split(|b| *b == 0).next().unwrap_or(&[]);
                ack.message = Some(String::from_utf8_lossy(text).into_owned());
            }
            NLMSGERR_ATTR_OFFS if value.len() >= 4 => {
                ack.offset = Some(u32::from_ne_bytes(to4(value)) as usize);
            }
            _ => {}
        }
        off += align4(len);
    }
    Ok(ack)
}

/// Iterates the attributes of a message body: (type without flags, payload).
pub(crate) fn attrs(mut data: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if data.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes(to2(&data[0..2])) as usize;
        let kind = u16::from_ne_bytes(to2(&data[2..4])) & 0x3fff;
        if len < 4 || len > data.len() {
            return None;
        }
        let value = &data[4..len];
        data = &data[align4(len).min(data.len())..];
        Some((kind, value))
    })
}

/// A string attribute's value without its NUL.
pub(crate) fn attr_str(value: &[u8]) -> String {
    let text = value.split(|b| *b == 0).next().unwrap_or(&[]);
    String::from_utf8_lossy(text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_padded_and_nested_lengths_patched() {
        let mut buf = Vec::new();
        let start = begin_nested(&mut buf, 3);
        put_attr(&mut buf, 1, &[6]);
        put_str(&mut buf, 2, "ab");
        end_nested(&mut buf, start);
        assert_eq!(buf.len(), 4 + 8 + 8);
        assert_eq!(u16::from_ne_bytes([buf[0], buf[1]]), 20);
        assert_eq!(u16::from_ne_bytes([buf[2], buf[3]]), 3 | NLA_F_NESTED);
        let inner: Vec<_> = attrs(&buf[4..]).collect();
        assert_eq!(inner, vec![(1, &[6u8][..]), (2, &b"ab\0"[..])]);
    }

    #[test]
    fn ack_with_extended_tlvs() {
        let mut payload = Vec::new();
        payload.extend_from_slice(&(-2i32).to_ne_bytes());
        payload.extend_from_slice(&[0u8; 16]);
        put_str(&mut payload, NLMSGERR_ATTR_MSG, "nope");
        put_attr(&mut payload, NLMSGERR_ATTR_OFFS, &64u32.to_ne_bytes());
        let ack = parse_ack(&payload, NLM_F_ACK_TLVS | NLM_F_CAPPED).expect("parses");
        assert_eq!(ack.errno, 2);
        assert_eq!(ack.offset, Some(64));
        assert_eq!(ack.message.as_deref(), Some("nope"));
        // Truncated input is an error, not a panic.
        assert!(parse_ack(&payload[..2], 0).is_err());
    }
}
