//! Every lint of the catalogue on the fake bus: fired by the mistake it names (and only
//! that lint), and not fired by the driver that does the same thing right.

use crate::support;

use nic_emu::device::lint::{LintId, Severity, CATALOGUE};
use nic_emu::device::regs::*;
use nic_emu::device::Bar;
use support::*;

/// A guest after the Linux probe and open, its interrupt acknowledged: a right driver.
fn linux() -> (FakeGuest, TestWire) {
    let (mut g, wire) = FakeGuest::with_wire();
    g.linux_probe();
    g.linux_open(64, 64);
    g.rd(ICR);
    (g, wire)
}

/// The warn-level lints that fired, by name, sorted.
fn warns(g: &mut FakeGuest) -> Vec<&'static str> {
    let mut v: Vec<_> = g
        .bus
        .device()
        .lints()
        .iter()
        .filter(|f| f.id.lint().severity == Severity::Warn)
        .map(|f| f.id.name())
        .collect();
    v.sort();
    v
}

/// The message of `id`'s first finding.
fn message(g: &mut FakeGuest, id: LintId) -> String {
    g.bus
        .device()
        .lints()
        .into_iter()
        .find(|f| f.id == id)
        .map(|f| f.message)
        .unwrap_or_else(|| panic!("{id} did not fire"))
}

fn fired(g: &mut FakeGuest, id: LintId) -> bool {
    g.bus.device().lints().iter().any(|f| f.id == id)
}

/// Assert that exactly `ids` fired at warn level, and that `id`'s message names `reg`.
fn expect(g: &mut FakeGuest, ids: &[&str], id: LintId, reg: &str) {
    let mut want: Vec<&str> = ids.to_vec();
    want.sort();
    assert_eq!(warns(g), want, "warn-level lints");
    let m = message(g, id);
    assert!(m.contains(reg), "{id}: message {m:?} should name {reg}");
}

/// A broadcast ARP request from the peer.
fn arp_broadcast() -> Vec<u8> {
    frame([0xFF; 6], PEER, 0x0806, 46, 3)
}

// ---------------------------------------------------------------- the right driver

#[test]
fn the_linux_sequence_raises_no_warning() {
    let (mut g, wire) = linux();
    for i in 0..200u32 {
        g.send(&frame(PEER, MAC, 0x0800, 100 + i as usize, 1));
        wire.inject(&frame(MAC, PEER, 0x0800, 100, 2));
        wire.inject(&arp_broadcast());
        g.advance_us(10);
        g.rd(ICR);
        while g.recv().is_some() {}
        // The multi-descriptor transmit path too.
        g.send_legacy(
            &[&frame(PEER, MAC, 0x0800, 30, 1)[..], &[7u8; 40][..]],
            0,
            0,
        );
        g.rd(ICR);
    }
    g.advance_us(2_000_000);
    g.rd(ICR);
    g.advance_us(2_000_000);
    assert_eq!(warns(&mut g), Vec::<&str>::new());
    // What Linux does that is worth knowing: it resets through the I/O BAR and leaves
    // SECRC clear (it strips the FCS itself).
    let mut info: Vec<_> = g.bus.device().lints().iter().map(|f| f.id.name()).collect();
    info.sort();
    assert_eq!(info, ["io-bar-used", "rx-secrc-clear"]);
    assert_eq!(g.bus.device().lint_total(Severity::Warn), 0);
    assert_eq!(g.bus.device().lint_total(Severity::Info), 2);
}

#[test]
fn the_catalogue_is_complete_and_named_once() {
    assert!(CATALOGUE.len() >= 20);
    for (i, l) in CATALOGUE.iter().enumerate() {
        assert_eq!(l.id as usize, i, "{} out of order", l.name);
        assert_eq!(LintId::from_name(l.name), Some(l.id));
        assert!(!l.section.is_empty() && !l.check.is_empty());
        assert!(l.name.chars().all(|c| c.is_ascii_lowercase() || c == '-'));
    }
}

// ---------------------------------------------------------------- rings

