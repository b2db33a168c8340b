//! Statistics registers 0x4000-0x40FF with the hardware's semantics: every counter clears
//! when read; the 64-bit octet counters (GORC, GOTC, TOR, TOT) clear when their high half
//! is read. Counters saturate instead of wrapping.

use super::regs::*;

const WORDS: usize = ((STATS_END - STATS_START) / 4) as usize;

/// Destination class of a frame, for BPRC/MPRC and BPTC/MPTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DestKind {
    /// Unicast.
    Unicast,
    /// Multicast (group bit set, not broadcast).
    Multicast,
    /// Broadcast (ff:ff:ff:ff:ff:ff).
    Broadcast,
}

impl DestKind {
    /// Classify a frame by its destination address (first 6 bytes).
    pub fn of(frame: &[u8]) -> Self {
        match frame.get(..6) {
            Some([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]) => Self::Broadcast,
            Some(d) if d[0] & 1 != 0 => Self::Multicast,
            _ => Self::Unicast,
        }
    }
}

/// Every statistics register by its name in the datasheet (section 13.7), in address
/// order; a 64-bit pair (GORC, GOTC, TOR, TOT) once, by its low register.
pub const REGISTERS: [(&str, u32); 54] = [
    ("CRCERRS", CRCERRS),
    ("ALGNERRC", ALGNERRC),
    ("SYMERRS", SYMERRS),
    ("RXERRC", RXERRC),
    ("MPC", MPC),
    ("SCC", SCC),
    ("ECOL", ECOL),
    ("MCC", MCC),
    ("LATECOL", LATECOL),
    ("COLC", COLC),
    ("DC", DC),
    ("TNCRS", TNCRS),
    ("SEC", SEC),
    ("CEXTERR", CEXTERR),
    ("RLEC", RLEC),
    ("XONRXC", XONRXC),
    ("XONTXC", XONTXC),
    ("XOFFRXC", XOFFRXC),
    ("XOFFTXC", XOFFTXC),
    ("FCRUC", FCRUC),
    ("PRC64", PRC64),
    ("PRC127", PRC127),
    ("PRC255", PRC255),
    ("PRC511", PRC511),
    ("PRC1023", PRC1023),
    ("PRC1522", PRC1522),
    ("GPRC", GPRC),
    ("BPRC", BPRC),
    ("MPRC", MPRC),
    ("GPTC", GPTC),
    ("GORC", GORCL),
    ("GOTC", GOTCL),
    ("RNBC", RNBC),
    ("RUC", RUC),
    ("RFC", RFC),
    ("ROC", ROC),
    ("RJC", RJC),
    ("MGTPRC", MGTPRC),
    ("MGTPDC", MGTPDC),
    ("MGTPTC", MGTPTC),
    ("TOR", TORL),
    ("TOT", TOTL),
    ("TPR", TPR),
    ("TPT", TPT),
    ("PTC64", PTC64),
    ("PTC127", PTC127),
    ("PTC255", PTC255),
    ("PTC511", PTC511),
    ("PTC1023", PTC1023),
    ("PTC1522", PTC1522),
    ("MPTC", MPTC),
    ("BPTC", BPTC),
    ("TSCTC", TSCTC),
    ("TSCTFC", TSCTFC),
];

/// The statistics block.
#[derive(Clone, Debug)]
pub struct Stats {
    /// One 64-bit accumulator per 32-bit register; for the 64-bit pairs the value lives in
    /// the low register's slot.
    counters: [u64; WORDS],
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            counters: [0; WORDS],
        }
    }
}

fn idx(reg: u32) -> Option<usize> {
    if (STATS_START..STATS_END).contains(&reg) {
        Some(((reg - STATS_START) / 4) as usize)
    } else {
        None
    }
}

fn is_pair_low(reg: u32) -> bool {
    matches!(reg, GORCL | GOTCL | TORL | TOTL)
}
fn is_pair_high(reg: u32) -> bool {
    matches!(reg, GORCH | GOTCH | TORH | TOTH)
}

