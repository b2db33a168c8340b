//! Segmentation offload from a backend: a TCP packet of up to 64 KiB that a tap hands
//! over whole (after `TUNSETOFFLOAD` with `TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_CSUM`), cut
//! here into the frames a wire would have carried, because the 82540EM has no receive
//! coalescing: its guest driver expects frames of at most the MTU.
//!
//! The kernel hands such a packet with a `struct virtio_net_hdr` whose `gso_type` names
//! TCP over IPv4 or IPv6, `gso_size` the payload per segment and `csum_start` the TCP
//! header; its TCP checksum is partial (`VIRTIO_NET_HDR_F_NEEDS_CSUM`). Each segment gets
//! the packet's headers with the IP length (and, for IPv4, the identification counted
//! up and the header checksum) and the TCP sequence number adjusted, FIN and PSH only on
//! the last segment, CWR only on the first, and a full TCP checksum: what Linux's own
//! segmentation (`tcp_gso_segment`) puts on the wire. The header's `hdr_len` is not
//! trusted (Linux fills it with the length of the packet's linear part); the headers'
//! own lengths are.

use crate::wire::checksum;
use crate::wire::ethernet::{self, Frame, VLAN_TPIDS};
use crate::wire::ip::{
    self, Ipv4, Ipv6, IPV4_CHECKSUM_OFFSET, IPV4_ID_OFFSET, IPV4_TOTAL_LEN_OFFSET, IPV6_HEADER_LEN,
    IPV6_PAYLOAD_LEN_OFFSET,
};
use crate::wire::tcp::{
    tcp_header_len, TCP_CHECKSUM_OFFSET, TCP_CWR, TCP_FIN, TCP_FLAGS_OFFSET, TCP_MIN_HEADER_LEN,
    TCP_PSH, TCP_SEQ_OFFSET,
};
// GSO_ECN: the packet carries CWR and was meant for ECN-aware segmentation (never
// offered: nic-emu does not set `TUN_F_TSO_ECN`).
use crate::wire::virtio_net::{VnetHdr, GSO_ECN, GSO_TCPV4, GSO_TCPV6};

/// Most VLAN tags stepped over before the IP header.
const MAX_TAGS: usize = 4;

/// Where a GSO packet's parts are, and which segment comes next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cutter {
    ipv6: bool,
    /// Offset of the IP header (after Ethernet and any VLAN tags).
    l3: usize,
    /// Offset of the TCP header.
    l4: usize,
    /// Bytes of headers repeated in each segment (Ethernet, IP, TCP with options).
    hdrs: usize,
    /// Payload bytes per segment.
    mss: usize,
    /// Offset of the next segment's payload in the packet.
    next: usize,
    /// Segments cut so far.
    index: u32,
}

/// What [`Cutter::look`] makes of a frame read with a virtio-net header.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Received {
    /// An ordinary frame (its checksum, if partial, is the caller's to finish).
    Frame,
    /// A TCP packet to cut into segments.
    Gso(Cutter),
    /// A GSO packet whose headers do not describe it: dropped.
    Bad(&'static str),
}

