//! Lints: the card noticing what a driver did wrong, and saying so in register names.
//!
//! A real 82540EM, and QEMU's model of it, handle a driver's mistakes silently: bus
//! mastering off, an empty ring, a broadcast dropped because RCTL.BAM is clear. nic-emu
//! keeps doing exactly what the card does (a lint never changes behaviour) and in
//! addition reports each mistake it can see: once per device reset, or, where the
//! repetition is the news (frames dropped by a filter), every time, with the log
//! rate-limited. Each finding is logged on the `nic_emu::lint` target (at `warn`, or at
//! `info` for the few that are legitimate choices worth knowing about) and counted by
//! id; [`E1000::lints`](super::E1000::lints) returns them, as do `ctl lints`, `ctl stats`,
//! Prometheus (`nic_emu_lint_total{id="..."}`) and the C API.
//!
//! [`CATALOGUE`] lists every lint with its stable id, the section of Intel's 8254x
//! software developer's manual (SDM) that says what the card does, and what it checks.
//! The checks themselves sit where the device sees the mistake (`rx.rs`, `tx.rs`,
//! `mod.rs`), each a call into the `E1000` methods below; those that need the passing
//! of time (an interrupt nobody acknowledges) are watched by `E1000::lint_tick`, on
//! register writes and service steps.

use std::fmt;

use super::regs::*;
use super::E1000;
use crate::log_limit::LogLimit;
use crate::wire::ethernet::{MAX_STD_TAGGED, MIN_FRAME};

/// The log target of every lint.
pub const TARGET: &str = "nic_emu::lint";

/// How much a finding matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Legitimate, worth knowing when reading lengths or traces (logged at `info`).
    Info,
    /// A driver bug: the card does not do what the driver seems to expect, here or on
    /// hardware (logged at `warn`).
    Warn,
}

impl Severity {
    /// `"info"` or `"warn"`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warn => "warn",
        }
    }
}

/// How often a lint fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Repeat {
    /// Once per device reset.
    OncePerReset,
    /// Every occurrence is counted; the log shows the first eight, then every power of
    /// two.
    Every,
}

