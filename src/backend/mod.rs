//! Packet backends: where the frames the guest sends go, and where the frames it
//! receives come from.
//!
//! Following smoltcp's `phy` module, backends are either *adapters* that talk to something
//! real (tap, UDP tunnel or multicast segment, VXLAN, a QEMU-style stream socket, pcap
//! replay) or the zero-dependency [`Loopback`], and *wrappers* (pcap recording,
//! [`Impair`]) that work around any other backend.
//!
//! Frames cross this interface as bare Ethernet frames: destination MAC first, no FCS.

use std::io;
use std::os::fd::RawFd;
use std::time::Instant;

mod handles;
pub use handles::Handles;
pub mod gso;
#[cfg_attr(not(any(feature = "tap", feature = "pcap")), allow(dead_code))]
pub(crate) mod gso_rx;
pub use gso::Gso;
pub mod impair;
pub use impair::{Impair, ImpairSpec};
mod loopback;
pub use loopback::{Loopback, DEFAULT_LOOPBACK_DEPTH};
pub mod params;
pub use params::{
    DstRewrite, RecordLimits, ReplayTiming, Rewrite, VxlanHost, VxlanLocal, VxlanPeer, VxlanSpec,
    VXLAN_PORT,
};
pub mod stream;
pub use stream::{StreamBackend, StreamRole};
mod sys;
#[cfg(feature = "tap")]
pub mod tap;
#[cfg(feature = "tap")]
pub use tap::Tap;
#[cfg(feature = "udp")]
pub mod udp;
#[cfg(feature = "udp")]
pub use udp::UdpTunnel;
#[cfg(feature = "udp")]
pub mod vxlan;
#[cfg(feature = "udp")]
pub use vxlan::Vxlan;
#[cfg(feature = "pcap")]
pub mod pcap_replay;
#[cfg(feature = "pcap")]
pub use pcap_replay::PcapReplay;
#[cfg(feature = "pcap")]
pub mod pcap_record;
#[cfg(feature = "pcap")]
pub use pcap_record::PcapRecorder;

/// One counter of a backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendCounter {
    /// Name: lower case, `[a-z0-9_]`, prefixed by the layer (`impair_rx_lost`).
    pub name: String,
    /// What it counts, one line.
    pub help: &'static str,
    /// The value.
    pub value: u64,
}

impl BackendCounter {
    /// A counter named `layer_name`.
    pub fn new(layer: &str, name: &str, help: &'static str, value: u64) -> Self {
        Self {
            name: format!("{layer}_{name}"),
            help,
            value,
        }
    }
}

/// What a backend says about its wire, as a cable's carrier: whether frames can cross it
/// now, and when the backend wants to be asked again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Carrier {
    /// Frames can cross the wire (a tap that exists, a connected stream peer).
    pub up: bool,
    /// Ask again at this moment even if nothing else happens: a backend that is trying
    /// to get its wire back (reopen a tap, reconnect) says when its next try is due.
    pub recheck_at: Option<Instant>,
}

impl Carrier {
    /// A working wire, nothing scheduled.
    pub const UP: Self = Self {
        up: true,
        recheck_at: None,
    };

    /// No carrier; ask again at `recheck_at` (`None`: only when something else happens).
    pub fn down(recheck_at: Option<Instant>) -> Self {
        Self {
            up: false,
            recheck_at,
        }
    }
}

/// The largest frame a backend is ever asked to carry, and the smallest receive buffer
/// it is given (a wire fact, defined in [`crate::wire`]).
pub use crate::wire::MAX_FRAME;

/// What the device did with a frame a backend gave it (the device's answer to
/// [`PacketBackend::recv`], reported through [`PacketBackend::rx_outcome`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RxOutcome {
    /// Written into the receive ring.
    Delivered,
    /// Rejected by the address or VLAN filters.
    Filtered,
    /// The ring has no room now: offer the frame again after the driver frees buffers.
    NoRoom,
    /// Dropped: receiver disabled, no link, malformed, oversize, or can never fit.
    Dropped,
}

/// A source and sink of Ethernet frames.
///
/// Both directions are non-blocking. "Nothing right now" is `Ok(None)` from
/// [`recv`](Self::recv), never an error; an error is returned (and logged by the caller),
/// never a panic.
pub trait PacketBackend: Send {
    /// Short name for logs ("tap0", "udp 127.0.0.1:7001", ...).
    fn name(&self) -> String;

    /// Send one frame. A frame the backend cannot take right now is dropped, counted by
    /// the backend and reported as `Ok(false)`; `Ok(true)` means it was sent.
    fn send(&mut self, frame: &[u8]) -> io::Result<bool>;

    /// Receive one frame into `buf` (at least [`MAX_FRAME`] bytes), returning its length,
    /// or `Ok(None)` when no frame is ready.
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>>;

    /// A file descriptor that becomes readable when [`recv`](Self::recv) may have a frame,
    /// for an event loop to wait on. `None`: the backend has no fd, or nothing on it would
    /// be taken now (see [`next_rx_deadline`](Self::next_rx_deadline)). While the fd is
    /// readable, `recv` must take what makes it so (a frame, a datagram it drops, a
    /// connection it accepts) or fail: an fd that stays readable while `recv` returns
    /// `Ok(None)` makes the event loop spin.
    fn rx_fd(&self) -> Option<RawFd> {
        None
    }

