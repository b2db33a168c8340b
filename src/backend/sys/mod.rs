//! The few libc calls the backends need, behind safe functions. All `unsafe` of the
//! backend module lives here.

#[cfg(feature = "tap")]
mod tun;
#[cfg(feature = "tap")]
pub(crate) use tun::{
    attach_tap, interface_exists, open_tun_device, set_tap_offload, set_vnet_hdr_size, sysfs_no_pi,
    tap_info,
};
#[cfg(feature = "udp")]
mod inet;
#[cfg(feature = "udp")]
pub(crate) use inet::{
    if_index, join_multicast_v4_index, set_df_clear_v4, set_hops_v6, set_multicast_if_v4_index,
    set_multicast_if_v6,
};
#[cfg(feature = "udp")]
mod mmsg;
#[cfg(feature = "udp")]
pub(crate) use mmsg::{RecvBatch, MAX_BATCH};

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// Put `fd` in non-blocking mode (`O_NONBLOCK`), keeping its other status flags.
#[cfg_attr(not(feature = "tap"), allow(dead_code))]
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    let raw = fd.as_raw_fd();
    // SAFETY: F_GETFL takes no argument and only reads the status flags of `raw`, which
    // is a valid open descriptor for the lifetime of the `BorrowedFd` it came from.
    let flags = unsafe { libc::fcntl(raw, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    if flags & libc::O_NONBLOCK != 0 {
        return Ok(());
    }
    // SAFETY: F_SETFL takes an int argument (the new status flags); `raw` is valid as
    // above and no memory is passed to the kernel.
    let rc = unsafe { libc::fcntl(raw, libc::F_SETFL, flags | libc::O_NONBLOCK) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A new descriptor (close-on-exec, numbered 3 or above) for the open file behind `fd`,
/// which this process inherited and which is left as it is: `fcntl(F_DUPFD_CLOEXEC)`.
/// `EBADF` when `fd` is not open.
#[cfg(feature = "tap")]
pub(crate) fn dup_inherited(fd: std::os::fd::RawFd) -> io::Result<OwnedFd> {
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) takes two integers and touches no memory; on a
    // number that is not an open descriptor it fails with EBADF.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `new` is a descriptor fcntl just created; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// Whether `fd` is in non-blocking mode.
#[cfg(test)]
pub(crate) fn is_nonblocking(fd: BorrowedFd<'_>) -> io::Result<bool> {
    // SAFETY: as in `set_nonblocking`: F_GETFL reads flags of a valid descriptor.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(flags & libc::O_NONBLOCK != 0)
}

/// `send(2)` with `MSG_NOSIGNAL`: a peer that went away is an `EPIPE` error, never a
/// SIGPIPE that would kill a program embedding the library.
pub(crate) fn send_nosignal(fd: BorrowedFd<'_>, data: &[u8]) -> io::Result<usize> {
    // SAFETY: send(2) reads at most `data.len()` bytes from `data`, a live slice, and
    // `fd` is a valid open descriptor for the lifetime of the `BorrowedFd`.
    let n = unsafe {
        libc::send(
            fd.as_raw_fd(),
            data.as_ptr().cast(),
            data.len(),
            libc::MSG_NOSIGNAL,
        )
    };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

#[cfg_attr(not(feature = "udp"), allow(dead_code))]
fn setsockopt_bytes(fd: BorrowedFd<'_>, level: i32, name: i32, value: &[u8]) -> io::Result<()> {
    let len = libc::socklen_t::try_from(value.len())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: setsockopt(2) reads `len` bytes from `value`, a live slice; `fd` is valid
    // for the lifetime of the `BorrowedFd`.
    let rc = unsafe { libc::setsockopt(fd.as_raw_fd(), level, name, value.as_ptr().cast(), len) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A non-blocking UDP socket with `SO_REUSEADDR` set before it is bound to `addr`, so
/// that several processes (nic-emu instances, QEMU's `-netdev dgram`) can bind the same
/// multicast group and port and each receive every datagram.
#[cfg_attr(not(feature = "udp"), allow(dead_code))]
pub(crate) fn udp_reuseaddr_bound(addr: SocketAddrV4) -> io::Result<UdpSocket> {
    // SAFETY: socket(2) takes three integers and returns a new descriptor or -1.
    let raw = unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a freshly created descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    setsockopt_bytes(
        fd_borrow(&fd),
        libc::SOL_SOCKET,
        libc::SO_REUSEADDR,
        &1i32.to_ne_bytes(),
    )?;
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: addr.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(addr.ip().octets()),
        },
        sin_zero: [0; 8],
    };
    let len = libc::socklen_t::try_from(std::mem::size_of::<libc::sockaddr_in>())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: bind(2) reads `len` bytes from `sin`, a sockaddr_in that lives across the
    // call; the descriptor is valid (owned by `fd`).
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            std::ptr::from_ref(&sin).cast::<libc::sockaddr>(),
            len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(UdpSocket::from(fd))
}

/// Send multicast datagrams out of the interface that has address `iface`
/// (`IP_MULTICAST_IF`; std has no setter for it).
#[cfg_attr(not(feature = "udp"), allow(dead_code))]
pub(crate) fn set_multicast_if_v4(fd: BorrowedFd<'_>, iface: Ipv4Addr) -> io::Result<()> {
    setsockopt_bytes(fd, libc::IPPROTO_IP, libc::IP_MULTICAST_IF, &iface.octets())
}

/// Have ICMP errors about datagrams sent from this unconnected UDP socket reported
/// (`IP_RECVERR`, or `IPV6_RECVERR` for an IPv6 socket): the next receive or send then
/// fails with the error (`ECONNREFUSED` for a port nobody listens on), and the ICMP
/// message waits in the socket's error queue until [`drain_error_queue`] takes it.
#[cfg_attr(not(feature = "udp"), allow(dead_code))]
pub(crate) fn set_recverr(fd: BorrowedFd<'_>, ipv6: bool) -> io::Result<()> {
    let (level, name) = if ipv6 {
        (libc::IPPROTO_IPV6, libc::IPV6_RECVERR)
    } else {
        (libc::IPPROTO_IP, libc::IP_RECVERR)
    };
    setsockopt_bytes(fd, level, name, &1i32.to_ne_bytes())
}

/// Take every message waiting in the socket's error queue (`recvmsg(MSG_ERRQUEUE)`, at
/// most 64), so that it stops reporting `POLLERR`; returns how many there were.
#[cfg_attr(not(feature = "udp"), allow(dead_code))]
pub(crate) fn drain_error_queue(fd: BorrowedFd<'_>) -> usize {
    let mut data = [0u8; 64];
    let mut taken = 0;
    for _ in 0..64 {
        let mut iov = libc::iovec {
            iov_base: data.as_mut_ptr().cast(),
            iov_len: data.len(),
        };
        // SAFETY: msghdr is plain data; all-zero (no name, no control buffer) is valid.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        // SAFETY: recvmsg(2) writes at most `data.len()` bytes through the one iovec,
        // which points into `data`, live for the call; there is no name or control
        // buffer. MSG_DONTWAIT: it never blocks.
        let n = unsafe {
            libc::recvmsg(
                fd.as_raw_fd(),
                &mut msg,
                libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            break;
        }
        taken += 1;
    }
    taken
}

#[cfg_attr(not(feature = "udp"), allow(dead_code))]
fn fd_borrow(fd: &OwnedFd) -> BorrowedFd<'_> {
    use std::os::fd::AsFd;
    fd.as_fd()
}