#[test]
fn bus_master_off() {
    let (mut g, _wire) = linux();
    let cmd = g.bus.config_read16(4);
    g.bus.config_write16(4, cmd & !4);
    g.send(&frame(PEER, MAC, 0x0800, 100, 1));
    expect(&mut g, &["bus-master-off"], LintId::BusMasterOff, "TDT");
    assert!(message(&mut g, LintId::BusMasterOff).contains("BME"));
    assert_eq!(g.bus.device().drops().tx_bus_master_off, 1);
    // Bus mastering on again: the frame goes, the lint does not fire twice.
    g.bus.config_write16(4, cmd);
    g.send(&frame(PEER, MAC, 0x0800, 100, 1));
    assert_eq!(g.bus.device().lints()[0].count, 1);
}

#[test]
fn ring_length_not_a_multiple_of_128() {
    let (mut g, _wire) = linux();
    g.wr(TCTL, 0);
    g.wr(TDLEN, 16); // one descriptor, the Zephyr ring
    expect(
        &mut g,
        &["ring-len-unaligned"],
        LintId::RingLenUnaligned,
        "TDLEN",
    );
    // A multiple of 128 bytes is quiet.
    let (mut g, _wire) = linux();
    g.wr(TCTL, 0);
    g.wr(TDLEN, 128);
    assert!(!fired(&mut g, LintId::RingLenUnaligned));
}

#[test]
fn ring_length_zero() {
    let (mut g, _wire) = linux();
    g.wr(TDLEN, 0);
    g.wr(TDT, 1);
    expect(&mut g, &["ring-len-zero"], LintId::RingLenZero, "TDLEN");
    assert_eq!(g.bus.device().drops().tx_ring_invalid, 1);
    let (mut g, _wire) = linux();
    g.wr(RCTL, 0);
    g.wr(RDLEN, 0);
    g.wr(RCTL, RCTL_EN | RCTL_BAM | RCTL_SECRC);
    // U-Boot enables RCTL before writing RDLEN, then sets the ring up: not yet a mistake.
    g.advance_us(900_000);
    assert!(!fired(&mut g, LintId::RingLenZero));
    g.advance_us(200_000);
    expect(&mut g, &["ring-len-zero"], LintId::RingLenZero, "RDLEN");
    // The U-Boot order: quiet.
    let (mut g, _wire) = linux();
    g.wr(RCTL, 0);
    g.wr(RDLEN, 0);
    g.wr(RCTL, RCTL_EN | RCTL_BAM | RCTL_SECRC);
    g.wr(RCTL, 0);
    g.wr(RDLEN, 64 * 16);
    g.wr(RDT, 0);
    g.wr(RCTL, RCTL_EN | RCTL_BAM | RCTL_SECRC);
    g.wr(RDT, 63);
    g.advance_us(2_000_000);
    assert_eq!(warns(&mut g), Vec::<&str>::new());
}

#[test]
fn receive_enabled_with_an_empty_ring() {
    let (mut g, _wire) = linux();
    g.wr(RCTL, 0);
    g.wr(RDH, 0);
    g.wr(RDT, 0);
    g.wr(RCTL, RCTL_EN | RCTL_BAM);
    g.advance_us(900_000);
    assert!(!fired(&mut g, LintId::RxRingEmpty));
    g.advance_us(200_000);
    expect(&mut g, &["rx-ring-empty"], LintId::RxRingEmpty, "RDT");
    // Linux enables first and writes RDT at once: quiet (the whole `linux()` above).
    let (mut g, _wire) = linux();
    g.advance_us(2_000_000);
    assert!(!fired(&mut g, LintId::RxRingEmpty));
}

#[test]
fn tail_outside_the_ring() {
    let (mut g, _wire) = linux();
    g.wr(TDT, 64); // 64 descriptors: 0..63
    expect(
        &mut g,
        &["tail-outside-ring"],
        LintId::TailOutsideRing,
        "TDLEN",
    );
    assert!(message(&mut g, LintId::TailOutsideRing).contains("TDT=64"));
    assert_eq!(g.bus.device().drops().tx_ring_invalid, 1);
    let (mut g, _wire) = linux();
    g.wr(RDT, 64);
    expect(
        &mut g,
        &["tail-outside-ring"],
        LintId::TailOutsideRing,
        "RDT=64",
    );
    let (mut g, _wire) = linux();
    g.wr(RDT, 63);
    assert!(!fired(&mut g, LintId::TailOutsideRing));
}

