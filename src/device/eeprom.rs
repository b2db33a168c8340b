//! The 64-word Microwire EEPROM: read by bit-banging EECD (Linux) or through EERD (iPXE).
//!
//! Contents: MAC in words 0-2, identity words, and a checksum word (0x3F) chosen so that
//! the sum of all 64 words is 0xBABA, which every driver checks.

use super::pci_config::{DEVICE_ID, SUBSYS_ID, SUBSYS_VENDOR_ID, VENDOR_ID};
use super::regs::*;

/// Words in the 82540EM's EEPROM (EECD.SIZE = 0: 64 words, 6 address bits).
pub const EEPROM_WORDS: usize = 64;
/// Required sum of all words.
pub const EEPROM_CHECKSUM: u16 = 0xBABA;
const ADDR_BITS: u32 = 6;
const OPCODE_READ: u32 = 0b110; // start bit, then 10

/// Where the Microwire state machine is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Shifting in start bit, opcode and address.
    Command { bits: u32, count: u32 },
    /// Shifting out words from `addr`, `bit` bits of the current word already sent.
    Reading { addr: usize, bit: u32 },
    /// Unsupported command: ignore clocks until chip select drops.
    Ignore,
}

/// EEPROM contents and the EECD/EERD interface state.
#[derive(Clone, Debug)]
pub struct Eeprom {
    words: [u16; EEPROM_WORDS],
    /// Last value written to the host-writable EECD bits (SK, CS, DI, FWE, REQ).
    eecd: u32,
    /// Data-out line as the EEPROM drives it.
    data_out: bool,
    phase: Phase,
    eerd: u32,
}

impl Eeprom {
    /// An EEPROM holding `mac`, with a valid checksum.
    pub fn new(mac: [u8; 6]) -> Self {
        let mut words = [0u16; EEPROM_WORDS];
        for i in 0..3 {
            words[i] = u16::from_le_bytes([mac[2 * i], mac[2 * i + 1]]);
        }
        words[0x04] = 0xFFFF; // LED settings: driver defaults
        words[0x08] = 0x3000; // PBA number
        words[0x09] = 0x1000;
        words[0x0A] = 0x6403; // initialisation control 1
        words[0x0B] = SUBSYS_ID;
        words[0x0C] = SUBSYS_VENDOR_ID;
        words[0x0D] = DEVICE_ID;
        words[0x0E] = VENDOR_ID;
        words[0x0F] = 0x3040; // initialisation control 2
        words[0x24] = 0x0000; // init control 3: APM (wake) disabled
        let sum = words[..EEPROM_WORDS - 1]
            .iter()
            .fold(0u16, |a, &w| a.wrapping_add(w));
        words[EEPROM_WORDS - 1] = EEPROM_CHECKSUM.wrapping_sub(sum);
        Self {
            words,
            eecd: 0,
            data_out: true,
            phase: Phase::Command { bits: 0, count: 0 },
            eerd: 0,
        }
    }

    /// Word `i` (0 beyond the end).
    pub fn word(&self, i: usize) -> u16 {
        self.words.get(i).copied().unwrap_or(0)
    }

    /// Value a read of EECD returns.
    pub fn read_eecd(&self) -> u32 {
        let mut v = self.eecd | EECD_PRES;
        if self.eecd & EECD_REQ != 0 {
            v |= EECD_GNT; // the software always gets the EEPROM at once
        }
        if self.data_out {
            v |= EECD_DO;
        }
        v
    }

    /// A write of EECD: bit-bang clock, chip select and data in.
    pub fn write_eecd(&mut self, val: u32) {
        let old = self.eecd;
        self.eecd = val & (EECD_SK | EECD_CS | EECD_DI | EECD_FWE_MASK | EECD_REQ);
        if val & EECD_CS == 0 {
            // Chip select low: the part goes idle, ready for a new command.
            self.phase = Phase::Command { bits: 0, count: 0 };
            self.data_out = true;
            return;
        }
        let rising = old & EECD_SK == 0 && val & EECD_SK != 0;
        if !rising {
            return;
        }
        let di = u32::from(val & EECD_DI != 0);
        self.phase = match self.phase {
            // Leading zeros before the start bit are ignored.
            Phase::Command { count: 0, .. } if di == 0 => Phase::Command { bits: 0, count: 0 },
            Phase::Command { bits, count } => {
                let bits = (bits << 1) | di;
                let count = count + 1;
                if count < 3 + ADDR_BITS {
                    self.data_out = false;
                    Phase::Command { bits, count }
                } else if bits >> ADDR_BITS == OPCODE_READ {
                    self.data_out = false; // the dummy zero before the data
                    Phase::Reading {
                        addr: (bits & ((1 << ADDR_BITS) - 1)) as usize,
                        bit: 0,
                    }
                } else {
                    // Write/erase/enable commands: this model's EEPROM is read-only.
                    Phase::Ignore
                }
            }
            Phase::Reading { addr, bit } => {
                let word = self.words[addr % EEPROM_WORDS];
                self.data_out = (word >> (15 - bit)) & 1 != 0;
                if bit == 15 {
                    // Sequential read continues with the next word.
                    Phase::Reading {
                        addr: (addr + 1) % EEPROM_WORDS,
                        bit: 0,
                    }
                } else {
                    Phase::Reading { addr, bit: bit + 1 }
                }
            }
            Phase::Ignore => Phase::Ignore,
        };
    }

