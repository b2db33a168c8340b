//! Segmentation offload toward a backend: a TCP packet of up to 64 KiB handed over whole,
//! with what is needed to cut it into frames (the fields of Linux's
//! `struct virtio_net_hdr`, which a tap opened with `IFF_VNET_HDR` takes before each
//! frame). The kernel then segments it, or delivers it whole to a local socket, instead
//! of nic-emu building and writing each segment.

/// How to finish and cut one packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Gso {
    /// TCP over IPv6 (false: over IPv4).
    pub ipv6: bool,
    /// Cut into segments of `mss` payload bytes (false: one frame, checksum only).
    pub segment: bool,
    /// Bytes of headers (Ethernet, IP, TCP) repeated in every segment.
    pub hdr_len: u16,
    /// Payload bytes per segment.
    pub mss: u16,
    /// Where the TCP checksum's sum starts (the TCP header).
    pub csum_start: u16,
    /// Where the checksum goes, from `csum_start`. The field holds the pseudo-header sum.
    pub csum_offset: u16,
}

use crate::wire::virtio_net;
pub use crate::wire::virtio_net::HEADER_LEN as VNET_HDR_LEN;

impl Gso {
    /// The `struct virtio_net_hdr` for this packet (little-endian, as a tap on a
    /// little-endian host takes it).
    pub fn vnet_hdr(&self) -> [u8; VNET_HDR_LEN] {
        let gso_type = match (self.segment, self.ipv6) {
            (false, _) => virtio_net::GSO_NONE,
            (true, false) => virtio_net::GSO_TCPV4,
            (true, true) => virtio_net::GSO_TCPV6,
        };
        virtio_net::encode(
            virtio_net::F_NEEDS_CSUM,
            gso_type,
            self.hdr_len,
            if self.segment { self.mss } else { 0 },
            self.csum_start,
            self.csum_offset,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout() {
        let g = Gso {
            ipv6: false,
            segment: true,
            hdr_len: 54,
            mss: 1448,
            csum_start: 34,
            csum_offset: 16,
        };
        assert_eq!(g.vnet_hdr(), [1, 1, 54, 0, 0xA8, 0x05, 34, 0, 16, 0]);
        let one = Gso {
            segment: false,
            ipv6: true,
            ..g
        };
        assert_eq!(one.vnet_hdr()[..6], [1, 0, 54, 0, 0, 0]);
    }
}