#[test]
fn ring_base_not_16_byte_aligned() {
    let (mut g, _wire) = linux();
    g.wr(TCTL, 0);
    g.wr(TDBAL, TX_RING as u32 | 8);
    expect(
        &mut g,
        &["ring-base-unaligned"],
        LintId::RingBaseUnaligned,
        "TDBAL",
    );
}

#[test]
fn dma_outside_guest_memory() {
    let (mut g, _wire) = linux();
    // A kernel virtual address (JOS: KADDR instead of PADDR) above the 16 MiB of RAM.
    g.write_tx_desc(0xF011_B000, 100, TXD_EOP | TXD_IFCS | TXD_RS, 0);
    g.wr(TDT, g.tx_tail);
    expect(
        &mut g,
        &["dma-outside-ram"],
        LintId::DmaOutsideRam,
        "TDBAH:TDBAL",
    );
    assert!(message(&mut g, LintId::DmaOutsideRam).contains("0xf011b000"));
    assert_eq!(g.bus.device().drops().tx_unmapped_dma, 1);
}

// ---------------------------------------------------------------- transmit descriptors

#[test]
fn no_eop() {
    let (mut g, _wire) = linux();
    g.bus
        .ram()
        .write(TX_BUFS, &frame(PEER, MAC, 0x0800, 100, 1))
        .unwrap();
    g.write_tx_desc(TX_BUFS, 114, TXD_IFCS | TXD_RS, 0);
    g.wr(TDT, g.tx_tail);
    expect(&mut g, &["tx-no-eop"], LintId::TxNoEop, "TDT");
    assert!(message(&mut g, LintId::TxNoEop).contains("EOP"));
    // A packet over two descriptors, EOP on the second: quiet.
    let (mut g, wire) = linux();
    g.send_legacy(
        &[&frame(PEER, MAC, 0x0800, 30, 1)[..], &[1u8; 60][..]],
        0,
        0,
    );
    assert_eq!(wire.take_sent().len(), 1);
    assert!(!fired(&mut g, LintId::TxNoEop));
}

#[test]
fn rs_never_set() {
    let (mut g, wire) = linux();
    g.bus
        .ram()
        .write(TX_BUFS, &frame(PEER, MAC, 0x0800, 100, 1))
        .unwrap();
    for _ in 0..63 {
        g.write_tx_desc(TX_BUFS, 114, TXD_EOP | TXD_IFCS, 0);
    }
    g.wr(TDT, g.tx_tail);
    assert!(!fired(&mut g, LintId::TxNoRs), "63 of 64: not yet a ring");
    g.write_tx_desc(TX_BUFS, 114, TXD_EOP | TXD_IFCS, 0);
    g.write_tx_desc(TX_BUFS, 114, TXD_EOP | TXD_IFCS, 0);
    g.wr(TDT, g.tx_tail);
    expect(&mut g, &["tx-no-rs"], LintId::TxNoRs, "RS");
    assert_eq!(wire.take_sent().len(), 65, "a lint changes nothing");
    // RS every 32 descriptors (DPDK's tx_rs_thresh): quiet.
    let (mut g, _wire) = linux();
    for i in 0..200u32 {
        let rs = if i % 32 == 31 { TXD_RS } else { 0 };
        g.write_tx_desc(TX_BUFS, 114, TXD_EOP | TXD_IFCS | rs, 0);
        g.wr(TDT, g.tx_tail);
    }
    assert!(!fired(&mut g, LintId::TxNoRs));
}

