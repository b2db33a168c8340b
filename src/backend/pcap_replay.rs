//! Pcap replay: the frames of a capture file (pcap or pcapng, Ethernet link type) are
//! received by the guest, at their original pace, as fast as the guest takes them, or at
//! a fixed rate; the file can be played several times. Frames the guest sends are
//! counted and discarded (to record them, wrap the replay in a
//! [`PcapRecorder`](super::PcapRecorder)).
//!
//! The backend has no descriptor: an event loop asks
//! [`next_rx_deadline`](PacketBackend::next_rx_deadline) when to call `recv` again.
//!
//! A capture of real traffic is addressed to its original hosts, and the guest's receive
//! filter drops frames unicast to another MAC. [`Rewrite`] writes the guest's MAC (or
//! another) into the destination of unicast frames and a chosen source into every frame,
//! as tcprewrite does. The device tells the replay what became of each frame
//! ([`rx_outcome`](PacketBackend::rx_outcome)), and the [`ReplayReport`] logged at the
//! end of the file counts frames offered, accepted by the guest's receive filter,
//! filtered (and why) and dropped.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, ErrorKind, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pcap_file::pcap::{PcapReadError, PcapReader};
use pcap_file::pcapng::blocks::block_common::Block;
use pcap_file::pcapng::{PcapNgReadError, PcapNgReader};
use pcap_file::DataLink;

use super::params::{DstRewrite, ReplayTiming, Rewrite};
use super::RxOutcome;
use super::{BackendCounter, PacketBackend};
use crate::mac::MacAddress;

mod pause;
pub use pause::{ReplayHandle, ReplayStatus};
mod report;
use report::FrameClass;
pub use report::ReplayReport;

/// Bytes the reader buffers; also the largest record it can parse.
const READ_BUFFER: usize = 1 << 20;

/// pcapng files start with a Section Header Block of this type.
const PCAPNG_MAGIC: [u8; 4] = [0x0A, 0x0D, 0x0D, 0x0A];

/// Counters of a [`PcapReplay`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplayCounters {
    /// Frames offered to the device by `recv`, over all passes.
    pub delivered: u64,
    /// Frames the guest sent, discarded.
    pub sent_discarded: u64,
    /// Frames of the file not delivered: empty, or larger than the receive buffer.
    pub skipped: u64,
    /// Passes over the file completed.
    pub passes: u64,
}

enum Reader {
    Pcap(PcapReader<File>),
    PcapNg {
        reader: PcapNgReader<File>,
        /// Link type of each interface of the current section.
        links: Vec<DataLink>,
    },
}

/// What comes next from the file.
enum Next {
    Frame { ts: Duration, data: Vec<u8> },
    Failed(io::Error),
    End,
}

/// A capture file played to the guest.
pub struct PcapReplay {
    /// The capture, opened once; each pass reads it from the start through a duplicate.
    file: File,
    path: PathBuf,
    timing: ReplayTiming,
    repeat: u64,
    reader: Reader,
    /// 1-based pass over the file.
    pass: u64,
    /// Frame number (1-based) in the file of the frame held in `next`.
    frame_no: u64,
    next: Next,
    /// Instant and file timestamp of the frame timing is measured from (original timing),
    /// or instant and count of delivered frames (fixed rate).
    anchor: Option<(Instant, Duration, u64)>,
    created: Instant,
    delivered_in_pass: u64,
    counters: ReplayCounters,
    finished: bool,
    rewrite: Rewrite,
    guest_mac: MacAddress,
    /// Class and "longer than a standard frame" of each frame offered and not yet judged.
    awaiting: VecDeque<(FrameClass, bool)>,
    report: ReplayReport,
    reported: bool,
    /// Shared with the handles: the pause, and where the replay is (`pause.rs`).
    shared: Arc<pause::Shared>,
}

impl std::fmt::Debug for PcapReplay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcapReplay")
            .field("path", &self.path)
            .field("timing", &self.timing)
            .field("repeat", &self.repeat)
            .field("pass", &self.pass)
            .field("counters", &self.counters)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

