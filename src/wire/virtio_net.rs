//! `struct virtio_net_hdr`: what a tap opened with `IFF_VNET_HDR` puts before each frame
//! it hands over and expects before each frame it is given (the form without the
//! mergeable-buffer count, a tap's default), little-endian on a little-endian host.

/// Bytes of the header.
pub const HEADER_LEN: usize = 10;

/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the checksum at `csum_start + csum_offset` holds the
/// pseudo-header sum only; the rest is to be summed.
pub const F_NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_NONE`.
pub const GSO_NONE: u8 = 0;
/// `VIRTIO_NET_HDR_GSO_TCPV4`.
pub const GSO_TCPV4: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_TCPV6`.
pub const GSO_TCPV6: u8 = 4;
/// `VIRTIO_NET_HDR_GSO_ECN`: the packet was meant for ECN-aware segmentation.
pub const GSO_ECN: u8 = 0x80;

/// A read-only view of a header at least [`HEADER_LEN`] bytes long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VnetHdr<'a> {
    bytes: &'a [u8],
}

impl<'a> VnetHdr<'a> {
    /// A view of `bytes`, or `None` when they are too short.
    pub fn new(bytes: &'a [u8]) -> Option<Self> {
        (bytes.len() >= HEADER_LEN).then_some(Self { bytes })
    }

    fn le16(&self, at: usize) -> u16 {
        u16::from_le_bytes([self.bytes[at], self.bytes[at + 1]])
    }

    /// The flags ([`F_NEEDS_CSUM`]).
    pub fn flags(&self) -> u8 {
        self.bytes[0]
    }

    /// The GSO type ([`GSO_TCPV4`], ... with [`GSO_ECN`]).
    pub fn gso_type(&self) -> u8 {
        self.bytes[1]
    }

    /// `hdr_len`: what the sender says the headers' length is (Linux puts the length of
    /// the packet's linear part here: not to be trusted for segmentation).
    pub fn hdr_len(&self) -> u16 {
        self.le16(2)
    }

    /// `gso_size`: payload bytes per segment.
    pub fn gso_size(&self) -> u16 {
        self.le16(4)
    }

    /// `csum_start`: where the checksummed part starts.
    pub fn csum_start(&self) -> u16 {
        self.le16(6)
    }

    /// `csum_offset`: where the checksum goes, from `csum_start`.
    pub fn csum_offset(&self) -> u16 {
        self.le16(8)
    }
}

/// A header with these fields.
pub fn encode(
    flags: u8,
    gso_type: u8,
    hdr_len: u16,
    gso_size: u16,
    csum_start: u16,
    csum_offset: u16,
) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0] = flags;
    h[1] = gso_type;
    h[2..4].copy_from_slice(&hdr_len.to_le_bytes());
    h[4..6].copy_from_slice(&gso_size.to_le_bytes());
    h[6..8].copy_from_slice(&csum_start.to_le_bytes());
    h[8..10].copy_from_slice(&csum_offset.to_le_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_and_read_back() {
        let h = encode(F_NEEDS_CSUM, GSO_TCPV6 | GSO_ECN, 54, 1448, 34, 16);
        assert_eq!(h, [1, 0x84, 54, 0, 0xA8, 0x05, 34, 0, 16, 0]);
        let v = VnetHdr::new(&h).unwrap();
        assert_eq!(
            (
                v.flags(),
                v.gso_type(),
                v.hdr_len(),
                v.gso_size(),
                v.csum_start(),
                v.csum_offset()
            ),
            (F_NEEDS_CSUM, GSO_TCPV6 | GSO_ECN, 54, 1448, 34, 16)
        );
        assert!(VnetHdr::new(&h[..9]).is_none());
    }
}
