//! Pcap replay and pcap recording: files written here with known frames are replayed
//! (fast, repeated, original timing, fixed rate, damaged), and recordings are read back
//! with pcap-file and tcpdump.
#![cfg(feature = "pcap")]

use crate::support;

use std::borrow::Cow;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nic_emu::backend::pcap_record::RecordStop;
use nic_emu::backend::{
    Loopback, PacketBackend, PcapRecorder, PcapReplay, RecordLimits, ReplayTiming, MAX_FRAME,
};
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapReader, PcapWriter};
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock;
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::DataLink;
use proptest::prelude::*;

/// A fresh path in a per-test temporary directory.
fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nic-emu-backends-pcap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn frames(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| support::frame(support::MAC, support::PEER, 0x0800, 46 + i * 10, i as u8))
        .collect()
}

/// Write `frames` with timestamps `t0 + gaps`.
fn write_pcap(path: &Path, frames: &[Vec<u8>], gap: Duration, link: DataLink) {
    let header = PcapHeader {
        datalink: link,
        ..PcapHeader::default()
    };
    let mut w = PcapWriter::with_header(File::create(path).unwrap(), header).unwrap();
    let t0 = Duration::from_secs(1_700_000_000);
    for (i, f) in frames.iter().enumerate() {
        let ts = t0 + gap * i as u32;
        w.write_packet(&PcapPacket::new(ts, f.len() as u32, &f[..]).unwrap())
            .unwrap();
    }
}

fn drain(b: &mut dyn PacketBackend) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; MAX_FRAME];
    while let Some(n) = b.recv(&mut buf).unwrap() {
        out.push(buf[..n].to_vec());
        assert!(out.len() < 100_000, "replay does not end");
    }
    out
}

#[test]
fn fast_replay_delivers_every_frame_in_order() {
    let path = tmp("fast.pcap");
    let fs = frames(5);
    write_pcap(&path, &fs, Duration::from_secs(10), DataLink::ETHERNET);
    let mut r = PcapReplay::open(&path, ReplayTiming::Fast, 1).unwrap();
    assert!(r.rx_fd().is_none());
    assert!(r.next_rx_deadline().unwrap() <= Instant::now());
    assert!(r.send(&fs[0]).unwrap());
    assert_eq!(drain(&mut r), fs);
    assert!(r.finished());
    assert_eq!(r.delivered(), 5);
    assert_eq!(r.sent_discarded(), 1);
    assert_eq!(r.next_rx_deadline(), None);
}

#[test]
fn frames_larger_than_the_buffer_are_skipped_and_counted() {
    let path = tmp("oversize.pcap");
    let fs = vec![vec![1u8; 60], vec![2u8; MAX_FRAME + 100], vec![3u8; 60]];
    write_pcap(&path, &fs, Duration::from_millis(1), DataLink::ETHERNET);
    let mut r = PcapReplay::open(&path, ReplayTiming::Fast, 1).unwrap();
    assert_eq!(drain(&mut r), vec![fs[0].clone(), fs[2].clone()]);
    assert_eq!(r.counters().skipped, 1);
    assert_eq!(r.delivered(), 2);
}

#[test]
fn repeat_plays_the_file_that_many_times() {
    let path = tmp("repeat.pcap");
    let fs = frames(3);
    write_pcap(&path, &fs, Duration::from_millis(1), DataLink::ETHERNET);
    let mut r = PcapReplay::open(&path, ReplayTiming::Fast, 3).unwrap();
    let got = drain(&mut r);
    assert_eq!(got.len(), 9);
    assert_eq!(&got[6..], &fs[..]);
    assert_eq!(r.counters().passes, 3);
    assert!(r.finished());

    // 0 = forever: still going after many passes.
    let mut r = PcapReplay::open(&path, ReplayTiming::Fast, 0).unwrap();
    let mut buf = vec![0u8; MAX_FRAME];
    for i in 0..30 {
        let n = r.recv(&mut buf).unwrap().expect("forever");
        assert_eq!(&buf[..n], &fs[i % 3][..]);
    }
    assert!(!r.finished());
}

#[test]
fn an_empty_file_repeated_forever_ends() {
    let path = tmp("empty.pcap");
    write_pcap(&path, &[], Duration::ZERO, DataLink::ETHERNET);
    let mut r = PcapReplay::open(&path, ReplayTiming::Fast, 0).unwrap();
    assert!(drain(&mut r).is_empty());
    assert!(r.finished());
}

