//! IP socket options std has no setter for: multicast by interface index, IPv6 hop
//! limits, path MTU discovery, and interface names to indexes.

use std::ffi::CString;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::BorrowedFd;

use rustix::net::sockopt;

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

/// Join IPv4 multicast `group` on the interface with index `ifindex`.
pub(crate) fn join_multicast_v4_index(
    fd: BorrowedFd<'_>,
    group: Ipv4Addr,
    ifindex: u32,
) -> io::Result<()> {
    Ok(sockopt::set_ip_add_membership_with_ifindex(
        fd,
        &group,
        &Ipv4Addr::UNSPECIFIED,
        ifindex,
    )?)
}

/// Send IPv4 multicast out of the interface with index `ifindex`.
pub(crate) fn set_multicast_if_v4_index(fd: BorrowedFd<'_>, ifindex: u32) -> io::Result<()> {
    Ok(sockopt::set_ip_multicast_if_with_ifindex(
        fd,
        &Ipv4Addr::UNSPECIFIED,
        &Ipv4Addr::UNSPECIFIED,
        ifindex,
    )?)
}

/// Send IPv6 multicast out of the interface with index `ifindex`.
pub(crate) fn set_multicast_if_v6(fd: BorrowedFd<'_>, ifindex: u32) -> io::Result<()> {
    Ok(sockopt::set_ipv6_multicast_if(fd, ifindex)?)
}

/// The hop limit of IPv6 unicast (`multicast` false) or multicast datagrams.
pub(crate) fn set_hops_v6(fd: BorrowedFd<'_>, multicast: bool, hops: u8) -> io::Result<()> {
    if multicast {
        Ok(sockopt::set_ipv6_multicast_hops(fd, u32::from(hops))?)
    } else {
        Ok(sockopt::set_ipv6_unicast_hops(fd, Some(hops))?)
    }
}

/// Never set DF on this IPv4 socket's datagrams (`IP_PMTUDISC_DONT`): one larger than a
/// link's MTU is fragmented on the way (here or by a router) and reassembled by the
/// receiver.
pub(crate) fn set_df_clear_v4(fd: BorrowedFd<'_>) -> io::Result<()> {
    Ok(sockopt::set_ip_mtu_discover(
        fd,
        sockopt::Ipv4PathMtuDiscovery::DONT,
    )?)
}
