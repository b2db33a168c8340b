//! The register file of the 8254x as one table: every register's datasheet name, BAR0
//! offset, reset value, the bits a write keeps, and what a read does.
//!
//! [`E1000::read_reg`](super::E1000::read_reg) and
//! [`write_reg`](super::E1000::write_reg) look every access up here. An offset with no
//! entry is reserved: it reads 0 and ignores writes. A write keeps only the entry's
//! [`writable`](Register::writable) bits, so reserved bits always read 0; bits in
//! [`action`](Register::action) act when written with 1 (CTRL.RST, RDTR.FPD, ...) and read
//! back 0. Registers with side effects (interrupt causes, EEPROM and PHY interfaces, ring
//! tails, statistics) are carried out by their modules, through the same masks; the
//! [`access`](Register::access) column says what the guest sees.
//!
//! The masks are the 8254x software developer's manual's register descriptions (chapter
//! 13) for the 82540EM and 82545EM; where the two parts differ the model says so
//! (`super::model`). The same table names registers for traces: [`name_of`].

use super::regs::*;

/// What reads and writes of a register do, as the datasheet's register types say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Read/write: reads what was written (the writable bits).
    ReadWrite,
    /// Read-only: the hardware sets the value; writes are ignored.
    ReadOnly,
    /// Write-only: writes act, reads return 0.
    WriteOnly,
    /// Reading returns the value and clears it (the statistics counters; for a 64-bit
    /// counter reading the high half clears both halves; ICR, which a write of 1s also
    /// clears).
    ClearOnRead,
    /// Writing 1 to a bit clears it; 0 leaves it (WUS).
    WriteOneToClear,
    /// Writing 1 to a bit sets it; 0 leaves it (IMS, and ICS, whose read returns the
    /// pending causes without clearing them).
    WriteOneToSet,
}

/// One register, or an array of equal registers (`count` of them, `stride` bytes apart).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Register {
    /// The datasheet's name (arrays without the index: `MTA`, `RAL`).
    pub name: &'static str,
    /// BAR0 offset of the register (of element 0 for an array).
    pub offset: u32,
    /// Number of elements (1 for a single register).
    pub count: u16,
    /// Bytes from one element to the next (4 or 8).
    pub stride: u8,
    /// Value after power-on and after CTRL.RST (registers the device computes, such as
    /// STATUS or RAL0/RAH0, say so in their module).
    pub reset: u32,
    /// Bits a write stores; the others are reserved (read 0) or set by the hardware.
    pub writable: u32,
    /// Bits that act when written with 1 and are never stored (they read 0).
    pub action: u32,
    /// What reads and writes do.
    pub access: Access,
}

const fn reg(
    name: &'static str,
    offset: u32,
    reset: u32,
    writable: u32,
    access: Access,
) -> Register {
    Register {
        name,
        offset,
        count: 1,
        stride: 4,
        reset,
        writable,
        action: 0,
        access,
    }
}

const fn rw(name: &'static str, offset: u32, writable: u32) -> Register {
    reg(name, offset, 0, writable, Access::ReadWrite)
}

const fn stat(name: &'static str, offset: u32) -> Register {
    reg(name, offset, 0, 0, Access::ClearOnRead)
}

const fn array(name: &'static str, offset: u32, count: u16, stride: u8, writable: u32) -> Register {
    Register {
        count,
        stride,
        ..rw(name, offset, writable)
    }
}

const fn with_action(r: Register, action: u32) -> Register {
    Register { action, ..r }
}

const fn with_reset(r: Register, reset: u32) -> Register {
    Register { reset, ..r }
}

use Access::*;

