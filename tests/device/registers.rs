//! Every register of the device's register table, through the BAR as a driver reaches
//! it: the reset value, the writable mask (reserved bits read 0), the read behaviour;
//! and Linux e1000's own register self-test (`ethtool -t`, e1000_reg_test) replayed.

use crate::support;

use nic_emu::backend::Loopback;
use nic_emu::device::register_table::{lookup, Access, Register, REGISTERS};
use nic_emu::device::regs::*;
use support::*;

fn guest() -> FakeGuest {
    FakeGuest::new(Box::new(Loopback::new()))
}

/// Every element's offset of `r`.
fn offsets(r: &Register) -> impl Iterator<Item = u32> + '_ {
    (0..u32::from(r.count)).map(move |e| r.offset + e * u32::from(r.stride))
}

/// Registers whose value a module computes or whose accesses drive an interface: each
/// has its own test below or in its module.
const DRIVEN: &[&str] = &[
    "CTRL", "STATUS", "EECD", "EERD", "MDIC", "PBA", "ICR", "ICS", "IMS", "IMC",
];

#[test]
fn every_register_reads_its_reset_value_after_ctrl_rst() {
    let mut g = guest();
    // Scribble over everything writable, then reset.
    for r in REGISTERS.iter().filter(|r| r.access == Access::ReadWrite) {
        for off in offsets(r).filter(|&o| o != CTRL) {
            g.wr(off, 0xFFFF_FFFF);
        }
    }
    g.wr(CTRL, CTRL_RST);
    for r in &REGISTERS {
        for (e, off) in offsets(r).enumerate() {
            let got = g.rd(off);
            let want = match (r.name, e) {
                ("RAL", 0) => u32::from_le_bytes([MAC[0], MAC[1], MAC[2], MAC[3]]),
                ("RAH", 0) => u32::from(u16::from_le_bytes([MAC[4], MAC[5]])) | RAH_AV,
                // EEPROM present, data-out idle high; the rest of the interface idle.
                ("EECD", _) => EECD_PRES | EECD_DO,
                _ => r.reset,
            };
            assert_eq!(got, want, "{} element {e} at {off:#x}", r.name);
        }
    }
    assert_eq!(
        g.rd(STATUS),
        STATUS_RESET,
        "link up, 1000 Mb/s, full duplex"
    );
    assert_eq!(g.rd(PBA), 0x0010_0030, "48 KB receive, 16 KB transmit");
}

#[test]
fn every_plain_register_keeps_exactly_its_writable_bits() {
    let mut g = guest();
    for r in REGISTERS.iter().filter(|r| !DRIVEN.contains(&r.name)) {
        for off in offsets(r) {
            let before = g.rd(off);
            for pattern in [0xFFFF_FFFF, 0x5A5A_5A5A, 0xA5A5_A5A5, 0] {
                g.wr(off, pattern);
                let got = g.rd(off);
                match r.access {
                    Access::ReadWrite => assert_eq!(
                        got,
                        pattern & r.writable,
                        "{} at {off:#x} after writing {pattern:#010x}",
                        r.name
                    ),
                    // Statistics (clear on read, nothing counted here), status and
                    // wake-up memory: a write changes nothing.
                    Access::ClearOnRead | Access::ReadOnly => {
                        assert_eq!(got, 0, "{} at {off:#x} is not writable", r.name);
                        assert_eq!(before, 0, "{}", r.name);
                    }
                    // Nothing sets WUS in this model (no wake-up), so writes of 1 clear
                    // nothing and set nothing.
                    Access::WriteOneToClear => assert_eq!(got, 0, "{}", r.name),
                    Access::WriteOnly | Access::WriteOneToSet => {
                        unreachable!("{} is driven", r.name)
                    }
                }
            }
        }
    }
}

#[test]
fn reserved_offsets_read_zero_and_ignore_writes() {
    let mut g = guest();
    let mut checked = 0;
    for off in (0..BAR0_SIZE as u32).step_by(4) {
        if lookup(off).is_some() {
            continue;
        }
        g.wr(off, 0xFFFF_FFFF);
        assert_eq!(g.rd(off), 0, "reserved offset {off:#x}");
        checked += 1;
    }
    // 32768 dwords in BAR0, most of them packet buffer memory.
    assert!(checked > 10_000, "{checked}");
}

