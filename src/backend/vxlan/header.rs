//! The VXLAN header of RFC 7348, section 5: eight bytes before the inner Ethernet frame.
//!
//! ```text
//!  0               1               2               3
//! +-+-+-+-+-+-+-+-+-------------------------------------------------+
//! |R|R|R|R|I|R|R|R|            Reserved (24 bits)                   |
//! +-+-+-+-+-+-+-+-+-------------------------------------------------+
//! |       VXLAN Network Identifier (VNI, 24 bits)  | Reserved (8)   |
//! +------------------------------------------------+----------------+
//! ```
//!
//! On transmission the I flag is set and every R bit and reserved field is zero. On
//! receipt the RFC says the I flag must be set for the VNI to be valid and the R bits
//! and reserved fields are ignored: [`decode`] follows it and reports whether any of
//! them was set, so the backend can count (and log) senders that use them.

/// Bytes of the header.
pub const HEADER_LEN: usize = 8;

/// The I flag: "the VNI is valid". The only flag RFC 7348 defines.
pub const FLAG_I: u8 = 0x08;

/// Bytes added around an inner frame over IPv4: IPv4 (20) + UDP (8) + VXLAN (8) + the
/// inner Ethernet header (14) beyond the inner IP packet. A 1500-byte inner MTU needs a
/// 1550-byte path MTU.
pub const OVERHEAD_V4: usize = 20 + 8 + HEADER_LEN + 14;

/// The same over IPv6 (a 40-byte header): 1570 for a 1500-byte inner MTU.
pub const OVERHEAD_V6: usize = 40 + 8 + HEADER_LEN + 14;

/// The header that starts every datagram sent for segment `vni` (24 bits; higher bits are
/// not sent).
pub fn encode(vni: u32) -> [u8; HEADER_LEN] {
    let [_, a, b, c] = vni.to_be_bytes();
    [FLAG_I, 0, 0, 0, a, b, c, 0]
}

/// Why a datagram is not a VXLAN frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// Fewer than [`HEADER_LEN`] bytes.
    Short,
    /// The I flag is clear: there is no valid VNI.
    NoIFlag,
}

/// A decoded header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The segment.
    pub vni: u32,
    /// Whether a flag other than I, or a reserved field, was not zero (ignored, as the
    /// RFC says).
    pub reserved_set: bool,
}

/// Read the header at the start of `datagram`; the inner frame follows it.
pub fn decode(datagram: &[u8]) -> Result<Header, HeaderError> {
    let Some(h) = datagram.first_chunk::<HEADER_LEN>() else {
        return Err(HeaderError::Short);
    };
    if h[0] & FLAG_I == 0 {
        return Err(HeaderError::NoIFlag);
    }
    let vni = u32::from_be_bytes([0, h[4], h[5], h[6]]);
    let reserved_set = h[0] & !FLAG_I != 0 || h[1..4] != [0; 3] || h[7] != 0;
    Ok(Header { vni, reserved_set })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_is_the_rfc_layout() {
        assert_eq!(encode(42), [0x08, 0, 0, 0, 0, 0, 42, 0]);
        assert_eq!(
            encode(0x00AB_CDEF),
            [0x08, 0, 0, 0, 0xAB, 0xCD, 0xEF, 0],
            "VNI big-endian in bytes 4-6"
        );
        assert_eq!(
            encode(0xFF00_0001)[4..7],
            [0, 0, 1],
            "only 24 bits are sent"
        );
    }

    #[test]
    fn decode_reads_back_every_vni() {
        for vni in [0, 1, 42, 0x1234, 0x00FF_FFFF] {
            let mut d = encode(vni).to_vec();
            d.extend_from_slice(&[0xAA; 20]);
            assert_eq!(
                decode(&d),
                Ok(Header {
                    vni,
                    reserved_set: false
                })
            );
        }
    }

    #[test]
    fn short_and_flagless_headers_are_errors() {
        for n in 0..HEADER_LEN {
            assert_eq!(
                decode(&encode(1)[..n]),
                Err(HeaderError::Short),
                "{n} bytes"
            );
        }
        let mut h = encode(7);
        h[0] = 0;
        assert_eq!(decode(&h), Err(HeaderError::NoIFlag));
        h[0] = 0xF7; // every bit but I
        assert_eq!(decode(&h), Err(HeaderError::NoIFlag));
    }

    #[test]
    fn reserved_bits_are_reported_not_refused() {
        for (byte, value) in [
            (0, 0x08 | 0x80),
            (0, 0x08 | 0x01),
            (1, 1),
            (2, 0x80),
            (3, 4),
            (7, 0xFF),
        ] {
            let mut h = encode(99);
            h[byte] = value;
            assert_eq!(
                decode(&h),
                Ok(Header {
                    vni: 99,
                    reserved_set: true
                }),
                "byte {byte} = {value:#x}"
            );
        }
    }

    #[test]
    fn overheads() {
        assert_eq!(1500 + OVERHEAD_V4, 1550);
        assert_eq!(1500 + OVERHEAD_V6, 1570);
    }
}
