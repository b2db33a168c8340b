//! Interrupt delivery and mitigation in virtual time: ITR caps the rate of interrupts,
//! RDTR/RADV delay receive interrupts, causes latch while masked, IMS re-evaluates.

use crate::support;

use nic_emu::device::regs::*;
use support::*;

fn opened() -> (FakeGuest, TestWire) {
    let (mut g, wire) = FakeGuest::with_wire();
    g.linux_probe();
    g.linux_open(8, 256);
    g.rd(ICR);
    (g, wire)
}

/// Deliver one frame every `gap_us` for `span_us`, with an ISR that reads ICR whenever
/// the line is high; returns how many interrupts the guest took.
fn burst(g: &mut FakeGuest, wire: &TestWire, gap_us: u64, span_us: u64) -> u64 {
    let start = g.bus.irq().rising_edges();
    let mut t = 0;
    while t < span_us {
        wire.inject(&frame(MAC, PEER, 0x0800, 64, t as u8));
        g.advance_us(gap_us);
        t += gap_us;
        if g.bus.irq().level() {
            g.rd(ICR); // the ISR acknowledges
            while g.recv().is_some() {}
        }
    }
    g.bus.irq().rising_edges() - start
}

#[test]
fn itr_caps_the_interrupt_rate() {
    // A frame every 2 us for 10 ms.
    let (mut g, wire) = opened();
    g.wr(ITR, 0);
    g.wr(RDTR, 0);
    let unlimited = burst(&mut g, &wire, 2, 10_000);
    assert!(
        unlimited >= 4_000,
        "without ITR every frame interrupts: {unlimited}"
    );

    let (mut g, wire) = opened();
    g.wr(RDTR, 0);
    g.wr(ITR, 976); // Linux's lowest rate: 976 * 256 ns = ~250 us
    let limited = burst(&mut g, &wire, 2, 10_000);
    let allowed = 10_000 * 1000 / (976 * 256) + 1;
    assert!(
        limited <= allowed,
        "{limited} interrupts, at most {allowed} allowed"
    );
    assert!(
        limited >= allowed - 2,
        "and the guest still gets them: {limited}"
    );
    assert_eq!(
        g.bus.device().metrics().rx_frames,
        5_000,
        "no frame lost to mitigation"
    );
}

#[test]
fn radv_bounds_the_delay_of_rdtr() {
    let (mut g, wire) = opened();
    g.wr(ITR, 0);
    g.wr(RDTR, 32); // 32.768 us packet timer
    g.wr(RADV, 64); // 65.536 us absolute timer
                    // A frame every 20 us keeps restarting the packet timer; RADV fires anyway.
    wire.inject(&frame(MAC, PEER, 0x0800, 64, 0));
    g.bus.poll();
    assert!(!g.bus.irq().level());
    let mut fired_at = None;
    for step in 1..=10u64 {
        g.advance_us(20);
        if g.bus.irq().level() {
            fired_at = Some(step * 20);
            break;
        }
        wire.inject(&frame(MAC, PEER, 0x0800, 64, step as u8));
        g.bus.poll();
    }
    assert_eq!(
        fired_at,
        Some(80),
        "RADV (65.5 us) fired at the first check after it"
    );
    assert_ne!(g.rd(ICR) & ICR_RXT0, 0);

    // A single frame with no follow-up: the packet timer fires alone.
    wire.inject(&frame(MAC, PEER, 0x0800, 64, 99));
    g.bus.poll();
    g.advance_us(32);
    assert!(!g.bus.irq().level());
    g.advance_us(1);
    assert!(g.bus.irq().level(), "RDTR expired at 32.768 us");
}

#[test]
fn rdtr_flush_partial_descriptor_fires_at_once() {
    let (mut g, wire) = opened();
    g.wr(ITR, 0);
    g.wr(RDTR, 1000);
    wire.inject(&frame(MAC, PEER, 0x0800, 64, 0));
    g.bus.poll();
    assert!(!g.bus.irq().level());
    g.wr(RDTR, 1000 | RDTR_FPD);
    assert!(g.bus.irq().level());
}

#[test]
fn unmasking_a_pending_cause_raises_at_once() {
    let (mut g, wire) = opened();
    g.wr(ITR, 0);
    g.wr(IMC, ICR_RXT0); // NAPI polling: receive interrupts masked
    wire.inject(&frame(MAC, PEER, 0x0800, 64, 0));
    g.bus.poll();
    assert!(!g.bus.irq().level());
    g.wr(IMS, ICR_RXT0);
    assert!(
        g.bus.irq().level(),
        "the latched RXT0 interrupts as soon as it is unmasked"
    );
    let icr = g.rd(ICR);
    assert_eq!(icr & ICR_RXT0, ICR_RXT0);
}

