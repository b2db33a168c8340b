//! The support module every test crate includes as `support` (one file tree, no copies):
//! each crate's `main.rs` says `#[path = "../support/mod.rs"] pub mod support;`. Declared
//! `pub`, so a helper one crate does not use is not dead code there.
//!
//! This file: a driver model for tests: `FakeGuest` talks to the device on the in-process
//! PCI bus the way the Linux e1000 driver, iPXE and DPDK do, and `TestWire` is a backend
//! the test can inject frames into and read sent frames from; `frame`, the skip protocol
//! (`can_run`, `is_root`) and `watchdog`. Beside it: `tx` (transmit descriptors and
//! packets as the Linux driver lays them out), `vfio` (a vfio-user server and client),
//! `readme` (the README's code blocks) and `e2e` (the real-QEMU harness).

pub mod e2e;
pub mod readme;
pub mod tx;
#[cfg(feature = "vfio-user")]
pub mod vfio;

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex};

use nic_emu::backend::PacketBackend;
use nic_emu::device::regs::*;
use nic_emu::frontend::fake_bus::{FakeBusConfig, FakePciBus};
use nic_emu::{Clock, DeviceConfig, MacAddress, ManualClock};

pub const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0xAB, 0xCD, 0x01];

// Guest memory layout (16 MiB of RAM at 0).
pub const TX_RING: u64 = 0x1_0000;
pub const RX_RING: u64 = 0x2_0000;
pub const TX_BUFS: u64 = 0x10_0000; // 64 slots of 16 KiB
pub const TX_SLOT: u64 = 0x4000;
pub const RX_BUFS: u64 = 0x80_0000; // up to 256 slots of 16 KiB
pub const RX_SLOT: u64 = 0x4000;

/// TX legacy command bits.
pub const TXD_EOP: u8 = 0x01;
pub const TXD_IFCS: u8 = 0x02;
pub const TXD_IC: u8 = 0x04;
pub const TXD_RS: u8 = 0x08;
pub const TXD_VLE: u8 = 0x40;
pub const TXD_IDE: u8 = 0x80;

/// RX status bits.
pub const RXD_DD: u8 = 0x01;
pub const RXD_EOP: u8 = 0x02;
pub const RXD_IXSM: u8 = 0x04;
pub const RXD_VP: u8 = 0x08;
pub const RXD_TCPCS: u8 = 0x20;
pub const RXD_IPCS: u8 = 0x40;

/// Shared state of a [`TestWire`].
#[derive(Default)]
pub struct WireState {
    pub to_guest: VecDeque<Vec<u8>>,
    pub from_guest: Vec<Vec<u8>>,
}

/// A backend the test controls: frames pushed into `to_guest` are received by the
/// device; frames the device sends land in `from_guest`.
#[derive(Clone, Default)]
pub struct TestWire(pub Arc<Mutex<WireState>>);

impl TestWire {
    pub fn inject(&self, frame: &[u8]) {
        self.0.lock().unwrap().to_guest.push_back(frame.to_vec());
    }
    pub fn take_sent(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.0.lock().unwrap().from_guest)
    }
    pub fn pending(&self) -> usize {
        self.0.lock().unwrap().to_guest.len()
    }
}

impl PacketBackend for TestWire {
    fn name(&self) -> String {
        "test-wire".into()
    }
    fn send(&mut self, frame: &[u8]) -> io::Result<bool> {
        self.0.lock().unwrap().from_guest.push(frame.to_vec());
        Ok(true)
    }
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let Some(f) = self.0.lock().unwrap().to_guest.pop_front() else {
            return Ok(None);
        };
        let n = f.len().min(buf.len());
        buf[..n].copy_from_slice(&f[..n]);
        Ok(Some(n))
    }
}

/// What the Linux probe found.
#[derive(Debug)]
pub struct ProbeResult {
    pub eeprom: Vec<u16>,
    pub mac: [u8; 6],
    pub phy_id: u32,
    pub link_up: bool,
}

