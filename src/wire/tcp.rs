//! TCP and UDP header facts: field offsets and TCP's flags.

/// Shortest TCP header (no options).
pub const TCP_MIN_HEADER_LEN: usize = 20;
/// Offset of TCP's sequence number.
pub const TCP_SEQ_OFFSET: usize = 4;
/// Offset of TCP's data offset (header length in 32-bit words, high nibble).
pub const TCP_DATA_OFFSET_OFFSET: usize = 12;
/// Offset of TCP's flags byte.
pub const TCP_FLAGS_OFFSET: usize = 13;
/// Offset of TCP's checksum.
pub const TCP_CHECKSUM_OFFSET: usize = 16;

/// TCP flag FIN: the sender's last segment.
pub const TCP_FIN: u8 = 0x01;
/// TCP flag PSH: push the data to the application.
pub const TCP_PSH: u8 = 0x08;
/// TCP flag CWR: congestion window reduced (ECN).
pub const TCP_CWR: u8 = 0x80;

/// Bytes of the UDP header.
pub const UDP_HEADER_LEN: usize = 8;
/// Offset of UDP's length.
pub const UDP_LENGTH_OFFSET: usize = 4;
/// Offset of UDP's checksum (0 over IPv4: no checksum).
pub const UDP_CHECKSUM_OFFSET: usize = 6;

/// The TCP header's length in bytes, from its data offset, if `tcp` holds that byte.
pub fn tcp_header_len(tcp: &[u8]) -> Option<usize> {
    tcp.get(TCP_DATA_OFFSET_OFFSET)
        .map(|&o| usize::from(o >> 4) * 4)
}
