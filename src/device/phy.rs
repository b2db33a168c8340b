//! The Marvell M88E1011 copper PHY behind MDIC (PHY address 1), with link,
//! autonegotiation against an emulated partner, forced speed and duplex, power-down and
//! loopback.

use super::regs::*;

/// PHY address the 82540EM's PHY answers on.
pub const PHY_ADDRESS: u32 = 1;

/// PHY register numbers.
pub mod reg {
    /// Basic mode control.
    pub const BMCR: u32 = 0x00;
    /// Basic mode status.
    pub const BMSR: u32 = 0x01;
    /// PHY identifier, high.
    pub const PHYID1: u32 = 0x02;
    /// PHY identifier, low (revision in bits 3:0).
    pub const PHYID2: u32 = 0x03;
    /// Autonegotiation advertisement.
    pub const ANAR: u32 = 0x04;
    /// Link partner ability.
    pub const ANLPAR: u32 = 0x05;
    /// Autonegotiation expansion.
    pub const ANER: u32 = 0x06;
    /// Next page transmit.
    pub const NPTX: u32 = 0x07;
    /// Link partner next page.
    pub const LPRNP: u32 = 0x08;
    /// 1000BASE-T control.
    pub const GTCR: u32 = 0x09;
    /// 1000BASE-T status.
    pub const GTSR: u32 = 0x0A;
    /// Extended status.
    pub const EXTSR: u32 = 0x0F;
    /// PHY specific control.
    pub const PSCR: u32 = 0x10;
    /// PHY specific status.
    pub const PSSR: u32 = 0x11;
    /// Interrupt enable.
    pub const PIER: u32 = 0x12;
    /// Interrupt status.
    pub const PISR: u32 = 0x13;
    /// Extended PHY specific control.
    pub const EPSCR: u32 = 0x14;
    /// Receive error counter.
    pub const RXERR: u32 = 0x15;
    /// Extended address / page.
    pub const EXT_ADDR: u32 = 0x1D;
    /// Extended data.
    pub const EXT_DATA: u32 = 0x1E;
}

/// BMCR: software reset (self-clearing).
pub const BMCR_RESET: u16 = 1 << 15;
/// BMCR: loopback.
pub const BMCR_LOOPBACK: u16 = 1 << 14;
/// BMCR: speed selection, low bit (100 Mb/s with the high bit clear).
pub const BMCR_SPEED_LSB: u16 = 1 << 13;
/// BMCR: autonegotiation enable.
pub const BMCR_ANENABLE: u16 = 1 << 12;
/// BMCR: power down.
pub const BMCR_PDOWN: u16 = 1 << 11;
/// BMCR: restart autonegotiation (self-clearing).
pub const BMCR_ANRESTART: u16 = 1 << 9;
/// BMCR: full duplex (when autonegotiation is off).
pub const BMCR_FULLDPLX: u16 = 1 << 8;
/// BMCR: speed selection, high bit (1000 Mb/s).
pub const BMCR_SPEED_MSB: u16 = 1 << 6;
const BMSR_BASE: u16 = 0x7949; // 100/10 half/full, autoneg able, extended status, preamble suppression
const BMSR_LINK: u16 = 1 << 2;
const BMSR_ANEG_COMPLETE: u16 = 1 << 5;
const ANLPAR_ACK: u16 = 1 << 14;
/// What the emulated link partner advertises: 100/10 full and half duplex.
const PARTNER_ABILITIES: u16 = 0x01E0;
/// ANAR bits of the 10/100 modes, best first: 100 full, 100 half, 10 full, 10 half.
const ANAR_MODES: [(u16, Speed, bool); 4] = [
    (1 << 8, Speed::Mb100, true),
    (1 << 7, Speed::Mb100, false),
    (1 << 6, Speed::Mb10, true),
    (1 << 5, Speed::Mb10, false),
];
/// GTCR: advertise 1000BASE-T full (bit 9) and half (bit 8) duplex.
const GTCR_1000FD: u16 = 1 << 9;
const GTCR_1000HD: u16 = 1 << 8;
/// GTSR with the partner's 1000BASE-T full and half duplex and both receivers OK.
const GTSR_PARTNER_1000: u16 = 0x3C00;
/// M88E1011 PHY specific status register bits.
pub mod pssr {
    /// Speed, bits 15:14: 10 = 1000 Mb/s, 01 = 100 Mb/s, 00 = 10 Mb/s.
    pub const SPEED_SHIFT: u16 = 14;
    /// Full duplex.
    pub const DUPLEX: u16 = 1 << 13;
    /// Speed and duplex resolved.
    pub const RESOLVED: u16 = 1 << 11;
    /// Link up (real time).
    pub const LINK: u16 = 1 << 10;
    /// Cable length, bits 9:7 (0: under 50 m).
    pub const CABLE_LENGTH_SHIFT: u16 = 7;
    /// MDI crossover status: 1 = MDIX.
    pub const MDIX: u16 = 1 << 6;
}
/// PSCR bits 6:5, MDI crossover mode: 00 manual MDI, 01 manual MDIX, 1x automatic.
const PSCR_MDIX_MODE_SHIFT: u16 = 5;

