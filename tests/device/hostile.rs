//! A hostile guest: ring layouts, descriptors, DMA addresses and register values that
//! broke other emulated e1000s. Every case runs under a watchdog and must finish with no
//! panic, no hang, and no write to guest memory outside what the guest named.

use crate::support;

use nic_emu::device::regs::*;
use nic_emu::Bar;
use proptest::prelude::*;
use support::*;

const RAM: usize = 16 << 20;
const GUARD: u8 = 0xA5;

/// Fill all of RAM with the guard pattern.
fn fill_guard(g: &FakeGuest) {
    let chunk = vec![GUARD; 1 << 20];
    for i in 0..(RAM >> 20) {
        g.bus.ram().write((i as u64) << 20, &chunk).unwrap();
    }
}

/// Every byte of RAM outside `allowed` (address ranges) still holds the guard.
fn assert_guard_intact(g: &FakeGuest, allowed: &[(u64, u64)]) {
    let mut buf = vec![0u8; 1 << 20];
    for i in 0..(RAM >> 20) {
        let base = (i as u64) << 20;
        g.bus.ram().read(base, &mut buf).unwrap();
        for (j, &b) in buf.iter().enumerate() {
            let a = base + j as u64;
            if b != GUARD && !allowed.iter().any(|&(s, e)| a >= s && a < e) {
                panic!("stray write at {a:#x}: {b:#x}");
            }
        }
    }
}

fn opened_with_guard(rx: u32) -> (FakeGuest, TestWire) {
    let (mut g, wire) = FakeGuest::with_wire();
    g.linux_probe();
    fill_guard(&g);
    g.linux_open(8, rx);
    g.rd(ICR);
    (g, wire)
}

#[test]
fn oversize_frame_without_lpe_cannot_overflow_a_buffer() {
    // CVE-2012-6075: a frame larger than the buffer, LPE off.
    watchdog(10, || {
        let (mut g, wire) = opened_with_guard(8);
        for len in [1519usize, 2048, 4096, 16384, 65535] {
            wire.inject(&frame(MAC, PEER, 0x0800, len - 14, 1));
        }
        g.bus.poll();
        assert!(g.recv().is_none());
        assert_eq!(g.rd(ROC), 5);
        // Only the ring itself was written by the driver model; no buffer was touched.
        assert_guard_intact(
            &g,
            &[(RX_RING, RX_RING + 8 * 16), (TX_RING, TX_RING + 8 * 16)],
        );
    });
}

#[test]
fn rx_writes_stay_inside_the_named_buffers() {
    watchdog(20, || {
        let (mut g, wire) = opened_with_guard(16);
        let rctl = g.rd(RCTL);
        g.wr(
            RCTL,
            (rctl & !RCTL_BSIZE_MASK) | (3 << RCTL_BSIZE_SHIFT) | RCTL_LPE,
        ); // 256 B
        wire.inject(&frame(MAC, PEER, 0x0800, 1000, 2)); // 4 buffers
        wire.inject(&frame(MAC, PEER, 0x0800, 10, 3));
        g.bus.poll();
        let mut allowed = vec![(RX_RING, RX_RING + 16 * 16), (TX_RING, TX_RING + 8 * 16)];
        for i in 0..16 {
            let b = RX_BUFS + i * RX_SLOT;
            allowed.push((b, b + 256));
        }
        assert_guard_intact(&g, &allowed);
    });
}

