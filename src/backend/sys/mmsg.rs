//! Datagrams in batches: `recvmmsg(2)` fills many receive slots in one system call, and
//! `sendmmsg(2)` sends many held datagrams in one.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, BorrowedFd};

/// Most datagrams taken by one `recvmmsg` call.
pub(crate) const MAX_BATCH: usize = 64;

/// Receive slots for up to `count` datagrams, filled by one `recvmmsg` and handed out
/// one at a time.
#[derive(Debug)]
pub(crate) struct RecvBatch {
    slot: usize,
    count: usize,
    data: Vec<u8>,
    /// Per datagram received: its full length (larger than `slot` when it was cut) and
    /// its sender (`None` for an address family other than IPv4 and IPv6).
    got: Vec<(usize, Option<SocketAddr>)>,
    next: usize,
}

/// One received datagram.
pub(crate) struct Datagram<'a> {
    /// The bytes that fit in the slot.
    pub data: &'a [u8],
    /// The datagram's full length: more than `data.len()` when it did not fit.
    pub len: usize,
    /// The sender.
    pub from: Option<SocketAddr>,
}

impl RecvBatch {
    /// Slots for `count` datagrams (1 to [`MAX_BATCH`]) of up to `slot` bytes each; a
    /// longer datagram is reported with its full length and cut.
    pub(crate) fn new(count: usize, slot: usize) -> Self {
        let count = count.clamp(1, MAX_BATCH);
        Self {
            slot,
            count,
            data: vec![0; count * slot],
            got: Vec::with_capacity(count),
            next: 0,
        }
    }

    /// How many datagrams one [`fill`](Self::fill) takes at most.
    pub(crate) fn capacity(&self) -> usize {
        self.count
    }

    /// Whether datagrams of the last fill are still to be taken.
    pub(crate) fn pending(&self) -> bool {
        self.next < self.got.len()
    }

    /// Take the next datagram of the last fill.
    pub(crate) fn take(&mut self) -> Option<Datagram<'_>> {
        let &(len, from) = self.got.get(self.next)?;
        let start = self.next * self.slot;
        self.next += 1;
        Some(Datagram {
            data: &self.data[start..start + len.min(self.slot)],
            len,
            from,
        })
    }

    /// Receive what `fd` has, up to the capacity, without blocking: the number of
    /// datagrams (0 when none is waiting). Datagrams not taken since the last fill are
    /// discarded: call it only when [`pending`](Self::pending) is false.
    pub(crate) fn fill(&mut self, fd: BorrowedFd<'_>) -> io::Result<usize> {
        self.got.clear();
        self.next = 0;
        // SAFETY: all-zero is a valid value of these plain C structs (null pointers,
        // zero lengths, family AF_UNSPEC).
        let mut names: [libc::sockaddr_storage; MAX_BATCH] = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut msgs: [libc::mmsghdr; MAX_BATCH] = unsafe { std::mem::zeroed() };
        let mut iovs = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; MAX_BATCH];
        let slots = self.data.chunks_exact_mut(self.slot);
        for (((slot, iov), msg), name) in slots.zip(&mut iovs).zip(&mut msgs).zip(&mut names) {
            iov.iov_base = slot.as_mut_ptr().cast();
            iov.iov_len = slot.len();
            msg.msg_hdr.msg_name = std::ptr::from_mut(name).cast();
            msg.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as u32;
            msg.msg_hdr.msg_iov = std::ptr::from_mut(iov);
            msg.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: the first `self.count` entries of `msgs` (count <= MAX_BATCH) each
        // point at one iovec naming a distinct `slot`-byte part of `self.data` and at a
        // sockaddr_storage with its size as namelen; all of them live on this stack frame
        // or in `self` across the call, and nothing else uses them meanwhile. The kernel
        // writes at most iov_len bytes per slot and at most namelen bytes per name.
        // MSG_TRUNC makes msg_len the datagram's full length, MSG_DONTWAIT never blocks.
        let n = unsafe {
            libc::recvmmsg(
                fd.as_raw_fd(),
                msgs.as_mut_ptr(),
                self.count as u32,
                libc::MSG_DONTWAIT | libc::MSG_TRUNC,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(e),
            };
        }
        let n = (n as usize).min(self.count);
        for (msg, name) in msgs.iter().zip(&names).take(n) {
            self.got.push((
                msg.msg_len as usize,
                socket_addr(name, msg.msg_hdr.msg_namelen),
            ));
        }
        Ok(n)
    }
}

