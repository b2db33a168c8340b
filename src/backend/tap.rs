//! Tap: frames go to and come from a Linux tap interface.
//!
//! Three ways to get one: [`Tap::open`] creates the interface, or attaches to an existing
//! (persistent) one, by name with `TUNSETIFF` (`IFF_TAP | IFF_NO_PI`, and
//! `IFF_VNET_HDR` for segmentation offload); [`Tap::from_inherited_fd`] takes a
//! descriptor its opener passed down (QEMU's `-netdev tap,fd=N`), checked with
//! `TUNGETIFF`; [`Tap::from_fd`] wraps any descriptor that reads and writes whole frames
//! (tests use a socketpair). A tap we create is not made persistent, so the kernel
//! removes it when the descriptor closes, i.e. on drop.
//!
//! Opening needs no capability when the tap exists and belongs to the user
//! (`ip tuntap add dev tap0 mode tap user alice`; a persistent tap with neither owner nor
//! group is open to anyone) and /dev/net/tun may be opened (its usual mode is 0666);
//! creating one needs `CAP_NET_ADMIN`.
//!
//! When the interface is deleted under us (`ip link del`), reads and writes fail with
//! `EBADFD`: the tap logs it once and reports no [carrier](PacketBackend::carrier), so
//! the guest sees its cable pulled. A tap opened by name looks for an interface of that
//! name once a second ([`REATTACH_INTERVAL`]) and reattaches when one exists again, with
//! the same offloads; it never creates one while looking. An inherited descriptor
//! cannot be reopened: its link stays down, and [`carrier_note`](PacketBackend::carrier_note)
//! says why.

use std::fs::File;
use std::io::{self, ErrorKind, IoSlice, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use super::gso::{Gso, VNET_HDR_LEN};
use super::gso_rx::{Cutter, Received};
use super::{sys, BackendCounter, Carrier, PacketBackend};

/// Longest interface name Linux accepts (`IFNAMSIZ` - 1).
pub const MAX_IFNAME: usize = 15;

/// How often a tap opened by name looks for its interface again after it was deleted.
pub const REATTACH_INTERVAL: Duration = Duration::from_secs(1);

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
    /// Frames the tap did not take (queue full, interface down or gone).
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
    /// Times the interface was deleted under us.
    pub lost: u64,
    /// Times a tap of the same name was found again and reattached.
    pub reattached: u64,
}

/// Where the descriptor came from: what can be done when the interface goes away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Origin {
    /// Opened by name here: reopened by name when the interface comes back.
    Named,
    /// Inherited as this descriptor number: cannot be reopened.
    Inherited(RawFd),
    /// Any descriptor handed to [`Tap::from_fd`].
    Descriptor,
}

/// The interface is gone.
#[derive(Debug)]
struct Lost {
    /// What the kernel said.
    why: String,
    /// When to look for the interface again.
    retry_at: Instant,
    /// The last reason a reattach failed although the interface existed (logged once
    /// per distinct reason).
    refused: Option<String>,
}

/// A tap interface (or any descriptor that reads and writes whole frames).
pub struct Tap {
    file: File,
    name: String,
    origin: Origin,
    /// Frames carry a `struct virtio_net_hdr` (`IFF_VNET_HDR`).
    vnet_hdr: bool,
    /// TCP packets are handed to the kernel whole ([`PacketBackend::send_gso`]); needs
    /// `vnet_hdr`.
    gso: bool,
    /// The kernel may hand over TCP packets of up to 64 KiB and partial checksums
    /// (`TUNSETOFFLOAD`).
    rx_offload: bool,
    /// The packet in `scratch[VNET_HDR_LEN..end]` being cut into frames.
    cut: Option<(Cutter, usize)>,
    scratch: Vec<u8>,
    counters: TapCounters,
    /// The interface was deleted: no carrier until it is back.
    lost: Option<Lost>,
}