macro_rules! catalogue {
    ($( $(#[$doc:meta])* $var:ident = $name:literal, $sev:ident, $rep:ident, $sec:literal, $check:literal; )*) => {
        /// A lint's stable identity.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(u8)]
        pub enum LintId {
            $( $(#[$doc])* $var, )*
        }

        /// Every lint, in [`LintId`] order.
        pub const CATALOGUE: &[Lint] = &[
            $( Lint {
                id: LintId::$var,
                name: $name,
                severity: Severity::$sev,
                repeat: Repeat::$rep,
                section: $sec,
                check: $check,
            }, )*
        ];
    };
}

catalogue! {
    /// A doorbell (TDT, RDT) or RCTL.EN with PCI bus mastering off.
    BusMasterOff = "bus-master-off", Warn, OncePerReset,
        "PCI Command register (config 0x04) bit 2; SDM 4.1",
        "TDT/RDT written or RCTL.EN set while the PCI Command register's Bus Master Enable is clear: the card cannot fetch descriptors or write frames";
    /// RDLEN or TDLEN written with bits 6:0 set.
    RingLenUnaligned = "ring-len-unaligned", Warn, OncePerReset,
        "SDM 13.4.27 RDLEN, 13.4.38 TDLEN",
        "RDLEN/TDLEN written with bits 6:0 set: they are ignored, the ring is a multiple of 8 descriptors (128 bytes)";
    /// A ring used with length 0.
    RingLenZero = "ring-len-zero", Warn, OncePerReset,
        "SDM 13.4.27 RDLEN, 13.4.38 TDLEN",
        "TDT written, or RCTL.EN set for a second, with TDLEN/RDLEN holding no descriptor";
    /// Receive enabled with no free descriptor, and RDT never advanced.
    RxRingEmpty = "rx-ring-empty", Warn, OncePerReset,
        "SDM 13.4.29 RDT, 14.4",
        "RCTL.EN set with RDH = RDT and RDT not written for a second: the card owns no descriptor and receives nothing";
    /// A tail index at or beyond the ring's end.
    TailOutsideRing = "tail-outside-ring", Warn, OncePerReset,
        "SDM 13.4.29 RDT, 13.4.40 TDT",
        "RDT/TDT written with an index at or beyond the number of descriptors in RDLEN/TDLEN";
    /// Ring base with bits 3:0 set.
    RingBaseUnaligned = "ring-base-unaligned", Warn, OncePerReset,
        "SDM 13.4.25 RDBAL, 13.4.36 TDBAL",
        "RDBAL/TDBAL written with bits 3:0 set: they are ignored, the ring is read 16-byte aligned";
    /// DMA outside guest memory.
    DmaOutsideRam = "dma-outside-ram", Warn, OncePerReset,
        "SDM 3.2.3, 3.3.3 (descriptor buffer address)",
        "a descriptor ring or buffer address is outside guest memory (a virtual address instead of a physical one?)";
    /// Transmit descriptors up to TDT end inside a packet.
    TxNoEop = "tx-no-eop", Warn, OncePerReset,
        "SDM 3.3.3.1, Table 3-10 (CMD.EOP)",
        "the transmit descriptors up to TDT end without EOP: their data waits for the next packet";
    /// A whole ring of descriptors completed without RS.
    TxNoRs = "tx-no-rs", Warn, OncePerReset,
        "SDM 3.3.3 (note on RS), Table 3-10 (CMD.RS)",
        "a ring's worth of transmit descriptors completed without RS (or RPS): the card writes DD back only where RS is set";
    /// CMD byte 0 with what looks like command bits one byte early.
    TxCmdInCso = "tx-cmd-in-cso", Warn, OncePerReset,
        "SDM 3.3.3, Table 3-8 (legacy descriptor layout)",
        "a legacy descriptor with CMD (byte 11) 0 but CSO (byte 10) set: the descriptor structure is probably misplaced by one byte";
    /// A context descriptor no data descriptor uses.
    TxContextUnused = "tx-context-unused", Warn, OncePerReset,
        "SDM 3.3.5 (context descriptor), Table 3-10 (CMD.DEXT)",
        "a descriptor with DEXT=1 and DTYP=0 was taken as a context descriptor and no data descriptor followed: nothing was sent for it";
    /// EOP without IFCS.
    TxNoIfcs = "tx-no-ifcs", Warn, OncePerReset,
        "SDM Table 3-10 (CMD.IFCS)",
        "a packet's EOP descriptor has IFCS clear: the card appends no FCS and the peer drops the frame as a CRC error";
    /// A frame shorter than 60 bytes sent with TCTL.PSP clear.
    TxRunt = "tx-runt", Warn, OncePerReset,
        "SDM 13.4.33 TCTL.PSP",
        "a frame shorter than 60 bytes was sent with TCTL.PSP clear: a runt on the wire that peers drop";
    /// Legacy descriptor length beyond 16288.
    TxDescTooLong = "tx-desc-too-long", Warn, OncePerReset,
        "SDM 3.3.3, Table 3-9 (legacy descriptor length)",
        "a legacy transmit descriptor's length is larger than 16288 bytes, the most the card allows";
    /// TDH or RDH written while the unit is enabled.
    HeadWrittenEnabled = "head-written-enabled", Warn, OncePerReset,
        "SDM 13.4.28 RDH, 13.4.39 TDH",
        "RDH/TDH written while RCTL.EN/TCTL.EN is set: the manual calls this indeterminate; write heads only before enabling";
    /// RDT moved over a descriptor whose status still has DD.
    RxStaleDd = "rx-stale-dd", Warn, OncePerReset,
        "SDM 3.2.3 (receive descriptor status)",
        "RDT handed back a descriptor whose status still has DD set: the driver will take the old frame for a new one";
    /// Neighbouring receive buffers closer together than the buffer size.
    RxBuffersOverlap = "rx-buffers-overlap", Warn, OncePerReset,
        "SDM 13.4.22 RCTL.BSIZE/BSEX",
        "two neighbouring receive descriptors' buffers are closer together than the longest frame RCTL.BSIZE and RCTL.LPE let the card write: such a frame in one overwrites the other";
    /// A received frame spread over several descriptors.
    RxFrameSplit = "rx-frame-split", Info, OncePerReset,
        "SDM 3.2.3 (EOP), 13.4.22 RCTL.BSIZE",
        "a received frame needed more than one descriptor (RCTL.BSIZE smaller than the frame): EOP is set on the last only";
    /// RCTL.SECRC clear.
    RxSecrcClear = "rx-secrc-clear", Info, OncePerReset,
        "SDM 13.4.22 RCTL.SECRC",
        "RCTL.EN set with SECRC clear: every received length includes the 4 FCS bytes";
    /// A broadcast dropped because RCTL.BAM is clear.
    RxBroadcastDropped = "rx-broadcast-dropped", Warn, Every,
        "SDM 13.4.22 RCTL.BAM",
        "a broadcast frame (ARP, DHCP) was dropped because RCTL.BAM is clear";
    /// A frame for the card's own (EEPROM) MAC dropped by the address filter.
    RxOwnMacFiltered = "rx-own-mac-filtered", Warn, Every,
        "SDM 13.5.2 RAL, 13.5.3 RAH",
        "a frame for the card's own MAC address (EEPROM words 0-2) was dropped: no RAL/RAH entry with AV holds it";
    /// Receiver enabled while the MTA was never written.
    MtaUninitialised = "mta-uninitialised", Warn, OncePerReset,
        "SDM 13.5.1 MTA, 14.4",
        "RCTL.EN set with RCTL.MPE clear and no MTA entry written since reset: the table's value is undefined on hardware";
    /// Interrupt-driven driver with a completion cause pending and masked for a second.
    IrqCauseMasked = "irq-cause-masked", Warn, OncePerReset,
        "SDM 13.4.17 ICR, 13.4.20 IMS",
        "RXT0 stayed pending in ICR for a second while IMS (with other packet causes enabled) does not include it: no interrupt reports received frames";
    /// INTx asserted for half a second with no ICR access.
    IntxStuck = "intx-stuck", Warn, OncePerReset,
        "SDM 13.4.17 ICR",
        "the interrupt line stayed asserted half a second without ICR being read or written: the handler must read ICR (which clears it) or write 1s to it";
    /// EERD written in the layout of later controllers.
    EerdLayout = "eerd-layout", Warn, OncePerReset,
        "SDM 13.4.4 EERD",
        "EERD written with bits 7:2 set: that is the 82541-and-later layout (address in 15:2, DONE bit 1); the 82540EM takes the address in bits 15:8 and reports DONE in bit 4";
    /// EECD clocked without requesting the EEPROM.
    EecdNoRequest = "eecd-no-request", Warn, OncePerReset,
        "SDM 13.4.3 EECD",
        "EECD.SK or EECD.CS driven without EECD.EE_REQ set (and EE_GNT read back): hardware may not grant the EEPROM";
    /// Registers reached through the I/O BAR.
    IoBarUsed = "io-bar-used", Info, OncePerReset,
        "SDM chapter 13 (I/O-mapped access: IOADDR, IODATA)",
        "registers accessed through the I/O BAR (IOADDR/IODATA): fine here and on hardware; QEMU's own e1000 ignores these accesses";
    /// Register access narrower than 32 bits or unaligned.
    SubDwordAccess = "sub-dword-access", Warn, OncePerReset,
        "SDM chapter 13 (registers are 32-bit, accessed aligned)",
        "a register access of other than 4 aligned bytes: the registers are 32-bit, use 32-bit accesses";
    /// TDT written with descriptors queued while the transmitter is disabled.
    TxDisabledDoorbell = "tx-disabled-doorbell", Warn, OncePerReset,
        "SDM 13.4.33 TCTL.EN",
        "TDT written with descriptors queued while TCTL.EN is clear: nothing is sent until the transmitter is enabled";
    /// RCTL.BSEX with BSIZE 00.
    RctlBsizeReserved = "rctl-bsize-reserved", Warn, OncePerReset,
        "SDM 13.4.22 RCTL.BSIZE/BSEX",
        "RCTL written with BSEX=1 and BSIZE=00, a reserved combination";
    /// An offset with no register on this card.
    NoSuchRegister = "no-such-register", Info, OncePerReset,
        "SDM chapter 13 (register summary)",
        "a BAR0 offset with no 82540EM register was accessed (reads 0, writes are ignored): often a register of a later controller, such as EEWR (0x102c)";
}

/// Number of lints in the catalogue.
pub const LINT_COUNT: usize = CATALOGUE.len();

/// One entry of the catalogue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lint {
    /// Identity.
    pub id: LintId,
    /// Stable name (`bus-master-off`): what logs, `ctl lints`, Prometheus and the C API
    /// show.
    pub name: &'static str,
    /// Info or warn.
    pub severity: Severity,
    /// Once per reset, or every time.
    pub repeat: Repeat,
    /// Where Intel's manual describes the behaviour.
    pub section: &'static str,
    /// What the lint checks, in a sentence.
    pub check: &'static str,
}

impl LintId {
    /// The catalogue entry.
    pub fn lint(self) -> &'static Lint {
        &CATALOGUE[self as usize]
    }

    /// The stable name.
    pub fn name(self) -> &'static str {
        self.lint().name
    }

    /// The lint named `name`, if there is one.
    pub fn from_name(name: &str) -> Option<Self> {
        CATALOGUE.iter().find(|l| l.name == name).map(|l| l.id)
    }
}

impl fmt::Display for LintId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What one lint saw: how often it fired and what it said the first time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// Which lint.
    pub id: LintId,
    /// Times it fired (see [`Repeat`]).
    pub count: u64,
    /// [`Clock`](crate::Clock) time of the first occurrence, in nanoseconds.
    pub first_ns: u64,
    /// Register accesses the device had served at the first occurrence.
    pub first_access: u64,
    /// The first occurrence's message.
    pub message: String,
}