#[test]
fn tiny_or_inconsistent_rings_do_not_loop() {
    // CVE-2016-1981: RDLEN tiny, RDH/RDT beyond the ring.
    watchdog(10, || {
        let (mut g, wire) = opened_with_guard(8);
        for (rdlen, rdh, rdt) in [
            (0, 0, 0),
            (16, 0, 5),
            (127, 3, 1),
            (128, 9, 3),
            (128, 3, 0xFFFF),
            (0xFFFF_FFFF, 0xFFFF_FFFF, 0xFFFF_FFFF),
        ] {
            g.wr(RDLEN, rdlen);
            g.wr(RDH, rdh);
            g.wr(RDT, rdt);
            wire.inject(&frame(MAC, PEER, 0x0800, 100, 4));
            g.bus.poll();
            g.wr(TDLEN, rdlen);
            g.wr(TDH, rdh);
            g.wr(TDT, rdt);
        }
        // Head never runs past the ring: a sane ring afterwards works again.
        g.linux_open(8, 8);
        while wire.pending() > 0 {
            g.bus.poll();
            while g.recv().is_some() {}
        }
    });
}

#[test]
fn null_and_out_of_ram_buffers_are_consumed_not_looped_on() {
    // CVE-2020-28916: RX descriptor with buffer address 0.
    watchdog(10, || {
        let (mut g, wire) = opened_with_guard(8);
        let bad = [
            0u64,
            RAM as u64 - 8,
            RAM as u64,
            0xFEBC_0000,
            u64::MAX - 100,
        ];
        for (i, a) in bad.iter().enumerate() {
            g.bus
                .ram()
                .write(RX_RING + i as u64 * 16, &a.to_le_bytes())
                .unwrap();
        }
        for i in 0..7u8 {
            wire.inject(&frame(MAC, PEER, 0x0800, 100, i));
        }
        g.bus.poll();
        assert_eq!(g.rd(RDH), 7, "every descriptor consumed once");
        let m = g.bus.device().metrics();
        assert!(m.dma_errors >= 4, "out-of-RAM buffers counted: {m:?}");
        // The last 8 bytes of RAM are guest-named (descriptor 1 points there).
        assert_guard_intact(
            &g,
            &[
                (RX_RING, RX_RING + 8 * 16),
                (TX_RING, TX_RING + 8 * 16),
                (RAM as u64 - 8, RAM as u64),
                (RX_BUFS + 5 * RX_SLOT, RX_BUFS + 7 * RX_SLOT),
            ],
        );
    });
}

#[test]
fn rings_outside_ram_or_on_the_device_bar() {
    // DMA aimed at the device's own registers (re-entrancy) or past RAM.
    watchdog(10, || {
        let (mut g, wire) = opened_with_guard(8);
        for base in [0xFEBC_0000u64, RAM as u64 - 64, 0xFFFF_FFF0, 0x1_0000_0000] {
            g.wr(RDBAL, base as u32);
            g.wr(RDBAH, (base >> 32) as u32);
            g.wr(RDH, 0);
            g.wr(RDT, 7);
            g.wr(TDBAL, base as u32);
            g.wr(TDBAH, (base >> 32) as u32);
            g.wr(TDH, 0);
            g.wr(TDT, 7);
            wire.inject(&frame(MAC, PEER, 0x0800, 100, 1));
            g.bus.poll();
        }
        assert!(g.bus.device().metrics().dma_errors > 0);
        // Ring base not 16-byte aligned: the low bits are ignored as on hardware.
        g.wr(RDBAL, RX_RING as u32 | 0xF);
        assert_eq!(g.rd(RDBAL), RX_RING as u32);
        assert_guard_intact(
            &g,
            &[
                (RX_RING, RX_RING + 8 * 16),
                (TX_RING, TX_RING + 8 * 16),
                (RAM as u64 - 64, RAM as u64),
            ],
        );
    });
}