    /// A write of EERD: with START set, the read completes at once.
    pub fn write_eerd(&mut self, val: u32) {
        if val & EERD_START == 0 {
            self.eerd = val & !EERD_DONE;
            return;
        }
        let addr = (val >> EERD_ADDR_SHIFT) & 0xFF;
        let data = u32::from(self.word(addr as usize));
        self.eerd = (data << EERD_DATA_SHIFT) | (addr << EERD_ADDR_SHIFT) | EERD_DONE;
    }

    /// Value a read of EERD returns.
    pub fn read_eerd(&self) -> u32 {
        self.eerd
    }

    /// Forget any transfer in progress (device reset). The contents stay.
    pub fn reset_interface(&mut self) {
        self.eecd = 0;
        self.data_out = true;
        self.phase = Phase::Command { bits: 0, count: 0 };
        self.eerd = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Read one word the way Linux's e1000_read_eeprom does for Microwire parts.
    fn bitbang_read(e: &mut Eeprom, addr: u16) -> u16 {
        let mut eecd = EECD_REQ | EECD_CS;
        e.write_eecd(eecd);
        let out = |e: &mut Eeprom, v: u32, n: u32, eecd: &mut u32| {
            for i in (0..n).rev() {
                *eecd = if (v >> i) & 1 != 0 {
                    *eecd | EECD_DI
                } else {
                    *eecd & !EECD_DI
                };
                e.write_eecd(*eecd);
                e.write_eecd(*eecd | EECD_SK);
                e.write_eecd(*eecd);
            }
        };
        out(e, OPCODE_READ, 3, &mut eecd);
        out(e, u32::from(addr), 6, &mut eecd);
        let mut data = 0u16;
        for _ in 0..16 {
            e.write_eecd(eecd | EECD_SK);
            data = (data << 1) | u16::from(e.read_eecd() & EECD_DO != 0);
            e.write_eecd(eecd);
        }
        e.write_eecd(EECD_REQ);
        data
    }

    #[test]
    fn bitbang_reads_every_word_and_checksum_holds() {
        let mac = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
        let mut e = Eeprom::new(mac);
        let words: Vec<u16> = (0..64).map(|a| bitbang_read(&mut e, a)).collect();
        assert_eq!(words[0], 0x5452);
        assert_eq!(words[1], 0x1200);
        assert_eq!(words[2], 0x5634);
        assert_eq!(words[0x0D], 0x100E);
        let sum = words.iter().fold(0u16, |a, &w| a.wrapping_add(w));
        assert_eq!(sum, EEPROM_CHECKSUM);
    }

    #[test]
    fn eerd_reads_with_done_bit() {
        let mut e = Eeprom::new([1, 2, 3, 4, 5, 6]);
        e.write_eerd(EERD_START | (1 << EERD_ADDR_SHIFT));
        let v = e.read_eerd();
        assert_ne!(v & EERD_DONE, 0);
        assert_eq!(v >> 16, 0x0403);
        // beyond the part: done, zero data, no panic
        e.write_eerd(EERD_START | (0xFF << EERD_ADDR_SHIFT));
        assert_eq!(e.read_eerd() >> 16, 0);
    }

    #[test]
    fn gnt_follows_req() {
        let mut e = Eeprom::new([0; 6]);
        assert_eq!(e.read_eecd() & EECD_GNT, 0);
        e.write_eecd(EECD_REQ);
        assert_ne!(e.read_eecd() & EECD_GNT, 0);
        assert_ne!(e.read_eecd() & EECD_PRES, 0);
    }
}
