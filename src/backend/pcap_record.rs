//! Pcap recording: a wrapper that writes every frame crossing any backend, both the
//! frames the guest sends and the frames it receives, to a pcap file (Ethernet link
//! type, microsecond timestamps) that tcpdump, tshark and Wireshark read.
//!
//! Recording never gets in the way of traffic: when a limit is reached or the file
//! cannot be written, recording stops (logged once) and frames keep flowing. The file is
//! always a valid pcap of whole records, after a write error too (a disk that filled
//! up): records are written whole and a partly written one is cut off again. What a
//! crash can lose is said in `file.rs` ([`BUFFER`]): the records not yet written, at
//! most 64 KiB or about the last second.
//!
//! A recorder can also sit idle ([`PcapRecorder::idle`]) and be switched on and off while
//! frames flow ([`PcapRecorder::start`], [`PcapRecorder::finish`], or from another
//! thread through its [`RecorderHandle`]): nic-emu-cli always wraps its backend in one,
//! so a control client can record any stretch of traffic.

use std::fs::File;
use std::io;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pcap_file::pcap::{PcapHeader, PcapWriteError};
use pcap_file::{DataLink, Endianness};

use super::params::RecordLimits;
use super::{BackendCounter, PacketBackend};

mod file;
pub use file::BUFFER;
use file::{RecordFile, RecordSink, WriteFailure};

/// Snapshot length written in the file header: frames up to this size are kept whole.
pub const SNAPLEN: u32 = 262_144;
/// Size of the pcap file header.
const FILE_HEADER: u64 = 24;
/// Size of each record header.
const RECORD_HEADER: u64 = 16;
/// Buffered records reach the file at least this often while traffic flows.
const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// Counters of a [`PcapRecorder`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordCounters {
    /// Frames the guest sent that were written.
    pub tx_recorded: u64,
    /// Frames the guest received that were written.
    pub rx_recorded: u64,
    /// Bytes in the file, header included.
    pub bytes: u64,
    /// Frames not written because recording had stopped (limit reached or write error).
    pub not_recorded: u64,
}

/// Why recording stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordStop {
    /// [`RecordLimits::max_bytes`] reached.
    SizeLimit,
    /// [`RecordLimits::max_frames`] reached.
    FrameLimit,
    /// Writing failed (disk full, ...); the message says how.
    WriteError(String),
}

/// What a pcap recorder is doing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordStatus {
    /// Whether frames are being written now.
    pub recording: bool,
    /// The file of the current (or last) recording.
    pub path: Option<PathBuf>,
    /// Frames written by the current (or last) recording, both directions.
    pub frames: u64,
    /// Bytes in its file, header included.
    pub bytes: u64,
    /// Why it stopped by itself (limit, write error), if it did.
    pub stopped: Option<String>,
}

/// Wraps a backend and records the frames crossing it.
pub struct PcapRecorder<B: PacketBackend> {
    inner: B,
    shared: Arc<Shared>,
}

/// The recording, shared by the wrapper (on the frame path, under the device lock) and
/// its [`RecorderHandle`]s (a control client, without the device lock). Lock order:
/// device, then `state`.
#[derive(Debug)]
struct Shared {
    /// Whether frames must go through `state`: a recording in progress, or one that
    /// stopped by itself (frames are counted as not recorded). False while idle, so an
    /// idle recorder costs one atomic load per frame.
    engaged: AtomicBool,
    state: Mutex<Recording>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Recording> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Run `f` on the recording, then publish whether frames must go through it.
    fn with<R>(&self, f: impl FnOnce(&mut Recording) -> R) -> R {
        let mut g = self.lock();
        let r = f(&mut g);
        self.engaged
            .store(g.writer.is_some() || g.stopped.is_some(), Ordering::Release);
        r
    }
}

