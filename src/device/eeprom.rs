//! The 64-word Microwire EEPROM (a 93C46): read by bit-banging EECD (Linux) or through
//! EERD (iPXE), written by bit-banging (`ethtool -E`).
//!
//! Contents: MAC in words 0-2, identity words, and a checksum word (0x3F) chosen so that
//! the sum of all 64 words is 0xBABA, which every driver checks.
//!
//! The Microwire command set: a start bit, a 2-bit opcode, 6 address bits, then data.
//! READ (10) shifts words out on DO, continuing with the next word; WRITE (01) takes 16
//! data bits; ERASE (11) sets a word to 0xFFFF; the 00 opcodes choose by the two high
//! address bits: EWDS (00) and EWEN (11) disable and enable programming (off after power
//! on), WRAL (01) writes 16 data bits to every word, ERAL (10) erases every word. A
//! programming command runs when chip select drops after it, if programming is enabled;
//! when the driver selects the part again, DO reads 0 (busy) once, then 1 (ready), which
//! is the handshake Linux polls for.

use super::regs::*;

/// Words in the 82540EM's EEPROM (EECD.SIZE = 0: 64 words, 6 address bits).
pub const EEPROM_WORDS: usize = 64;
/// Required sum of all words.
pub const EEPROM_CHECKSUM: u16 = 0xBABA;
const ADDR_BITS: u32 = 6;
const OPCODE_READ: u32 = 0b110; // start bit, then 10
const OPCODE_WRITE: u32 = 0b101;
const OPCODE_ERASE: u32 = 0b111;
const OPCODE_MISC: u32 = 0b100; // EWEN, EWDS, WRAL, ERAL by the address's two high bits
/// Reads of EECD that show DO low (busy) after a programming command, before ready.
const BUSY_READS: u8 = 1;

/// A programming command waiting for chip select to drop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Program {
    Write { addr: usize, data: u16 },
    Erase { addr: usize },
    WriteAll { data: u16 },
    EraseAll,
}

/// Where the Microwire state machine is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Shifting in start bit, opcode and address.
    Command { bits: u32, count: u32 },
    /// Shifting out words from `addr`, `bit` bits of the current word already sent.
    Reading { addr: usize, bit: u32 },
    /// Shifting in the 16 data bits of WRITE (`Some(addr)`) or WRAL (`None`).
    Data {
        addr: Option<usize>,
        bits: u32,
        count: u32,
    },
    /// A programming command complete: it runs when chip select drops.
    Ready(Program),
    /// Nothing more to do until chip select drops (extra clocks are ignored).
    Done,
}

/// The checksum word that makes `words` sum to [`EEPROM_CHECKSUM`].
pub fn checksum_word(words: &[u16; EEPROM_WORDS]) -> u16 {
    let sum = words[..EEPROM_WORDS - 1]
        .iter()
        .fold(0u16, |a, &w| a.wrapping_add(w));
    EEPROM_CHECKSUM.wrapping_sub(sum)
}

/// Whether `words` sum to [`EEPROM_CHECKSUM`].
pub fn checksum_ok(words: &[u16; EEPROM_WORDS]) -> bool {
    words.iter().fold(0u16, |a, &w| a.wrapping_add(w)) == EEPROM_CHECKSUM
}

/// Identity a model's EEPROM carries (words 0x0B-0x0E).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EepromIdentity {
    /// PCI vendor ID (word 0x0E).
    pub vendor_id: u16,
    /// PCI device ID (word 0x0D).
    pub device_id: u16,
    /// PCI subsystem ID (word 0x0B).
    pub subsystem_id: u16,
    /// PCI subsystem vendor ID (word 0x0C).
    pub subsystem_vendor_id: u16,
}

/// The EEPROM image a card with `mac` ships with: MAC, identity, LED and
/// initialisation control words, and the checksum.
pub fn default_image(mac: [u8; 6], id: EepromIdentity) -> [u16; EEPROM_WORDS] {
    let mut words = [0u16; EEPROM_WORDS];
    for i in 0..3 {
        words[i] = u16::from_le_bytes([mac[2 * i], mac[2 * i + 1]]);
    }
    words[0x04] = 0xFFFF; // LED settings: driver defaults
    words[0x08] = 0x3000; // PBA number
    words[0x09] = 0x1000;
    words[0x0A] = 0x6403; // initialisation control 1
    words[0x0B] = id.subsystem_id;
    words[0x0C] = id.subsystem_vendor_id;
    words[0x0D] = id.device_id;
    words[0x0E] = id.vendor_id;
    words[0x0F] = 0x3040; // initialisation control 2
    words[0x24] = 0x0000; // init control 3: APM (wake) disabled, as the card claims no PME
    words[EEPROM_WORDS - 1] = checksum_word(&words);
    words
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
    /// EWEN given (until EWDS or power-off).
    write_enabled: bool,
    /// Reads of EECD left that show busy after a programming command.
    busy: u8,
    /// The contents changed since [`take_changed`](Self::take_changed) last looked.
    changed: bool,
}

