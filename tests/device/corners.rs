//! The smaller corners of the 8254x, each as a driver meets it on the fake bus: the link
//! window after autonegotiation restart, PHY reset and PHY power-down (with LSC at both
//! ends), forced speed and duplex in STATUS and the PHY, TXD_LOW and SRPD, the
//! diagnostic FIFO registers and packet buffer memory, RDT equal to the ring length (not
//! an index of the ring: the card takes no frame).

use crate::support;

use std::time::Duration;

use nic_emu::backend::Loopback;
use nic_emu::device::regs::*;
use nic_emu::{DeviceConfig, MacAddress};
use support::*;

const BMCR: u32 = 0;
const BMSR: u32 = 1;
const PSSR: u32 = 0x11;
const BMSR_LINK: u16 = 1 << 2;
const BMSR_ANEG_COMPLETE: u16 = 1 << 5;

/// A guest on a card whose PHY takes `ms` to negotiate.
fn guest_with_delay(ms: u64) -> (FakeGuest, TestWire) {
    let wire = TestWire::default();
    let g = FakeGuest::with_device(
        Box::new(wire.clone()),
        DeviceConfig {
            mac: MacAddress::new(MAC),
            autoneg_delay: Duration::from_millis(ms),
            ..DeviceConfig::default()
        },
    );
    (g, wire)
}

/// Probe, open, wait out the probe's autonegotiation, clear ICR.
fn running(ms: u64) -> (FakeGuest, TestWire) {
    let (mut g, wire) = guest_with_delay(ms);
    g.linux_probe();
    g.linux_open(16, 16);
    g.advance_us(ms * 1000 + 1);
    g.rd(ICR);
    assert_ne!(g.rd(STATUS) & STATUS_LU, 0);
    (g, wire)
}

fn lu(g: &mut FakeGuest) -> bool {
    g.rd(STATUS) & STATUS_LU != 0
}

#[test]
fn autonegotiation_restart_takes_the_link_down_for_the_window_with_lsc_both_ways() {
    let (mut g, wire) = running(500);
    let bmcr = g.mdic_read(BMCR);
    g.mdic_write(BMCR, bmcr | 0x0200);
    assert!(!lu(&mut g));
    assert_eq!(g.mdic_read(BMSR) & BMSR_LINK, 0);
    assert_ne!(g.rd(ICR) & ICR_LSC, 0, "LSC when the link drops");
    // Frames wait while the link is down (the backend keeps them).
    wire.inject(&frame(MAC, PEER, 0x0800, 60, 1));
    g.advance_us(499_000);
    assert!(!lu(&mut g));
    assert!(g.recv().is_none());
    g.advance_us(1_000);
    assert!(lu(&mut g));
    assert_ne!(g.rd(ICR) & ICR_LSC, 0, "LSC when it is back");
    assert_eq!(
        g.mdic_read(BMSR) & (BMSR_LINK | BMSR_ANEG_COMPLETE),
        BMSR_LINK | BMSR_ANEG_COMPLETE
    );
    g.advance_us(10);
    assert!(g.recv().is_some(), "the waiting frame arrives");
}

#[test]
fn a_zero_window_negotiates_at_once_and_still_raises_lsc() {
    let (mut g, _wire) = running(0);
    let bmcr = g.mdic_read(BMCR);
    g.mdic_write(BMCR, bmcr | 0x0200);
    assert!(lu(&mut g));
    assert_ne!(g.rd(ICR) & ICR_LSC, 0);
}

