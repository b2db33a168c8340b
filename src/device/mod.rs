//! The 82540EM device model.
//!
//! [`E1000`] owns everything a real card has (registers, EEPROM, PHY, interrupt logic,
//! statistics, the TX and RX engines) plus the three things it is connected to: guest
//! memory ([`GuestRam`]), an interrupt line ([`IrqLine`]) and a packet backend
//! ([`PacketBackend`]). Frontends (vfio-user, the in-process bus, the C API) call the
//! access methods below; nothing here knows which frontend is in use.
//!
//! Concept per file: `regs` (offsets and bits), `pci_config`, `eeprom`, `phy`,
//! `interrupts`, `stats`, `tx` (+ `offload`), `rx` (+ `filter`); for driver writers,
//! `lint` (the mistakes the device notices), `drops` (why frames were not delivered) and
//! `trace` (register accesses and frames, decoded).

pub mod drops;
pub mod eeprom;
pub mod filter;
pub mod interrupts;
pub mod lint;
pub mod metrics;
pub mod model;
pub mod offload;
pub mod pci_config;
pub mod phy;
pub mod register_table;
pub mod regs;
pub mod rx;
pub mod service;
pub mod stats;
pub mod trace;
pub mod tx;
mod tx_gso;

use std::sync::Arc;

use crate::backend::{PacketBackend, RxOutcome};
use crate::clock::Clock;
use crate::irq::IrqLine;
use crate::mac::MacAddress;
use crate::memory::{DmaError, GuestRam};
use eeprom::{Eeprom, EEPROM_WORDS};
use interrupts::Interrupts;
pub use metrics::Metrics;
pub use model::Model;
use pci_config::PciConfig;
use phy::Phy;
use register_table::Access;
use regs::*;
pub use service::{AccessEffect, Service};
use stats::Stats;

/// Number of 32-bit words in BAR0.
const REG_WORDS: usize = (BAR0_SIZE / 4) as usize;

/// Which of the device's BARs an access is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bar {
    /// BAR0: the 128 KiB register file.
    Mmio,
    /// BAR1: the IOADDR/IODATA window.
    Io,
}

impl Bar {
    /// The BAR with PCI index `n`, if the device has one.
    pub fn from_index(n: u32) -> Option<Self> {
        match n {
            0 => Some(Self::Mmio),
            1 => Some(Self::Io),
            _ => None,
        }
    }
    /// Size of the BAR in bytes.
    pub fn size(self) -> u64 {
        match self {
            Self::Mmio => BAR0_SIZE,
            Self::Io => BAR1_SIZE,
        }
    }
}

/// How the device is set up at creation.
#[derive(Clone, Debug)]
pub struct DeviceConfig {
    /// The MAC address written into the EEPROM (and `RA[0]` at reset); an EEPROM image
    /// given in [`eeprom`](Self::eeprom) carries its own.
    pub mac: MacAddress,
    /// Whether the cable is plugged in at power-on.
    pub link_up: bool,
    /// Which controller to be.
    pub model: Model,
    /// The EEPROM's 64 words at power-on; `None`: the model's image with `mac`.
    pub eeprom: Option<[u16; EEPROM_WORDS]>,
    /// Told the EEPROM's words after every change the guest programs (persistence).
    pub eeprom_store: Option<Arc<dyn EepromStore>>,
    /// How long the link stays down while the PHY negotiates again (after an
    /// autonegotiation restart, a PHY reset or power-up); zero: at once.
    pub autoneg_delay: std::time::Duration,
}

/// QEMU's e1000 keeps the link down this long after an autonegotiation restart.
pub const DEFAULT_AUTONEG_DELAY: std::time::Duration = std::time::Duration::from_millis(500);

impl Default for DeviceConfig {
    fn default() -> Self {
        Self {
            mac: MacAddress::DEFAULT,
            link_up: true,
            model: Model::default(),
            eeprom: None,
            eeprom_store: None,
            autoneg_delay: DEFAULT_AUTONEG_DELAY,
        }
    }
}

/// Where EEPROM contents persist: given all 64 words after every change the guest
/// programs (`ethtool -E`). Called with the device locked, from the guest's register
/// access: keep it short.
pub trait EepromStore: Send + Sync + std::fmt::Debug {
    /// Keep `words` (the whole image).
    fn save(&self, words: &[u16; EEPROM_WORDS]) -> std::io::Result<()>;
}