impl Cutter {
    /// Look at `hdr` (a `struct virtio_net_hdr`) and the packet after it.
    pub(crate) fn look(hdr: &[u8], pkt: &[u8]) -> Received {
        let Some(hdr) = VnetHdr::new(hdr) else {
            return Received::Frame;
        };
        let ipv6 = match hdr.gso_type() & !GSO_ECN {
            0 => return Received::Frame,
            GSO_TCPV4 => false,
            GSO_TCPV6 => true,
            _ => return Received::Bad("a GSO type other than TCP"),
        };
        let mss = usize::from(hdr.gso_size());
        let l4 = usize::from(hdr.csum_start());
        if mss == 0 {
            return Received::Bad("a GSO packet with segment size 0");
        }
        // Ethernet type, past any VLAN tags.
        let Some((ethertype, l3)) =
            Frame::new(pkt).and_then(|f| f.inner_type(|t| VLAN_TPIDS.contains(&t), MAX_TAGS))
        else {
            return Received::Bad("a GSO packet shorter than its Ethernet header");
        };
        let at_l3 = pkt.get(l3..).unwrap_or_default();
        let ip_ok = if ipv6 {
            // Next header TCP, no extension headers.
            ethertype == ethernet::ETHERTYPE_IPV6
                && Ipv6::new(at_l3)
                    .is_some_and(|h| h.version() == 6 && h.next_header() == ip::PROTO_TCP)
                && l4 == l3 + IPV6_HEADER_LEN
        } else {
            ethertype == ethernet::ETHERTYPE_IPV4
                && Ipv4::new(at_l3)
                    .is_some_and(|h| h.protocol() == ip::PROTO_TCP && l4 == l3 + h.header_len())
        };
        if !ip_ok {
            return Received::Bad("a GSO packet whose IP header is not TCP where it says");
        }
        let Some(tcp_len) = tcp_header_len(pkt.get(l4..).unwrap_or_default()) else {
            return Received::Bad("a GSO packet shorter than its TCP header");
        };
        let hdrs = l4 + tcp_len;
        if tcp_len < TCP_MIN_HEADER_LEN || hdrs > pkt.len() {
            return Received::Bad("a GSO packet shorter than its TCP header");
        }
        Received::Gso(Cutter {
            ipv6,
            l3,
            l4,
            hdrs,
            mss,
            next: hdrs,
            index: 0,
        })
    }

    /// Whether every segment has been cut.
    pub(crate) fn done(&self, pkt: &[u8]) -> bool {
        self.next >= pkt.len() && self.index > 0
    }

