//! Transmit offloads: checksum insertion, TCP/UDP segmentation (TSO) header fix-ups and
//! VLAN tag insertion, as pure functions over a frame buffer.
//!
//! Every offset here comes from a guest descriptor, so every access is checked: a
//! checksum whose offsets fall outside the frame is skipped, and a segmentation context
//! that does not describe a usable header is refused by [`Context::tso_problem`] before
//! any segment is built.

use crate::wire::ip::{
    IPV4_ID_OFFSET, IPV4_MIN_HEADER_LEN, IPV4_TOTAL_LEN_OFFSET, IPV6_HEADER_LEN,
    IPV6_PAYLOAD_LEN_OFFSET,
};
use crate::wire::tcp::{
    TCP_FIN, TCP_FLAGS_OFFSET, TCP_MIN_HEADER_LEN, TCP_PSH, TCP_SEQ_OFFSET, UDP_HEADER_LEN,
    UDP_LENGTH_OFFSET,
};
use crate::wire::{checksum, MAX_FRAME};

/// Smallest MSS accepted for segmentation. Hardware takes any MSS; a tiny one turns a
/// 1 MiB payload into a million frames (CVE-2015-6815 looped on MSS 0). Linux never
/// offloads with an MSS this small (its minimum sending MSS is 48, less TCP options).
pub const MIN_TSO_MSS: u16 = 16;

/// TUCMD bits of a context descriptor.
pub mod tucmd {
    /// TCP (clear: UDP).
    pub const TCP: u8 = 1 << 0;
    /// IPv4 (clear: IPv6).
    pub const IP: u8 = 1 << 1;
    /// TCP segmentation enable: this context is the segmentation context.
    pub const TSE: u8 = 1 << 2;
}

/// POPTS bits of a data descriptor.
pub mod popts {
    /// Insert the IP checksum (IPCSS..IPCSE at IPCSO).
    pub const IXSM: u8 = 1 << 0;
    /// Insert the TCP/UDP checksum (TUCSS..TUCSE at TUCSO).
    pub const TXSM: u8 = 1 << 1;
}

/// Offload parameters, as a context descriptor (DEXT, DTYP=0) sets them. Offsets count
/// from the first byte of the packet as the guest laid it out (before VLAN insertion).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Context {
    /// IP checksum start.
    pub ipcss: u8,
    /// IP checksum offset (where the result goes).
    pub ipcso: u8,
    /// IP checksum end, inclusive; 0 = end of packet.
    pub ipcse: u16,
    /// TCP/UDP checksum start.
    pub tucss: u8,
    /// TCP/UDP checksum offset.
    pub tucso: u8,
    /// TCP/UDP checksum end, inclusive; 0 = end of packet.
    pub tucse: u16,
    /// Segmentation: payload bytes after the header (20 bits).
    pub paylen: u32,
    /// Segmentation: header bytes repeated in every segment.
    pub hdrlen: u8,
    /// Segmentation: payload bytes per segment.
    pub mss: u16,
    /// The descriptor had TSE: this is the segmentation context.
    pub tse: bool,
    /// IPv4 (false: IPv6).
    pub ipv4: bool,
    /// TCP (false: UDP).
    pub tcp: bool,
}

impl Context {
    /// Decode a context descriptor.
    pub fn parse(d: &[u8; 16]) -> Self {
        let cmd = d[11];
        Self {
            ipcss: d[0],
            ipcso: d[1],
            ipcse: u16::from_le_bytes([d[2], d[3]]),
            tucss: d[4],
            tucso: d[5],
            tucse: u16::from_le_bytes([d[6], d[7]]),
            paylen: u32::from_le_bytes([d[8], d[9], d[10], 0]) & 0xF_FFFF,
            hdrlen: d[13],
            mss: u16::from_le_bytes([d[14], d[15]]),
            tse: cmd & tucmd::TSE != 0,
            ipv4: cmd & tucmd::IP != 0,
            tcp: cmd & tucmd::TCP != 0,
        }
    }