#[test]
fn ctrl_keeps_its_defined_bits_and_rst_reads_zero() {
    let mut g = guest();
    g.wr(CTRL, !CTRL_RST);
    assert_eq!(g.rd(CTRL), CTRL_STORED);
    g.wr(CTRL, 0);
    assert_eq!(g.rd(CTRL), 0);
    g.wr(RCTL, RCTL_EN);
    g.wr(CTRL, CTRL_RST | CTRL_SLU);
    assert_eq!(g.rd(CTRL), CTRL_RESET, "RST resets and self-clears");
    assert_eq!(g.rd(RCTL), 0);
}

#[test]
fn action_bits_act_and_read_zero() {
    let mut g = guest();
    g.wr(RDTR, RDTR_FPD | 0x1234);
    assert_eq!(g.rd(RDTR), 0x1234);
    g.wr(TIDV, TIDV_FPD | 0x0042);
    assert_eq!(g.rd(TIDV), 0x0042);
    g.wr(TCTL, TCTL_SWXOFF | TCTL_PSP);
    assert_eq!(g.rd(TCTL), TCTL_PSP);
    g.wr(CTRL_EXT, CTRL_EXT_EE_RST | 0x0F);
    assert_eq!(g.rd(CTRL_EXT), 0x0F);
}

#[test]
fn pba_txa_is_what_rxa_leaves_of_64_kb() {
    let mut g = guest();
    g.wr(PBA, 0x30);
    assert_eq!(g.rd(PBA), 0x0010_0030);
    g.wr(PBA, 0xFFFF_0028);
    assert_eq!(g.rd(PBA), 0x0018_0028, "TXA is read-only");
    g.wr(PBA, 0x7F);
    assert_eq!(g.rd(PBA), 0x7F, "RXA beyond 64 KB leaves no TXA");
}

#[test]
fn interrupt_registers_behave_as_the_datasheet_says() {
    let mut g = guest();
    // IMS: write 1 to set, reads the mask; IMC: write 1 to clear, reads 0.
    g.wr(IMS, 0xFFFF_FFFF);
    assert_eq!(g.rd(IMS), ICR_VALID, "reserved mask bits read 0");
    g.wr(IMC, ICR_RXT0);
    assert_eq!(g.rd(IMS), ICR_VALID & !ICR_RXT0);
    assert_eq!(g.rd(IMC), 0, "IMC is write-only");
    g.wr(IMC, 0xFFFF_FFFF);
    // ICS sets causes; reading ICS shows them and leaves them pending.
    g.wr(ICS, ICR_TXDW | ICR_LSC);
    let pending = ICR_TXDW | ICR_LSC | ICR_INT_ASSERTED;
    assert_eq!(g.rd(ICS), pending);
    assert_eq!(g.rd(ICS), pending, "reading ICS clears nothing");
    // ICR: write 1 clears; read returns and clears.
    g.wr(ICR, ICR_TXDW);
    assert_eq!(g.rd(ICS), ICR_LSC | ICR_INT_ASSERTED);
    assert_eq!(g.rd(ICR), ICR_LSC | ICR_INT_ASSERTED);
    assert_eq!(g.rd(ICR), 0);
    assert_eq!(g.rd(ICS), 0);
}

#[test]
fn ics_read_leaves_the_causes_pending_and_the_line_up() {
    // VxWorks' driver reads ICS to learn what is pending while it keeps ICR for its
    // handler: the causes must still be in ICR afterwards, and the line unaffected.
    let mut g = guest();
    g.linux_probe();
    g.linux_open(8, 8);
    g.rd(ICR);
    g.advance_us(1000); // past the ITR interval since linux_open's LSC
    g.wr(ICS, ICR_RXT0);
    assert!(g.bus.irq().level(), "RXT0 is unmasked by linux_open");
    assert_eq!(g.rd(ICS) & ICR_RXT0, ICR_RXT0);
    assert!(g.bus.irq().level(), "reading ICS does not drop the line");
    assert_eq!(g.rd(ICR) & ICR_RXT0, ICR_RXT0);
    assert!(!g.bus.irq().level());
}

#[test]
fn status_is_read_only() {
    let mut g = guest();
    let before = g.rd(STATUS);
    g.wr(STATUS, 0xFFFF_F833);
    assert_eq!(g.rd(STATUS), before);
    g.wr(STATUS, 0);
    assert_eq!(g.rd(STATUS), before);
}

