//! Tap: frames go to and come from a Linux tap interface.
//!
//! The interface is created (or an existing one attached) with `IFF_TAP | IFF_NO_PI`
//! through the `tun-tap` crate; the descriptor is then taken over and put in non-blocking
//! mode here (`tun-tap` 0.1 can only do that with its tokio feature, and has no way to
//! wrap a descriptor it did not open, which tests need). A tap we create is not made
//! persistent, so the kernel removes it when the descriptor closes, i.e. on drop.

use std::fs::File;
use std::io::{self, ErrorKind, IoSlice, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};

use super::gso::{Gso, VNET_HDR_LEN};
use super::gso_rx::{Cutter, Received};
use super::{sys, PacketBackend};

/// Longest interface name Linux accepts (`IFNAMSIZ` - 1).
pub const MAX_IFNAME: usize = 15;

/// Read buffer size: the largest frame a tap can hand us (a 64 KiB IP packet behind an
/// Ethernet header and two VLAN tags), so a frame too big for the caller is detected
/// and dropped rather than silently truncated.
const SCRATCH: usize = 65535 + 14 + 8;

/// Counters of a [`Tap`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TapCounters {
    /// Frames written to the tap.
    pub sent: u64,
    /// Frames read from the tap and returned by `recv`.
    pub received: u64,
    /// Frames the tap did not take (queue full, interface down).
    pub send_dropped: u64,
    /// Frames read that were larger than the caller's buffer, dropped.
    pub rx_oversize: u64,
    /// TCP packets handed to the kernel whole for segmentation (each also in `sent`).
    pub gso_sent: u64,
    /// TCP packets the kernel handed over whole, cut into frames here (each frame is
    /// in `received`).
    pub gso_received: u64,
    /// Packets handed over whole whose headers did not describe them, dropped.
    pub gso_bad: u64,
}

/// A tap interface (or any descriptor that reads and writes whole frames).
#[derive(Debug)]
pub struct Tap {
    file: File,
    name: String,
    /// Frames carry a `struct virtio_net_hdr` (`IFF_VNET_HDR`).
    vnet_hdr: bool,
    /// The kernel may hand over TCP packets of up to 64 KiB and partial checksums
    /// (`TUNSETOFFLOAD`).
    rx_offload: bool,
    /// The packet in `scratch[VNET_HDR_LEN..end]` being cut into frames.
    cut: Option<(Cutter, usize)>,
    scratch: Vec<u8>,
    counters: TapCounters,
}

/// Check an interface name (or `%d` template) before handing it to the kernel, which
/// would otherwise truncate it silently.
pub fn validate_ifname(ifname: &str) -> Result<(), String> {
    if ifname.is_empty() {
        return Err("interface name is empty".into());
    }
    if ifname.len() > MAX_IFNAME {
        return Err(format!(
            "interface name `{ifname}` is longer than {MAX_IFNAME} bytes"
        ));
    }
    if ifname == "." || ifname == ".." {
        return Err(format!("`{ifname}` is not a valid interface name"));
    }
    if let Some(c) = ifname
        .chars()
        .find(|c| c.is_whitespace() || *c == '/' || *c == ':' || c.is_control())
    {
        return Err(format!(
            "interface name `{ifname}` contains {c:?}, which Linux does not allow"
        ));
    }
    if ifname.matches('%').count() > 1 || (ifname.contains('%') && !ifname.contains("%d")) {
        return Err(format!(
            "interface name `{ifname}`: the only template allowed is one `%d`"
        ));
    }
    Ok(())
}

impl Tap {
    /// Create the tap `ifname`, or attach to an existing (persistent) one with that name.
    /// `ifname` may hold one `%d`, which the kernel replaces by the first free number;
    /// [`Tap::ifname`] gives the real name.
    ///
    /// Errors say what went wrong in words: missing `CAP_NET_ADMIN`, the name in use by
    /// another process or by a non-tap interface, no `/dev/net/tun`.
    pub fn open(ifname: &str) -> io::Result<Self> {
        let offload = std::env::var("NIC_EMU_TAP_OFFLOAD").map_or(true, |v| v.trim() != "0");
        Self::open_with(ifname, offload)
    }

