//! Traces that read like the manual, for someone bringing up a driver.
//!
//! - [`REGS`] (`nic_emu::regs`, trace level): every register access, named from the
//!   register table ([`register_table::name_of`]) and decoded where the bits matter:
//!   `W RCTL 0x0400801a EN|BAM|BSIZE=2048|SECRC`, `R ICR -> 0x00000080 RXT0`,
//!   `W TDT 5 (3 descriptors queued)`.
//! - [`FRAMES`] (`nic_emu::frames`, trace level): each transmit descriptor as the card
//!   fetches it (type, address, length, command bits by name) and each received frame
//!   with the filter's decision and its reason (`accepted: broadcast, RCTL.BAM=1`,
//!   `dropped: unicast 52:54:00:12:34:57 matches no RAL/RAH with AV`).
//!
//! Both are off unless the logger enables them (`nic-emu-cli --trace regs,frames`, or
//! `RUST_LOG=nic_emu::regs=trace`). Every hook asks [`log::log_enabled!`] first, so when
//! they are off nothing is decoded or formatted: the cost is one comparison with the
//! log crate's maximum level (benches/inprocess.rs, group `trace`).

use std::fmt::{self, Write};

use super::register_table;
use super::regs::*;
use super::E1000;
use crate::mac::MacAddress;

/// Log target of the register trace.
pub const REGS: &str = "nic_emu::regs";
/// Log target of the descriptor and frame trace.
pub const FRAMES: &str = "nic_emu::frames";

/// Whether the register trace is on.
#[inline]
pub(super) fn regs_on() -> bool {
    log::log_enabled!(target: REGS, log::Level::Trace)
}

/// Whether the descriptor and frame trace is on.
#[inline]
pub(super) fn frames_on() -> bool {
    log::log_enabled!(target: FRAMES, log::Level::Trace)
}

/// Interrupt cause bits by name (ICR, ICS, IMS, IMC).
const CAUSES: &[(u32, &str)] = &[
    (ICR_TXDW, "TXDW"),
    (ICR_TXQE, "TXQE"),
    (ICR_LSC, "LSC"),
    (ICR_RXSEQ, "RXSEQ"),
    (ICR_RXDMT0, "RXDMT0"),
    (ICR_RXO, "RXO"),
    (ICR_RXT0, "RXT0"),
    (ICR_MDAC, "MDAC"),
    (ICR_RXCFG, "RXCFG"),
    (ICR_GPI_EN0, "GPI_EN0"),
    (ICR_TXD_LOW, "TXD_LOW"),
    (ICR_SRPD, "SRPD"),
    (ICR_INT_ASSERTED, "INT_ASSERTED"),
];

const CTRL_BITS: &[(u32, &str)] = &[
    (CTRL_FD, "FD"),
    (CTRL_LRST, "LRST"),
    (CTRL_ASDE, "ASDE"),
    (CTRL_SLU, "SLU"),
    (CTRL_ILOS, "ILOS"),
    (CTRL_FRCSPD, "FRCSPD"),
    (CTRL_FRCDPX, "FRCDPX"),
    (CTRL_RST, "RST"),
    (CTRL_RFCE, "RFCE"),
    (CTRL_TFCE, "TFCE"),
    (CTRL_VME, "VME"),
    (CTRL_PHY_RST, "PHY_RST"),
];

const STATUS_BITS: &[(u32, &str)] = &[
    (STATUS_FD, "FD"),
    (STATUS_LU, "LU"),
    (STATUS_TXOFF, "TXOFF"),
];

const RCTL_BITS: &[(u32, &str)] = &[
    (RCTL_EN, "EN"),
    (RCTL_SBP, "SBP"),
    (RCTL_UPE, "UPE"),
    (RCTL_MPE, "MPE"),
    (RCTL_LPE, "LPE"),
    (RCTL_BAM, "BAM"),
    (RCTL_VFE, "VFE"),
    (RCTL_CFIEN, "CFIEN"),
    (RCTL_CFI, "CFI"),
    (RCTL_DPF, "DPF"),
    (RCTL_PMCF, "PMCF"),
    (RCTL_SECRC, "SECRC"),
];