/// The lints' state in a device: counts, first findings, and what the time-based checks
/// watch.
#[derive(Debug)]
pub(crate) struct LintState {
    findings: Vec<Option<Finding>>,
    /// Bit per lint: fired since the last reset.
    fired: u64,
    logs: [LogLimit; LINT_COUNT],
    // ---- watched since the last reset ----
    /// When RCTL.EN was set with RDH = RDT and RDT has not been written since.
    pub(super) rx_empty_since: Option<u64>,
    /// An MTA entry was written since reset.
    pub(super) mta_written: bool,
    /// When the interrupt line was first seen asserted with no ICR access since.
    intx_since: Option<u64>,
    /// When RXT0/TXDW were first seen pending and masked with no ICR access since.
    masked_since: Option<u64>,
    /// ICR was read or written since the last tick.
    pub(super) icr_accessed: bool,
    /// Transmit descriptors completed since the last one with RS or RPS.
    pub(super) tx_since_report: u32,
    /// Index of a context descriptor no data descriptor has used yet.
    pub(super) tx_open_context: Option<u32>,
}

impl Default for LintState {
    fn default() -> Self {
        Self {
            findings: vec![None; LINT_COUNT],
            fired: 0,
            logs: [LogLimit::default(); LINT_COUNT],
            rx_empty_since: None,
            mta_written: false,
            intx_since: None,
            masked_since: None,
            icr_accessed: false,
            tx_since_report: 0,
            tx_open_context: None,
        }
    }
}

// The fired set is one u64.
const _: () = assert!(LINT_COUNT <= 64);

/// How long RCTL.EN may wait for its first RDT write, and completions may stay masked.
const WATCH_LONG_NS: u64 = 1_000_000_000;
/// How long the interrupt line may stay asserted without an ICR access.
const WATCH_INTX_NS: u64 = 500_000_000;

