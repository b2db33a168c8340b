//! The Marvell M88E1011 copper PHY behind MDIC (PHY address 1), with link and
//! autonegotiation. Autonegotiation against the emulated partner completes at once.

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

const BMCR_RESET: u16 = 1 << 15;
const BMCR_LOOPBACK: u16 = 1 << 14;
const BMCR_ANRESTART: u16 = 1 << 9;
const BMSR_LINK: u16 = 1 << 2;
const BMSR_ANEG_COMPLETE: u16 = 1 << 5;
const PSSR_LINK: u16 = 1 << 10;
const PSSR_RESOLVED: u16 = 1 << 11;
const ANLPAR_ACK: u16 = 1 << 14;

/// PHY identifier that Linux requires (M88E1011, revision 0).
pub const M88E1011_ID: u32 = 0x0141_0C20;

/// The PHY's registers and link state.
#[derive(Clone, Debug)]
pub struct Phy {
    regs: [u16; 32],
    link_up: bool,
}

/// Outcome of an MDIC write, for the caller to turn into interrupts and link changes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MdicOutcome {
    /// The new MDIC register value (data filled in for reads, READY/ERROR set).
    pub mdic: u32,
    /// The driver asked for an interrupt on completion (MDAC).
    pub raise_mdac: bool,
    /// Autonegotiation restarted (and, against our partner, completed at once).
    pub autoneg_restarted: bool,
}

impl Phy {
    /// A PHY after power-on, with the given link state.
    pub fn new(link_up: bool) -> Self {
        let mut p = Self {
            regs: [0; 32],
            link_up,
        };
        p.reset();
        p
    }

    /// Power-on / BMCR reset values.
    pub fn reset(&mut self) {
        self.regs = [0; 32];
        self.regs[reg::BMCR as usize] = 0x1140;
        self.regs[reg::PHYID1 as usize] = (M88E1011_ID >> 16) as u16;
        self.regs[reg::PHYID2 as usize] = M88E1011_ID as u16;
        self.regs[reg::ANAR as usize] = 0x0DE1;
        self.regs[reg::GTCR as usize] = 0x0E00;
        self.regs[reg::EXTSR as usize] = 0x3000;
        self.regs[reg::PSCR as usize] = 0x0360;
        self.regs[reg::EPSCR as usize] = 0x0D60;
        self.update_link_bits();
    }

    /// Whether the link is up.
    pub fn link_up(&self) -> bool {
        self.link_up
    }

    /// Whether the PHY is in loopback (BMCR bit 14).
    pub fn loopback(&self) -> bool {
        self.regs[reg::BMCR as usize] & BMCR_LOOPBACK != 0
    }

    /// Drive the link from the host side (cable plugged or pulled).
    pub fn set_link(&mut self, up: bool) {
        self.link_up = up;
        self.update_link_bits();
    }

    fn update_link_bits(&mut self) {
        let up = self.link_up;
        let set = |v: u16, bits: u16, on: bool| if on { v | bits } else { v & !bits };
        let bmsr = 0x794D; // 100/10 half/full, autoneg able, extended status, preamble suppression
        self.regs[reg::BMSR as usize] = set(bmsr, BMSR_LINK | BMSR_ANEG_COMPLETE, up);
        self.regs[reg::ANLPAR as usize] = if up { 0x01E0 | ANLPAR_ACK } else { 0 };
        self.regs[reg::ANER as usize] = if up { 0x0001 } else { 0 };
        self.regs[reg::GTSR as usize] = if up { 0x3C00 } else { 0 };
        // PSSR: 1000 Mb/s, full duplex, resolved, link.
        self.regs[reg::PSSR as usize] = if up {
            0x8000 | 0x2000 | PSSR_RESOLVED | PSSR_LINK | 0x0100 /* MDI crossover status */
        } else {
            0
        };
    }

    /// Read PHY register `r` (0 for registers the model does not implement).
    pub fn read(&self, r: u32) -> u16 {
        self.regs.get(r as usize).copied().unwrap_or(0)
    }

    /// Write PHY register `r`, with the self-clearing and read-only bits of the part.
    /// Returns whether autonegotiation restarted.
    pub fn write(&mut self, r: u32, val: u16) -> bool {
        match r {
            reg::BMCR => {
                if val & BMCR_RESET != 0 {
                    // A PHY reset keeps the advertisement registers drivers just wrote.
                    let keep = (
                        self.regs[reg::ANAR as usize],
                        self.regs[reg::GTCR as usize],
                        self.regs[reg::PSCR as usize],
                        self.regs[reg::EPSCR as usize],
                    );
                    self.reset();
                    self.regs[reg::ANAR as usize] = keep.0;
                    self.regs[reg::GTCR as usize] = keep.1;
                    self.regs[reg::PSCR as usize] = keep.2;
                    self.regs[reg::EPSCR as usize] = keep.3;
                    self.regs[reg::BMCR as usize] = (val & !BMCR_RESET & !BMCR_ANRESTART) | 0x1000;
                    return true;
                }
                self.regs[reg::BMCR as usize] = val & !BMCR_ANRESTART;
                self.update_link_bits();
                val & BMCR_ANRESTART != 0
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
                false
            }
            _ => false,
        }
    }

    /// Carry out an MDIC write from the driver.
    pub fn mdic_write(&mut self, val: u32) -> MdicOutcome {
        let data = val & MDIC_DATA_MASK;
        let r = (val >> MDIC_REG_SHIFT) & 0x1F;
        let phy = (val >> MDIC_PHY_SHIFT) & 0x1F;
        let op = val & (3 << 26);
        let mut out = MdicOutcome {
            mdic: val & !(MDIC_READY | MDIC_ERROR),
            raise_mdac: val & MDIC_INT_EN != 0,
            autoneg_restarted: false,
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
                out.autoneg_restarted = self.write(r, data as u16);
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

    fn mdic_read(p: &mut Phy, r: u32) -> u16 {
        let o =
            p.mdic_write(MDIC_OP_READ | (PHY_ADDRESS << MDIC_PHY_SHIFT) | (r << MDIC_REG_SHIFT));
        assert_ne!(o.mdic & MDIC_READY, 0);
        assert_eq!(o.mdic & MDIC_ERROR, 0);
        o.mdic as u16
    }

    #[test]
    fn id_and_link() {
        let mut p = Phy::new(true);
        let id = (u32::from(mdic_read(&mut p, reg::PHYID1)) << 16)
            | u32::from(mdic_read(&mut p, reg::PHYID2));
        assert_eq!(id & !0xF, M88E1011_ID);
        assert_eq!(mdic_read(&mut p, reg::BMSR), 0x796D);
        p.set_link(false);
        assert_eq!(mdic_read(&mut p, reg::BMSR) & BMSR_LINK, 0);
    }

    #[test]
    fn wrong_phy_address_is_an_error_and_reset_self_clears() {
        let mut p = Phy::new(true);
        let o = p.mdic_write(MDIC_OP_READ | (2 << MDIC_PHY_SHIFT));
        assert_ne!(o.mdic & MDIC_ERROR, 0);
        let o = p.mdic_write(MDIC_OP_WRITE | (1 << MDIC_PHY_SHIFT) | 0x8000 | 0x1000);
        assert!(o.autoneg_restarted);
        assert_eq!(mdic_read(&mut p, reg::BMCR) & BMCR_RESET, 0);
    }
}