    /// Why this context cannot drive segmentation with these POPTS, or `None` if it can.
    /// A context that passes keeps every per-segment fix-up inside the header.
    pub fn tso_problem(&self, popts_bits: u8) -> Option<&'static str> {
        let h = usize::from(self.hdrlen);
        let (ipcss, tucss) = (usize::from(self.ipcss), usize::from(self.tucss));
        if self.mss < MIN_TSO_MSS {
            return Some("TSO MSS below the minimum");
        }
        if h + usize::from(self.mss) > MAX_FRAME {
            return Some("TSO HDRLEN + MSS larger than the largest frame");
        }
        let ip_len = if self.ipv4 {
            IPV4_MIN_HEADER_LEN
        } else {
            IPV6_HEADER_LEN
        };
        if ipcss + ip_len > h {
            return Some("TSO IP header not inside HDRLEN");
        }
        let l4_len = if self.tcp {
            TCP_MIN_HEADER_LEN
        } else {
            UDP_HEADER_LEN
        };
        if tucss + l4_len > h {
            return Some("TSO TCP/UDP header not inside HDRLEN");
        }
        if popts_bits & popts::IXSM != 0 && usize::from(self.ipcso) + 2 > h {
            return Some("TSO IP checksum offset not inside HDRLEN");
        }
        if popts_bits & popts::TXSM != 0 && usize::from(self.tucso) + 2 > h {
            return Some("TSO TCP/UDP checksum offset not inside HDRLEN");
        }
        None
    }
}