/// The state of a recorder's file.
struct Recording {
    /// The wrapped backend's name, for logs.
    label: String,
    /// The file of the current (or last) recording; `None` before the first.
    path: Option<PathBuf>,
    writer: Option<RecordFile>,
    limits: RecordLimits,
    counters: RecordCounters,
    stopped: Option<RecordStop>,
    /// Wall-clock time at `base`: timestamps are taken from the monotonic clock so
    /// they never go backwards in one file.
    epoch: SystemTime,
    base: Instant,
    last_flush: Instant,
}

impl std::fmt::Debug for Recording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recording")
            .field("label", &self.label)
            .field("path", &self.path)
            .field("limits", &self.limits)
            .field("counters", &self.counters)
            .field("stopped", &self.stopped)
            .finish_non_exhaustive()
    }
}

impl<B: PacketBackend> std::fmt::Debug for PcapRecorder<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcapRecorder")
            .field("inner", &self.inner.name())
            .field("recording", &*self.shared.lock())
            .finish_non_exhaustive()
    }
}

/// Steering a [`PcapRecorder`] from another thread (a control client): start, stop and
/// status act on the recorder's own state, never on the device's lock.
#[derive(Clone, Debug)]
pub struct RecorderHandle {
    shared: Arc<Shared>,
}

impl RecorderHandle {
    /// [`PcapRecorder::start`]: start recording into `file` (empty, at `path`); a
    /// recording in progress is finished first. The pcap header is written here, on the
    /// caller's thread.
    pub fn start(&self, file: File, path: PathBuf, limits: RecordLimits) -> io::Result<()> {
        self.shared
            .with(|r| r.start_into(Box::new(file), path, limits))
    }

    /// [`PcapRecorder::finish`]: finish the recording in progress; traffic goes on.
    pub fn finish(&self) -> bool {
        self.shared.with(Recording::finish)
    }

    /// What the recorder is doing.
    pub fn status(&self) -> RecordStatus {
        self.shared.lock().status()
    }
}

fn write_error(e: PcapWriteError) -> io::Error {
    match e {
        PcapWriteError::Io(e) | PcapWriteError::FieldWriteFailed(_, e) => e,
        other => io::Error::other(other.to_string()),
    }
}

impl<B: PacketBackend> PcapRecorder<B> {
    /// Create (or truncate) `path`, write the pcap header and wrap `inner`.
    pub fn create(inner: B, path: impl AsRef<Path>, limits: RecordLimits) -> io::Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = File::create(&path).map_err(|e| record_error(&path, e))?;
        let me = Self::idle(inner);
        me.start(file, path, limits)?;
        Ok(me)
    }

    /// Wrap `inner` without recording (until [`start`](Self::start)).
    pub fn idle(inner: B) -> Self {
        let state = Recording {
            label: inner.name(),
            path: None,
            writer: None,
            limits: RecordLimits::default(),
            counters: RecordCounters::default(),
            stopped: None,
            epoch: SystemTime::now(),
            base: Instant::now(),
            last_flush: Instant::now(),
        };
        Self {
            inner,
            shared: Arc::new(Shared {
                engaged: AtomicBool::new(false),
                state: Mutex::new(state),
            }),
        }
    }

    /// A handle that starts, stops and watches this recorder from another thread.
    pub fn handle(&self) -> RecorderHandle {
        RecorderHandle {
            shared: self.shared.clone(),
        }
    }

    /// Start recording into `file` (empty, at `path`): the pcap header is written and the
    /// counters start again. A recording in progress is finished first.
    pub fn start(&self, file: File, path: PathBuf, limits: RecordLimits) -> io::Result<()> {
        self.handle().start(file, path, limits)
    }

    /// [`start`](Self::start) into any sink (tests: one that fails on purpose).
    #[cfg(test)]
    fn start_into(
        &self,
        sink: Box<dyn RecordSink>,
        path: PathBuf,
        limits: RecordLimits,
    ) -> io::Result<()> {
        self.shared.with(|r| r.start_into(sink, path, limits))
    }

    /// Finish the recording in progress, if any: the file is flushed and closed; frames
    /// go on flowing unrecorded. Returns whether one was in progress.
    pub fn finish(&self) -> bool {
        self.shared.with(Recording::finish)
    }

    /// What the recorder is doing.
    pub fn status(&self) -> RecordStatus {
        self.shared.lock().status()
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// The wrapped backend, mutably.
    pub fn inner_mut(&mut self) -> &mut B {
        &mut self.inner
    }

    /// Counters so far.
    pub fn counters(&self) -> RecordCounters {
        self.shared.lock().counters
    }

    /// Why recording stopped, if it did.
    pub fn stopped(&self) -> Option<RecordStop> {
        self.shared.lock().stopped.clone()
    }

    /// The file of the current (or last) recording.
    pub fn path(&self) -> Option<PathBuf> {
        self.shared.lock().path.clone()
    }

    /// Record `frame` if a recording is in progress (count it if one stopped by itself).
    fn record(&self, frame: &[u8], tx: bool) {
        if self.shared.engaged.load(Ordering::Acquire) {
            self.shared.with(|r| r.record(frame, tx));
        }
    }
}