const TCTL_BITS: &[(u32, &str)] = &[(TCTL_EN, "EN"), (TCTL_PSP, "PSP"), (TCTL_SWXOFF, "SWXOFF")];

const EECD_BITS: &[(u32, &str)] = &[
    (EECD_SK, "SK"),
    (EECD_CS, "CS"),
    (EECD_DI, "DI"),
    (EECD_DO, "DO"),
    (EECD_REQ, "EE_REQ"),
    (EECD_GNT, "EE_GNT"),
    (EECD_PRES, "EE_PRES"),
];

/// Transmit command bits of a legacy descriptor (CMD).
const TX_CMD: &[(u32, &str)] = &[
    (1 << 0, "EOP"),
    (1 << 1, "IFCS"),
    (1 << 2, "IC"),
    (1 << 3, "RS"),
    (1 << 4, "RPS"),
    (1 << 5, "DEXT"),
    (1 << 6, "VLE"),
    (1 << 7, "IDE"),
];

/// Command bits of an extended data descriptor (DCMD).
const TX_DCMD: &[(u32, &str)] = &[
    (1 << 0, "EOP"),
    (1 << 1, "IFCS"),
    (1 << 2, "TSE"),
    (1 << 3, "RS"),
    (1 << 5, "DEXT"),
    (1 << 6, "VLE"),
    (1 << 7, "IDE"),
];

/// Command bits of a context descriptor (TUCMD).
const TX_TUCMD: &[(u32, &str)] = &[
    (1 << 0, "TCP"),
    (1 << 1, "IP"),
    (1 << 2, "TSE"),
    (1 << 3, "RS"),
    (1 << 5, "DEXT"),
    (1 << 7, "IDE"),
];

