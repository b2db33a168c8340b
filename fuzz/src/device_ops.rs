//! The `device_ops` target: a guest and a wire driving one e1000 on the in-process bus.
//!
//! An input is a list of [`Op`]s in a small byte encoding ([`decode`] / [`encode`]), so
//! seeds can be written from driver models ([`seeds`]) and a crash reads as a driver
//! sequence. After every operation the harness checks:
//!
//! * **DMA stays where the guest pointed it.** Guest RAM starts filled with a guard
//!   pattern; every byte the device changes must lie in the transmit ring, the receive
//!   ring, or a receive buffer named by a descriptor of the receive ring (before or after
//!   the operation).
//! * **Frames add up.** Frames injected = `rx_frames + rx_filtered + rx_dropped` + the
//!   frame held for lack of descriptors + frames still on the wire; frames on the wire
//!   from the guest = `tx_frames` (the wire takes every frame).
//!
//! Hangs are libFuzzer's `-timeout`.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex, OnceLock};

use nic_emu::backend::PacketBackend;
use nic_emu::device::regs::*;
use nic_emu::frontend::fake_bus::{FakeBusConfig, FakePciBus};
use nic_emu::{Bar, Clock, DeviceConfig, MacAddress, ManualClock};

/// The device's MAC.
pub const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0xAB, 0xCD, 0x01];
/// Bytes of guest RAM, at guest address 0.
pub const RAM_SIZE: usize = 0x1_0000;
/// Seed layout (the fuzzer may move everything).
pub const TX_RING: u64 = 0x1000;
/// Receive ring of the seeds.
pub const RX_RING: u64 = 0x2000;
/// Transmit buffers of the seeds (8 slots of 2 KiB).
pub const TX_BUFS: u64 = 0x4000;
/// Receive buffers of the seeds (16 slots of 2 KiB).
pub const RX_BUFS: u64 = 0x8000;
/// Slot size of both.
pub const SLOT: u64 = 0x800;

/// Registers `Op::Reg*` name by index.
pub const REGS: &[u32] = &[
    CTRL, STATUS, EECD, EERD, CTRL_EXT, MDIC, VET, ICR, ITR, ICS, IMS, IMC, RCTL, TCTL, TIPG, PBA,
    FCRTL, RDBAL, RDBAH, RDLEN, RDH, RDT, RDTR, RXDCTL, RADV, TDBAL, TDBAH, TDLEN, TDH, TDT, TIDV,
    TXDCTL, TADV, RXCSUM, MTA, VFTA, 0x5400, 0x5404, WUC, MANC,
];

/// One step of a guest, the wire, or time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Configuration read of `len` (0..=8) bytes.
    ConfigRead { off: u16, len: u8 },
    /// Configuration write.
    ConfigWrite { off: u16, len: u8, val: u64 },
    /// BAR read (BAR-relative, any offset, 0..=16 bytes).
    BarRead { io: bool, off: u32, len: u8 },
    /// BAR write; bytes beyond 8 repeat `val`.
    BarWrite {
        io: bool,
        off: u32,
        len: u8,
        val: u64,
    },
    /// 32-bit write to `REGS[reg % REGS.len()]`.
    RegWrite { reg: u8, val: u32 },
    /// 32-bit read of `REGS[reg % REGS.len()]`.
    RegRead { reg: u8 },
    /// The guest writes RAM at `addr % RAM_SIZE` (clipped to RAM).
    RamWrite { addr: u32, data: Vec<u8> },
    /// The guest writes 16 bytes as transmit descriptor `idx` of the ring TDBA/TDLEN name.
    TxDesc { idx: u16, desc: [u8; 16] },
    /// The guest writes receive descriptor `idx` (buffer address, status cleared).
    RxDesc { idx: u16, buf: u64 },
    /// The wire offers a frame; `dst` 0: to the device's MAC, 1: broadcast,
    /// 2: multicast, else as given.
    Inject { dst: u8, frame: Vec<u8> },
    /// Virtual time moves `us` microseconds, then a service step.
    Advance { us: u32 },
    /// A service step.
    Service,
    /// The cable is plugged or pulled.
    SetLink { up: bool },
    /// Power-on reset (what a vfio-user device reset does).
    Reset,
}