impl std::fmt::Debug for Tap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tap")
            .field("name", &self.name)
            .field("fd", &self.file.as_raw_fd())
            .field("origin", &self.origin)
            .field("vnet_hdr", &self.vnet_hdr)
            .field("rx_offload", &self.rx_offload)
            .field("lost", &self.lost)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
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

/// `NIC_EMU_TAP_OFFLOAD` (default on): segmentation offload through the virtio-net header.
fn offload_from_env() -> bool {
    std::env::var("NIC_EMU_TAP_OFFLOAD").map_or(true, |v| v.trim() != "0")
}

/// `NIC_EMU_TAP_RX_OFFLOAD` (default on): TCP packets of up to 64 KiB from the kernel.
fn rx_offload_from_env() -> bool {
    std::env::var("NIC_EMU_TAP_RX_OFFLOAD").map_or(true, |v| v.trim() != "0")
}

impl Tap {
    /// Create the tap `ifname`, or attach to an existing (persistent) one with that name.
    /// `ifname` may hold one `%d`, which the kernel replaces by the first free number;
    /// [`Tap::ifname`] gives the real name.
    ///
    /// Errors say what went wrong in words, and what to do: missing `CAP_NET_ADMIN` (a
    /// persistent tap owned by the user needs none), the tap owned by someone else, the
    /// name in use by another process or by a non-tap interface, no `/dev/net/tun`.
    pub fn open(ifname: &str) -> io::Result<Self> {
        Self::open_with(ifname, offload_from_env())
    }

    /// [`open`](Self::open), with segmentation offload to the kernel (`IFF_VNET_HDR`)
    /// when `offload` is true and the kernel takes it, plainly otherwise.
    pub fn open_with(ifname: &str, offload: bool) -> io::Result<Self> {
        validate_ifname(ifname).map_err(|m| io::Error::new(ErrorKind::InvalidInput, m))?;
        let device = || sys::open_tun_device().map_err(explain_device_error);
        if offload {
            match sys::attach_tap(device()?, ifname, true) {
                Ok((fd, name)) => {
                    let mut tap = Self::from_fd(fd, name)?;
                    tap.origin = Origin::Named;
                    tap.vnet_hdr = true;
                    tap.gso = true;
                    tap.start_receive_offload(rx_offload_from_env());
                    log::info!(
                        "tap {}: attached (IFF_TAP, IFF_NO_PI, IFF_VNET_HDR: segmentation \
                         offload to the kernel; {}; non-blocking)",
                        tap.name,
                        tap.describe_rx_offload()
                    );
                    return Ok(tap);
                }
                // Refusals that have nothing to do with the header: say so now.
                Err(e) if !matches!(e.raw_os_error(), Some(libc::EINVAL)) => {
                    return Err(explain_open_error(ifname, e))
                }
                Err(e) => log::info!(
                    "tap {ifname}: no virtio-net header ({e}); the device segments itself"
                ),
            }
        }
        let (fd, name) =
            sys::attach_tap(device()?, ifname, false).map_err(|e| explain_open_error(ifname, e))?;
        let mut tap = Self::from_fd(fd, name)?;
        tap.origin = Origin::Named;
        log::info!(
            "tap {}: attached (IFF_TAP, IFF_NO_PI, non-blocking)",
            tap.name
        );
        Ok(tap)
    }