/// A reader from the start of `file` (a duplicate of the descriptor opened once: every
/// pass reads the same file, and no path is opened after start-up).
fn open_reader(file: &File, path: &Path) -> io::Result<Reader> {
    let ctx =
        |e: String| io::Error::new(ErrorKind::InvalidData, format!("{}: {e}", path.display()));
    let named = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    let mut file = file.try_clone().map_err(named)?;
    file.seek(SeekFrom::Start(0)).map_err(named)?;
    let mut magic = [0u8; 4];
    let got = file.read(&mut magic)?;
    file.seek(SeekFrom::Start(0))?;
    if got == 4 && magic == PCAPNG_MAGIC {
        let reader = PcapNgReader::with_capacity(file, READ_BUFFER)
            .map_err(|e| ctx(format!("not a valid pcapng file: {}", ng_error_text(&e))))?;
        let links = reader.interfaces().iter().map(|i| i.linktype).collect();
        Ok(Reader::PcapNg { reader, links })
    } else {
        let reader = PcapReader::with_capacity(file, READ_BUFFER)
            .map_err(|e| ctx(format!("not a valid pcap file: {}", pcap_error_text(&e))))?;
        let link = reader.header().datalink;
        if link != DataLink::ETHERNET {
            return Err(ctx(format!(
                "link type is {link:?}, only Ethernet captures can be replayed"
            )));
        }
        Ok(Reader::Pcap(reader))
    }
}

fn io_text(e: &io::Error) -> String {
    if e.kind() == ErrorKind::UnexpectedEof {
        "the file ends in the middle of it (truncated)".into()
    } else {
        e.to_string()
    }
}

fn pcap_error_text(e: &PcapReadError) -> String {
    match e {
        PcapReadError::Io(io) => io_text(io),
        PcapReadError::Validation(v) => v.to_string(),
    }
}

fn ng_error_text(e: &PcapNgReadError) -> String {
    match e {
        PcapNgReadError::Io(io) => io_text(io),
        other => {
            let mut s = other.to_string();
            let mut src = std::error::Error::source(other);
            while let Some(inner) = src {
                s.push_str(": ");
                s.push_str(&inner.to_string());
                src = inner.source();
            }
            s
        }
    }
}

impl Reader {
    /// The next frame's timestamp, copied into `data`; `None` at the end of the file.
    fn next_frame(&mut self, data: &mut Vec<u8>) -> Option<Result<Duration, String>> {
        match self {
            Reader::Pcap(r) => match r.next_packet()? {
                Ok(p) => {
                    data.clear();
                    data.extend_from_slice(p.data());
                    Some(Ok(p.timestamp()))
                }
                Err(e) => Some(Err(pcap_error_text(&e))),
            },
            Reader::PcapNg { reader, links } => {
                let mut last_ts = Duration::ZERO;
                // Each turn consumes one block of a finite file.
                loop {
                    let block = match reader.next_block()? {
                        Ok((block, _state)) => block,
                        Err(e) => return Some(Err(ng_error_text(&e))),
                    };
                    let (iface, ts, bytes) = match &block {
                        Block::SectionHeader(_) => {
                            links.clear();
                            continue;
                        }
                        Block::InterfaceDescription(idb) => {
                            links.push(idb.linktype);
                            continue;
                        }
                        Block::EnhancedPacket(p) => (p.interface_id, p.timestamp, &p.data),
                        Block::Packet(p) => (u32::from(p.interface_id), p.timestamp, &p.data),
                        Block::SimplePacket(p) => (0, last_ts, &p.data),
                        _ => continue,
                    };
                    let link = usize::try_from(iface).ok().and_then(|i| links.get(i));
                    if link != Some(&DataLink::ETHERNET) {
                        return Some(Err(format!(
                            "interface {iface} has link type {link:?}, not Ethernet"
                        )));
                    }
                    last_ts = ts;
                    data.clear();
                    data.extend_from_slice(bytes);
                    return Some(Ok(last_ts));
                }
            }
        }
    }
}