/// An emulated Intel 82540EM.
pub struct E1000 {
    regs: Box<[u32]>,
    pci: PciConfig,
    eeprom: Eeprom,
    phy: Phy,
    irq: Interrupts,
    stats: Stats,
    tx: tx::TxState,
    rx: rx::RxState,
    mem: GuestRam,
    backend: Box<dyn PacketBackend>,
    clock: Arc<dyn Clock>,
    metrics: Metrics,
    mac: MacAddress,
    model: Model,
    /// Where the guest's EEPROM changes persist, if anywhere.
    eeprom_store: Option<Arc<dyn EepromStore>>,
    /// Rate-limits the log of failed EEPROM saves (each is logged until the limit).
    eeprom_log: crate::log_limit::LogLimit,
    /// Last value written to IOADDR.
    io_addr: u32,
    /// Rate-limits the log of DMA errors (not their counting).
    dma_log: crate::log_limit::LogLimit,
    /// The last service step found the device unable to take frames (see
    /// [`AccessEffect::service_due`]).
    rx_stalled: bool,
    /// What the driver did wrong (`lint.rs`).
    lint: lint::LintState,
    /// Why frames and descriptors were not delivered (`drops.rs`).
    drops: drops::Drops,
    /// The host's cable: plugged at power-on unless configured otherwise, then as
    /// [`set_link`](Self::set_link) says.
    cable: bool,
    /// The backend's carrier as last seen ([`PacketBackend::carrier`]). The guest sees a
    /// link only while both are up.
    carrier: bool,
}

impl std::fmt::Debug for E1000 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("E1000")
            .field("mac", &self.mac)
            .field("backend", &self.backend.name())
            .field("irq", &self.irq)
            .field("metrics", &self.metrics)
            .finish()
    }
}

impl E1000 {
    /// A device at power-on, with no guest memory yet (see [`set_memory`](Self::set_memory)).
    pub fn new(
        config: DeviceConfig,
        backend: Box<dyn PacketBackend>,
        irq: Box<dyn IrqLine>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let mut backend = backend;
        let carrier = backend.carrier().up;
        let eeprom = config.eeprom.unwrap_or_else(|| {
            eeprom::default_image(config.mac.octets(), config.model.eeprom_identity())
        });
        // The EEPROM holds the MAC the driver reads (and RA[0] gets at reset).
        let w = |i: usize| eeprom[i].to_le_bytes();
        let mac = MacAddress::new([w(0)[0], w(0)[1], w(1)[0], w(1)[1], w(2)[0], w(2)[1]]);
        let mut d = Self {
            regs: vec![0u32; REG_WORDS].into_boxed_slice(),
            pci: PciConfig::new(config.model),
            eeprom: Eeprom::new(eeprom),
            phy: Phy::new(config.link_up && carrier, config.autoneg_delay),
            irq: Interrupts::new(irq),
            stats: Stats::default(),
            tx: tx::TxState::default(),
            rx: rx::RxState::default(),
            mem: GuestRam::empty(),
            backend,
            clock,
            metrics: Metrics::default(),
            mac,
            model: config.model,
            eeprom_store: config.eeprom_store,
            eeprom_log: Default::default(),
            io_addr: 0,
            dma_log: Default::default(),
            rx_stalled: false,
            lint: Default::default(),
            drops: Default::default(),
            cable: config.link_up,
            carrier,
        };
        d.reset();
        d
    }

    // ---------------------------------------------------------------- frontend API

    /// Replace the guest memory the device reaches by DMA.
    pub fn set_memory(&mut self, mem: GuestRam) {
        // The old table's map/unmap count stays in the metrics (counters never go back).
        self.metrics.dma_map_edits += self.mem.edits();
        self.mem = mem;
    }

    /// The guest memory the device reaches by DMA.
    pub fn memory(&self) -> &GuestRam {
        &self.mem
    }

    /// The guest memory table, to map and unmap ranges in place (DMA happens only
    /// through `&mut self`, so no DMA runs while the caller edits it).
    pub fn memory_mut(&mut self) -> &mut GuestRam {
        &mut self.mem
    }

    /// The MAC address in the EEPROM.
    pub fn mac(&self) -> MacAddress {
        self.mac
    }

    /// Emulator-side counters.
    pub fn metrics(&self) -> Metrics {
        let mut m = self.metrics.clone();
        m.irq_asserts = self.irq.asserts;
        m.dma_map_edits += self.mem.edits();
        m
    }

