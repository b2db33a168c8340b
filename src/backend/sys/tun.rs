//! Opening a tap with a virtio-net header (`IFF_VNET_HDR`), which the `tun-tap` crate
//! cannot ask for.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

/// `TUNSETIFF`: `_IOW('T', 202, int)`.
const TUNSETIFF: libc::c_ulong = 0x4004_54CA;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;
const IFF_VNET_HDR: libc::c_short = 0x4000;

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
