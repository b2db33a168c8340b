//! The transmit engine as a driver sees it: legacy, context and data descriptors in
//! guest RAM, TDT writes, frames on the wire. Offload results are checked against
//! `etherparse`, which builds and verifies packets on its own.

use crate::support;
use crate::support::tx;

use etherparse::{NetHeaders, PacketBuilder, PacketHeaders, TransportHeader};
use nic_emu::device::regs::*;
use support::*;
use tx::*;

/// Send a 64 KiB TCP payload with TSO and check every segment independently.
fn tso_64k(v6: bool, chunk: usize, mss: u16) {
    let (mut g, wire) = opened(4096); // 64 KiB of ring: up to TX_RING's neighbour
    let t = post_tso_64k(&mut g, v6, chunk, mss);
    let sent = wire.take_sent();
    let n = check_segments(&t, &sent);
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
    tso_64k(false, 4096, 1448);
}

#[test]
fn tso_64k_tcp_ipv6_odd_chunks() {
    // Chunks that never line up with segment or header boundaries.
    tso_64k(true, 1000, 1440);
    tso_64k(true, 37, 1440);
}

#[test]
fn tso_smallest_accepted_mss() {
    // 4096 segments of 16 bytes: bounded, and still exact.
    tso_64k(false, 4096, nic_emu::device::offload::MIN_TSO_MSS);
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
