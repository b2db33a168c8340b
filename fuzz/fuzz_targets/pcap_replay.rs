#![no_main]
//! pcap and pcapng files for the replay backend: opened from a file (the API takes a
//! path: `/proc/self/fd/N` of a memfd the input is copied into, so no disk file is
//! created, truncated and flushed per input), played one to three times as fast as the device takes frames, with verdicts
//! fed back. Checks: no panic, every frame fits the buffer, the replay ends, and its
//! counters add up (frames returned = `delivered` = `offered`; verdicts given are counted).
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use nic_emu::backend::RxOutcome;
use nic_emu::backend::{DstRewrite, PacketBackend, PcapReplay, ReplayTiming, Rewrite};
use nic_emu::MacAddress;

/// The capture file: a memfd (memory only) and the path that opens it again.
fn capture() -> &'static (File, PathBuf) {
    static F: OnceLock<(File, PathBuf)> = OnceLock::new();
    F.get_or_init(|| {
        // SAFETY: a NUL-terminated name and flags; returns a new descriptor or -1.
        let raw = unsafe { libc::memfd_create(c"nic-emu-fuzz.pcap".as_ptr(), libc::MFD_CLOEXEC) };
        assert!(raw >= 0, "memfd_create");
        // SAFETY: a new descriptor nobody else owns.
        let f = File::from(unsafe { OwnedFd::from_raw_fd(raw) });
        let p = PathBuf::from(format!("/proc/self/fd/{}", f.as_raw_fd()));
        (f, p)
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, file)) = data.split_first() else {
        return;
    };
    let (f, p) = capture();
    // The file is exactly the input: cut, then written from offset 0 (`PcapReplay::open`
    // opens the path anew, with its own offset).
    f.set_len(0).unwrap();
    f.write_all_at(file, 0).unwrap();
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
