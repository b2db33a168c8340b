//! The receive path as a driver sees it: filters, buffer sizes, multi-descriptor and
//! jumbo frames, VLAN filtering and stripping, padding, backpressure, checksum offload.

use crate::support;

use nic_emu::device::filter::mta_index;
use nic_emu::device::regs::*;
use support::*;

fn opened(rx: u32) -> (FakeGuest, TestWire) {
    let (mut g, wire) = FakeGuest::with_wire();
    g.linux_probe();
    g.linux_open(8, rx);
    g.rd(ICR);
    (g, wire)
}

/// Inject `f`, poll, and say whether the guest received it (byte for byte).
fn delivered(g: &mut FakeGuest, wire: &TestWire, f: &[u8]) -> bool {
    wire.inject(f);
    g.bus.poll();
    match g.recv() {
        Some(got) => {
            assert_eq!(&got[..f.len()], f);
            true
        }
        None => false,
    }
}

#[test]
fn unicast_match_and_mismatch_and_every_ra_slot() {
    let (mut g, wire) = opened(16);
    assert!(delivered(&mut g, &wire, &frame(MAC, PEER, 0x0800, 50, 1)));
    let other = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];
    assert!(!delivered(
        &mut g,
        &wire,
        &frame(other, PEER, 0x0800, 50, 1)
    ));
    let filtered = g.bus.device().metrics().rx_filtered;
    assert_eq!(filtered, 1);
    for slot in 1..16u32 {
        let addr = [0x02, 0x00, 0x00, 0x00, 0x10, slot as u8];
        assert!(!delivered(&mut g, &wire, &frame(addr, PEER, 0x0800, 50, 2)));
        g.wr(
            ral(slot),
            u32::from_le_bytes([addr[0], addr[1], addr[2], addr[3]]),
        );
        g.wr(
            rah(slot),
            u32::from(u16::from_le_bytes([addr[4], addr[5]])) | RAH_AV,
        );
        assert!(
            delivered(&mut g, &wire, &frame(addr, PEER, 0x0800, 50, 2)),
            "RA[{slot}]"
        );
        // Without AV the entry is ignored.
        g.wr(rah(slot), u32::from(u16::from_le_bytes([addr[4], addr[5]])));
        assert!(
            !delivered(&mut g, &wire, &frame(addr, PEER, 0x0800, 50, 2)),
            "RA[{slot}] without AV"
        );
    }
}

#[test]
fn multicast_through_mta_for_each_mo_setting() {
    let (mut g, wire) = opened(16);
    let group = [0x01, 0x00, 0x5E, 0x12, 0x34, 0x56];
    for mo in 0..4u32 {
        let rctl = g.rd(RCTL) & !RCTL_MO_MASK;
        g.wr(RCTL, rctl | (mo << RCTL_MO_SHIFT));
        for i in 0..MTA_WORDS {
            g.wr(MTA + 4 * i, 0);
        }
        assert!(
            !delivered(&mut g, &wire, &frame(group, PEER, 0x0800, 50, 3)),
            "MO={mo} empty MTA"
        );
        let bit = mta_index(&group, mo);
        // The hash is what the datasheet gives: bits of the last two octets.
        let v = (u32::from(group[5]) << 8) | u32::from(group[4]);
        assert_eq!(bit, (v >> [4, 3, 2, 0][mo as usize]) & 0xFFF);
        g.wr(MTA + 4 * (bit >> 5), 1 << (bit & 31));
        assert!(
            delivered(&mut g, &wire, &frame(group, PEER, 0x0800, 50, 3)),
            "MO={mo}"
        );
        // A group hashing elsewhere is still rejected.
        let other = [0x01, 0x00, 0x5E, 0x12, 0x35, 0x57];
        assert_ne!(mta_index(&other, mo), bit);
        assert!(!delivered(
            &mut g,
            &wire,
            &frame(other, PEER, 0x0800, 50, 3)
        ));
    }
    assert_eq!(g.rd(MPRC), 4);
}