/// PHY identifier that Linux requires (M88E1011, revision 0).
pub const M88E1011_ID: u32 = 0x0141_0C20;

/// Link speed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Speed {
    /// 10 Mb/s.
    Mb10,
    /// 100 Mb/s.
    Mb100,
    /// 1000 Mb/s.
    Mb1000,
}

impl Speed {
    /// The 2-bit code STATUS, CTRL and the PHY share: 00 10, 01 100, 10 1000 Mb/s.
    pub fn code(self) -> u32 {
        match self {
            Self::Mb10 => 0,
            Self::Mb100 => 1,
            Self::Mb1000 => 2,
        }
    }
}

/// The PHY's registers and link state.
///
/// The link is up when the cable is plugged in, the PHY is powered up and out of reset,
/// and negotiation (or, with autonegotiation off, link training at the forced speed)
/// has finished. Negotiating again (an autonegotiation restart, a PHY reset, power-up)
/// takes [`Phy::new`]'s `delay`: the link is down meanwhile, then comes back, and the MAC
/// raises LSC on each change. Speed and duplex are what autonegotiation resolves
/// against the emulated partner (10/100 full and half, 1000 full and half), or what
/// the PHY control register forces.
#[derive(Clone, Debug)]
pub struct Phy {
    regs: [u16; 32],
    /// The cable is plugged in.
    cable: bool,
    /// CTRL.PHY_RST holds the PHY in reset.
    held_in_reset: bool,
    /// Negotiation finishes at this time ([`Clock`](crate::Clock) nanoseconds).
    negotiating_until: Option<u64>,
    /// How long negotiation takes.
    delay_ns: u64,
}

/// Outcome of an MDIC write, for the caller to turn into interrupts and link changes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MdicOutcome {
    /// The new MDIC register value (data filled in for reads, READY/ERROR set).
    pub mdic: u32,
    /// The driver asked for an interrupt on completion (MDAC).
    pub raise_mdac: bool,
    /// Negotiation started again (autonegotiation restart, reset, power-up).
    pub renegotiating: bool,
}

