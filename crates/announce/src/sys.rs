//! The unsafe edge: an AF_PACKET socket on one interface, and interface lookups through getifaddrs. Every
//! libc call is wrapped here so the rest of the crate is safe code.

use std::ffi::CString;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use crate::packet::{Mac, ETHERTYPE_ARP, ETHERTYPE_IPV6};

// Linux uapi constants libc does not export on every target.
const PACKET_ADD_MEMBERSHIP: libc::c_int = 1;
const PACKET_DROP_MEMBERSHIP: libc::c_int = 2;
const PACKET_MR_MULTICAST: libc::c_ushort = 0;
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
const PACKET_OUTGOING: u8 = 4;
const SO_ATTACH_FILTER: libc::c_int = 26;

#[repr(C)]
struct PacketMreq {
    mr_ifindex: libc::c_int,
    mr_type: libc::c_ushort,
    mr_alen: libc::c_ushort,
    mr_address: [u8; 8],
}

/// An interface the speaker works on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub index: u32,
    pub mac: Mac,
}

/// Name and MAC of every interface, and the interface of each address, from one getifaddrs call.
struct IfAddrs {
    links: Vec<(String, Mac)>,
    addrs: Vec<(String, IpAddr)>,
}

fn ifaddrs() -> io::Result<IfAddrs> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out = IfAddrs {
        links: Vec::new(),
        addrs: Vec::new(),
    };
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned and we have not freed it yet.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let name = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: ifa_addr is non-null and points to a sockaddr whose family says its real type.
        let family = i32::from(unsafe { (*ifa.ifa_addr).sa_family });
        match family {
            libc::AF_PACKET => {
                // SAFETY: an AF_PACKET address is a sockaddr_ll.
                let ll = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_ll) };
                if ll.sll_halen == 6 {
                    let mut mac = [0u8; 6];
                    mac.copy_from_slice(&ll.sll_addr[..6]);
                    out.links.push((name, mac));
                }
            }
            libc::AF_INET => {
                // SAFETY: an AF_INET address is a sockaddr_in.
                let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
                let ip = std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                out.addrs.push((name, IpAddr::V4(ip)));
            }
            libc::AF_INET6 => {
                // SAFETY: an AF_INET6 address is a sockaddr_in6.
                let sin6 = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in6) };
                out.addrs
                    .push((name, IpAddr::V6(sin6.sin6_addr.s6_addr.into())));
            }
            _ => {}
        }
    }
    // SAFETY: `head` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

/// The interface holding one of `ips` (the node's InternalIPs), first match in their order.
pub fn interface_with(ips: &[IpAddr]) -> io::Result<Option<String>> {
    let all = ifaddrs()?;
    Ok(ips.iter().find_map(|ip| {
        all.addrs
            .iter()
            .find(|(_, a)| a == ip)
            .map(|(n, _)| n.clone())
    }))
}

pub fn interface(name: &str) -> io::Result<Interface> {
    let cname = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: cname is a valid NUL-terminated string.
    let index = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    if index == 0 {
        return Err(io::Error::last_os_error());
    }
    let mac = ifaddrs()?
        .links
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, m)| m)
        .ok_or_else(|| io::Error::other(format!("{name} has no Ethernet address")))?;
    Ok(Interface {
        name: name.to_string(),
        index,
        mac,
    })
}