#[test]
fn original_timing_honours_the_gaps() {
    let path = tmp("original.pcap");
    let fs = frames(4);
    let gap = Duration::from_millis(40);
    write_pcap(&path, &fs, gap, DataLink::ETHERNET);
    let mut r = PcapReplay::open(&path, ReplayTiming::Original, 1).unwrap();
    let mut buf = vec![0u8; MAX_FRAME];
    let start = Instant::now();
    assert!(r.recv(&mut buf).unwrap().is_some(), "first frame at once");
    assert_eq!(r.recv(&mut buf).unwrap(), None, "second is 40 ms later");
    let deadline = r.next_rx_deadline().unwrap();
    let ahead = deadline.saturating_duration_since(start);
    assert!(
        ahead >= Duration::from_millis(30) && ahead <= Duration::from_millis(50),
        "{ahead:?}"
    );
    let mut times = vec![];
    while !r.finished() {
        if let Some(d) = r.next_rx_deadline() {
            std::thread::sleep(d.saturating_duration_since(Instant::now()));
        }
        if r.recv(&mut buf).unwrap().is_some() {
            times.push(start.elapsed());
        }
        assert!(start.elapsed() < Duration::from_secs(5));
    }
    assert_eq!(times.len(), 3);
    for (i, t) in times.iter().enumerate() {
        let want = gap * (i as u32 + 1);
        assert!(
            *t >= want && *t < want + Duration::from_millis(100),
            "frame {i} at {t:?}"
        );
    }
}

#[test]
fn a_fixed_rate_spaces_frames_evenly() {
    let path = tmp("rate.pcap");
    let fs = frames(6);
    // Timestamps 10 s apart: the rate, not the file, sets the pace.
    write_pcap(&path, &fs, Duration::from_secs(10), DataLink::ETHERNET);
    let rate = ReplayTiming::Rate(100.try_into().unwrap());
    let mut r = PcapReplay::open(&path, rate, 1).unwrap();
    let mut buf = vec![0u8; MAX_FRAME];
    let start = Instant::now();
    let mut n = 0;
    while !r.finished() && start.elapsed() < Duration::from_secs(5) {
        if let Some(d) = r.next_rx_deadline() {
            std::thread::sleep(d.saturating_duration_since(Instant::now()));
        }
        if r.recv(&mut buf).unwrap().is_some() {
            n += 1;
        }
    }
    let took = start.elapsed();
    assert_eq!(n, 6);
    // 6 frames at 100/s: 50 ms from the first to the last.
    assert!(
        took >= Duration::from_millis(49) && took < Duration::from_millis(150),
        "{took:?}"
    );
}

#[test]
fn a_truncated_file_errors_with_the_frame_number() {
    let path = tmp("truncated.pcap");
    let fs = frames(3);
    write_pcap(&path, &fs, Duration::from_millis(1), DataLink::ETHERNET);
    let len = std::fs::metadata(&path).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(len - 10).unwrap();
    let mut r = PcapReplay::open(&path, ReplayTiming::Fast, 1).unwrap();
    let mut buf = vec![0u8; MAX_FRAME];
    assert!(r.recv(&mut buf).unwrap().is_some());
    assert!(r.recv(&mut buf).unwrap().is_some());
    let err = r.recv(&mut buf).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("frame 3") && msg.contains("truncated"),
        "{msg}"
    );
    assert!(msg.contains("truncated.pcap"), "{msg}");
    // Then it is over, without repeating the error.
    assert_eq!(r.recv(&mut buf).unwrap(), None);
    assert!(r.finished());
    assert_eq!(r.delivered(), 2);
}

