//! Real driver sequences replayed against the device: the Linux e1000 probe and open,
//! iPXE's polling bring-up, and a DPDK-style polling driver.

use crate::support;

use nic_emu::backend::Loopback;
use nic_emu::device::regs::*;
use support::*;

#[test]
fn linux_probe_sees_eeprom_mac_phy_and_link() {
    let mut g = FakeGuest::new(Box::new(Loopback::new()));
    // PCI identity as the PCI core sees it.
    assert_eq!(g.bus.config_read32(0), 0x100E_8086);
    assert_eq!(g.bus.config_read32(8) >> 8, 0x02_0000);
    assert_eq!(g.bus.config_read32(0x2C), 0x001E_8086);
    assert_eq!(g.bus.config_read32(0x3C) >> 8 & 0xFF, 1, "INTA");

    let p = g.linux_probe();
    let sum = p.eeprom.iter().fold(0u16, |a, &w| a.wrapping_add(w));
    assert_eq!(sum, 0xBABA, "EEPROM checksum");
    assert_eq!(p.mac, MAC);
    assert_eq!(p.phy_id & !0xF, 0x0141_0C20);
    assert!(p.link_up);
    assert_ne!(g.rd(STATUS) & STATUS_LU, 0);
    // RA[0] holds the MAC after reset, with AV.
    assert_eq!(
        g.rd(ral(0)),
        u32::from_le_bytes([MAC[0], MAC[1], MAC[2], MAC[3]])
    );
    assert_eq!(
        g.rd(rah(0)),
        u32::from(u16::from_le_bytes([MAC[4], MAC[5]])) | RAH_AV
    );
    // Everything masked during probe: no interrupt even though LSC may be latched.
    assert!(!g.bus.irq().level());
}

#[test]
fn linux_open_raises_lsc_and_only_enabled_causes() {
    let mut g = FakeGuest::new(Box::new(Loopback::new()));
    g.linux_probe();
    let edges = g.bus.irq().rising_edges();
    g.linux_open(256, 256);
    // ICS=LSC with IMS=0x9D (LSC unmasked) raises the line.
    assert!(g.bus.irq().level());
    assert_eq!(g.bus.irq().rising_edges(), edges + 1);
    let icr = g.rd(ICR);
    assert_ne!(icr & ICR_LSC, 0);
    assert_ne!(icr & ICR_INT_ASSERTED, 0);
    assert!(!g.bus.irq().level(), "reading ICR drops the line");
    assert_eq!(g.rd(ICR), 0, "ICR clears on read");
    assert_eq!(g.rd(IMS), 0x9D);
    assert_ne!(g.rd(TCTL) & TCTL_EN, 0);
    assert_eq!(g.rd(RDT), 255);
}

#[test]
fn reset_through_io_bar_restores_defaults() {
    let mut g = FakeGuest::new(Box::new(Loopback::new()));
    g.enable_bus_master();
    g.wr(IMS, 0xFF);
    g.wr(RCTL, RCTL_EN | RCTL_UPE);
    g.wr(RDLEN, 4096);
    g.wr(ral(3), 0x1234_5678);
    let ctrl = g.io_rd(CTRL);
    g.io_wr(CTRL, ctrl | CTRL_RST);
    assert_eq!(g.rd(IMS), 0);
    assert_eq!(g.rd(RCTL), 0);
    assert_eq!(g.rd(RDLEN), 0);
    assert_eq!(g.rd(ral(3)), 0);
    assert_eq!(g.rd(CTRL) & CTRL_SLU, CTRL_SLU);
    assert_eq!(g.rd(PBA), 0x0010_0030);
    assert_eq!(g.rd(VET), 0x8100);
    // IOADDR/IODATA reach any register.
    assert_eq!(g.io_rd(STATUS), g.rd(STATUS));
}

#[test]
fn ipxe_bring_up_with_eerd_polling_and_secrc() {
    let (mut g, wire) = FakeGuest::with_wire();
    g.enable_bus_master();
    // iPXE: reset, set link up, MAC from RAL0/RAH0 (else EERD).
    let ctrl = g.rd(CTRL);
    g.wr(CTRL, ctrl | CTRL_RST);
    g.set_bits(CTRL, CTRL_SLU | CTRL_ASDE);
    let ral0 = g.rd(ral(0)).to_le_bytes();
    let rah0 = g.rd(rah(0));
    assert_ne!(rah0 & RAH_AV, 0);
    assert_eq!(&ral0, &MAC[..4]);
    // iPXE probes which EERD layout exists: START | addr << 2, checks DONE bit 1.
    g.wr(EERD, EERD_START);
    assert_eq!(
        g.rd(EERD) & (1 << 1),
        0,
        "no 'large' EERD layout on the 82540EM"
    );
    let words: Vec<u16> = (0..3).map(|a| g.eeprom_eerd_read(a)).collect();
    assert_eq!(words[0].to_le_bytes(), [MAC[0], MAC[1]]);
    assert_eq!(words[2].to_le_bytes(), [MAC[4], MAC[5]]);

    // iPXE runs with interrupts masked and polls ICR.
    g.wr(IMC, 0xFFFF_FFFF);
    g.linux_open(8, 8);
    g.wr(IMC, 0xFFFF_FFFF);
    g.rd(ICR);
    g.set_bits(RCTL, RCTL_SECRC);
    let f = frame(MAC, PEER, 0x0800, 100, 3);
    wire.inject(&f);
    g.bus.poll();
    assert!(!g.bus.irq().level(), "masked");
    let icr = g.rd(ICR);
    assert_ne!(
        icr & ICR_RXT0,
        0,
        "RXT0 latched while masked, seen by polling"
    );
    let (got, status, errors, _) = g.recv_full().expect("frame");
    assert_eq!(got, f, "SECRC: no FCS bytes appended");
    assert_eq!(status & (RXD_DD | RXD_EOP), RXD_DD | RXD_EOP);
    assert_eq!(errors, 0);
}

