//! Datagrams in batches: `recvmmsg(2)` fills many receive slots in one system call.

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