    /// When a backend without a readable fd (pcap replay) will next have a frame, if it
    /// knows. `None` means "only after something else happens" (a send, an fd event).
    fn next_rx_deadline(&self) -> Option<Instant> {
        None
    }

    /// What the device did with the last frame [`recv`](Self::recv) returned: called once
    /// per frame, in order (a frame waiting for ring space is reported when it lands or is
    /// dropped). A pcap replay counts these for its report; most backends ignore them.
    fn rx_outcome(&mut self, _outcome: RxOutcome) {}

    /// The device starts a burst of sends (one doorbell's worth of frames) and will call
    /// [`end_burst`](Self::end_burst) when it is done. Until then a backend may hold what
    /// it is sent and hand it over together (stream: one write). A held frame counts as
    /// sent; one the kernel then refuses is counted and logged by the backend, as a frame
    /// lost on the wire. A wrapper passes both calls on; one that does not only loses
    /// the batching.
    fn begin_burst(&mut self) {}

    /// The burst is over: hand over whatever was held since
    /// [`begin_burst`](Self::begin_burst), and send at once again from now on.
    fn end_burst(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// Write out anything buffered (pcap recording flushes here). Called at shutdown.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// Whether [`send_gso`](Self::send_gso) takes TCP packets of up to 64 KiB to segment
    /// itself (a tap with a virtio-net header). A wrapper must say so too, or the device
    /// cuts every TSO packet itself: the recorder passes them on (recording their
    /// segments); impairment, which works on single frames, says no.
    fn accepts_gso(&self) -> bool {
        false
    }

    /// Send one TCP packet whole, to be finished and cut as `gso` says. Only called when
    /// [`accepts_gso`](Self::accepts_gso) is true; results as for [`send`](Self::send).
    fn send_gso(&mut self, frame: &[u8], gso: &Gso) -> io::Result<bool> {
        let _ = (frame, gso);
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this backend does not take segmentation offload",
        ))
    }

    /// The backend's own counters (for the control socket's `stats` and Prometheus),
    /// read under the device lock; a wrapper puts its counters before those of the
    /// backend it wraps. Steering a wrapper at run time goes through its handle
    /// ([`Handles`]), not through the chain.
    fn backend_counters(&self) -> Vec<BackendCounter> {
        Vec::new()
    }

    /// Whether the wire works now, as a cable's carrier (a tap that was deleted, a
    /// stream whose peer went away: none), and the moment to repair it: a backend that
    /// lost its wire tries to get it back here (reopen a tap that came back, reconnect)
    /// when its own schedule says so, and is cheap otherwise. The device's service step
    /// calls this on every pass, whatever the state of the receive ring, and shows the
    /// guest a link only while both this carrier and the host's cable
    /// (`E1000::set_link`) are up. A wrapper passes it on (and may do its own upkeep
    /// here: the pcap recorder writes out records waiting in memory, and asks to be
    /// called again when the next ones are due).
    fn carrier(&mut self) -> Carrier {
        Carrier::UP
    }

    /// Why the carrier is down and what would bring it back, in words (for the control
    /// socket's `info`); `None` while it is up.
    fn carrier_note(&self) -> Option<String> {
        None
    }
}

impl<B: PacketBackend + ?Sized> PacketBackend for Box<B> {
    fn name(&self) -> String {
        (**self).name()
    }
    fn send(&mut self, frame: &[u8]) -> io::Result<bool> {
        (**self).send(frame)
    }
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        (**self).recv(buf)
    }
    fn rx_fd(&self) -> Option<RawFd> {
        (**self).rx_fd()
    }
    fn next_rx_deadline(&self) -> Option<Instant> {
        (**self).next_rx_deadline()
    }
    fn rx_outcome(&mut self, outcome: RxOutcome) {
        (**self).rx_outcome(outcome)
    }
    fn begin_burst(&mut self) {
        (**self).begin_burst()
    }
    fn end_burst(&mut self) -> io::Result<()> {
        (**self).end_burst()
    }
    fn flush(&mut self) -> io::Result<()> {
        (**self).flush()
    }
    fn accepts_gso(&self) -> bool {
        (**self).accepts_gso()
    }
    fn send_gso(&mut self, frame: &[u8], gso: &Gso) -> io::Result<bool> {
        (**self).send_gso(frame, gso)
    }
    fn backend_counters(&self) -> Vec<BackendCounter> {
        (**self).backend_counters()
    }
    fn carrier(&mut self) -> Carrier {
        (**self).carrier()
    }
    fn carrier_note(&self) -> Option<String> {
        (**self).carrier_note()
    }
}

/// A backend that discards what it is sent and never receives: for a device that is not
/// connected to anything.
#[derive(Debug, Default)]
pub struct Null {
    /// Frames sent and discarded.
    pub discarded: u64,
}

impl PacketBackend for Null {
    fn name(&self) -> String {
        "null".into()
    }
    fn send(&mut self, _frame: &[u8]) -> io::Result<bool> {
        self.discarded += 1;
        Ok(true)
    }
    fn recv(&mut self, _buf: &mut [u8]) -> io::Result<Option<usize>> {
        Ok(None)
    }
}