/// Reads fixed-width little-endian fields; runs out as zeroes.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
    fn u8(&mut self) -> u8 {
        self.bytes(1).first().copied().unwrap_or(0)
    }
    fn le<const N: usize>(&mut self) -> [u8; N] {
        let mut b = [0u8; N];
        let s = self.bytes(N);
        b[..s.len()].copy_from_slice(s);
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.le())
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.le())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.le())
    }
    fn vec(&mut self, max: usize) -> Vec<u8> {
        let n = usize::from(self.u16()).min(max);
        self.bytes(n).to_vec()
    }
}

/// Largest payload of one `RamWrite` or `Inject`.
const MAX_DATA: usize = 16384;

/// The operations `data` encodes (a trailing partial operation is read with zeroes).
pub fn decode(data: &[u8]) -> Vec<Op> {
    let mut r = Reader(data);
    let mut ops = Vec::new();
    while !r.0.is_empty() {
        let op = match r.u8() % 14 {
            0 => Op::ConfigRead {
                off: r.u16(),
                len: r.u8(),
            },
            1 => Op::ConfigWrite {
                off: r.u16(),
                len: r.u8(),
                val: r.u64(),
            },
            2 => Op::BarRead {
                io: r.u8() & 1 != 0,
                off: r.u32(),
                len: r.u8(),
            },
            3 => Op::BarWrite {
                io: r.u8() & 1 != 0,
                off: r.u32(),
                len: r.u8(),
                val: r.u64(),
            },
            4 => Op::RegWrite {
                reg: r.u8(),
                val: r.u32(),
            },
            5 => Op::RegRead { reg: r.u8() },
            6 => Op::RamWrite {
                addr: r.u32(),
                data: r.vec(MAX_DATA),
            },
            7 => Op::TxDesc {
                idx: r.u16(),
                desc: r.le(),
            },
            8 => Op::RxDesc {
                idx: r.u16(),
                buf: r.u64(),
            },
            9 => Op::Inject {
                dst: r.u8(),
                frame: r.vec(MAX_DATA),
            },
            10 => Op::Advance { us: r.u32() },
            11 => Op::Service,
            12 => Op::SetLink {
                up: r.u8() & 1 != 0,
            },
            _ => Op::Reset,
        };
        ops.push(op);
    }
    ops
}

/// The bytes [`decode`] reads back as `ops`.
pub fn encode(ops: &[Op]) -> Vec<u8> {
    let mut o = Vec::new();
    let vec = |o: &mut Vec<u8>, d: &[u8]| {
        let n = d.len().min(MAX_DATA);
        o.extend_from_slice(&(n as u16).to_le_bytes());
        o.extend_from_slice(&d[..n]);
    };
    for op in ops {
        match op {
            Op::ConfigRead { off, len } => {
                o.push(0);
                o.extend_from_slice(&off.to_le_bytes());
                o.push(*len);
            }
            Op::ConfigWrite { off, len, val } => {
                o.push(1);
                o.extend_from_slice(&off.to_le_bytes());
                o.push(*len);
                o.extend_from_slice(&val.to_le_bytes());
            }
            Op::BarRead { io, off, len } => {
                o.push(2);
                o.push(u8::from(*io));
                o.extend_from_slice(&off.to_le_bytes());
                o.push(*len);
            }
            Op::BarWrite { io, off, len, val } => {
                o.push(3);
                o.push(u8::from(*io));
                o.extend_from_slice(&off.to_le_bytes());
                o.push(*len);
                o.extend_from_slice(&val.to_le_bytes());
            }
            Op::RegWrite { reg, val } => {
                o.push(4);
                o.push(*reg);
                o.extend_from_slice(&val.to_le_bytes());
            }
            Op::RegRead { reg } => {
                o.push(5);
                o.push(*reg);
            }
            Op::RamWrite { addr, data } => {
                o.push(6);
                o.extend_from_slice(&addr.to_le_bytes());
                vec(&mut o, data);
            }
            Op::TxDesc { idx, desc } => {
                o.push(7);
                o.extend_from_slice(&idx.to_le_bytes());
                o.extend_from_slice(desc);
            }
            Op::RxDesc { idx, buf } => {
                o.push(8);
                o.extend_from_slice(&idx.to_le_bytes());
                o.extend_from_slice(&buf.to_le_bytes());
            }
            Op::Inject { dst, frame } => {
                o.push(9);
                o.push(*dst);
                vec(&mut o, frame);
            }
            Op::Advance { us } => {
                o.push(10);
                o.extend_from_slice(&us.to_le_bytes());
            }
            Op::Service => o.push(11),
            Op::SetLink { up } => {
                o.push(12);
                o.push(u8::from(*up));
            }
            Op::Reset => o.push(13),
        }
    }
    o
}