    /// Use tap descriptor `fd`, inherited from whoever started this process (which kept
    /// the privilege to open it), as QEMU's `-netdev tap,fd=N`. The descriptor must be
    /// /dev/net/tun attached to a tap (`TUNGETIFF` says so, and gives the interface's
    /// name) opened with `IFF_NO_PI` (checked in /sys when it shows this network
    /// namespace; trusted otherwise, as QEMU does); with `IFF_VNET_HDR` the offloads
    /// work as for
    /// [`open`](Self::open). `fd` itself is left open; the tap works on a duplicate.
    /// If the interface is deleted, the link stays down: nic-emu cannot reopen it.
    ///
    /// Errors name the key: "tap: `fd`=5: ... is not a tap ...".
    pub fn from_inherited_fd(fd: RawFd) -> io::Result<Self> {
        let bad =
            |kind: ErrorKind, why: String| io::Error::new(kind, format!("tap: `fd`={fd}: {why}"));
        if fd < 0 {
            return Err(bad(
                ErrorKind::InvalidInput,
                "not a descriptor number".into(),
            ));
        }
        let owned = sys::dup_inherited(fd).map_err(|e| {
            bad(
                e.kind(),
                format!(
                    "no such open descriptor ({e}): whoever starts nic-emu must pass the \
                     tap's descriptor open, without close-on-exec"
                ),
            )
        })?;
        let info = sys::tap_info(owned.as_fd()).map_err(|e| match e.raw_os_error() {
            Some(libc::EBADFD) => bad(
                ErrorKind::InvalidInput,
                "a /dev/net/tun descriptor attached to no interface (TUNSETIFF was not \
                 done, or the interface was deleted)"
                    .into(),
            ),
            Some(libc::ENOTTY) | Some(libc::EINVAL) => bad(
                ErrorKind::InvalidInput,
                format!(
                    "not a tap (TUNGETIFF: {e}): pass /dev/net/tun opened and attached \
                     to a tap with TUNSETIFF (IFF_TAP | IFF_NO_PI)"
                ),
            ),
            _ => bad(e.kind(), format!("TUNGETIFF: {e}")),
        })?;
        if !info.tap {
            return Err(bad(
                ErrorKind::InvalidInput,
                format!(
                    "{} is a tun (IP packets), not a tap (Ethernet frames)",
                    info.name
                ),
            ));
        }
        // TUNGETIFF cannot say whether the opener asked for IFF_NO_PI; /sys can, when it
        // shows this namespace (QEMU's tap,fd= trusts the opener; so do we otherwise).
        if sys::sysfs_no_pi(&info.name) == Some(false) {
            return Err(bad(
                ErrorKind::InvalidInput,
                format!(
                    "tap {} was opened without IFF_NO_PI: its frames carry a \
                     packet-information header nic-emu does not read",
                    info.name
                ),
            ));
        }
        let mut tap = Self::from_fd(owned, info.name)?;
        tap.origin = Origin::Inherited(fd);
        if info.vnet_hdr {
            // The opener may have chosen a longer header (virtio 1.0's 12 bytes).
            sys::set_vnet_hdr_size(tap.file.as_fd(), VNET_HDR_LEN)
                .map_err(|e| bad(e.kind(), format!("TUNSETVNETHDRSZ: {e}")))?;
            tap.vnet_hdr = true;
            tap.gso = offload_from_env();
            tap.start_receive_offload(tap.gso && rx_offload_from_env());
        }
        log::info!(
            "tap {}: attached through inherited fd={fd} ({}; non-blocking)",
            tap.name,
            if !tap.vnet_hdr {
                "no IFF_VNET_HDR: the device segments itself".to_string()
            } else if tap.gso {
                format!(
                    "IFF_VNET_HDR: segmentation offload to the kernel; {}",
                    tap.describe_rx_offload()
                )
            } else {
                "IFF_VNET_HDR, offload off (NIC_EMU_TAP_OFFLOAD=0)".to_string()
            }
        );
        Ok(tap)
    }

    /// Turn receive offload on (if `want` and the kernel agrees) or off.
    fn start_receive_offload(&mut self, want: bool) {
        if let Err(e) = self.set_receive_offload(want) {
            log::info!("tap {}: no receive offload ({e})", self.name);
            self.rx_offload = false;
        }
    }

    fn describe_rx_offload(&self) -> &'static str {
        if self.rx_offload {
            "receive offload: TCP packets of up to 64 KiB from the kernel, cut into frames here"
        } else {
            "no receive offload"
        }
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
            origin: Origin::Descriptor,
            vnet_hdr: false,
            gso: false,
            rx_offload: false,
            cut: None,
            scratch: vec![0; SCRATCH + VNET_HDR_LEN],
            counters: TapCounters::default(),
            lost: None,
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

    /// Whether the interface is there (false from its deletion until it is reattached).
    pub fn attached(&self) -> bool {
        self.lost.is_none()
    }

