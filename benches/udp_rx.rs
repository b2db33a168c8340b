//! UDP tunnel receive: the cost of taking a burst of datagrams out of the socket, one
//! `recvmmsg` per datagram (batch 1, what a `recvfrom` loop costs) against one per 32.
//!
//! Each measured iteration: a plain socket sends a burst of 32 frames to the tunnel
//! (not timed), then the tunnel's `recv` is called until it has returned all 32 and said
//! "nothing more" (timed). The ratio batch 32 / batch 1 is the figure that travels.
//!
//! Run: `cargo bench --bench udp_rx`

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

criterion_group!(benches, bench);
criterion_main!(benches);