impl LintState {
    /// Whether `id` would report now (not yet fired since reset, or repeating).
    #[inline]
    pub(super) fn armed(&self, id: LintId) -> bool {
        self.fired & (1 << id as u8) == 0 || id.lint().repeat == Repeat::Every
    }

    /// Device reset: once-per-reset lints may fire again; watches start over. Counts
    /// and findings stay.
    pub(super) fn reset(&mut self) {
        let findings = std::mem::take(&mut self.findings);
        let logs = self.logs;
        *self = Self {
            findings,
            logs,
            ..Self::default()
        };
    }

    fn fire(&mut self, id: LintId, now: u64, access: u64, msg: fmt::Arguments<'_>) {
        let lint = id.lint();
        self.fired |= 1 << id as u8;
        let slot = &mut self.findings[id as usize];
        match slot {
            Some(f) => f.count += 1,
            None => {
                *slot = Some(Finding {
                    id,
                    count: 1,
                    first_ns: now,
                    first_access: access,
                    message: msg.to_string(),
                })
            }
        }
        let level = match lint.severity {
            Severity::Info => log::Level::Info,
            Severity::Warn => log::Level::Warn,
        };
        let logged = match lint.repeat {
            Repeat::OncePerReset => true,
            Repeat::Every => self.logs[id as usize].note().is_some(),
        };
        if logged {
            log::log!(target: TARGET, level, "[{}] {msg} [{}]", lint.name, lint.section);
        }
    }

    /// The findings so far, in catalogue order.
    pub(super) fn findings(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().flatten()
    }

    /// Forget every finding and count (a test suite between runs).
    pub(super) fn clear(&mut self) {
        self.findings = vec![None; LINT_COUNT];
        self.logs = [LogLimit::default(); LINT_COUNT];
    }

