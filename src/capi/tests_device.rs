//! Unit tests of the C API doing device work: frames both ways, interrupts, the clock,
//! reentry, threads.

use std::cell::Cell;
use std::ptr::null_mut;

use super::tests::*;
use super::*;
use crate::device::regs::*;

#[test]
fn a_frame_lands_in_the_embedders_memory_and_raises_the_interrupt() {
    let seen = Seen::default();
    let dev = create(&seen);
    seen.dev.set(dev);
    let ram = HostRam::new(RAM_SIZE);
    bring_up_rx(dev, &ram);
    let mut ready = false;
    // SAFETY: live device, valid out-pointer.
    let st = unsafe { nic_emu_rx_ready(dev, &mut ready) };
    assert_eq!(st, NicEmuStatus::Ok);
    assert!(ready);
    let f = frame_to(MacAddress::DEFAULT.octets());
    let mut o = NicEmuRxOutcome::Dropped;
    // SAFETY: live device, valid frame and out-pointer.
    let st = unsafe { nic_emu_receive_frame(dev, f.as_ptr(), f.len(), &mut o) };
    assert_eq!(st, NicEmuStatus::Ok);
    assert_eq!(o, NicEmuRxOutcome::Delivered);
    let desc = ram.read(RX_RING, 16);
    assert_eq!(u16::from_le_bytes([desc[8], desc[9]]), 60);
    assert_eq!(desc[12] & 0x03, 0x03, "DD|EOP");
    assert_eq!(ram.read(RX_BUFS, 60), f);
    assert_eq!(*seen.irq_levels.borrow(), [true]);
    assert_eq!(
        seen.reentry.get(),
        Some(NicEmuStatus::Reentrant),
        "a callback calling into its own device is refused"
    );
    let mut level = false;
    // SAFETY: live device, valid out-pointer.
    let st = unsafe { nic_emu_irq_level(dev, &mut level) };
    assert_eq!(st, NicEmuStatus::Ok);
    assert!(level);
    assert_eq!(rd32(dev, ICR) & ICR_RXT0, ICR_RXT0);
    assert_eq!(*seen.irq_levels.borrow(), [true, false]);
    // A frame for another MAC is filtered; a runt is dropped.
    let mut other = frame_to([2, 9, 9, 9, 9, 9]);
    // SAFETY: as above.
    unsafe {
        assert_eq!(
            nic_emu_receive_frame(dev, other.as_ptr(), other.len(), &mut o),
            NicEmuStatus::Ok
        );
        assert_eq!(o, NicEmuRxOutcome::Filtered);
        other.truncate(10);
        assert_eq!(
            nic_emu_receive_frame(dev, other.as_ptr(), other.len(), &mut o),
            NicEmuStatus::Ok
        );
        assert_eq!(o, NicEmuRxOutcome::Dropped);
    }
    let mut m = NicEmuMetrics::default();
    // SAFETY: live device, valid out-pointer.
    let st = unsafe { nic_emu_get_metrics(dev, &mut m) };
    assert_eq!(st, NicEmuStatus::Ok);
    assert_eq!((m.rx_frames, m.rx_filtered, m.rx_dropped), (1, 1, 1));
    assert_eq!((m.irq_asserts, m.dma_errors), (1, 0));
    destroy(dev);
}

#[test]
fn a_callback_may_call_another_device() {
    let seen_b = Seen::default();
    let b = create(&seen_b);
    let seen_a = Seen {
        other: Cell::new(b),
        ..Seen::default()
    };
    let a = create(&seen_a);
    // Raise an interrupt on A by software (ICS), unmasked.
    wr32(a, IMS, ICR_LSC);
    wr32(a, ICS, ICR_LSC);
    assert_eq!(*seen_a.irq_levels.borrow(), [true]);
    assert_eq!(seen_a.other_call.get(), Some(NicEmuStatus::Ok));
    destroy(a);
    destroy(b);
}