#[test]
fn a_bad_header_or_link_type_fails_at_open() {
    let path = tmp("garbage.pcap");
    std::fs::write(&path, b"this is not a capture file at all").unwrap();
    let msg = PcapReplay::open(&path, ReplayTiming::Fast, 1)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("garbage.pcap") && msg.contains("not a valid pcap"),
        "{msg}"
    );

    let short = tmp("short.pcap");
    std::fs::write(&short, [0xD4, 0xC3, 0xB2, 0xA1, 2, 0]).unwrap();
    let msg = PcapReplay::open(&short, ReplayTiming::Fast, 1)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("truncated"), "{msg}");

    let raw_ip = tmp("rawip.pcap");
    write_pcap(&raw_ip, &frames(1), Duration::ZERO, DataLink::RAW);
    let msg = PcapReplay::open(&raw_ip, ReplayTiming::Fast, 1)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("Ethernet"), "{msg}");

    let missing = PcapReplay::open(tmp("missing.pcap"), ReplayTiming::Fast, 1).unwrap_err();
    assert!(missing.to_string().contains("missing.pcap"), "{missing}");
}

#[test]
fn pcapng_files_replay_too() {
    let path = tmp("frames.pcapng");
    let fs = frames(4);
    {
        let mut w = PcapNgWriter::new(File::create(&path).unwrap()).unwrap();
        w.write_pcapng_block(InterfaceDescriptionBlock::new(DataLink::ETHERNET, 0))
            .unwrap();
        for (i, f) in fs.iter().enumerate() {
            w.write_pcapng_block(EnhancedPacketBlock {
                interface_id: 0,
                timestamp: Duration::from_millis(i as u64),
                original_len: f.len() as u32,
                data: Cow::Borrowed(&f[..]),
                options: vec![],
            })
            .unwrap();
        }
    }
    let mut r = PcapReplay::open(&path, ReplayTiming::Fast, 2).unwrap();
    let got = drain(&mut r);
    assert_eq!(got.len(), 8);
    assert_eq!(&got[..4], &fs[..]);
    assert_eq!(&got[4..], &fs[..]);
}

fn read_back(path: &Path) -> (DataLink, Vec<(Duration, Vec<u8>)>) {
    let mut r = PcapReader::new(File::open(path).unwrap()).unwrap();
    let link = r.header().datalink;
    let mut out = vec![];
    while let Some(p) = r.next_packet() {
        let p = p.unwrap();
        out.push((p.timestamp(), p.data().to_vec()));
    }
    (link, out)
}

#[test]
fn the_recorder_writes_both_directions() {
    let path = tmp("both.pcap");
    let fs = frames(2);
    let mut rec = PcapRecorder::create(Loopback::new(), &path, RecordLimits::default()).unwrap();
    assert!(rec.name().contains("loopback"));
    for f in &fs {
        assert!(rec.send(f).unwrap());
    }
    let got = drain(&mut rec);
    assert_eq!(got, fs, "traffic passes through unchanged");
    rec.flush().unwrap();
    let c = rec.counters();
    assert_eq!((c.tx_recorded, c.rx_recorded), (2, 2));

    let (link, recs) = read_back(&path);
    assert_eq!(link, DataLink::ETHERNET);
    let data: Vec<_> = recs.iter().map(|(_, d)| d.clone()).collect();
    assert_eq!(
        data,
        vec![fs[0].clone(), fs[1].clone(), fs[0].clone(), fs[1].clone()]
    );
    assert!(
        recs.windows(2).all(|w| w[0].0 <= w[1].0),
        "timestamps go forward"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    assert!(
        now - recs[0].0 < Duration::from_secs(60),
        "wall-clock timestamps"
    );
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        c.bytes,
        "byte counter matches the file"
    );
}

#[test]
fn tcpdump_reads_a_recording() {
    let out = std::process::Command::new("tcpdump")
        .arg("--version")
        .output();
    let Ok(out) = out else {
        support::can_run(
            "tcpdump_reads_a_recording",
            false,
            "tcpdump is not installed (apt-get install tcpdump)",
        );
        return;
    };
    assert!(out.status.success());
    let path = tmp("tcpdump.pcap");
    let fs = frames(3);
    {
        let mut rec =
            PcapRecorder::create(Loopback::new(), &path, RecordLimits::default()).unwrap();
        for f in &fs {
            rec.send(f).unwrap();
        }
        drain(&mut rec);
        // No flush: dropping the recorder flushes.
    }
    let out = std::process::Command::new("tcpdump")
        .args(["-n", "-e", "-r"])
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("EN10MB"), "link type: {stderr}");
    assert_eq!(stdout.lines().count(), 6, "{stdout}");
    assert!(
        stdout.contains("02:00:00:00:00:02 > 52:54:00:ab:cd:01"),
        "{stdout}"
    );
}

