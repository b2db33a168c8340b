//! The tap ioctls: opening a tap (with or without a virtio-net header), asking an
//! inherited descriptor what it is, offloads, and whether an interface exists.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// `TUNSETIFF`: `_IOW('T', 202, int)`.
const TUNSETIFF: libc::c_ulong = 0x4004_54CA;
/// `TUNGETIFF`: `_IOR('T', 210, unsigned int)`.
const TUNGETIFF: libc::c_ulong = 0x8004_54D2;
/// `TUNSETVNETHDRSZ`: `_IOW('T', 216, int)`.
const TUNSETVNETHDRSZ: libc::c_ulong = 0x4004_54D8;
const IFF_TUN: libc::c_short = 0x0001;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;
const IFF_VNET_HDR: libc::c_short = 0x4000;
/// `TUNSETOFFLOAD`: `_IOW('T', 208, unsigned int)`; the flags are the argument itself.
const TUNSETOFFLOAD: libc::c_ulong = 0x4004_54D0;
const TUN_F_CSUM: libc::c_ulong = 0x01;
const TUN_F_TSO4: libc::c_ulong = 0x02;
const TUN_F_TSO6: libc::c_ulong = 0x04;

/// `struct ifreq` as the tun ioctls and `SIOCGIFINDEX` read and write it: the name, then
/// the flags (or the index: both are the first bytes of the union).
#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

impl IfReq {
    /// A request for interface `ifname` (at most 15 bytes, no NUL).
    fn named(ifname: &str, flags: libc::c_short) -> io::Result<Self> {
        let mut req = IfReq {
            name: [0; libc::IFNAMSIZ],
            flags,
            _pad: [0; 22],
        };
        let name = ifname.as_bytes();
        if name.len() >= req.name.len() || name.contains(&0) {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        req.name[..name.len()].copy_from_slice(name);
        Ok(req)
    }

    fn name(&self) -> String {
        let end = self
            .name
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.name.len());
        String::from_utf8_lossy(&self.name[..end]).into_owned()
    }
}

/// Open the tun/tap clone device, `/dev/net/tun`, for [`attach_tap`].
pub(crate) fn open_tun_device() -> io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
}

/// Create the tap `ifname` (or attach to an existing one) on `file`, a fresh descriptor
/// of /dev/net/tun ([`open_tun_device`]), with `IFF_TAP | IFF_NO_PI`, and `IFF_VNET_HDR`
/// when `vnet_hdr` (every frame read or written is then preceded by a `struct
/// virtio_net_hdr`). Returns the descriptor and the name the kernel gave. `ifname` was
/// validated by the caller (at most 15 bytes, no NUL).
pub(crate) fn attach_tap(
    file: std::fs::File,
    ifname: &str,
    vnet_hdr: bool,
) -> io::Result<(OwnedFd, String)> {
    let flags = IFF_TAP | IFF_NO_PI | if vnet_hdr { IFF_VNET_HDR } else { 0 };
    let mut req = IfReq::named(ifname, flags)?;
    // SAFETY: TUNSETIFF reads and writes one `struct ifreq` at the pointer; `req` is a
    // live, writable value of that layout (40 bytes) for the duration of the call, and
    // the descriptor is the open /dev/net/tun owned by `file`.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF as _, &mut req as *mut IfReq) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((OwnedFd::from(file), req.name()))
}

/// What `TUNGETIFF` says about a tun/tap descriptor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TapInfo {
    /// The interface's name.
    pub name: String,
    /// A tap (Ethernet frames), not a tun (IP packets).
    pub tap: bool,
    /// Opened with `IFF_VNET_HDR`: a `struct virtio_net_hdr` before each frame.
    pub vnet_hdr: bool,
}