#[test]
fn command_byte_one_early() {
    let (mut g, _wire) = linux();
    g.bus
        .ram()
        .write(TX_BUFS, &frame(PEER, MAC, 0x0800, 100, 1))
        .unwrap();
    let mut d = [0u8; 16];
    d[..8].copy_from_slice(&TX_BUFS.to_le_bytes());
    d[8..10].copy_from_slice(&114u16.to_le_bytes());
    d[10] = TXD_EOP | TXD_IFCS | TXD_RS; // in CSO, CMD left 0
    g.write_raw_tx_desc(&d);
    g.wr(TDT, g.tx_tail);
    // With CMD 0 the packet has no EOP either: both say so.
    expect(
        &mut g,
        &["tx-cmd-in-cso", "tx-no-eop"],
        LintId::TxCmdInCso,
        "CSO",
    );
    assert!(message(&mut g, LintId::TxCmdInCso).contains("CMD"));
}

#[test]
fn dext_set_by_accident() {
    let (mut g, wire) = linux();
    g.bus
        .ram()
        .write(TX_BUFS, &frame(PEER, MAC, 0x0800, 100, 1))
        .unwrap();
    let dext = 1 << 5;
    g.write_tx_desc(TX_BUFS, 114, TXD_EOP | TXD_IFCS | TXD_RS | dext, 0);
    g.wr(TDT, g.tx_tail);
    expect(
        &mut g,
        &["tx-context-unused"],
        LintId::TxContextUnused,
        "DEXT",
    );
    assert!(wire.take_sent().is_empty());
    // A context descriptor followed by a data descriptor (Linux's checksum offload): quiet.
    let (mut g, wire) = linux();
    let f = frame(PEER, MAC, 0x0800, 100, 1);
    g.bus.ram().write(TX_BUFS, &f).unwrap();
    let mut ctx = [0u8; 16];
    ctx[0] = 14; // IPCSS
    ctx[1] = 24; // IPCSO
    ctx[11] = dext | TXD_RS | TXD_IFCS;
    g.write_raw_tx_desc(&ctx);
    let mut data = [0u8; 16];
    data[..8].copy_from_slice(&TX_BUFS.to_le_bytes());
    data[8..10].copy_from_slice(&(f.len() as u16).to_le_bytes());
    data[10] = 1 << 4; // DTYP = data
    data[11] = dext | TXD_EOP | TXD_IFCS | TXD_RS;
    g.write_raw_tx_desc(&data);
    g.wr(TDT, g.tx_tail);
    assert_eq!(wire.take_sent().len(), 1);
    assert_eq!(warns(&mut g), Vec::<&str>::new());
}

#[test]
fn ifcs_clear() {
    let (mut g, wire) = linux();
    g.bus
        .ram()
        .write(TX_BUFS, &frame(PEER, MAC, 0x0800, 100, 1))
        .unwrap();
    g.write_tx_desc(TX_BUFS, 114, TXD_EOP | TXD_RS, 0); // the xv6 lab's RS|EOP
    g.wr(TDT, g.tx_tail);
    expect(&mut g, &["tx-no-ifcs"], LintId::TxNoIfcs, "IFCS");
    assert_eq!(wire.take_sent().len(), 1, "sent all the same");
}

#[test]
fn short_frame_without_psp() {
    let (mut g, wire) = linux();
    g.wr(TCTL, TCTL_EN | (0x0F << 4) | (0x40 << 12));
    g.send(&frame(PEER, MAC, 0x0806, 28, 1)); // 42 bytes
    expect(&mut g, &["tx-runt"], LintId::TxRunt, "TCTL.PSP");
    assert_eq!(wire.take_sent()[0].len(), 42, "not padded: PSP is clear");
    // With PSP the card pads: quiet.
    let (mut g, wire) = linux();
    g.send(&frame(PEER, MAC, 0x0806, 28, 1));
    assert_eq!(wire.take_sent()[0].len(), 60);
    assert!(!fired(&mut g, LintId::TxRunt));
}

#[test]
fn descriptor_longer_than_16288() {
    let (mut g, _wire) = linux();
    g.write_tx_desc(TX_BUFS, 20_000, TXD_EOP | TXD_IFCS | TXD_RS, 0);
    g.wr(TDT, g.tx_tail);
    expect(
        &mut g,
        &["tx-desc-too-long"],
        LintId::TxDescTooLong,
        "16288",
    );
    assert_eq!(g.bus.device().drops().tx_malformed, 1);
}