/// A guest driver talking to one e1000 on the fake bus.
pub struct FakeGuest {
    pub bus: FakePciBus,
    pub clock: ManualClock,
    pub tx_count: u32,
    pub tx_tail: u32,
    pub tx_clean: u32,
    pub rx_count: u32,
    pub rx_next: u32,
    pub rx_buf_size: usize,
}

impl FakeGuest {
    pub fn new(backend: Box<dyn PacketBackend>) -> Self {
        Self::with_device(
            backend,
            DeviceConfig {
                mac: MacAddress::new(MAC),
                link_up: true,
                // Autonegotiation completes at once unless a test asks for the window.
                autoneg_delay: std::time::Duration::ZERO,
                ..DeviceConfig::default()
            },
        )
    }

    /// A guest on a device set up as `device` says.
    pub fn with_device(backend: Box<dyn PacketBackend>, device: DeviceConfig) -> Self {
        let clock = ManualClock::new();
        let cfg = FakeBusConfig {
            device,
            ..FakeBusConfig::default()
        };
        let bus = FakePciBus::new(cfg, backend, Arc::new(clock.clone()) as Arc<dyn Clock>)
            .expect("guest RAM");
        Self {
            bus,
            clock,
            tx_count: 0,
            tx_tail: 0,
            tx_clean: 0,
            rx_count: 0,
            rx_next: 0,
            rx_buf_size: 2048,
        }
    }

    pub fn with_wire() -> (Self, TestWire) {
        let wire = TestWire::default();
        (Self::new(Box::new(wire.clone())), wire)
    }

    // ---- register access ----
    pub fn rd(&mut self, reg: u32) -> u32 {
        let base = self.bus.mmio_base();
        self.bus.mmio_read32(base + u64::from(reg))
    }
    pub fn wr(&mut self, reg: u32, v: u32) {
        let base = self.bus.mmio_base();
        self.bus.mmio_write32(base + u64::from(reg), v)
    }
    /// Read-modify-write: set `bits` in `reg`.
    pub fn set_bits(&mut self, reg: u32, bits: u32) {
        let v = self.rd(reg);
        self.wr(reg, v | bits);
    }
    /// Register access through the I/O BAR's IOADDR/IODATA window.
    pub fn io_wr(&mut self, reg: u32, v: u32) {
        let io = self.bus.io_base();
        self.bus.io_write32(io, reg);
        self.bus.io_write32(io + 4, v);
    }
    pub fn io_rd(&mut self, reg: u32) -> u32 {
        let io = self.bus.io_base();
        self.bus.io_write32(io, reg);
        self.bus.io_read32(io + 4)
    }
    pub fn enable_bus_master(&mut self) {
        let cmd = self.bus.config_read16(4);
        self.bus.config_write16(4, cmd | 0x7);
    }