    /// Frames not delivered and descriptors not processed, by reason.
    pub fn drops(&self) -> drops::Drops {
        let mut d = self.drops.clone();
        d.tx_link_down = self.metrics.tx_no_link;
        d.tx_backend_refused = self.metrics.tx_backend_drops;
        d
    }

    /// Statistics registers, read without clearing them.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The packet backend.
    pub fn backend_mut(&mut self) -> &mut dyn PacketBackend {
        &mut *self.backend
    }

    /// Current level of the interrupt line.
    pub fn irq_level(&self) -> bool {
        self.irq.level()
    }

    /// Read PCI configuration space. The status register's interrupt bit is the
    /// device's interrupt state now, whichever thread raised it.
    pub fn config_read(&self, offset: u64, data: &mut [u8]) {
        self.pci
            .read_with_interrupt(offset, data, self.irq.asserted());
    }

    /// Write PCI configuration space. Any write may change what the service step does
    /// (bus mastering, INTx disable).
    pub fn config_write(&mut self, offset: u64, data: &[u8]) -> AccessEffect {
        let was_master = self.pci.bus_master();
        self.pci.write(offset, data);
        let now = self.now();
        self.irq.set_intx_disabled(self.pci.intx_disabled(), now);
        if !was_master && self.pci.bus_master() {
            // DMA became possible: work the guest queued meanwhile can go now.
            self.process_tx();
            self.poll_backend();
        }
        AccessEffect::SERVICE
    }

    /// Read from a BAR, BAR-relative. Reads outside the BAR return zeros.
    pub fn bar_read(&mut self, bar: Bar, offset: u64, data: &mut [u8]) {
        data.fill(0);
        match bar {
            Bar::Mmio => {
                self.lint_access_width(offset, data.len(), false);
                self.mmio_read(offset, data)
            }
            Bar::Io => {
                if data.len() != 4 {
                    return;
                }
                if offset == IODATA {
                    self.lint_io_bar(false);
                }
                let v = match offset {
                    IOADDR => self.io_addr,
                    IODATA => self.read_reg(self.io_addr),
                    _ => 0,
                };
                data.copy_from_slice(&v.to_le_bytes());
            }
        }
    }

    /// Write to a BAR, BAR-relative. Writes outside the BAR are ignored.
    pub fn bar_write(&mut self, bar: Bar, offset: u64, data: &[u8]) -> AccessEffect {
        match bar {
            Bar::Mmio => {
                self.lint_access_width(offset, data.len(), true);
                self.mmio_write(offset, data)
            }
            Bar::Io => {
                let Ok(bytes) = <[u8; 4]>::try_from(data) else {
                    return AccessEffect::NONE;
                };
                let v = u32::from_le_bytes(bytes);
                match offset {
                    IOADDR => self.io_addr = v & (BAR0_SIZE as u32 - 1) & !3,
                    IODATA => {
                        self.lint_io_bar(true);
                        let _ = self.write_reg(self.io_addr, v);
                    }
                    _ => {}
                }
                // Rare (Linux resets through it): always let the service step look.
                AccessEffect::SERVICE
            }
        }
    }

    fn mmio_read(&mut self, offset: u64, data: &mut [u8]) {
        // Split into aligned dwords; each dword is read once, with its side effects.
        let Some(end) = offset.checked_add(data.len() as u64) else {
            return;
        };
        if end > BAR0_SIZE {
            return;
        }
        let mut pos = offset;
        while pos < end {
            let dword = pos & !3;
            let v = self.read_reg(dword as u32).to_le_bytes();
            let from = (pos - dword) as usize;
            let n = (4 - from).min((end - pos) as usize);
            let at = (pos - offset) as usize;
            data[at..at + n].copy_from_slice(&v[from..from + n]);
            pos += n as u64;
        }
    }

    fn mmio_write(&mut self, offset: u64, data: &[u8]) -> AccessEffect {
        let mut effect = AccessEffect::NONE;
        let Some(end) = offset.checked_add(data.len() as u64) else {
            return effect;
        };
        if end > BAR0_SIZE {
            return effect;
        }
        let mut pos = offset;
        while pos < end {
            let dword = pos & !3;
            let from = (pos - dword) as usize;
            let n = (4 - from).min((end - pos) as usize);
            let at = (pos - offset) as usize;
            // A partial write merges with the stored value (no read side effects).
            let mut v = self.regs[(dword / 4) as usize].to_le_bytes();
            v[from..from + n].copy_from_slice(&data[at..at + n]);
            effect = effect.and(self.write_reg(dword as u32, u32::from_le_bytes(v)));
            pos += n as u64;
        }
        effect
    }