/// One AF_PACKET socket bound to one interface, receiving ARP and ICMPv6 neighbour solicitations only.
pub struct PacketSocket {
    fd: OwnedFd,
    ifindex: i32,
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn setsockopt<T>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, val: &T) -> io::Result<()> {
    // SAFETY: `val` points to a live T of the given size for the duration of the call.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (val as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// Classic BPF: keep incoming ARP, and IPv6 frames carrying ICMPv6 type 135 without extension headers (how
/// every stack sends solicitations); drop the rest in the kernel, so a busy node's traffic never reaches us.
fn filter() -> Vec<libc::sock_filter> {
    const LD_W_ABS: u16 = 0x20;
    const LD_H_ABS: u16 = 0x28;
    const LD_B_ABS: u16 = 0x30;
    const JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;
    let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    let pkttype = (libc::SKF_AD_OFF + libc::SKF_AD_PKTTYPE) as u32;
    vec![
        op(LD_W_ABS, 0, 0, pkttype),                 // 0
        op(JEQ_K, 8, 0, u32::from(PACKET_OUTGOING)), // 1 → drop
        op(LD_H_ABS, 0, 0, 12),                      // 2 ethertype
        op(JEQ_K, 5, 0, u32::from(ETHERTYPE_ARP)),   // 3 → keep
        op(JEQ_K, 0, 5, u32::from(ETHERTYPE_IPV6)),  // 4 else drop
        op(LD_B_ABS, 0, 0, 14 + 6),                  // 5 next header
        op(JEQ_K, 0, 3, 58),                         // 6 ICMPv6 else drop
        op(LD_B_ABS, 0, 0, 14 + 40),                 // 7 ICMPv6 type
        op(JEQ_K, 0, 1, 135),                        // 8 NS else drop
        op(RET_K, 0, 0, 0x0004_0000),                // 9 keep
        op(RET_K, 0, 0, 0),                          // 10 drop
    ]
}

impl PacketSocket {
    pub fn open(ifindex: u32) -> io::Result<PacketSocket> {
        // Protocol 0 receives nothing until bind: the filter is in place before the first frame arrives.
        // SAFETY: plain socket(2) call; the fd is owned right away.
        let raw = cvt(unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                0,
            )
        })?;
        // SAFETY: `raw` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let mut prog = filter();
        let fprog = libc::sock_fprog {
            len: prog.len() as u16,
            filter: prog.as_mut_ptr(),
        };
        if let Err(e) = setsockopt(&fd, libc::SOL_SOCKET, SO_ATTACH_FILTER, &fprog) {
            // Not fatal: decoding in user space filters too, at some CPU cost.
            tracing::warn!(error = %e, "announce: cannot attach the socket filter");
        }
        // Older kernels lack it; the filter and our own MAC check cover them.
        let _ = setsockopt(&fd, libc::SOL_PACKET, PACKET_IGNORE_OUTGOING, &1i32);
        let ifindex =
            i32::try_from(ifindex).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: sockaddr_ll is plain data; all-zero is a valid start.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        sll.sll_ifindex = ifindex;
        // SAFETY: `sll` is a valid sockaddr_ll of the given size.
        cvt(unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        })?;
        Ok(PacketSocket { fd, ifindex })
    }

    /// Waits until a frame may be read or `timeout` passes; `true` when readable.
    pub fn wait(&self, timeout: Duration) -> io::Result<bool> {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: one valid pollfd.
        match unsafe { libc::poll(&mut pfd, 1, ms) } {
            r if r < 0 => {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    Ok(false)
                } else {
                    Err(e)
                }
            }
            0 => Ok(false),
            _ => Ok(true),
        }
    }

    /// Reads one frame into `buf`; `Ok(None)` when none is waiting. Outgoing copies are skipped.
    pub fn recv<'a>(&self, buf: &'a mut [u8]) -> io::Result<Option<&'a [u8]>> {
        loop {
            // SAFETY: sockaddr_ll is plain data.
            let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            // SAFETY: buf and from are valid for writes of the sizes given.
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    0,
                    (&mut from as *mut libc::sockaddr_ll).cast(),
                    &mut len,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                return match e.kind() {
                    io::ErrorKind::WouldBlock => Ok(None),
                    io::ErrorKind::Interrupted => continue,
                    _ => Err(e),
                };
            }
            if from.sll_pkttype == PACKET_OUTGOING {
                continue;
            }
            let n = usize::try_from(n).unwrap_or(0).min(buf.len());
            return Ok(Some(&buf[..n]));
        }
    }

    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: frame is valid for reads of its length; the socket is bound to its interface.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Joins or leaves an Ethernet multicast group: solicitations go to solicited-node groups that a real
    /// NIC filters out unless someone asked for them.
    pub fn multicast(&self, mac: Mac, join: bool) -> io::Result<()> {
        let mut mr_address = [0u8; 8];
        mr_address[..6].copy_from_slice(&mac);
        let mreq = PacketMreq {
            mr_ifindex: self.ifindex,
            mr_type: PACKET_MR_MULTICAST,
            mr_alen: 6,
            mr_address,
        };
        let opt = if join {
            PACKET_ADD_MEMBERSHIP
        } else {
            PACKET_DROP_MEMBERSHIP
        };
        setsockopt(&self.fd, libc::SOL_PACKET, opt, &mreq)
    }
}