/// Ask the kernel which interface `fd` is attached to (`TUNGETIFF`): `ENOTTY` or
/// `EINVAL` for a descriptor that is not /dev/net/tun, `EBADFD` for one not attached to
/// an interface (or whose interface was deleted). `TUNGETIFF` cannot tell whether the
/// tap was opened with `IFF_NO_PI`: it reports "no socket filter" in that bit
/// (`IFF_NOFILTER` has the same value); see [`sysfs_no_pi`].
pub(crate) fn tap_info(fd: BorrowedFd<'_>) -> io::Result<TapInfo> {
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        flags: 0,
        _pad: [0; 22],
    };
    // SAFETY: TUNGETIFF writes one `struct ifreq` at the pointer; `req` is a live,
    // writable value of that layout for the duration of the call. On a descriptor that
    // is not a tun device the kernel refuses the request without touching memory.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), TUNGETIFF as _, &mut req as *mut IfReq) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(TapInfo {
        name: req.name(),
        tap: req.flags & IFF_TAP != 0 && req.flags & IFF_TUN == 0,
        vnet_hdr: req.flags & IFF_VNET_HDR != 0,
    })
}

/// Whether the tap `ifname` (as this process's /sys sees it) was opened with
/// `IFF_NO_PI`, from `/sys/class/net/IFNAME/tun_flags`; `None` when that file cannot be
/// read (no sysfs, or a /sys of another network namespace).
pub(crate) fn sysfs_no_pi(ifname: &str) -> Option<bool> {
    if ifname.contains('/') || ifname.starts_with('.') {
        return None;
    }
    let text = std::fs::read_to_string(format!("/sys/class/net/{ifname}/tun_flags")).ok()?;
    let hex = text.trim().trim_start_matches("0x");
    let flags = u32::from_str_radix(hex, 16).ok()?;
    Some(flags & IFF_NO_PI as u32 != 0)
}

/// Set the size of the virtio-net header the tap reads and writes (`TUNSETVNETHDRSZ`):
/// an inherited descriptor may have been opened for a larger header.
pub(crate) fn set_vnet_hdr_size(fd: BorrowedFd<'_>, size: usize) -> io::Result<()> {
    let size = libc::c_int::try_from(size).map_err(|_| io::ErrorKind::InvalidInput)?;
    // SAFETY: TUNSETVNETHDRSZ reads one int at the pointer, a live local for the
    // duration of the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETVNETHDRSZ as _, &size) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Let the kernel hand over TCP packets of up to 64 KiB with partial checksums (`on`),
/// or only wire frames with full ones: `TUNSETOFFLOAD`.
pub(crate) fn set_tap_offload(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    let flags = if on {
        TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6
    } else {
        0
    };
    // SAFETY: TUNSETOFFLOAD takes its flags as the integer argument and touches no
    // memory of ours; `fd` is a live descriptor for the duration of the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETOFFLOAD as _, flags) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether this network namespace has an interface named `ifname`: `SIOCGIFINDEX` on a
/// throwaway `AF_UNIX` datagram socket (what `if_nametoindex(3)` does), so that looking
/// for a tap never creates one.
pub(crate) fn interface_exists(ifname: &str) -> io::Result<bool> {
    let mut req = IfReq::named(ifname, 0)?;
    // SAFETY: socket(2) takes three integers and returns a new descriptor or -1.
    let raw = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a descriptor socket(2) just created, owned by nothing else.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: SIOCGIFINDEX reads the name from and writes the index into one `struct
    // ifreq` at the pointer; `req` is a live, writable value of that layout.
    let rc = unsafe {
        libc::ioctl(
            sock.as_raw_fd(),
            libc::SIOCGIFINDEX as _,
            &mut req as *mut IfReq,
        )
    };
    if rc == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::ENODEV) => Ok(false),
        _ => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn a_socket_is_not_a_tap() {
        let (a, _b) = std::os::unix::net::UnixDatagram::pair().unwrap();
        let e = tap_info(a.as_fd()).unwrap_err();
        assert!(
            matches!(e.raw_os_error(), Some(libc::ENOTTY) | Some(libc::EINVAL)),
            "{e}"
        );
    }

    #[test]
    fn loopback_exists_and_a_made_up_name_does_not() {
        assert!(interface_exists("lo").unwrap());
        assert!(!interface_exists("ne-nosuch0").unwrap());
        assert!(interface_exists("a-name-far-too-long-for-linux").is_err());
    }
}