    /// The earliest time a watched condition may fire.
    pub(super) fn deadline(&self) -> Option<u64> {
        [
            self.rx_empty_since.map(|t| t.saturating_add(WATCH_LONG_NS)),
            self.masked_since.map(|t| t.saturating_add(WATCH_LONG_NS)),
            self.intx_since.map(|t| t.saturating_add(WATCH_INTX_NS)),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

/// Causes that report packets moving.
const PACKET_CAUSES: u32 = ICR_TXDW | ICR_TXQE | ICR_TXD_LOW | ICR_RXT0 | ICR_RXDMT0 | ICR_RXO;

impl E1000 {
    /// Whether lint `id` would report now; checks that cost anything ask first.
    #[inline]
    pub(super) fn lint_armed(&self, id: LintId) -> bool {
        self.lint.armed(id)
    }

    /// Report lint `id` (formatting only happens here).
    pub(super) fn lint(&mut self, id: LintId, msg: fmt::Arguments<'_>) {
        if !self.lint.armed(id) {
            return;
        }
        let now = self.now();
        let access = self.metrics.reg_reads + self.metrics.reg_writes;
        self.lint.fire(id, now, access, msg);
    }

    /// Every finding so far (counts survive device resets), in catalogue order.
    pub fn lints(&self) -> Vec<Finding> {
        self.lint.findings().cloned().collect()
    }

    /// How many times lints of at least `severity` fired so far: a driver's test suite
    /// asserts `lint_total(Severity::Warn) == 0` after a run.
    pub fn lint_total(&self, severity: Severity) -> u64 {
        self.lint
            .findings()
            .filter(|f| f.id.lint().severity >= severity)
            .map(|f| f.count)
            .sum()
    }

    /// Forget every finding (between two runs of a driver on the same device).
    pub fn clear_lints(&mut self) {
        self.lint.clear();
    }

    /// A register write, seen before it takes effect: the checks that look at the value
    /// written and the state it replaces.
    pub(super) fn lint_write(&mut self, off: u32, val: u32, now: u64) {
        self.lint_tick(now);
        match off {
            RCTL => self.lint_rctl(val, now),
            RDT | TDT => self.lint_doorbell(off, val),
            RDLEN | TDLEN if val & 0x7F != 0 => {
                let name = if off == RDLEN { "RDLEN" } else { "TDLEN" };
                self.lint(
                    LintId::RingLenUnaligned,
                    format_args!(
                        "{name}={val:#x}: bits 6:0 are ignored, the ring holds {} descriptors; \
                         use a multiple of 8 descriptors (128 bytes)",
                        (val & 0x000F_FF80) / 16
                    ),
                );
            }
            RDBAL | TDBAL if val & 0xF != 0 => {
                let name = if off == RDBAL { "RDBAL" } else { "TDBAL" };
                self.lint(
                    LintId::RingBaseUnaligned,
                    format_args!(
                        "{name}={val:#010x}: bits 3:0 are ignored, the ring is read at {:#010x}; \
                         align the ring to 16 bytes (128 recommended)",
                        val & !0xF
                    ),
                );
            }
            RDH if self.reg(RCTL) & RCTL_EN != 0 => self.lint(
                LintId::HeadWrittenEnabled,
                format_args!(
                    "RDH written ({val}) with RCTL.EN=1: write RDH only while the receiver is disabled"
                ),
            ),
            TDH if self.reg(TCTL) & TCTL_EN != 0 => self.lint(
                LintId::HeadWrittenEnabled,
                format_args!(
                    "TDH written ({val}) with TCTL.EN=1: write TDH only while the transmitter is disabled"
                ),
            ),
            EECD if val & (EECD_SK | EECD_CS) != 0 && val & EECD_REQ == 0 => self.lint(
                LintId::EecdNoRequest,
                format_args!(
                    "EECD={val:#x} drives SK/CS without EE_REQ: set EECD.EE_REQ (bit 6) and wait \
                     for EE_GNT (bit 7) before clocking the EEPROM"
                ),
            ),
            EERD if val & 0xFC != 0 => self.lint(
                LintId::EerdLayout,
                format_args!(
                    "EERD={val:#x} has bits 7:2 set (the 82541 layout: address in 15:2, DONE bit \
                     1): on the 82540EM write START | address << 8 and poll DONE (bit 4)"
                ),
            ),
            ICR => self.lint.icr_accessed = true,
            _ if (MTA..MTA + 4 * MTA_WORDS).contains(&off) => self.lint.mta_written = true,
            _ => {}
        }
    }

    fn lint_rctl(&mut self, val: u32, now: u64) {
        let was = self.reg(RCTL);
        if val & RCTL_BSEX != 0 && val & RCTL_BSIZE_MASK == 0 {
            self.lint(
                LintId::RctlBsizeReserved,
                format_args!("RCTL={val:#010x}: BSEX=1 with BSIZE=00 is reserved"),
            );
        }
        if val & RCTL_EN == 0 {
            self.lint.rx_empty_since = None;
            return;
        }
        if was & RCTL_EN != 0 {
            return;
        }
        if !self.dma_allowed() {
            self.lint(
                LintId::BusMasterOff,
                format_args!(
                    "RCTL.EN set but PCI Command.BME=0: the card cannot write received frames; \
                     set bit 2 of the PCI Command register (config 0x04)"
                ),
            );
        }
        if val & RCTL_SECRC == 0 {
            self.lint(
                LintId::RxSecrcClear,
                format_args!(
                    "RCTL.EN set with RCTL.SECRC=0: every receive length includes the 4 FCS bytes"
                ),
            );
        }
        if val & (RCTL_MPE | RCTL_UPE) == 0 && !self.lint.mta_written {
            self.lint(
                LintId::MtaUninitialised,
                format_args!(
                    "RCTL.EN set with RCTL.MPE=0 but no MTA entry written since reset: the \
                     multicast table is undefined on hardware; clear MTA[0..127]"
                ),
            );
        }
        let empty = self.reg(RDH) == self.reg(RDT) || self.reg(RDLEN) / 16 == 0;
        self.lint.rx_empty_since = empty.then_some(now);
    }

    /// RDT or TDT written with `val`.
    fn lint_doorbell(&mut self, off: u32, val: u32) {
        let rx = off == RDT;
        let (name, len_reg, head_reg, ctl, en) = if rx {
            ("RDT", RDLEN, RDH, RCTL, RCTL_EN)
        } else {
            ("TDT", TDLEN, TDH, TCTL, TCTL_EN)
        };
        let tail = val & 0xFFFF;
        let ring = self.reg(len_reg) / 16;
        let enabled = self.reg(ctl) & en != 0;
        if rx {
            self.lint.rx_empty_since = None;
        }
        let queued = tail != self.reg(head_reg);
        if !rx && queued {
            // Drop reasons: what process_tx will refuse for this doorbell.
            let head = self.reg(TDH);
            if !enabled {
                self.drops.tx_disabled += 1;
            } else if !self.dma_allowed() {
                self.drops.tx_bus_master_off += 1;
            } else if ring == 0 || tail >= ring || head >= ring {
                self.drops.tx_ring_invalid += 1;
            }
        }
        if enabled && queued && !self.dma_allowed() {
            self.lint(
                LintId::BusMasterOff,
                format_args!(
                    "{name}={tail} written but PCI Command.BME=0: the card cannot fetch \
                     descriptors; set bit 2 of the PCI Command register (config 0x04)"
                ),
            );
        }
        if ring == 0 {
            if enabled && queued && !rx {
                self.lint(
                    LintId::RingLenZero,
                    format_args!(
                        "TDT={tail} written with TDLEN=0: the transmit ring holds no descriptor \
                         (bits 6:0 of TDLEN are ignored); use a multiple of 8 descriptors"
                    ),
                );
            }
            return;
        }
        if tail >= ring {
            let len_name = if rx { "RDLEN" } else { "TDLEN" };
            self.lint(
                LintId::TailOutsideRing,
                format_args!(
                    "{name}={tail} but {len_name} holds {ring} descriptors (0..{}): the card \
                     stops; the tail is an index inside the ring",
                    ring - 1
                ),
            );
            return;
        }
        if !rx && queued && !enabled {
            self.lint(
                LintId::TxDisabledDoorbell,
                format_args!(
                    "TDT={tail} written with descriptors queued but TCTL.EN=0: nothing is sent \
                     until TCTL.EN is set"
                ),
            );
        }
        if rx && queued {
            self.lint_rx_given(tail, ring);
        }
    }

    /// The driver moved RDT to `tail`: look at the last descriptor it gave (and its
    /// neighbour), without DMA side effects.
    fn lint_rx_given(&mut self, tail: u32, ring: u32) {
        let stale = self.lint_armed(LintId::RxStaleDd);
        let overlap = self.lint_armed(LintId::RxBuffersOverlap);
        if !stale && !overlap {
            return;
        }
        let base = (u64::from(self.reg(RDBAH)) << 32) | u64::from(self.reg(RDBAL));
        let last = (tail + ring - 1) % ring;
        let at = |i: u32| base.wrapping_add(u64::from(i) * 16);
        let mut d = [0u8; 16];
        if self.mem.read(at(last), &mut d).is_err() {
            return;
        }
        if stale && d[12] & super::rx::status::DD != 0 {
            self.lint(
                LintId::RxStaleDd,
                format_args!(
                    "RDT={tail} handed back descriptor {last} whose status still has DD set: \
                     clear the status byte before giving a descriptor back"
                ),
            );
        }
        if overlap && ring > 1 {
            let prev = (last + ring - 1) % ring;
            let mut p = [0u8; 8];
            if self.mem.read(at(prev), &mut p).is_err() {
                return;
            }
            let (a, b) = (
                u64::from_le_bytes(p),
                u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]),
            );
            // The most the card writes into one buffer: BSIZE, or less when no frame can
            // be that long (without RCTL.LPE at most 1518 bytes and a VLAN tag; the FCS
            // counted). Linux allocates 1920-byte buffers for BSIZE 2048, rightly.
            let bsize = self.rx_buffer_size() as u64;
            let lpe = self.reg(RCTL) & RCTL_LPE != 0;
            let longest = if lpe { MAX_JUMBO_FRAME } else { MAX_STD_TAGGED } as u64 + 4;
            let written = bsize.min(longest);
            if a != 0 && b != 0 && a != b && a.abs_diff(b) < written {
                self.lint(
                    LintId::RxBuffersOverlap,
                    format_args!(
                        "receive buffers of descriptors {prev} ({a:#x}) and {last} ({b:#x}) are \
                         {} bytes apart but RCTL.BSIZE is {bsize} (RCTL.LPE={}): a frame of up \
                         to {written} bytes overwrites the neighbour; make buffers at least that \
                         far apart or lower BSIZE",
                        a.abs_diff(b),
                        u8::from(lpe)
                    ),
                );
            }
        }
    }

    /// The time-based checks: run on register writes and service steps.
    pub(crate) fn lint_tick(&mut self, now: u64) {
        let icr_accessed = std::mem::take(&mut self.lint.icr_accessed);
        // The interrupt asserted (whether or not INTx-disable holds the line down, as
        // uio_pci_generic's handler does) and nobody acknowledges it.
        if self.irq.asserted() && !icr_accessed {
            let since = *self.lint.intx_since.get_or_insert(now);
            if now.saturating_sub(since) >= WATCH_INTX_NS {
                self.lint.intx_since = None;
                let icr = self.irq.pending();
                self.lint(
                    LintId::IntxStuck,
                    format_args!(
                        "the interrupt line has been asserted for {} ms (ICR={icr:#010x}, \
                         IMS={:#010x}) and ICR was not read or written since: the handler must \
                         read ICR, which clears it",
                        now.saturating_sub(since) / 1_000_000,
                        self.irq.mask()
                    ),
                );
            }
        } else {
            self.lint.intx_since = None;
        }
        // Receive completions pending under a mask that covers other packet causes (a
        // driver may well leave TXDW masked and clean its transmit ring when it likes).
        let ims = self.irq.mask();
        let hidden = self.irq.pending() & ICR_RXT0 & !ims;
        if hidden != 0 && ims & PACKET_CAUSES != 0 && !icr_accessed {
            let since = *self.lint.masked_since.get_or_insert(now);
            if now.saturating_sub(since) >= WATCH_LONG_NS {
                self.lint.masked_since = None;
                self.lint(
                    LintId::IrqCauseMasked,
                    format_args!(
                        "RXT0 pending for a second but IMS={ims:#010x} does not include it: \
                         received frames raise RXT0 (bit 7), not RXO or RXDMT0; set RXT0 in IMS"
                    ),
                );
            }
        } else {
            self.lint.masked_since = None;
        }
        // The receiver waits for a ring (U-Boot enables RCTL before writing RDLEN, then
        // disables it again to set the ring up: only a state that lasts is a mistake) or
        // for a first RDT write that does not come.
        if let Some(since) = self.lint.rx_empty_since {
            if now.saturating_sub(since) >= WATCH_LONG_NS {
                self.lint.rx_empty_since = None;
                if self.reg(RDLEN) / 16 == 0 {
                    self.lint(
                        LintId::RingLenZero,
                        format_args!(
                            "RCTL.EN has been set for a second with RDLEN=0: the receive ring \
                             holds no descriptor; write RDLEN (a multiple of 128 bytes) before \
                             enabling"
                        ),
                    );
                } else if self.reg(RDH) == self.reg(RDT) {
                    let rdt = self.reg(RDT);
                    self.lint(
                        LintId::RxRingEmpty,
                        format_args!(
                            "RCTL.EN set with RDH=RDT={rdt} and RDT not written since: the card \
                             owns no receive descriptor; write RDT = (number of descriptors - 1) \
                             after filling the ring"
                        ),
                    );
                }
            }
        }
    }

    /// A BAR0 access of `len` bytes at `offset`.
    #[inline]
    pub(super) fn lint_access_width(&mut self, offset: u64, len: usize, write: bool) {
        if (len != 4 || offset & 3 != 0) && self.lint_armed(LintId::SubDwordAccess) {
            let reg = offset & !3;
            self.lint(
                LintId::SubDwordAccess,
                format_args!(
                    "{len}-byte {} at BAR0 offset {offset:#x} (register {reg:#06x} + {}): the \
                     registers are 32-bit; use aligned 32-bit accesses",
                    if write { "write" } else { "read" },
                    offset - reg
                ),
            );
        }
    }

    /// An access of BAR0 offset `off`, which has no register.
    #[inline]
    pub(super) fn lint_no_register(&mut self, off: u32, write: bool) {
        if self.lint_armed(LintId::NoSuchRegister) {
            self.lint(
                LintId::NoSuchRegister,
                format_args!(
                    "{} of BAR0 offset {off:#07x}, which is no 82540EM register: reads 0, \
                     writes are ignored (a later controller's register, such as EEWR at \
                     0x0102c?)",
                    if write { "write" } else { "read" }
                ),
            );
        }
    }

    /// An access of IODATA.
    #[inline]
    pub(super) fn lint_io_bar(&mut self, write: bool) {
        if self.lint_armed(LintId::IoBarUsed) {
            let reg = self.io_addr;
            self.lint(
                LintId::IoBarUsed,
                format_args!(
                    "register {reg:#06x} {} through the I/O BAR (IOADDR/IODATA): works here and \
                     on hardware, but QEMU's built-in e1000 ignores I/O BAR accesses",
                    if write { "written" } else { "read" }
                ),
            );
        }
    }

    /// A DMA access outside guest memory, with bus mastering on.
    pub(super) fn lint_dma(&mut self, e: &crate::memory::DmaError) {
        if !self.lint_armed(LintId::DmaOutsideRam) {
            return;
        }
        let tdba = (u64::from(self.reg(TDBAH)) << 32) | u64::from(self.reg(TDBAL));
        let rdba = (u64::from(self.reg(RDBAH)) << 32) | u64::from(self.reg(RDBAL));
        self.lint(
            LintId::DmaOutsideRam,
            format_args!(
                "DMA of {} bytes at {:#x} is outside guest memory (TDBAH:TDBAL={tdba:#x}, \
                 RDBAH:RDBAL={rdba:#x}): ring bases and buffer addresses must be physical (bus) \
                 addresses; a kernel virtual address here is the usual cause (JOS: PADDR())",
                e.len, e.addr
            ),
        );
    }

    /// A transmit descriptor `index` as fetched, before the engine acts on it.
    #[inline]
    pub(super) fn lint_tx_desc(&mut self, index: u32, d: &[u8; 16], ring: u32) {
        use super::tx::cmd;
        let c = d[11];
        let dext = c & cmd::DEXT != 0;
        let context = dext && d[10] >> 4 == 0;
        if let Some(open) = self.lint.tx_open_context {
            // A context descriptor is for the data descriptors after it.
            if context || !dext {
                self.lint.tx_open_context = None;
                self.lint(
                    LintId::TxContextUnused,
                    format_args!(
                        "descriptor {open} has DEXT=1 and DTYP=0: the card took it as a context \
                         descriptor and sent nothing for it (descriptor {index} follows as a {}); \
                         legacy descriptors have DEXT (CMD bit 5) clear",
                        if context {
                            "context descriptor again"
                        } else {
                            "legacy descriptor"
                        }
                    ),
                );
            } else {
                self.lint.tx_open_context = None;
            }
        }
        if context {
            self.lint.tx_open_context = Some(index);
            return;
        }
        let report = if dext { cmd::RS } else { cmd::RS | cmd::RPS };
        if c & report != 0 {
            self.lint.tx_since_report = 0;
        } else {
            self.lint.tx_since_report = self.lint.tx_since_report.saturating_add(1);
            if self.lint.tx_since_report >= ring.max(8) && self.lint_armed(LintId::TxNoRs) {
                let n = self.lint.tx_since_report;
                self.lint(
                    LintId::TxNoRs,
                    format_args!(
                        "{n} transmit descriptors done, none with CMD.RS: the card writes DD back \
                         only into descriptors with RS (CMD bit 3); a driver waiting for DD waits \
                         forever"
                    ),
                );
            }
        }
        if dext {
            if c & cmd::EOP != 0 && c & cmd::IFCS == 0 {
                self.lint_no_ifcs(index, c);
            }
            return;
        }
        if c == 0 && d[10] != 0 && self.lint_armed(LintId::TxCmdInCso) {
            self.lint(
                LintId::TxCmdInCso,
                format_args!(
                    "descriptor {index}: CMD=0 but CSO={:#04x}: CSO is byte 10 and CMD byte 11 of \
                     a legacy descriptor (EOP is CMD 0x01, IFCS 0x02, RS 0x08); is the \
                     descriptor structure packed as the manual lays it out?",
                    d[10]
                ),
            );
        }
        let len = u16::from_le_bytes([d[8], d[9]]);
        if len > 16288 && self.lint_armed(LintId::TxDescTooLong) {
            self.lint(
                LintId::TxDescTooLong,
                format_args!(
                    "descriptor {index}: length {len} is larger than 16288 bytes, the legacy \
                     descriptor maximum: split the buffer over several descriptors"
                ),
            );
        }
        if c & cmd::EOP != 0 && c & cmd::IFCS == 0 {
            self.lint_no_ifcs(index, c);
        }
    }

    fn lint_no_ifcs(&mut self, index: u32, c: u8) {
        if self.lint_armed(LintId::TxNoIfcs) {
            self.lint(
                LintId::TxNoIfcs,
                format_args!(
                    "descriptor {index}: CMD={c:#04x} has EOP but not IFCS: real hardware sends \
                     the frame without FCS and the peer drops it as a CRC error; set CMD.IFCS \
                     (0x02)"
                ),
            );
        }
    }

    /// A transmit pass stopped with TDH = TDT.
    pub(super) fn lint_tx_drained(&mut self, head: u32, packet_open: bool) {
        if packet_open && self.lint_armed(LintId::TxNoEop) {
            let last = head
                .checked_sub(1)
                .unwrap_or((self.reg(TDLEN) / 16).saturating_sub(1));
            self.lint(
                LintId::TxNoEop,
                format_args!(
                    "the descriptors up to TDT={head} end without EOP (descriptor {last} is the \
                     last): their data is held for the next packet; set CMD.EOP (0x01) on the \
                     last descriptor of each packet"
                ),
            );
        }
        if let Some(open) = self.lint.tx_open_context.take() {
            self.lint(
                LintId::TxContextUnused,
                format_args!(
                    "descriptor {open} has DEXT=1 and DTYP=0 and is the last before TDT: the card \
                     took it as a context descriptor and sent nothing; legacy descriptors have \
                     DEXT (CMD bit 5) clear"
                ),
            );
        }
    }

    /// A frame of `len` bytes about to be sent (after tag insertion and padding).
    #[inline]
    pub(super) fn lint_tx_frame(&mut self, len: usize) {
        if len < MIN_FRAME && self.lint_armed(LintId::TxRunt) {
            self.lint(
                LintId::TxRunt,
                format_args!(
                    "a {len}-byte frame was sent with TCTL.PSP=0: a runt on hardware, which peers \
                     drop; set TCTL.PSP (bit 3) or pad frames to 60 bytes"
                ),
            );
        }
    }

    /// A received frame took `descriptors` descriptors of `bufsize` bytes.
    #[inline]
    pub(super) fn lint_rx_split(&mut self, len: usize, descriptors: usize, bufsize: usize) {
        if descriptors > 1 && self.lint_armed(LintId::RxFrameSplit) {
            self.lint(
                LintId::RxFrameSplit,
                format_args!(
                    "a {len}-byte frame used {descriptors} descriptors (RCTL.BSIZE {bufsize}): \
                     EOP is set on the last only; a driver must chain descriptors up to EOP"
                ),
            );
        }
    }

    /// A received frame the filters rejected: count its reason, and say why when the
    /// driver probably did not mean it.
    pub(super) fn rx_filtered(&mut self, frame: &[u8]) {
        let rctl = self.reg(RCTL);
        let dest: [u8; 6] = match frame.get(..6).and_then(|d| d.try_into().ok()) {
            Some(d) => d,
            None => return,
        };
        if self.rx_vlan_rejects(frame) {
            self.drops.rx_filtered_vlan += 1;
        } else if dest == [0xFF; 6] {
            self.drops.rx_filtered_broadcast += 1;
            if rctl & RCTL_BAM == 0 {
                let n = self.drops.rx_filtered_broadcast;
                let what = match frame.get(12..14) {
                    Some([0x08, 0x06]) => "ARP",
                    Some([0x08, 0x00]) => "IPv4",
                    _ => "",
                };
                self.lint(
                    LintId::RxBroadcastDropped,
                    format_args!(
                        "broadcast {what} frame from {} dropped: RCTL.BAM=0 ({n} broadcasts \
                         dropped so far); set RCTL.BAM (bit 15) to receive ARP and DHCP",
                        crate::mac::MacAddress::new(
                            frame
                                .get(6..12)
                                .and_then(|s| s.try_into().ok())
                                .unwrap_or([0; 6])
                        )
                    ),
                );
            }
        } else if dest[0] & 1 != 0 {
            self.drops.rx_filtered_multicast += 1;
        } else {
            self.drops.rx_filtered_unicast += 1;
            if dest == self.mac.octets() {
                let (ral, rah) = (self.reg(ral(0)), self.reg(rah(0)));
                let r = ral.to_le_bytes();
                let h = rah.to_le_bytes();
                let ra0 = crate::mac::MacAddress::new([r[0], r[1], r[2], r[3], h[0], h[1]]);
                let mut swapped = dest;
                swapped.reverse();
                let hint = if ra0.octets() == swapped {
                    "the bytes are in reverse order: RAL holds the first four octets, lowest \
                     byte first"
                } else if rah & RAH_AV == 0 {
                    "RAH.AV (bit 31) is clear"
                } else {
                    "RA0 holds another address"
                };
                self.lint(
                    LintId::RxOwnMacFiltered,
                    format_args!(
                        "frame for {} (the EEPROM MAC) dropped: RA0={ra0} AV={} ({hint}); write \
                         RAL0/RAH0 with the MAC and RAH.AV set",
                        crate::mac::MacAddress::new(dest),
                        u8::from(rah & RAH_AV != 0)
                    ),
                );
            }
        }
    }
}