#[test]
fn head_written_while_enabled() {
    let (mut g, _wire) = linux();
    g.wr(TDH, 0);
    expect(
        &mut g,
        &["head-written-enabled"],
        LintId::HeadWrittenEnabled,
        "TDH",
    );
    assert!(message(&mut g, LintId::HeadWrittenEnabled).contains("TCTL.EN"));
    // Written while disabled (every open sequence): quiet.
    let (mut g, _wire) = linux();
    g.wr(RCTL, 0);
    g.wr(RDH, 0);
    assert!(!fired(&mut g, LintId::HeadWrittenEnabled));
}

#[test]
fn transmitter_disabled() {
    let (mut g, wire) = linux();
    g.wr(TCTL, TCTL_PSP);
    g.send(&frame(PEER, MAC, 0x0800, 100, 1));
    expect(
        &mut g,
        &["tx-disabled-doorbell"],
        LintId::TxDisabledDoorbell,
        "TCTL.EN",
    );
    assert!(wire.take_sent().is_empty());
    assert_eq!(g.bus.device().drops().tx_disabled, 1);
}

// ---------------------------------------------------------------- receive

#[test]
fn stale_dd_handed_back() {
    let (mut g, wire) = linux();
    wire.inject(&frame(MAC, PEER, 0x0800, 100, 2));
    wire.inject(&frame(MAC, PEER, 0x0800, 100, 3));
    g.advance_us(10);
    // Descriptors 0 and 1 hold the frames (DD set); give 0 back without clearing it.
    g.wr(RDT, 1);
    expect(&mut g, &["rx-stale-dd"], LintId::RxStaleDd, "RDT");
    assert!(message(&mut g, LintId::RxStaleDd).contains("DD"));
    // recv() clears the descriptor before giving it back: quiet.
    let (mut g, wire) = linux();
    for _ in 0..100 {
        wire.inject(&frame(MAC, PEER, 0x0800, 100, 2));
        g.advance_us(10);
        assert!(g.recv().is_some());
    }
    assert!(!fired(&mut g, LintId::RxStaleDd));
}

#[test]
fn receive_buffers_closer_than_bsize() {
    let (mut g, _wire) = linux();
    let rctl = g.rd(RCTL);
    // 4096-byte buffers with long frames on, placed 2048 bytes apart.
    g.wr(RCTL, rctl | RCTL_LPE | RCTL_BSEX | (3 << RCTL_BSIZE_SHIFT));
    for i in 0..64u64 {
        g.bus
            .ram()
            .write(RX_RING + i * 16, &(RX_BUFS + i * 2048).to_le_bytes())
            .unwrap();
    }
    g.wr(RDT, 10);
    expect(
        &mut g,
        &["rx-buffers-overlap"],
        LintId::RxBuffersOverlap,
        "RCTL.BSIZE",
    );
    // Linux's buffers for BSIZE 2048 are 1920 bytes apart: no frame without LPE is
    // longer than 1522 bytes. Quiet.
    let (mut g, _wire) = linux();
    for i in 0..64u64 {
        g.bus
            .ram()
            .write(RX_RING + i * 16, &(RX_BUFS + i * 1920).to_le_bytes())
            .unwrap();
    }
    g.wr(RDT, 10);
    assert!(!fired(&mut g, LintId::RxBuffersOverlap));
    // The same buffers with BSIZE 2048: quiet.
    let (mut g, _wire) = linux();
    for i in 0..64u64 {
        g.bus
            .ram()
            .write(RX_RING + i * 16, &(RX_BUFS + i * 2048).to_le_bytes())
            .unwrap();
    }
    g.wr(RDT, 10);
    assert!(!fired(&mut g, LintId::RxBuffersOverlap));
}