/// Index of a register in [`REGS`].
pub fn reg_index(reg: u32) -> u8 {
    REGS.iter()
        .position(|&r| r == reg)
        .expect("register in REGS") as u8
}

#[derive(Default)]
struct WireState {
    to_guest: VecDeque<Vec<u8>>,
    sent: u64,
}

/// A backend the harness controls (like `tests/support`'s `TestWire`).
#[derive(Clone, Default)]
struct Wire(Arc<Mutex<WireState>>);

impl PacketBackend for Wire {
    fn name(&self) -> String {
        "fuzz-wire".into()
    }
    fn send(&mut self, _frame: &[u8]) -> io::Result<bool> {
        self.0.lock().unwrap().sent += 1;
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

fn guard_byte(i: usize) -> u8 {
    (i as u8).wrapping_mul(31).wrapping_add(0xA5)
}

/// Where the device may write: the rings and the receive buffers they name.
struct Allowed(Vec<(u64, u64)>);

impl Allowed {
    /// The two rings and the receive buffers the receive ring's descriptors in `ram` name.
    fn add(&mut self, [tx, rx]: [(u64, u64); 2], ram: &[u8]) {
        for (base, len) in [tx, rx] {
            let base = base & !0xF;
            self.0.push((base, base.saturating_add(len)));
        }
        let (base, len) = rx;
        let base = base & !0xF;
        let mut at = base;
        while at < base.saturating_add(len) && at.saturating_add(8) <= RAM_SIZE as u64 {
            let i = at as usize;
            let buf = u64::from_le_bytes(ram[i..i + 8].try_into().unwrap());
            // A buffer that starts beyond RAM allows nothing in it: leave it out (a ring
            // of guard bytes names thousands of those, and they were most of the sort).
            if buf < RAM_SIZE as u64 {
                self.0.push((buf, buf.saturating_add(16384)));
            }
            at += 16;
        }
    }

    /// Sort and merge, for [`contains`](Self::contains).
    fn merge(&mut self) {
        self.0.retain(|&(s, e)| s < e);
        self.0.sort_unstable();
        let mut out: Vec<(u64, u64)> = Vec::with_capacity(self.0.len());
        for &(s, e) in &self.0 {
            match out.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => out.push((s, e)),
            }
        }
        self.0 = out;
    }

    /// Whether `a` is inside a range (after [`merge`](Self::merge)).
    fn contains(&self, a: u64) -> bool {
        let i = self.0.partition_point(|&(s, _)| s <= a);
        i > 0 && a < self.0[i - 1].1
    }
}

/// The harness state for one input.
pub struct Harness {
    bus: FakePciBus,
    clock: ManualClock,
    wire: Wire,
    shadow: Vec<u8>,
    scratch: Vec<u8>,
    injected: u64,
}

fn ring(bus: &mut FakePciBus, bal: u32, bah: u32, len: u32) -> (u64, u64) {
    let d = bus.device();
    let base = (u64::from(d.read_reg(bah)) << 32) | u64::from(d.read_reg(bal));
    (base, u64::from(d.read_reg(len)))
}

impl Harness {
    /// A fresh bus with guard-filled RAM.
    pub fn new() -> Self {
        let clock = ManualClock::new();
        let wire = Wire::default();
        let cfg = FakeBusConfig {
            ram_size: RAM_SIZE,
            device: DeviceConfig {
                mac: MacAddress::new(MAC),
                link_up: true,
                ..DeviceConfig::default()
            },
            ..FakeBusConfig::default()
        };
        let bus = FakePciBus::new(
            cfg,
            Box::new(wire.clone()),
            Arc::new(clock.clone()) as Arc<dyn Clock>,
        )
        .expect("guest RAM");
        // Computed once (it was a few per cent of each input).
        static GUARD: OnceLock<Vec<u8>> = OnceLock::new();
        let shadow = GUARD
            .get_or_init(|| (0..RAM_SIZE).map(guard_byte).collect())
            .clone();
        bus.ram().write(0, &shadow).unwrap();
        Self {
            bus,
            clock,
            wire,
            shadow,
            scratch: Vec::new(),
            injected: 0,
        }
    }

