//! Interrupt causes (ICR), the mask (IMS), the INTx line, and mitigation: the ITR
//! throttle and the RDTR/RADV and TIDV/TADV delay timers.
//!
//! The line is `(ICR & IMS) != 0`, re-evaluated on every change of either register, so a
//! write to IMS that unmasks a cause already pending raises the interrupt at once. Causes
//! latch in ICR while masked. With ITR set, a rising edge of the line is held back until
//! `ITR * 256 ns` after the previous one.

use super::regs::*;
use crate::irq::IrqLine;

/// Units of the delay timers RDTR, RADV, TIDV, TADV: 1.024 us.
pub const DELAY_UNIT_NS: u64 = 1024;
/// Units of ITR: 256 ns.
pub const ITR_UNIT_NS: u64 = 256;

/// A pair of delay timers (packet timer restarted per event, absolute timer started by
/// the first event), as RDTR/RADV and TIDV/TADV work.
#[derive(Clone, Copy, Debug, Default)]
struct DelayPair {
    packet: Option<u64>,
    absolute: Option<u64>,
}

impl DelayPair {
    fn deadline(&self) -> Option<u64> {
        match (self.packet, self.absolute) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
    /// Schedule for an event at `now`; returns true if the cause should fire now.
    fn schedule(&mut self, now: u64, delay: u32, abs: u32) -> bool {
        let delay = u64::from(delay & 0xFFFF);
        if delay == 0 {
            *self = Self::default();
            return true;
        }
        self.packet = Some(now.saturating_add(delay * DELAY_UNIT_NS));
        let abs = u64::from(abs & 0xFFFF);
        if abs != 0 && self.absolute.is_none() {
            self.absolute = Some(now.saturating_add(abs * DELAY_UNIT_NS));
        }
        false
    }
    /// True (and disarmed) if either timer expired by `now`.
    fn expire(&mut self, now: u64) -> bool {
        if self.deadline().is_some_and(|d| d <= now) {
            *self = Self::default();
            true
        } else {
            false
        }
    }
}

/// Interrupt state of the device.
pub struct Interrupts {
    icr: u32,
    ims: u32,
    itr: u32,
    line: Box<dyn IrqLine>,
    /// The device asserts its interrupt: causes pending and unmasked, past the ITR
    /// throttle. The line follows it unless INTx is disabled.
    asserted: bool,
    level: bool,
    /// INTx disabled in the PCI command register.
    intx_disabled: bool,
    last_assert: Option<u64>,
    throttle_deadline: Option<u64>,
    rx_delay: DelayPair,
    tx_delay: DelayPair,
    /// Rising edges of the line since creation (a metric).
    pub asserts: u64,
    /// See [`Interrupts::packet_interrupts_used`].
    packet_irqs_used: bool,
}

/// Causes that report packets moving (not link changes or errors).
const PACKET_CAUSES: u32 = ICR_TXDW | ICR_TXQE | ICR_TXD_LOW | ICR_RXT0 | ICR_RXDMT0 | ICR_RXO;

impl std::fmt::Debug for Interrupts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interrupts")
            .field("icr", &format_args!("{:#x}", self.icr))
            .field("ims", &format_args!("{:#x}", self.ims))
            .field("itr", &self.itr)
            .field("level", &self.level)
            .finish()
    }
}

impl Interrupts {
    /// No causes, everything masked, line low.
    pub fn new(line: Box<dyn IrqLine>) -> Self {
        Self {
            icr: 0,
            ims: 0,
            itr: 0,
            line,
            asserted: false,
            level: false,
            intx_disabled: false,
            last_assert: None,
            throttle_deadline: None,
            rx_delay: DelayPair::default(),
            tx_delay: DelayPair::default(),
            asserts: 0,
            packet_irqs_used: false,
        }
    }

    /// Device reset: causes and mask cleared, timers stopped, line dropped.
    pub fn reset(&mut self) {
        self.icr = 0;
        self.ims = 0;
        self.itr = 0;
        self.last_assert = None;
        self.throttle_deadline = None;
        self.rx_delay = DelayPair::default();
        self.tx_delay = DelayPair::default();
        self.asserted = false;
        self.packet_irqs_used = false;
        self.drive(false);
    }