impl Recording {
    fn start_into(
        &mut self,
        sink: Box<dyn RecordSink>,
        path: PathBuf,
        limits: RecordLimits,
    ) -> io::Result<()> {
        self.finish();
        let header = PcapHeader {
            snaplen: SNAPLEN,
            datalink: DataLink::ETHERNET,
            endianness: Endianness::native(),
            ..PcapHeader::default()
        };
        let mut bytes = Vec::with_capacity(FILE_HEADER as usize);
        header
            .write_to(&mut bytes)
            .map_err(|e| record_error(&path, write_error(e)))?;
        let writer = RecordFile::start(sink, &bytes)
            .map_err(|f| record_error(&path, io::Error::new(f.error.kind(), f.to_string())))?;
        log::info!("pcap record {}: recording {}", path.display(), self.label);
        self.writer = Some(writer);
        self.path = Some(path);
        self.limits = limits;
        self.counters = RecordCounters {
            bytes: FILE_HEADER,
            ..RecordCounters::default()
        };
        self.stopped = None;
        self.last_flush = Instant::now();
        Ok(())
    }

    fn finish(&mut self) -> bool {
        let Some(mut w) = self.writer.take() else {
            return false;
        };
        if let Err(f) = w.flush() {
            log::warn!(
                "pcap record {}: the last records could not be written: {f}",
                self.shown_path()
            );
            self.lost(&f);
            self.stopped = Some(RecordStop::WriteError(f.to_string()));
        }
        log::info!(
            "pcap record {}: finished after {} frames, {} bytes",
            self.shown_path(),
            self.counters.tx_recorded + self.counters.rx_recorded,
            self.counters.bytes
        );
        true
    }

    fn status(&self) -> RecordStatus {
        RecordStatus {
            recording: self.writer.is_some(),
            path: self.path.clone(),
            frames: self.counters.tx_recorded + self.counters.rx_recorded,
            bytes: self.counters.bytes,
            stopped: self.stopped.as_ref().map(|s| format!("{s:?}")),
        }
    }