#[test]
fn limits_stop_recording_but_not_traffic() {
    let path = tmp("limit-frames.pcap");
    let limits = RecordLimits {
        max_frames: Some(3),
        max_bytes: None,
    };
    let mut rec = PcapRecorder::create(Loopback::new(), &path, limits).unwrap();
    let fs = frames(4);
    for f in &fs {
        assert!(rec.send(f).unwrap());
    }
    assert_eq!(drain(&mut rec), fs);
    assert_eq!(rec.stopped(), Some(RecordStop::FrameLimit));
    assert_eq!(rec.counters().not_recorded, 5);
    drop(rec);
    assert_eq!(read_back(&path).1.len(), 3);

    let path = tmp("limit-bytes.pcap");
    // Header (24) + two records of 16 + 60 bytes = 176: a third does not fit.
    let limits = RecordLimits {
        max_frames: None,
        max_bytes: Some(200),
    };
    let mut rec = PcapRecorder::create(Loopback::new(), &path, limits).unwrap();
    for _ in 0..3 {
        rec.send(&[0u8; 60]).unwrap();
    }
    assert_eq!(drain(&mut rec).len(), 3);
    assert_eq!(rec.stopped(), Some(RecordStop::SizeLimit));
    rec.flush().unwrap();
    assert_eq!(read_back(&path).1.len(), 2);
    assert!(std::fs::metadata(&path).unwrap().len() <= 200);
}

#[test]
fn a_recorded_replay_is_the_same_file_again() {
    let src = tmp("src.pcap");
    let dst = tmp("dst.pcap");
    let fs = frames(5);
    write_pcap(&src, &fs, Duration::from_millis(1), DataLink::ETHERNET);
    let replay = PcapReplay::open(&src, ReplayTiming::Fast, 1).unwrap();
    let mut rec = PcapRecorder::create(replay, &dst, RecordLimits::default()).unwrap();
    assert_eq!(drain(&mut rec), fs);
    assert!(rec.inner().finished());
    rec.flush().unwrap();
    let got: Vec<_> = read_back(&dst).1.into_iter().map(|(_, d)| d).collect();
    assert_eq!(got, fs);
}

#[test]
fn recording_to_an_unwritable_place_fails_at_create() {
    let err = PcapRecorder::create(
        Loopback::new(),
        "/nonexistent-dir/x.pcap",
        RecordLimits::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("/nonexistent-dir/x.pcap"), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    /// Whatever frames a file holds (up to the jumbo limit), replay gives them back.
    #[test]
    fn replay_returns_what_was_written(
        fs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..2000), 0..20),
        repeat in 1u64..3,
    ) {
        let path = tmp(&format!("prop-{}.pcap", fs.len()));
        write_pcap(&path, &fs, Duration::from_micros(1), DataLink::ETHERNET);
        let mut r = PcapReplay::open(&path, ReplayTiming::Fast, repeat).unwrap();
        let got = drain(&mut r);
        let want: Vec<Vec<u8>> = (0..repeat).flat_map(|_| fs.iter().cloned()).collect();
        prop_assert_eq!(got, want);
        prop_assert!(r.finished());
    }
}

#[test]
fn a_long_recording_reaches_the_file_without_an_explicit_flush() {
    let path = tmp("periodic.pcap");
    let mut rec = PcapRecorder::create(Loopback::new(), &path, RecordLimits::default()).unwrap();
    rec.send(&[1u8; 60]).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    rec.send(&[2u8; 60]).unwrap();
    // Both records are on disk while the recorder is still open.
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 24 + 2 * 76);
    assert_eq!(read_back(&path).1.len(), 2);
    drop(rec);
}

