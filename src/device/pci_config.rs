//! PCI configuration space of the 82540EM: identity, BARs with writable-bit masks (so
//! sizing by writing all-ones and reading back works with no special case), the command
//! register (memory, I/O, bus master) and a power-management capability.

use super::regs::{BAR0_SIZE, BAR1_SIZE};

/// Size of the configuration space the device implements (conventional PCI).
pub const CONFIG_SIZE: usize = 256;

use super::model::{Model, VENDOR_ID};

const CLASS_ETHERNET: [u8; 3] = [0x00, 0x00, 0x02]; // prog-if, subclass, class

/// Offsets of the configuration registers this model gives meaning to.
pub mod offsets {
    /// Command register (16 bits).
    pub const COMMAND: usize = 0x04;
    /// Status register (16 bits).
    pub const STATUS: usize = 0x06;
    /// BAR0: 128 KiB memory.
    pub const BAR0: usize = 0x10;
    /// BAR1: 64-byte I/O window.
    pub const BAR1: usize = 0x14;
    /// Capabilities pointer.
    pub const CAP_PTR: usize = 0x34;
    /// Interrupt line (written by firmware).
    pub const INTERRUPT_LINE: usize = 0x3C;
    /// Power-management capability.
    pub const PM_CAP: usize = 0xDC;
}

/// Command register: I/O space enable.
pub const COMMAND_IO: u16 = 1 << 0;
/// Command register: memory space enable.
pub const COMMAND_MEMORY: u16 = 1 << 1;
/// Command register: bus master enable (no DMA without it).
pub const COMMAND_BUS_MASTER: u16 = 1 << 2;
/// Command register: INTx disable.
pub const COMMAND_INTX_DISABLE: u16 = 1 << 10;
/// Status register: interrupt status (INTx asserted).
pub const STATUS_INTERRUPT: u16 = 1 << 3;
/// Status register: capabilities list present.
pub const STATUS_CAP_LIST: u16 = 1 << 4;

/// PMC of the power-management capability: version 2 (bits 2:0) and device-specific
/// initialisation (bit 5), with PME_Support (15:11) all 0.
///
/// An 82540EM whose EEPROM enables APM reports PME from D0, D3hot and D3cold (0xC822), and
/// Linux then accepts `ethtool -s eth0 wol g`. Nothing could ever deliver that wake-up:
/// the vfio-user protocol carries only the interrupts VFIO knows (INTx, MSI, MSI-X, error
/// and request notifications; no PME), QEMU's vfio-user-pci client (hw/vfio/pci.c, shared
/// with vfio-pci) passes the PM capability to the guest with only the power-state bits
/// emulated, and QEMU has no PME# path for a conventional PCI function. So the card does
/// not claim PME, its EEPROM leaves APM off, and Linux reports no Wake-on-LAN support
/// (`ethtool -s eth0 wol g` fails with "Operation not supported"). The wake-up registers
/// (WUC, WUFC, WUS, IPAV, IP4AT, IP6AT, FFLT, FFMT, FFVT) still hold what the driver
/// writes, masked as the datasheet says. docs/ARCHITECTURE.md says the same.
pub const PMC_NO_PME: u16 = 0x0022;

/// The 256-byte configuration space.
#[derive(Clone, Debug)]
pub struct PciConfig {
    bytes: [u8; CONFIG_SIZE],
    writable: [u8; CONFIG_SIZE],
}

impl Default for PciConfig {
    fn default() -> Self {
        Self::new(Model::default())
    }
}

