//! Pcap recording: a wrapper that writes every frame crossing any backend, both the
//! frames the guest sends and the frames it receives, to a pcap file (Ethernet link
//! type, microsecond timestamps) that tcpdump, tshark and Wireshark read.
//!
//! Recording never gets in the way of traffic: when a limit is reached or the file
//! cannot be written, recording stops (logged once) and frames keep flowing.
//!
//! A recorder can also sit idle ([`PcapRecorder::idle`]) and be switched on and off while
//! frames flow ([`PcapRecorder::start`], [`PcapRecorder::finish`], or the `Record*`
//! requests of [`BackendRequest`]): nic-emu-cli always wraps its backend in one, so a
//! control client can record any stretch of traffic.

use std::fs::File;
use std::io::{self, BufWriter, ErrorKind};
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriteError, PcapWriter};
use pcap_file::{DataLink, Endianness};

use super::control::{with_inner_counters, BackendCounter, RecordStatus};
use super::spec::RecordLimits;
use super::{BackendReply, BackendRequest, PacketBackend};

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

type Writer = PcapWriter<BufWriter<File>>;

/// Wraps a backend and records the frames crossing it.
pub struct PcapRecorder<B: PacketBackend> {
    inner: B,
    /// The file of the current (or last) recording; `None` before the first.
    path: Option<PathBuf>,
    writer: Option<Writer>,
    limits: RecordLimits,
    counters: RecordCounters,
    stopped: Option<RecordStop>,
    /// Wall-clock time at `base`: timestamps are taken from the monotonic clock so
    /// they never go backwards in one file.
    epoch: SystemTime,
    base: Instant,
    last_flush: Instant,
}

impl<B: PacketBackend> std::fmt::Debug for PcapRecorder<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcapRecorder")
            .field("inner", &self.inner.name())
            .field("path", &self.path)
            .field("limits", &self.limits)
            .field("counters", &self.counters)
            .field("stopped", &self.stopped)
            .finish_non_exhaustive()
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
        let mut me = Self::idle(inner);
        me.start(file, path, limits)?;
        Ok(me)
    }

    /// Wrap `inner` without recording (until [`start`](Self::start)).
    pub fn idle(inner: B) -> Self {
        Self {
            inner,
            path: None,
            writer: None,
            limits: RecordLimits::default(),
            counters: RecordCounters::default(),
            stopped: None,
            epoch: SystemTime::now(),
            base: Instant::now(),
            last_flush: Instant::now(),
        }
    }

    /// Start recording into `file` (empty, at `path`): the pcap header is written and the
    /// counters start again. A recording in progress is finished first.
    pub fn start(&mut self, file: File, path: PathBuf, limits: RecordLimits) -> io::Result<()> {
        self.finish();
        let header = PcapHeader {
            snaplen: SNAPLEN,
            datalink: DataLink::ETHERNET,
            endianness: Endianness::native(),
            ..PcapHeader::default()
        };
        let writer = PcapWriter::with_header(BufWriter::new(file), header)
            .map_err(|e| record_error(&path, write_error(e)))?;
        log::info!(
            "pcap record {}: recording {}",
            path.display(),
            self.inner.name()
        );
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

    /// Finish the recording in progress, if any: the file is flushed and closed; frames
    /// go on flowing unrecorded. Returns whether one was in progress.
    pub fn finish(&mut self) -> bool {
        let Some(mut w) = self.writer.take() else {
            return false;
        };
        let path = self.path.as_deref().unwrap_or(Path::new("?")).display();
        if let Err(e) = w.flush() {
            log::warn!("pcap record {path}: flush: {e}");
        }
        log::info!(
            "pcap record {path}: finished after {} frames, {} bytes",
            self.counters.tx_recorded + self.counters.rx_recorded,
            self.counters.bytes
        );
        true
    }

    /// What the recorder is doing.
    pub fn status(&self) -> RecordStatus {
        RecordStatus {
            recording: self.writer.is_some(),
            path: self.path.clone(),
            frames: self.counters.tx_recorded + self.counters.rx_recorded,
            bytes: self.counters.bytes,
            stopped: self.stopped.as_ref().map(|s| format!("{s:?}")),
        }
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
        self.counters
    }

    /// Why recording stopped, if it did.
    pub fn stopped(&self) -> Option<&RecordStop> {
        self.stopped.as_ref()
    }

    /// The file of the current (or last) recording.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    fn shown_path(&self) -> std::path::Display<'_> {
        self.path.as_deref().unwrap_or(Path::new("?")).display()
    }

    fn stop(&mut self, why: RecordStop) {
        log::warn!(
            "pcap record {}: recording stopped ({why:?}) after {} frames, {} bytes; \
             traffic continues",
            self.shown_path(),
            self.counters.tx_recorded + self.counters.rx_recorded,
            self.counters.bytes
        );
        if let Some(mut w) = self.writer.take() {
            if let Err(e) = w.flush() {
                log::warn!("pcap record {}: flush: {e}", self.shown_path());
            }
        }
        self.stopped = Some(why);
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
        let orig_len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        let result = frame
            .get(..kept)
            .ok_or_else(|| io::Error::from(ErrorKind::InvalidInput))
            .and_then(|data| {
                PcapPacket::new(ts, orig_len, data).map_err(|e| io::Error::other(e.to_string()))
            })
            .and_then(|p| writer.write_packet(&p).map_err(write_error));
        match result {
            Ok(_) => {
                // Keep the file readable while running (and after a crash): flush at
                // most once a second.
                if self.last_flush.elapsed() >= FLUSH_INTERVAL {
                    self.last_flush = Instant::now();
                    if let Err(e) = writer.flush() {
                        self.counters.not_recorded += 1;
                        self.stop(RecordStop::WriteError(write_error(e).to_string()));
                        return;
                    }
                }
                self.counters.bytes += size;
                if tx {
                    self.counters.tx_recorded += 1;
                } else {
                    self.counters.rx_recorded += 1;
                }
            }
            Err(e) => {
                self.counters.not_recorded += 1;
                self.stop(RecordStop::WriteError(e.to_string()));
            }
        }
    }
}