    /// The rings as the registers name them now.
    fn rings(&mut self) -> [(u64, u64); 2] {
        [
            ring(&mut self.bus, TDBAL, TDBAH, TDLEN),
            ring(&mut self.bus, RDBAL, RDBAH, RDLEN),
        ]
    }

    /// Guest RAM as it is now. The device writes it only inside our calls on this
    /// thread, so a plain slice is a consistent view between them.
    fn ram_now(&self) -> &[u8] {
        let host = self.bus.ram().host_mappings().next().expect("RAM");
        assert!(host.size() >= RAM_SIZE);
        // SAFETY: the mapping is RAM_SIZE readable bytes, alive as long as the bus (which
        // `self` owns); nothing writes it while the slice is used (see above).
        unsafe { std::slice::from_raw_parts(host.as_ptr(), RAM_SIZE) }
    }

    /// Run one device operation (`f`) and check what it wrote and counted. After a
    /// read (`read_only`) the RAM comparison waits for the next write or service step,
    /// which then checks any change against the rings as they were around it: reads
    /// are most of a driver's accesses, and the comparison is most of the cost.
    fn device_op(&mut self, op: &Op, f: impl FnOnce(&mut Self)) {
        let read_only = matches!(
            op,
            Op::ConfigRead { .. } | Op::BarRead { .. } | Op::RegRead { .. }
        );
        let rings_before = if read_only { [(0, 0); 2] } else { self.rings() };
        f(self);
        if !read_only && self.ram_now() != &self.shadow[..] {
            let mut now = std::mem::take(&mut self.scratch);
            now.clear();
            now.extend_from_slice(self.ram_now());
            let mut allowed = Allowed(Vec::new());
            allowed.add(rings_before, &self.shadow);
            let rings_after = self.rings();
            allowed.add(rings_after, &now);
            allowed.merge();
            // Compare in blocks (memcmp), then byte by byte only inside changed blocks.
            const BLOCK: usize = 256;
            for (k, (a, b)) in self.shadow.chunks(BLOCK).zip(now.chunks(BLOCK)).enumerate() {
                if a == b {
                    continue;
                }
                for (j, (x, y)) in a.iter().zip(b).enumerate() {
                    let i = k * BLOCK + j;
                    assert!(
                        x == y || allowed.contains(i as u64),
                        "{op:?}: the device wrote guest RAM at {i:#x} ({x:#04x} -> {y:#04x}), \
                         outside the rings and the receive buffers the guest named: {:x?}",
                        allowed.0
                    );
                }
            }
            std::mem::swap(&mut self.shadow, &mut now);
            self.scratch = now;
        }
        self.check_counters(op);
    }

    fn check_counters(&mut self, op: &Op) {
        let d = self.bus.device();
        let m = d.metrics();
        let held = u64::from(d.rx_frame_held());
        let w = self.wire.0.lock().unwrap();
        let pending = w.to_guest.len() as u64;
        // Frames the card looped back to itself (PHY or MAC loopback) reach the receive
        // path too, and end as delivered, filtered or dropped like the wire's.
        assert_eq!(
            self.injected + m.tx_looped,
            m.rx_frames + m.rx_filtered + m.rx_dropped + held + pending,
            "after {op:?}: frames injected + looped != delivered + filtered + dropped + \
             held + pending ({m:?}, held {held}, pending {pending})"
        );
        assert_eq!(
            w.sent, m.tx_frames,
            "after {op:?}: frames on the wire != tx_frames"
        );
    }

    /// A guest RAM write by the guest itself (not checked; the shadow follows).
    fn guest_write(&mut self, addr: u64, data: &[u8]) {
        let Some(start) = usize::try_from(addr).ok().filter(|&a| a < RAM_SIZE) else {
            return;
        };
        let n = data.len().min(RAM_SIZE - start);
        self.bus.ram().write(addr, &data[..n]).unwrap();
        self.shadow[start..start + n].copy_from_slice(&data[..n]);
    }

