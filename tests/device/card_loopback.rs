//! Loopback inside the card: PHY loopback (PHY control bit 14) and MAC loopback
//! (RCTL.LBM) send what the guest transmits to its own receive ring and nothing to the
//! backend; while looping, frames from the backend are not delivered (counted). Linux's
//! loopback self-test (`ethtool -t`, e1000_loopback_test) is replayed as the driver runs
//! it.

use crate::support;

use nic_emu::device::regs::*;
use support::*;

const PHY_CTRL: u32 = 0x00;
const M88_PSCR: u32 = 0x10;

/// What e1000_integrated_phy_loopback does for an M88 PHY: MDI-X off, PHY reset with and
/// without autonegotiation, loopback at 1000 Mb/s full duplex, the MAC forced to the same,
/// the PHY receiver disabled through registers 29/30.
fn linux_phy_loopback(g: &mut FakeGuest) {
    g.mdic_write(M88_PSCR, 0x0808);
    g.mdic_write(PHY_CTRL, 0x9140);
    g.mdic_write(PHY_CTRL, 0x8140);
    g.mdic_write(PHY_CTRL, 0x4140);
    let ctrl = g.rd(CTRL) & !CTRL_SPEED_MASK;
    g.wr(
        CTRL,
        ctrl | CTRL_FRCSPD | CTRL_FRCDPX | CTRL_SPD_1000 | CTRL_FD | CTRL_ILOS,
    );
    for (r, v) in [(29, 0x001F), (30, 0x8FFC), (29, 0x001A), (30, 0x8FF0)] {
        g.mdic_write(r, v);
    }
}

/// e1000_loopback_cleanup for an M88 PHY: loopback off, PHY reset.
fn linux_phy_loopback_off(g: &mut FakeGuest) {
    let bmcr = g.mdic_read(PHY_CTRL);
    g.mdic_write(PHY_CTRL, (bmcr & !0x4000) | 0x8000);
}

/// The frame e1000_create_lbtest_frame builds for `size` bytes.
fn lbtest_frame(size: usize) -> Vec<u8> {
    let mut f = vec![0xFF; size];
    let half = size / 2;
    f[half..half + half - 1].fill(0xAA);
    f[half + 10] = 0xBE;
    f[half + 12] = 0xAF;
    f
}

fn is_lbtest_frame(f: &[u8], size: usize) -> bool {
    f.len() >= size && f[3] == 0xFF && f[size / 2 + 10] == 0xBE && f[size / 2 + 12] == 0xAF
}

fn looped_guest() -> (FakeGuest, TestWire) {
    let (mut g, wire) = FakeGuest::with_wire();
    g.linux_probe();
    g.linux_open(256, 256);
    g.rd(ICR);
    (g, wire)
}

#[test]
fn phy_loopback_sends_to_the_receive_ring_and_nothing_to_the_backend() {
    let (mut g, wire) = looped_guest();
    linux_phy_loopback(&mut g);
    let f = lbtest_frame(1024);
    for _ in 0..5 {
        g.send(&f);
    }
    g.advance_us(100);
    for i in 0..5 {
        let got = g.recv().unwrap_or_else(|| panic!("looped frame {i}"));
        assert!(is_lbtest_frame(&got, 1024), "frame {i}");
    }
    assert!(g.recv().is_none());
    assert!(wire.take_sent().is_empty(), "nothing reaches the backend");
    let m = g.bus.device().metrics();
    assert_eq!((m.tx_looped, m.tx_frames), (5, 0));
    // The statistics count both directions, as the card transmitted and received.
    assert_eq!(g.rd(GPTC), 5);
    assert_eq!(g.rd(GPRC), 5);
}

#[test]
fn frames_from_the_wire_are_lost_while_looping_and_flow_again_after() {
    let (mut g, wire) = looped_guest();
    linux_phy_loopback(&mut g);
    for i in 0..3u8 {
        wire.inject(&frame(MAC, PEER, 0x0800, 100, i));
    }
    g.advance_us(100);
    assert!(g.recv().is_none(), "the transceiver is off");
    assert_eq!(wire.pending(), 0, "taken from the backend, not left queued");
    let m = g.bus.device().metrics();
    assert_eq!(
        (m.rx_while_looping, m.rx_dropped),
        (3, 3),
        "drops, of one kind"
    );
    assert_eq!(g.bus.device().drops().rx_looping, 3, "with their reason");

    linux_phy_loopback_off(&mut g);
    // Back to normal: the wire works both ways (after the PHY reset's link window).
    g.advance_us(2_000_000);
    let f = frame(MAC, PEER, 0x0800, 100, 9);
    wire.inject(&f);
    g.advance_us(100);
    assert_eq!(g.recv().as_deref(), Some(&f[..]));
    g.send(&frame(PEER, MAC, 0x0800, 60, 1));
    assert_eq!(wire.take_sent().len(), 1);
}

