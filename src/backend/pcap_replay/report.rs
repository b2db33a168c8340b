//! The end-of-file report of a replay: what the guest's receive filter made of the
//! frames, so that a capture the guest mostly ignores does not pass for delivered.

use std::fmt;

use crate::wire::ethernet::{Frame, MAX_STD_UNTAGGED, VLAN_TAG_LEN};

/// What the device did with the replayed frames: the end-of-file report.
///
/// `accepted` is the device's `rx_frames` for these frames, `filtered_*` its
/// `rx_filtered`, `oversize + dropped` its `rx_dropped`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Frames handed to the device.
    pub offered: u64,
    /// Taken by the guest's receive filter and written into its ring.
    pub accepted: u64,
    /// Filtered: unicast to another MAC.
    pub filtered_unicast: u64,
    /// Filtered: multicast (or broadcast) the guest has not joined.
    pub filtered_multicast: u64,
    /// Filtered: VLAN-tagged (the VLAN filter, or a tagged frame to another address).
    pub filtered_vlan: u64,
    /// Dropped by the device as too long for its receive settings.
    pub oversize: u64,
    /// Dropped for other reasons: receiver off, link down, runt, no buffers.
    pub dropped: u64,
    /// Offered but no verdict came back (lost by a wrapper on the way, or still held).
    pub no_verdict: u64,
    /// Frames whose destination was rewritten.
    pub rewritten_dst: u64,
    /// Frames whose source was rewritten.
    pub rewritten_src: u64,
}

impl ReplayReport {
    /// All the frames the receive filter turned away.
    pub fn filtered(&self) -> u64 {
        self.filtered_unicast + self.filtered_multicast + self.filtered_vlan
    }
}

impl fmt::Display for ReplayReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} frames offered: {} accepted by the guest's receive filter, {} filtered \
             ({} unicast to another MAC, {} multicast not joined, {} VLAN), {} oversize, \
             {} dropped",
            self.offered,
            self.accepted,
            self.filtered(),
            self.filtered_unicast,
            self.filtered_multicast,
            self.filtered_vlan,
            self.oversize,
            self.dropped
        )?;
        if self.no_verdict > 0 {
            write!(f, ", {} without a verdict", self.no_verdict)?;
        }
        if self.rewritten_dst + self.rewritten_src > 0 {
            write!(
                f,
                "; rewrote {} destinations, {} sources",
                self.rewritten_dst, self.rewritten_src
            )?;
        }
        Ok(())
    }
}

/// What a frame is, for the report's "why filtered".
#[derive(Clone, Copy, Debug)]
pub(super) enum FrameClass {
    Unicast,
    Multicast,
    Vlan,
}

impl FrameClass {
    pub(super) fn of(frame: &[u8]) -> (Self, bool) {
        let tagged = Frame::new(frame).is_some_and(|f| f.is_tagged());
        let max = if tagged {
            MAX_STD_UNTAGGED + VLAN_TAG_LEN
        } else {
            MAX_STD_UNTAGGED
        };
        let class = if tagged {
            Self::Vlan
        } else if frame.first().is_some_and(|b| b & 1 == 1) {
            Self::Multicast
        } else {
            Self::Unicast
        };
        (class, frame.len() > max)
    }
}