#[test]
fn manual_clock_drives_the_mitigation_timers() {
    let seen = Seen::default();
    let dev = create(&seen);
    let ram = HostRam::new(RAM_SIZE);
    bring_up_rx(dev, &ram);
    wr32(dev, RDTR, 100); // 100 x 1.024 us receive delay
    let f = frame_to(MacAddress::DEFAULT.octets());
    let (mut o, mut deadline, mut now) = (NicEmuRxOutcome::Dropped, 0u64, 0u64);
    // SAFETY: live device, valid buffers and out-pointers throughout.
    unsafe {
        assert_eq!(
            nic_emu_next_timer_deadline(dev, &mut deadline),
            NicEmuStatus::Ok
        );
        assert_eq!(deadline, NIC_EMU_NO_DEADLINE);
        assert_eq!(nic_emu_set_time_ns(dev, 1_000), NicEmuStatus::Ok);
        assert_eq!(nic_emu_set_time_ns(dev, 500), NicEmuStatus::Ok, "ignored");
        assert_eq!(nic_emu_now_ns(dev, &mut now), NicEmuStatus::Ok);
        assert_eq!(now, 1_000);
        nic_emu_receive_frame(dev, f.as_ptr(), f.len(), &mut o);
        assert_eq!(o, NicEmuRxOutcome::Delivered);
        assert!(seen.irq_levels.borrow().is_empty(), "delayed by RDTR");
        assert_eq!(
            nic_emu_next_timer_deadline(dev, &mut deadline),
            NicEmuStatus::Ok
        );
        assert!(
            deadline > now && deadline != NIC_EMU_NO_DEADLINE,
            "{deadline}"
        );
        assert_eq!(
            nic_emu_advance_time_ns(dev, deadline - now - 1),
            NicEmuStatus::Ok
        );
        assert_eq!(nic_emu_run_timers(dev), NicEmuStatus::Ok);
        assert!(seen.irq_levels.borrow().is_empty(), "not yet due");
        assert_eq!(nic_emu_advance_time_ns(dev, 1), NicEmuStatus::Ok);
        assert_eq!(nic_emu_run_timers(dev), NicEmuStatus::Ok);
        assert_eq!(*seen.irq_levels.borrow(), [true]);
        assert_eq!(nic_emu_advance_time_ns(dev, u64::MAX), NicEmuStatus::Ok);
        assert_eq!(nic_emu_now_ns(dev, &mut now), NicEmuStatus::Ok);
        assert_eq!(now, u64::MAX, "saturates");
    }
    destroy(dev);
}

#[test]
fn group_or_zero_mac_is_refused_and_unicast_accepted() {
    let mut cfg = std::mem::MaybeUninit::<NicEmuConfig>::uninit();
    let mut dev = null_mut();
    // SAFETY: valid pointers throughout; the one device created is destroyed.
    unsafe {
        assert_eq!(nic_emu_config_init(cfg.as_mut_ptr()), NicEmuStatus::Ok);
        let mut cfg = cfg.assume_init();
        for bad in [[0x01, 0x00, 0x5e, 0, 0, 1], [0xff; 6], [0; 6]] {
            cfg.mac = bad;
            assert_eq!(
                nic_emu_create(&cfg, &mut dev),
                NicEmuStatus::InvalidArgument,
                "{bad:02x?}"
            );
            assert!(dev.is_null());
        }
        cfg.mac = [0x02, 0, 0, 0, 0, 1];
        assert_eq!(nic_emu_create(&cfg, &mut dev), NicEmuStatus::Ok);
    }
    // The address is the EEPROM's: word 0 holds the first two octets (EERD, word 0).
    wr32(dev, EERD, EERD_START);
    let v = rd32(dev, EERD);
    assert_ne!(v & EERD_DONE, 0, "EERD {v:#x}");
    assert_eq!(v >> EERD_DATA_SHIFT, 0x0002, "EERD {v:#x}");
    destroy(dev);
}

#[test]
fn monotonic_clock_and_bad_clock_kind() {
    let mut cfg = std::mem::MaybeUninit::<NicEmuConfig>::uninit();
    let mut dev = null_mut();
    // SAFETY: valid pointers throughout; the device is destroyed at the end.
    unsafe {
        assert_eq!(nic_emu_config_init(cfg.as_mut_ptr()), NicEmuStatus::Ok);
        let mut cfg = cfg.assume_init();
        cfg.clock = 7;
        assert_eq!(
            nic_emu_create(&cfg, &mut dev),
            NicEmuStatus::InvalidArgument
        );
        assert!(dev.is_null());
        cfg.clock = NIC_EMU_CLOCK_MONOTONIC;
        assert_eq!(nic_emu_create(&cfg, &mut dev), NicEmuStatus::Ok);
        assert_eq!(nic_emu_set_time_ns(dev, 5), NicEmuStatus::ClockNotManual);
        assert_eq!(
            nic_emu_advance_time_ns(dev, 5),
            NicEmuStatus::ClockNotManual
        );
        let (mut t1, mut t2) = (0, 0);
        assert_eq!(nic_emu_now_ns(dev, &mut t1), NicEmuStatus::Ok);
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert_eq!(nic_emu_now_ns(dev, &mut t2), NicEmuStatus::Ok);
        assert!(t2 >= t1 + 1_000_000, "{t1} {t2}");
    }
    destroy(dev);
}