#[test]
fn frame_over_several_descriptors_is_info() {
    let (mut g, wire) = linux();
    let rctl = g.rd(RCTL);
    g.wr(RCTL, rctl | (3 << RCTL_BSIZE_SHIFT)); // 256-byte buffers
    wire.inject(&frame(MAC, PEER, 0x0800, 1000, 2));
    g.advance_us(10);
    assert!(fired(&mut g, LintId::RxFrameSplit));
    assert!(message(&mut g, LintId::RxFrameSplit).contains("RCTL.BSIZE 256"));
    assert_eq!(warns(&mut g), Vec::<&str>::new());
    let (mut g, wire) = linux();
    wire.inject(&frame(MAC, PEER, 0x0800, 1500, 2));
    g.advance_us(10);
    assert!(!fired(&mut g, LintId::RxFrameSplit));
}

#[test]
fn secrc_clear_is_info() {
    let (mut g, _wire) = linux();
    assert!(message(&mut g, LintId::RxSecrcClear).contains("SECRC"));
    g.wr(CTRL, CTRL_RST);
    g.clear_and_open_with_secrc();
    assert!(g.bus.device().lints().is_empty());
}

trait Reopen {
    fn clear_and_open_with_secrc(&mut self);
}

impl Reopen for FakeGuest {
    /// Forget the findings, then open again with SECRC set and no I/O BAR access.
    fn clear_and_open_with_secrc(&mut self) {
        self.linux_open(64, 64);
        self.wr(RCTL, 0);
        self.bus.device().clear_lints();
        let rctl = RCTL_BAM | RCTL_SECRC;
        self.wr(RCTL, rctl);
        self.wr(RCTL, rctl | RCTL_EN);
        self.wr(RDT, 63);
    }
}

#[test]
fn broadcast_dropped_without_bam() {
    let (mut g, wire) = linux();
    let rctl = g.rd(RCTL);
    g.wr(RCTL, rctl & !RCTL_BAM); // the JOS lab's RCTL
    for _ in 0..3 {
        wire.inject(&arp_broadcast());
    }
    g.advance_us(10);
    expect(
        &mut g,
        &["rx-broadcast-dropped"],
        LintId::RxBroadcastDropped,
        "RCTL.BAM=0",
    );
    assert!(message(&mut g, LintId::RxBroadcastDropped).contains("ARP"));
    // Every occurrence counts: repetition is the news.
    assert_eq!(g.bus.device().lint_total(Severity::Warn), 3);
    assert_eq!(g.bus.device().drops().rx_filtered_broadcast, 3);
    // With BAM the frames arrive: quiet.
    let (mut g, wire) = linux();
    wire.inject(&arp_broadcast());
    g.advance_us(10);
    assert!(g.recv().is_some());
    assert!(!fired(&mut g, LintId::RxBroadcastDropped));
}

#[test]
fn own_mac_filtered_byte_swapped() {
    let (mut g, wire) = linux();
    let mut rev = MAC;
    rev.reverse();
    g.wr(ral(0), u32::from_le_bytes([rev[0], rev[1], rev[2], rev[3]]));
    g.wr(
        rah(0),
        u32::from(u16::from_le_bytes([rev[4], rev[5]])) | RAH_AV,
    );
    wire.inject(&frame(MAC, PEER, 0x0800, 100, 2));
    g.advance_us(10);
    expect(
        &mut g,
        &["rx-own-mac-filtered"],
        LintId::RxOwnMacFiltered,
        "RA0",
    );
    assert!(message(&mut g, LintId::RxOwnMacFiltered).contains("reverse order"));
    assert_eq!(g.bus.device().drops().rx_filtered_unicast, 1);
    // AV clear.
    let (mut g, wire) = linux();
    let rah0 = g.rd(rah(0));
    g.wr(rah(0), rah0 & !RAH_AV);
    wire.inject(&frame(MAC, PEER, 0x0800, 100, 2));
    g.advance_us(10);
    assert!(message(&mut g, LintId::RxOwnMacFiltered).contains("AV=0"));
    // A frame for another host is filtered without a lint.
    let (mut g, wire) = linux();
    wire.inject(&frame([0x02, 0, 0, 0, 0, 9], PEER, 0x0800, 100, 2));
    g.advance_us(10);
    assert_eq!(g.bus.device().drops().rx_filtered_unicast, 1);
    assert_eq!(warns(&mut g), Vec::<&str>::new());
}