    // ---- EEPROM, the Linux way: Microwire bit-bang through EECD ----
    fn ee_clock(&mut self, eecd: u32) {
        self.wr(EECD, eecd | EECD_SK);
        self.wr(EECD, eecd & !EECD_SK);
    }
    pub fn eeprom_bitbang_read(&mut self, addr: u16) -> u16 {
        let mut eecd = self.rd(EECD) | EECD_REQ;
        self.wr(EECD, eecd);
        assert_ne!(self.rd(EECD) & EECD_GNT, 0, "EEPROM grant");
        eecd = (eecd | EECD_CS) & !(EECD_SK | EECD_DI);
        self.wr(EECD, eecd);
        let bits = (0b110u32 << 6) | u32::from(addr & 0x3F);
        for i in (0..9).rev() {
            eecd = if (bits >> i) & 1 != 0 {
                eecd | EECD_DI
            } else {
                eecd & !EECD_DI
            };
            self.wr(EECD, eecd);
            self.ee_clock(eecd);
        }
        eecd &= !EECD_DI;
        let mut data = 0u16;
        for _ in 0..16 {
            self.wr(EECD, eecd | EECD_SK);
            data = (data << 1) | u16::from(self.rd(EECD) & EECD_DO != 0);
            self.wr(EECD, eecd);
        }
        self.wr(EECD, eecd & !(EECD_CS | EECD_REQ));
        data
    }
    /// Shift `n` bits of `v` out on DI, MSB first (e1000_shift_out_ee_bits).
    fn ee_shift_out(&mut self, eecd: &mut u32, v: u32, n: u32) {
        for i in (0..n).rev() {
            *eecd = if (v >> i) & 1 != 0 {
                *eecd | EECD_DI
            } else {
                *eecd & !EECD_DI
            };
            self.wr(EECD, *eecd);
            self.ee_clock(*eecd);
        }
        *eecd &= !EECD_DI;
        self.wr(EECD, *eecd);
    }
    /// e1000_standby_eeprom for Microwire.
    fn ee_standby(&mut self, eecd: &mut u32) {
        *eecd &= !(EECD_CS | EECD_SK);
        self.wr(EECD, *eecd);
        self.wr(EECD, *eecd | EECD_SK);
        *eecd |= EECD_CS;
        self.wr(EECD, *eecd | EECD_SK);
        self.wr(EECD, *eecd);
    }
    /// The Linux way of writing words (e1000_write_eeprom_microwire): EWEN, per word
    /// WRITE + data + standby + poll DO until ready (at most 200 reads), EWDS. Returns
    /// how many EECD reads showed busy before each word was ready.
    pub fn eeprom_bitbang_write(&mut self, addr: u16, words: &[u16]) -> Vec<u32> {
        let mut eecd = self.rd(EECD) | EECD_REQ;
        self.wr(EECD, eecd);
        assert_ne!(self.rd(EECD) & EECD_GNT, 0, "EEPROM grant");
        eecd = (eecd | EECD_CS) & !(EECD_SK | EECD_DI);
        self.wr(EECD, eecd);
        self.ee_shift_out(&mut eecd, 0b10011, 5); // EWEN
        self.ee_shift_out(&mut eecd, 0, 4);
        self.ee_standby(&mut eecd);
        let mut busy = Vec::new();
        for (i, &w) in words.iter().enumerate() {
            self.ee_shift_out(&mut eecd, 0b101, 3);
            self.ee_shift_out(&mut eecd, u32::from(addr) + i as u32, 6);
            self.ee_shift_out(&mut eecd, u32::from(w), 16);
            self.ee_standby(&mut eecd);
            let n = (0..200)
                .position(|_| self.rd(EECD) & EECD_DO != 0)
                .expect("EEPROM write did not complete");
            busy.push(n as u32);
            self.ee_standby(&mut eecd);
        }
        self.ee_shift_out(&mut eecd, 0b10000, 5); // EWDS
        self.ee_shift_out(&mut eecd, 0, 4);
        self.wr(EECD, eecd & !(EECD_CS | EECD_DI | EECD_REQ));
        busy
    }
    /// EEPROM through EERD, the iPXE way.
    pub fn eeprom_eerd_read(&mut self, addr: u16) -> u16 {
        self.wr(EERD, EERD_START | (u32::from(addr) << EERD_ADDR_SHIFT));
        for _ in 0..100 {
            let v = self.rd(EERD);
            if v & EERD_DONE != 0 {
                return (v >> 16) as u16;
            }
        }
        panic!("EERD never completed");
    }

    // ---- PHY ----
    pub fn mdic_read(&mut self, reg: u32) -> u16 {
        self.wr(
            MDIC,
            MDIC_OP_READ | (1 << MDIC_PHY_SHIFT) | (reg << MDIC_REG_SHIFT),
        );
        let v = self.rd(MDIC);
        assert_ne!(v & MDIC_READY, 0);
        assert_eq!(v & MDIC_ERROR, 0, "MDIC error reading PHY reg {reg}");
        v as u16
    }
    pub fn mdic_write(&mut self, reg: u32, val: u16) {
        self.wr(
            MDIC,
            MDIC_OP_WRITE | (1 << MDIC_PHY_SHIFT) | (reg << MDIC_REG_SHIFT) | u32::from(val),
        );
        assert_ne!(self.rd(MDIC) & MDIC_READY, 0);
    }

