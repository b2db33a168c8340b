//! Transmit-test helpers: descriptor builders and packets laid out the way the Linux
//! e1000 driver lays them out.

use etherparse::{NetHeaders, PacketBuilder, PacketHeaders, TcpHeader, TransportHeader};

use super::*;
use nic_emu::device::regs::*;

/// Packet data the tests lay out for data descriptors (below RX_BUFS).
pub const DATA: u64 = 0x20_0000;

/// Extended descriptor command bits (DCMD / TUCMD).
pub const D_EOP: u8 = 0x01;
pub const D_IFCS: u8 = 0x02;
pub const D_TSE: u8 = 0x04;
pub const D_RS: u8 = 0x08;
pub const D_DEXT: u8 = 0x20;
pub const D_VLE: u8 = 0x40;
pub const T_TCP: u8 = 0x01;
pub const T_IP: u8 = 0x02;
pub const POPTS_IXSM: u8 = 0x01;
pub const POPTS_TXSM: u8 = 0x02;
pub const TXD_RPS: u8 = 0x10;

pub const SRC4: [u8; 4] = [10, 0, 0, 1];
pub const DST4: [u8; 4] = [10, 0, 0, 2];
pub const SRC6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
pub const DST6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

pub fn opened(ring: u32) -> (FakeGuest, TestWire) {
    let (mut g, wire) = FakeGuest::with_wire();
    g.linux_probe();
    g.linux_open(ring, 8);
    g.rd(ICR);
    (g, wire)
}

pub fn legacy_desc(addr: u64, len: u16, cmd: u8, cso: u8, css: u8, special: u16) -> [u8; 16] {
    let mut d = [0u8; 16];
    d[..8].copy_from_slice(&addr.to_le_bytes());
    d[8..10].copy_from_slice(&len.to_le_bytes());
    d[10] = cso;
    d[11] = cmd;
    d[13] = css;
    d[14..16].copy_from_slice(&special.to_le_bytes());
    d
}

/// A context descriptor. `cse`s are inclusive ends (0: end of packet).
#[allow(clippy::too_many_arguments)]
pub fn context_desc(
    ip: (u8, u8, u16),
    tu: (u8, u8, u16),
    paylen: u32,
    tucmd: u8,
    hdrlen: u8,
    mss: u16,
) -> [u8; 16] {
    let mut d = [0u8; 16];
    d[0] = ip.0;
    d[1] = ip.1;
    d[2..4].copy_from_slice(&ip.2.to_le_bytes());
    d[4] = tu.0;
    d[5] = tu.1;
    d[6..8].copy_from_slice(&tu.2.to_le_bytes());
    d[8..12]
        .copy_from_slice(&((paylen & 0xF_FFFF) | (u32::from(tucmd | D_DEXT) << 24)).to_le_bytes());
    d[13] = hdrlen;
    d[14..16].copy_from_slice(&mss.to_le_bytes());
    d
}

pub fn data_desc(addr: u64, len: u32, dcmd: u8, popts: u8, special: u16) -> [u8; 16] {
    let mut d = [0u8; 16];
    d[..8].copy_from_slice(&addr.to_le_bytes());
    let dw = (len & 0xF_FFFF) | (1 << 20) | (u32::from(dcmd | D_DEXT) << 24);
    d[8..12].copy_from_slice(&dw.to_le_bytes());
    d[13] = popts;
    d[14..16].copy_from_slice(&special.to_le_bytes());
    d
}

/// Write descriptors at the tail and hand them to the device.
pub fn post(g: &mut FakeGuest, descs: &[[u8; 16]]) {
    for d in descs {
        g.write_raw_tx_desc(d);
    }
    g.wr(TDT, g.tx_tail);
}

/// One's complement sum of big-endian words, folded (the test's own implementation).
pub fn ones_sum(parts: &[&[u8]]) -> u16 {
    let mut acc: u32 = 0;
    for p in parts {
        for w in p.chunks(2) {
            let v = (u32::from(w[0]) << 8) | u32::from(*w.get(1).unwrap_or(&0));
            acc += v;
            acc = (acc & 0xFFFF) + (acc >> 16);
        }
    }
    acc as u16
}

pub fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add((i >> 8) as u8) ^ seed)
        .collect()
}

pub fn tcp_header(seq: u32, fin: bool) -> TcpHeader {
    let mut t = TcpHeader::new(40000, 5201, seq, 65535);
    t.ack = true;
    t.psh = true;
    t.fin = fin;
    t.acknowledgment_number = 77;
    t
}

/// An Ethernet/IP/TCP header as Linux hands it to e1000 for TSO: IPv4 total length and
/// header checksum 0 (IPv6 payload length 0), the TCP checksum seeded with the
/// pseudo-header without length.
pub fn tso_header(v6: bool, seq: u32, ip_id: u16) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(MAC, PEER);
    let mut h = Vec::new();
    if v6 {
        b.ipv6(SRC6, DST6, 64)
            .tcp_header(tcp_header(seq, true))
            .write(&mut h, &[])
            .unwrap();
        h[18..20].copy_from_slice(&[0, 0]);
        let seed = ones_sum(&[&SRC6, &DST6, &[0, 6]]);
        h[54 + 16..54 + 18].copy_from_slice(&seed.to_be_bytes());
    } else {
        b.ipv4(SRC4, DST4, 64)
            .tcp_header(tcp_header(seq, true))
            .write(&mut h, &[])
            .unwrap();
        h[16..18].copy_from_slice(&[0, 0]);
        h[18..20].copy_from_slice(&ip_id.to_be_bytes());
        h[24..26].copy_from_slice(&[0, 0]);
        let seed = ones_sum(&[&SRC4, &DST4, &[0, 6]]);
        h[34 + 16..34 + 18].copy_from_slice(&seed.to_be_bytes());
    }
    h
}