    fn shown_path(&self) -> std::path::Display<'_> {
        self.path.as_deref().unwrap_or(Path::new("?")).display()
    }
    /// Records that were waiting when a write failed: not in the file after all.
    fn lost(&mut self, f: &WriteFailure) {
        let c = &mut self.counters;
        c.tx_recorded = c.tx_recorded.saturating_sub(f.lost_tx);
        c.rx_recorded = c.rx_recorded.saturating_sub(f.lost_rx);
        c.not_recorded += f.lost_tx + f.lost_rx;
        c.bytes = f.kept;
    }

    fn stop(&mut self, why: RecordStop) {
        let mut why = why;
        if let Some(mut w) = self.writer.take() {
            if let Err(f) = w.flush() {
                self.lost(&f);
                why = RecordStop::WriteError(f.to_string());
            }
        }
        log::warn!(
            "pcap record {}: recording stopped ({why:?}) after {} frames, {} bytes; \
             traffic continues",
            self.shown_path(),
            self.counters.tx_recorded + self.counters.rx_recorded,
            self.counters.bytes
        );
        self.stopped = Some(why);
    }

    /// A write failed: the file holds whole records up to `f.kept`; stop recording.
    fn write_failed(&mut self, f: WriteFailure) {
        self.writer = None;
        self.lost(&f);
        self.stop(RecordStop::WriteError(f.to_string()));
    }

    fn record(&mut self, frame: &[u8], tx: bool) {
        if self.writer.is_none() {
            // Idle (never started, or finished on request) is not a loss.
            if self.stopped.is_some() {
                self.counters.not_recorded += 1;
            }
            return;
        }
        let frames = self.counters.tx_recorded + self.counters.rx_recorded;
        let kept = frame.len().min(SNAPLEN as usize);
        let size = RECORD_HEADER + kept as u64;
        if self.limits.max_frames.is_some_and(|m| frames >= m) {
            self.stop(RecordStop::FrameLimit);
        } else if self
            .limits
            .max_bytes
            .is_some_and(|m| self.counters.bytes.saturating_add(size) > m)
        {
            self.stop(RecordStop::SizeLimit);
        }
        let Some(writer) = self.writer.as_mut() else {
            self.counters.not_recorded += 1;
            return;
        };
        let ts = (self.epoch + self.base.elapsed())
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let data = frame.get(..kept).unwrap_or_default();
        // The record header (pcap, microseconds, this machine's byte order as the file
        // header says): seconds, microseconds, bytes kept, bytes on the wire.
        let mut hdr = [0u8; RECORD_HEADER as usize];
        let secs = u32::try_from(ts.as_secs()).unwrap_or(u32::MAX);
        hdr[0..4].copy_from_slice(&secs.to_ne_bytes());
        hdr[4..8].copy_from_slice(&ts.subsec_micros().to_ne_bytes());
        hdr[8..12].copy_from_slice(&(data.len() as u32).to_ne_bytes());
        let orig_len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        hdr[12..16].copy_from_slice(&orig_len.to_ne_bytes());
        if tx {
            self.counters.tx_recorded += 1;
        } else {
            self.counters.rx_recorded += 1;
        }
        self.counters.bytes += size;
        let mut result = writer.record(&[&hdr, data], tx);
        // Keep the file readable while running (and after a crash): write out at least
        // once a second.
        if result.is_ok() && self.last_flush.elapsed() >= FLUSH_INTERVAL {
            self.last_flush = Instant::now();
            result = writer.flush();
        }
        if let Err(f) = result {
            self.write_failed(f);
        }
    }
}

fn record_error(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("pcap record {}: {e}", path.display()))
}

impl<B: PacketBackend> PacketBackend for PcapRecorder<B> {
    fn name(&self) -> String {
        match &*self.shared.lock() {
            Recording {
                path: Some(p),
                writer: Some(_),
                ..
            } => format!("{} (recorded to {})", self.inner.name(), p.display()),
            _ => self.inner.name(),
        }
    }

    /// Records the frame (whether or not the inner backend then takes it), then sends it.
    fn send(&mut self, frame: &[u8]) -> io::Result<bool> {
        self.record(frame, true);
        self.inner.send(frame)
    }

    /// Whole TCP packets pass when the inner backend takes them: the recording gets the
    /// segments the wire will carry, cut here as Linux cuts them.
    fn accepts_gso(&self) -> bool {
        self.inner.accepts_gso()
    }

    fn send_gso(&mut self, frame: &[u8], gso: &super::Gso) -> io::Result<bool> {
        if self.shared.engaged.load(Ordering::Acquire) {
            self.shared.with(|r| {
                if r.writer.is_none() {
                    // Stopped by itself: counted as one frame not recorded.
                    r.record(frame, true);
                    return;
                }
                let hdr = gso.vnet_hdr();
                match super::gso_rx::Cutter::look(&hdr, frame) {
                    super::gso_rx::Received::Gso(mut cutter) => {
                        let mut seg = vec![0u8; super::MAX_FRAME];
                        while !cutter.done(frame) {
                            if let Some(n) = cutter.next_segment(frame, &mut seg) {
                                r.record(&seg[..n], true);
                            }
                        }
                    }
                    // A packet the cutter does not take is recorded as handed on.
                    _ => r.record(frame, true),
                }
            });
        }
        self.inner.send_gso(frame, gso)
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let got = self.inner.recv(buf)?;
        if let Some(n) = got {
            if let Some(frame) = buf.get(..n) {
                self.record(frame, false);
            }
        }
        Ok(got)
    }