    /// [`open`](Self::open), with segmentation offload to the kernel (`IFF_VNET_HDR`)
    /// when `offload` is true and the kernel takes it, plainly otherwise.
    pub fn open_with(ifname: &str, offload: bool) -> io::Result<Self> {
        validate_ifname(ifname).map_err(|m| io::Error::new(ErrorKind::InvalidInput, m))?;
        if offload {
            match sys::open_tap_vnet(ifname) {
                Ok((fd, name)) => {
                    let mut tap = Self::from_fd(fd, name)?;
                    tap.vnet_hdr = true;
                    let rx =
                        std::env::var("NIC_EMU_TAP_RX_OFFLOAD").map_or(true, |v| v.trim() != "0");
                    let rx = match tap.set_receive_offload(rx) {
                        Ok(()) => rx,
                        Err(e) => {
                            log::info!("tap {}: no receive offload ({e})", tap.name);
                            false
                        }
                    };
                    log::info!(
                        "tap {}: attached (IFF_TAP, IFF_NO_PI, IFF_VNET_HDR: segmentation \
                         offload to the kernel; {}; non-blocking)",
                        tap.name,
                        if rx {
                            "receive offload: TCP packets of up to 64 KiB from the kernel, \
                             cut into frames here"
                        } else {
                            "no receive offload"
                        }
                    );
                    return Ok(tap);
                }
                Err(e) => log::info!(
                    "tap {ifname}: no virtio-net header ({e}); the device segments itself"
                ),
            }
        }
        let iface = tun_tap::Iface::without_packet_info(ifname, tun_tap::Mode::Tap)
            .map_err(|e| explain_open_error(ifname, e))?;
        let name = iface.name().to_owned();
        // SAFETY: `into_raw_fd` hands over ownership of the open /dev/net/tun descriptor
        // (the `Iface` is consumed and will not close it), so exactly one owner remains.
        let fd = unsafe { OwnedFd::from_raw_fd(iface.into_raw_fd()) };
        let tap = Self::from_fd(fd, name)?;
        log::info!(
            "tap {}: attached (IFF_TAP, IFF_NO_PI, non-blocking)",
            tap.name
        );
        Ok(tap)
    }

    /// Whether frames carry a virtio-net header (segmentation offload is on).
    pub fn offload(&self) -> bool {
        self.vnet_hdr
    }

    /// Let the kernel hand over TCP packets of up to 64 KiB and partial checksums
    /// (`TUNSETOFFLOAD` with `TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6`), which are cut
    /// into frames and finished here; `false` asks for wire frames again. Needs the
    /// virtio-net header ([`offload`](Self::offload)).
    pub fn set_receive_offload(&mut self, on: bool) -> io::Result<()> {
        if !self.vnet_hdr {
            return Err(io::Error::new(
                ErrorKind::Unsupported,
                format!("tap {}: no virtio-net header", self.name),
            ));
        }
        sys::set_tap_offload(self.file.as_fd(), on)?;
        self.rx_offload = on;
        Ok(())
    }

    /// Whether receive offload is on ([`set_receive_offload`](Self::set_receive_offload)).
    pub fn receive_offload(&self) -> bool {
        self.rx_offload
    }

    /// Wrap a descriptor that reads and writes one frame per call: a tap opened elsewhere
    /// (passed by a management program), or a datagram socketpair in tests. The
    /// descriptor is put in non-blocking mode. `name` is used in logs.
    pub fn from_fd(fd: OwnedFd, name: impl Into<String>) -> io::Result<Self> {
        sys::set_nonblocking(fd.as_fd())?;
        Ok(Self {
            file: File::from(fd),
            name: name.into(),
            vnet_hdr: false,
            rx_offload: false,
            cut: None,
            scratch: vec![0; SCRATCH + VNET_HDR_LEN],
            counters: TapCounters::default(),
        })
    }