    /// Plug or pull the cable from the host side. The guest's link follows (LSC raised
    /// when it changes), unless the backend has no carrier: then it stays down until the
    /// backend's wire is back too.
    pub fn set_link(&mut self, up: bool) {
        self.cable = up;
        self.apply_link();
    }

    /// Whether the guest sees a link: the cable is plugged, the backend has a carrier,
    /// and the PHY has negotiated (not powered down, held in reset or negotiating).
    pub fn link_up(&self) -> bool {
        self.phy.link_up()
    }

    /// Whether the host's cable is plugged ([`set_link`](Self::set_link)), whatever the
    /// backend's carrier.
    pub fn cable_plugged(&self) -> bool {
        self.cable
    }

    /// The backend's carrier as the last service step saw it.
    pub fn backend_carrier(&self) -> bool {
        self.carrier
    }

    /// Take the backend's carrier (read by the service step) into the link.
    pub(crate) fn set_carrier(&mut self, up: bool) {
        if self.carrier != up {
            log::debug!(
                "backend {}: carrier {}",
                self.backend.name(),
                if up { "up" } else { "down" }
            );
        }
        self.carrier = up;
        self.apply_link();
    }

    /// Show the guest the link the cable and the carrier allow: the PHY, STATUS.LU and,
    /// on a change, LSC, as a real cable pulled or plugged.
    fn apply_link(&mut self) {
        let up = self.cable && self.carrier;
        if self.phy.cable() == up {
            return;
        }
        let was_up = self.phy.link_up();
        self.phy.set_link(up);
        self.link_changed(was_up, false);
    }

    /// After anything that may change the PHY's link, speed or duplex: STATUS follows,
    /// and LSC is raised when the link went down or came up (or negotiated again, when
    /// that takes no time), and frames may flow again.
    fn link_changed(&mut self, was_up: bool, renegotiated: bool) {
        self.update_status_link();
        let up = self.phy.link_up();
        if up != was_up || (renegotiated && up) {
            let now = self.now();
            self.irq.raise(ICR_LSC, now);
            if up {
                self.poll_backend();
            }
        }
    }

    /// When a timer next falls due (the service step has work): interrupt mitigation, a
    /// condition a lint watches, or the PHY finishing negotiation. In [`Clock`]
    /// nanoseconds.
    pub fn next_timer_deadline(&self) -> Option<u64> {
        let timers = [
            self.irq.next_deadline(),
            self.lint.deadline(),
            self.phy.next_deadline(),
        ];
        timers.into_iter().flatten().min()
    }

    /// Fire the timers that are due (part of [`service`](Self::service)).
    pub(crate) fn run_timers(&mut self) {
        let now = self.now();
        self.irq.run_timers(now);
        self.lint_tick(now);
        self.phy_catch_up();
    }

    /// Finish the PHY's negotiation if it is due.
    fn phy_catch_up(&mut self) {
        if self.phy.next_deadline().is_none() {
            return;
        }
        let now = self.now();
        let was_up = self.phy.link_up();
        if self.phy.run_timers(now) {
            self.link_changed(was_up, false);
        }
    }

    /// Device reset (CTRL.RST): registers, interrupts, statistics, TX/RX engines back to
    /// their power-on values. PCI configuration and the EEPROM are kept.
    pub fn reset(&mut self) {
        self.regs.fill(0);
        for r in register_table::REGISTERS.iter().filter(|r| r.reset != 0) {
            for e in 0..u32::from(r.count) {
                self.regs[idx(r.offset + e * u32::from(r.stride))] = r.reset;
            }
        }
        let mac = self.mac.octets();
        self.regs[idx(ral(0))] = u32::from_le_bytes([mac[0], mac[1], mac[2], mac[3]]);
        self.regs[idx(rah(0))] = u32::from(u16::from_le_bytes([mac[4], mac[5]])) | RAH_AV;
        if self.phy.held_in_reset() {
            // CTRL.PHY_RST is 0 again: the PHY comes out of reset and negotiates.
            let now = self.now();
            self.phy.hold_in_reset(false, now);
        }
        self.update_status_link();
        self.eeprom.reset_interface();
        self.stats.reset();
        self.irq.reset();
        self.tx.reset();
        self.lint.reset();
        let dropped = self.rx.reset();
        if dropped > 0 {
            self.metrics.rx_dropped += dropped;
            self.drops.rx_no_descriptors += dropped;
            self.backend.rx_outcome(RxOutcome::Dropped);
            log::info!("reset: dropped {dropped} frame(s) waiting for the receive ring");
        }
        self.io_addr = 0;
    }