impl PciConfig {
    /// Configuration space of `model` at power-on.
    pub fn new(model: Model) -> Self {
        let mut c = Self {
            bytes: [0; CONFIG_SIZE],
            writable: [0; CONFIG_SIZE],
        };
        c.set16(0x00, VENDOR_ID);
        c.set16(0x02, model.device_id());
        c.set16(
            offsets::STATUS,
            STATUS_CAP_LIST | (1 << 5) /* 66 MHz */ | (1 << 9), /* DEVSEL medium */
        );
        c.bytes[0x08] = model.revision();
        c.bytes[0x09..0x0C].copy_from_slice(&CLASS_ETHERNET);
        c.set32(offsets::BAR0, 0); // 32-bit, non-prefetchable memory
        c.set32(offsets::BAR1, 1); // I/O space indicator
        c.set16(0x2C, model.subsystem_vendor_id());
        c.set16(0x2E, model.subsystem_id());
        c.bytes[offsets::CAP_PTR] = offsets::PM_CAP as u8;
        c.bytes[0x3D] = 1; // INTA#
        c.bytes[0x3E] = 0xFF; // MIN_GNT
                              // Power management capability: version 2, D0 and D3hot, and no PME: see
                              // `PMC_NO_PME`.
        c.bytes[offsets::PM_CAP] = 0x01;
        c.bytes[offsets::PM_CAP + 1] = 0x00;
        c.set16(offsets::PM_CAP + 2, PMC_NO_PME);
        c.set16(offsets::PM_CAP + 4, 0x0000);

        // Writable bits.
        let cmd_mask = COMMAND_IO
            | COMMAND_MEMORY
            | COMMAND_BUS_MASTER
            | (1 << 6)
            | (1 << 8)
            | COMMAND_INTX_DISABLE;
        c.writable[offsets::COMMAND..offsets::COMMAND + 2].copy_from_slice(&cmd_mask.to_le_bytes());
        c.writable[0x0C] = 0xFF; // cache line size
        c.writable[0x0D] = 0xFF; // latency timer
        let bar0_mask = !(BAR0_SIZE as u32 - 1);
        let bar1_mask = !(BAR1_SIZE as u32 - 1);
        c.writable[offsets::BAR0..offsets::BAR0 + 4].copy_from_slice(&bar0_mask.to_le_bytes());
        c.writable[offsets::BAR1..offsets::BAR1 + 4].copy_from_slice(&bar1_mask.to_le_bytes());
        c.writable[offsets::INTERRUPT_LINE] = 0xFF;
        // PMCSR: the power state (bits 1:0). PME_En is hardwired to 0, as the PCI PM
        // specification allows for a function that supports PME from no state.
        c.writable[offsets::PM_CAP + 4] = 0x03;
        c
    }

    fn set16(&mut self, off: usize, v: u16) {
        self.bytes[off..off + 2].copy_from_slice(&v.to_le_bytes());
    }
    fn set32(&mut self, off: usize, v: u32) {
        self.bytes[off..off + 4].copy_from_slice(&v.to_le_bytes());
    }
    fn get16(&self, off: usize) -> u16 {
        u16::from_le_bytes([self.bytes[off], self.bytes[off + 1]])
    }
    fn get32(&self, off: usize) -> u32 {
        u32::from_le_bytes([
            self.bytes[off],
            self.bytes[off + 1],
            self.bytes[off + 2],
            self.bytes[off + 3],
        ])
    }

    /// Read `data.len()` bytes at `offset`; bytes beyond the space read as 0.
    pub fn read(&self, offset: u64, data: &mut [u8]) {
        for (i, b) in data.iter_mut().enumerate() {
            *b = offset
                .checked_add(i as u64)
                .and_then(|o| usize::try_from(o).ok())
                .and_then(|o| self.bytes.get(o).copied())
                .unwrap_or(0);
        }
    }

    /// Write `data` at `offset`; only writable bits change, the rest is ignored.
    pub fn write(&mut self, offset: u64, data: &[u8]) {
        for (i, &b) in data.iter().enumerate() {
            let Some(o) = offset
                .checked_add(i as u64)
                .and_then(|o| usize::try_from(o).ok())
                .filter(|&o| o < CONFIG_SIZE)
            else {
                continue;
            };
            let m = self.writable[o];
            self.bytes[o] = (self.bytes[o] & !m) | (b & m);
        }
    }

    /// The command register.
    pub fn command(&self) -> u16 {
        self.get16(offsets::COMMAND)
    }

    /// Whether the device may master the bus (DMA).
    pub fn bus_master(&self) -> bool {
        self.command() & COMMAND_BUS_MASTER != 0
    }

    /// Whether INTx is disabled by the command register.
    pub fn intx_disabled(&self) -> bool {
        self.command() & COMMAND_INTX_DISABLE != 0
    }

