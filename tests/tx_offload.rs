//! The transmit engine as a driver sees it: legacy, context and data descriptors in
//! guest RAM, TDT writes, frames on the wire. Offload results are checked against
//! `etherparse`, which builds and verifies packets on its own.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::*;
use etherparse::{NetHeaders, PacketBuilder, PacketHeaders, TcpHeader, TransportHeader};
use nic_emu::device::regs::*;

/// Packet data the tests lay out for data descriptors (below RX_BUFS).
const DATA: u64 = 0x20_0000;

/// Extended descriptor command bits (DCMD / TUCMD).
const D_EOP: u8 = 0x01;
const D_IFCS: u8 = 0x02;
const D_TSE: u8 = 0x04;
const D_RS: u8 = 0x08;
const D_DEXT: u8 = 0x20;
const D_VLE: u8 = 0x40;
const T_TCP: u8 = 0x01;
const T_IP: u8 = 0x02;
const POPTS_IXSM: u8 = 0x01;
const POPTS_TXSM: u8 = 0x02;
const TXD_RPS: u8 = 0x10;

const SRC4: [u8; 4] = [10, 0, 0, 1];
const DST4: [u8; 4] = [10, 0, 0, 2];
const SRC6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const DST6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

fn opened(ring: u32) -> (FakeGuest, TestWire) {
    let (mut g, wire) = FakeGuest::with_wire();
    g.linux_probe();
    g.linux_open(ring, 8);
    g.rd(ICR);
    (g, wire)
}