/// Linux's e1000_reg_test (drivers/net/ethernet/intel/e1000/e1000_ethtool.c) for an
/// 82540EM/82545EM, access for access: the offset of the first register that fails, as
/// `ethtool -t` reports it, or 0.
fn linux_reg_test(g: &mut FakeGuest) -> u32 {
    const TEST: [u32; 4] = [0x5A5A_5A5A, 0xA5A5_A5A5, 0, 0xFFFF_FFFF];
    fn pattern(g: &mut FakeGuest, reg: u32, mask: u32, write: u32) -> bool {
        TEST.iter().all(|&t| {
            g.wr(reg, write & t);
            g.rd(reg) == write & t & mask
        })
    }
    fn set_and_check(g: &mut FakeGuest, reg: u32, mask: u32, write: u32) -> bool {
        g.wr(reg, write & mask);
        g.rd(reg) & mask == write & mask
    }
    let toggle = 0xFFFF_F833;
    let before = g.rd(STATUS);
    let value = g.rd(STATUS) & toggle;
    g.wr(STATUS, toggle);
    if g.rd(STATUS) & toggle != value {
        return 1;
    }
    g.wr(STATUS, before);
    for (reg, mask, write) in [
        (FCAL, 0xFFFF_FFFF, 0xFFFF_FFFF),
        (FCAH, 0x0000_FFFF, 0xFFFF_FFFF),
        (FCT, 0x0000_FFFF, 0xFFFF_FFFF),
        (VET, 0x0000_FFFF, 0xFFFF_FFFF),
        (RDTR, 0x0000_FFFF, 0xFFFF_FFFF),
        (RDBAH, 0xFFFF_FFFF, 0xFFFF_FFFF),
        (RDLEN, 0x000F_FF80, 0x000F_FFFF),
        (RDH, 0x0000_FFFF, 0x0000_FFFF),
        (RDT, 0x0000_FFFF, 0x0000_FFFF),
        (FCRTH, 0x0000_FFF8, 0x0000_FFF8),
        (FCTTV, 0x0000_FFFF, 0x0000_FFFF),
        (TIPG, 0x3FFF_FFFF, 0x3FFF_FFFF),
        (TDBAH, 0xFFFF_FFFF, 0xFFFF_FFFF),
        (TDLEN, 0x000F_FF80, 0x000F_FFFF),
    ] {
        if !pattern(g, reg, mask, write) {
            return reg;
        }
    }
    for (reg, mask, write) in [
        (RCTL, 0xFFFF_FFFF, 0),
        (RCTL, 0x06DF_B3FE, 0x003F_FFFB),
        (TCTL, 0xFFFF_FFFF, 0),
        (RCTL, 0x06DF_B3FE, 0xFFFF_FFFF),
    ] {
        if !set_and_check(g, reg, mask, write) {
            return reg;
        }
    }
    for (reg, mask, write) in [
        (RDBAL, 0xFFFF_FFF0, 0xFFFF_FFFF),
        (TXCW, 0xC000_FFFF, 0x0000_FFFF),
        (TDBAL, 0xFFFF_FFF0, 0xFFFF_FFFF),
        (TIDV, 0x0000_FFFF, 0x0000_FFFF),
    ] {
        if !pattern(g, reg, mask, write) {
            return reg;
        }
    }
    for i in 0..RA_ENTRIES {
        if !pattern(g, rah(i), 0x8003_FFFF, 0xFFFF_FFFF) {
            return rah(i);
        }
    }
    for i in 0..MTA_WORDS {
        if !pattern(g, MTA + 4 * i, 0xFFFF_FFFF, 0xFFFF_FFFF) {
            return MTA + 4 * i;
        }
    }
    0
}

#[test]
fn linux_ethtool_register_test_passes() {
    let mut g = guest();
    g.linux_probe();
    assert_eq!(linux_reg_test(&mut g), 0);
    // The driver resets after the test; the card works as before.
    let ctrl = g.rd(CTRL);
    g.io_wr(CTRL, ctrl | CTRL_RST);
    g.linux_open(8, 8);
    assert_ne!(g.rd(STATUS) & STATUS_LU, 0);
}
