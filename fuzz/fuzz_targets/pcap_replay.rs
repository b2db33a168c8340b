#![no_main]
//! pcap and pcapng files for the replay backend: opened from a file (the API takes a
//! path), played one to three times as fast as the device takes frames, with verdicts
//! fed back. Checks: no panic, every frame fits the buffer, the replay ends, and its
//! counters add up (frames returned = `delivered` = `offered`; verdicts given are counted).
use std::io::Write;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use nic_emu::backend::{DstRewrite, PacketBackend, PcapReplay, ReplayTiming, Rewrite};
use nic_emu::device::RxOutcome;
use nic_emu::MacAddress;

fn path() -> &'static std::path::PathBuf {
    static P: OnceLock<std::path::PathBuf> = OnceLock::new();
    P.get_or_init(|| std::env::temp_dir().join(format!("nic-emu-fuzz-{}.pcap", std::process::id())))
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, file)) = data.split_first() else {
        return;
    };
    let p = path();
    std::fs::File::create(p).unwrap().write_all(file).unwrap();
    let timing = if ctl & 0x80 != 0 {
        ReplayTiming::Rate(1_000_000_000.try_into().unwrap())
    } else {
        ReplayTiming::Fast
    };
    let repeat = u64::from(ctl & 3).max(1);
    let Ok(mut r) = PcapReplay::open(p, timing, repeat) else {
        return;
    };
    if ctl & 4 != 0 {
        r.set_rewrite(
            Rewrite {
                dst: Some(DstRewrite::Guest),
                src: Some(MacAddress::new([2, 0, 0, 0, 0, 9])),
            },
            MacAddress::new([0x52, 0x54, 0, 0x12, 0x34, 0x56]),
        );
    }
    let small = ctl & 8 != 0;
    let mut buf = vec![0u8; if small { 64 } else { 16384 }];
    let mut got = 0u64;
    let mut verdicts = 0u64;
    // Each frame of the file at most `repeat` times, plus some slack for empty polls.
    for i in 0..(file.len() as u64 / 16 + 4) * repeat * 2 + 64 {
        match r.recv(&mut buf) {
            Ok(Some(n)) => {
                assert!(
                    n <= buf.len(),
                    "frame of {n} bytes for a {}-byte buffer",
                    buf.len()
                );
                got += 1;
                let outcome = match (i + u64::from(ctl >> 4)) % 4 {
                    0 => RxOutcome::Delivered,
                    1 => RxOutcome::Filtered,
                    2 => RxOutcome::Dropped,
                    _ => RxOutcome::NoRoom,
                };
                if outcome != RxOutcome::NoRoom {
                    r.rx_outcome(outcome);
                    verdicts += 1;
                }
            }
            Ok(None) if r.finished() => break,
            Ok(None) => {
                let _ = r.next_rx_deadline();
            }
            Err(_) => break,
        }
        let _ = r.send(&buf[..14]);
    }
    let c = r.counters();
    assert_eq!(c.delivered, got, "delivered counter");
    let rep = r.report();
    assert_eq!(rep.offered, got, "report: offered");
    assert!(
        rep.accepted + rep.filtered() + rep.oversize + rep.dropped <= verdicts,
        "{rep:?}"
    );
    assert_eq!(rep.no_verdict, got - verdicts.min(got), "{rep:?}");
});