    /// The Linux e1000 probe: mask, stop, reset through the I/O BAR, EEPROM, PHY.
    pub fn linux_probe(&mut self) -> ProbeResult {
        self.enable_bus_master();
        self.wr(IMC, 0xFFFF_FFFF);
        self.wr(RCTL, 0);
        self.wr(TCTL, TCTL_PSP);
        let ctrl = self.rd(CTRL);
        self.io_wr(CTRL, ctrl | CTRL_RST);
        assert_eq!(self.rd(CTRL) & CTRL_RST, 0, "CTRL.RST self-clears");
        self.wr(IMC, 0xFFFF_FFFF);
        self.rd(ICR);
        let eeprom: Vec<u16> = (0..64).map(|a| self.eeprom_bitbang_read(a)).collect();
        let mut mac = [0u8; 6];
        for i in 0..3 {
            mac[2 * i..2 * i + 2].copy_from_slice(&eeprom[i].to_le_bytes());
        }
        self.wr(PBA, 0x30);
        let phy_id = (u32::from(self.mdic_read(2)) << 16) | u32::from(self.mdic_read(3));
        // M88 setup: PSCR, EPSCR, then a PHY reset through BMCR.
        self.mdic_write(0x10, 0x0068);
        self.mdic_write(0x14, 0x0D60);
        let bmcr = self.mdic_read(0);
        self.mdic_write(0, bmcr | 0x8000);
        self.mdic_write(4, 0x0DE1);
        self.mdic_write(9, 0x0E00);
        let bmcr = self.mdic_read(0);
        self.mdic_write(0, bmcr | 0x1200); // autoneg enable + restart
        let _ = self.mdic_read(1);
        let bmsr = self.mdic_read(1); // the second read is the real link state
        ProbeResult {
            eeprom,
            mac,
            phy_id,
            link_up: bmsr & 0x0004 != 0,
        }
    }

    /// The Linux open sequence: rings, receive and transmit control, interrupts on.
    pub fn linux_open(&mut self, tx_count: u32, rx_count: u32) {
        self.tx_count = tx_count;
        self.rx_count = rx_count;
        self.tx_tail = 0;
        self.tx_clean = 0;
        self.rx_next = 0;
        self.wr(TDBAL, TX_RING as u32);
        self.wr(TDBAH, 0);
        self.wr(TDLEN, tx_count * 16);
        self.wr(TDH, 0);
        self.wr(TDT, 0);
        self.wr(TIPG, 0x0060_2008);
        self.wr(TIDV, 8);
        self.wr(TADV, 32);
        self.wr(TCTL, TCTL_PSP | (0x0F << 4) | (0x40 << 12));
        self.wr(RCTL, RCTL_BAM); // BAM, SZ_2048, RDMTS half
        self.wr(RDTR, 0);
        self.wr(RADV, 8);
        self.wr(ITR, 195);
        self.wr(RDBAL, RX_RING as u32);
        self.wr(RDBAH, 0);
        self.wr(RDLEN, rx_count * 16);
        self.wr(RDH, 0);
        self.wr(RDT, 0);
        self.wr(RXCSUM, RXCSUM_TUOFLD);
        // e1000_set_rx_mode: the multicast table, undefined after reset, cleared.
        for i in 0..MTA_WORDS {
            self.wr(MTA + 4 * i, 0);
        }
        self.post_rx_buffers();
        let rctl = self.rd(RCTL);
        self.wr(RCTL, rctl | RCTL_EN);
        self.wr(RDT, rx_count - 1);
        self.wr(IMS, 0x9D);
        self.wr(ICS, ICR_LSC);
        // The watchdog sees link up and enables the transmitter.
        let _ = self.mdic_read(1);
        let _ = self.mdic_read(1);
        let tctl = self.rd(TCTL);
        self.wr(TCTL, tctl | TCTL_EN);
    }

    /// Fill every RX descriptor with a fresh buffer address and clear its status.
    pub fn post_rx_buffers(&mut self) {
        for i in 0..self.rx_count {
            self.write_rx_desc(i);
        }
    }

