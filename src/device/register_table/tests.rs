//! The table's own consistency. The behaviour of every register through the device is
//! tested in `tests/device/registers.rs`.

use super::*;

#[test]
fn entries_are_in_offset_order_inside_bar0_and_never_overlap() {
    let mut seen = std::collections::HashMap::new();
    let mut last = None;
    for r in &REGISTERS {
        assert!(
            r.count >= 1 && (r.stride == 4 || r.stride == 8),
            "{}",
            r.name
        );
        assert_eq!(r.offset % 4, 0, "{}", r.name);
        if let Some(prev) = last {
            assert!(r.offset > prev, "{} out of order", r.name);
        }
        last = Some(r.offset);
        for e in 0..u32::from(r.count) {
            let off = r.offset + e * u32::from(r.stride);
            assert!(u64::from(off) < BAR0_SIZE, "{} element {e}", r.name);
            if let Some(other) = seen.insert(off, r.name) {
                panic!("{} element {e} overlaps {other} at {off:#x}", r.name);
            }
        }
        // A reset value keeps only bits the register can hold (or that the hardware
        // sets): checked per register where it matters in tests/device/registers.rs.
        assert_eq!(
            r.writable & r.action,
            0,
            "{}: action bits are never stored",
            r.name
        );
    }
}

#[test]
fn lookup_finds_every_element_and_nothing_between() {
    for (i, r) in REGISTERS.iter().enumerate() {
        for e in 0..u32::from(r.count) {
            let off = r.offset + e * u32::from(r.stride);
            for byte in 0..4 {
                let (found, element) = lookup(off + byte).expect("registered");
                assert!(std::ptr::eq(found, &REGISTERS[i]));
                assert_eq!(element, e);
            }
        }
        if r.stride == 8 {
            // Between two elements: another register (RAH between RALs) or nothing.
            let between = lookup(r.offset + 4).map(|(x, _)| x.name);
            assert_ne!(between, Some(r.name), "{}: gap", r.name);
        }
    }
    assert!(lookup(0x0004).is_none());
    assert!(lookup(FLA).is_none(), "FLA is not an 82540EM register");
    assert!(lookup(0x4024).is_none(), "hole in the statistics block");
    assert!(lookup(u32::MAX).is_none());
    assert!(lookup(BAR0_SIZE as u32).is_none());
}

#[test]
fn names_carry_the_array_index() {
    assert_eq!(name_of(CTRL).unwrap().to_string(), "CTRL");
    assert_eq!(name_of(ICR + 2).unwrap().to_string(), "ICR");
    assert_eq!(name_of(MTA + 4 * 5).unwrap().to_string(), "MTA[5]");
    assert_eq!(name_of(ral(3)).unwrap().to_string(), "RAL[3]");
    assert_eq!(name_of(rah(15)).unwrap().to_string(), "RAH[15]");
    assert_eq!(name_of(VFTA + 4 * 127).unwrap().to_string(), "VFTA[127]");
    assert_eq!(name_of(FFMT + 8 * 2).unwrap().to_string(), "FFMT[2]");
    assert_eq!(name_of(PBM + 4 * 0x3FFF).unwrap().to_string(), "PBM[16383]");
    assert_eq!(name_of(GORCH).unwrap().name, "GORCH");
    assert_eq!(name_of(0x0004), None);
    let n = name_of(MTA).unwrap();
    assert_eq!((n.name, n.index), ("MTA", Some(0)));
}

#[test]
fn the_register_test_masks_of_linux_e1000() {
    // drivers/net/ethernet/intel/e1000/e1000_ethtool.c, e1000_reg_test: the mask each
    // register is compared under is exactly the register's defined bits.
    for (off, mask) in [
        (FCAL, 0xFFFF_FFFF),
        (FCAH, 0x0000_FFFF),
        (FCT, 0x0000_FFFF),
        (VET, 0x0000_FFFF),
        (RDTR, 0x0000_FFFF),
        (RDBAH, 0xFFFF_FFFF),
        (RDLEN, 0x000F_FF80),
        (RDH, 0x0000_FFFF),
        (RDT, 0x0000_FFFF),
        (FCRTH, 0x0000_FFF8),
        (FCTTV, 0x0000_FFFF),
        (TIPG, 0x3FFF_FFFF),
        (TDBAH, 0xFFFF_FFFF),
        (TDLEN, 0x000F_FF80),
        (RCTL, 0x06DF_B3FE),
        (RDBAL, 0xFFFF_FFF0),
        (TDBAL, 0xFFFF_FFF0),
        (TIDV, 0x0000_FFFF),
        (rah(0), 0x8003_FFFF),
        (rah(15), 0x8003_FFFF),
        (MTA, 0xFFFF_FFFF),
        (MTA + 4 * 127, 0xFFFF_FFFF),
    ] {
        assert_eq!(writable(off), mask, "{}", name_of(off).unwrap());
    }
    // TXCW is tested under C000FFFF with only its low half written.
    assert_eq!(writable(TXCW) & 0xC000_FFFF, 0xC000_FFFF);
    assert_eq!(lookup(STATUS).unwrap().0.access, Access::ReadOnly);
}

#[test]
fn wus_bits_clear_when_written_with_one() {
    use crate::backend::Loopback;
    use crate::{DeviceConfig, ManualClock, SharedIrqLine, E1000};
    use std::sync::Arc;
    let mut d = E1000::new(
        DeviceConfig::default(),
        Box::new(Loopback::new()),
        Box::new(SharedIrqLine::new()),
        Arc::new(ManualClock::new()),
    );
    // Nothing in this model sets WUS (no wake-up logic): put the status bits there as
    // the wake-up logic of the part would.
    d.regs[(WUS / 4) as usize] = 0x0001_0003; // FLX0, MAG, LNKC
    d.write_reg(WUS, 0x0000_0002);
    assert_eq!(d.read_reg(WUS), 0x0001_0001, "MAG cleared, the rest kept");
    d.write_reg(WUS, 0);
    assert_eq!(d.read_reg(WUS), 0x0001_0001, "0 bits leave the bits alone");
    d.write_reg(WUS, 0xFFFF_FFFF);
    assert_eq!(d.read_reg(WUS), 0);
}