    /// The interface name the kernel gave (or the name passed to [`Tap::from_fd`]).
    pub fn ifname(&self) -> &str {
        &self.name
    }

    /// Counters so far.
    pub fn counters(&self) -> TapCounters {
        self.counters
    }
}

impl Drop for Tap {
    /// What the offloads did, once, when the tap closes.
    fn drop(&mut self) {
        let c = &self.counters;
        if self.vnet_hdr {
            log::info!(
                "tap {}: {} frames sent ({} TCP packets whole for the kernel to cut), {} frames \
                 received ({} TCP packets the kernel handed over whole, cut here; {} dropped \
                 as malformed)",
                self.name,
                c.sent,
                c.gso_sent,
                c.received,
                c.gso_received,
                c.gso_bad
            );
        }
    }
}

fn explain_open_error(ifname: &str, e: io::Error) -> io::Error {
    let msg = match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => format!(
            "tap {ifname}: permission denied: creating or attaching a tap needs \
             CAP_NET_ADMIN (run as root, or create it beforehand with \
             `ip tuntap add {ifname} mode tap user $USER`)"
        ),
        Some(libc::EBUSY) => {
            format!("tap {ifname}: the name is taken: another process has this tap open")
        }
        Some(libc::EINVAL) => format!(
            "tap {ifname}: the name is taken by an interface that is not a tap \
             (or the name is invalid)"
        ),
        Some(libc::ENOENT) | Some(libc::ENODEV) | Some(libc::ENXIO) => {
            format!("tap {ifname}: /dev/net/tun is missing (is the `tun` module loaded?)")
        }
        _ => format!("tap {ifname}: {e}"),
    };
    io::Error::new(e.kind(), msg)
}

impl Tap {
    /// The next frame cut from the packet in hand, if there is one.
    fn next_cut(&mut self, buf: &mut [u8]) -> Option<usize> {
        loop {
            let (cutter, end) = self.cut.as_mut()?;
            let pkt = self.scratch.get(VNET_HDR_LEN..*end)?;
            if cutter.done(pkt) {
                self.cut = None;
                return None;
            }
            let got = cutter.next_segment(pkt, buf);
            if cutter.done(pkt) {
                self.cut = None;
            }
            match got {
                Some(n) => {
                    self.counters.received += 1;
                    return Some(n);
                }
                None => {
                    if self.counters.rx_oversize == 0 {
                        log::warn!(
                            "tap {}: dropped a segment larger than the {}-byte buffer",
                            self.name,
                            buf.len()
                        );
                    }
                    self.counters.rx_oversize += 1;
                }
            }
        }
    }