fn get16(f: &[u8], at: usize) -> Option<u16> {
    let b = f.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

fn put16(f: &mut [u8], at: usize, v: u16) -> Option<()> {
    f.get_mut(at..at.checked_add(2)?)?
        .copy_from_slice(&v.to_be_bytes());
    Some(())
}

fn get32(f: &[u8], at: usize) -> Option<u32> {
    let b = f.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn put32(f: &mut [u8], at: usize, v: u32) -> Option<()> {
    f.get_mut(at..at.checked_add(4)?)?
        .copy_from_slice(&v.to_be_bytes());
    Some(())
}

/// Sum `frame[css..=cse]` (`cse` 0 or past the end: to the end of the frame) plus
/// `seed`, and store the complement big-endian at `cso`. With `nozero` a result of 0 is
/// stored as 0xFFFF (UDP's "no checksum" value must not appear). The bytes already at
/// `cso` are part of the sum: that is where the driver seeds the pseudo-header. Returns
/// false, changing nothing, when the offsets fall outside the frame.
pub fn insert_checksum(
    frame: &mut [u8],
    css: usize,
    cso: usize,
    cse: usize,
    seed: u64,
    nozero: bool,
) -> bool {
    let end = if cse == 0 {
        frame.len()
    } else {
        cse.saturating_add(1).min(frame.len())
    };
    let Some(region) = frame.get(css..end) else {
        return false;
    };
    if region.is_empty() {
        return false;
    }
    let mut c = checksum::checksum(region, seed);
    if nozero && c == 0 {
        c = 0xFFFF;
    }
    put16(frame, cso, c).is_some()
}

/// Insert the checksums POPTS asks for, TCP/UDP first (its region never covers the IP
/// header's checksum), then IP. `l4_seed` is added to the TCP/UDP sum: the segment's
/// TCP/UDP length under segmentation (the driver seeds the pseudo-header without it),
/// 0 otherwise.
pub fn apply_checksums(frame: &mut [u8], ctx: &Context, popts_bits: u8, l4_seed: u64) {
    if popts_bits & popts::TXSM != 0 {
        insert_checksum(
            frame,
            usize::from(ctx.tucss),
            usize::from(ctx.tucso),
            usize::from(ctx.tucse),
            l4_seed,
            !ctx.tcp,
        );
    }
    if popts_bits & popts::IXSM != 0 {
        insert_checksum(
            frame,
            usize::from(ctx.ipcss),
            usize::from(ctx.ipcso),
            usize::from(ctx.ipcse),
            0,
            false,
        );
    }
}

/// Where a segment sits in its TSO packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Segments of this packet sent before this one.
    pub index: u32,
    /// Payload bytes of this packet sent before this one.
    pub offset: u32,
    /// This is the last segment of the packet.
    pub last: bool,
}

/// Fix the headers of one segment in place: `frame` is the header (as the guest wrote
/// it) followed by this segment's payload. Sets the IPv4 total length and identification
/// (+ index) or the IPv6 payload length; the TCP sequence number (+ offset) and, except
/// on the last segment, clears PSH and FIN; or the UDP length. Returns the TCP/UDP
/// length to add into the pseudo-header sum, or `None` (frame unchanged as far as it
/// got) when an offset falls outside the frame; a context that passed
/// [`Context::tso_problem`] never does.
pub fn fix_segment_headers(frame: &mut [u8], ctx: &Context, seg: Segment) -> Option<u64> {
    let len = frame.len();
    let ipcss = usize::from(ctx.ipcss);
    let tucss = usize::from(ctx.tucss);
    if ctx.ipv4 {
        put16(
            frame,
            ipcss + IPV4_TOTAL_LEN_OFFSET,
            u16::try_from(len.checked_sub(ipcss)?).ok()?,
        )?;
        let id = get16(frame, ipcss + IPV4_ID_OFFSET)?.wrapping_add(seg.index as u16);
        put16(frame, ipcss + IPV4_ID_OFFSET, id)?;
    } else {
        let plen = len.checked_sub(ipcss.checked_add(IPV6_HEADER_LEN)?)?;
        put16(
            frame,
            ipcss + IPV6_PAYLOAD_LEN_OFFSET,
            u16::try_from(plen).ok()?,
        )?;
    }
    let l4 = len.checked_sub(tucss)?;
    if ctx.tcp {
        let seq = get32(frame, tucss + TCP_SEQ_OFFSET)?.wrapping_add(seg.offset);
        put32(frame, tucss + TCP_SEQ_OFFSET, seq)?;
        if !seg.last {
            *frame.get_mut(tucss + TCP_FLAGS_OFFSET)? &= !(TCP_FIN | TCP_PSH);
        }
    } else {
        put16(frame, tucss + UDP_LENGTH_OFFSET, u16::try_from(l4).ok()?)?;
    }
    Some(l4 as u64)
}

/// Insert an 802.1Q tag after the two MAC addresses of the frame at `buf[start..end]`,
/// using the 4 bytes before `start` as room: the MACs move 4 bytes down and the tag
/// (`tpid`, `tci`) follows them. Returns the new start, or `None` (nothing changed) when
/// there is no room or the frame is shorter than the two addresses.
pub fn insert_vlan(buf: &mut [u8], start: usize, end: usize, tpid: u16, tci: u16) -> Option<usize> {
    let new_start = start.checked_sub(4)?;
    if end.checked_sub(start)? < 12 || end > buf.len() {
        return None;
    }
    buf.copy_within(start..start + 12, new_start);
    put16(buf, new_start + 12, tpid)?;
    put16(buf, new_start + 14, tci)?;
    Some(new_start)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp4_ctx() -> Context {
        Context {
            ipcss: 14,
            ipcso: 24,
            ipcse: 33,
            tucss: 34,
            tucso: 50,
            tucse: 0,
            paylen: 3000,
            hdrlen: 54,
            mss: 1000,
            tse: true,
            ipv4: true,
            tcp: true,
        }
    }

    #[test]
    fn parse_context_descriptor() {
        let mut d = [0u8; 16];
        d[0] = 14;
        d[1] = 24;
        d[2..4].copy_from_slice(&33u16.to_le_bytes());
        d[4] = 34;
        d[5] = 50;
        d[8..11].copy_from_slice(&[0xB8, 0x0B, 0xF0]); // PAYLEN 3000 plus DTYP bits
        d[11] = tucmd::TCP | tucmd::IP | tucmd::TSE | 0x20;
        d[13] = 54;
        d[14..16].copy_from_slice(&1000u16.to_le_bytes());
        assert_eq!(Context::parse(&d), tcp4_ctx());
    }

    #[test]
    fn checksum_insertion_bounds_and_seed() {
        let mut f = vec![0u8; 20];
        f[4..8].copy_from_slice(&[0x12, 0x34, 0x56, 0x78]);
        assert!(insert_checksum(&mut f, 4, 10, 0, 0, false));
        // Verifies: the sum over the region including the stored field folds to 0xFFFF.
        assert_eq!(checksum::fold(checksum::sum(&f[4..], 0)), 0xFFFF);
        // CSE is inclusive; a seed is added in.
        let mut g = vec![0u8; 20];
        g[4..8].copy_from_slice(&[0x12, 0x34, 0x56, 0x78]);
        g[18] = 0xFF; // outside [4..=11], must not count
        assert!(insert_checksum(&mut g, 4, 10, 11, 5, false));
        assert_eq!(checksum::fold(checksum::sum(&g[4..12], 5)), 0xFFFF);
        // Out of range: nothing written, no panic.
        let before = g.clone();
        assert!(!insert_checksum(&mut g, 25, 10, 0, 0, false));
        assert!(!insert_checksum(&mut g, 4, 19, 0, 0, false));
        assert!(!insert_checksum(
            &mut g,
            4,
            usize::MAX,
            usize::MAX,
            0,
            false
        ));
        assert!(!insert_checksum(&mut g, 12, 2, 11, 0, false));
        assert_eq!(g, before);
        // A region summing to 0xFFFF has checksum 0: stored as 0xFFFF with nozero.
        let mut u = [0xFF, 0xFF, 0, 0];
        assert!(insert_checksum(&mut u, 0, 2, 0, 0, true));
        assert_eq!(&u[2..], &[0xFF, 0xFF]);
        let mut v = [0xFF, 0xFF, 0, 0];
        assert!(insert_checksum(&mut v, 0, 2, 0, 0, false));
        assert_eq!(&v[2..], &[0, 0]);
    }

    #[test]
    fn tso_context_validation() {
        let c = tcp4_ctx();
        assert_eq!(c.tso_problem(popts::IXSM | popts::TXSM), None);
        for bad in [
            Context { mss: 0, ..c },
            Context { mss: 1, ..c },
            Context { hdrlen: 0, ..c },
            Context { hdrlen: 40, ..c },
            Context { mss: u16::MAX, ..c },
            Context {
                tucss: 250,
                hdrlen: 255,
                ..c
            },
            Context {
                ipv4: false,
                hdrlen: 53,
                tucss: 20,
                ..c
            },
        ] {
            assert!(bad.tso_problem(0).is_some(), "{bad:?}");
        }
        let cso_out = Context { tucso: 60, ..c };
        assert!(cso_out.tso_problem(0).is_none());
        assert!(cso_out.tso_problem(popts::TXSM).is_some());
    }

    #[test]
    fn segment_fixups_ipv4_tcp_and_ipv6_udp() {
        let c = tcp4_ctx();
        let mut f = vec![0u8; 54 + 100];
        f[14] = 0x45;
        f[18..20].copy_from_slice(&0xFFFEu16.to_be_bytes()); // id wraps
        f[38..42].copy_from_slice(&0xFFFF_FF00u32.to_be_bytes()); // seq wraps
        f[47] = 0x18 | TCP_FIN; // ACK PSH FIN
        let seg = Segment {
            index: 3,
            offset: 0x200,
            last: false,
        };
        assert_eq!(fix_segment_headers(&mut f, &c, seg), Some(120));
        assert_eq!(get16(&f, 16), Some(140));
        assert_eq!(get16(&f, 18), Some(0x0001));
        assert_eq!(get32(&f, 38), Some(0x0000_0100));
        assert_eq!(f[47], 0x10);
        let mut g = f.clone();
        g[47] = 0x19;
        fix_segment_headers(&mut g, &c, Segment { last: true, ..seg }).unwrap();
        assert_eq!(g[47], 0x19, "flags kept on the last segment");

        let c6 = Context {
            ipv4: false,
            tcp: false,
            tucss: 54,
            hdrlen: 62,
            ..c
        };
        let mut u = vec![0u8; 62 + 10];
        assert_eq!(fix_segment_headers(&mut u, &c6, seg), Some(18));
        assert_eq!(get16(&u, 18), Some(18), "IPv6 payload length");
        assert_eq!(get16(&u, 58), Some(18), "UDP length");
        // Short frame: None, no panic.
        let mut short = vec![0u8; 10];
        assert_eq!(fix_segment_headers(&mut short, &c, seg), None);
    }

    #[test]
    fn vlan_insertion_moves_macs() {
        let mut b = vec![0u8; 4];
        b.extend(1..=20u8);
        let s = insert_vlan(&mut b, 4, 24, 0x8100, 0x0123).unwrap();
        assert_eq!(s, 0);
        assert_eq!(&b[..12], &(1..=12u8).collect::<Vec<_>>()[..]);
        assert_eq!(&b[12..16], &[0x81, 0x00, 0x01, 0x23]);
        assert_eq!(&b[16..24], &(13..=20u8).collect::<Vec<_>>()[..]);
        assert_eq!(insert_vlan(&mut b, 2, 24, 0x8100, 1), None, "no room");
        assert_eq!(insert_vlan(&mut b, 4, 10, 0x8100, 1), None, "too short");
        assert_eq!(insert_vlan(&mut b, 4, 100, 0x8100, 1), None, "past the end");
    }
}