fn record_error(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("pcap record {}: {e}", path.display()))
}

impl<B: PacketBackend> PacketBackend for PcapRecorder<B> {
    fn name(&self) -> String {
        match (&self.path, &self.writer) {
            (Some(p), Some(_)) => format!("{} (recorded to {})", self.inner.name(), p.display()),
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
        if self.writer.is_some() {
            let hdr = gso.vnet_hdr();
            match super::gso_rx::Cutter::look(&hdr, frame) {
                super::gso_rx::Received::Gso(mut cutter) => {
                    let mut seg = vec![0u8; super::MAX_FRAME];
                    while !cutter.done(frame) {
                        if let Some(n) = cutter.next_segment(frame, &mut seg) {
                            self.record(&seg[..n], true);
                        }
                    }
                }
                // A packet the cutter does not take is recorded as handed on.
                _ => self.record(frame, true),
            }
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

    fn rx_outcome(&mut self, outcome: crate::device::RxOutcome) {
        self.inner.rx_outcome(outcome)
    }

    fn carrier(&mut self) -> super::Carrier {
        self.inner.carrier()
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
        let ours = match self.writer.as_mut() {
            Some(w) => w.flush().map_err(write_error),
            None => Ok(()),
        };
        let theirs = self.inner.flush();
        ours.and(theirs)
    }

    fn control(&mut self, request: BackendRequest) -> Option<BackendReply> {
        let reply = match request {
            BackendRequest::RecordStart { file, path, limits } => {
                match self.start(file, path, limits) {
                    Ok(()) => BackendReply::Record(self.status()),
                    Err(e) => BackendReply::Failed(e.to_string()),
                }
            }
            BackendRequest::RecordStop => {
                self.finish();
                BackendReply::Record(self.status())
            }
            BackendRequest::RecordStatus => BackendReply::Record(self.status()),
            BackendRequest::Counters => {
                let c = self.counters;
                let own = vec![
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
                return Some(with_inner_counters(
                    own,
                    self.inner.control(BackendRequest::Counters),
                ));
            }
            other => return self.inner.control(other),
        };
        Some(reply)
    }
}

impl<B: PacketBackend> Drop for PcapRecorder<B> {
    fn drop(&mut self) {
        if let Some(w) = self.writer.as_mut() {
            if let Err(e) = w.flush() {
                log::warn!("pcap record {}: flush at close: {e}", self.shown_path());
            }
        }
    }
}