#[test]
fn phy_reset_through_bmcr_and_ctrl_phy_rst_and_power_down() {
    let (mut g, _wire) = running(500);
    // BMCR software reset.
    g.mdic_write(BMCR, 0x9140);
    assert!(!lu(&mut g));
    g.advance_us(500_001);
    assert!(lu(&mut g));
    g.rd(ICR);
    // CTRL.PHY_RST held for 10 ms (e1000_phy_hw_reset), then released.
    let ctrl = g.rd(CTRL);
    g.wr(CTRL, ctrl | CTRL_PHY_RST);
    assert!(!lu(&mut g));
    g.advance_us(10_000);
    assert!(!lu(&mut g), "held in reset");
    g.wr(CTRL, ctrl);
    g.advance_us(499_000);
    assert!(!lu(&mut g));
    g.advance_us(1_001);
    assert!(lu(&mut g));
    assert_ne!(g.rd(ICR) & ICR_LSC, 0);
    // Power-down (e1000_power_down_phy at ifdown), then up again.
    let bmcr = g.mdic_read(BMCR);
    g.mdic_write(BMCR, bmcr | 0x0800);
    assert!(!lu(&mut g));
    g.advance_us(5_000_000);
    assert!(!lu(&mut g), "down while powered down");
    assert_ne!(g.rd(ICR) & ICR_LSC, 0);
    g.mdic_write(BMCR, bmcr);
    g.advance_us(500_001);
    assert!(lu(&mut g));
    assert_ne!(g.rd(ICR) & ICR_LSC, 0);
}

#[test]
fn forced_100_full_shows_in_status_and_the_phy_specific_status() {
    let (mut g, _wire) = running(500);
    // e1000_phy_force_speed_duplex for `ethtool -s eth0 speed 100 duplex full autoneg
    // off`: CTRL forces the MAC, the PHY is reset with autonegotiation off.
    let ctrl = g.rd(CTRL) & !(CTRL_SPEED_MASK | CTRL_ASDE);
    g.wr(
        CTRL,
        ctrl | CTRL_FRCSPD | CTRL_FRCDPX | CTRL_FD | (1 << CTRL_SPEED_SHIFT),
    );
    let pscr = g.mdic_read(0x10);
    g.mdic_write(0x10, pscr & !0x0060);
    g.mdic_write(BMCR, 0x8000 | 0x2000 | 0x0100);
    g.advance_us(500_001);
    let status = g.rd(STATUS);
    assert_ne!(status & STATUS_LU, 0);
    assert_eq!(
        (status >> STATUS_SPEED_SHIFT) & 3,
        1,
        "100 Mb/s: {status:#x}"
    );
    assert_ne!(status & STATUS_FD, 0);
    let pssr = g.mdic_read(PSSR);
    assert_eq!(pssr >> 14, 1, "PHY at 100 Mb/s: {pssr:#x}");
    assert_ne!(pssr & (1 << 13), 0, "full duplex");
    assert_eq!(pssr & (1 << 6), 0, "manual MDI");
    assert_eq!(g.mdic_read(BMSR) & BMSR_ANEG_COMPLETE, 0);
    // Back to autonegotiation (e1000_setup_copper_link clears FRCSPD/FRCDPX): 1000 full.
    let ctrl = g.rd(CTRL) & !(CTRL_FRCSPD | CTRL_FRCDPX);
    g.wr(CTRL, ctrl);
    g.mdic_write(BMCR, 0x9140);
    g.advance_us(500_001);
    assert_eq!((g.rd(STATUS) >> STATUS_SPEED_SHIFT) & 3, 2);
    assert_eq!(g.mdic_read(PSSR), 0xAC00, "1000, full, resolved, link, MDI");
}

#[test]
fn u_boot_restarting_autonegotiation_per_command_waits_half_a_second() {
    // U-Boot's e1000 restarts autonegotiation on every network command and polls the
    // PHY (100 ms apart, up to 4.5 s) with no interrupts; nothing runs the device's
    // service step in between.
    let (mut g, wire) = running(500);
    for round in 0..3 {
        let bmcr = g.mdic_read(BMCR);
        g.mdic_write(BMCR, bmcr | 0x1200);
        let mut polls = 0;
        while g.mdic_read(BMSR) & BMSR_ANEG_COMPLETE == 0 {
            polls += 1;
            assert!(polls <= 45, "round {round}: no autonegotiation after 4.5 s");
            g.clock.advance_ns(100_000_000);
        }
        assert_eq!(polls, 5, "round {round}");
        assert!(lu(&mut g));
        g.send(&frame(PEER, MAC, 0x0800, 60, round));
        assert_eq!(wire.take_sent().len(), 1);
    }
}