#[test]
fn dpdk_style_polling_driver_reads_all_statistics() {
    let (mut g, wire) = FakeGuest::with_wire();
    g.linux_probe();
    g.linux_open(64, 64);
    g.wr(ITR, 0xFFFF);
    g.wr(IMC, 0xFFFF_FFFF);
    g.rd(ICR);
    // Clear-on-read: one pass zeroes everything.
    for reg in (STATS_START..STATS_END).step_by(4) {
        g.rd(reg);
    }
    let unicast = frame(MAC, PEER, 0x0800, 46, 1);
    let bcast = frame([0xFF; 6], PEER, 0x0806, 46, 2);
    for _ in 0..5 {
        wire.inject(&unicast);
    }
    wire.inject(&bcast);
    g.bus.poll();
    let mut got = 0;
    while g.recv().is_some() {
        got += 1;
    }
    assert_eq!(got, 6, "DD polling finds every frame");
    let mut stats = std::collections::HashMap::new();
    for reg in (STATS_START..STATS_END).step_by(4) {
        stats.insert(reg, g.rd(reg));
    }
    assert_eq!(stats[&GPRC], 6);
    assert_eq!(stats[&TPR], 6);
    assert_eq!(stats[&BPRC], 1);
    assert_eq!(
        stats[&PRC64], 6,
        "60-byte frames plus FCS are 64 on the wire"
    );
    assert_eq!(stats[&GORCL], 6 * 64);
    assert_eq!(stats[&GORCH], 0);
    assert_eq!(stats[&MPC], 0);
    // And they cleared.
    assert_eq!(g.rd(GPRC), 0);
    assert_eq!(g.rd(GORCL), 0, "the high-half read cleared the pair");
    assert!(!g.bus.irq().level(), "polling driver never sees the line");
}

#[test]
fn link_down_and_up_from_host_raise_lsc() {
    let mut g = FakeGuest::new(Box::new(Loopback::new()));
    g.linux_probe();
    g.linux_open(8, 8);
    g.rd(ICR);
    g.bus.device().set_link(false);
    // ITR=195 (~50 us) holds the edge back until the interval since the last one passed.
    assert!(!g.bus.irq().level());
    g.advance_us(50);
    assert!(g.bus.irq().level());
    assert_ne!(g.rd(ICR) & ICR_LSC, 0);
    assert_eq!(g.rd(STATUS) & STATUS_LU, 0);
    let _ = g.mdic_read(1);
    assert_eq!(g.mdic_read(1) & 4, 0, "BMSR link bit follows");
    g.bus.device().set_link(true);
    assert_ne!(g.rd(ICR) & ICR_LSC, 0);
    assert_ne!(g.rd(STATUS) & STATUS_LU, 0);
}

/// A card without link puts nothing on the wire: a driver that transmits blind (DPDK's
/// txonly does not wait for link) sees its descriptors completed, and the frames are
/// discarded and counted, not sent.
#[test]
fn transmit_with_link_down_completes_descriptors_and_sends_nothing() {
    let (mut g, wire) = FakeGuest::with_wire();
    g.linux_probe();
    g.linux_open(8, 8);
    g.set_bits(TCTL, TCTL_EN);
    g.bus.device().set_link(false);
    let f = frame(PEER, MAC, 0x0800, 100, 3);
    for _ in 0..5 {
        g.send(&f);
    }
    for i in 0..5 {
        assert_ne!(g.tx_status(i) & 0x01, 0, "descriptor {i} completed");
    }
    assert_eq!(g.rd(TDH), 5);
    assert!(wire.take_sent().is_empty(), "nothing reached the backend");
    let m = g.bus.device().metrics();
    assert_eq!((m.tx_frames, m.tx_no_link), (0, 5));
    assert_eq!(g.rd(GPTC), 0, "nothing counted as transmitted");
    // Cable back: the next frame goes out.
    g.bus.device().set_link(true);
    g.send(&f);
    assert_eq!(wire.take_sent(), vec![f]);
}

#[test]
fn no_dma_without_bus_master() {
    let (mut g, wire) = FakeGuest::with_wire();
    g.linux_probe();
    g.linux_open(8, 8);
    g.bus.config_write16(4, 0x3); // memory + I/O, no bus master
    let f = frame(MAC, PEER, 0x0800, 64, 9);
    wire.inject(&f);
    g.bus.poll();
    assert!(g.recv().is_none(), "nothing written with bus mastering off");
    assert_eq!(wire.pending(), 1, "the frame waits in the backend");
    g.enable_bus_master();
    assert_eq!(
        g.recv().as_deref(),
        Some(&f[..]),
        "delivered once DMA is allowed"
    );
}
