//! IP socket options std has no setter for: multicast by interface index, IPv6 hop
//! limits, path MTU discovery, and interface names to indexes.

use std::ffi::CString;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::BorrowedFd;

use super::setsockopt_bytes;

/// The index of the interface called `name` (`if_nametoindex(3)`).
pub(crate) fn if_index(name: &str) -> io::Result<u32> {
    let c = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: if_nametoindex reads the NUL-terminated string `c` owns for the whole call
    // and touches no other memory.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(i)
}

/// The bytes of a `struct ip_mreqn` (group, no local address, interface index), as the
/// kernel reads it for IP_ADD_MEMBERSHIP and IP_MULTICAST_IF.
fn mreqn(group: Ipv4Addr, ifindex: u32) -> io::Result<Vec<u8>> {
    let index = i32::try_from(ifindex).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let m = libc::ip_mreqn {
        imr_multiaddr: libc::in_addr {
            s_addr: u32::from_ne_bytes(group.octets()),
        },
        imr_address: libc::in_addr { s_addr: 0 },
        imr_ifindex: index,
    };
    // SAFETY: ip_mreqn is a plain C struct of three 4-byte fields (no padding); viewing
    // it as bytes for the length of the struct reads only initialised memory.
    let bytes = unsafe {
        std::slice::from_raw_parts(
            std::ptr::from_ref(&m).cast::<u8>(),
            std::mem::size_of::<libc::ip_mreqn>(),
        )
    };
    Ok(bytes.to_vec())
}

/// Join IPv4 multicast `group` on the interface with index `ifindex`.
pub(crate) fn join_multicast_v4_index(
    fd: BorrowedFd<'_>,
    group: Ipv4Addr,
    ifindex: u32,
) -> io::Result<()> {
    setsockopt_bytes(
        fd,
        libc::IPPROTO_IP,
        libc::IP_ADD_MEMBERSHIP,
        &mreqn(group, ifindex)?,
    )
}

/// Send IPv4 multicast out of the interface with index `ifindex`.
pub(crate) fn set_multicast_if_v4_index(fd: BorrowedFd<'_>, ifindex: u32) -> io::Result<()> {
    setsockopt_bytes(
        fd,
        libc::IPPROTO_IP,
        libc::IP_MULTICAST_IF,
        &mreqn(Ipv4Addr::UNSPECIFIED, ifindex)?,
    )
}

/// Send IPv6 multicast out of the interface with index `ifindex`.
pub(crate) fn set_multicast_if_v6(fd: BorrowedFd<'_>, ifindex: u32) -> io::Result<()> {
    let index = i32::try_from(ifindex).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    setsockopt_bytes(
        fd,
        libc::IPPROTO_IPV6,
        libc::IPV6_MULTICAST_IF,
        &index.to_ne_bytes(),
    )
}

/// The hop limit of IPv6 unicast (`multicast` false) or multicast datagrams.
pub(crate) fn set_hops_v6(fd: BorrowedFd<'_>, multicast: bool, hops: u8) -> io::Result<()> {
    let name = if multicast {
        libc::IPV6_MULTICAST_HOPS
    } else {
        libc::IPV6_UNICAST_HOPS
    };
    setsockopt_bytes(fd, libc::IPPROTO_IPV6, name, &i32::from(hops).to_ne_bytes())
}

/// Never set DF on this IPv4 socket's datagrams (`IP_PMTUDISC_DONT`): one larger than a
/// link's MTU is fragmented on the way (here or by a router) and reassembled by the
/// receiver.
pub(crate) fn set_df_clear_v4(fd: BorrowedFd<'_>) -> io::Result<()> {
    setsockopt_bytes(
        fd,
        libc::IPPROTO_IP,
        libc::IP_MTU_DISCOVER,
        &libc::IP_PMTUDISC_DONT.to_ne_bytes(),
    )
}
