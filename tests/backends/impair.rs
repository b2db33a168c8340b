//! The `impair` wrapper: loss, duplication, corruption, delay, reordering and a rate
//! limit, each direction on its own, decided by a seeded generator (same seed, same
//! frames), every effect counted. Frames carry a sequence number so the test can tell
//! exactly which ones came through.

use crate::support;

use std::time::{Duration, Instant};

use nic_emu::backend::impair::{ImpairParams, QUEUE_LIMIT};
use nic_emu::backend::{Impair, ImpairSpec, Loopback, PacketBackend, MAX_FRAME};
use nic_emu::config::BackendSpec;

/// Frame number `n`: the sequence number sits in the payload, twice, so that one
/// flipped bit never turns a frame into another.
fn numbered(n: u32) -> Vec<u8> {
    let mut f = support::frame(support::MAC, support::PEER, 0x88B5, 60, 0);
    f[14..18].copy_from_slice(&n.to_be_bytes());
    f[18..22].copy_from_slice(&n.to_be_bytes());
    f
}

fn number(f: &[u8]) -> u32 {
    u32::from_be_bytes([f[14], f[15], f[16], f[17]])
}

/// A loopback behind an impairment of the guest's transmissions.
fn tx_impaired(p: ImpairParams, seed: u64) -> Impair<Loopback> {
    let spec = ImpairSpec {
        tx: p,
        seed,
        ..ImpairSpec::default()
    };
    Impair::new(Loopback::with_depth(100_000), spec)
}

/// Everything the wrapper hands back now.
fn drain(b: &mut dyn PacketBackend) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; MAX_FRAME];
    while let Some(n) = b.recv(&mut buf).unwrap() {
        out.push(buf[..n].to_vec());
    }
    out
}

/// Send frames 0..n through a tx-lossy wire; the numbers that came back.
fn survivors(loss: f64, seed: u64, n: u32) -> (Vec<u32>, u64) {
    let p = ImpairParams {
        loss,
        ..ImpairParams::default()
    };
    let mut b = tx_impaired(p, seed);
    for i in 0..n {
        assert!(b.send(&numbered(i)).unwrap());
    }
    let got: Vec<u32> = drain(&mut b).iter().map(|f| number(f)).collect();
    let c = b.counters().tx;
    assert_eq!(c.frames_in, u64::from(n));
    assert_eq!(
        c.frames_out + c.lost,
        c.frames_in,
        "every frame accounted for"
    );
    (got, c.lost)
}

#[test]
fn ten_percent_loss_over_5000_frames_loses_8_to_12_percent_the_same_frames_every_run() {
    let (first, lost) = survivors(10.0, 42, 5000);
    assert!(
        (400..=600).contains(&lost),
        "lost {lost} of 5000 ({:.1}%)",
        lost as f64 / 50.0
    );
    assert_eq!(first.len() as u64, 5000 - lost);
    assert!(first.windows(2).all(|w| w[0] < w[1]), "order kept");
    let (again, lost_again) = survivors(10.0, 42, 5000);
    assert_eq!(
        (again, lost_again),
        (first.clone(), lost),
        "same seed, same frames"
    );
    let (other, _) = survivors(10.0, 43, 5000);
    assert_ne!(other, first, "another seed, other frames");
}

#[test]
fn duplication_and_corruption_are_counted_and_visible() {
    let p = ImpairParams {
        dup: 50.0,
        corrupt: 100.0,
        ..ImpairParams::default()
    };
    let mut b = tx_impaired(p, 7);
    for i in 0..300 {
        b.send(&numbered(i)).unwrap();
    }
    let out = drain(&mut b);
    let c = b.counters().tx;
    assert!((100..=200).contains(&c.duplicated), "{c:?}");
    assert_eq!(out.len() as u64, 300 + c.duplicated);
    assert_eq!(c.frames_out, out.len() as u64);
    assert_eq!(c.corrupted, 300);
    // Every copy differs from the frame sent in exactly one bit (both copies of a
    // duplicate carry the same flip).
    let mut flipped = 0;
    for f in &out {
        let diffs: u32 = (0..300u32)
            .map(numbered)
            .map(|orig| {
                orig.iter()
                    .zip(f)
                    .map(|(a, b)| (a ^ b).count_ones())
                    .sum::<u32>()
            })
            .min()
            .unwrap();
        assert_eq!(diffs, 1);
        flipped += 1;
    }
    assert_eq!(flipped, out.len());
}