    fn rx_fd(&self) -> Option<RawFd> {
        self.inner.rx_fd()
    }

    fn next_rx_deadline(&self) -> Option<Instant> {
        self.inner.next_rx_deadline()
    }

    fn rx_outcome(&mut self, outcome: super::RxOutcome) {
        self.inner.rx_outcome(outcome)
    }

    /// The wrapped backend's carrier; and records waiting in memory are written out
    /// once a second has passed since the last write, traffic or not (the service step
    /// asks here on every pass, and wakes when told).
    fn carrier(&mut self) -> super::Carrier {
        let mut c = self.inner.carrier();
        if !self.shared.engaged.load(Ordering::Acquire) {
            return c;
        }
        self.shared.with(|r| {
            if r.writer.as_ref().is_some_and(RecordFile::waiting) {
                let due = r.last_flush + FLUSH_INTERVAL;
                if Instant::now() >= due {
                    r.last_flush = Instant::now();
                    if let Some(Err(f)) = r.writer.as_mut().map(RecordFile::flush) {
                        r.write_failed(f);
                    }
                } else {
                    c.recheck_at = Some(c.recheck_at.map_or(due, |t| t.min(due)));
                }
            }
        });
        c
    }

    fn carrier_note(&self) -> Option<String> {
        self.inner.carrier_note()
    }

    fn begin_burst(&mut self) {
        self.inner.begin_burst()
    }

    fn end_burst(&mut self) -> io::Result<()> {
        self.inner.end_burst()
    }

    fn flush(&mut self) -> io::Result<()> {
        let ours = self
            .shared
            .with(|r| match r.writer.as_mut().map(RecordFile::flush) {
                Some(Err(f)) => {
                    let e = io::Error::new(f.error.kind(), f.to_string());
                    r.write_failed(f);
                    Err(e)
                }
                _ => Ok(()),
            });
        let theirs = self.inner.flush();
        ours.and(theirs)
    }

    fn backend_counters(&self) -> Vec<BackendCounter> {
        let c = self.counters();
        let mut all = vec![
            BackendCounter::new(
                "record",
                "tx_frames",
                "Frames the guest sent written by the current recording",
                c.tx_recorded,
            ),
            BackendCounter::new(
                "record",
                "rx_frames",
                "Frames the guest received written by the current recording",
                c.rx_recorded,
            ),
            BackendCounter::new(
                "record",
                "not_recorded",
                "Frames not written since the recording stopped by itself",
                c.not_recorded,
            ),
        ];
        all.extend(self.inner.backend_counters());
        all
    }
}