    /// Cut the next segment of `pkt` into `out`, returning its length; `None` when `out`
    /// is too small for it (the segment is skipped).
    pub(crate) fn next_segment(&mut self, pkt: &[u8], out: &mut [u8]) -> Option<usize> {
        let start = self.next.min(pkt.len());
        let end = start.saturating_add(self.mss).min(pkt.len());
        let (first, last) = (self.index == 0, end >= pkt.len());
        let index = self.index;
        self.next = end;
        self.index = self.index.saturating_add(1);
        let len = self.hdrs + (end - start);
        let seg = out.get_mut(..len)?;
        seg[..self.hdrs].copy_from_slice(&pkt[..self.hdrs]);
        seg[self.hdrs..].copy_from_slice(&pkt[start..end]);

        let (l3, l4) = (self.l3, self.l4);
        let tcp_len = len - l4;
        let put16 = |seg: &mut [u8], at: usize, v: u16| {
            seg[at..at + 2].copy_from_slice(&v.to_be_bytes());
        };
        // `look` checked that the headers are all in `hdrs`, which every segment has.
        let pseudo = if self.ipv6 {
            let plen = (len - l3 - IPV6_HEADER_LEN) as u16;
            put16(seg, l3 + IPV6_PAYLOAD_LEN_OFFSET, plen);
            Ipv6::new(&seg[l3..]).map(|h| h.pseudo_sum(tcp_len))
        } else {
            let tot = (len - l3) as u16;
            put16(seg, l3 + IPV4_TOTAL_LEN_OFFSET, tot);
            let id = u16::from_be_bytes([seg[l3 + IPV4_ID_OFFSET], seg[l3 + IPV4_ID_OFFSET + 1]])
                .wrapping_add(index as u16);
            put16(seg, l3 + IPV4_ID_OFFSET, id);
            put16(seg, l3 + IPV4_CHECKSUM_OFFSET, 0);
            let c = checksum::checksum(&seg[l3..l4], 0);
            put16(seg, l3 + IPV4_CHECKSUM_OFFSET, c);
            Ipv4::new(&seg[l3..]).map(|h| h.pseudo_sum(tcp_len))
        }?;

        let at = l4 + TCP_SEQ_OFFSET;
        let seq = u32::from_be_bytes([seg[at], seg[at + 1], seg[at + 2], seg[at + 3]])
            .wrapping_add((start - self.hdrs) as u32);
        seg[at..at + 4].copy_from_slice(&seq.to_be_bytes());
        if !last {
            seg[l4 + TCP_FLAGS_OFFSET] &= !(TCP_FIN | TCP_PSH);
        }
        if !first {
            seg[l4 + TCP_FLAGS_OFFSET] &= !TCP_CWR;
        }
        put16(seg, l4 + TCP_CHECKSUM_OFFSET, 0);
        let c = checksum::checksum(&seg[l4..], pseudo);
        put16(seg, l4 + TCP_CHECKSUM_OFFSET, c);
        Some(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::virtio_net::HEADER_LEN;

    /// An Ethernet + IPv4 + TCP packet with `payload` bytes, as the kernel would hand it
    /// (partial checksum, arbitrary `hdr_len`).
    fn v4_packet(payload: usize, flags: u8) -> Vec<u8> {
        let mut p = vec![0u8; 14 + 20 + 32 + payload];
        p[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        p[14] = 0x45;
        p[14 + 2..14 + 4].copy_from_slice(&((20 + 32 + payload) as u16).to_be_bytes());
        p[14 + 4..14 + 6].copy_from_slice(&0xFFFEu16.to_be_bytes());
        p[14 + 8] = 64;
        p[14 + 9] = 6;
        p[14 + 12..14 + 16].copy_from_slice(&[10, 0, 0, 1]);
        p[14 + 16..14 + 20].copy_from_slice(&[10, 0, 0, 2]);
        let t = 34;
        p[t..t + 2].copy_from_slice(&5201u16.to_be_bytes());
        p[t + 4..t + 8].copy_from_slice(&0xFFFF_FF00u32.to_be_bytes());
        p[t + 12] = 8 << 4;
        p[t + 13] = flags;
        for (i, b) in p[66..].iter_mut().enumerate() {
            *b = i as u8;
        }
        p
    }

    fn hdr(gso_type: u8, mss: u16, csum_start: u16) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0] = 1;
        h[1] = gso_type;
        h[2..4].copy_from_slice(&1000u16.to_le_bytes()); // not trusted
        h[4..6].copy_from_slice(&mss.to_le_bytes());
        h[6..8].copy_from_slice(&csum_start.to_le_bytes());
        h[8..10].copy_from_slice(&16u16.to_le_bytes());
        h
    }

    fn cut(h: &[u8], p: &[u8]) -> Vec<Vec<u8>> {
        let Received::Gso(mut c) = Cutter::look(h, p) else {
            panic!("not a GSO packet: {:?}", Cutter::look(h, p));
        };
        let mut out = Vec::new();
        let mut buf = vec![0u8; 16384];
        while !c.done(p) {
            let n = c.next_segment(p, &mut buf).expect("fits");
            out.push(buf[..n].to_vec());
        }
        out
    }

    #[test]
    fn ipv4_segments_have_lengths_ids_sequence_flags_and_checksums_of_a_wire() {
        let p = v4_packet(3000, TCP_FIN | TCP_PSH | TCP_CWR | 0x10);
        let segs = cut(&hdr(GSO_TCPV4, 1448, 34), &p);
        assert_eq!(segs.len(), 3);
        let mut payload = Vec::new();
        for (i, s) in segs.iter().enumerate() {
            let ip = etherparse::Ipv4HeaderSlice::from_slice(&s[14..]).unwrap();
            assert_eq!(usize::from(ip.total_len()), s.len() - 14);
            assert_eq!(ip.identification(), 0xFFFEu16.wrapping_add(i as u16));
            assert_eq!(
                ip.header_checksum(),
                ip.to_header().calc_header_checksum(),
                "segment {i}: IPv4 header checksum"
            );
            let tcp = etherparse::TcpHeaderSlice::from_slice(&s[34..]).unwrap();
            assert_eq!(
                tcp.sequence_number(),
                0xFFFF_FF00u32.wrapping_add(1448 * i as u32)
            );
            let last = i == segs.len() - 1;
            assert_eq!(tcp.fin(), last, "segment {i}: FIN");
            assert_eq!(tcp.psh(), last, "segment {i}: PSH");
            assert_eq!(tcp.cwr(), i == 0, "segment {i}: CWR");
            assert!(tcp.ack());
            let data = &s[66..];
            let want = tcp
                .to_header()
                .calc_checksum_ipv4(&ip.to_header(), data)
                .unwrap();
            assert_eq!(tcp.checksum(), want, "segment {i}: TCP checksum");
            assert!(data.len() <= 1448);
            payload.extend_from_slice(data);
        }
        assert_eq!(payload, p[66..], "the payload, in order, once");
    }

    #[test]
    fn ipv6_segments_have_payload_lengths_and_checksums_of_a_wire() {
        let mut p = vec![0u8; 14 + 40 + 20 + 2000];
        p[12..14].copy_from_slice(&0x86DDu16.to_be_bytes());
        p[14] = 0x60;
        p[14 + 6] = 6;
        p[14 + 7] = 64;
        p[14 + 8 + 15] = 1;
        p[14 + 24 + 15] = 2;
        p[54 + 12] = 5 << 4;
        p[54 + 13] = 0x18;
        for (i, b) in p[74..].iter_mut().enumerate() {
            *b = (i * 7) as u8;
        }
        let segs = cut(&hdr(GSO_TCPV6, 1000, 54), &p);
        assert_eq!(segs.len(), 2);
        for (i, s) in segs.iter().enumerate() {
            let ip = etherparse::Ipv6HeaderSlice::from_slice(&s[14..]).unwrap();
            assert_eq!(usize::from(ip.payload_length()), s.len() - 54);
            let tcp = etherparse::TcpHeaderSlice::from_slice(&s[54..]).unwrap();
            let want = tcp
                .to_header()
                .calc_checksum_ipv6(&ip.to_header(), &s[74..])
                .unwrap();
            assert_eq!(tcp.checksum(), want, "segment {i}");
            assert_eq!(tcp.psh(), i == 1);
            assert_eq!(tcp.sequence_number(), 1000 * i as u32);
        }
    }

    #[test]
    fn a_vlan_tag_is_stepped_over() {
        let inner = v4_packet(100, 0x10);
        let mut p = inner[..12].to_vec();
        p.extend_from_slice(&[0x81, 0x00, 0x00, 0x05]);
        p.extend_from_slice(&inner[12..]);
        let segs = cut(&hdr(GSO_TCPV4, 60, 38), &p);
        assert_eq!(segs.len(), 2);
        assert_eq!(segs[0].len(), 18 + 20 + 32 + 60);
        assert_eq!(&segs[1][12..16], &[0x81, 0x00, 0x00, 0x05]);
    }

    #[test]
    fn frames_without_gso_pass_and_inconsistent_ones_are_refused() {
        let p = v4_packet(100, 0x10);
        assert_eq!(Cutter::look(&hdr(0, 0, 34), &p), Received::Frame);
        assert_eq!(Cutter::look(&[], &p), Received::Frame);
        for (h, what) in [
            (hdr(GSO_TCPV4, 0, 34), "mss 0"),
            (hdr(GSO_TCPV4, 1448, 30), "csum_start not at TCP"),
            (hdr(GSO_TCPV6, 1448, 34), "IPv6 type on IPv4"),
            (hdr(3, 1448, 34), "UDP fragmentation offload"),
        ] {
            assert!(
                matches!(Cutter::look(&h, &p), Received::Bad(_)),
                "{what}: {:?}",
                Cutter::look(&h, &p)
            );
        }
        for n in 0..66 {
            assert!(
                matches!(
                    Cutter::look(&hdr(GSO_TCPV4, 1448, 34), &p[..n]),
                    Received::Bad(_)
                ),
                "truncated to {n}"
            );
        }
    }

    #[test]
    fn a_segment_that_does_not_fit_is_skipped_and_the_rest_still_come() {
        let p = v4_packet(3000, 0x10);
        let Received::Gso(mut c) = Cutter::look(&hdr(GSO_TCPV4, 1448, 34), &p) else {
            panic!()
        };
        let mut small = [0u8; 100];
        assert_eq!(c.next_segment(&p, &mut small), None);
        let mut buf = [0u8; 2048];
        assert_eq!(c.next_segment(&p, &mut buf), Some(66 + 1448));
        assert_eq!(c.next_segment(&p, &mut buf), Some(66 + 3000 - 2 * 1448));
        assert!(c.done(&p));
    }

    #[test]
    fn a_packet_with_headers_only_gives_one_segment() {
        let p = v4_packet(0, TCP_FIN | 0x10);
        let segs = cut(&hdr(GSO_TCPV4, 1448, 34), &p);
        assert_eq!(segs.len(), 1);
        assert_eq!(segs[0].len(), 66);
    }
}