impl PcapReplay {
    /// Open `path` and read its first frame. `repeat` is how many times the file is
    /// played (0: forever). A file that is not pcap/pcapng, is not Ethernet, or whose
    /// first frame is damaged, is an error here; a damaged frame later is an error from
    /// `recv`, naming the frame.
    pub fn open(path: impl AsRef<Path>, timing: ReplayTiming, repeat: u64) -> io::Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        let reader = open_reader(&file, &path)?;
        let shared = Arc::new(pause::Shared::new(path.clone()));
        let mut me = Self {
            file,
            path,
            timing,
            repeat,
            reader,
            pass: 1,
            frame_no: 0,
            next: Next::End,
            anchor: None,
            created: Instant::now(),
            delivered_in_pass: 0,
            counters: ReplayCounters::default(),
            finished: false,
            rewrite: Rewrite::default(),
            guest_mac: MacAddress::DEFAULT,
            awaiting: VecDeque::new(),
            report: ReplayReport::default(),
            reported: false,
            shared,
        };
        me.advance();
        me.publish();
        if let Next::Failed(_) = me.next {
            if let Next::Failed(e) = std::mem::replace(&mut me.next, Next::End) {
                return Err(e);
            }
        }
        Ok(me)
    }

    /// Rewrite the addresses of the frames replayed from now on; `guest_mac` is what
    /// [`DstRewrite::Guest`] writes.
    pub fn set_rewrite(&mut self, rewrite: Rewrite, guest_mac: MacAddress) {
        self.rewrite = rewrite;
        self.guest_mac = guest_mac;
    }

    /// What the device did with the frames so far.
    pub fn report(&self) -> ReplayReport {
        let mut r = self.report;
        r.no_verdict = self.awaiting.len() as u64;
        r
    }

    /// Frames offered to the device so far.
    pub fn delivered(&self) -> u64 {
        self.counters.delivered
    }

    /// Frames the guest sent, counted and discarded.
    pub fn sent_discarded(&self) -> u64 {
        self.counters.sent_discarded
    }

    /// All counters.
    pub fn counters(&self) -> ReplayCounters {
        self.counters
    }

    /// Whether every pass has been played (or the file turned out damaged).
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// Load the frame after the current one into `next`, moving to the next pass at the
    /// end of the file.
    fn advance(&mut self) {
        let mut data = match std::mem::replace(&mut self.next, Next::End) {
            Next::Frame { data, .. } => data,
            _ => Vec::new(),
        };
        // At most two turns: the end of one pass, then the first frame of the next.
        for _ in 0..2 {
            self.frame_no = self.frame_no.saturating_add(1);
            match self.reader.next_frame(&mut data) {
                Some(Ok(ts)) => {
                    self.next = Next::Frame { ts, data };
                    return;
                }
                Some(Err(msg)) => {
                    self.next = Next::Failed(io::Error::new(
                        ErrorKind::InvalidData,
                        format!("{}: frame {}: {msg}", self.path.display(), self.frame_no),
                    ));
                    return;
                }
                None => {}
            }
            self.counters.passes += 1;
            let more = self.repeat == 0 || self.pass < self.repeat;
            // A pass that delivered nothing would loop forever: stop.
            if !more || self.delivered_in_pass == 0 {
                self.finish();
                return;
            }
            match open_reader(&self.file, &self.path) {
                Ok(r) => self.reader = r,
                Err(e) => {
                    self.next = Next::Failed(e);
                    return;
                }
            }
            self.pass += 1;
            self.frame_no = 0;
            self.delivered_in_pass = 0;
            if self.timing == ReplayTiming::Original {
                self.anchor = None;
            }
        }
    }

    fn finish(&mut self) {
        self.next = Next::End;
        if !self.finished {
            self.finished = true;
            self.maybe_report(false);
        }
    }

    /// Log the report once the file is done and every frame has its verdict (or, with
    /// `now`, at once: at shutdown).
    fn maybe_report(&mut self, now: bool) {
        if self.reported || !self.finished || (!now && !self.awaiting.is_empty()) {
            return;
        }
        self.reported = true;
        let r = self.report();
        log::info!(
            "pcap replay {}: end of file after {} pass(es): {r}; {} skipped in the file, \
             {} sent frames discarded",
            self.path.display(),
            self.counters.passes,
            self.counters.skipped,
            self.counters.sent_discarded
        );
        if r.offered > 0 && r.filtered() * 2 > r.offered {
            let hint = if r.filtered_unicast * 2 > r.offered && self.rewrite.dst.is_none() {
                ": they are addressed to the capture's hosts; rewrite_dst=guest writes the \
                 guest's MAC into unicast frames"
            } else {
                ""
            };
            log::warn!(
                "pcap replay {}: most frames ({} of {}) were filtered by the guest's receive \
                 filter{hint}",
                self.path.display(),
                r.filtered(),
                r.offered
            );
        }
    }

    /// Apply the rewrite to the frame in `buf`.
    fn rewrite_frame(&mut self, frame: &mut [u8]) {
        if frame.len() < 14 {
            return;
        }
        let unicast = frame.first().is_some_and(|b| b & 1 == 0);
        let dst = match self.rewrite.dst {
            Some(DstRewrite::Guest) => Some(self.guest_mac),
            Some(DstRewrite::Mac(m)) => Some(m),
            None => None,
        };
        if let (Some(m), true, Some(d)) = (dst, unicast, frame.get_mut(..6)) {
            d.copy_from_slice(&m.octets());
            self.report.rewritten_dst += 1;
        }
        if let (Some(m), Some(s)) = (self.rewrite.src, frame.get_mut(6..12)) {
            s.copy_from_slice(&m.octets());
            self.report.rewritten_src += 1;
        }
    }

    /// When the frame in `next` is due.
    fn due(&self, ts: Duration) -> Instant {
        let Some((at, ts0, n0)) = self.anchor else {
            return self.created;
        };
        let offset = match self.timing {
            ReplayTiming::Fast => return self.created,
            ReplayTiming::Original => ts.checked_sub(ts0).unwrap_or_default(),
            ReplayTiming::Rate(pps) => {
                let k = u128::from(self.counters.delivered.saturating_sub(n0));
                let ns = k * 1_000_000_000 / u128::from(pps.get());
                Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
            }
        };
        at.checked_add(offset).unwrap_or(at)
    }
}