/// Datagrams held to be sent together by one `sendmmsg`.
#[derive(Debug)]
pub(crate) struct SendBatch {
    slot: usize,
    count: usize,
    data: Vec<u8>,
    lens: Vec<usize>,
}

/// What a [`SendBatch::flush`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Flushed {
    /// Datagrams the kernel took.
    pub sent: usize,
    /// System calls made.
    pub calls: usize,
}

impl SendBatch {
    /// Room for `count` datagrams (1 to [`MAX_BATCH`]) of up to `slot` bytes each.
    pub(crate) fn new(count: usize, slot: usize) -> Self {
        let count = count.clamp(1, MAX_BATCH);
        Self {
            slot,
            count,
            data: vec![0; count * slot],
            lens: Vec::with_capacity(count),
        }
    }

    /// How many datagrams it holds at most.
    pub(crate) fn capacity(&self) -> usize {
        self.count
    }

    /// Datagrams held.
    pub(crate) fn len(&self) -> usize {
        self.lens.len()
    }

    /// Whether no more datagram fits (flush first).
    pub(crate) fn is_full(&self) -> bool {
        self.lens.len() >= self.count
    }

    /// Hold a copy of `datagram`. False (nothing held) when it is longer than a slot or
    /// the batch is full.
    pub(crate) fn push(&mut self, datagram: &[u8]) -> bool {
        if datagram.len() > self.slot || self.is_full() {
            return false;
        }
        let start = self.lens.len() * self.slot;
        self.data[start..start + datagram.len()].copy_from_slice(datagram);
        self.lens.push(datagram.len());
        true
    }

    /// Send every held datagram to `to` (`None`: the socket is connected), in order, and
    /// empty the batch. A datagram the kernel refuses is skipped and reported to
    /// `refused` with the error; the ones after it are still sent.
    pub(crate) fn flush(
        &mut self,
        fd: BorrowedFd<'_>,
        to: Option<SocketAddr>,
        mut refused: impl FnMut(io::Error),
    ) -> Flushed {
        let mut done = Flushed::default();
        let n = self.lens.len();
        if n == 0 {
            return done;
        }
        let (name, namelen) = match to {
            Some(a) => sockaddr_of(a),
            // SAFETY: all-zero is a valid sockaddr_storage; with length 0 it is unused.
            None => (unsafe { std::mem::zeroed() }, 0),
        };
        // SAFETY: as in `RecvBatch::fill`: all-zero plain C structs.
        let mut msgs: [libc::mmsghdr; MAX_BATCH] = unsafe { std::mem::zeroed() };
        let mut iovs = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; MAX_BATCH];
        let slots = self.data.chunks_exact_mut(self.slot);
        for (((slot, &len), iov), msg) in slots.zip(&self.lens).zip(&mut iovs).zip(&mut msgs) {
            iov.iov_base = slot.as_mut_ptr().cast();
            iov.iov_len = len;
            if namelen > 0 {
                // sendmsg only reads the name; the cast to *mut is what the C type says.
                msg.msg_hdr.msg_name = std::ptr::from_ref(&name).cast_mut().cast();
                msg.msg_hdr.msg_namelen = namelen;
            }
            msg.msg_hdr.msg_iov = std::ptr::from_mut(iov);
            msg.msg_hdr.msg_iovlen = 1;
        }
        let mut at = 0;
        // Each turn sends at least one datagram or skips one: at most n turns.
        while at < n {
            // SAFETY: entries at..n of `msgs` each name one iovec over `len` initialised
            // bytes of a distinct slot of `self.data`, and (unless connected) `name`,
            // `namelen` bytes of a sockaddr; all live across the call. sendmmsg only
            // reads them (and writes msg_len). MSG_DONTWAIT never blocks.
            let r = unsafe {
                libc::sendmmsg(
                    fd.as_raw_fd(),
                    msgs[at..].as_mut_ptr(),
                    (n - at) as u32,
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                )
            };
            done.calls += 1;
            if r > 0 {
                let r = (r as usize).min(n - at);
                done.sent += r;
                at += r;
            } else {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                refused(e);
                at += 1;
            }
        }
        self.lens.clear();
        done
    }
}

/// `addr` as a C socket address and its length.
fn sockaddr_of(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe {
                std::ptr::from_mut(&mut ss)
                    .cast::<libc::sockaddr_in>()
                    .write(sin)
            };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: as above, for sockaddr_in6.
            unsafe {
                std::ptr::from_mut(&mut ss)
                    .cast::<libc::sockaddr_in6>()
                    .write(sin6)
            };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}