    /// Run one operation with its checks.
    pub fn run(&mut self, op: &Op) {
        match op {
            Op::ConfigRead { off, len } => {
                let mut b = vec![0u8; usize::from(len % 9)];
                self.device_op(op, |h| h.bus.device().config_read(u64::from(*off), &mut b));
            }
            Op::ConfigWrite { off, len, val } => {
                let b = &val.to_le_bytes()[..usize::from(len % 9)];
                self.device_op(op, |h| {
                    h.bus.device().config_write(u64::from(*off), b);
                });
            }
            Op::BarRead { io, off, len } => {
                let mut b = vec![0u8; usize::from(len % 17)];
                let bar = if *io { Bar::Io } else { Bar::Mmio };
                self.device_op(op, |h| {
                    h.bus.device().bar_read(bar, u64::from(*off), &mut b)
                });
            }
            Op::BarWrite { io, off, len, val } => {
                let v = val.to_le_bytes();
                let b: Vec<u8> = (0..usize::from(len % 17)).map(|i| v[i % 8]).collect();
                let bar = if *io { Bar::Io } else { Bar::Mmio };
                self.device_op(op, |h| {
                    h.bus.device().bar_write(bar, u64::from(*off), &b);
                });
            }
            Op::RegWrite { reg, val } => {
                let r = REGS[usize::from(*reg) % REGS.len()];
                self.device_op(op, |h| {
                    h.bus
                        .device()
                        .bar_write(Bar::Mmio, u64::from(r), &val.to_le_bytes());
                });
            }
            Op::RegRead { reg } => {
                let r = REGS[usize::from(*reg) % REGS.len()];
                let mut b = [0u8; 4];
                self.device_op(op, |h| {
                    h.bus.device().bar_read(Bar::Mmio, u64::from(r), &mut b)
                });
            }
            Op::RamWrite { addr, data } => {
                self.guest_write(u64::from(*addr) % RAM_SIZE as u64, data);
            }
            Op::TxDesc { idx, desc } => {
                let (base, len) = ring(&mut self.bus, TDBAL, TDBAH, TDLEN);
                let n = (len / 16).max(1);
                let at = (base & !0xF).wrapping_add(u64::from(*idx) % n * 16);
                self.guest_write(at, desc);
            }
            Op::RxDesc { idx, buf } => {
                let (base, len) = ring(&mut self.bus, RDBAL, RDBAH, RDLEN);
                let n = (len / 16).max(1);
                let at = (base & !0xF).wrapping_add(u64::from(*idx) % n * 16);
                let mut d = [0u8; 16];
                d[..8].copy_from_slice(&buf.to_le_bytes());
                self.guest_write(at, &d);
            }
            Op::Inject { dst, frame } => {
                let mut f = frame.clone();
                let d: Option<[u8; 6]> = match dst {
                    0 => Some(MAC),
                    1 => Some([0xFF; 6]),
                    2 => Some([0x01, 0x00, 0x5E, 0x00, 0x00, 0x01]),
                    _ => None,
                };
                if let Some(d) = d {
                    if f.len() < 14 {
                        f.resize(14, 0);
                    }
                    f[..6].copy_from_slice(&d);
                }
                self.injected += 1;
                self.wire.0.lock().unwrap().to_guest.push_back(f);
                self.check_counters(op);
            }
            Op::Advance { us } => {
                self.clock.advance_ns(u64::from(*us) * 1000);
                self.device_op(op, |h| {
                    h.bus.device().service();
                });
            }
            Op::Service => self.device_op(op, |h| {
                h.bus.device().service();
            }),
            Op::SetLink { up } => self.device_op(op, |h| h.bus.device().set_link(*up)),
            Op::Reset => self.device_op(op, |h| h.bus.device().power_on_reset()),
        }
    }
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

/// Run a whole input.
pub fn run(data: &[u8]) {
    let ops = decode(data);
    let mut h = Harness::new();
    for op in &ops {
        h.run(op);
    }
    // A last look at RAM (the last operations may have been reads).
    h.run(&Op::Service);
}

pub mod seeds;