impl Phy {
    /// A PHY after power-on, with the cable plugged in or not; negotiating takes `delay`.
    pub fn new(cable: bool, delay: std::time::Duration) -> Self {
        let mut p = Self {
            regs: [0; 32],
            cable,
            held_in_reset: false,
            negotiating_until: None,
            delay_ns: u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX),
        };
        p.reset();
        p
    }

    /// Hardware reset values of every register (power-on, CTRL.PHY_RST).
    pub fn reset(&mut self) {
        self.regs = [0; 32];
        self.regs[reg::BMCR as usize] = BMCR_ANENABLE | BMCR_FULLDPLX | BMCR_SPEED_MSB;
        self.regs[reg::PHYID1 as usize] = (M88E1011_ID >> 16) as u16;
        self.regs[reg::PHYID2 as usize] = M88E1011_ID as u16;
        self.regs[reg::ANAR as usize] = 0x0DE1;
        self.regs[reg::GTCR as usize] = 0x0E00; // 1000BASE-T full duplex, manual master
        self.regs[reg::EXTSR as usize] = 0x3000;
        self.regs[reg::PSCR as usize] = 0x0360;
        self.regs[reg::EPSCR as usize] = 0x0D60;
        self.update_link_bits();
    }

    /// Power-on: every register at its reset value, out of reset, link up at once if the
    /// cable is plugged in (the next client of nic-emu finds a fresh card).
    pub fn power_on(&mut self) {
        self.held_in_reset = false;
        self.negotiating_until = None;
        self.reset();
    }

    /// Whether the cable is plugged in (what [`set_link`](Self::set_link) last said).
    pub fn cable(&self) -> bool {
        self.cable
    }

    /// Whether CTRL.PHY_RST holds the PHY in reset.
    pub fn held_in_reset(&self) -> bool {
        self.held_in_reset
    }

    /// Whether the link is up.
    pub fn link_up(&self) -> bool {
        self.cable
            && !self.held_in_reset
            && self.negotiating_until.is_none()
            && self.regs[reg::BMCR as usize] & BMCR_PDOWN == 0
            && self.resolve().is_some()
    }

    /// Whether the PHY is in loopback (BMCR bit 14).
    pub fn loopback(&self) -> bool {
        self.regs[reg::BMCR as usize] & BMCR_LOOPBACK != 0
    }

    /// Speed and duplex (full: true) the link runs at, or would run at when up:
    /// autonegotiation's result against the partner, or the forced values. `None` when
    /// autonegotiation finds no mode both sides advertise.
    pub fn resolve(&self) -> Option<(Speed, bool)> {
        let bmcr = self.regs[reg::BMCR as usize];
        if bmcr & BMCR_ANENABLE == 0 {
            let speed = match (bmcr & BMCR_SPEED_MSB != 0, bmcr & BMCR_SPEED_LSB != 0) {
                (true, false) => Speed::Mb1000,
                (false, true) => Speed::Mb100,
                _ => Speed::Mb10,
            };
            return Some((speed, bmcr & BMCR_FULLDPLX != 0));
        }
        let gtcr = self.regs[reg::GTCR as usize];
        if gtcr & GTCR_1000FD != 0 {
            return Some((Speed::Mb1000, true));
        }
        if gtcr & GTCR_1000HD != 0 {
            return Some((Speed::Mb1000, false));
        }
        let common = self.regs[reg::ANAR as usize] & PARTNER_ABILITIES;
        ANAR_MODES
            .iter()
            .find(|(bit, ..)| common & bit != 0)
            .map(|&(_, speed, full)| (speed, full))
    }

    /// Drive the link from the host side (cable plugged or pulled): takes effect at once.
    pub fn set_link(&mut self, up: bool) {
        self.cable = up;
        self.update_link_bits();
    }

    /// Assert (`true`) or release CTRL.PHY_RST. Asserting resets every register and
    /// holds the link down; releasing starts negotiation.
    pub fn hold_in_reset(&mut self, held: bool, now: u64) {
        if held && !self.held_in_reset {
            self.reset();
        }
        if !held && self.held_in_reset {
            self.negotiate(now);
        }
        self.held_in_reset = held;
        self.update_link_bits();
    }

    /// Start negotiating again at `now` (link down until it finishes).
    pub fn negotiate(&mut self, now: u64) {
        self.negotiating_until = (self.delay_ns > 0).then(|| now.saturating_add(self.delay_ns));
        self.update_link_bits();
    }

    /// When negotiation finishes, if it is under way.
    pub fn next_deadline(&self) -> Option<u64> {
        self.negotiating_until
    }

    /// Finish negotiation if it is due by `now`; returns whether it finished.
    pub fn run_timers(&mut self, now: u64) -> bool {
        if self.negotiating_until.is_some_and(|t| t <= now) {
            self.negotiating_until = None;
            self.update_link_bits();
            return true;
        }
        false
    }

    fn update_link_bits(&mut self) {
        let up = self.link_up();
        let bmcr = self.regs[reg::BMCR as usize];
        let autoneg = bmcr & BMCR_ANENABLE != 0;
        let negotiated = up && autoneg;
        let mut bmsr = BMSR_BASE;
        if up {
            bmsr |= BMSR_LINK;
        }
        if negotiated {
            bmsr |= BMSR_ANEG_COMPLETE;
        }
        self.regs[reg::BMSR as usize] = bmsr;
        self.regs[reg::ANLPAR as usize] = if negotiated {
            PARTNER_ABILITIES | ANLPAR_ACK
        } else {
            0
        };
        self.regs[reg::ANER as usize] = u16::from(negotiated);
        self.regs[reg::GTSR as usize] = if negotiated { GTSR_PARTNER_1000 } else { 0 };
        self.regs[reg::PSSR as usize] = match self.resolve() {
            Some((speed, full)) if up => {
                let mut v =
                    ((speed.code() as u16) << pssr::SPEED_SHIFT) | pssr::RESOLVED | pssr::LINK;
                if full {
                    v |= pssr::DUPLEX;
                }
                // Manual MDIX, or automatic crossover (resolved to MDIX); the cable is
                // short (cable length 0: under 50 m).
                if (self.regs[reg::PSCR as usize] >> PSCR_MDIX_MODE_SHIFT) & 3 != 0 {
                    v |= pssr::MDIX;
                }
                v
            }
            _ => 0,
        };
    }

    /// Read PHY register `r` (0 for registers the model does not implement).
    pub fn read(&self, r: u32) -> u16 {
        self.regs.get(r as usize).copied().unwrap_or(0)
    }

    /// Write PHY register `r` at `now`, with the self-clearing and read-only bits of the
    /// part. Returns whether negotiation started again.
    pub fn write(&mut self, r: u32, val: u16, now: u64) -> bool {
        match r {
            reg::BMCR => {
                let old = self.regs[reg::BMCR as usize];
                let new = val & !(BMCR_RESET | BMCR_ANRESTART);
                if val & BMCR_RESET != 0 {
                    // A software reset keeps the registers drivers set before it and
                    // applies the new control settings (speed, duplex, autonegotiation):
                    // Linux forces speed this way.
                    let keep = [reg::ANAR, reg::GTCR, reg::PSCR, reg::EPSCR]
                        .map(|r| self.regs[r as usize]);
                    self.reset();
                    for (r, v) in [reg::ANAR, reg::GTCR, reg::PSCR, reg::EPSCR]
                        .into_iter()
                        .zip(keep)
                    {
                        self.regs[r as usize] = v;
                    }
                    self.regs[reg::BMCR as usize] = new;
                    self.negotiate(now);
                    return true;
                }
                self.regs[reg::BMCR as usize] = new;
                let restart = val & BMCR_ANRESTART != 0 && new & BMCR_ANENABLE != 0;
                let powered_up = old & BMCR_PDOWN != 0 && new & BMCR_PDOWN == 0;
                let autoneg_toggled = (old ^ new) & BMCR_ANENABLE != 0;
                if restart || powered_up || autoneg_toggled {
                    self.negotiate(now);
                    return true;
                }
                self.update_link_bits();
                false
            }
            // Read-only status and identity.
            reg::BMSR
            | reg::PHYID1
            | reg::PHYID2
            | reg::ANLPAR
            | reg::ANER
            | reg::GTSR
            | reg::EXTSR
            | reg::PSSR
            | reg::PISR
            | reg::RXERR => false,
            r if (r as usize) < self.regs.len() => {
                self.regs[r as usize] = val;
                // Advertisement or crossover mode: what PSSR shows may change.
                self.update_link_bits();
                false
            }
            _ => false,
        }
    }

    /// Carry out an MDIC write from the driver at `now`.
    pub fn mdic_write(&mut self, val: u32, now: u64) -> MdicOutcome {
        let data = val & MDIC_DATA_MASK;
        let r = (val >> MDIC_REG_SHIFT) & 0x1F;
        let phy = (val >> MDIC_PHY_SHIFT) & 0x1F;
        let op = val & (3 << 26);
        let mut out = MdicOutcome {
            mdic: val & !(MDIC_READY | MDIC_ERROR),
            raise_mdac: val & MDIC_INT_EN != 0,
            renegotiating: false,
        };
        if phy != PHY_ADDRESS {
            out.mdic |= MDIC_READY | MDIC_ERROR;
            return out;
        }
        match op {
            MDIC_OP_READ => {
                out.mdic = (out.mdic & !MDIC_DATA_MASK) | u32::from(self.read(r)) | MDIC_READY;
            }
            MDIC_OP_WRITE => {
                out.renegotiating = self.write(r, data as u16, now);
                out.mdic |= MDIC_READY;
            }
            _ => out.mdic |= MDIC_READY | MDIC_ERROR,
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const MS: u64 = 1_000_000;

    fn mdic_read(p: &mut Phy, r: u32) -> u16 {
        let o = p.mdic_write(
            MDIC_OP_READ | (PHY_ADDRESS << MDIC_PHY_SHIFT) | (r << MDIC_REG_SHIFT),
            0,
        );
        assert_ne!(o.mdic & MDIC_READY, 0);
        assert_eq!(o.mdic & MDIC_ERROR, 0);
        o.mdic as u16
    }

    fn mdic_write(p: &mut Phy, r: u32, v: u16, now: u64) -> bool {
        let o = p.mdic_write(
            MDIC_OP_WRITE | (PHY_ADDRESS << MDIC_PHY_SHIFT) | (r << MDIC_REG_SHIFT) | u32::from(v),
            now,
        );
        o.renegotiating
    }

    #[test]
    fn id_and_link() {
        let mut p = Phy::new(true, Duration::ZERO);
        let id = (u32::from(mdic_read(&mut p, reg::PHYID1)) << 16)
            | u32::from(mdic_read(&mut p, reg::PHYID2));
        assert_eq!(id & !0xF, M88E1011_ID);
        assert_eq!(mdic_read(&mut p, reg::BMSR), 0x796D);
        p.set_link(false);
        assert_eq!(mdic_read(&mut p, reg::BMSR) & BMSR_LINK, 0);
        assert_eq!(mdic_read(&mut p, reg::PSSR), 0);
    }

    #[test]
    fn wrong_phy_address_is_an_error_and_reset_self_clears() {
        let mut p = Phy::new(true, Duration::ZERO);
        let o = p.mdic_write(MDIC_OP_READ | (2 << MDIC_PHY_SHIFT), 0);
        assert_ne!(o.mdic & MDIC_ERROR, 0);
        assert!(mdic_write(&mut p, reg::BMCR, 0x9140, 0));
        assert_eq!(mdic_read(&mut p, reg::BMCR), 0x1140);
        assert!(p.link_up(), "no delay: negotiated at once");
    }

    #[test]
    fn pssr_has_the_m88e1011_bits_at_1000_full() {
        let mut p = Phy::new(true, Duration::ZERO);
        // 1000 Mb/s (10), full duplex, resolved, link, MDIX (automatic crossover),
        // cable length 0 (bit 8 clear: under 50 m).
        assert_eq!(mdic_read(&mut p, reg::PSSR), 0xAC40);
        // Manual MDI (what Linux's loopback test sets): the MDIX bit clears.
        mdic_write(&mut p, reg::PSCR, 0x0808, 0);
        assert_eq!(mdic_read(&mut p, reg::PSSR), 0xAC00);
    }

    #[test]
    fn an_autonegotiation_restart_takes_the_link_down_for_the_delay() {
        let mut p = Phy::new(true, Duration::from_millis(500));
        assert!(p.link_up());
        assert!(mdic_write(&mut p, reg::BMCR, 0x1340, 1000 * MS));
        assert!(!p.link_up());
        assert_eq!(
            mdic_read(&mut p, reg::BMSR) & (BMSR_LINK | BMSR_ANEG_COMPLETE),
            0
        );
        assert_eq!(mdic_read(&mut p, reg::BMCR), 0x1140, "restart self-clears");
        assert_eq!(p.next_deadline(), Some(1500 * MS));
        assert!(!p.run_timers(1499 * MS));
        assert!(!p.link_up());
        assert!(p.run_timers(1500 * MS));
        assert!(p.link_up());
        assert_eq!(mdic_read(&mut p, reg::BMSR), 0x796D);
        assert_eq!(p.next_deadline(), None);
    }

    #[test]
    fn forced_speed_and_duplex_as_linux_forces_them() {
        let mut p = Phy::new(true, Duration::from_millis(500));
        // e1000_phy_force_speed_duplex for 100 full: autonegotiation off, 100, full,
        // with a reset so the M88 takes it.
        let forced = BMCR_RESET | BMCR_SPEED_LSB | BMCR_FULLDPLX;
        assert!(mdic_write(&mut p, reg::BMCR, forced, 0));
        assert!(!p.link_up());
        p.run_timers(500 * MS);
        assert!(p.link_up());
        assert_eq!(p.resolve(), Some((Speed::Mb100, true)));
        let pssr = mdic_read(&mut p, reg::PSSR);
        assert_eq!(pssr >> pssr::SPEED_SHIFT, 0b01, "100 Mb/s");
        assert_ne!(pssr & pssr::DUPLEX, 0);
        assert_ne!(pssr & (pssr::RESOLVED | pssr::LINK), 0);
        let bmsr = mdic_read(&mut p, reg::BMSR);
        assert_eq!(
            bmsr & (BMSR_LINK | BMSR_ANEG_COMPLETE),
            BMSR_LINK,
            "no autonegotiation"
        );
        assert_eq!(mdic_read(&mut p, reg::ANLPAR), 0);
        // 10 half.
        mdic_write(&mut p, reg::BMCR, BMCR_RESET, 0);
        p.run_timers(500 * MS);
        assert_eq!(p.resolve(), Some((Speed::Mb10, false)));
        assert_eq!(mdic_read(&mut p, reg::PSSR) & pssr::DUPLEX, 0);
    }

    #[test]
    fn autonegotiation_resolves_against_what_is_advertised() {
        let mut p = Phy::new(true, Duration::ZERO);
        assert_eq!(p.resolve(), Some((Speed::Mb1000, true)));
        // ethtool -s eth0 advertise 0x008: 100 half only.
        mdic_write(&mut p, reg::GTCR, 0, 0);
        mdic_write(&mut p, reg::ANAR, 0x0081, 0);
        mdic_write(&mut p, reg::BMCR, 0x1340, 0);
        assert_eq!(p.resolve(), Some((Speed::Mb100, false)));
        assert_eq!(mdic_read(&mut p, reg::PSSR) >> pssr::SPEED_SHIFT, 0b01);
        // Nothing in common: no link.
        mdic_write(&mut p, reg::ANAR, 0x0001, 0);
        mdic_write(&mut p, reg::BMCR, 0x1340, 0);
        assert!(!p.link_up());
    }

    #[test]
    fn power_down_drops_the_link_and_power_up_negotiates() {
        let mut p = Phy::new(true, Duration::from_millis(500));
        assert!(!mdic_write(&mut p, reg::BMCR, 0x1140 | BMCR_PDOWN, 0));
        assert!(!p.link_up());
        assert_eq!(p.next_deadline(), None, "down until powered up");
        assert!(mdic_write(&mut p, reg::BMCR, 0x1140, 10 * MS));
        assert!(!p.link_up());
        p.run_timers(510 * MS);
        assert!(p.link_up());
    }

    #[test]
    fn ctrl_phy_rst_resets_holds_and_releases() {
        let mut p = Phy::new(true, Duration::from_millis(500));
        mdic_write(&mut p, reg::ANAR, 0x0081, 0);
        p.hold_in_reset(true, 0);
        assert!(!p.link_up());
        assert_eq!(
            mdic_read(&mut p, reg::ANAR),
            0x0DE1,
            "registers back to defaults"
        );
        p.hold_in_reset(false, 10 * MS);
        assert!(!p.link_up());
        p.run_timers(510 * MS);
        assert!(p.link_up());
    }
}