    /// Write `hdr` (the virtio-net header, or nothing) and `frame` as one frame.
    fn write_frame(&mut self, hdr: &[u8], frame: &[u8]) -> io::Result<bool> {
        let r = if hdr.is_empty() {
            (&self.file).write(frame)
        } else {
            (&self.file).write_vectored(&[IoSlice::new(hdr), IoSlice::new(frame)])
        };
        match r {
            Ok(_) => {
                self.counters.sent += 1;
                Ok(true)
            }
            // Queue full, or (EIO) the interface is down: the frame is lost, as on a wire.
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.raw_os_error() == Some(libc::EIO) => {
                self.counters.send_dropped += 1;
                if crate::log_limit::worth_logging(self.counters.send_dropped) {
                    log::warn!(
                        "tap {}: frame dropped ({e}); {} dropped so far",
                        self.name,
                        self.counters.send_dropped
                    );
                }
                Ok(false)
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => Ok(false),
            Err(e) => Err(io::Error::new(
                e.kind(),
                format!("tap {}: write: {e}", self.name),
            )),
        }
    }
}

/// A frame the kernel hands over with `VIRTIO_NET_HDR_F_NEEDS_CSUM` (with receive
/// offload on, a packet from a local socket) gets its checksum finished here, so the
/// guest never sees a partial one.
fn finish_checksum(hdr: &[u8], frame: &mut [u8]) {
    const NEEDS_CSUM: u8 = 1;
    if hdr.first().is_none_or(|f| f & NEEDS_CSUM == 0) || hdr.len() < VNET_HDR_LEN {
        return;
    }
    let start = usize::from(u16::from_le_bytes([hdr[6], hdr[7]]));
    let at = start.saturating_add(usize::from(u16::from_le_bytes([hdr[8], hdr[9]])));
    if at.saturating_add(2) > frame.len() || start >= frame.len() {
        return;
    }
    let seed = u64::from(u16::from_be_bytes([frame[at], frame[at + 1]]));
    frame[at..at + 2].copy_from_slice(&[0, 0]);
    let c = crate::device::checksum::checksum(&frame[start..], seed);
    frame[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

impl PacketBackend for Tap {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn send(&mut self, frame: &[u8]) -> io::Result<bool> {
        if self.vnet_hdr {
            // A plain frame: no checksum to finish, no segmentation.
            self.write_frame(&[0; VNET_HDR_LEN], frame)
        } else {
            self.write_frame(&[], frame)
        }
    }

    fn accepts_gso(&self) -> bool {
        self.vnet_hdr
    }

    fn send_gso(&mut self, frame: &[u8], gso: &Gso) -> io::Result<bool> {
        if !self.vnet_hdr {
            return Err(io::Error::new(
                ErrorKind::Unsupported,
                format!("tap {}: no virtio-net header", self.name),
            ));
        }
        let sent = self.write_frame(&gso.vnet_hdr(), frame)?;
        if sent {
            self.counters.gso_sent += 1;
        }
        Ok(sent)
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        if let Some(n) = self.next_cut(buf) {
            return Ok(Some(n));
        }
        // Bounded: each oversize frame consumed makes progress; give up after a burst.
        for _ in 0..64 {
            let n = match (&self.file).read(&mut self.scratch) {
                // A tap never reads 0 bytes; a descriptor given to `from_fd` does when
                // its other end closed, and would stay readable: report it.
                Ok(0) => {
                    return Err(io::Error::new(
                        ErrorKind::UnexpectedEof,
                        format!("tap {}: end of file (the other end closed)", self.name),
                    ))
                }
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == ErrorKind::Interrupted => return Ok(None),
                Err(e) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("tap {}: read: {e}", self.name),
                    ))
                }
            };
            let skip = if self.vnet_hdr { VNET_HDR_LEN } else { 0 };
            let Some(data) = self.scratch.get_mut(..n).filter(|d| d.len() >= skip) else {
                continue; // shorter than the header: nothing to deliver
            };
            let (hdr, frame) = data.split_at_mut(skip);
            if skip > 0 {
                match Cutter::look(hdr, frame) {
                    Received::Frame => finish_checksum(hdr, frame),
                    Received::Gso(cutter) => {
                        self.counters.gso_received += 1;
                        self.cut = Some((cutter, n));
                        match self.next_cut(buf) {
                            Some(n) => return Ok(Some(n)),
                            None => continue,
                        }
                    }
                    Received::Bad(why) => {
                        self.counters.gso_bad += 1;
                        if crate::log_limit::worth_logging(self.counters.gso_bad) {
                            log::warn!(
                                "tap {}: dropped {why} ({n} bytes); {} so far",
                                self.name,
                                self.counters.gso_bad
                            );
                        }
                        continue;
                    }
                }
            }
            let n = n - skip;
            match (buf.get_mut(..n), self.scratch.get(skip..skip + n)) {
                (Some(dst), Some(src)) => {
                    dst.copy_from_slice(src);
                    self.counters.received += 1;
                    return Ok(Some(n));
                }
                _ => {
                    if self.counters.rx_oversize == 0 {
                        log::warn!(
                            "tap {}: dropped a {n}-byte frame larger than the {}-byte buffer",
                            self.name,
                            buf.len()
                        );
                    }
                    self.counters.rx_oversize += 1;
                }
            }
        }
        Ok(None)
    }