    /// The interface was deleted (the kernel said `EBADFD`): say so once, and stop using
    /// the descriptor.
    fn lose(&mut self, e: &io::Error) {
        if self.lost.is_some() {
            return;
        }
        self.counters.lost += 1;
        self.cut = None;
        let plan = match self.origin {
            Origin::Named => format!(
                "the guest's link is down until a tap named {} exists again (looked for \
                 every {} s)",
                self.name,
                REATTACH_INTERVAL.as_secs()
            ),
            Origin::Inherited(fd) => format!(
                "the guest's link stays down: the descriptor was inherited (fd={fd}) and \
                 nic-emu cannot reopen the tap; restart it with a descriptor of a new tap"
            ),
            Origin::Descriptor => "the guest's link stays down".to_string(),
        };
        log::warn!("tap {}: the interface is gone ({e}); {plan}", self.name);
        self.lost = Some(Lost {
            why: e.to_string(),
            retry_at: Instant::now() + REATTACH_INTERVAL,
            refused: None,
        });
    }

    /// Open the interface again by name, if it exists, with the offloads it had.
    fn reattach(&mut self) -> io::Result<()> {
        if !sys::interface_exists(&self.name)? {
            return Err(io::Error::new(
                ErrorKind::NotFound,
                format!("no interface named {} yet", self.name),
            ));
        }
        let device = sys::open_tun_device().map_err(explain_device_error)?;
        let (fd, _) = sys::attach_tap(device, &self.name, self.vnet_hdr)
            .map_err(|e| explain_open_error(&self.name, e))?;
        sys::set_nonblocking(fd.as_fd())?;
        self.file = File::from(fd);
        self.cut = None;
        if self.vnet_hdr {
            let want = self.rx_offload;
            self.start_receive_offload(want);
        }
        self.lost = None;
        self.counters.reattached += 1;
        log::info!(
            "tap {}: the interface is back: reattached{}; link up",
            self.name,
            if self.vnet_hdr {
                " with IFF_VNET_HDR"
            } else {
                ""
            }
        );
        Ok(())
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

/// The effective user id, for the `ip tuntap add ... user UID` a message suggests.
fn euid() -> u32 {
    // SAFETY: geteuid(2) takes no arguments, cannot fail and touches no memory.
    unsafe { libc::geteuid() }
}

/// An open refused by the kernel, in words, with what to do about it.
fn explain_open_error(ifname: &str, e: io::Error) -> io::Error {
    let uid = euid();
    let msg = match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => {
            let exists = !ifname.contains('%') && sys::interface_exists(ifname).unwrap_or(false);
            if exists {
                format!(
                    "tap {ifname}: permission denied: the tap exists but is not open to \
                     user {uid} (a persistent tap is opened without privileges only by the \
                     user or group it was created for; `ip -details link show {ifname}` \
                     shows them). As root, make it this user's: `ip tuntap del dev \
                     {ifname} mode tap && ip tuntap add dev {ifname} mode tap user {uid}`; \
                     or pass an open descriptor with tap,fd=N"
                )
            } else {
                format!(
                    "tap {ifname}: permission denied: creating a tap needs CAP_NET_ADMIN. \
                     Without it, have root create a persistent tap for this user once: \
                     `ip tuntap add dev {ifname} mode tap user {uid} && ip link set \
                     {ifname} up`; or pass an open descriptor with tap,fd=N; or run as root"
                )
            }
        }
        Some(libc::EBUSY) => format!(
            "tap {ifname}: the name is taken: another process has this tap open (a \
             tap without multi_queue takes one); stop it, or choose another name \
             (ifname=tap%d lets the kernel pick a free one)"
        ),
        Some(libc::EINVAL) => format!(
            "tap {ifname}: the name is taken by an interface that is not a tap \
             (or the name is invalid); choose another name"
        ),
        _ => format!("tap {ifname}: {e}"),
    };
    io::Error::new(e.kind(), msg)
}

/// /dev/net/tun could not be opened, in words, with what to do about it.
fn explain_device_error(e: io::Error) -> io::Error {
    let msg = match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => format!(
            "cannot open /dev/net/tun ({e}): it must be readable and writable by user {} \
             (its usual mode is 0666, crw-rw-rw-: as root, `chmod 0666 /dev/net/tun`); or \
             pass an open descriptor with tap,fd=N",
            euid()
        ),
        Some(libc::ENOENT) | Some(libc::ENODEV) | Some(libc::ENXIO) => {
            format!("/dev/net/tun is missing ({e}): is the `tun` module loaded (`modprobe tun`)?")
        }
        _ => format!("cannot open /dev/net/tun: {e}"),
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
        if self.lost.is_some() {
            return Ok(self.drop_frame("the interface is gone"));
        }
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
                Ok(self.drop_frame(&e.to_string()))
            }
            // The interface was deleted.
            Err(e) if e.raw_os_error() == Some(libc::EBADFD) => {
                self.lose(&e);
                Ok(self.drop_frame("the interface is gone"))
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => Ok(false),
            Err(e) => Err(io::Error::new(
                e.kind(),
                format!("tap {}: write: {e}", self.name),
            )),
        }
    }
}

