//! Opening a tap with a virtio-net header (`IFF_VNET_HDR`), which the `tun-tap` crate
//! cannot ask for.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

/// `TUNSETIFF`: `_IOW('T', 202, int)`.
const TUNSETIFF: libc::c_ulong = 0x4004_54CA;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;
const IFF_VNET_HDR: libc::c_short = 0x4000;
/// `TUNSETOFFLOAD`: `_IOW('T', 208, unsigned int)`; the flags are the argument itself.
const TUNSETOFFLOAD: libc::c_ulong = 0x4004_54D0;
const TUN_F_CSUM: libc::c_ulong = 0x01;
const TUN_F_TSO4: libc::c_ulong = 0x02;
const TUN_F_TSO6: libc::c_ulong = 0x04;

/// `struct ifreq` as TUNSETIFF reads and writes it: the name, then the flags.
#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// Create the tap `ifname` (or attach to an existing one) with `IFF_TAP | IFF_NO_PI |
/// IFF_VNET_HDR`: every frame read or written is preceded by a `struct virtio_net_hdr`.
/// Returns the descriptor and the name the kernel gave. `ifname` was validated by the
/// caller (at most 15 bytes, no NUL).
pub(crate) fn open_tap_vnet(ifname: &str) -> io::Result<(OwnedFd, String)> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")?;
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        flags: IFF_TAP | IFF_NO_PI | IFF_VNET_HDR,
        _pad: [0; 22],
    };
    let name = ifname.as_bytes();
    if name.len() >= req.name.len() || name.contains(&0) {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    req.name[..name.len()].copy_from_slice(name);
    // SAFETY: TUNSETIFF reads and writes one `struct ifreq` at the pointer; `req` is a
    // live, writable value of that layout (40 bytes) for the duration of the call, and
    // the descriptor is the open /dev/net/tun owned by `file`.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF as _, &mut req as *mut IfReq) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let end = req
        .name
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(req.name.len());
    let given = String::from_utf8_lossy(&req.name[..end]).into_owned();
    Ok((OwnedFd::from(file), given))
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