/// `A|B|C` for the bits of `v` named in `names` (`-` when none is set).
struct Bits<'a>(u32, &'a [(u32, &'static str)]);

impl fmt::Display for Bits<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for &(bit, name) in self.1 {
            if self.0 & bit != 0 {
                if !first {
                    f.write_char('|')?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        if first {
            f.write_char('-')?;
        }
        Ok(())
    }
}

impl E1000 {
    /// The register trace's line for a write of `val` at `off` (before it takes effect).
    pub(super) fn trace_write(&self, off: u32, val: u32) {
        let mut s = String::with_capacity(64);
        match register_table::name_of(off) {
            Some(name) => {
                let _ = write!(s, "W {name} ");
                self.decode(&mut s, off & !3, val, true);
            }
            None => {
                let _ = write!(s, "W {off:#07x} {val:#010x} (no register: ignored)");
            }
        }
        log::trace!(target: REGS, "{s}");
    }

    /// The register trace's line for a read of `off` that returned `val`.
    pub(super) fn trace_read(&self, off: u32, val: u32) {
        let mut s = String::with_capacity(64);
        match register_table::name_of(off) {
            Some(name) => {
                let _ = write!(s, "R {name} -> ");
                self.decode(&mut s, off & !3, val, false);
            }
            None => {
                let _ = write!(s, "R {off:#07x} -> 0 (no register)");
            }
        }
        log::trace!(target: REGS, "{s}");
    }

    /// `val` of the register at `off`, decoded.
    fn decode(&self, s: &mut String, off: u32, val: u32, write: bool) {
        match off {
            RDT | TDT | RDH | TDH => {
                let _ = write!(s, "{val}");
                if write && (off == RDT || off == TDT) {
                    let (len, head) = if off == RDT {
                        (RDLEN, RDH)
                    } else {
                        (TDLEN, TDH)
                    };
                    let ring = self.reg(len) / 16;
                    let head = self.reg(head);
                    if ring == 0 || val >= ring || head >= ring {
                        let _ = write!(s, " (ring of {ring} descriptors)");
                    } else {
                        let n = (val + ring - head) % ring;
                        let what = if off == RDT { "free" } else { "queued" };
                        let _ = write!(s, " ({n} descriptors {what})");
                    }
                }
                return;
            }
            _ => {}
        }
        let _ = write!(s, "{val:#010x}");
        match off {
            CTRL => {
                let _ = write!(s, " {}", Bits(val, CTRL_BITS));
            }
            STATUS => {
                let _ = write!(s, " {}", Bits(val, STATUS_BITS));
            }
            RCTL => {
                // In bit order: the flags below BSIZE, BSIZE (with BSEX), the flags above.
                s.push(' ');
                for &(bit, name) in RCTL_BITS.iter().filter(|b| b.0 < 1 << 16) {
                    if val & bit != 0 {
                        let _ = write!(s, "{name}|");
                    }
                }
                let mo = (val & RCTL_MO_MASK) >> RCTL_MO_SHIFT;
                if mo != 0 {
                    let _ = write!(s, "MO={mo}|");
                }
                let _ = write!(s, "BSIZE={}", rctl_buffer_size(val));
                for &(bit, name) in RCTL_BITS.iter().filter(|b| b.0 >= 1 << 16) {
                    if val & bit != 0 {
                        let _ = write!(s, "|{name}");
                    }
                }
            }
            TCTL => {
                let _ = write!(
                    s,
                    " {}|CT={:#x}|COLD={:#x}",
                    Bits(val, TCTL_BITS),
                    (val >> 4) & 0xFF,
                    (val >> 12) & 0x3FF
                );
            }
            ICR | ICS | IMS | IMC => {
                let _ = write!(s, " {}", Bits(val, CAUSES));
            }
            EECD => {
                let _ = write!(s, " {}", Bits(val, EECD_BITS));
            }
            EERD => {
                let _ = write!(
                    s,
                    " {}ADDR={}{}",
                    if val & EERD_START != 0 { "START|" } else { "" },
                    (val & EERD_ADDR_MASK) >> EERD_ADDR_SHIFT,
                    if val & EERD_DONE != 0 {
                        format!("|DONE|DATA={:#06x}", val >> EERD_DATA_SHIFT)
                    } else {
                        String::new()
                    }
                );
            }
            MDIC => {
                let op = match val & (3 << 26) {
                    MDIC_OP_WRITE => "write",
                    MDIC_OP_READ => "read",
                    _ => "op?",
                };
                let _ = write!(
                    s,
                    " {op} PHY {} reg {} data {:#06x}{}{}",
                    (val >> MDIC_PHY_SHIFT) & 0x1F,
                    (val >> MDIC_REG_SHIFT) & 0x1F,
                    val & MDIC_DATA_MASK,
                    if val & MDIC_READY != 0 { " READY" } else { "" },
                    if val & MDIC_ERROR != 0 { " ERROR" } else { "" }
                );
            }
            _ => {}
        }
    }

    /// The frame trace's line for transmit descriptor `index` as fetched.
    pub(super) fn trace_tx_desc(&self, index: u32, at: u64, d: &[u8; 16]) {
        let c = u32::from(d[11]);
        let addr = u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]);
        if c & (1 << 5) == 0 {
            log::trace!(
                target: FRAMES,
                "TX desc {index} @{at:#x}: legacy addr={addr:#x} len={} CMD={} CSO={} CSS={} special={:#06x}",
                u16::from_le_bytes([d[8], d[9]]),
                Bits(c, TX_CMD),
                d[10],
                d[13],
                u16::from_le_bytes([d[14], d[15]])
            );
            return;
        }
        match d[10] >> 4 {
            0 => log::trace!(
                target: FRAMES,
                "TX desc {index} @{at:#x}: context IPCSS={} IPCSO={} IPCSE={} TUCSS={} TUCSO={} \
                 TUCSE={} PAYLEN={} TUCMD={} HDRLEN={} MSS={}",
                d[0],
                d[1],
                u16::from_le_bytes([d[2], d[3]]),
                d[4],
                d[5],
                u16::from_le_bytes([d[6], d[7]]),
                u32::from_le_bytes([d[8], d[9], d[10], 0]) & 0xF_FFFF,
                Bits(c, TX_TUCMD),
                d[13],
                u16::from_le_bytes([d[14], d[15]])
            ),
            1 => log::trace!(
                target: FRAMES,
                "TX desc {index} @{at:#x}: data addr={addr:#x} len={} DCMD={} POPTS={}{}",
                u32::from_le_bytes([d[8], d[9], d[10], 0]) & 0xF_FFFF,
                Bits(c, TX_DCMD),
                if d[13] & 1 != 0 { "IXSM" } else { "" },
                if d[13] & 2 != 0 { "|TXSM" } else { "" }
            ),
            t => {
                log::trace!(target: FRAMES, "TX desc {index} @{at:#x}: DEXT with reserved DTYP {t}")
            }
        }
    }

    /// The frame trace's line for a received frame: what the filters decided and why.
    pub(super) fn trace_rx_frame(&self, frame: &[u8], verdict: &str) {
        let mac = |r: std::ops::Range<usize>| {
            frame
                .get(r)
                .and_then(|s| <[u8; 6]>::try_from(s).ok())
                .map(MacAddress::new)
        };
        let (Some(dst), Some(src)) = (mac(0..6), mac(6..12)) else {
            log::trace!(target: FRAMES, "RX {} bytes: {verdict}", frame.len());
            return;
        };
        let ty = frame
            .get(12..14)
            .map_or(0, |t| u16::from_be_bytes([t[0], t[1]]));
        log::trace!(
            target: FRAMES,
            "RX {} bytes {src} -> {dst} type {ty:#06x}: {verdict}",
            frame.len()
        );
    }

    /// Why the filters accept or reject `frame` (at least 14 bytes), in register names.
    pub(super) fn filter_reason(&self, frame: &[u8], accepted: bool) -> String {
        let rctl = self.reg(RCTL);
        let dest: [u8; 6] = frame
            .get(..6)
            .and_then(|d| d.try_into().ok())
            .unwrap_or([0; 6]);
        let d = MacAddress::new(dest);
        let bit = |b: u32| u8::from(rctl & b != 0);
        if self.rx_vlan_rejects(frame) {
            return "dropped: VLAN ID not in the VFTA (RCTL.VFE=1)".into();
        }
        if accepted {
            if let Some(n) = (0..RA_ENTRIES).find(|&n| {
                let rah = self.reg(rah(n));
                let lo = u32::from_le_bytes([dest[0], dest[1], dest[2], dest[3]]);
                rah & RAH_AV != 0
                    && rah & 0xFFFF == u32::from(u16::from_le_bytes([dest[4], dest[5]]))
                    && self.reg(ral(n)) == lo
            }) {
                return format!("accepted: {d} matches RAL/RAH[{n}]");
            }
        }
        let verdict = if accepted { "accepted" } else { "dropped" };
        if dest[0] & 1 == 0 {
            return if accepted {
                "accepted: unicast, RCTL.UPE=1".into()
            } else {
                format!("dropped: unicast {d} matches no RAL/RAH with AV (RCTL.UPE=0)")
            };
        }
        if dest == [0xFF; 6] {
            return format!(
                "{verdict}: broadcast, RCTL.BAM={} RCTL.MPE={}",
                bit(RCTL_BAM),
                bit(RCTL_MPE)
            );
        }
        let mta = super::filter::mta_index(&dest, (rctl & RCTL_MO_MASK) >> RCTL_MO_SHIFT);
        format!(
            "{verdict}: multicast {d}, MTA bit {mta} = {}, RCTL.MPE={}",
            u8::from(self.reg(MTA + 4 * (mta >> 5)) & (1 << (mta & 31)) != 0),
            bit(RCTL_MPE)
        )
    }
}