    /// Whether the driver has unmasked a transmit or receive interrupt since the last
    /// reset: it is interrupt-driven (Linux's e1000), not a polling driver (DPDK's em
    /// PMD, which unmasks link changes at most), so a transmit doorbell is soon followed
    /// by an interrupt and its handler's accesses.
    pub fn packet_interrupts_used(&self) -> bool {
        self.packet_irqs_used
    }

    /// Whether the device asserts its interrupt, whether or not the PCI command
    /// register's INTx-disable bit lets it reach the line (the PCI status register's
    /// interrupt bit).
    pub fn asserted(&self) -> bool {
        self.asserted
    }

    /// Current level of the INTx line.
    pub fn level(&self) -> bool {
        self.level
    }

    /// Pending causes (ICR without side effects).
    pub fn pending(&self) -> u32 {
        self.icr
    }

    /// Mask (IMS).
    pub fn mask(&self) -> u32 {
        self.ims
    }

    /// ITR as last written.
    pub fn itr(&self) -> u32 {
        self.itr
    }

    fn drive(&mut self, level: bool) {
        if level != self.level {
            self.level = level;
            if level {
                self.asserts += 1;
            }
            self.line.set_level(level);
        }
    }

    /// Recompute the device's interrupt and the line after ICR, IMS, ITR or INTx-disable
    /// changed.
    fn update(&mut self, now: u64) {
        if self.icr & self.ims == 0 {
            self.throttle_deadline = None;
            self.asserted = false;
            self.drive(false);
            return;
        }
        if !self.asserted {
            let interval = u64::from(self.itr & 0xFFFF) * ITR_UNIT_NS;
            if interval != 0 {
                if let Some(last) = self.last_assert {
                    let allowed = last.saturating_add(interval);
                    if now < allowed {
                        self.throttle_deadline = Some(allowed);
                        return;
                    }
                }
            }
            self.throttle_deadline = None;
            self.last_assert = Some(now);
            self.asserted = true;
        }
        // INTx-disable holds the line low; the assertion stays (PCI status bit).
        self.drive(!self.intx_disabled);
    }

    /// Latch `causes` into ICR.
    pub fn raise(&mut self, causes: u32, now: u64) {
        self.icr |= causes & ICR_VALID;
        self.update(now);
    }

    /// A read of ICR: returns the causes (with INT_ASSERTED when any is pending) and
    /// clears them.
    pub fn read_icr(&mut self, now: u64) -> u32 {
        let v = self.peek_icr();
        self.icr = 0;
        self.update(now);
        v
    }

    /// What a read of ICR would return, without clearing anything (a read of ICS).
    pub fn peek_icr(&self) -> u32 {
        if self.icr != 0 {
            self.icr | ICR_INT_ASSERTED
        } else {
            0
        }
    }

    /// A write of ICR clears the bits written.
    pub fn write_icr(&mut self, val: u32, now: u64) {
        self.icr &= !val;
        self.update(now);
    }

    /// A write of ICS sets the bits written.
    pub fn write_ics(&mut self, val: u32, now: u64) {
        self.raise(val, now);
    }

    /// A write of IMS unmasks the bits written.
    pub fn write_ims(&mut self, val: u32, now: u64) {
        self.ims |= val & ICR_VALID;
        self.packet_irqs_used |= val & PACKET_CAUSES != 0;
        self.update(now);
    }

    /// A write of IMC masks the bits written.
    pub fn write_imc(&mut self, val: u32, now: u64) {
        self.ims &= !val;
        self.update(now);
    }

    /// A write of ITR.
    pub fn write_itr(&mut self, val: u32, now: u64) {
        self.itr = val & 0xFFFF;
        self.update(now);
    }

    /// INTx disable bit of the PCI command register changed.
    pub fn set_intx_disabled(&mut self, disabled: bool, now: u64) {
        self.intx_disabled = disabled;
        self.update(now);
    }