#[test]
fn hostile_bar_and_config_accesses() {
    watchdog(10, || {
        let (mut g, _) = FakeGuest::with_wire();
        let d = g.bus.device();
        let mut buf = [0u8; 64];
        for off in [0u64, 3, 0x1FFFF, 0x1FFFC, 0x20000, u64::MAX, u64::MAX - 2] {
            for len in [0usize, 1, 2, 3, 4, 8, 64] {
                d.bar_read(Bar::Mmio, off, &mut buf[..len]);
                d.bar_write(Bar::Mmio, off, &buf[..len]);
                d.bar_read(Bar::Io, off, &mut buf[..len]);
                d.bar_write(Bar::Io, off, &buf[..len]);
                d.config_read(off, &mut buf[..len]);
                d.config_write(off, &buf[..len]);
            }
        }
        // IOADDR beyond BAR0 wraps into it, never outside.
        d.bar_write(Bar::Io, 0, &0xFFFF_FFFFu32.to_le_bytes());
        d.bar_write(Bar::Io, 4, &0u32.to_le_bytes());
        d.bar_read(Bar::Io, 4, &mut buf[..4]);
        // The fake bus: addresses that wrap.
        let _ = g.bus.mmio_read32(u64::MAX - 1);
        g.bus.mmio_write32(u64::MAX, 1);
        let _ = g.bus.io_read32(u16::MAX);
    });
}

/// One thing a hostile guest can do.
#[derive(Debug, Clone)]
enum Op {
    Reg(u32, u32),
    RegRead(u32),
    Io(u64, u32),
    Config(u64, u32),
    Ram(u64, [u8; 16]),
    Frame(u16, u8),
    Time(u32),
}

