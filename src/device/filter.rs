//! Receive address filtering: the 16 receive-address (RA) entries, the 4096-bit multicast
//! table (MTA), broadcast and promiscuous modes, and the VLAN filter table (VFTA).

use super::regs::*;
use super::E1000;

/// Shift applied to the last two destination octets for each RCTL.MO setting.
const MO_SHIFT: [u32; 4] = [4, 3, 2, 0];

/// The MTA bit index of a multicast destination address under RCTL.MO = `mo`.
pub fn mta_index(dest: &[u8; 6], mo: u32) -> u32 {
    let v = (u32::from(dest[5]) << 8) | u32::from(dest[4]);
    (v >> MO_SHIFT[(mo & 3) as usize]) & 0xFFF
}

impl E1000 {
    /// Whether the receive filters accept `frame` (at least 14 bytes).
    pub(crate) fn rx_filter_accepts(&self, frame: &[u8]) -> bool {
        let Some(dest) = frame.get(..6).and_then(|d| <[u8; 6]>::try_from(d).ok()) else {
            return false;
        };
        let rctl = self.reg(RCTL);
        if self.rx_vlan_rejects(frame) {
            return false;
        }
        if self.ra_matches(&dest) {
            return true;
        }
        if dest[0] & 1 == 0 {
            return rctl & RCTL_UPE != 0;
        }
        if dest == [0xFF; 6] && rctl & RCTL_BAM != 0 {
            return true;
        }
        if rctl & RCTL_MPE != 0 {
            return true;
        }
        let bit = mta_index(&dest, (rctl & RCTL_MO_MASK) >> RCTL_MO_SHIFT);
        self.reg(MTA + 4 * (bit >> 5)) & (1 << (bit & 31)) != 0
    }

    /// Whether the VLAN filter (RCTL.VFE, VFTA) rejects `frame`.
    pub(crate) fn rx_vlan_rejects(&self, frame: &[u8]) -> bool {
        if self.reg(RCTL) & RCTL_VFE == 0 || frame.len() < 16 {
            return false;
        }
        let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
        if u32::from(ethertype) != self.reg(VET) & 0xFFFF {
            return false;
        }
        let vid = u32::from(u16::from_be_bytes([frame[14], frame[15]]) & 0x0FFF);
        self.reg(VFTA + 4 * (vid >> 5)) & (1 << (vid & 31)) == 0
    }

    fn ra_matches(&self, dest: &[u8; 6]) -> bool {
        let lo = u32::from_le_bytes([dest[0], dest[1], dest[2], dest[3]]);
        let hi = u32::from(u16::from_le_bytes([dest[4], dest[5]]));
        (0..RA_ENTRIES).any(|n| {
            let rah = self.reg(rah(n));
            // AV set and address select 00 (destination address).
            rah & RAH_AV != 0
                && rah & (3 << 16) == 0
                && rah & 0xFFFF == hi
                && self.reg(ral(n)) == lo
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mta_index_per_mo() {
        let d = [0x01, 0x00, 0x5E, 0x00, 0x00, 0x01];
        assert_eq!(mta_index(&d, 0), 0x010);
        assert_eq!(mta_index(&d, 1), 0x020);
        assert_eq!(mta_index(&d, 2), 0x040);
        assert_eq!(mta_index(&d, 3), 0x100);
    }
}