    /// A received frame was written back: RXT0 now, or after RDTR/RADV.
    pub fn rx_done(&mut self, now: u64, rdtr: u32, radv: u32) {
        if self.rx_delay.schedule(now, rdtr, radv) {
            self.raise(ICR_RXT0, now);
        }
    }

    /// A transmit descriptor with RS was written back: TXDW now, or (descriptor had IDE)
    /// after TIDV/TADV.
    pub fn tx_done(&mut self, now: u64, ide: bool, tidv: u32, tadv: u32) {
        if !ide || self.tx_delay.schedule(now, tidv, tadv) {
            self.tx_delay = DelayPair::default();
            self.raise(ICR_TXDW, now);
        }
    }

    /// RDTR written with FPD: fire the receive timer now if it is running.
    pub fn flush_rx_timer(&mut self, now: u64) {
        if self.rx_delay.deadline().is_some() {
            self.rx_delay = DelayPair::default();
            self.raise(ICR_RXT0, now);
        }
    }

    /// TIDV written with FPD: fire the transmit timer now if it is running.
    pub fn flush_tx_timer(&mut self, now: u64) {
        if self.tx_delay.deadline().is_some() {
            self.tx_delay = DelayPair::default();
            self.raise(ICR_TXDW, now);
        }
    }

    /// The earliest time at which [`run_timers`](Self::run_timers) has work.
    pub fn next_deadline(&self) -> Option<u64> {
        [
            self.throttle_deadline,
            self.rx_delay.deadline(),
            self.tx_delay.deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Fire whatever timers expired by `now`.
    pub fn run_timers(&mut self, now: u64) {
        let mut causes = 0;
        if self.rx_delay.expire(now) {
            causes |= ICR_RXT0;
        }
        if self.tx_delay.expire(now) {
            causes |= ICR_TXDW;
        }
        self.icr |= causes;
        if self.throttle_deadline.is_some_and(|d| d <= now) {
            self.throttle_deadline = None;
        }
        self.update(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::irq::SharedIrqLine;

    fn new() -> (Interrupts, SharedIrqLine) {
        let line = SharedIrqLine::new();
        (Interrupts::new(Box::new(line.clone())), line)
    }

    #[test]
    fn masked_causes_latch_and_unmask_raises_at_once() {
        let (mut i, line) = new();
        i.raise(ICR_RXT0, 0);
        assert!(!line.level());
        i.write_ims(ICR_RXT0, 1);
        assert!(line.level());
        assert_eq!(i.read_icr(2), ICR_RXT0 | ICR_INT_ASSERTED);
        assert!(!line.level());
        assert_eq!(i.read_icr(3), 0);
    }

    #[test]
    fn itr_holds_back_the_next_edge() {
        let (mut i, line) = new();
        i.write_ims(ICR_RXT0, 0);
        i.write_itr(100, 0); // 25.6 us
        i.raise(ICR_RXT0, 0);
        assert_eq!(line.rising_edges(), 1);
        i.read_icr(1000);
        i.raise(ICR_RXT0, 2000);
        assert!(!line.level());
        assert_eq!(i.next_deadline(), Some(25_600));
        i.run_timers(25_599);
        assert!(!line.level());
        i.run_timers(25_600);
        assert!(line.level());
        assert_eq!(line.rising_edges(), 2);
    }

    #[test]
    fn rdtr_and_radv() {
        let (mut i, _line) = new();
        i.rx_done(0, 0, 8);
        assert_eq!(i.pending(), ICR_RXT0);
        i.read_icr(0);
        i.rx_done(0, 10, 20); // packet timer 10.24 us, absolute 20.48 us
        i.rx_done(8_000, 10, 20); // restarts the packet timer, not the absolute one
        assert_eq!(i.next_deadline(), Some(18_240));
        i.rx_done(16_000, 10, 20);
        assert_eq!(i.next_deadline(), Some(20_480));
        i.run_timers(20_480);
        assert_eq!(i.pending(), ICR_RXT0);
        assert_eq!(i.next_deadline(), None);
    }
}
