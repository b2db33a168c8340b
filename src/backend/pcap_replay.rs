//! Pcap replay: the frames of a capture file (pcap or pcapng, Ethernet link type) are
//! received by the guest, at their original pace, as fast as the guest takes them, or at
//! a fixed rate; the file can be played several times. Frames the guest sends are
//! counted and discarded (to record them, wrap the replay in a
//! [`PcapRecorder`](super::PcapRecorder)).
//!
//! The backend has no descriptor: an event loop asks
//! [`next_rx_deadline`](PacketBackend::next_rx_deadline) when to call `recv` again.

use std::fs::File;
use std::io::{self, ErrorKind, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pcap_file::pcap::{PcapReadError, PcapReader};
use pcap_file::pcapng::blocks::block_common::Block;
use pcap_file::pcapng::{PcapNgReadError, PcapNgReader};
use pcap_file::DataLink;

use super::spec::ReplayTiming;
use super::PacketBackend;

/// Bytes the reader buffers; also the largest record it can parse.
const READ_BUFFER: usize = 1 << 20;

/// pcapng files start with a Section Header Block of this type.
const PCAPNG_MAGIC: [u8; 4] = [0x0A, 0x0D, 0x0D, 0x0A];

/// Counters of a [`PcapReplay`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplayCounters {
    /// Frames handed to the guest by `recv`, over all passes.
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

fn open_reader(path: &Path) -> io::Result<Reader> {
    let ctx =
        |e: String| io::Error::new(ErrorKind::InvalidData, format!("{}: {e}", path.display()));
    let mut file = File::open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
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
        let reader = open_reader(&path)?;
        let mut me = Self {
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
        };
        me.advance();
        if let Next::Failed(_) = me.next {
            if let Next::Failed(e) = std::mem::replace(&mut me.next, Next::End) {
                return Err(e);
            }
        }
        Ok(me)
    }

    /// Frames delivered to the guest so far.
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
            match open_reader(&self.path) {
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
            log::info!(
                "pcap replay {}: end of file after {} pass(es): {} frames delivered, \
                 {} skipped, {} sent frames discarded",
                self.path.display(),
                self.counters.passes,
                self.counters.delivered,
                self.counters.skipped,
                self.counters.sent_discarded
            );
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
                Some(_) => {
                    self.counters.delivered += 1;
                    self.delivered_in_pass += 1;
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

    fn next_rx_deadline(&self) -> Option<Instant> {
        match &self.next {
            Next::End => None,
            Next::Failed(_) => Some(self.created),
            Next::Frame { ts, .. } => Some(self.due(*ts)),
        }
    }
}