/// Every register of the 8254x's BAR0 the model implements, in offset order.
pub static REGISTERS: [Register; 131] = [
    // ---- general (manual 13.4.1-13.4.8) ----
    with_action(
        with_reset(rw("CTRL", CTRL, CTRL_STORED), CTRL_RESET),
        CTRL_RST,
    ),
    reg("STATUS", STATUS, STATUS_RESET, 0, ReadOnly),
    // SK, CS, DI, FWE, REQ; DO, GNT, PRES and SIZE come from the EEPROM interface.
    rw(
        "EECD",
        EECD,
        EECD_SK | EECD_CS | EECD_DI | EECD_FWE_MASK | EECD_REQ,
    ),
    // START and ADDR; DONE and DATA come from the EEPROM.
    rw("EERD", EERD, EERD_START | EERD_ADDR_MASK),
    with_action(rw("CTRL_EXT", CTRL_EXT, CTRL_EXT_STORED), CTRL_EXT_EE_RST),
    with_reset(rw("MDIC", MDIC, 0x3FFF_FFFF & !MDIC_READY), MDIC_READY),
    rw("FCAL", FCAL, 0xFFFF_FFFF),
    rw("FCAH", FCAH, 0x0000_FFFF),
    rw("FCT", FCT, 0x0000_FFFF),
    with_reset(rw("VET", VET, 0x0000_FFFF), VET_RESET),
    // ---- interrupts (13.4.17-13.4.21) ----
    reg("ICR", ICR, 0, ICR_VALID, ClearOnRead),
    rw("ITR", ITR, 0x0000_FFFF),
    reg("ICS", ICS, 0, ICR_VALID, WriteOneToSet),
    reg("IMS", IMS, 0, ICR_VALID, WriteOneToSet),
    reg("IMC", IMC, 0, ICR_VALID, WriteOnly),
    // ---- receive and transmit control (13.4.22-13.4.34) ----
    rw("RCTL", RCTL, RCTL_WRITABLE),
    rw("FCTTV", FCTTV, 0x0000_FFFF),
    rw("TXCW", TXCW, 0xC000_FFFF),
    reg("RXCW", RXCW, 0, 0, ReadOnly),
    with_action(rw("TCTL", TCTL, TCTL_WRITABLE), TCTL_SWXOFF),
    rw("TIPG", TIPG, 0x3FFF_FFFF),
    rw("AIT", AIT, 0x0000_FFFF),
    with_reset(rw("LEDCTL", LEDCTL, 0xCFCF_CFCF), LEDCTL_RESET),
    // RXA; TXA (31:16) is what is left of the 64 KB packet buffer.
    with_reset(rw("PBA", PBA, PBA_RXA_MASK), PBA_RESET),
    rw("FCRTL", FCRTL, 0x8000_FFF8),
    rw("FCRTH", FCRTH, 0x0000_FFF8),
    // ---- receive FIFO diagnostics (13.4.28) ----
    rw("RDFH", RDFH, 0x0000_1FFF),
    rw("RDFT", RDFT, 0x0000_1FFF),
    rw("RDFHS", RDFHS, 0x0000_1FFF),
    rw("RDFTS", RDFTS, 0x0000_1FFF),
    rw("RDFPC", RDFPC, 0x0000_1FFF),
    // ---- receive ring (13.4.29-13.4.37) ----
    rw("RDBAL", RDBAL, 0xFFFF_FFF0),
    rw("RDBAH", RDBAH, 0xFFFF_FFFF),
    rw("RDLEN", RDLEN, 0x000F_FF80),
    rw("RDH", RDH, 0x0000_FFFF),
    rw("RDT", RDT, 0x0000_FFFF),
    with_action(rw("RDTR", RDTR, 0x0000_FFFF), RDTR_FPD),
    rw("RXDCTL", RXDCTL, 0x013F_3F3F),
    rw("RADV", RADV, 0x0000_FFFF),
    rw("RSRPD", RSRPD, 0x0000_0FFF),
    // ---- transmit FIFO diagnostics ----
    rw("TDFH", TDFH, 0x0000_1FFF),
    rw("TDFT", TDFT, 0x0000_1FFF),
    rw("TDFHS", TDFHS, 0x0000_1FFF),
    rw("TDFTS", TDFTS, 0x0000_1FFF),
    rw("TDFPC", TDFPC, 0x0000_1FFF),
    // ---- transmit ring (13.4.38-13.4.46) ----
    rw("TDBAL", TDBAL, 0xFFFF_FFF0),
    rw("TDBAH", TDBAH, 0xFFFF_FFFF),
    rw("TDLEN", TDLEN, 0x000F_FF80),
    rw("TDH", TDH, 0x0000_FFFF),
    rw("TDT", TDT, 0x0000_FFFF),
    with_action(rw("TIDV", TIDV, 0x0000_FFFF), TIDV_FPD),
    rw("TXDCTL", TXDCTL, 0xFF3F_3F3F),
    rw("TADV", TADV, 0x0000_FFFF),
    with_reset(rw("TSPMT", TSPMT, 0xFFFF_FFFF), TSPMT_RESET),
    // ---- statistics (13.7), each cleared when read ----
    stat("CRCERRS", CRCERRS),
    stat("ALGNERRC", ALGNERRC),
    stat("SYMERRS", SYMERRS),
    stat("RXERRC", RXERRC),
    stat("MPC", MPC),
    stat("SCC", SCC),
    stat("ECOL", ECOL),
    stat("MCC", MCC),
    stat("LATECOL", LATECOL),
    stat("COLC", COLC),
    stat("DC", DC),
    stat("TNCRS", TNCRS),
    stat("SEC", SEC),
    stat("CEXTERR", CEXTERR),
    stat("RLEC", RLEC),
    stat("XONRXC", XONRXC),
    stat("XONTXC", XONTXC),
    stat("XOFFRXC", XOFFRXC),
    stat("XOFFTXC", XOFFTXC),
    stat("FCRUC", FCRUC),
    stat("PRC64", PRC64),
    stat("PRC127", PRC127),
    stat("PRC255", PRC255),
    stat("PRC511", PRC511),
    stat("PRC1023", PRC1023),
    stat("PRC1522", PRC1522),
    stat("GPRC", GPRC),
    stat("BPRC", BPRC),
    stat("MPRC", MPRC),
    stat("GPTC", GPTC),
    stat("GORCL", GORCL),
    stat("GORCH", GORCH),
    stat("GOTCL", GOTCL),
    stat("GOTCH", GOTCH),
    stat("RNBC", RNBC),
    stat("RUC", RUC),
    stat("RFC", RFC),
    stat("ROC", ROC),
    stat("RJC", RJC),
    stat("MGTPRC", MGTPRC),
    stat("MGTPDC", MGTPDC),
    stat("MGTPTC", MGTPTC),
    stat("TORL", TORL),
    stat("TORH", TORH),
    stat("TOTL", TOTL),
    stat("TOTH", TOTH),
    stat("TPR", TPR),
    stat("TPT", TPT),
    stat("PTC64", PTC64),
    stat("PTC127", PTC127),
    stat("PTC255", PTC255),
    stat("PTC511", PTC511),
    stat("PTC1023", PTC1023),
    stat("PTC1522", PTC1522),
    stat("MPTC", MPTC),
    stat("BPTC", BPTC),
    stat("TSCTC", TSCTC),
    stat("TSCTFC", TSCTFC),
    // ---- receive filtering and offload (13.4.47-13.4.51) ----
    rw(
        "RXCSUM",
        RXCSUM,
        RXCSUM_PCSS_MASK | RXCSUM_IPOFLD | RXCSUM_TUOFLD,
    ),
    array("MTA", MTA, MTA_WORDS as u16, 4, 0xFFFF_FFFF),
    array("RAL", RAL0, RA_ENTRIES as u16, 8, 0xFFFF_FFFF),
    // Address 47:32, AS (17:16), AV (31).
    array("RAH", RAH0, RA_ENTRIES as u16, 8, 0x8003_FFFF),
    array("VFTA", VFTA, VFTA_WORDS as u16, 4, 0xFFFF_FFFF),
    // ---- wake-up (13.6) ----
    rw("WUC", WUC, WUC_WRITABLE),
    rw("WUFC", WUFC, WUFC_WRITABLE),
    reg("WUS", WUS, 0, WUFC_WRITABLE, WriteOneToClear),
    with_reset(rw("MANC", MANC, 0xFFFF_FFFF), MANC_RESET),
    rw("IPAV", IPAV, 0x0001_000F),
    array("IP4AT", IP4AT, 4, 8, 0xFFFF_FFFF),
    array("IP6AT", IP6AT, 4, 4, 0xFFFF_FFFF),
    reg("WUPL", WUPL, 0, 0, ReadOnly),
    Register {
        count: 32,
        ..reg("WUPM", WUPM, 0, 0, ReadOnly)
    },
    // Not an 82540EM register: the 82571's software semaphore. U-Boot's e1000 driver
    // takes it before every EEPROM access on every part (it sets SWESMBI and reads it
    // back, giving up on the EEPROM if it reads 0); QEMU's e1000 stores it too. Plain
    // storage of the two semaphore bits keeps that driver working and costs no driver
    // that never touches it anything.
    rw("SWSM", SWSM, SWSM_SMBI | SWSM_SWESMBI),
    array("FFLT", FFLT, 4, 8, 0x0000_07FF),
    array("FFMT", FFMT, 128, 8, 0x0000_000F),
    array("FFVT", FFVT, 128, 8, 0xFFFF_FFFF),
    // ---- packet buffer memory (diagnostic access, 64 KB) ----
    array("PBM", PBM, PBM_WORDS as u16, 4, 0xFFFF_FFFF),
];