impl PacketBackend for PcapReplay {
    fn name(&self) -> String {
        format!("pcap replay {}", self.path.display())
    }

    fn send(&mut self, _frame: &[u8]) -> io::Result<bool> {
        self.counters.sent_discarded += 1;
        Ok(true)
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        if self.shared.paused.load(Ordering::Acquire) {
            return Ok(None);
        }
        self.take_shift();
        let r = self.take(buf);
        self.publish();
        r
    }

    fn rx_outcome(&mut self, outcome: RxOutcome) {
        self.judged(outcome);
    }

    fn flush(&mut self) -> io::Result<()> {
        self.maybe_report(true);
        Ok(())
    }

    fn backend_counters(&self) -> Vec<BackendCounter> {
        self.counter_list()
    }

    fn next_rx_deadline(&self) -> Option<Instant> {
        if self.shared.paused.load(Ordering::Acquire) {
            return None;
        }
        match &self.next {
            Next::End => None,
            Next::Failed(_) => Some(self.created),
            Next::Frame { ts, .. } => Some(self.due(*ts)),
        }
    }
}

impl PcapReplay {
    /// `recv`'s work once not paused.
    fn take(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        // Bounded: each skipped frame is consumed.
        for _ in 0..64 {
            let ts = match &self.next {
                Next::End => return Ok(None),
                Next::Failed(_) => {
                    let Next::Failed(e) = std::mem::replace(&mut self.next, Next::End) else {
                        return Ok(None);
                    };
                    self.counters.passes += 1;
                    self.finish();
                    return Err(e);
                }
                Next::Frame { ts, .. } => *ts,
            };
            let now = Instant::now();
            if self.due(ts) > now {
                return Ok(None);
            }
            if self.anchor.is_none() {
                self.anchor = Some((now, ts, self.counters.delivered));
            }
            let delivered = match &self.next {
                Next::Frame { data, .. } if !data.is_empty() => match buf.get_mut(..data.len()) {
                    Some(dst) => {
                        dst.copy_from_slice(data);
                        Some(data.len())
                    }
                    None => None,
                },
                _ => None,
            };
            match delivered {
                Some(n) => {
                    self.counters.delivered += 1;
                    self.delivered_in_pass += 1;
                    if let Some(frame) = buf.get_mut(..n) {
                        self.rewrite_frame(frame);
                        self.awaiting.push_back(FrameClass::of(frame));
                    }
                    self.report.offered += 1;
                }
                None => {
                    if self.counters.skipped == 0 {
                        log::warn!(
                            "pcap replay {}: frame {} skipped (empty or larger than {} bytes)",
                            self.path.display(),
                            self.frame_no,
                            buf.len()
                        );
                    }
                    self.counters.skipped += 1;
                }
            }
            self.advance();
            if delivered.is_some() {
                return Ok(delivered);
            }
        }
        Ok(None)
    }

    /// What the device did with the oldest frame offered and not yet judged.
    fn judged(&mut self, outcome: RxOutcome) {
        let Some((class, long)) = self.awaiting.pop_front() else {
            return;
        };
        let r = &mut self.report;
        match (outcome, class) {
            (RxOutcome::Delivered, _) => r.accepted += 1,
            (RxOutcome::Filtered, FrameClass::Unicast) => r.filtered_unicast += 1,
            (RxOutcome::Filtered, FrameClass::Multicast) => r.filtered_multicast += 1,
            (RxOutcome::Filtered, FrameClass::Vlan) => r.filtered_vlan += 1,
            (RxOutcome::Dropped, _) if long => r.oversize += 1,
            (RxOutcome::Dropped | RxOutcome::NoRoom, _) => r.dropped += 1,
        }
        self.maybe_report(false);
    }
}
