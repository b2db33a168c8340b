//! Facts about frames on the wire, shared by the device and the backends (smoltcp's
//! `wire` module is the model): the Internet checksum, Ethernet's EtherTypes and VLAN
//! tags, read-only views of the IPv4, IPv6, TCP and UDP headers the device and the
//! backends look into, and the virtio-net header a tap puts before each frame.
//!
//! This module knows neither the device nor any backend, and both use it instead of
//! reaching into each other. A header view checks its length once, when it is made
//! (`new` returns `None` for bytes too short to hold the header), so its accessors
//! never index out of range: frames come from guests, captures and the network.

pub mod checksum;
pub mod ethernet;
pub mod ip;
pub mod tcp;
pub mod virtio_net;

/// The largest frame nic-emu carries anywhere, without FCS: the 82540EM's long-frame
/// limit (16 KiB). A backend is never asked to carry a longer one, and its receive buffer
/// is never smaller.
pub const MAX_FRAME: usize = 16384;