impl Tap {
    /// Count (and now and then log) a frame not sent; always `false` (not sent).
    fn drop_frame(&mut self, why: &str) -> bool {
        self.counters.send_dropped += 1;
        if crate::log_limit::worth_logging(self.counters.send_dropped) {
            log::warn!(
                "tap {}: frame dropped ({why}); {} dropped so far",
                self.name,
                self.counters.send_dropped
            );
        }
        false
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
    let c = crate::wire::checksum::checksum(&frame[start..], seed);
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
        self.gso
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
        if self.lost.is_some() {
            return Ok(None);
        }
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
                // The interface was deleted: no carrier from now on (see `carrier`).
                Err(e) if e.raw_os_error() == Some(libc::EBADFD) => {
                    self.lose(&e);
                    return Ok(None);
                }
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

    /// None while the interface is gone: its descriptor would only report an error.
    fn rx_fd(&self) -> Option<RawFd> {
        self.lost.is_none().then(|| self.file.as_raw_fd())
    }

    /// Frames cut from a packet in hand are ready now, whatever the fd says.
    fn next_rx_deadline(&self) -> Option<Instant> {
        self.cut.is_some().then(Instant::now)
    }

    /// Up while the interface exists. After its deletion, a tap opened by name looks for
    /// it again every [`REATTACH_INTERVAL`] (one `SIOCGIFINDEX`; `TUNSETIFF` only once it
    /// exists, so the look never creates it).
    fn carrier(&mut self) -> Carrier {
        let Some(lost) = self.lost.as_mut() else {
            return Carrier::UP;
        };
        if self.origin != Origin::Named {
            return Carrier::down(None);
        }
        let now = Instant::now();
        if now < lost.retry_at {
            return Carrier::down(Some(lost.retry_at));
        }
        lost.retry_at = now + REATTACH_INTERVAL;
        let retry_at = lost.retry_at;
        match self.reattach() {
            Ok(()) => Carrier::UP,
            Err(e) if e.kind() == ErrorKind::NotFound => Carrier::down(Some(retry_at)),
            Err(e) => {
                // It exists but cannot be had (another owner, another process, not a
                // tap): say so once per reason, and keep looking.
                let why = e.to_string();
                if let Some(lost) = self.lost.as_mut() {
                    if lost.refused.as_deref() != Some(why.as_str()) {
                        log::warn!("tap {}: cannot reattach yet: {why}", self.name);
                        lost.refused = Some(why);
                    }
                }
                Carrier::down(Some(retry_at))
            }
        }
    }

    fn carrier_note(&self) -> Option<String> {
        let lost = self.lost.as_ref()?;
        Some(match self.origin {
            Origin::Named => format!(
                "tap {} was deleted ({}); nic-emu looks for a tap of that name every {} s                  and reattaches when it exists{}",
                self.name,
                lost.why,
                REATTACH_INTERVAL.as_secs(),
                lost.refused
                    .as_ref()
                    .map(|r| format!(" (last try: {r})"))
                    .unwrap_or_default()
            ),
            Origin::Inherited(fd) => format!(
                "tap {} was deleted ({}); its descriptor was inherited (fd={fd}) and                  nic-emu cannot reopen it: restart nic-emu with a descriptor of a new tap",
                self.name, lost.why
            ),
            Origin::Descriptor => format!("{} failed ({})", self.name, lost.why),
        })
    }

    fn backend_counters(&self) -> Vec<BackendCounter> {
        let c = self.counters;
        let counter = |name, help, value| BackendCounter::new("tap", name, help, value);
        vec![
            counter("sent", "Frames written to the tap", c.sent),
            counter("received", "Frames read from the tap", c.received),
            counter(
                "send_dropped",
                "Frames the tap did not take (queue full, interface down or gone)",
                c.send_dropped,
            ),
            counter(
                "rx_oversize",
                "Frames from the tap larger than the device's buffer, dropped",
                c.rx_oversize,
            ),
            counter(
                "gso_sent",
                "TCP packets handed to the kernel whole to segment",
                c.gso_sent,
            ),
            counter(
                "gso_received",
                "TCP packets the kernel handed over whole, cut into frames",
                c.gso_received,
            ),
            counter(
                "gso_bad",
                "Whole packets from the kernel with headers that did not describe them",
                c.gso_bad,
            ),
            counter(
                "lost",
                "Times the interface was deleted under nic-emu",
                c.lost,
            ),
            counter(
                "reattached",
                "Times a deleted tap came back and was reattached",
                c.reattached,
            ),
        ]
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
    fn an_inherited_descriptor_that_is_not_a_tap_is_refused_naming_the_key() {
        let (ours, _theirs) = UnixDatagram::pair().unwrap();
        let n = ours.as_raw_fd();
        let e = Tap::from_inherited_fd(n).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!("tap: `fd`={n}: not a tap")),
            "{msg}"
        );
        let null = File::open("/dev/null").unwrap();
        let msg = Tap::from_inherited_fd(null.as_raw_fd())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("not a tap"), "{msg}");
        // A number that is not open (beyond any descriptor limit, so no other test's
        // file can take it), and one that cannot be a descriptor.
        let msg = Tap::from_inherited_fd(999_999).unwrap_err().to_string();
        assert!(msg.contains("no such open descriptor"), "{msg}");
        let msg = Tap::from_inherited_fd(-1).unwrap_err().to_string();
        assert!(msg.contains("`fd`=-1"), "{msg}");
    }

    #[test]
    fn an_unattached_tun_descriptor_is_refused() {
        let Ok(tun) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/net/tun")
        else {
            return; // no /dev/net/tun here: the other tests cover the refusal paths
        };
        let msg = Tap::from_inherited_fd(tun.as_raw_fd())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("attached to no interface"), "{msg}");
    }

    #[test]
    fn a_descriptor_of_another_kind_has_a_carrier_and_no_reattach() {
        let (ours, _theirs) = UnixDatagram::pair().unwrap();
        let mut tap = Tap::from_fd(OwnedFd::from(ours), "pair").unwrap();
        assert_eq!(tap.carrier(), Carrier::UP);
        assert_eq!(tap.carrier_note(), None);
        tap.lose(&io::Error::from_raw_os_error(libc::EBADFD));
        tap.lose(&io::Error::from_raw_os_error(libc::EBADFD));
        assert_eq!(tap.counters().lost, 1, "counted once");
        assert_eq!(tap.carrier(), Carrier::down(None));
        assert_eq!(tap.rx_fd(), None);
        let mut buf = [0u8; 64];
        assert_eq!(tap.recv(&mut buf).unwrap(), None);
        assert!(!tap.send(&[0u8; 60]).unwrap());
        assert_eq!(tap.counters().send_dropped, 1);
        assert!(tap.carrier_note().unwrap().contains("pair failed"));
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
