//! The bytes of a recording on their way to the file, kept so that the file is always a
//! pcap of whole records.
//!
//! Records are gathered in memory and written out whole ([`RecordFile::flush`]): when
//! [`BUFFER`] bytes are waiting, at most a second after a record came (the recorder
//! asks, from the service step's pass if no other record comes), and when the recording
//! ends. When a write fails part-way (the disk
//! filled up), the file is cut back ([`RecordSink::truncate`], `ftruncate(2)`) to the
//! end of the last record that reached it whole, so a reader never meets a torn record.
//!
//! What a crash can lose: records still in memory, at most [`BUFFER`] bytes or about
//! one second of traffic. Each flush writes whole records, so after nic-emu is killed
//! the file still ends on a record boundary, unless the kill lands inside a `write(2)`
//! longer than a page, which Linux then stops part-way: the last record can be torn, and
//! readers (tcpdump) read every record before it. No `fsync(2)`: a crash of the machine
//! loses what the kernel had not written back yet.

use std::fs::File;
use std::io::{self, ErrorKind, Write};

/// Bytes of records gathered before they are written out.
pub const BUFFER: usize = 64 * 1024;

/// Where a recording goes: written from its start, in order, and cut back on a failed
/// write. A [`File`] (created empty); tests use sinks that fail on purpose.
pub trait RecordSink: Write + Send {
    /// Cut the file to its first `len` bytes.
    fn truncate(&mut self, len: u64) -> io::Result<()>;
}

impl RecordSink for File {
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.set_len(len)
    }
}

/// A pcap file being written: the header, then records, each written whole or not at all.
pub struct RecordFile {
    sink: Box<dyn RecordSink>,
    /// Bytes waiting to be written: whole records (the file header first, until the
    /// first flush).
    buf: Vec<u8>,
    /// End of each record in `buf`, and whether it is a frame the guest sent (`None`:
    /// the file header).
    ends: Vec<(usize, Option<bool>)>,
    /// Bytes in the file, all of them whole records.
    written: u64,
}

impl std::fmt::Debug for RecordFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordFile")
            .field("waiting", &self.buf.len())
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

/// Why a write failed, and what is in the file now.
#[derive(Debug)]
pub struct WriteFailure {
    /// The error the sink returned.
    pub error: io::Error,
    /// Bytes in the file after cutting it back: whole records only.
    pub kept: u64,
    /// Records of frames the guest sent that were waiting and are not in the file.
    pub lost_tx: u64,
    /// Records of frames the guest received that were waiting and are not in the file.
    pub lost_rx: u64,
    /// The cut itself failed: the file may end in a torn record.
    pub truncate_error: Option<io::Error>,
}

impl std::fmt::Display for WriteFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}; the file keeps its first {} bytes, whole records ({} record(s) not written)",
            self.error,
            self.kept,
            self.lost_tx + self.lost_rx
        )?;
        if let Some(e) = &self.truncate_error {
            write!(f, "; cutting off a partly written record failed: {e}")?;
        }
        Ok(())
    }
}

impl RecordFile {
    /// Start a file in `sink` with the 24-byte pcap `header`, written at once so that
    /// even an empty recording is a valid file. On failure the sink is cut back to
    /// nothing.
    pub fn start(sink: Box<dyn RecordSink>, header: &[u8]) -> Result<Self, WriteFailure> {
        let mut f = Self {
            sink,
            buf: Vec::with_capacity(BUFFER),
            ends: Vec::new(),
            written: 0,
        };
        f.push(&[header], None);
        f.flush()?;
        Ok(f)
    }

    /// Add one record, given as its pieces (record header, data), of a frame the guest
    /// sent (`tx`) or received. Written out at once when [`BUFFER`] bytes are waiting.
    pub fn record(&mut self, parts: &[&[u8]], tx: bool) -> Result<(), WriteFailure> {
        self.push(parts, Some(tx));
        if self.buf.len() >= BUFFER {
            self.flush()?;
        }
        Ok(())
    }

    fn push(&mut self, parts: &[&[u8]], tx: Option<bool>) {
        for p in parts {
            self.buf.extend_from_slice(p);
        }
        self.ends.push((self.buf.len(), tx));
    }

