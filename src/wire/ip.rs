//! IPv4 and IPv6 headers: read-only views, and the pseudo-header sums of TCP and UDP.

use super::checksum;
use super::ethernet::be16;

/// IP protocol number of TCP.
pub const PROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const PROTO_UDP: u8 = 17;

/// Shortest IPv4 header (no options).
pub const IPV4_MIN_HEADER_LEN: usize = 20;
/// Offset of IPv4's Total Length.
pub const IPV4_TOTAL_LEN_OFFSET: usize = 2;
/// Offset of IPv4's Identification.
pub const IPV4_ID_OFFSET: usize = 4;
/// Offset of IPv4's header checksum.
pub const IPV4_CHECKSUM_OFFSET: usize = 10;
/// Bytes of the fixed IPv6 header.
pub const IPV6_HEADER_LEN: usize = 40;
/// Offset of IPv6's Payload Length.
pub const IPV6_PAYLOAD_LEN_OFFSET: usize = 4;

/// A read-only view of an IPv4 header: version 4, a header length of at least 20 bytes,
/// and at least that many bytes present.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4<'a> {
    bytes: &'a [u8],
    header_len: usize,
}

impl<'a> Ipv4<'a> {
    /// A view of the header at the start of `bytes`, or `None` when they are not one.
    pub fn new(bytes: &'a [u8]) -> Option<Self> {
        let vihl = *bytes.first()?;
        let header_len = usize::from(vihl & 0xF) * 4;
        (vihl >> 4 == 4 && header_len >= IPV4_MIN_HEADER_LEN && bytes.len() >= header_len)
            .then_some(Self { bytes, header_len })
    }

    /// The header, options included.
    pub fn header(&self) -> &'a [u8] {
        &self.bytes[..self.header_len]
    }

    /// Header length in bytes (IHL times 4).
    pub fn header_len(&self) -> usize {
        self.header_len
    }

    /// The Total Length field: header and payload.
    pub fn total_len(&self) -> usize {
        usize::from(be16(self.bytes, IPV4_TOTAL_LEN_OFFSET).unwrap_or(0))
    }

    /// The Identification field.
    pub fn identification(&self) -> u16 {
        be16(self.bytes, IPV4_ID_OFFSET).unwrap_or(0)
    }

    /// Whether this is a fragment: More Fragments set or a fragment offset.
    pub fn is_fragment(&self) -> bool {
        be16(self.bytes, 6).unwrap_or(0) & 0x3FFF != 0
    }

    /// The Protocol field.
    pub fn protocol(&self) -> u8 {
        self.bytes[9]
    }

    /// Whether the header checksum verifies.
    pub fn checksum_ok(&self) -> bool {
        checksum::fold(checksum::sum(self.header(), 0)) == 0xFFFF
    }

    /// The sum of the TCP/UDP pseudo-header for `l4_len` bytes of this protocol.
    pub fn pseudo_sum(&self, l4_len: usize) -> u64 {
        checksum::sum(
            &self.bytes[12..20],
            u64::from(self.protocol()) + l4_len as u64,
        )
    }
}

/// A read-only view of the fixed IPv6 header: at least 40 bytes. The version is not
/// checked here ([`version`](Self::version) says it): the device's checksum offload
/// goes by the EtherType alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv6<'a> {
    bytes: &'a [u8],
}

impl<'a> Ipv6<'a> {
    /// A view of the header at the start of `bytes`, or `None` when they are too short.
    pub fn new(bytes: &'a [u8]) -> Option<Self> {
        (bytes.len() >= IPV6_HEADER_LEN).then_some(Self { bytes })
    }

    /// The version field (6 in a well-formed header).
    pub fn version(&self) -> u8 {
        self.bytes[0] >> 4
    }

    /// The Payload Length field: the bytes after the fixed header.
    pub fn payload_len(&self) -> usize {
        usize::from(be16(self.bytes, IPV6_PAYLOAD_LEN_OFFSET).unwrap_or(0))
    }

    /// The Next Header field.
    pub fn next_header(&self) -> u8 {
        self.bytes[6]
    }

    /// The sum of the TCP/UDP pseudo-header for `l4_len` bytes of the next header's
    /// protocol.
    pub fn pseudo_sum(&self, l4_len: usize) -> u64 {
        checksum::sum(
            &self.bytes[8..40],
            u64::from(self.next_header()) + l4_len as u64,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_header_fields_match_etherparse() {
        let mut h = etherparse::Ipv4Header::new(
            100,
            64,
            etherparse::IpNumber::TCP,
            [10, 0, 0, 1],
            [10, 0, 0, 2],
        )
        .unwrap();
        h.header_checksum = h.calc_header_checksum();
        let mut b = h.to_bytes().to_vec();
        b.extend_from_slice(&[0; 100]);
        let v = Ipv4::new(&b).unwrap();
        assert_eq!(v.header_len(), 20);
        assert_eq!(v.total_len(), 120);
        assert_eq!(v.protocol(), PROTO_TCP);
        assert!(v.checksum_ok());
        assert!(!v.is_fragment());
        b[10] ^= 1;
        assert!(!Ipv4::new(&b).unwrap().checksum_ok());
        b[6] = 0x20; // More Fragments
        assert!(Ipv4::new(&b).unwrap().is_fragment());
    }

    #[test]
    fn ipv4_refuses_what_is_not_a_header() {
        assert!(Ipv4::new(&[]).is_none());
        assert!(Ipv4::new(&[0x45; 19]).is_none(), "shorter than IHL");
        assert!(Ipv4::new(&[0x44; 40]).is_none(), "IHL below 5");
        assert!(Ipv4::new(&[0x65; 40]).is_none(), "version 6");
        assert!(Ipv4::new(&[0x46; 23]).is_none(), "options cut off");
        assert_eq!(Ipv4::new(&[0x46; 24]).unwrap().header_len(), 24);
    }

    #[test]
    fn ipv6_fields_and_pseudo_sum() {
        let mut b = vec![0u8; 48];
        b[0] = 0x60;
        b[4..6].copy_from_slice(&8u16.to_be_bytes());
        b[6] = PROTO_UDP;
        b[8 + 15] = 1;
        b[24 + 15] = 2;
        let v = Ipv6::new(&b).unwrap();
        assert_eq!(
            (v.version(), v.payload_len(), v.next_header()),
            (6, 8, PROTO_UDP)
        );
        assert_eq!(v.pseudo_sum(8), 1 + 2 + 17 + 8);
        assert!(Ipv6::new(&b[..39]).is_none());
    }
}