/// Read a damaged file to the end: errors are fine, panics and endless loops are not.
fn replay_all(path: &Path) {
    let Ok(mut r) = PcapReplay::open(path, ReplayTiming::Fast, 2) else {
        return;
    };
    let mut buf = vec![0u8; MAX_FRAME];
    for _ in 0..10_000 {
        match r.recv(&mut buf) {
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    assert!(r.finished() || r.recv(&mut buf).is_ok());
}

fn pcapng_bytes(fs: &[Vec<u8>]) -> Vec<u8> {
    let mut w = PcapNgWriter::new(Vec::new()).unwrap();
    w.write_pcapng_block(InterfaceDescriptionBlock::new(DataLink::ETHERNET, 0))
        .unwrap();
    for f in fs {
        w.write_pcapng_block(EnhancedPacketBlock {
            interface_id: 0,
            timestamp: Duration::from_millis(1),
            original_len: f.len() as u32,
            data: Cow::Borrowed(&f[..]),
            options: vec![],
        })
        .unwrap();
    }
    w.into_inner()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    /// Damaged pcap and pcapng files (bytes changed, cut short) never panic the replay.
    #[test]
    fn damaged_files_never_panic(
        ng in any::<bool>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let fs = frames(4);
        let mut bytes = if ng {
            pcapng_bytes(&fs)
        } else {
            let path = tmp("damage-src.pcap");
            write_pcap(&path, &fs, Duration::from_millis(1), DataLink::ETHERNET);
            std::fs::read(&path).unwrap()
        };
        for (at, v) in edits {
            let i = at.index(bytes.len());
            bytes[i] = v;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        let path = tmp(if ng { "damaged.pcapng" } else { "damaged.pcap" });
        std::fs::write(&path, &bytes).unwrap();
        replay_all(&path);
    }
}

/// A replay shared with the test, so its report can be read while the device owns it.
struct Shared(std::sync::Arc<std::sync::Mutex<PcapReplay>>);

impl PacketBackend for Shared {
    fn name(&self) -> String {
        self.0.lock().unwrap().name()
    }
    fn send(&mut self, f: &[u8]) -> std::io::Result<bool> {
        self.0.lock().unwrap().send(f)
    }
    fn recv(&mut self, buf: &mut [u8]) -> std::io::Result<Option<usize>> {
        self.0.lock().unwrap().recv(buf)
    }
    fn rx_outcome(&mut self, o: nic_emu::backend::RxOutcome) {
        self.0.lock().unwrap().rx_outcome(o)
    }
}

/// What a capture of other hosts' traffic looks like: unicast between two other MACs,
/// a broadcast, a multicast nobody joined, a VLAN-tagged unicast and a jumbo frame.
fn foreign_capture() -> Vec<Vec<u8>> {
    let a = [0x00, 0x1B, 0x21, 0x00, 0x00, 0x0A];
    let b = [0x00, 0x1B, 0x21, 0x00, 0x00, 0x0B];
    let mut vlan = support::frame(b, a, 0x8100, 60, 4);
    vlan[14..16].copy_from_slice(&5u16.to_be_bytes());
    vlan[16..18].copy_from_slice(&0x0800u16.to_be_bytes());
    vec![
        support::frame(b, a, 0x0800, 100, 1),
        support::frame(a, b, 0x0800, 100, 2),
        support::frame(b, a, 0x0800, 1000, 3),
        support::frame([0xFF; 6], a, 0x0806, 46, 5),
        support::frame([0x01, 0x00, 0x5E, 0x01, 0x02, 0x03], a, 0x0800, 60, 6),
        vlan,
        support::frame(b, a, 0x0800, 2000, 7),
    ]
}

/// Replay `capture` into a guest (Linux-style open, no VLAN filter, standard frames);
/// returns the frames the guest got, the replay's report and the device's counters.
fn replay_into_guest(
    path: &Path,
    rewrite: nic_emu::backend::Rewrite,
) -> (
    Vec<Vec<u8>>,
    nic_emu::backend::pcap_replay::ReplayReport,
    nic_emu::Metrics,
) {
    let mut r = PcapReplay::open(path, ReplayTiming::Fast, 1).unwrap();
    r.set_rewrite(rewrite, nic_emu::MacAddress::new(support::MAC));
    let shared = std::sync::Arc::new(std::sync::Mutex::new(r));
    let mut g = support::FakeGuest::new(Box::new(Shared(shared.clone())));
    g.linux_probe();
    g.linux_open(8, 32);
    let mut got = Vec::new();
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        g.advance_us(10);
        while let Some(f) = g.recv() {
            got.push(f);
        }
        let done = {
            let r = shared.lock().unwrap();
            r.finished() && r.report().no_verdict == 0
        };
        if done {
            break;
        }
        assert!(Instant::now() < end, "replay never finished");
    }
    let report = shared.lock().unwrap().report();
    (got, report, g.bus.device().metrics())
}

#[test]
fn a_foreign_capture_is_mostly_filtered_and_the_report_says_why() {
    let path = tmp("foreign.pcap");
    write_pcap(
        &path,
        &foreign_capture(),
        Duration::from_millis(1),
        DataLink::ETHERNET,
    );
    let (got, r, m) = replay_into_guest(&path, Default::default());
    // Only the broadcast is for this guest.
    assert_eq!(got.len(), 1);
    assert_eq!(r.offered, 7);
    assert_eq!(r.accepted, 1);
    assert_eq!(
        (
            r.filtered_unicast,
            r.filtered_multicast,
            r.filtered_vlan,
            r.oversize,
            r.dropped
        ),
        (3, 1, 1, 1, 0)
    );
    // The report's numbers are the device's counters.
    assert_eq!(r.accepted, m.rx_frames);
    assert_eq!(r.filtered(), m.rx_filtered);
    assert_eq!(r.oversize + r.dropped, m.rx_dropped);
    let text = r.to_string();
    assert!(
        text.contains("7 frames offered: 1 accepted") && text.contains("3 unicast to another MAC"),
        "{text}"
    );
}

#[test]
fn rewrite_dst_guest_addresses_unicast_frames_to_the_guest() {
    use nic_emu::backend::{DstRewrite, Rewrite};
    let path = tmp("rewritten.pcap");
    let capture = foreign_capture();
    write_pcap(
        &path,
        &capture,
        Duration::from_millis(1),
        DataLink::ETHERNET,
    );
    let new_src = [0x02, 0x00, 0x00, 0x00, 0x00, 0x99];
    let rewrite = Rewrite {
        dst: Some(DstRewrite::Guest),
        src: Some(nic_emu::MacAddress::new(new_src)),
    };
    let (got, r, m) = replay_into_guest(&path, rewrite);
    // Every unicast frame (the tagged one too) now goes to the guest; the broadcast is
    // kept; the unjoined multicast is still filtered, the jumbo frame still too long.
    assert_eq!(r.accepted, 5, "{r:?}");
    assert_eq!((r.filtered(), r.oversize), (1, 1));
    assert_eq!(r.filtered_multicast, 1);
    assert_eq!(r.rewritten_dst, 5);
    assert_eq!(r.rewritten_src, 7);
    assert_eq!(r.accepted, m.rx_frames);
    assert_eq!(r.filtered(), m.rx_filtered);
    assert_eq!(r.oversize + r.dropped, m.rx_dropped);
    assert_eq!(got.len(), 5);
    for f in &got {
        assert!(
            f[..6] == support::MAC || f[..6] == [0xFF; 6],
            "dst {:02x?}",
            &f[..6]
        );
        assert_eq!(f[6..12], new_src);
    }
    // The payloads are the capture's.
    assert_eq!(got[0][12..], capture[0][12..]);
}

#[test]
fn rewrite_keys_parse_and_errors_name_them() {
    use nic_emu::backend::DstRewrite;
    use nic_emu::config::{BackendKind, BackendSpec};
    let s = BackendSpec::parse_inline(
        "pcap,replay=x.pcap,rewrite_dst=guest,rewrite_src=02:00:00:00:00:01",
    )
    .unwrap();
    let BackendKind::Pcap { rewrite, .. } = &s.kind else {
        panic!("{s:?}")
    };
    assert_eq!(rewrite.dst, Some(DstRewrite::Guest));
    assert_eq!(BackendSpec::parse_inline(&s.to_string()).unwrap(), s);
    let s = BackendSpec::parse_inline("pcap,replay=x.pcap,rewrite_dst=52:54:00:00:00:07").unwrap();
    assert!(
        s.to_string().contains("rewrite_dst=52:54:00:00:00:07"),
        "{s}"
    );
    for (spec, key) in [
        ("pcap,replay=x.pcap,rewrite_dst=host", "rewrite_dst"),
        ("pcap,replay=x.pcap,rewrite_src=guest", "rewrite_src"),
        ("udp,local=127.0.0.1:1,rewrite_dst=guest", "rewrite_dst"),
    ] {
        let e = BackendSpec::parse_inline(spec).unwrap_err().to_string();
        assert!(e.contains(&format!("`{key}`")), "{spec}: {e}");
    }
}