#[test]
fn mac_loopback_rctl_lbm_loops_too() {
    let (mut g, wire) = looped_guest();
    let rctl = g.rd(RCTL);
    g.wr(RCTL, rctl | (1 << RCTL_LBM_SHIFT));
    let f = frame([0xFF; 6], MAC, 0x0806, 46, 3);
    g.send(&f);
    g.advance_us(100);
    assert_eq!(g.recv().as_deref(), Some(&f[..]));
    assert!(wire.take_sent().is_empty());
    wire.inject(&frame(MAC, PEER, 0x0800, 60, 0));
    g.advance_us(100);
    assert!(g.recv().is_none());
    g.wr(RCTL, rctl);
    g.send(&f);
    assert_eq!(wire.take_sent(), vec![f.clone()]);
}

#[test]
fn a_looped_frame_without_a_free_descriptor_is_missed_and_counted() {
    let (mut g, wire) = FakeGuest::with_wire();
    g.linux_probe();
    g.linux_open(8, 8);
    linux_phy_loopback(&mut g);
    // 7 free receive descriptors; 10 frames.
    for i in 0..10u8 {
        g.send(&frame([0xFF; 6], MAC, 0x0800, 100, i));
    }
    assert_eq!(g.rd(MPC), 3);
    assert_eq!(g.bus.device().metrics().tx_looped, 10);
    assert_eq!(g.bus.device().drops().rx_no_descriptors, 3);
    assert!(wire.take_sent().is_empty());
}

/// Linux's e1000_run_loopback_test after e1000_setup_desc_rings: rings of 256, 10 rounds
/// of 64 broadcast 1024-byte frames, each round checked in the receive buffers. Returns
/// 0 or the code the driver reports (13: a frame missing or wrong).
fn linux_loopback_test(g: &mut FakeGuest) -> u64 {
    const RING: u32 = 256;
    const SIZE: usize = 1024;
    g.linux_open(RING, RING);
    g.wr(TCTL, TCTL_EN | TCTL_PSP | (0x10 << 4) | (0x40 << 12));
    g.wr(RCTL, RCTL_EN | RCTL_BAM);
    linux_phy_loopback(g);
    let f = lbtest_frame(SIZE);
    let (mut k, mut l) = (0u32, 0u32);
    for _round in 0..10 {
        for _ in 0..64 {
            g.send(&f);
            k = (k + 1) % RING;
        }
        g.advance_us(200_000);
        let mut good = 0;
        while good < 64 {
            // The driver reads the buffer behind descriptor l, without looking at DD.
            let mut d = [0u8; 16];
            g.bus
                .ram()
                .read(RX_RING + u64::from(l) * 16, &mut d)
                .unwrap();
            let addr = u64::from_le_bytes(d[..8].try_into().unwrap());
            let mut buf = vec![0u8; SIZE];
            g.bus.ram().read(addr, &mut buf).unwrap();
            if !is_lbtest_frame(&buf, SIZE) {
                return 13;
            }
            // Give the descriptor back as the driver's ring bookkeeping does.
            let mut fresh = [0u8; 16];
            fresh[..8].copy_from_slice(&addr.to_le_bytes());
            g.bus
                .ram()
                .write(RX_RING + u64::from(l) * 16, &fresh)
                .unwrap();
            good += 1;
            l = (l + 1) % RING;
        }
        g.wr(RDT, (l + RING - 1) % RING);
    }
    let _ = k;
    0
}

#[test]
fn linux_loopback_self_test_passes_and_nothing_reaches_the_wire() {
    let (mut g, wire) = FakeGuest::with_wire();
    g.linux_probe();
    assert_eq!(linux_loopback_test(&mut g), 0);
    assert!(wire.take_sent().is_empty());
    assert_eq!(g.bus.device().metrics().tx_looped, 640);
}