#[test]
fn link_and_reset() {
    let seen = Seen::default();
    let dev = create(&seen);
    // SAFETY: live device.
    unsafe {
        assert_eq!(nic_emu_set_link(dev, false), NicEmuStatus::Ok);
        assert_eq!(rd32(dev, STATUS) & STATUS_LU, 0);
        assert_eq!(nic_emu_set_link(dev, true), NicEmuStatus::Ok);
        assert_eq!(rd32(dev, STATUS) & STATUS_LU, STATUS_LU);
        wr32(dev, RDLEN, 4096);
        assert_eq!(nic_emu_reset(dev), NicEmuStatus::Ok);
        assert_eq!(rd32(dev, RDLEN), 0);
    }
    destroy(dev);
}

/// Queue `frame` in transmit descriptor `slot` of a ring at `TX_RING` and bump TDT.
fn transmit(dev: *mut NicEmuDevice, ram: &HostRam, slot: u64, frame: &[u8]) {
    const TX_RING: u64 = RAM_BASE + 0x8000;
    const TX_BUF: u64 = RAM_BASE + 0x9000;
    if slot == 0 {
        wr32(dev, TDBAL, TX_RING as u32);
        wr32(dev, TDBAH, (TX_RING >> 32) as u32);
        wr32(dev, TDLEN, 8 * 16);
        wr32(dev, TCTL, TCTL_EN | TCTL_PSP);
    }
    ram.write(TX_BUF, frame);
    let mut desc = [0u8; 16];
    desc[..8].copy_from_slice(&TX_BUF.to_le_bytes());
    desc[8..10].copy_from_slice(&(frame.len() as u16).to_le_bytes());
    desc[11] = 0x0B; // EOP | IFCS | RS
    ram.write(TX_RING + 16 * slot, &desc);
    wr32(dev, TDT, (slot + 1) as u32);
}

#[test]
fn transmitted_frames_reach_the_send_callback() {
    let seen = Seen::default();
    let dev = create(&seen);
    let ram = HostRam::new(RAM_SIZE);
    bring_up_rx(dev, &ram);
    let f = frame_to([2, 0, 0, 0, 0, 7]);
    transmit(dev, &ram, 0, &f);
    assert_eq!(*seen.sent.borrow(), std::slice::from_ref(&f));
    seen.refuse_sends.set(true);
    transmit(dev, &ram, 1, &f);
    assert_eq!(seen.sent.borrow().len(), 2);
    let mut m = NicEmuMetrics::default();
    // SAFETY: live device, valid out-pointer.
    let st = unsafe { nic_emu_get_metrics(dev, &mut m) };
    assert_eq!(st, NicEmuStatus::Ok);
    assert_eq!((m.tx_frames, m.tx_backend_drops), (1, 1));
    destroy(dev);
}