    /// Power-on reset (vfio-user device reset): also resets PCI configuration space.
    pub fn power_on_reset(&mut self) {
        self.pci = PciConfig::new(self.model);
        self.phy.power_on();
        self.reset();
        self.irq.set_intx_disabled(false, self.now());
    }

    // ---------------------------------------------------------------- registers

    /// Read the 32-bit register at BAR0 offset `off`, with the read's side effects.
    /// Offsets without a register ([`register_table`]) read 0.
    pub fn read_reg(&mut self, off: u32) -> u32 {
        self.metrics.reg_reads += 1;
        let Some((r, _)) = register_table::lookup(off) else {
            if trace::regs_on() {
                self.trace_read(off, 0);
            }
            self.lint_no_register(off, false);
            return 0;
        };
        let off = off & !3;
        let v = match off {
            ICR => {
                self.lint.icr_accessed = true;
                let now = self.now();
                self.irq.read_icr(now)
            }
            // The pending causes, left pending (VxWorks reads them here).
            ICS => self.irq.peek_icr(),
            IMS => self.irq.mask(),
            ITR => self.irq.itr(),
            EECD => self.eeprom.read_eecd(),
            EERD => self.eeprom.read_eerd(),
            PBA => {
                let rxa = self.regs[idx(PBA)] & PBA_RXA_MASK;
                rxa | (PACKET_BUFFER_KB.saturating_sub(rxa) << 16)
            }
            STATS_START..STATS_END => self.stats.read(off),
            STATUS => {
                // A driver polling for link sees negotiation finish on time even when
                // no service step ran in between.
                self.phy_catch_up();
                self.regs[idx(STATUS)]
            }
            _ => match r.access {
                Access::WriteOnly => 0,
                _ => self.regs[idx(off)],
            },
        };
        if trace::regs_on() {
            self.trace_read(off, v);
        }
        v
    }

    /// Write the 32-bit register at BAR0 offset `off`, with the write's side effects.
    /// Only the register's writable bits are stored ([`register_table`]); offsets without
    /// a register ignore writes. Receive and transmit registers are the engines' (`rx.rs`,
    /// `tx.rs`).
    pub fn write_reg(&mut self, off: u32, val: u32) -> AccessEffect {
        self.metrics.reg_writes += 1;
        if trace::regs_on() {
            self.trace_write(off, val);
        }
        let Some((r, _)) = register_table::lookup(off) else {
            self.lint_no_register(off, true);
            return AccessEffect::NONE;
        };
        let off = off & !3;
        let stored = val & r.writable;
        let now = self.now();
        self.lint_write(off, val, now);
        if let Some(effect) = self.write_rx_reg(off, val, stored, now) {
            return effect;
        }
        if let Some(effect) = self.write_tx_reg(off, val, stored, now) {
            return effect;
        }
        match off {
            CTRL => {
                let was_up = self.phy.link_up();
                if val & CTRL_RST != 0 {
                    self.reset();
                    if val & CTRL_PHY_RST != 0 {
                        // Both at once (iPXE): the PHY is reset too, and released.
                        self.phy.hold_in_reset(true, now);
                        self.phy.hold_in_reset(false, now);
                        self.link_changed(was_up, true);
                    }
                    return AccessEffect::SERVICE;
                }
                self.regs[idx(CTRL)] = stored;
                let held = stored & CTRL_PHY_RST != 0;
                let renegotiated = !held && self.phy.held_in_reset();
                self.phy.hold_in_reset(held, now);
                self.link_changed(was_up, renegotiated);
                return AccessEffect::SERVICE;
            }
            EECD => {
                self.eeprom.write_eecd(val);
                if self.eeprom.take_changed() {
                    self.save_eeprom();
                }
            }
            EERD => self.eeprom.write_eerd(val),
            MDIC => {
                self.phy_catch_up();
                let was_up = self.phy.link_up();
                let out = self.phy.mdic_write(val, now);
                self.regs[idx(MDIC)] = out.mdic;
                if out.raise_mdac {
                    self.irq.raise(ICR_MDAC, now);
                }
                self.link_changed(was_up, out.renegotiating);
            }
            ICR => self.irq.write_icr(val, now),
            ICS => self.irq.write_ics(val, now),
            // Linux reads STATUS right after a mask change, to flush it.
            IMS => {
                self.irq.write_ims(val, now);
                return NEXT_ACCESS_SOON;
            }
            IMC => {
                self.irq.write_imc(val, now);
                return NEXT_ACCESS_SOON;
            }
            ITR => self.irq.write_itr(val, now),
            _ => match r.access {
                Access::ReadWrite => self.regs[idx(off)] = stored,
                Access::WriteOneToClear => self.regs[idx(off)] &= !stored,
                Access::ReadOnly
                | Access::WriteOnly
                | Access::ClearOnRead
                | Access::WriteOneToSet => {}
            },
        }
        AccessEffect::NONE
    }