#[test]
fn mta_never_written() {
    let (mut g, _wire) = linux();
    g.wr(CTRL, CTRL_RST);
    // Open again without the MTA loop.
    g.wr(RDLEN, 64 * 16);
    g.wr(RCTL, RCTL_BAM | RCTL_SECRC | RCTL_EN);
    g.wr(RDT, 63);
    expect(
        &mut g,
        &["mta-uninitialised"],
        LintId::MtaUninitialised,
        "MTA",
    );
    // Multicast promiscuous (iPXE): the table does not matter, quiet.
    let (mut g, _wire) = linux();
    g.wr(CTRL, CTRL_RST);
    g.wr(RDLEN, 64 * 16);
    g.wr(RCTL, RCTL_BAM | RCTL_MPE | RCTL_SECRC | RCTL_EN);
    g.wr(RDT, 63);
    assert!(!fired(&mut g, LintId::MtaUninitialised));
}

// ---------------------------------------------------------------- interrupts

#[test]
fn completions_masked() {
    let (mut g, wire) = linux();
    g.wr(IMC, 0xFFFF_FFFF);
    g.wr(IMS, ICR_RXO); // Zephyr's mask
    wire.inject(&frame(MAC, PEER, 0x0800, 100, 2));
    g.advance_us(10);
    g.advance_us(900_000);
    assert!(!fired(&mut g, LintId::IrqCauseMasked));
    g.advance_us(200_000);
    expect(&mut g, &["irq-cause-masked"], LintId::IrqCauseMasked, "IMS");
    assert!(message(&mut g, LintId::IrqCauseMasked).contains("RXT0"));
    // Transmit completions left masked with RXT0 enabled: a choice, quiet.
    let (mut g, wire) = linux();
    g.wr(IMC, 0xFFFF_FFFF);
    g.wr(IMS, ICR_RXT0);
    g.send(&frame(PEER, MAC, 0x0800, 100, 1));
    wire.inject(&frame(MAC, PEER, 0x0800, 100, 2));
    for _ in 0..3 {
        g.advance_us(500_000);
        g.rd(ICR);
        g.send(&frame(PEER, MAC, 0x0800, 100, 1));
    }
    assert!(!fired(&mut g, LintId::IrqCauseMasked));
    // A polling driver (IMS 0 or LSC only, as DPDK and iPXE): quiet.
    let (mut g, wire) = linux();
    g.wr(IMC, 0xFFFF_FFFF);
    g.wr(IMS, ICR_LSC);
    wire.inject(&frame(MAC, PEER, 0x0800, 100, 2));
    g.advance_us(10);
    g.advance_us(2_000_000);
    assert!(!fired(&mut g, LintId::IrqCauseMasked));
}

#[test]
fn interrupt_never_acknowledged() {
    let (mut g, wire) = linux();
    wire.inject(&frame(MAC, PEER, 0x0800, 100, 2));
    g.advance_us(100); // past the ITR throttle
    assert!(g.bus.device().irq_level());
    g.advance_us(400_000);
    assert!(!fired(&mut g, LintId::IntxStuck));
    g.advance_us(200_000);
    expect(&mut g, &["intx-stuck"], LintId::IntxStuck, "ICR");
    // Read ICR in time: quiet.
    let (mut g, wire) = linux();
    wire.inject(&frame(MAC, PEER, 0x0800, 100, 2));
    g.advance_us(10);
    g.advance_us(400_000);
    g.rd(ICR);
    g.advance_us(400_000);
    assert!(!fired(&mut g, LintId::IntxStuck));
}

// ---------------------------------------------------------------- EEPROM and access

#[test]
fn eerd_in_the_82541_layout() {
    let (mut g, _wire) = linux();
    g.wr(EERD, EERD_START | (1 << 2)); // word 1, address in bits 15:2
    expect(&mut g, &["eerd-layout"], LintId::EerdLayout, "EERD");
    // The 82540 layout (iPXE): quiet.
    let (mut g, _wire) = linux();
    assert_eq!(g.eeprom_eerd_read(0), u16::from_le_bytes([MAC[0], MAC[1]]));
    assert!(!fired(&mut g, LintId::EerdLayout));
}