impl Stats {
    /// Add `n` to the counter at `reg` (the low register of a 64-bit pair).
    pub fn add(&mut self, reg: u32, n: u64) {
        if let Some(i) = idx(reg) {
            self.counters[i] = self.counters[i].saturating_add(n);
        }
    }

    /// Increment the counter at `reg`.
    pub fn inc(&mut self, reg: u32) {
        self.add(reg, 1);
    }

    /// Current value without side effects (tests, metrics).
    pub fn peek(&self, reg: u32) -> u64 {
        if is_pair_high(reg) {
            return self.peek(reg - 4) >> 32;
        }
        idx(reg).map_or(0, |i| self.counters[i])
    }

    /// Every register of [`REGISTERS`] with its value, without side effects (the guest
    /// still reads and clears them as before).
    pub fn named(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        REGISTERS.iter().map(|&(name, reg)| (name, self.peek(reg)))
    }

    /// A guest read of a statistics register.
    pub fn read(&mut self, reg: u32) -> u32 {
        let reg = reg & !3;
        let Some(i) = idx(reg) else { return 0 };
        if is_pair_low(reg) {
            // The low half reads without clearing; the high half read clears both.
            return self.counters[i] as u32;
        }
        if is_pair_high(reg) {
            let lo = i - 1;
            let v = (self.counters[lo] >> 32) as u32;
            self.counters[lo] = 0;
            return v;
        }
        let v = self.counters[i].min(u64::from(u32::MAX)) as u32;
        self.counters[i] = 0;
        v
    }

    /// Clear everything (device reset).
    pub fn reset(&mut self) {
        self.counters = [0; WORDS];
    }

    /// A good frame of `len` bytes (without FCS) was received.
    pub fn rx_good(&mut self, len: usize, kind: DestKind) {
        let wire = len as u64 + 4;
        self.inc(GPRC);
        self.inc(TPR);
        self.add(GORCL, wire);
        self.add(TORL, wire);
        match kind {
            DestKind::Broadcast => self.inc(BPRC),
            DestKind::Multicast => self.inc(MPRC),
            DestKind::Unicast => {}
        }
        self.inc(match wire {
            0..=64 => PRC64,
            65..=127 => PRC127,
            128..=255 => PRC255,
            256..=511 => PRC511,
            512..=1023 => PRC1023,
            _ => PRC1522,
        });
    }

    /// A frame of `len` bytes (without FCS) was transmitted.
    pub fn tx_good(&mut self, len: usize, kind: DestKind) {
        let wire = len as u64 + 4;
        self.inc(GPTC);
        self.inc(TPT);
        self.add(GOTCL, wire);
        self.add(TOTL, wire);
        match kind {
            DestKind::Broadcast => self.inc(BPTC),
            DestKind::Multicast => self.inc(MPTC),
            DestKind::Unicast => {}
        }
        self.inc(match wire {
            0..=64 => PTC64,
            65..=127 => PTC127,
            128..=255 => PTC255,
            256..=511 => PTC511,
            512..=1023 => PTC1023,
            _ => PTC1522,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clear_on_read_and_64bit_pairs() {
        let mut s = Stats::default();
        s.rx_good(60, DestKind::Broadcast);
        s.add(GORCL, 0x1_0000_0000);
        assert_eq!(s.read(GPRC), 1);
        assert_eq!(s.read(GPRC), 0);
        assert_eq!(s.read(BPRC), 1);
        assert_eq!(s.read(PRC64), 1);
        assert_eq!(s.read(GORCL), 64);
        assert_eq!(s.read(GORCL), 64, "low half does not clear");
        assert_eq!(s.read(GORCH), 1);
        assert_eq!(s.read(GORCL), 0, "high half cleared the pair");
        assert_eq!(s.read(0x4100), 0);
    }
}