#[test]
fn delay_holds_frames_and_the_deadline_says_until_when() {
    let spec = BackendSpec::parse_inline("loopback,tx_delay=40ms").unwrap();
    let mut b = spec.open().unwrap();
    let t0 = Instant::now();
    b.send(&numbered(1)).unwrap();
    let due = b.next_rx_deadline().expect("a held frame has a deadline");
    assert!(due >= t0 + Duration::from_millis(40), "due after the delay");
    let mut buf = vec![0u8; MAX_FRAME];
    // Never early.
    while Instant::now() < t0 + Duration::from_millis(35) {
        if b.recv(&mut buf).unwrap().is_some() {
            panic!("frame left after {:?}", t0.elapsed());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    // And it does come (generous bound: the machine is shared).
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        // Frames come back through the loopback as they leave the tx lane.
        if b.recv(&mut buf).unwrap().is_some() {
            break;
        }
        assert!(Instant::now() < end, "delayed frame never left");
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(t0.elapsed() >= Duration::from_millis(40));
}

#[test]
fn jitter_spreads_the_delay_both_ways() {
    let p = ImpairParams {
        delay: Duration::from_millis(100),
        jitter: Duration::from_millis(50),
        ..ImpairParams::default()
    };
    let mut b = tx_impaired(p, 3);
    let t0 = Instant::now();
    b.send(&numbered(0)).unwrap();
    let mut dues = vec![b.next_rx_deadline().unwrap() - t0];
    for i in 1..50 {
        let before = b.next_rx_deadline().unwrap();
        b.send(&numbered(i)).unwrap();
        let now = b.next_rx_deadline().unwrap();
        if now < before {
            dues.push(now - t0);
        }
    }
    assert_eq!(b.counters().tx.delayed, 50);
    let min = dues.iter().min().unwrap();
    assert!(
        *min >= Duration::from_millis(50) && *min < Duration::from_millis(100),
        "{dues:?}"
    );
}

#[test]
fn reorder_swaps_a_frame_with_the_next_one() {
    let p = ImpairParams {
        reorder: 100.0,
        ..ImpairParams::default()
    };
    let mut b = tx_impaired(p, 1);
    for i in 0..6 {
        b.send(&numbered(i)).unwrap();
    }
    let got: Vec<u32> = drain(&mut b).iter().map(|f| number(f)).collect();
    assert_eq!(got, vec![1, 0, 3, 2, 5, 4]);
    assert_eq!(b.counters().tx.reordered, 3);
}

#[test]
fn a_held_back_frame_leaves_anyway_when_no_next_frame_comes() {
    let p = ImpairParams {
        reorder: 100.0,
        ..ImpairParams::default()
    };
    let mut b = tx_impaired(p, 1);
    b.send(&numbered(9)).unwrap();
    assert!(drain(&mut b).is_empty(), "held for the next frame");
    let due = b.next_rx_deadline().expect("a deadline for the held frame");
    std::thread::sleep(due.saturating_duration_since(Instant::now()) + Duration::from_millis(1));
    let got = drain(&mut b);
    assert_eq!(got.len(), 1);
    assert_eq!(number(&got[0]), 9);
}

#[test]
fn a_rate_limit_spaces_frames_by_their_length() {
    // 1 Mbit/s: a 1250-byte frame (+24 bytes of preamble, FCS and gap) takes ~10.2 ms.
    let p = ImpairParams {
        rate: Some(1_000_000),
        ..ImpairParams::default()
    };
    let mut b = tx_impaired(p, 0);
    let f = support::frame(support::MAC, support::PEER, 0x0800, 1236, 1);
    assert_eq!(f.len(), 1250);
    let t0 = Instant::now();
    for _ in 0..10 {
        b.send(&f).unwrap();
    }
    assert_eq!(b.counters().tx.rate_limited, 9);
    // The last frame is due ~102 ms after the first was sent.
    let mut last = t0;
    let mut buf = vec![0u8; MAX_FRAME];
    let mut n = 0;
    let end = Instant::now() + Duration::from_secs(10);
    while n < 10 {
        if let Some(d) = b.next_rx_deadline() {
            last = last.max(d);
        }
        if b.recv(&mut buf).unwrap().is_some() {
            n += 1;
        }
        assert!(Instant::now() < end);
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(
        t0.elapsed() >= Duration::from_millis(100),
        "{:?}",
        t0.elapsed()
    );
    assert!(last - t0 >= Duration::from_millis(100));
}

#[test]
fn the_queue_is_bounded_and_overflow_is_counted() {
    let p = ImpairParams {
        delay: Duration::from_secs(60),
        ..ImpairParams::default()
    };
    let mut b = tx_impaired(p, 0);
    let extra = 250;
    for i in 0..(QUEUE_LIMIT + extra) as u32 {
        let taken = b.send(&numbered(i)).unwrap();
        assert_eq!(taken, (i as usize) < QUEUE_LIMIT, "frame {i}");
    }
    assert_eq!(b.counters().tx.queue_full, extra as u64);
}

#[test]
fn receive_direction_is_impaired_separately() {
    // Loss only toward the guest: everything sent reaches the loopback, a tenth of it is
    // lost on the way back.
    let spec = BackendSpec::parse_inline("loopback,rx_loss=10,seed=5").unwrap();
    let mut b = spec.open().unwrap();
    let mut got = 0;
    let mut buf = vec![0u8; MAX_FRAME];
    for i in 0..1000 {
        b.send(&numbered(i)).unwrap();
        while b.recv(&mut buf).unwrap().is_some() {
            got += 1;
        }
    }
    assert!((850..=950).contains(&got), "{got}");
}

#[test]
fn specs_take_impairments_in_both_syntaxes_and_errors_name_the_key() {
    let s = BackendSpec::parse_inline(
        "loopback,loss=10,delay=20ms,jitter=5ms,tx_rate=1mbit,rx_dup=0.5,reorder=2%,seed=9",
    )
    .unwrap();
    let imp = s.impair.unwrap();
    assert_eq!(imp.seed, 9);
    assert_eq!(imp.rx.loss, 10.0);
    assert_eq!(imp.tx.loss, 10.0);
    assert_eq!(imp.rx.delay, Duration::from_millis(20));
    assert_eq!(imp.tx.jitter, Duration::from_millis(5));
    assert_eq!(imp.tx.rate, Some(1_000_000));
    assert_eq!(imp.rx.rate, None);
    assert_eq!(imp.rx.dup, 0.5);
    assert_eq!(imp.tx.dup, 0.0);
    assert_eq!(imp.rx.reorder, 2.0);
    assert_eq!(BackendSpec::parse_inline(&s.to_string()).unwrap(), s, "{s}");

    for (spec, key) in [
        ("loopback,loss=200", "loss"),
        ("loopback,loss=many", "loss"),
        ("loopback,delay=20", "delay"),
        ("loopback,rx_jitter=-1ms", "rx_jitter"),
        ("loopback,tx_rate=fast", "tx_rate"),
        ("loopback,seed=-1", "seed"),
        ("loopback,rx_colour=red", "rx_colour"),
        ("loopback,loss=1,loss=2", "loss"),
    ] {
        let e = BackendSpec::parse_inline(spec).unwrap_err().to_string();
        assert!(e.contains(&format!("`{key}`")), "{spec}: {e}");
    }
}

#[cfg(feature = "config")]
#[test]
fn backends_toml_takes_numbers_or_strings() {
    let s = BackendSpec::from_toml(
        "kind = \"loopback\"\nloss = 10\nrx_corrupt = 0.5\ndelay = \"20ms\"\nseed = 7\n",
    )
    .unwrap();
    let imp = s.impair.unwrap();
    assert_eq!((imp.rx.loss, imp.tx.loss, imp.seed), (10.0, 10.0, 7));
    assert_eq!(imp.rx.corrupt, 0.5);
    assert_eq!(imp.tx.delay, Duration::from_millis(20));
    let e = BackendSpec::from_toml("kind = \"loopback\"\ndelay = 20\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("`delay`"), "{e}");
    let e = BackendSpec::from_toml("kind = \"loopback\"\nlos = 20\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("`los`"), "{e}");
}

/// A backend whose fd is always readable and that always has a frame.
struct Endless {
    fd: std::os::unix::net::UnixDatagram,
    n: u32,
}

impl PacketBackend for Endless {
    fn name(&self) -> String {
        "endless".into()
    }
    fn send(&mut self, _frame: &[u8]) -> std::io::Result<bool> {
        Ok(true)
    }
    fn recv(&mut self, buf: &mut [u8]) -> std::io::Result<Option<usize>> {
        let f = numbered(self.n);
        self.n += 1;
        buf[..f.len()].copy_from_slice(&f);
        Ok(Some(f.len()))
    }
    fn rx_fd(&self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        Some(self.fd.as_raw_fd())
    }
}

#[test]
fn a_full_receive_queue_stops_offering_the_inner_fd_until_frames_leave() {
    let (a, b) = std::os::unix::net::UnixDatagram::pair().unwrap();
    a.send(b"readable").unwrap();
    let spec = ImpairSpec {
        rx: ImpairParams {
            delay: Duration::from_secs(60),
            ..ImpairParams::default()
        },
        ..ImpairSpec::default()
    };
    let mut imp = Impair::new(Endless { fd: b, n: 0 }, spec);
    assert!(
        imp.rx_fd().is_some(),
        "room in the queue: the inner fd is watched"
    );
    let mut buf = vec![0u8; MAX_FRAME];
    for _ in 0..(QUEUE_LIMIT / 10) {
        assert_eq!(imp.recv(&mut buf).unwrap(), None, "held for a minute");
        if imp.rx_fd().is_none() {
            break;
        }
    }
    // Full: `recv` leaves the inner backend's frames alone, so its readable fd would
    // only make an event loop spin; the deadline says when frames leave.
    assert_eq!(imp.rx_fd(), None);
    assert!(imp.next_rx_deadline().is_some());
    assert_eq!(imp.counters().rx.frames_in, QUEUE_LIMIT as u64);
}