    /// Whether records wait in memory for [`flush`](Self::flush).
    pub fn waiting(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Bytes in the file (whole records) plus those waiting.
    #[cfg(test)]
    fn len(&self) -> u64 {
        self.written + self.buf.len() as u64
    }

    /// Write out the waiting records. If the sink takes only part of them, the file is
    /// cut back to the last record that reached it whole, and the waiting records are
    /// dropped: the caller stops recording.
    pub fn flush(&mut self) -> Result<(), WriteFailure> {
        let mut done = 0;
        let mut failed = None;
        while done < self.buf.len() {
            match self.sink.write(&self.buf[done..]) {
                Ok(0) => {
                    failed = Some(io::Error::new(
                        ErrorKind::WriteZero,
                        "the file took no more bytes",
                    ));
                    break;
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        let Some(error) = failed else {
            self.written += self.buf.len() as u64;
            self.buf.clear();
            self.ends.clear();
            return self.sink.flush().map_err(|error| WriteFailure {
                error,
                kept: self.written,
                lost_tx: 0,
                lost_rx: 0,
                truncate_error: None,
            });
        };
        // Keep the records that reached the file whole; cut off a torn one.
        let whole = self
            .ends
            .iter()
            .take_while(|&&(end, _)| end <= done)
            .count();
        let keep = self
            .ends
            .get(whole.wrapping_sub(1))
            .map_or(0, |&(end, _)| end);
        let truncate_error = if keep < done {
            self.sink.truncate(self.written + keep as u64).err()
        } else {
            None
        };
        self.written += keep as u64;
        let lost = self.ends.get(whole..).unwrap_or_default();
        let lost_tx = lost.iter().filter(|(_, tx)| *tx == Some(true)).count() as u64;
        let lost_rx = lost.iter().filter(|(_, tx)| *tx == Some(false)).count() as u64;
        self.buf.clear();
        self.ends.clear();
        Err(WriteFailure {
            error,
            kept: self.written,
            lost_tx,
            lost_rx,
            truncate_error,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A file in memory that takes `room` bytes and then fails with ENOSPC, taking a
    /// write that crosses the limit in part, as a full file system does.
    #[derive(Clone, Default)]
    pub(crate) struct FullDisk {
        pub(crate) data: Arc<Mutex<Vec<u8>>>,
        pub(crate) room: usize,
        pub(crate) writes: Arc<Mutex<u64>>,
    }

    impl FullDisk {
        pub(crate) fn new(room: usize) -> Self {
            Self {
                room,
                ..Self::default()
            }
        }
        pub(crate) fn bytes(&self) -> Vec<u8> {
            self.data.lock().unwrap().clone()
        }
    }

    impl Write for FullDisk {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            *self.writes.lock().unwrap() += 1;
            let mut d = self.data.lock().unwrap();
            let free = self.room.saturating_sub(d.len());
            if free == 0 {
                return Err(io::Error::from_raw_os_error(libc::ENOSPC));
            }
            let n = free.min(b.len());
            d.extend_from_slice(&b[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl RecordSink for FullDisk {
        fn truncate(&mut self, len: u64) -> io::Result<()> {
            self.data.lock().unwrap().truncate(len as usize);
            Ok(())
        }
    }

    fn rec(n: usize, fill: u8) -> Vec<u8> {
        let mut r = (n as u32).to_ne_bytes().to_vec();
        r.extend(std::iter::repeat_n(fill, n));
        r
    }

    #[test]
    fn a_partial_write_is_cut_back_to_the_last_whole_record() {
        let disk = FullDisk::new(24 + 3 * 104 + 50);
        let mut f = RecordFile::start(Box::new(disk.clone()), &[7u8; 24]).unwrap();
        assert_eq!(disk.bytes().len(), 24, "the header is written at once");
        for i in 0..5 {
            f.record(&[&rec(100, i)], i % 2 == 0).unwrap();
        }
        let fail = f.flush().unwrap_err();
        assert_eq!(fail.error.raw_os_error(), Some(libc::ENOSPC));
        assert_eq!(fail.kept, 24 + 3 * 104);
        assert_eq!(
            (fail.lost_tx, fail.lost_rx),
            (1, 1),
            "records 4 (rx) and 5 (tx)"
        );
        assert!(fail.truncate_error.is_none());
        let bytes = disk.bytes();
        assert_eq!(bytes.len(), 24 + 3 * 104, "the torn fourth record is gone");
        assert_eq!(bytes[24 + 2 * 104 + 4], 2, "third record intact");
    }

    #[test]
    fn a_failure_on_a_record_boundary_cuts_nothing() {
        let disk = FullDisk::new(24 + 104);
        let mut f = RecordFile::start(Box::new(disk.clone()), &[7u8; 24]).unwrap();
        f.record(&[&rec(100, 1)], true).unwrap();
        f.record(&[&rec(100, 2)], true).unwrap();
        let fail = f.flush().unwrap_err();
        assert_eq!(fail.kept, 24 + 104);
        assert_eq!(disk.bytes().len(), 24 + 104);
    }

    #[test]
    fn no_room_for_the_header_leaves_an_empty_file() {
        let disk = FullDisk::new(10);
        let fail = RecordFile::start(Box::new(disk.clone()), &[7u8; 24]).unwrap_err();
        assert_eq!(fail.kept, 0);
        assert!(disk.bytes().is_empty());
    }

    #[test]
    fn records_wait_until_the_buffer_fills_then_go_out_whole() {
        let disk = FullDisk::new(usize::MAX);
        let mut f = RecordFile::start(Box::new(disk.clone()), &[7u8; 24]).unwrap();
        let one = rec(1000, 3);
        let mut n = 0;
        while disk.bytes().len() == 24 {
            f.record(&[&one], false).unwrap();
            n += 1;
            assert!(n * one.len() <= BUFFER + one.len(), "never written out");
        }
        assert_eq!(disk.bytes().len(), 24 + n * one.len());
        assert_eq!(f.len(), disk.bytes().len() as u64);
    }
}
