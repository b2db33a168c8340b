//! UDP tunnel batching: the cost of a burst of 32 frames through the tunnel, one system
//! call per frame (batch 1) against one per 32 (`recvmmsg`, `sendmmsg`).
//!
//! - `udp_rx`: a plain socket sends 32 frames to the tunnel (not timed), then the
//!   tunnel's `recv` is called until it has returned all 32 and said "nothing more"
//!   (timed).
//! - `udp_tx`: the tunnel sends 32 frames inside one burst, as the device does for one
//!   doorbell (`begin_burst`, 32 `send`s, `end_burst`: timed), then a plain socket
//!   drains them (not timed).
//!
//! The ratio batch 32 / batch 1 is the figure that travels.
//!
//! Run: `cargo bench --bench udp_batch`

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use nic_emu::backend::{PacketBackend, UdpTunnel, MAX_FRAME};

const BURST: usize = 32;

fn drain(rx: &mut UdpTunnel, buf: &mut [u8]) -> usize {
    let mut n = 0;
    loop {
        match rx.recv(buf).expect("recv") {
            Some(_) => n += 1,
            None if n >= BURST => return n,
            // The burst is on its way through loopback: ask again.
            None => std::hint::spin_loop(),
        }
    }
}

fn bench_tx(c: &mut Criterion) {
    let mut group = c.benchmark_group("udp_tx");
    for len in [64usize, 1514] {
        for batch in [1usize, 32] {
            let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
            let mut tx = UdpTunnel::new(
                "127.0.0.1:0".parse().unwrap(),
                Some(rx.local_addr().unwrap()),
            )
            .unwrap();
            tx.set_tx_batch(batch);
            let frame = vec![0x5Au8; len];
            let mut buf = vec![0u8; MAX_FRAME];
            group.throughput(Throughput::Elements(BURST as u64));
            group.bench_with_input(
                BenchmarkId::new(format!("{len}B"), format!("batch{batch}")),
                &batch,
                |b, _| {
                    b.iter_custom(|iters| {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            let t = Instant::now();
                            tx.begin_burst();
                            for _ in 0..BURST {
                                assert!(tx.send(&frame).unwrap());
                            }
                            tx.end_burst().unwrap();
                            total += t.elapsed();
                            for _ in 0..BURST {
                                rx.recv(&mut buf).unwrap();
                            }
                        }
                        total
                    })
                },
            );
        }
    }
    group.finish();
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("udp_rx");
    for len in [64usize, 1514] {
        for batch in [1usize, 32] {
            let mut rx = UdpTunnel::new("127.0.0.1:0".parse().unwrap(), None).unwrap();
            rx.set_rx_batch(batch);
            let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
            tx.connect(rx.local_addr()).unwrap();
            let frame = vec![0x5Au8; len];
            let mut buf = vec![0u8; MAX_FRAME];
            group.throughput(Throughput::Elements(BURST as u64));
            group.bench_with_input(
                BenchmarkId::new(format!("{len}B"), format!("batch{batch}")),
                &batch,
                |b, _| {
                    b.iter_custom(|iters| {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            for _ in 0..BURST {
                                tx.send(&frame).unwrap();
                            }
                            let t = Instant::now();
                            assert_eq!(drain(&mut rx, &mut buf), BURST);
                            total += t.elapsed();
                        }
                        total
                    })
                },
            );
        }
    }
    group.finish();
}

criterion_group!(benches, bench, bench_tx);
criterion_main!(benches);
