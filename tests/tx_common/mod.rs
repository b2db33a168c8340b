//! Transmit-test helpers: descriptor builders and packets laid out the way the Linux
//! e1000 driver lays them out.
#![allow(dead_code)]

use etherparse::{PacketBuilder, TcpHeader};

use crate::common::*;
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