impl<B: PacketBackend> Drop for PcapRecorder<B> {
    fn drop(&mut self) {
        let r = &mut *self.shared.lock();
        if let Some(w) = r.writer.as_mut() {
            if let Err(f) = w.flush() {
                log::warn!("pcap record {}: flush at close: {f}", r.shown_path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::file::tests::FullDisk;
    use super::*;
    use crate::backend::{Loopback, MAX_FRAME};

    /// Every record of a pcap file in memory, or the reader's complaint.
    fn records(bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
        let mut r = pcap_file::pcap::PcapReader::new(bytes).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        while let Some(p) = r.next_packet() {
            out.push(p.map_err(|e| e.to_string())?.data().to_vec());
        }
        Ok(out)
    }

    #[test]
    fn a_full_disk_stops_the_recording_not_the_traffic_and_leaves_whole_records() {
        // Room for the header and a little under ten records of 1016 bytes: the write
        // that fills it is cut part-way through a record.
        let disk = FullDisk::new(24 + 9 * 1016 + 500);
        let mut rec = PcapRecorder::idle(Loopback::new());
        rec.start_into(
            Box::new(disk.clone()),
            PathBuf::from("full.pcap"),
            RecordLimits::default(),
        )
        .unwrap();
        let mut buf = vec![0u8; MAX_FRAME];
        let mut back = 0;
        for i in 0..200u32 {
            let frame = vec![(i % 251) as u8; 1000];
            assert!(rec.send(&frame).unwrap(), "traffic goes on");
            if rec.recv(&mut buf).unwrap() == Some(1000) {
                back += 1;
            }
        }
        assert_eq!(back, 200, "every frame came back through the recorder");
        assert!(
            matches!(rec.stopped(), Some(RecordStop::WriteError(m)) if m.contains("No space left")),
            "{:?}",
            rec.stopped()
        );
        assert!(!rec.status().recording);
        let bytes = disk.bytes();
        let got = records(&bytes).expect("a valid pcap, no torn record");
        assert_eq!(got.len(), 9, "the nine records that fit whole");
        assert!(got.iter().all(|r| r.len() == 1000));
        let c = rec.counters();
        assert_eq!(c.tx_recorded + c.rx_recorded, 9, "counters match the file");
        assert_eq!(c.bytes, bytes.len() as u64);
        assert_eq!(c.not_recorded, 400 - 9);
        // Frames after the failure are counted, not written, and the file stays as is.
        rec.send(&[1u8; 60]).unwrap();
        assert_eq!(rec.counters().not_recorded, 400 - 9 + 1);
        rec.flush().unwrap();
        assert_eq!(disk.bytes(), bytes);
    }

    #[test]
    fn waiting_records_reach_the_file_within_a_second_without_more_traffic() {
        let disk = FullDisk::new(usize::MAX);
        let mut rec = PcapRecorder::idle(Loopback::new());
        rec.start_into(
            Box::new(disk.clone()),
            PathBuf::from("idle.pcap"),
            RecordLimits::default(),
        )
        .unwrap();
        rec.send(&[3u8; 60]).unwrap();
        assert_eq!(disk.bytes().len(), 24, "the record waits in memory");
        let c = rec.carrier();
        assert!(c.up);
        let due = c
            .recheck_at
            .expect("the service step is told when to come back");
        assert!(due <= Instant::now() + FLUSH_INTERVAL);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let c = rec.carrier();
        assert_eq!(c.recheck_at, None, "nothing waits any more");
        assert_eq!(records(&disk.bytes()).unwrap(), vec![vec![3u8; 60]]);
    }

    #[test]
    fn a_disk_full_before_the_header_refuses_the_start() {
        let disk = FullDisk::new(10);
        let rec = PcapRecorder::idle(Loopback::new());
        let e = rec
            .start_into(
                Box::new(disk.clone()),
                PathBuf::from("none.pcap"),
                RecordLimits::default(),
            )
            .unwrap_err();
        assert!(e.to_string().contains("none.pcap"), "{e}");
        assert!(disk.bytes().is_empty(), "no half header left behind");
        assert!(!rec.status().recording);
    }

    #[test]
    fn a_failure_at_stop_is_reported_and_the_file_stays_whole() {
        // Records wait in memory; the disk fills when they are written at the stop.
        let disk = FullDisk::new(24 + 3 * 76 + 30);
        let mut rec = PcapRecorder::idle(Loopback::new());
        rec.start_into(
            Box::new(disk.clone()),
            PathBuf::from("stop.pcap"),
            RecordLimits::default(),
        )
        .unwrap();
        for _ in 0..5 {
            rec.send(&[2u8; 60]).unwrap();
        }
        assert!(rec.finish());
        assert_eq!(records(&disk.bytes()).unwrap().len(), 3);
        assert_eq!(rec.status().frames, 3);
        assert!(rec
            .status()
            .stopped
            .is_some_and(|s| s.contains("WriteError")));
    }
}
