//! What the wrappers add per frame: one 64-byte frame sent and received back through a
//! [`Loopback`], bare and wrapped in an idle pcap recorder (nic-emu-cli always has one),
//! a recording one (writing to `/dev/null`) and an impairment that impairs nothing.
//!
//! The ratio wrapped / bare is the figure that travels between machines.
//!
//! Run: `cargo bench --bench wrappers`

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use nic_emu::backend::{
    Impair, ImpairSpec, Loopback, PacketBackend, PcapRecorder, RecordLimits, MAX_FRAME,
};

/// Frames per measured batch.
const BATCH: u64 = 256;

fn run(b: &mut dyn PacketBackend, frame: &[u8], buf: &mut [u8]) {
    for _ in 0..BATCH {
        b.send(frame).expect("send");
        let got = b.recv(buf).expect("recv");
        assert_eq!(got, Some(frame.len()));
        b.rx_outcome(nic_emu::backend::RxOutcome::Delivered);
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("wrappers");
    group.throughput(Throughput::Elements(BATCH));
    group.measurement_time(Duration::from_secs(3));
    let frame = vec![0x5au8; 64];
    let mut buf = vec![0u8; MAX_FRAME];

    let mut bare = Loopback::new();
    group.bench_function("bare", |b| b.iter(|| run(&mut bare, &frame, &mut buf)));

    let mut idle = PcapRecorder::idle(Loopback::new());
    group.bench_function("recorder_idle", |b| {
        b.iter(|| run(&mut idle, &frame, &mut buf))
    });

    let mut recording = PcapRecorder::create(Loopback::new(), "/dev/null", RecordLimits::default())
        .expect("/dev/null");
    group.bench_function("recorder_recording", |b| {
        b.iter(|| run(&mut recording, &frame, &mut buf))
    });

    let mut impair = Impair::new(Loopback::new(), ImpairSpec::default());
    group.bench_function("impair_nothing", |b| {
        b.iter(|| run(&mut impair, &frame, &mut buf))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