impl Eeprom {
    /// An EEPROM holding `words` (the checksum is the caller's business).
    pub fn new(words: [u16; EEPROM_WORDS]) -> Self {
        Self {
            words,
            eecd: 0,
            data_out: true,
            phase: Phase::Command { bits: 0, count: 0 },
            eerd: 0,
            write_enabled: false,
            busy: 0,
            changed: false,
        }
    }

    /// Word `i` (0 beyond the end).
    pub fn word(&self, i: usize) -> u16 {
        self.words.get(i).copied().unwrap_or(0)
    }

    /// All the words.
    pub fn words(&self) -> &[u16; EEPROM_WORDS] {
        &self.words
    }

    /// Whether a programming command changed the contents since the last call.
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    /// Value a read of EECD returns. While a programming command runs, DO reads 0
    /// (busy) for the first read, then 1.
    pub fn read_eecd(&mut self) -> u32 {
        let mut v = self.eecd | EECD_PRES;
        if self.eecd & EECD_REQ != 0 {
            v |= EECD_GNT; // the software always gets the EEPROM at once
        }
        let busy = self.busy > 0 && self.eecd & EECD_CS != 0;
        if busy {
            self.busy -= 1;
        } else if self.data_out {
            v |= EECD_DO;
        }
        v
    }