    fn write_rx_desc(&mut self, i: u32) {
        let mut d = [0u8; 16];
        d[..8].copy_from_slice(&(RX_BUFS + u64::from(i) * RX_SLOT).to_le_bytes());
        self.bus
            .ram()
            .write(RX_RING + u64::from(i) * 16, &d)
            .unwrap();
    }

    // ---- transmit ----
    /// Post a legacy descriptor per buffer; the last has EOP; every one has RS.
    pub fn send_legacy(&mut self, bufs: &[&[u8]], cmd_extra: u8, special: u16) {
        for (k, b) in bufs.iter().enumerate() {
            let slot = self.tx_tail;
            let addr = TX_BUFS + u64::from(slot % 64) * TX_SLOT;
            self.bus.ram().write(addr, b).unwrap();
            let mut cmd = TXD_IFCS | TXD_RS | cmd_extra;
            if k + 1 == bufs.len() {
                cmd |= TXD_EOP;
            }
            self.write_tx_desc(addr, b.len() as u16, cmd, special);
        }
        self.wr(TDT, self.tx_tail);
    }

    /// Send one frame in one legacy descriptor.
    pub fn send(&mut self, frame: &[u8]) {
        self.send_legacy(&[frame], 0, 0);
    }

    /// Write a raw legacy descriptor at the tail and advance the tail (no TDT write).
    pub fn write_tx_desc(&mut self, addr: u64, len: u16, cmd: u8, special: u16) {
        let mut d = [0u8; 16];
        d[..8].copy_from_slice(&addr.to_le_bytes());
        d[8..10].copy_from_slice(&len.to_le_bytes());
        d[11] = cmd;
        d[14..16].copy_from_slice(&special.to_le_bytes());
        self.write_raw_tx_desc(&d);
    }

    /// Write 16 raw bytes as the descriptor at the tail and advance the tail.
    pub fn write_raw_tx_desc(&mut self, d: &[u8; 16]) {
        let at = TX_RING + u64::from(self.tx_tail) * 16;
        self.bus.ram().write(at, d).unwrap();
        self.tx_tail = (self.tx_tail + 1) % self.tx_count;
    }

    /// Status byte of TX descriptor `i`.
    pub fn tx_status(&self, i: u32) -> u8 {
        let mut b = [0u8; 1];
        self.bus
            .ram()
            .read(TX_RING + u64::from(i) * 16 + 12, &mut b)
            .unwrap();
        b[0]
    }

    // ---- receive ----
    /// Collect the next received frame (following descriptors to EOP), give the
    /// descriptors back and advance RDT. Returns the frame, its status and special.
    pub fn recv_full(&mut self) -> Option<(Vec<u8>, u8, u8, u16)> {
        let mut frame = Vec::new();
        let mut idx = self.rx_next;
        let mut used = Vec::new();
        loop {
            let at = RX_RING + u64::from(idx) * 16;
            let mut d = [0u8; 16];
            self.bus.ram().read(at, &mut d).unwrap();
            let status = d[12];
            if status & RXD_DD == 0 {
                return None;
            }
            let len = usize::from(u16::from_le_bytes([d[8], d[9]]));
            let addr = u64::from_le_bytes(d[..8].try_into().unwrap());
            let mut chunk = vec![0u8; len];
            self.bus.ram().read(addr, &mut chunk).unwrap();
            frame.extend_from_slice(&chunk);
            used.push(idx);
            idx = (idx + 1) % self.rx_count;
            if status & RXD_EOP != 0 {
                let errors = d[13];
                let special = u16::from_le_bytes([d[14], d[15]]);
                for i in used {
                    self.write_rx_desc(i);
                    self.wr(RDT, i);
                }
                self.rx_next = idx;
                return Some((frame, status, errors, special));
            }
            if used.len() > self.rx_count as usize {
                panic!("no EOP in the whole ring");
            }
        }
    }

