//! A hostile guest against the transmit engine: segmentation contexts that looped or
//! overflowed other emulated e1000s, mixed descriptor kinds, oversize packets, buffers
//! and rings outside RAM, inconsistent ring registers and random descriptors. Every case
//! runs under a watchdog, and guest memory is compared before and after: the device may
//! change nothing but descriptor status bytes.

use crate::support;
use crate::support::tx;

use nic_emu::device::regs::*;
use support::*;
use tx::*;

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
        // Ring outside RAM: the first descriptor is unreadable, so the engine stops
        // on it, counts it and writes nothing.
        g.wr(TDLEN, 8 * 16);
        g.wr(TDBAL, 0xFFFF_FF00);
        g.wr(TDH, 0);
        g.wr(TDT, 7);
        assert_eq!(
            g.rd(TDH),
            0,
            "nothing past an unreadable descriptor is consumed"
        );
        assert_eq!(g.bus.device().metrics().tx_malformed, 5);
        only_status_bytes_changed(&g, &before, 8);
    });
}

#[test]
fn ring_running_off_the_end_of_ram_stops_at_the_first_unreadable_descriptor() {
    watchdog(10, || {
        let (mut g, wire) = hostile(8);
        // Four readable descriptors in the last 64 bytes of RAM, four past its end.
        let base = RAM as u64 - 4 * 16;
        let f = frame(PEER, MAC, 0x0800, 100, 1);
        g.bus.ram().write(DATA, &f).unwrap();
        for i in 0..4u64 {
            let d = legacy_desc(DATA, f.len() as u16, D_EOP | D_IFCS | D_RS, 0, 0, 0);
            g.bus.ram().write(base + i * 16, &d).unwrap();
        }
        g.wr(TDLEN, 8 * 16);
        g.wr(TDBAH, 0);
        g.wr(TDBAL, base as u32);
        g.wr(TDH, 0);
        g.wr(TDT, 7);
        assert_eq!(wire.take_sent(), vec![f.clone(); 4]);
        assert_eq!(g.rd(TDH), 4, "stopped on the first descriptor past RAM");
        let problems = g.bus.device().metrics().tx_malformed;
        assert_eq!(problems, 1);
        let mut sta = [0u8; 1];
        for i in 0..4u64 {
            g.bus.ram().read(base + i * 16 + 12, &mut sta).unwrap();
            assert_eq!(sta[0] & 1, 1, "descriptor {i} done");
        }
        // Another doorbell retries the same descriptor: one failed read, nothing sent.
        g.wr(TDT, 6);
        assert_eq!(g.rd(TDH), 4);
        assert!(wire.take_sent().is_empty());
        assert_eq!(g.bus.device().metrics().tx_malformed, problems + 1);
        // The guest moves its ring back into RAM: transmission goes on.
        g.wr(TDBAL, TX_RING as u32);
        g.wr(TDH, 0);
        g.wr(TDT, 0);
        g.tx_tail = 0;
        g.send(&f);
        assert_eq!(wire.take_sent(), vec![f]);
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