/// Number of 32-bit words in BAR0.
const WORDS: usize = (BAR0_SIZE / 4) as usize;

// The index stores `table position + 1` in a byte.
const _: () = assert!(REGISTERS.len() < 255);

/// `INDEX[offset / 4]`: 1 + the position in [`REGISTERS`] of the register at that offset,
/// or 0 (reserved). Built at compile time, so a lookup is one load.
static INDEX: [u8; WORDS] = build_index();

const fn build_index() -> [u8; WORDS] {
    let mut index = [0u8; WORDS];
    let mut i = 0;
    while i < REGISTERS.len() {
        let r = &REGISTERS[i];
        let mut e = 0;
        while e < r.count as u32 {
            let word = ((r.offset + e * r.stride as u32) / 4) as usize;
            // Entries never overlap (checked by the unit tests).
            index[word] = (i + 1) as u8;
            e += 1;
        }
        i += 1;
    }
    index
}

/// The register at BAR0 offset `off` (any byte inside it) and the element's index within
/// an array (0 for a single register), or `None` for a reserved offset.
#[inline]
pub fn lookup(off: u32) -> Option<(&'static Register, u32)> {
    let word = (off / 4) as usize;
    let slot = *INDEX.get(word)?;
    let r = REGISTERS.get(usize::from(slot).checked_sub(1)?)?;
    let element = (off & !3).wrapping_sub(r.offset) / u32::from(r.stride);
    Some((r, element))
}

/// A register's name for traces and logs: the datasheet name and, for an element of an
/// array, its index. Displays as `CTRL`, `MTA[5]`, `RAH[0]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegName {
    /// The datasheet name (`MTA` for every element of the multicast table).
    pub name: &'static str,
    /// The element's index for an array register, `None` for a single register.
    pub index: Option<u32>,
}

impl std::fmt::Display for RegName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.index {
            Some(i) => write!(f, "{}[{i}]", self.name),
            None => f.write_str(self.name),
        }
    }
}

/// The name of the register at BAR0 offset `off` (any byte inside it), or `None` for a
/// reserved offset. One table load; no allocation.
#[inline]
pub fn name_of(off: u32) -> Option<RegName> {
    let (r, element) = lookup(off)?;
    Some(RegName {
        name: r.name,
        index: (r.count > 1).then_some(element),
    })
}

/// The writable mask of the register at `off` (0 for a reserved offset).
#[inline]
pub fn writable(off: u32) -> u32 {
    lookup(off).map_or(0, |(r, _)| r.writable)
}

#[cfg(test)]
mod tests;