    /// The next received frame without its FCS (when SECRC is off the device appends 4).
    pub fn recv(&mut self) -> Option<Vec<u8>> {
        let secrc = self.rd(RCTL) & RCTL_SECRC != 0;
        self.recv_full().map(|(mut f, ..)| {
            if !secrc {
                assert!(f.len() >= 4);
                f.truncate(f.len() - 4);
            }
            f
        })
    }

    /// Advance virtual time and let the device fire due timers and poll its backend.
    pub fn advance_us(&mut self, us: u64) {
        self.clock.advance_ns(us * 1000);
        self.bus.poll();
    }
}

/// An Ethernet frame from `src` to `dst` with `payload_len` bytes of a counting pattern.
pub fn frame(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload_len: usize, seed: u8) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload_len);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend((0..payload_len).map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed)));
    f
}

pub const PEER: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];

/// Whether a test that needs `what` (root, QEMU, ...) can run. When it cannot, it prints
/// `SKIP: <test>: <reason>`, appends `<test>: <reason>` to the file named by
/// `NIC_EMU_SKIP_FILE` (scripts/test.sh sets it and lists the skips at the end, since
/// the test itself reports ok) and returns false, unless `NIC_EMU_NO_SKIP=1` is set (CI
/// sets it, since CI runs as root with everything provisioned): then the test fails
/// instead. Every skip in the test tree goes through here.
pub fn can_run(test: &str, ok: bool, reason: &str) -> bool {
    if ok {
        return true;
    }
    if std::env::var("NIC_EMU_NO_SKIP").is_ok_and(|v| v == "1") {
        panic!("{test}: would be skipped ({reason}) but NIC_EMU_NO_SKIP=1");
    }
    eprintln!("SKIP: {test}: {reason}");
    if let Some(path) = std::env::var_os("NIC_EMU_SKIP_FILE") {
        use std::io::Write;
        // One short append per line: lines from test binaries running at once stay whole.
        let line = format!("{test}: {reason}\n");
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        // A skip that cannot be recorded would pass unseen: fail instead.
        if let Err(e) = written {
            panic!("{test}: skipped ({reason}) but cannot record it in {path:?}: {e}");
        }
    }
    false
}

/// True when running as root (uid 0).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// Run `f` on its own thread; fail if it panics or takes longer than `secs`.
pub fn watchdog<F: FnOnce() + Send + 'static>(secs: u64, f: F) {
    use std::sync::mpsc;
    let (tx, rx) = mpsc::channel();
    let h = std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    match rx.recv_timeout(std::time::Duration::from_secs(secs)) {
        Ok(()) => h.join().expect("no panic"),
        Err(mpsc::RecvTimeoutError::Disconnected) => h.join().expect("the case panicked"),
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("hang: still running after {secs} s"),
    }
}

/// Log lines to a test's own logger: the `log` crate has one logger per process and the
/// tests of a crate share the process, so the process logger hands each record to the
/// logger the thread that logged it chose here (records of other threads go nowhere).
/// The guard keeps the tests that set the maximum level from running at once.
pub fn log_to(logger: &'static dyn log::Log) -> std::sync::MutexGuard<'static, ()> {
    static LEVEL: Mutex<()> = Mutex::new(());
    static INSTALL: std::sync::Once = std::sync::Once::new();
    let guard = LEVEL.lock().unwrap_or_else(|e| e.into_inner());
    INSTALL.call_once(|| log::set_logger(&PerThread).expect("logger"));
    THREAD_LOGGER.with(|l| l.set(Some(logger)));
    guard
}

thread_local! {
    static THREAD_LOGGER: std::cell::Cell<Option<&'static dyn log::Log>> =
        const { std::cell::Cell::new(None) };
}

struct PerThread;

impl log::Log for PerThread {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        THREAD_LOGGER.with(|l| l.get().is_some_and(|l| l.enabled(m)))
    }
    fn log(&self, r: &log::Record<'_>) {
        if let Some(l) = THREAD_LOGGER.with(|l| l.get()) {
            l.log(r);
        }
    }
    fn flush(&self) {}
}