#[test]
fn icr_write_clears_and_ics_sets() {
    let (mut g, _) = opened();
    g.wr(ITR, 0);
    g.wr(ICS, ICR_RXSEQ | ICR_TXQE);
    assert!(g.bus.irq().level(), "RXSEQ is in IMS 0x9D");
    g.wr(ICR, ICR_RXSEQ);
    assert!(!g.bus.irq().level(), "TXQE is not enabled");
    assert_eq!(g.rd(ICR) & ICR_VALID, ICR_TXQE);
}

#[test]
fn intx_disable_in_pci_command_holds_the_line_low_but_status_shows_the_interrupt() {
    let (mut g, _) = opened();
    g.wr(ITR, 0);
    let cmd = g.bus.config_read16(4);
    g.bus.config_write16(4, cmd | (1 << 10));
    g.wr(ICS, ICR_LSC);
    assert!(!g.bus.irq().level());
    // PCI: the status bit is the device's interrupt state whatever INTx-disable says, so
    // a handler that masks the line and looks again (pci_check_and_mask_intx) still
    // sees it.
    assert_ne!(
        g.bus.config_read16(6) & (1 << 3),
        0,
        "PCI status shows the masked interrupt"
    );
    g.bus.config_write16(4, cmd);
    assert!(g.bus.irq().level());
    assert_ne!(g.bus.config_read16(6) & (1 << 3), 0);
    g.rd(ICR);
    assert!(!g.bus.irq().level());
    assert_eq!(g.bus.config_read16(6) & (1 << 3), 0, "ICR read cleared it");
}

/// uio_pci_generic and vfio-pci claim an INTx only if the status bit is set when their
/// handler reads config space: an interrupt raised by a received frame must show there at
/// once, not after the next timer pass or register access.
#[test]
fn pci_status_shows_an_interrupt_raised_by_a_received_frame_at_once() {
    let (mut g, wire) = opened();
    g.wr(ITR, 0);
    assert_eq!(g.bus.config_read16(6) & (1 << 3), 0);
    wire.inject(&frame(MAC, PEER, 0x0800, 64, 0));
    assert_eq!(g.bus.poll(), 1);
    assert!(g.bus.irq().level());
    assert_ne!(
        g.bus.config_read16(6) & (1 << 3),
        0,
        "status bit set as the line rises"
    );
    // The userspace driver masks INTx (command bit 10) and checks again.
    let cmd = g.bus.config_read16(4);
    g.bus.config_write16(4, cmd | (1 << 10));
    assert!(!g.bus.irq().level());
    assert_ne!(g.bus.config_read16(6) & (1 << 3), 0);
    // Its handler acknowledges the cause, then unmasks: nothing left to signal.
    assert_eq!(g.rd(ICR) & ICR_RXT0, ICR_RXT0);
    g.bus.config_write16(4, cmd);
    assert!(!g.bus.irq().level());
    assert_eq!(g.bus.config_read16(6) & (1 << 3), 0);
}

#[test]
fn a_doorbell_asks_for_polling_only_from_an_interrupt_driven_driver() {
    // Linux's e1000 unmasks packet interrupts: after a TDT write its interrupt handler's
    // accesses follow within microseconds, so the frontend may poll for them.
    let (mut g, _wire) = opened();
    let tdt = g.rd(TDT);
    let e = g.bus.device().write_reg(TDT, tdt);
    assert!(e.next_access_soon, "interrupt-driven driver: {e:?}");
    // A polling driver (DPDK's em PMD) never unmasks them: its next doorbell comes a
    // burst later, and polling for it would only take the guest's CPU.
    let (mut g, _wire) = FakeGuest::with_wire();
    g.linux_probe();
    g.wr(IMC, u32::MAX);
    g.wr(IMS, ICR_LSC);
    g.wr(TDLEN, 4096);
    g.wr(TCTL, TCTL_EN);
    let e = g.bus.device().write_reg(TDT, 0);
    assert!(!e.next_access_soon, "polling driver: {e:?}");
    // Unmasking a packet interrupt makes it interrupt-driven; a reset forgets it.
    g.wr(IMS, ICR_RXT0);
    assert!(g.bus.device().write_reg(TDT, 0).next_access_soon);
    g.wr(CTRL, CTRL_RST);
    assert!(!g.bus.device().write_reg(TDT, 0).next_access_soon);
}