fn legacy_desc(addr: u64, len: u16, cmd: u8, cso: u8, css: u8, special: u16) -> [u8; 16] {
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
fn context_desc(
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

fn data_desc(addr: u64, len: u32, dcmd: u8, popts: u8, special: u16) -> [u8; 16] {
    let mut d = [0u8; 16];
    d[..8].copy_from_slice(&addr.to_le_bytes());
    let dw = (len & 0xF_FFFF) | (1 << 20) | (u32::from(dcmd | D_DEXT) << 24);
    d[8..12].copy_from_slice(&dw.to_le_bytes());
    d[13] = popts;
    d[14..16].copy_from_slice(&special.to_le_bytes());
    d
}

/// Write descriptors at the tail and hand them to the device.
fn post(g: &mut FakeGuest, descs: &[[u8; 16]]) {
    for d in descs {
        g.write_raw_tx_desc(d);
    }
    g.wr(TDT, g.tx_tail);
}

/// One's complement sum of big-endian words, folded (the test's own implementation).
fn ones_sum(parts: &[&[u8]]) -> u16 {
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

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add((i >> 8) as u8) ^ seed)
        .collect()
}

fn tcp_header(seq: u32, fin: bool) -> TcpHeader {
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
fn tso_header(v6: bool, seq: u32, ip_id: u16) -> Vec<u8> {
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
fn data_chunks(addr: u64, len: usize, chunk: usize, dcmd: u8, popts: u8) -> Vec<[u8; 16]> {
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

/// Send a 64 KiB TCP payload with TSO and check every segment independently.
fn tso_64k(v6: bool, chunk: usize) {
    let (mut g, wire) = opened(4096); // 64 KiB of ring: up to TX_RING's neighbour
    let mss: u16 = 1448;
    let seq0 = 0xFFFF_F000u32; // wraps during the transfer
    let id0 = 0xFFF0u16;
    let hdr = tso_header(v6, seq0, id0);
    let payload = pattern(64 << 10, 0x5A);
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
    post(&mut g, &descs);

    let sent = wire.take_sent();
    let n = payload.len().div_ceil(usize::from(mss));
    assert_eq!(sent.len(), n, "segments");
    let mut joined = Vec::new();
    for (i, f) in sent.iter().enumerate() {
        let last = i + 1 == n;
        let want = if last {
            payload.len() - (n - 1) * usize::from(mss)
        } else {
            usize::from(mss)
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
                assert_eq!(ip.identification, id0.wrapping_add(i as u16));
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
        assert_eq!(
            tcp.sequence_number,
            seq0.wrapping_add((i * usize::from(mss)) as u32)
        );
        assert_eq!((tcp.psh, tcp.fin), (last, last), "segment {i} flags");
        assert!(tcp.ack);
        joined.extend_from_slice(data);
    }
    assert_eq!(joined, payload, "payload intact and in order");
    let s = g.bus.device().stats().clone();
    assert_eq!(s.peek(TSCTC), 1);
    assert_eq!(s.peek(TSCTFC), 0);
    assert_eq!(s.peek(GPTC), n as u64);
    let m = g.bus.device().metrics();
    assert_eq!(
        (m.tx_frames, m.tx_malformed, m.dma_errors),
        (n as u64, 0, 0)
    );
    assert_eq!(g.rd(TDH), g.tx_tail);
}

#[test]
fn tso_64k_tcp_ipv4() {
    tso_64k(false, 4096);
}

#[test]
fn tso_64k_tcp_ipv6_odd_chunks() {
    // Chunks that never line up with segment or header boundaries.
    tso_64k(true, 1000);
    tso_64k(true, 37);
}

#[test]
fn tso_udp_ipv4_makes_whole_datagrams() {
    let (mut g, wire) = opened(64);
    let mut hdr = Vec::new();
    PacketBuilder::ethernet2(MAC, PEER)
        .ipv4(SRC4, DST4, 64)
        .udp(5000, 6000)
        .write(&mut hdr, &[])
        .unwrap();
    hdr[24..26].copy_from_slice(&[0, 0]);
    let seed = ones_sum(&[&SRC4, &DST4, &[0, 17]]);
    hdr[40..42].copy_from_slice(&seed.to_be_bytes());
    let payload = pattern(3000, 3);
    g.bus.ram().write(DATA, &hdr).unwrap();
    g.bus.ram().write(DATA + 42, &payload).unwrap();
    let ctx = context_desc((14, 24, 33), (34, 40, 0), 3000, T_IP | D_TSE, 42, 1000);
    let mut descs = vec![ctx];
    descs.extend(data_chunks(
        DATA,
        42 + 3000,
        4096,
        D_TSE,
        POPTS_TXSM | POPTS_IXSM,
    ));
    post(&mut g, &descs);
    let sent = wire.take_sent();
    assert_eq!(sent.len(), 3);
    for (i, f) in sent.iter().enumerate() {
        let p = PacketHeaders::from_ethernet_slice(f).unwrap();
        let (Some(NetHeaders::Ipv4(ip, _)), Some(TransportHeader::Udp(udp))) =
            (&p.net, &p.transport)
        else {
            panic!("not UDP/IPv4")
        };
        let data = p.payload.slice();
        assert_eq!(data, &payload[i * 1000..(i + 1) * 1000]);
        assert_eq!(udp.length, 1008);
        assert_eq!(ip.total_len, 1028);
        assert_eq!(ip.header_checksum, ip.calc_header_checksum());
        assert_eq!(udp.checksum, udp.calc_checksum_ipv4(ip, data).unwrap());
    }
}

/// Build a TCP or UDP packet with etherparse (correct checksums), hand the device a copy
/// with the checksums as Linux leaves them for offload (IPv4 header checksum 0, L4
/// checksum = pseudo-header sum with length), and expect etherparse's bytes back.
fn csum_offload(v6: bool, udp: bool, vlan: bool) {
    let (mut g, wire) = opened(64);
    let payload = pattern(1000, 9);
    let b = PacketBuilder::ethernet2(MAC, PEER);
    let mut want = Vec::new();
    match (v6, udp) {
        (false, false) => b
            .ipv4(SRC4, DST4, 64)
            .tcp_header(tcp_header(1234, false))
            .write(&mut want, &payload),
        (false, true) => b.ipv4(SRC4, DST4, 64).udp(1, 2).write(&mut want, &payload),
        (true, false) => b
            .ipv6(SRC6, DST6, 64)
            .tcp_header(tcp_header(1234, false))
            .write(&mut want, &payload),
        (true, true) => b.ipv6(SRC6, DST6, 64).udp(1, 2).write(&mut want, &payload),
    }
    .unwrap();
    let l3 = 14usize;
    let l4 = if v6 { l3 + 40 } else { l3 + 20 };
    let cso = l4 + if udp { 6 } else { 16 };
    let l4_len = (want.len() - l4) as u16;
    let proto = if udp { 17 } else { 6 };
    let seed = if v6 {
        ones_sum(&[&SRC6, &DST6, &[0, proto], &l4_len.to_be_bytes()])
    } else {
        ones_sum(&[&SRC4, &DST4, &[0, proto], &l4_len.to_be_bytes()])
    };
    let mut given = want.clone();
    given[cso..cso + 2].copy_from_slice(&seed.to_be_bytes());
    let mut popts = POPTS_TXSM;
    if !v6 {
        given[24..26].copy_from_slice(&[0, 0]);
        popts |= POPTS_IXSM;
    }
    assert_ne!(given, want);
    g.bus.ram().write(DATA, &given).unwrap();
    let tucmd = if udp { 0 } else { T_TCP } | if v6 { 0 } else { T_IP };
    let ctx = context_desc((14, 24, 33), (l4 as u8, cso as u8, 0), 0, tucmd, 0, 0);
    let mut dcmd = D_IFCS;
    if vlan {
        g.set_bits(CTRL, CTRL_VME);
        dcmd |= D_VLE;
    }
    // Header and payload in separate descriptors, as a scatter-gather skb would be.
    let mut d1 = data_desc(DATA, l4 as u32, dcmd, popts, 0x0123);
    let mut d2 = data_desc(
        DATA + l4 as u64,
        (given.len() - l4) as u32,
        dcmd | D_EOP | D_RS,
        0,
        0x0123,
    );
    d1[11] &= !D_VLE; // VLE counts on the EOP descriptor
    d2[13] = 0; // POPTS counts on the first
    post(&mut g, &[ctx, d1, d2]);
    let sent = wire.take_sent();
    assert_eq!(sent.len(), 1);
    if vlan {
        let mut tagged = want[..12].to_vec();
        tagged.extend_from_slice(&[0x81, 0x00, 0x01, 0x23]);
        tagged.extend_from_slice(&want[12..]);
        assert_eq!(sent[0], tagged);
    } else {
        assert_eq!(sent[0], want, "v6 {v6} udp {udp}");
    }
    assert_eq!(g.tx_status(2) & 1, 1, "DD on the RS descriptor");
}

#[test]
fn checksum_offload_tcp_and_udp_over_ipv4_and_ipv6() {
    for v6 in [false, true] {
        for udp in [false, true] {
            csum_offload(v6, udp, false);
        }
    }
}

#[test]
fn data_descriptor_vlan_insertion() {
    csum_offload(false, false, true);
}

#[test]
fn legacy_checksum_insertion() {
    let (mut g, wire) = opened(16);
    let payload = pattern(333, 1);
    let mut want = Vec::new();
    PacketBuilder::ethernet2(MAC, PEER)
        .ipv4(SRC4, DST4, 64)
        .udp(7, 9)
        .write(&mut want, &payload)
        .unwrap();
    let l4_len = (want.len() - 34) as u16;
    let seed = ones_sum(&[&SRC4, &DST4, &[0, 17], &l4_len.to_be_bytes()]);
    let mut given = want.clone();
    given[40..42].copy_from_slice(&seed.to_be_bytes());
    // Two descriptors: CSS/CSO/IC count on the EOP one.
    g.bus.ram().write(DATA, &given).unwrap();
    let d1 = legacy_desc(DATA, 20, TXD_IFCS, 0, 0, 0);
    let d2 = legacy_desc(
        DATA + 20,
        (given.len() - 20) as u16,
        TXD_IFCS | TXD_IC | TXD_EOP | TXD_RS,
        40,
        34,
        0,
    );
    post(&mut g, &[d1, d2]);
    assert_eq!(wire.take_sent(), vec![want.clone()]);
    // Without IC the seed goes out untouched; CSO or CSS beyond the packet: ignored.
    let d = legacy_desc(DATA, given.len() as u16, TXD_EOP | TXD_RS, 40, 34, 0);
    post(&mut g, &[d]);
    assert_eq!(wire.take_sent(), vec![given.clone()]);
    let cso_out = legacy_desc(DATA, 200, TXD_EOP | TXD_IC, 250, 34, 0);
    let css_out = legacy_desc(DATA, 200, TXD_EOP | TXD_IC, 40, 240, 0);
    post(&mut g, &[cso_out, css_out]);
    let sent = wire.take_sent();
    assert_eq!(sent, vec![given[..200].to_vec(), given[..200].to_vec()]);
}

#[test]
fn legacy_vlan_insertion_needs_ctrl_vme() {
    let (mut g, wire) = opened(16);
    let f = frame(PEER, MAC, 0x0800, 100, 4);
    g.send_legacy(&[&f], TXD_VLE, 0xE00A);
    assert_eq!(wire.take_sent(), vec![f.clone()], "VME off: no tag");
    g.set_bits(CTRL, CTRL_VME);
    g.wr(VET, 0x88A8);
    g.send_legacy(&[&f[..10], &f[10..]], TXD_VLE, 0xE00A);
    let mut tagged = f[..12].to_vec();
    tagged.extend_from_slice(&[0x88, 0xA8, 0xE0, 0x0A]);
    tagged.extend_from_slice(&f[12..]);
    assert_eq!(wire.take_sent(), vec![tagged]);
}

#[test]
fn short_frames_padded_only_with_psp() {
    let (mut g, wire) = opened(16);
    let f = frame(PEER, MAC, 0x0806, 28, 0); // 42 bytes, an ARP
    g.send(&f);
    let sent = wire.take_sent();
    assert_eq!(sent[0].len(), 60);
    assert_eq!(&sent[0][..42], &f[..]);
    assert!(sent[0][42..].iter().all(|&b| b == 0));
    // Padding counts after the tag: 42 + 4 tagged bytes still pad to 60.
    g.set_bits(CTRL, CTRL_VME);
    g.send_legacy(&[&f], TXD_VLE, 5);
    assert_eq!(wire.take_sent()[0].len(), 60);
    let tctl = g.rd(TCTL);
    g.wr(TCTL, tctl & !TCTL_PSP);
    g.send(&f);
    assert_eq!(wire.take_sent(), vec![f]);
}

#[test]
fn frames_60_to_jumbo_byte_for_byte_with_stats() {
    let (mut g, wire) = opened(64);
    let lens = [
        60usize, 61, 64, 100, 127, 128, 255, 256, 511, 512, 1023, 1024, 1514, 9014, 16384,
    ];
    let mut octets = 0;
    for (i, &len) in lens.iter().enumerate() {
        let f = frame(
            if i == 3 { [0xFF; 6] } else { PEER },
            MAC,
            0x0800,
            len - 14,
            i as u8,
        );
        if len > 4096 {
            let parts: Vec<&[u8]> = f.chunks(4096).collect();
            g.send_legacy(&parts, 0, 0);
        } else {
            g.send(&f);
        }
        assert_eq!(wire.take_sent(), vec![f], "length {len}");
        octets += len as u64 + 4;
    }
    let n = lens.len() as u64;
    assert_eq!(g.rd(GPTC), n as u32);
    assert_eq!(g.rd(TPT), n as u32);
    assert_eq!(g.rd(GOTCL), octets as u32);
    assert_eq!(g.rd(GOTCH), 0);
    assert_eq!(g.rd(BPTC), 1);
    assert_eq!(g.rd(PTC64), 1); // 60 bytes + FCS
    assert_eq!(g.rd(PTC1522), 5); // 1023 bytes and up
    let m = g.bus.device().metrics();
    assert_eq!(m.tx_frames, n);
    assert_eq!(m.tx_bytes, octets - 4 * n);
    assert_eq!(m.tx_malformed, 0);
}

#[test]
fn write_back_only_where_rs_or_rps() {
    let (mut g, wire) = opened(16);
    let f = frame(PEER, MAC, 0x0800, 50, 0);
    g.bus.ram().write(DATA, &f).unwrap();
    let mut descs = [
        legacy_desc(DATA, 64, TXD_EOP | TXD_RS, 0, 0, 0),
        legacy_desc(DATA, 64, TXD_EOP, 0, 0, 0),
        legacy_desc(DATA, 64, TXD_EOP | TXD_RPS, 0, 0, 0),
        legacy_desc(DATA, 64, TXD_EOP, 0, 0, 0),
    ];
    descs[1][12] = 0x0E; // stale status bits the device must not touch without RS
    post(&mut g, &descs);
    assert_eq!(wire.take_sent().len(), 4);
    let mut ring = [0u8; 64];
    g.bus.ram().read(TX_RING, &mut ring).unwrap();
    for (i, d) in descs.iter().enumerate() {
        let mut expect = *d;
        if i == 0 || i == 2 {
            expect[12] = 0x01;
        }
        assert_eq!(&ring[i * 16..i * 16 + 16], &expect, "descriptor {i}");
    }
    assert_eq!(g.rd(TDH), 4);
}

#[test]
fn txdw_and_txqe_causes() {
    let (mut g, _wire) = opened(16);
    let f = frame(PEER, MAC, 0x0800, 50, 0);
    g.send_legacy(&[&f], 0, 0); // RS, no IDE
    assert_eq!(g.rd(ICR) & (ICR_TXDW | ICR_TXQE), ICR_TXDW | ICR_TXQE);
    // No RS: no TXDW, but the queue still drained.
    g.bus.ram().write(DATA, &f).unwrap();
    post(&mut g, &[legacy_desc(DATA, 64, TXD_EOP, 0, 0, 0)]);
    assert_eq!(g.rd(ICR) & (ICR_TXDW | ICR_TXQE), ICR_TXQE);
    // IDE: TXDW after TIDV (8 x 1.024 us).
    post(
        &mut g,
        &[legacy_desc(DATA, 64, TXD_EOP | TXD_RS | TXD_IDE, 0, 0, 0)],
    );
    assert_eq!(g.rd(ICR) & ICR_TXDW, 0, "delayed");
    g.advance_us(9);
    assert_eq!(g.rd(ICR) & ICR_TXDW, ICR_TXDW);
    // A batch with one RS descriptor without IDE raises TXDW at once.
    post(
        &mut g,
        &[
            legacy_desc(DATA, 64, TXD_EOP | TXD_RS | TXD_IDE, 0, 0, 0),
            legacy_desc(DATA, 64, TXD_EOP | TXD_RS, 0, 0, 0),
        ],
    );
    assert_eq!(g.rd(ICR) & ICR_TXDW, ICR_TXDW);
    // Nothing to do: no cause.
    g.wr(TDT, g.tx_tail);
    assert_eq!(g.rd(ICR) & (ICR_TXDW | ICR_TXQE), 0);
}

#[test]
fn loopback_frames_come_straight_back() {
    let mut g = FakeGuest::new(Box::new(nic_emu::backend::Loopback::new()));
    g.linux_probe();
    g.linux_open(16, 16);
    let f = frame(MAC, PEER, 0x0800, 200, 7);
    g.send(&f);
    assert_eq!(g.recv(), Some(f), "received without a poll");
}

// ---------------------------------------------------------------- hostile guests

/// Run `f` on its own thread; fail if it panics or takes longer than `secs`.
fn watchdog<F: FnOnce() + Send + 'static>(secs: u64, f: F) {
    let (tx, rx) = mpsc::channel();
    let h = std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(()) => h.join().expect("no panic"),
        Err(mpsc::RecvTimeoutError::Disconnected) => h.join().expect("the case panicked"),
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("hang: still running after {secs} s"),
    }
}

const RAM: usize = 16 << 20;

fn snapshot(g: &FakeGuest) -> Vec<u8> {
    let mut v = vec![0u8; RAM];
    g.bus.ram().read(0, &mut v).unwrap();
    v
}

/// Post descriptors like [`post`], checking that the device changes nothing in guest
/// memory but status bytes of the ring.
fn post_checked(g: &mut FakeGuest, descs: &[[u8; 16]], ring: u32) {
    for d in descs {
        g.write_raw_tx_desc(d);
    }
    let before = snapshot(g);
    g.wr(TDT, g.tx_tail);
    only_status_bytes_changed(g, &before, ring);
}

/// Every byte that changed since `before` is a status byte of a descriptor in the ring.
fn only_status_bytes_changed(g: &FakeGuest, before: &[u8], ring: u32) {
    let after = snapshot(g);
    for (a, (x, y)) in before.iter().zip(&after).enumerate() {
        if x != y {
            let a = a as u64;
            let in_ring = a >= TX_RING && a < TX_RING + u64::from(ring) * 16;
            assert!(
                in_ring && (a - TX_RING) % 16 == 12,
                "stray write at {a:#x}: {x:#x} -> {y:#x}"
            );
        }
    }
}

/// A guest whose RAM outside what it writes holds a guard pattern.
fn hostile(ring: u32) -> (FakeGuest, TestWire) {
    let (g, wire) = opened(ring);
    let chunk = vec![0xA5u8; 1 << 20];
    for i in 0..(RAM >> 20) {
        g.bus.ram().write((i as u64) << 20, &chunk).unwrap();
    }
    (g, wire)
}

/// A well-formed TSO-ready IPv4 header of 54 bytes and 64 KiB of payload at DATA.
fn lay_out_tso(g: &FakeGuest) -> usize {
    let hdr = tso_header(false, 1, 1);
    g.bus.ram().write(DATA, &hdr).unwrap();
    g.bus.ram().write(DATA + 54, &pattern(64 << 10, 2)).unwrap();
    54 + (64 << 10)
}

#[test]
fn hostile_tso_contexts_do_bounded_work() {
    watchdog(20, || {
        let (mut g, wire) = hostile(1024);
        let total = lay_out_tso(&g);
        let full = |hdrlen: u8, mss: u16, paylen: u32| {
            let mut d = vec![context_desc(
                (14, 24, 33),
                (34, 50, 0),
                paylen,
                T_TCP | T_IP | D_TSE,
                hdrlen,
                mss,
            )];
            d.extend(data_chunks(
                DATA,
                total,
                4096,
                D_TSE,
                POPTS_TXSM | POPTS_IXSM,
            ));
            d
        };
        // CVE-2015-6815: HDRLEN 0 and MSS 0; then MSS 1; HDRLEN past the TCP header's
        // fields only; HDRLEN larger than the packet.
        let cases: Vec<Vec<[u8; 16]>> = vec![
            full(0, 0, 64 << 10),
            full(54, 0, 64 << 10),
            full(54, 1, 64 << 10),
            full(0, 1448, 64 << 10),
            full(30, 1448, 64 << 10),
            {
                let mut d = vec![context_desc(
                    (14, 24, 33),
                    (34, 50, 0),
                    10,
                    T_TCP | T_IP | D_TSE,
                    200,
                    1448,
                )];
                d.push(data_desc(DATA, 100, D_TSE | D_EOP | D_RS, POPTS_TXSM, 0));
                d
            },
            // PAYLEN smaller than the data the descriptors bring.
            full(54, 1448, 3000),
            // HDRLEN 255 with an MSS that would overflow a jumbo frame.
            full(255, 16200, 64 << 10),
        ];
        for (i, c) in cases.iter().enumerate() {
            let malformed = g.bus.device().metrics().tx_malformed;
            post_checked(&mut g, c, 1024);
            assert_eq!(g.rd(TDH), g.tx_tail, "case {i}: ring consumed");
            assert!(
                g.bus.device().metrics().tx_malformed > malformed,
                "case {i} counted"
            );
        }
        let s = g.bus.device().stats().clone();
        assert_eq!(s.peek(TSCTFC), cases.len() as u64);
        assert_eq!(s.peek(TSCTC), 0);
        // PAYLEN 3000 sent its 3 segments before failing; nothing else went out.
        let sent = wire.take_sent();
        assert!(sent.len() <= 3, "{}", sent.len());
        // The engine still works afterwards.
        let f = frame(PEER, MAC, 0x0800, 100, 1);
        g.send(&f);
        assert_eq!(wire.take_sent(), vec![f]);
    });
}

#[test]
fn data_descriptor_after_legacy_is_dropped() {
    // CVE-2021-20257: a data descriptor continuing a legacy packet, big enough to be a
    // segment (size >= hdr_len + mss).
    watchdog(10, || {
        let (mut g, wire) = hostile(64);
        let total = lay_out_tso(&g);
        let ctx = context_desc(
            (14, 24, 33),
            (34, 50, 0),
            64 << 10,
            T_TCP | T_IP | D_TSE,
            54,
            1448,
        );
        let leg = legacy_desc(DATA, 54, TXD_IFCS, 0, 0, 0);
        let dat = data_desc(
            DATA + 54,
            (total - 54) as u32,
            D_TSE | D_EOP | D_RS,
            POPTS_TXSM,
            0,
        );
        post_checked(&mut g, &[ctx, leg, dat, leg, dat], 64);
        assert!(wire.take_sent().is_empty());
        assert_eq!(g.bus.device().metrics().tx_malformed, 2);
        assert_eq!(g.rd(TDH), 5);
    });
}

#[test]
fn oversize_and_out_of_ram_packets_are_dropped_and_counted() {
    watchdog(10, || {
        let (mut g, wire) = hostile(64);
        g.bus.ram().write(DATA, &pattern(1 << 20, 0)).unwrap();
        // 64 KiB + 1 without TSO, in legacy and data descriptors.
        let mut d = Vec::new();
        for _ in 0..16 {
            d.push(legacy_desc(DATA, 4096, TXD_IFCS, 0, 0, 0));
        }
        d.push(legacy_desc(DATA, 1, TXD_EOP | TXD_RS, 0, 0, 0));
        d.push(data_desc(DATA, 0xF_FFFF, D_EOP | D_RS, 0, 0));
        // Buffers outside RAM, on the device's BAR, wrapping the address space.
        for a in [RAM as u64 - 10, 0xFEBC_0000, u64::MAX - 5, 1 << 40] {
            d.push(legacy_desc(a, 64, TXD_EOP | TXD_RS, 0, 0, 0));
        }
        // A zero-length packet.
        d.push(legacy_desc(DATA, 0, TXD_EOP | TXD_RS, 0, 0, 0));
        post_checked(&mut g, &d, 64);
        assert!(wire.take_sent().is_empty());
        let m = g.bus.device().metrics();
        assert_eq!(m.tx_malformed, 7, "{m:?}");
        assert!(m.dma_errors >= 4);
        assert_eq!(g.rd(TDH), g.tx_tail);
        let f = frame(PEER, MAC, 0x0800, 100, 1);
        g.send(&f);
        assert_eq!(wire.take_sent(), vec![f]);
    });
}

#[test]
fn inconsistent_rings_stop_without_looping() {
    watchdog(10, || {
        let (mut g, wire) = hostile(8);
        let before = snapshot(&g);
        for (tdlen, tdh, tdt) in [
            (0, 0, 5),
            (128, 9, 3),
            (128, 3, 8),
            (128, 3, 0xFFFF),
            (0xFFFF_FFFF, 0xFFFF, 0xFFFE),
        ] {
            g.wr(TDLEN, tdlen);
            g.wr(TDH, tdh);
            g.wr(TDT, tdt);
            assert_eq!(g.rd(TDH), tdh & 0xFFFF, "head not moved");
        }
        assert!(wire.take_sent().is_empty());
        assert_eq!(g.bus.device().metrics().tx_malformed, 4);
        // Ring outside RAM: descriptors unreadable, consumed, nothing written.
        g.wr(TDLEN, 8 * 16);
        g.wr(TDBAL, 0xFFFF_FF00);
        g.wr(TDH, 0);
        g.wr(TDT, 7);
        assert_eq!(g.rd(TDH), 7);
        only_status_bytes_changed(&g, &before, 8);
    });
}

#[test]
fn random_descriptors_never_panic_or_write_stray() {
    watchdog(60, || {
        let (mut g, _wire) = hostile(256);
        g.bus.ram().write(DATA, &pattern(256 << 10, 0)).unwrap();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..40 {
            let mut d = Vec::new();
            for _ in 0..200 {
                let r = next();
                let mut desc = [0u8; 16];
                desc[8..16].copy_from_slice(&next().to_le_bytes());
                // Mostly addresses inside the data area, sometimes anywhere.
                let addr = if r & 7 == 0 {
                    next()
                } else {
                    DATA + (r >> 8) % (200 << 10)
                };
                desc[..8].copy_from_slice(&addr.to_le_bytes());
                // Keep most lengths modest so the run stays short.
                if r & 0x30 != 0 {
                    desc[9] &= 0x3F;
                    desc[10] &= 0xF0;
                }
                if r & 0x100 != 0 {
                    desc[11] |= D_DEXT;
                    desc[10] = (desc[10] & 0x0F) | if r & 0x200 != 0 { 0x10 } else { 0 };
                }
                d.push(desc);
            }
            post_checked(&mut g, &d, 256);
            assert_eq!(g.rd(TDH), g.tx_tail);
            if round % 10 == 9 {
                g.set_bits(CTRL, CTRL_VME);
            }
        }
        // The mix both sent frames and refused packets.
        let m = g.bus.device().metrics();
        assert!(m.tx_frames > 0 && m.tx_malformed > 0, "{m:?}");
    });
}

#[test]
fn tx_waits_for_enable_and_bus_master() {
    let (mut g, wire) = opened(16);
    let tctl = g.rd(TCTL);
    g.wr(TCTL, tctl & !TCTL_EN);
    let f = frame(PEER, MAC, 0x0800, 100, 1);
    g.send(&f);
    assert!(wire.take_sent().is_empty());
    assert_eq!(g.rd(TDH), 0);
    g.bus.config_write16(4, 0x3); // bus master off
    g.wr(TCTL, tctl);
    assert!(wire.take_sent().is_empty());
    g.enable_bus_master();
    assert_eq!(wire.take_sent(), vec![f]);
    assert_eq!(g.rd(TDH), 1);
    assert_eq!(g.bus.device().metrics().dma_errors, 0);
}