/// The IPv4 or IPv6 address in `name` (`len` bytes of it valid).
fn socket_addr(name: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    let len = len as usize;
    match i32::from(name.ss_family) {
        libc::AF_INET if len >= std::mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family is AF_INET and the kernel wrote a whole sockaddr_in,
            // which sockaddr_storage is large and aligned enough to hold.
            let sin = unsafe { &*std::ptr::from_ref(name).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 if len >= std::mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for AF_INET6 and sockaddr_in6.
            let sin6 = unsafe { &*std::ptr::from_ref(name).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsFd;

    #[test]
    fn takes_a_burst_in_one_fill_with_senders_and_full_lengths() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = rx.local_addr().unwrap();
        let mut b = RecvBatch::new(8, 100);
        assert_eq!(b.fill(rx.as_fd()).unwrap(), 0, "nothing waiting");
        for i in 0..5u8 {
            let len = if i == 3 { 300 } else { 10 + usize::from(i) };
            tx.send_to(&vec![i; len], to).unwrap();
        }
        assert_eq!(b.fill(rx.as_fd()).unwrap(), 5);
        for i in 0..5u8 {
            assert!(b.pending());
            let d = b.take().unwrap();
            assert_eq!(d.from, Some(tx.local_addr().unwrap()));
            if i == 3 {
                assert_eq!((d.len, d.data.len()), (300, 100), "cut, full length known");
            } else {
                assert_eq!(d.data, &vec![i; 10 + usize::from(i)][..]);
                assert_eq!(d.len, d.data.len());
            }
        }
        assert!(!b.pending());
        assert!(b.take().is_none());
    }

    #[test]
    fn a_send_batch_goes_out_in_one_call_in_order() {
        for (rx, tx) in [("127.0.0.1:0", "127.0.0.1:0"), ("[::1]:0", "[::1]:0")] {
            let rx = UdpSocket::bind(rx).unwrap();
            let tx = UdpSocket::bind(tx).unwrap();
            let mut b = SendBatch::new(4, 100);
            assert!(b.push(&[1; 10]) && b.push(&[2; 100]) && b.push(&[]));
            assert!(!b.push(&[9; 101]), "longer than a slot");
            assert!(b.push(&[3; 1]) && b.is_full() && !b.push(&[4]));
            let f = b.flush(tx.as_fd(), Some(rx.local_addr().unwrap()), |e| {
                panic!("{e}")
            });
            assert_eq!(f, Flushed { sent: 4, calls: 1 });
            assert_eq!(b.len(), 0);
            let mut buf = [0u8; 200];
            for want in [&[1u8; 10][..], &[2; 100], &[], &[3; 1]] {
                let (n, from) = rx.recv_from(&mut buf).unwrap();
                assert_eq!((&buf[..n], from), (want, tx.local_addr().unwrap()));
            }
        }
    }

    #[test]
    fn a_refused_datagram_is_reported_and_the_rest_still_go() {
        // A connected socket to a port nobody listens on: the ICMP error of the first
        // send refuses a later one (ECONNREFUSED), then the others go.
        let closed = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = closed.local_addr().unwrap();
        drop(closed);
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.connect(to).unwrap();
        tx.send(&[0]).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let mut b = SendBatch::new(8, 16);
        for i in 0..3u8 {
            assert!(b.push(&[i]));
        }
        let mut refused = vec![];
        let f = b.flush(tx.as_fd(), None, |e| refused.push(e.kind()));
        // Every datagram is either sent or reported; the refusals are the peer's.
        assert!(!refused.is_empty());
        assert!(refused
            .iter()
            .all(|k| *k == io::ErrorKind::ConnectionRefused));
        assert_eq!(f.sent + refused.len(), 3);
        assert!(f.sent >= 1, "the ones after a refusal still go");
        assert!(f.calls <= 3);
    }

    #[test]
    fn a_fill_takes_at_most_its_capacity() {
        let rx = UdpSocket::bind("[::1]:0").unwrap();
        let tx = UdpSocket::bind("[::1]:0").unwrap();
        let mut b = RecvBatch::new(3, 64);
        for i in 0..7u8 {
            tx.send_to(&[i], rx.local_addr().unwrap()).unwrap();
        }
        let mut seen = Vec::new();
        loop {
            let n = b.fill(rx.as_fd()).unwrap();
            assert!(n <= 3);
            if n == 0 {
                break;
            }
            while let Some(d) = b.take() {
                assert_eq!(d.from, Some(tx.local_addr().unwrap()));
                seen.push(d.data[0]);
            }
        }
        assert_eq!(seen, (0..7).collect::<Vec<u8>>());
    }
}
