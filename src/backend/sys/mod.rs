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
use std::os::fd::{AsRawFd, BorrowedFd};
#[cfg(feature = "tap")]
use std::os::fd::{FromRawFd, OwnedFd};

use rustix::fs::{fcntl_getfl, fcntl_setfl, OFlags};
use rustix::net::{sockopt, AddressFamily, SendFlags, SocketFlags, SocketType};

/// Put `fd` in non-blocking mode (`O_NONBLOCK`), keeping its other status flags.
#[cfg_attr(not(feature = "tap"), allow(dead_code))]
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    let flags = fcntl_getfl(fd)?;
    if !flags.contains(OFlags::NONBLOCK) {
        fcntl_setfl(fd, flags | OFlags::NONBLOCK)?;
    }
    Ok(())
}

/// A new descriptor (close-on-exec, numbered 3 or above) for the open file behind `fd`,
/// which this process inherited and which is left as it is: `fcntl(F_DUPFD_CLOEXEC)`.
/// `EBADF` when `fd` is not open.
#[cfg(feature = "tap")]
pub(crate) fn dup_inherited(fd: std::os::fd::RawFd) -> io::Result<OwnedFd> {
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) takes two integers and touches no memory; on a
    // number that is not an open descriptor it fails with EBADF. (rustix would want a
    // BorrowedFd, which a number that may not be open cannot honestly be.)
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
    Ok(fcntl_getfl(fd)?.contains(OFlags::NONBLOCK))
}

/// `send(2)` with `MSG_NOSIGNAL`: a peer that went away is an `EPIPE` error, never a
/// SIGPIPE that would kill a program embedding the library.
pub(crate) fn send_nosignal(fd: BorrowedFd<'_>, data: &[u8]) -> io::Result<usize> {
    Ok(rustix::net::send(fd, data, SendFlags::NOSIGNAL)?)
}

/// `setsockopt(2)` for the options rustix has no setter for (`IP_RECVERR`).
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
    let fd = rustix::net::socket_with(
        AddressFamily::INET,
        SocketType::DGRAM,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        None,
    )?;
    sockopt::set_socket_reuseaddr(&fd, true)?;
    rustix::net::bind(&fd, &addr)?;
    Ok(UdpSocket::from(fd))
}

/// Send multicast datagrams out of the interface that has address `iface`
/// (`IP_MULTICAST_IF`; std has no setter for it).
#[cfg_attr(not(feature = "udp"), allow(dead_code))]
pub(crate) fn set_multicast_if_v4(fd: BorrowedFd<'_>, iface: Ipv4Addr) -> io::Result<()> {
    Ok(sockopt::set_ip_multicast_if(fd, &iface)?)
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
    use rustix::net::{RecvAncillaryBuffer, RecvFlags};
    let mut data = [0u8; 64];
    let mut taken = 0;
    for _ in 0..64 {
        let mut iov = [io::IoSliceMut::new(&mut data)];
        let mut control = RecvAncillaryBuffer::default();
        let flags = RecvFlags::ERRQUEUE | RecvFlags::DONTWAIT;
        if rustix::net::recvmsg(fd, &mut iov, &mut control, flags).is_err() {
            break;
        }
        taken += 1;
    }
    taken
}