/// Descriptors for `len` bytes at `addr` the way Linux maps them: chunks of at most
/// `chunk` bytes, the last 4 bytes in a sentinel descriptor of their own.
pub fn data_chunks(addr: u64, len: usize, chunk: usize, dcmd: u8, popts: u8) -> Vec<[u8; 16]> {
    let mut out = Vec::new();
    let mut off = 0;
    while off < len {
        let mut n = chunk.min(len - off);
        if off + n == len && n > 8 {
            n -= 4;
        }
        out.push(data_desc(addr + off as u64, n as u32, dcmd, popts, 0));
        off += n;
    }
    let last = out.last_mut().unwrap();
    last[11] |= D_EOP | D_RS;
    out
}

/// A 64 KiB TSO packet as the Linux driver posts it, and what its segments must be.
pub struct Tso {
    pub v6: bool,
    pub mss: u16,
    pub seq0: u32,
    pub id0: u16,
    pub hdrlen: usize,
    pub payload: Vec<u8>,
}

/// Post a 64 KiB TCP payload for TSO (context + data descriptors in `chunk`-byte pieces).
pub fn post_tso_64k(g: &mut FakeGuest, v6: bool, chunk: usize, mss: u16) -> Tso {
    post_tso(g, v6, chunk, mss, 64 << 10)
}

/// Post a TCP payload of `len` bytes for TSO.
pub fn post_tso(g: &mut FakeGuest, v6: bool, chunk: usize, mss: u16, len: usize) -> Tso {
    let seq0 = 0xFFFF_F000u32; // wraps during the transfer
    let id0 = 0xFFF0u16;
    let hdr = tso_header(v6, seq0, id0);
    let payload = pattern(len, 0x5A);
    let hdrlen = hdr.len();
    g.bus.ram().write(DATA, &hdr).unwrap();
    g.bus.ram().write(DATA + hdrlen as u64, &payload).unwrap();
    let (ipcss, tucss) = (14u8, hdrlen as u8 - 20);
    let (ctx, popts) = if v6 {
        (
            context_desc(
                (14, 0, 0),
                (tucss, tucss + 16, 0),
                payload.len() as u32,
                T_TCP | D_TSE,
                hdrlen as u8,
                mss,
            ),
            POPTS_TXSM,
        )
    } else {
        (
            context_desc(
                (ipcss, 24, 33),
                (tucss, tucss + 16, 0),
                payload.len() as u32,
                T_TCP | T_IP | D_TSE,
                hdrlen as u8,
                mss,
            ),
            POPTS_TXSM | POPTS_IXSM,
        )
    };
    let mut descs = vec![ctx];
    descs.extend(data_chunks(
        DATA,
        hdrlen + payload.len(),
        chunk,
        D_TSE | D_IFCS,
        popts,
    ));
    post(g, &descs);
    Tso {
        v6,
        mss,
        seq0,
        id0,
        hdrlen,
        payload,
    }
}

/// Check the segments of a TSO packet on the wire independently (etherparse computes the
/// checksums); returns how many there were.
pub fn check_segments(t: &Tso, sent: &[Vec<u8>]) -> usize {
    let (v6, mss, hdrlen) = (t.v6, usize::from(t.mss), t.hdrlen);
    let n = t.payload.len().div_ceil(mss);
    assert_eq!(sent.len(), n, "segments");
    let mut joined = Vec::new();
    for (i, f) in sent.iter().enumerate() {
        let last = i + 1 == n;
        let want = if last {
            t.payload.len() - (n - 1) * mss
        } else {
            mss
        };
        assert_eq!(f.len(), hdrlen + want, "segment {i} length");
        let p = PacketHeaders::from_ethernet_slice(f).expect("parses");
        let Some(TransportHeader::Tcp(tcp)) = &p.transport else {
            panic!("segment {i}: no TCP")
        };
        let data = p.payload.slice();
        assert_eq!(data.len(), want);
        match &p.net {
            Some(NetHeaders::Ipv4(ip, _)) => {
                assert!(!v6);
                assert_eq!(
                    usize::from(ip.total_len),
                    f.len() - 14,
                    "segment {i} total length"
                );
                assert_eq!(ip.identification, t.id0.wrapping_add(i as u16));
                assert_eq!(
                    ip.header_checksum,
                    ip.calc_header_checksum(),
                    "segment {i} IP checksum"
                );
                assert_eq!(
                    tcp.checksum,
                    tcp.calc_checksum_ipv4(ip, data).unwrap(),
                    "segment {i} TCP checksum"
                );
            }
            Some(NetHeaders::Ipv6(ip, _)) => {
                assert!(v6);
                assert_eq!(usize::from(ip.payload_length), f.len() - 54);
                assert_eq!(
                    tcp.checksum,
                    tcp.calc_checksum_ipv6(ip, data).unwrap(),
                    "segment {i} TCP checksum"
                );
            }
            other => panic!("segment {i}: {other:?}"),
        }
        assert_eq!(tcp.sequence_number, t.seq0.wrapping_add((i * mss) as u32));
        assert_eq!((tcp.psh, tcp.fin), (last, last), "segment {i} flags");
        assert!(tcp.ack);
        joined.extend_from_slice(data);
    }
    assert_eq!(joined, t.payload, "payload intact and in order");
    n
}