#[test]
fn eecd_clocked_without_request() {
    let (mut g, _wire) = linux();
    g.wr(EECD, EECD_CS);
    g.wr(EECD, EECD_CS | EECD_SK);
    expect(
        &mut g,
        &["eecd-no-request"],
        LintId::EecdNoRequest,
        "EE_REQ",
    );
    // linux() itself bit-bangs 64 words with EE_REQ: quiet (the right driver above).
}

#[test]
fn io_bar_is_info() {
    let (mut g, _wire) = FakeGuest::with_wire();
    g.enable_bus_master();
    g.rd(STATUS);
    assert!(!fired(&mut g, LintId::IoBarUsed));
    g.io_rd(STATUS);
    assert!(message(&mut g, LintId::IoBarUsed).contains("IOADDR/IODATA"));
    assert_eq!(warns(&mut g), Vec::<&str>::new());
}

#[test]
fn sub_dword_access() {
    let (mut g, _wire) = linux();
    g.bus
        .device()
        .bar_write(Bar::Mmio, u64::from(RDT) + 2, &[0, 0]);
    expect(
        &mut g,
        &["sub-dword-access"],
        LintId::SubDwordAccess,
        "32-bit",
    );
    assert!(message(&mut g, LintId::SubDwordAccess).contains("0x281a"));
}

#[test]
fn register_of_a_later_controller_is_info() {
    let (mut g, _wire) = linux();
    assert!(!fired(&mut g, LintId::NoSuchRegister), "Linux touches none");
    g.wr(0x102C, 1); // EEWR, 82571 and later
    assert_eq!(g.rd(0x102C), 0);
    assert!(message(&mut g, LintId::NoSuchRegister).contains("0x0102c"));
    assert_eq!(warns(&mut g), Vec::<&str>::new());
}

#[test]
fn reserved_buffer_size() {
    let (mut g, _wire) = linux();
    let rctl = g.rd(RCTL) & !RCTL_BSIZE_MASK;
    g.wr(RCTL, rctl | RCTL_BSEX);
    expect(
        &mut g,
        &["rctl-bsize-reserved"],
        LintId::RctlBsizeReserved,
        "BSEX",
    );
}

// ---------------------------------------------------------------- counting

#[test]
fn once_per_reset_then_again_after_reset() {
    let (mut g, _wire) = linux();
    g.wr(TDH, 0);
    g.wr(TDH, 0);
    let count = |g: &mut FakeGuest| {
        g.bus
            .device()
            .lints()
            .iter()
            .find(|f| f.id == LintId::HeadWrittenEnabled)
            .map(|f| f.count)
    };
    assert_eq!(count(&mut g), Some(1));
    g.wr(CTRL, CTRL_RST);
    g.linux_open(64, 64);
    g.wr(TDH, 0);
    assert_eq!(count(&mut g), Some(2));
    let f = &g.bus.device().lints()[0];
    assert!(f.first_access > 0);
    g.bus.device().clear_lints();
    assert!(g.bus.device().lints().is_empty());
}

#[test]
fn drop_reasons_for_disabled_receiver_and_link_down() {
    let (mut g, wire) = linux();
    let d = g.bus.device();
    d.set_link(false);
    assert_eq!(
        d.receive_frame(&frame(MAC, PEER, 0x0800, 100, 2)),
        nic_emu::backend::RxOutcome::Dropped
    );
    d.set_link(true);
    g.wr(RCTL, 0);
    let d = g.bus.device();
    d.receive_frame(&frame(MAC, PEER, 0x0800, 100, 2));
    d.receive_frame(&[0u8; 10]);
    let drops = d.drops();
    assert_eq!(drops.rx_link_down, 1);
    assert_eq!(
        drops.rx_disabled, 2,
        "the runt arrived with RCTL.EN clear too"
    );
    g.wr(RCTL, RCTL_EN | RCTL_BAM);
    let d = g.bus.device();
    d.receive_frame(&[0u8; 10]);
    assert_eq!(d.drops().rx_malformed, 1);
    assert_eq!(d.drops().total(), 4);
    drop(wire);
}