fn interesting_reg() -> impl Strategy<Value = u32> {
    prop_oneof![
        prop::sample::select(vec![
            CTRL, EECD, EERD, MDIC, ICR, ICS, IMS, IMC, ITR, RCTL, TCTL, RDBAL, RDBAH, RDLEN, RDH,
            RDT, RDTR, RADV, TDBAL, TDBAH, TDLEN, TDH, TDT, TIDV, TADV, RXCSUM, VET, MTA, RAL0,
            RAH0, VFTA, GORCH, GPRC,
        ]),
        (0u32..0x2_0000).prop_map(|o| o & !3),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (interesting_reg(), any::<u32>()).prop_map(|(r, v)| Op::Reg(r, v)),
        2 => interesting_reg().prop_map(Op::RegRead),
        1 => (0u64..0x48, any::<u32>()).prop_map(|(o, v)| Op::Io(o, v)),
        1 => (0u64..0x100, any::<u32>()).prop_map(|(o, v)| Op::Config(o, v)),
        // Descriptor rings live in the first 256 KiB: scribble there.
        3 => ((0u64..0x4_0000).prop_map(|a| a & !0xF), any::<[u8; 16]>()).prop_map(|(a, d)| Op::Ram(a, d)),
        2 => (0u16..20_000, any::<u8>()).prop_map(|(l, s)| Op::Frame(l, s)),
        1 => (0u32..100_000).prop_map(Op::Time),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Random register writes, descriptor contents and frames never panic or hang.
    #[test]
    fn random_guest_never_breaks_the_device(ops in prop::collection::vec(op(), 1..300)) {
        watchdog(30, move || {
            let (mut g, wire) = FakeGuest::with_wire();
            g.linux_probe();
            g.linux_open(8, 8);
            for op in ops {
                match op {
                    Op::Reg(r, v) => g.wr(r, v),
                    Op::RegRead(r) => { g.rd(r); }
                    Op::Io(o, v) => { let p = g.bus.io_base(); g.bus.io_write32(p + o as u16, v) }
                    Op::Config(o, v) => g.bus.config_write32(o as u16, v),
                    Op::Ram(a, d) => g.bus.ram().write(a, &d).unwrap(),
                    Op::Frame(len, seed) => {
                        let dst = if seed & 1 == 0 { MAC } else { [0xFF; 6] };
                        // VLAN-typed and IP-typed frames, some cut down to runts.
                        let ty = if seed & 2 == 0 { 0x0800 } else { 0x8100 };
                        let mut f = frame(dst, PEER, ty, usize::from(len), seed);
                        if seed & 4 != 0 {
                            f.truncate(usize::from(len) % 24);
                        }
                        wire.inject(&f);
                        g.bus.poll();
                    }
                    Op::Time(us) => g.advance_us(u64::from(us)),
                }
            }
            g.bus.poll();
        });
    }
}

#[test]
fn one_tail_write_does_bounded_work_and_the_rest_follows() {
    use nic_emu::device::tx::TX_FRAME_BUDGET;
    watchdog(20, || {
        let (mut g, wire) = FakeGuest::with_wire();
        g.linux_probe();
        g.linux_open(8192, 8);
        let f = frame(PEER, MAC, 0x0800, 50, 1);
        g.bus.ram().write(TX_BUFS, &f).unwrap();
        let n = TX_FRAME_BUDGET as u32 + 1000;
        for _ in 0..n {
            g.write_tx_desc(TX_BUFS, f.len() as u16, TXD_EOP | TXD_IFCS, 0);
        }
        let tail = g.tx_tail;
        g.wr(TDT, tail);
        assert_eq!(
            wire.take_sent().len() as u64,
            TX_FRAME_BUDGET,
            "one write, one budget"
        );
        assert!(g.bus.device().tx_pending());
        assert_eq!(g.rd(TDH), TX_FRAME_BUDGET as u32);
        assert_eq!(g.rd(ICR) & ICR_TXQE, 0, "not empty yet");
        g.bus.poll();
        assert_eq!(
            wire.take_sent().len(),
            1000,
            "the event loop finishes the ring"
        );
        assert!(!g.bus.device().tx_pending());
        assert_eq!(g.rd(TDH), n);
        assert_ne!(g.rd(ICR) & ICR_TXQE, 0);
    });
}

#[test]
fn loopback_modes_cannot_recurse() {
    // CVE-2021-3416: TX feeding its own RX recursively. Here the transmitter hands each
    // looped frame to the receive path once and the receive path never transmits (a
    // loopback backend would queue, and its receive pass is bounded). The guest turns on
    // every loopback knob it has and floods its own address.
    watchdog(20, || {
        let mut g = FakeGuest::new(Box::new(nic_emu::backend::Loopback::new()));
        g.linux_probe();
        g.linux_open(256, 256);
        let bmcr = g.mdic_read(0);
        g.mdic_write(0, bmcr | 0x4000); // PHY loopback
        g.set_bits(RCTL, RCTL_LBM_MASK); // MAC/PHY loopback mode bits
        let f = frame(MAC, PEER, 0x0800, 1000, 1);
        g.bus.ram().write(TX_BUFS, &f).unwrap();
        for _ in 0..255 {
            g.write_tx_desc(TX_BUFS, f.len() as u16, TXD_EOP | TXD_IFCS | TXD_RS, 0);
        }
        let tail = g.tx_tail;
        g.wr(TDT, tail);
        let mut got = 0;
        for _ in 0..1000 {
            match g.recv() {
                Some(r) => {
                    assert_eq!(r, f);
                    got += 1;
                }
                None if got == 255 => break,
                None => {
                    g.bus.poll();
                }
            }
        }
        assert_eq!(got, 255, "each frame comes back exactly once");
        let m = g.bus.device().metrics();
        assert_eq!(m.tx_looped, 255, "looped inside the card");
        assert_eq!(m.tx_frames, 0, "nothing reached the backend");
        assert_eq!(m.rx_frames, 255);
    });
}

#[test]
fn truncated_vlan_frames_from_the_network_with_stripping_on() {
    // Frames from the backend are hostile too: a VLAN type with no room for the tag.
    watchdog(10, || {
        let (mut g, wire) = FakeGuest::with_wire();
        g.linux_probe();
        g.linux_open(8, 16);
        g.set_bits(CTRL, CTRL_VME);
        g.set_bits(RCTL, RCTL_VFE | RCTL_UPE);
        for len in 14..=20usize {
            let mut f = frame(MAC, PEER, 0x8100, len - 14, len as u8);
            f.truncate(len);
            wire.inject(&f);
        }
        g.bus.poll();
        let mut n = 0;
        while g.recv().is_some() {
            n += 1;
        }
        assert!(n >= 2, "the untagged-looking runts pass the filter: {n}");
    });
}
