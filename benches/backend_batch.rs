//! Backend batching: the cost of a burst of 32 frames received through the UDP tunnel,
//! one system call per frame (batch 1) against one per 32 (`recvmmsg`), and sent
//! through the stream backend with and without the burst calls.
//!
//! - `udp_rx`: a plain socket sends 32 frames to the tunnel (not timed), then the
//!   tunnel's `recv` is called until it has returned all 32 and said "nothing more"
//!   (timed).
//! - `stream_tx`: the stream backend (a Unix socket, a thread reading and discarding)
//!   sends 32 frames with `begin_burst`/`end_burst` around them ("burst": one write) or
//!   without ("single": a write per frame, as when nothing calls them).
//!
//! The ratio batch 32 / batch 1 (burst / single) is the figure that travels.
//!
//! Run: `cargo bench --bench backend_batch`

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use nic_emu::backend::stream::StreamAddr;
use nic_emu::backend::{PacketBackend, StreamBackend, StreamRole, UdpTunnel, MAX_FRAME};

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

fn bench_stream(c: &mut Criterion) {
    let mut group = c.benchmark_group("stream_tx");
    let dir = std::env::temp_dir().join(format!("nic-emu-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for len in [64usize, 1514] {
        for burst in [false, true] {
            let path = dir.join(format!("s{len}{burst}.sock"));
            let _ = std::fs::remove_file(&path);
            let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
            let mut tx =
                StreamBackend::open(StreamAddr::Unix(path.clone()), StreamRole::Connect).unwrap();
            let (mut peer, _) = listener.accept().unwrap();
            std::thread::spawn(move || {
                use std::io::Read;
                let mut sink = vec![0u8; 1 << 16];
                while matches!(peer.read(&mut sink), Ok(n) if n > 0) {}
            });
            let frame = vec![0x5Au8; len];
            group.throughput(Throughput::Elements(BURST as u64));
            let id = if burst { "burst" } else { "single" };
            group.bench_function(BenchmarkId::new(format!("{len}B"), id), |b| {
                b.iter(|| {
                    if burst {
                        tx.begin_burst();
                    }
                    for _ in 0..BURST {
                        assert!(tx.send(&frame).unwrap());
                    }
                    if burst {
                        tx.end_burst().unwrap();
                    }
                    // Whatever the socket did not take yet goes before the next burst.
                    while tx.next_rx_deadline().is_some() {
                        tx.flush().unwrap();
                    }
                })
            });
        }
    }
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
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

criterion_group!(benches, bench, bench_stream);
criterion_main!(benches);