    /// The guest programmed the EEPROM: hand the new image to the store, if any.
    fn save_eeprom(&mut self) {
        let Some(store) = &self.eeprom_store else {
            return;
        };
        if let Err(e) = store.save(self.eeprom.words()) {
            if let Some(n) = self.eeprom_log.note() {
                log::warn!("eeprom: saving the guest's change to {store:?} failed: {e} ({n} failures so far)");
            }
        }
    }

    /// The EEPROM's 64 words as the guest last programmed them.
    pub fn eeprom_words(&self) -> &[u16; EEPROM_WORDS] {
        self.eeprom.words()
    }

    /// Which controller this is.
    pub fn model(&self) -> Model {
        self.model
    }

    /// A register's stored value, without side effects (for the engines).
    fn reg(&self, off: u32) -> u32 {
        self.regs[idx(off)]
    }

    fn set_reg(&mut self, off: u32, val: u32) {
        self.regs[idx(off)] = val;
    }

    /// STATUS from the PHY and CTRL: LU is the PHY's link; speed and duplex are the
    /// PHY's (autonegotiated or forced in the PHY) unless CTRL.FRCSPD / CTRL.FRCDPX force
    /// the MAC's; ASDV is the speed the PHY runs at.
    fn update_status_link(&mut self) {
        let ctrl = self.reg(CTRL);
        let (speed, full) = self.phy.resolve().unwrap_or((phy::Speed::Mb1000, true));
        let speed = speed.code();
        let mut s = speed << STATUS_ASDV_SHIFT;
        s |= if ctrl & CTRL_FRCSPD != 0 {
            ((ctrl & CTRL_SPEED_MASK) >> CTRL_SPEED_SHIFT) << STATUS_SPEED_SHIFT
        } else {
            speed << STATUS_SPEED_SHIFT
        };
        let fd = if ctrl & CTRL_FRCDPX != 0 {
            ctrl & CTRL_FD != 0
        } else {
            full
        };
        if fd {
            s |= STATUS_FD;
        }
        if self.phy.link_up() {
            s |= STATUS_LU;
        }
        self.regs[idx(STATUS)] = s;
    }

    fn now(&self) -> u64 {
        self.clock.now_ns()
    }

    // ---------------------------------------------------------------- DMA

    /// Whether the device may DMA (PCI bus master enabled).
    fn dma_allowed(&self) -> bool {
        self.pci.bus_master()
    }

    fn dma_read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), DmaError> {
        let r = if self.dma_allowed() {
            self.mem.read(addr, buf)
        } else {
            Err(DmaError {
                addr,
                len: buf.len(),
            })
        };
        if let Err(e) = r {
            self.dma_error(e);
        }
        r
    }

    fn dma_write(&mut self, addr: u64, buf: &[u8]) -> Result<(), DmaError> {
        let r = if self.dma_allowed() {
            self.mem.write(addr, buf)
        } else {
            Err(DmaError {
                addr,
                len: buf.len(),
            })
        };
        if let Err(e) = r {
            self.dma_error(e);
        }
        r
    }

    fn dma_error(&mut self, e: DmaError) {
        self.metrics.dma_errors += 1;
        if self.dma_allowed() {
            self.lint_dma(&e);
        }
        // A hostile guest cannot flood the log, but nothing goes unseen.
        if let Some(n) = self.dma_log.note() {
            log::warn!(
                "{e} (bus master {}; {n} DMA errors so far)",
                self.dma_allowed()
            );
        }
    }
}

/// What a write the driver follows at once with another access asks of the frontend.
pub(crate) const NEXT_ACCESS_SOON: AccessEffect = AccessEffect {
    service_due: false,
    next_access_soon: true,
};

/// Index of a register in the register file.
fn idx(off: u32) -> usize {
    (off / 4) as usize
}