    /// A write of EECD: bit-bang clock, chip select and data in.
    pub fn write_eecd(&mut self, val: u32) {
        let old = self.eecd;
        self.eecd = val & (EECD_SK | EECD_CS | EECD_DI | EECD_FWE_MASK | EECD_REQ);
        if val & EECD_CS == 0 {
            // Chip select low: a programming command runs; the part goes idle, ready for
            // a new command.
            if old & EECD_CS != 0 {
                if let Phase::Ready(p) = self.phase {
                    self.program(p);
                }
            }
            self.phase = Phase::Command { bits: 0, count: 0 };
            self.data_out = true;
            return;
        }
        let rising = old & EECD_SK == 0 && val & EECD_SK != 0;
        if !rising {
            return;
        }
        self.busy = 0; // a new command: the last one finished long ago
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
                } else {
                    self.command(bits)
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
            Phase::Data { addr, bits, count } => {
                let bits = (bits << 1) | di;
                if count + 1 < 16 {
                    Phase::Data {
                        addr,
                        bits,
                        count: count + 1,
                    }
                } else {
                    let data = bits as u16;
                    Phase::Ready(match addr {
                        Some(addr) => Program::Write { addr, data },
                        None => Program::WriteAll { data },
                    })
                }
            }
            p @ (Phase::Ready(_) | Phase::Done) => p,
        };
    }

    /// Start bit, opcode and address are in: what comes next.
    fn command(&mut self, bits: u32) -> Phase {
        let addr = (bits & ((1 << ADDR_BITS) - 1)) as usize;
        match bits >> ADDR_BITS {
            OPCODE_READ => {
                self.data_out = false; // the dummy zero before the data
                Phase::Reading { addr, bit: 0 }
            }
            OPCODE_WRITE => Phase::Data {
                addr: Some(addr),
                bits: 0,
                count: 0,
            },
            OPCODE_ERASE => Phase::Ready(Program::Erase { addr }),
            OPCODE_MISC => match addr >> (ADDR_BITS - 2) {
                0b11 => {
                    self.write_enabled = true; // EWEN
                    Phase::Done
                }
                0b00 => {
                    self.write_enabled = false; // EWDS
                    Phase::Done
                }
                0b01 => Phase::Data {
                    addr: None,
                    bits: 0,
                    count: 0,
                },
                _ => Phase::Ready(Program::EraseAll),
            },
            _ => Phase::Done,
        }
    }

    /// Carry out a programming command (chip select dropped after it).
    fn program(&mut self, p: Program) {
        if !self.write_enabled {
            log::debug!("eeprom: {p:?} ignored: programming not enabled (EWEN)");
            return;
        }
        match p {
            Program::Write { addr, data } => self.words[addr % EEPROM_WORDS] = data,
            Program::Erase { addr } => self.words[addr % EEPROM_WORDS] = 0xFFFF,
            Program::WriteAll { data } => self.words.fill(data),
            Program::EraseAll => self.words.fill(0xFFFF),
        }
        self.busy = BUSY_READS;
        self.changed = true;
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

    /// Forget any transfer in progress (device reset). The contents and the
    /// programming enable stay (the EEPROM is a separate chip).
    pub fn reset_interface(&mut self) {
        self.eecd = 0;
        self.data_out = true;
        self.phase = Phase::Command { bits: 0, count: 0 };
        self.eerd = 0;
        self.busy = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::Model;

    fn image(mac: [u8; 6]) -> Eeprom {
        Eeprom::new(default_image(mac, Model::I82540Em.eeprom_identity()))
    }

    /// Shift `n` bits of `v` out on DI, MSB first, as e1000_shift_out_ee_bits does.
    fn shift_out(e: &mut Eeprom, eecd: &mut u32, v: u32, n: u32) {
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
        *eecd &= !EECD_DI;
        e.write_eecd(*eecd);
    }

    /// e1000_standby_eeprom for Microwire: CS low with SK low, clock high, CS high,
    /// clock low.
    fn standby(e: &mut Eeprom, eecd: &mut u32) {
        *eecd &= !(EECD_CS | EECD_SK);
        e.write_eecd(*eecd);
        e.write_eecd(*eecd | EECD_SK);
        *eecd |= EECD_CS;
        e.write_eecd(*eecd | EECD_SK);
        e.write_eecd(*eecd);
    }

    /// Read one word the way Linux's e1000_read_eeprom does for Microwire parts.
    fn bitbang_read(e: &mut Eeprom, addr: u16) -> u16 {
        let mut eecd = EECD_REQ | EECD_CS;
        e.write_eecd(eecd);
        shift_out(e, &mut eecd, OPCODE_READ, 3);
        shift_out(e, &mut eecd, u32::from(addr), 6);
        let mut data = 0u16;
        for _ in 0..16 {
            e.write_eecd(eecd | EECD_SK);
            data = (data << 1) | u16::from(e.read_eecd() & EECD_DO != 0);
            e.write_eecd(eecd);
        }
        e.write_eecd(EECD_REQ);
        data
    }

    /// e1000_write_eeprom_microwire: EWEN, then per word WRITE + data, standby, poll DO
    /// for ready (counting the busy reads), standby; then EWDS. Returns the busy reads
    /// seen per word, or None if a write never became ready.
    fn bitbang_write(e: &mut Eeprom, addr: u16, data: &[u16]) -> Option<Vec<u32>> {
        let mut eecd = EECD_REQ;
        e.write_eecd(eecd);
        eecd |= EECD_CS;
        e.write_eecd(eecd);
        shift_out(e, &mut eecd, 0b10011, 5); // EWEN
        shift_out(e, &mut eecd, 0, 4);
        standby(e, &mut eecd);
        let mut busy = Vec::new();
        for (i, &w) in data.iter().enumerate() {
            shift_out(e, &mut eecd, OPCODE_WRITE, 3);
            shift_out(e, &mut eecd, u32::from(addr) + i as u32, 6);
            shift_out(e, &mut eecd, u32::from(w), 16);
            standby(e, &mut eecd);
            let n = (0..200).position(|_| e.read_eecd() & EECD_DO != 0)?;
            busy.push(n as u32);
            standby(e, &mut eecd);
        }
        shift_out(e, &mut eecd, 0b10000, 5); // EWDS
        shift_out(e, &mut eecd, 0, 4);
        eecd &= !(EECD_CS | EECD_DI);
        e.write_eecd(eecd);
        e.write_eecd(0);
        Some(busy)
    }

    /// A command with no data (ERASE, ERAL, EWEN, EWDS): start + opcode + address,
    /// then chip select drops.
    fn command(e: &mut Eeprom, opcode: u32, addr: u32) {
        let mut eecd = EECD_REQ | EECD_CS;
        e.write_eecd(eecd);
        shift_out(e, &mut eecd, opcode, 3);
        shift_out(e, &mut eecd, addr, 6);
        e.write_eecd(EECD_REQ);
    }

    fn ewen(e: &mut Eeprom) {
        command(e, OPCODE_MISC, 0b11_0000);
    }

    #[test]
    fn bitbang_reads_every_word_and_checksum_holds() {
        let mac = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
        let mut e = image(mac);
        let words: Vec<u16> = (0..64).map(|a| bitbang_read(&mut e, a)).collect();
        assert_eq!(words[0], 0x5452);
        assert_eq!(words[1], 0x1200);
        assert_eq!(words[2], 0x5634);
        assert_eq!(words[0x0D], 0x100E);
        let sum = words.iter().fold(0u16, |a, &w| a.wrapping_add(w));
        assert_eq!(sum, EEPROM_CHECKSUM);
    }

    #[test]
    fn linux_microwire_write_programs_words_busy_then_ready() {
        let mut e = image([2, 0, 0, 0, 0, 1]);
        let busy = bitbang_write(&mut e, 0x30, &[0xBEEF, 0x1234]).expect("ready");
        assert_eq!(busy, vec![BUSY_READS as u32; 2], "DO low first, then high");
        assert!(e.take_changed());
        assert!(!e.take_changed());
        assert_eq!(bitbang_read(&mut e, 0x30), 0xBEEF);
        assert_eq!(bitbang_read(&mut e, 0x31), 0x1234);
        assert_eq!(e.word(0x30), 0xBEEF);
        // The driver then rewrites the checksum word (e1000_update_eeprom_checksum).
        let fix = checksum_word(e.words());
        bitbang_write(&mut e, 0x3F, &[fix]).expect("ready");
        assert!(checksum_ok(e.words()));
    }

    #[test]
    fn programming_needs_ewen_and_stops_after_ewds() {
        let mut e = image([2, 0, 0, 0, 0, 1]);
        let before = *e.words();
        // WRITE without EWEN: ignored, and DO does not signal busy.
        let mut eecd = EECD_REQ | EECD_CS;
        e.write_eecd(eecd);
        shift_out(&mut e, &mut eecd, OPCODE_WRITE, 3);
        shift_out(&mut e, &mut eecd, 0x30, 6);
        shift_out(&mut e, &mut eecd, 0xDEAD, 16);
        standby(&mut e, &mut eecd);
        assert_ne!(e.read_eecd() & EECD_DO, 0);
        e.write_eecd(0);
        assert_eq!(*e.words(), before);
        assert!(!e.take_changed());
        // bitbang_write ends with EWDS: a later ERASE does nothing.
        bitbang_write(&mut e, 0x30, &[7]).unwrap();
        command(&mut e, OPCODE_ERASE, 0x30);
        assert_eq!(e.word(0x30), 7);
    }

    #[test]
    fn erase_eral_and_wral() {
        let mut e = image([2, 0, 0, 0, 0, 1]);
        ewen(&mut e);
        command(&mut e, OPCODE_ERASE, 0x05);
        assert_eq!(e.word(0x05), 0xFFFF);
        assert_eq!(e.word(0x06), 0);
        // WRAL: 0b01 in the address's high bits, then 16 data bits.
        let mut eecd = EECD_REQ | EECD_CS;
        e.write_eecd(eecd);
        shift_out(&mut e, &mut eecd, OPCODE_MISC, 3);
        shift_out(&mut e, &mut eecd, 0b01_0000, 6);
        shift_out(&mut e, &mut eecd, 0xA55A, 16);
        e.write_eecd(EECD_REQ);
        assert!(e.words().iter().all(|&w| w == 0xA55A));
        command(&mut e, OPCODE_MISC, 0b10_0000); // ERAL
        assert!(e.words().iter().all(|&w| w == 0xFFFF));
        // Programming stays enabled across a device reset (the EEPROM is its own chip).
        e.reset_interface();
        command(&mut e, OPCODE_ERASE, 0x01);
        assert!(e.take_changed());
    }

    #[test]
    fn a_command_cut_short_by_chip_select_does_nothing() {
        let mut e = image([2, 0, 0, 0, 0, 1]);
        ewen(&mut e);
        let before = *e.words();
        let mut eecd = EECD_REQ | EECD_CS;
        e.write_eecd(eecd);
        shift_out(&mut e, &mut eecd, OPCODE_WRITE, 3);
        shift_out(&mut e, &mut eecd, 0x10, 6);
        shift_out(&mut e, &mut eecd, 0xFF, 8); // 8 of the 16 data bits
        e.write_eecd(EECD_REQ);
        assert_eq!(*e.words(), before);
        assert_eq!(
            bitbang_read(&mut e, 0x10),
            before[0x10],
            "the part is usable after"
        );
    }

    #[test]
    fn eerd_reads_with_done_bit() {
        let mut e = image([1, 2, 3, 4, 5, 6]);
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
        let mut e = image([0; 6]);
        assert_eq!(e.read_eecd() & EECD_GNT, 0);
        e.write_eecd(EECD_REQ);
        assert_ne!(e.read_eecd() & EECD_GNT, 0);
        assert_ne!(e.read_eecd() & EECD_PRES, 0);
    }
}
