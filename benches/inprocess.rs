//! In-process throughput: the device on the fake PCI bus, driven the way the Linux driver
//! drives it (descriptor rings in guest RAM, tail-pointer writes), with no frontend cost.
//!
//! Reports packets/s and bits/s per core for TX and RX of 64-byte and 1514-byte frames,
//! next to a baseline measured in the same run: copying the same bytes out of guest memory
//! into a buffer, the least any emulator has to do per frame. The ratio device / baseline
//! is the figure that travels between machines.
//!
//! Run: `cargo bench --bench inprocess`

#[path = "../tests/support/mod.rs"]
pub mod support;

use std::io;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use nic_emu::backend::PacketBackend;
use nic_emu::device::regs::*;
use support::*;

/// Frames per measured batch (one TDT or RDT write moves this many descriptors).
const BATCH: u32 = 256;
const RING: u32 = 4096;

/// A backend that counts what it is sent and always has a frame to give.
struct Source {
    frame: Vec<u8>,
    sent: u64,
}

impl PacketBackend for Source {
    fn name(&self) -> String {
        "bench-source".into()
    }
    fn send(&mut self, frame: &[u8]) -> io::Result<bool> {
        self.sent += frame.len() as u64;
        Ok(true)
    }
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let n = self.frame.len();
        buf[..n].copy_from_slice(&self.frame);
        Ok(Some(n))
    }
}

fn guest(len: usize, rx: bool) -> FakeGuest {
    let f = frame(MAC, PEER, 0x0800, len - 14, 1);
    let src = if rx { f } else { Vec::new() };
    let mut g = FakeGuest::new(Box::new(Source {
        frame: src,
        sent: 0,
    }));
    g.linux_probe();
    g.linux_open(RING, if rx { RING } else { 8 });
    g.wr(IMC, 0xFFFF_FFFF); // NAPI-style: no interrupt work in the loop
    g.wr(RDTR, 0);
    if rx {
        // 4096 descriptors over 256 buffers of 2 KiB (RAM is 16 MiB).
        for i in 0..u64::from(RING) {
            let addr = RX_BUFS + (i % 256) * 2048;
            g.bus
                .ram()
                .write(RX_RING + i * 16, &addr.to_le_bytes())
                .unwrap();
        }
    } else {
        // Every TX descriptor points at one frame; the driver only moves the tail.
        let addr = TX_BUFS;
        g.bus
            .ram()
            .write(addr, &frame(PEER, MAC, 0x0800, len - 14, 2))
            .unwrap();
        for _ in 0..RING {
            g.write_tx_desc(addr, len as u16, TXD_EOP | TXD_IFCS | TXD_RS, 0);
        }
    }
    g
}

fn tx(c: &mut Criterion) {
    let mut group = c.benchmark_group("tx");
    for len in [64usize, 1514] {
        let frame_len = len - 4; // 64 and 1518 on the wire with FCS
        group.throughput(Throughput::Elements(u64::from(BATCH)));
        group.bench_with_input(BenchmarkId::new("device", len), &frame_len, |b, &fl| {
            let mut g = guest(fl, false);
            let mut tail = 0u32;
            b.iter(|| {
                tail = (tail + BATCH) % RING;
                g.wr(TDT, tail);
            });
            assert!(g.bus.device().metrics().tx_frames > 0);
        });
        group.bench_with_input(
            BenchmarkId::new("baseline-copy", len),
            &frame_len,
            |b, &fl| {
                let g = guest(fl, false);
                let mut buf = vec![0u8; fl];
                b.iter(|| {
                    for _ in 0..BATCH {
                        g.bus.ram().read(TX_BUFS, &mut buf).unwrap();
                        std::hint::black_box(&buf);
                    }
                });
            },
        );
    }
    group.finish();
}

fn rx(c: &mut Criterion) {
    let mut group = c.benchmark_group("rx");
    for len in [64usize, 1514] {
        let frame_len = len - 4;
        group.throughput(Throughput::Elements(u64::from(BATCH)));
        group.bench_with_input(BenchmarkId::new("device", len), &frame_len, |b, &fl| {
            let mut g = guest(fl, true);
            // Start with no free descriptor: each iteration hands exactly BATCH over.
            let mut tail = g.rd(RDH);
            g.wr(RDT, tail);
            b.iter(|| {
                // The driver hands BATCH descriptors back; the device fills them at once.
                tail = (tail + BATCH) % RING;
                g.wr(RDT, tail);
            });
            let m = g.bus.device().metrics();
            assert!(
                m.rx_frames > 0 && m.dma_errors == 0 && m.rx_dropped == 0,
                "{m:?}"
            );
        });
        group.bench_with_input(
            BenchmarkId::new("baseline-copy", len),
            &frame_len,
            |b, &fl| {
                let g = guest(fl, true);
                let buf = vec![0x5Au8; fl];
                b.iter(|| {
                    for i in 0..u64::from(BATCH) {
                        g.bus.ram().write(RX_BUFS + (i % 256) * 2048, &buf).unwrap();
                    }
                });
            },
        );
    }
    group.finish();
}

/// A logger that formats what it is given and throws it away: the cost of a trace that is
/// on, without the cost of a terminal.
struct Sink(std::sync::atomic::AtomicBool);

impl log::Log for Sink {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Info
            || self.0.load(std::sync::atomic::Ordering::Relaxed)
                && (m.target() == "nic_emu::regs" || m.target() == "nic_emu::frames")
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            std::hint::black_box(r.args().to_string());
        }
    }
    fn flush(&self) {}
}

static SINK: Sink = Sink(std::sync::atomic::AtomicBool::new(false));

/// The register and descriptor traces (src/device/trace.rs): TX of 64-byte frames with a
/// logger at info, as nic-emu-cli runs by default (`off`: each hook asks the log crate
/// and does nothing), and with `--trace regs,frames` into a sink (`on`), between two
/// runs of the same work with logging off altogether (`no-logger`, `no-logger-again`:
/// the number before the traces existed, measured twice to show the noise). `off` must
/// be within that noise.
fn trace(c: &mut Criterion) {
    let _ = log::set_logger(&SINK);
    let mut group = c.benchmark_group("trace");
    group.throughput(Throughput::Elements(u64::from(BATCH)));
    for (name, level) in [
        ("no-logger", log::LevelFilter::Off),
        ("off", log::LevelFilter::Info),
        ("no-logger-again", log::LevelFilter::Off),
        ("on", log::LevelFilter::Trace),
    ] {
        group.bench_function(BenchmarkId::new(name, 64), |b| {
            SINK.0.store(
                level == log::LevelFilter::Trace,
                std::sync::atomic::Ordering::Relaxed,
            );
            log::set_max_level(level);
            let mut g = guest(60, false);
            let mut tail = 0u32;
            b.iter(|| {
                tail = (tail + BATCH) % RING;
                g.wr(TDT, tail);
            });
            assert!(g.bus.device().metrics().tx_frames > 0);
        });
    }
    log::set_max_level(log::LevelFilter::Off);
    group.finish();
}

criterion_group!(benches, tx, rx, trace);
criterion_main!(benches);