    fn rx_fd(&self) -> Option<RawFd> {
        Some(self.file.as_raw_fd())
    }

    /// Frames cut from a packet in hand are ready now, whatever the fd says.
    fn next_rx_deadline(&self) -> Option<std::time::Instant> {
        self.cut.is_some().then(std::time::Instant::now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;

    #[test]
    fn names_are_checked_before_the_kernel_sees_them() {
        assert!(validate_ifname("tap0").is_ok());
        assert!(validate_ifname("nicemu%d").is_ok());
        assert!(validate_ifname("").is_err());
        assert!(validate_ifname("a-name-that-is-too-long").is_err());
        assert!(validate_ifname("ta p").is_err());
        assert!(validate_ifname("a/b").is_err());
        assert!(validate_ifname("tap%s").is_err());
        assert!(validate_ifname("t%d%d").is_err());
    }

    #[test]
    fn from_fd_is_non_blocking_and_moves_frames_both_ways() {
        let (ours, theirs) = UnixDatagram::pair().unwrap();
        let mut tap = Tap::from_fd(OwnedFd::from(ours), "pair").unwrap();
        assert!(sys::is_nonblocking(tap.file.as_fd()).unwrap());
        assert_eq!(tap.rx_fd(), Some(tap.file.as_raw_fd()));

        let mut buf = vec![0u8; super::super::MAX_FRAME];
        assert_eq!(tap.recv(&mut buf).unwrap(), None);
        theirs.send(&[7u8; 60]).unwrap();
        assert_eq!(tap.recv(&mut buf).unwrap(), Some(60));
        assert_eq!(&buf[..60], &[7u8; 60][..]);

        assert!(tap.send(&[9u8; 1514]).unwrap());
        let mut back = [0u8; 2000];
        assert_eq!(theirs.recv(&mut back).unwrap(), 1514);
        assert_eq!(tap.counters().sent, 1);
        assert_eq!(tap.counters().received, 1);
    }

    #[test]
    fn oversize_frames_are_dropped_and_counted_not_truncated() {
        let (ours, theirs) = UnixDatagram::pair().unwrap();
        let mut tap = Tap::from_fd(OwnedFd::from(ours), "pair").unwrap();
        theirs.send(&[1u8; 200]).unwrap();
        theirs.send(&[2u8; 50]).unwrap();
        let mut small = [0u8; 100];
        assert_eq!(tap.recv(&mut small).unwrap(), Some(50));
        assert_eq!(small[0], 2);
        assert_eq!(tap.counters().rx_oversize, 1);
    }

    #[test]
    fn a_closed_peer_is_an_error_not_a_busy_loop() {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut tap = Tap::from_fd(OwnedFd::from(ours), "stream").unwrap();
        drop(theirs);
        let mut buf = [0u8; 64];
        let err = tap.recv(&mut buf).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_blocking() {
        let (ours, _theirs) = UnixDatagram::pair().unwrap();
        let mut tap = Tap::from_fd(OwnedFd::from(ours), "pair").unwrap();
        let mut accepted = 0u32;
        let mut refused = false;
        for _ in 0..100_000 {
            if tap.send(&[0u8; 1500]).unwrap() {
                accepted += 1;
            } else {
                refused = true;
                break;
            }
        }
        assert!(refused, "never refused after {accepted} frames");
        assert_eq!(tap.counters().send_dropped, 1);
        assert_eq!(tap.counters().sent, u64::from(accepted));
    }
}