    /// Read like [`read`](Self::read), with the status register's interrupt bit (0x06
    /// bit 3) showing `interrupt`: the device's interrupt state at the moment of the
    /// read, which the PCI spec keeps visible even while the command register's
    /// INTx-disable bit holds the line low. uio_pci_generic and vfio-pci claim an INTx
    /// only when they see this bit set.
    pub fn read_with_interrupt(&self, offset: u64, data: &mut [u8], interrupt: bool) {
        self.read(offset, data);
        let bit = STATUS_INTERRUPT.to_le_bytes()[0];
        let at = (offsets::STATUS as u64).checked_sub(offset);
        if let Some(b) = at
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| data.get_mut(i))
        {
            *b = if interrupt { *b | bit } else { *b & !bit };
        }
    }

    /// Address programmed into BAR `n` (0 or 1), without the flag bits.
    pub fn bar_address(&self, n: usize) -> Option<u64> {
        match n {
            0 => Some(u64::from(self.get32(offsets::BAR0) & !0xF)),
            1 => Some(u64::from(self.get32(offsets::BAR1) & !0x3)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rd32(c: &PciConfig, off: u64) -> u32 {
        let mut b = [0u8; 4];
        c.read(off, &mut b);
        u32::from_le_bytes(b)
    }

    #[test]
    fn identity_and_bar_sizing() {
        let mut c = PciConfig::default();
        assert_eq!(rd32(&c, 0), 0x100E_8086);
        assert_eq!(rd32(&c, 8) >> 8, 0x02_0000);
        c.write(0x10, &0xFFFF_FFFFu32.to_le_bytes());
        assert_eq!(rd32(&c, 0x10), 0xFFFE_0000);
        c.write(0x14, &0xFFFF_FFFFu32.to_le_bytes());
        assert_eq!(rd32(&c, 0x14), 0xFFFF_FFC1);
        c.write(0x10, &0xFEBC_0000u32.to_le_bytes());
        assert_eq!(c.bar_address(0), Some(0xFEBC_0000));
        // read-only identity is not writable
        c.write(0, &[0, 0, 0, 0]);
        assert_eq!(rd32(&c, 0), 0x100E_8086);
        // out of range reads are zero, writes ignored
        let mut b = [0xAAu8; 4];
        c.read(254, &mut b);
        assert_eq!(b[2..], [0, 0]);
        c.write(u64::MAX, &[1, 2]);
    }

    #[test]
    fn interrupt_status_bit_is_the_live_state_at_any_access_size() {
        let c = PciConfig::default();
        for (off, len, byte) in [(4u64, 4usize, 2usize), (6, 2, 0), (6, 1, 0), (0, 8, 6)] {
            for on in [true, false] {
                let mut b = vec![0u8; len];
                c.read_with_interrupt(off, &mut b, on);
                assert_eq!(b[byte] & 0x08 != 0, on, "offset {off} len {len}");
                // The rest of the status register is unchanged (capability list).
                assert_eq!(b[byte] & 0x10, 0x10);
            }
        }
        // A read that does not cover byte 6 is untouched.
        let mut b = [0u8; 2];
        c.read_with_interrupt(7, &mut b, true);
        let mut plain = [0u8; 2];
        c.read(7, &mut plain);
        assert_eq!(b, plain);
    }

    #[test]
    fn the_82545em_has_its_own_identity() {
        let c = PciConfig::new(Model::I82545Em);
        assert_eq!(rd32(&c, 0), 0x100F_8086);
        assert_eq!(rd32(&c, 0x2C), 0x1001_8086);
        assert_eq!(rd32(&c, 8) >> 8, 0x02_0000);
    }

    #[test]
    fn power_management_claims_no_pme_and_pme_en_stays_zero() {
        let mut c = PciConfig::default();
        let cap = offsets::PM_CAP as u64;
        assert_eq!(rd32(&c, 0x34) & 0xFF, cap as u32);
        let pmc = rd32(&c, cap) >> 16;
        assert_eq!(pmc, u32::from(PMC_NO_PME));
        assert_eq!(pmc & 0xF800, 0, "PME_Support: no state");
        // D3hot and back; PME_En and PME_Status cannot be set.
        c.write(cap + 4, &0x8103u16.to_le_bytes());
        assert_eq!(rd32(&c, cap + 4) & 0xFFFF, 0x0003);
        c.write(cap + 4, &0u16.to_le_bytes());
        assert_eq!(rd32(&c, cap + 4) & 0xFFFF, 0);
    }

    #[test]
    fn bus_master_bit() {
        let mut c = PciConfig::default();
        assert!(!c.bus_master());
        c.write(4, &[0x07, 0x00]);
        assert!(c.bus_master());
        assert_eq!(c.command(), 7);
    }
}