#[test]
fn promiscuous_and_broadcast_modes() {
    let (mut g, wire) = opened(16);
    let stranger = [0x02, 0x99, 0x99, 0x99, 0x99, 0x99];
    let group = [0x01, 0x00, 0x5E, 0x7F, 0x00, 0x01];
    let bcast = [0xFF; 6];
    assert!(
        delivered(&mut g, &wire, &frame(bcast, PEER, 0x0806, 50, 4)),
        "BAM on"
    );
    let rctl = g.rd(RCTL);
    g.wr(RCTL, rctl & !RCTL_BAM);
    assert!(
        !delivered(&mut g, &wire, &frame(bcast, PEER, 0x0806, 50, 4)),
        "BAM off"
    );
    assert!(!delivered(
        &mut g,
        &wire,
        &frame(stranger, PEER, 0x0800, 50, 4)
    ));
    g.set_bits(RCTL, RCTL_UPE);
    assert!(
        delivered(&mut g, &wire, &frame(stranger, PEER, 0x0800, 50, 4)),
        "UPE"
    );
    assert!(
        !delivered(&mut g, &wire, &frame(group, PEER, 0x0800, 50, 4)),
        "UPE is unicast only"
    );
    g.set_bits(RCTL, RCTL_MPE);
    assert!(
        delivered(&mut g, &wire, &frame(group, PEER, 0x0800, 50, 4)),
        "MPE"
    );
}

fn vlan_frame(dst: [u8; 6], tci: u16, payload: usize) -> Vec<u8> {
    let mut f = frame(dst, PEER, 0x8100, payload + 4, 5);
    f[14..16].copy_from_slice(&tci.to_be_bytes());
    f[16..18].copy_from_slice(&0x0800u16.to_be_bytes());
    f
}

#[test]
fn vlan_filter_table() {
    let (mut g, wire) = opened(16);
    let f10 = vlan_frame(MAC, 10, 60);
    let f11 = vlan_frame(MAC, 0x2000 | 11, 60); // priority bits do not matter
    assert!(
        delivered(&mut g, &wire, &f10),
        "VFE off: tagged frames pass"
    );
    g.set_bits(RCTL, RCTL_VFE);
    assert!(!delivered(&mut g, &wire, &f10));
    g.wr(VFTA, 1 << 10);
    assert!(delivered(&mut g, &wire, &f10));
    assert!(!delivered(&mut g, &wire, &f11));
    g.wr(VFTA, (1 << 10) | (1 << 11));
    assert!(delivered(&mut g, &wire, &f11));
    // Untagged frames are not subject to the VLAN filter.
    assert!(delivered(&mut g, &wire, &frame(MAC, PEER, 0x0800, 60, 1)));
}

#[test]
fn vlan_strip_with_ctrl_vme() {
    let (mut g, wire) = opened(16);
    g.set_bits(CTRL, CTRL_VME);
    let f = vlan_frame(MAC, 0x6000 | 42, 100);
    wire.inject(&f);
    g.bus.poll();
    let (got, status, _, special) = g.recv_full().expect("frame");
    assert_ne!(status & RXD_VP, 0);
    assert_eq!(special, 0x6000 | 42);
    let mut untagged = f[..12].to_vec();
    untagged.extend_from_slice(&f[16..]);
    assert_eq!(&got[..got.len() - 4], &untagged[..]);
}

#[test]
fn short_frames_are_padded_and_fcs_counted() {
    let (mut g, wire) = opened(16);
    let f = frame(MAC, PEER, 0x0800, 10, 6); // 24 bytes
    wire.inject(&f);
    g.bus.poll();
    let (got, ..) = g.recv_full().unwrap();
    assert_eq!(
        got.len(),
        64,
        "padded to 60, plus 4 FCS bytes with SECRC off"
    );
    assert_eq!(&got[..24], &f[..]);
    assert!(got[24..60].iter().all(|&b| b == 0));
}