#[test]
fn calls_from_several_threads_are_serialised() {
    struct SendPtr(*mut NicEmuDevice);
    // SAFETY: the C API allows calls from any thread; the device serialises them.
    unsafe impl Send for SendPtr {}
    let seen = Seen::default();
    let dev = create(&seen);
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let p = SendPtr(dev);
            std::thread::spawn(move || {
                let p = p;
                for _ in 0..5_000 {
                    let mut b = [0u8; 4];
                    // SAFETY: the device outlives the threads (joined before destroy).
                    let st =
                        unsafe { nic_emu_bar_read(p.0, 0, u64::from(STATUS), b.as_mut_ptr(), 4) };
                    assert_eq!(st, NicEmuStatus::Ok);
                    assert_eq!(u32::from_le_bytes(b) & STATUS_LU, STATUS_LU);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut m = NicEmuMetrics::default();
    // SAFETY: live device, valid out-pointer.
    let st = unsafe { nic_emu_get_metrics(dev, &mut m) };
    assert_eq!(st, NicEmuStatus::Ok);
    assert_eq!(m.reg_reads, 10_000);
    destroy(dev);
}

#[test]
fn lints_and_drop_reasons_through_the_c_api() {
    use std::ffi::CStr;
    let seen = Seen::default();
    let dev = create(&seen);
    let ram = HostRam::new(RAM_SIZE);
    bring_up_rx(dev, &ram);
    let f = frame_to([2, 0, 0, 0, 0, 7]);
    let mut total = u64::MAX;
    // SAFETY: live device, valid out-pointer.
    let st = unsafe { nic_emu_lint_total(dev, NIC_EMU_LINT_WARN, &mut total) };
    assert_eq!(st, NicEmuStatus::Ok);
    let clean = total;
    // A transmitted frame without IFCS, and a frame for another MAC.
    wr32(dev, TDBAL, (RAM_BASE + 0x8000) as u32);
    wr32(dev, TDLEN, 8 * 16);
    wr32(dev, TCTL, TCTL_EN | TCTL_PSP);
    ram.write(RAM_BASE + 0x9000, &f);
    let mut desc = [0u8; 16];
    desc[..8].copy_from_slice(&(RAM_BASE + 0x9000).to_le_bytes());
    desc[8..10].copy_from_slice(&(f.len() as u16).to_le_bytes());
    desc[11] = 0x09; // EOP | RS, no IFCS
    ram.write(RAM_BASE + 0x8000, &desc);
    wr32(dev, TDT, 1);
    let mut o = NicEmuRxOutcome::Dropped;
    let other = frame_to([2, 9, 9, 9, 9, 9]);
    let (mut n, mut needed) = (0u64, 0usize);
    let mut buf = vec![0 as c_char; 4096];
    // SAFETY: live device; every pointer is valid for what the call writes; the strings
    // are NUL-terminated.
    unsafe {
        nic_emu_receive_frame(dev, other.as_ptr(), other.len(), &mut o);
        assert_eq!(
            nic_emu_lint_total(dev, NIC_EMU_LINT_WARN, &mut total),
            NicEmuStatus::Ok
        );
        assert_eq!(total, clean + 1);
        assert_eq!(
            nic_emu_lint_count(dev, c"tx-no-ifcs".as_ptr(), &mut n),
            NicEmuStatus::Ok
        );
        assert_eq!(n, 1);
        assert_eq!(
            nic_emu_lint_count(dev, c"no-such-lint".as_ptr(), &mut n),
            NicEmuStatus::InvalidArgument
        );
        assert_eq!(
            nic_emu_lint_count(dev, std::ptr::null(), &mut n),
            NicEmuStatus::NullPointer
        );
        assert_eq!(
            nic_emu_lint_total(dev, 7, &mut total),
            NicEmuStatus::InvalidArgument
        );
        assert_eq!(
            nic_emu_drop_count(dev, c"rx".as_ptr(), c"filtered_unicast".as_ptr(), &mut n),
            NicEmuStatus::Ok
        );
        assert_eq!(n, 1);
        assert_eq!(
            nic_emu_drop_count(dev, c"rx".as_ptr(), c"nonsense".as_ptr(), &mut n),
            NicEmuStatus::InvalidArgument
        );
        // The report: asked for its size, too small, then whole.
        assert_eq!(
            nic_emu_lint_report(dev, null_mut(), 0, &mut needed),
            NicEmuStatus::InvalidLength
        );
        assert!(needed > 10);
        assert_eq!(
            nic_emu_lint_report(dev, buf.as_mut_ptr(), 5, &mut needed),
            NicEmuStatus::InvalidLength
        );
        assert_eq!(CStr::from_ptr(buf.as_ptr()).to_bytes().len(), 4);
        assert_eq!(
            nic_emu_lint_report(dev, buf.as_mut_ptr(), buf.len(), &mut needed),
            NicEmuStatus::Ok
        );
        let text = CStr::from_ptr(buf.as_ptr()).to_str().unwrap();
        assert_eq!(text.len() + 1, needed);
        assert!(
            text.lines()
                .any(|l| l.starts_with("tx-no-ifcs warn 1 descriptor 0: CMD=0x09")),
            "{text}"
        );
        assert_eq!(nic_emu_lints_clear(dev), NicEmuStatus::Ok);
        assert_eq!(
            nic_emu_lint_total(dev, NIC_EMU_LINT_INFO, &mut total),
            NicEmuStatus::Ok
        );
        assert_eq!(total, 0);
    }
    destroy(dev);
}