#[test]
fn txd_low_when_the_ring_falls_to_the_low_threshold() {
    let (mut g, _wire) = running(0);
    g.wr(IMC, 0xFFFF_FFFF);
    // LWTHRESH = 1: 8 descriptors. Post 12 in one doorbell: the ring falls through 8.
    g.wr(TXDCTL, 1 << TXDCTL_LWTHRESH_SHIFT);
    g.rd(ICR);
    let f = frame(PEER, MAC, 0x0800, 60, 0);
    g.send_legacy(&[f.as_slice(); 12], 0, 0);
    assert_ne!(g.rd(ICR) & ICR_TXD_LOW, 0);
    // LWTHRESH = 0: only when the ring drains.
    g.wr(TXDCTL, 0);
    g.send(&f);
    assert_ne!(g.rd(ICR) & ICR_TXD_LOW, 0);
    // Descriptors it cannot reach (bus mastering off) leave the ring as it was: no
    // transition, no TXD_LOW.
    let cmd = g.bus.config_read16(4);
    g.bus.config_write16(4, cmd & !0x4);
    g.send(&f);
    assert_eq!(g.rd(ICR) & ICR_TXD_LOW, 0);
}

#[test]
fn srpd_for_packets_up_to_rsrpd_size() {
    let (mut g, wire) = running(0);
    g.wr(IMC, 0xFFFF_FFFF);
    g.wr(RSRPD, 128);
    g.rd(ICR);
    // 60 bytes + CRC = 64 <= 128.
    wire.inject(&frame(MAC, PEER, 0x0800, 46, 1));
    g.advance_us(10);
    assert_ne!(g.rd(ICR) & ICR_SRPD, 0);
    assert!(g.recv().is_some());
    // 125 + 4 = 129 > 128.
    wire.inject(&frame(MAC, PEER, 0x0800, 111, 2));
    g.advance_us(10);
    assert_eq!(g.rd(ICR) & ICR_SRPD, 0);
    assert!(g.recv().is_some());
    // SIZE 0: never.
    g.wr(RSRPD, 0);
    wire.inject(&frame(MAC, PEER, 0x0800, 46, 3));
    g.advance_us(10);
    assert_eq!(g.rd(ICR) & ICR_SRPD, 0);
}

#[test]
fn diagnostic_fifo_registers_and_packet_buffer_memory_read_back_masked() {
    let mut g = FakeGuest::new(Box::new(Loopback::new()));
    for reg in [
        RDFH, RDFT, RDFHS, RDFTS, RDFPC, TDFH, TDFT, TDFHS, TDFTS, TDFPC,
    ] {
        g.wr(reg, 0xFFFF_FFFF);
        assert_eq!(g.rd(reg), 0x1FFF, "{reg:#x}");
        g.wr(reg, 0x1234);
        assert_eq!(g.rd(reg), 0x1234, "{reg:#x}");
    }
    for (i, off) in [PBM, PBM + 0x4, PBM + 0x7FFC, PBM + 0xFFFC]
        .into_iter()
        .enumerate()
    {
        let v = 0xA5A5_0000 | i as u32;
        g.wr(off, v);
        assert_eq!(g.rd(off), v);
    }
}

#[test]
fn rdt_equal_to_the_ring_length_is_not_an_index_of_the_ring() {
    // OS/2's driver points RDT just past the last descriptor (VirtualBox accepts it).
    // RDT is the index of a descriptor inside the ring: the card owns none, takes no
    // frame, and loses none; a tail inside the ring lets them in.
    let (mut g, wire) = running(0);
    let n = 16;
    g.wr(RDT, n);
    assert_eq!(g.rd(RDT), n, "stored: it is a 16-bit register");
    for i in 0..3u8 {
        wire.inject(&frame(MAC, PEER, 0x0800, 60, i));
    }
    g.advance_us(10);
    assert!(g.recv().is_none());
    assert_eq!(wire.pending(), 3, "left with the backend");
    assert_eq!(g.bus.device().metrics().rx_dropped, 0, "none lost");
    g.wr(RDT, n - 1);
    g.advance_us(10);
    for i in 0..3u8 {
        assert_eq!(g.recv(), Some(frame(MAC, PEER, 0x0800, 60, i)), "frame {i}");
    }
}