#[test]
fn every_buffer_size_and_frames_over_several_descriptors() {
    for (bsex, bsize, size) in [
        (0, 0, 2048),
        (0, 1, 1024),
        (0, 2, 512),
        (0, 3, 256),
        (1, 1, 16384),
        (1, 2, 8192),
        (1, 3, 4096),
    ] {
        let (mut g, wire) = opened(64);
        let mut rctl = g.rd(RCTL) & !(RCTL_BSIZE_MASK | RCTL_BSEX);
        rctl |= (bsize << RCTL_BSIZE_SHIFT) | if bsex == 1 { RCTL_BSEX } else { 0 };
        g.wr(RCTL, rctl | RCTL_LPE);
        for len in [60usize, 255, 256, 1514, 4000, 9000] {
            let f = frame(MAC, PEER, 0x0800, len - 14, len as u8);
            wire.inject(&f);
            g.bus.poll();
            let first = g.rx_next;
            let (got, ..) = g
                .recv_full()
                .unwrap_or_else(|| panic!("bsize {size} len {len}"));
            assert_eq!(&got[..len], &f[..], "bsize {size} len {len}");
            let used = (g.rx_next + 64 - first) % 64;
            assert_eq!(
                used as usize,
                (len + 4).div_ceil(size),
                "descriptors for {len} at {size}"
            );
        }
    }
}

#[test]
fn jumbo_frames_need_lpe_and_oversize_is_counted() {
    let (mut g, wire) = opened(64);
    let jumbo = frame(MAC, PEER, 0x0800, 9000 - 14, 7);
    assert!(!delivered(&mut g, &wire, &jumbo), "no LPE: dropped");
    assert_eq!(g.rd(ROC), 1, "receive oversize counted");
    let max_std = frame(MAC, PEER, 0x0800, 1500, 7);
    assert!(delivered(&mut g, &wire, &max_std));
    let one_more = frame(MAC, PEER, 0x0800, 1501, 7);
    assert!(!delivered(&mut g, &wire, &one_more));
    g.set_bits(RCTL, RCTL_LPE);
    assert!(delivered(&mut g, &wire, &jumbo));
    let biggest = frame(MAC, PEER, 0x0800, MAX_JUMBO_FRAME - 14, 8);
    assert!(delivered(&mut g, &wire, &biggest));
}

#[test]
fn full_ring_applies_backpressure_without_dropping() {
    let (mut g, wire) = opened(8); // 7 usable descriptors
    for i in 0..20u8 {
        wire.inject(&frame(MAC, PEER, 0x0800, 100, i));
    }
    g.bus.poll();
    assert_eq!(
        wire.pending(),
        20 - 7,
        "7 delivered, the rest wait in the backend"
    );
    assert!(
        !g.bus.device().rx_frame_held(),
        "a full ring takes nothing from the backend"
    );
    let mut seen = Vec::new();
    for _ in 0..100 {
        match g.recv() {
            Some(f) => seen.push(f[14]),
            None => {
                g.bus.poll();
                if g.bus.device().metrics().rx_frames == 20 && g.recv_full().is_none() {
                    break;
                }
            }
        }
    }
    let expected: Vec<u8> = (0..20u8).collect();
    assert_eq!(seen, expected, "every frame, in order, none lost");
    assert_eq!(g.rd(MPC), 0);
}

#[test]
fn multi_descriptor_frame_waits_for_enough_descriptors() {
    let (mut g, wire) = opened(8);
    let rctl = g.rd(RCTL);
    g.wr(RCTL, (rctl & !RCTL_BSIZE_MASK) | (2 << RCTL_BSIZE_SHIFT)); // 512 B buffers
    for i in 0..5u8 {
        wire.inject(&frame(MAC, PEER, 0x0800, 100, i));
    }
    let big = frame(MAC, PEER, 0x0800, 1400, 9); // needs 3 buffers
    wire.inject(&big);
    g.bus.poll();
    assert!(g.bus.device().rx_frame_held(), "2 free, 3 needed: held");
    assert_eq!(g.rd(RNBC), 1, "no-buffer event counted once");
    for _ in 0..5 {
        assert!(g.recv().is_some());
    }
    g.bus.poll();
    assert_eq!(g.recv().as_deref(), Some(&big[..]));
    assert_eq!(g.rd(MPC), 0, "nothing dropped");
}

#[test]
fn rxdmt0_when_free_descriptors_fall_to_threshold() {
    let (mut g, wire) = opened(16); // RDMTS half: threshold 8 free
    for i in 0..6u8 {
        wire.inject(&frame(MAC, PEER, 0x0800, 100, i));
    }
    g.bus.poll();
    assert_eq!(g.rd(ICR) & ICR_RXDMT0, 0, "15 - 6 = 9 free");
    wire.inject(&frame(MAC, PEER, 0x0800, 100, 7));
    g.bus.poll();
    assert_ne!(g.rd(ICR) & ICR_RXDMT0, 0, "8 free: at the threshold");
}

#[test]
fn frame_that_can_never_fit_is_dropped_and_counted() {
    let (mut g, wire) = opened(8); // RDLEN is a multiple of 128: 8 is the smallest ring
    let rctl = g.rd(RCTL);
    g.wr(
        RCTL,
        (rctl & !RCTL_BSIZE_MASK) | (3 << RCTL_BSIZE_SHIFT) | RCTL_LPE,
    ); // 256 B
    let big = frame(MAC, PEER, 0x0800, 2000, 1);
    wire.inject(&big);
    let small = frame(MAC, PEER, 0x0800, 100, 2);
    wire.inject(&small);
    g.bus.poll();
    assert_eq!(g.rd(MPC), 1);
    assert_ne!(g.rd(ICR) & ICR_RXO, 0);
    assert_eq!(
        g.recv().as_deref(),
        Some(&small[..]),
        "the ring keeps working"
    );
}

fn udp4(payload: &[u8], corrupt: bool) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2(PEER, MAC)
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(1234, 5678);
    let mut out = Vec::new();
    b.write(&mut out, payload).unwrap();
    if corrupt {
        let n = out.len();
        out[n - 1] ^= 0xFF;
    }
    out
}

fn tcp6(payload: &[u8]) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2(PEER, MAC)
        .ipv6([0xfe; 16], [0xfd; 16], 64)
        .tcp(80, 443, 1000, 65535);
    let mut out = Vec::new();
    b.write(&mut out, payload).unwrap();
    out
}

#[test]
fn receive_checksum_offload_reports_good_and_bad() {
    let (mut g, wire) = opened(16);
    g.wr(RXCSUM, RXCSUM_TUOFLD | RXCSUM_IPOFLD);
    wire.inject(&udp4(b"hello checksum", false));
    wire.inject(&udp4(b"hello checksum", true));
    wire.inject(&tcp6(&[7u8; 300]));
    wire.inject(&frame(MAC, PEER, 0x0806, 46, 1));
    g.bus.poll();
    let (_, st, er, _) = g.recv_full().unwrap();
    assert_eq!(st & (RXD_IPCS | RXD_TCPCS), RXD_IPCS | RXD_TCPCS);
    assert_eq!(er, 0);
    let (_, st, er, _) = g.recv_full().unwrap();
    assert_ne!(st & RXD_TCPCS, 0);
    assert_eq!(er, 0x20, "TCPE on the corrupted datagram, IP header fine");
    let (_, st, er, _) = g.recv_full().unwrap();
    assert_ne!(st & RXD_TCPCS, 0, "IPv6 TCP verified");
    assert_eq!(er, 0);
    let (_, st, _, _) = g.recv_full().unwrap();
    assert_ne!(st & RXD_IXSM, 0, "ARP: nothing to check");
    g.wr(RXCSUM, 0);
    wire.inject(&udp4(b"x", false));
    g.bus.poll();
    let (_, st, _, _) = g.recv_full().unwrap();
    assert_ne!(st & RXD_IXSM, 0, "offload off: ignore-checksum indication");
}
