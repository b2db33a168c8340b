// Copyright nic-emu contributors.
// SPDX-License-Identifier: Apache-2.0
//
// nic-emu fork: the server's side of a connection, read through a buffer.

//! The server reads its client's messages through a buffer: one `recvmsg` takes a
//! message's header and body together, and every message queued behind it (QEMU posts
//! BAR writes, so they come in runs). Upstream read each message with two or three
//! calls (the header, the fixed part, the data).
//!
//! File descriptors: the kernel attaches the descriptors of a `sendmsg` to the first
//! bytes that call sent, and a `recvmsg` on a Unix stream socket stops right after the
//! data that carried descriptors. A client that sends each message with descriptors
//! starting at its header (QEMU does) therefore has them arrive in a read in which
//! that message's header begins and no later header does. [`MessageStream::take_fds`]
//! gives the descriptors of a read to the last message whose header begins in it.
//! Descriptors that match no message are closed.

use libc::{c_void, iovec};
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::io::{FromRawFd, RawFd};
use std::os::unix::net::UnixStream;
use vmm_sys_util::sock_ctrl_msg::ScmSocket;

/// Bytes read ahead at most.
const BUFFER: usize = 64 * 1024;

/// Descriptors a client sends with one message at most (the protocol's limit).
const MAX_FDS: usize = 16;

/// Descriptors that came with one read, and the stream positions that read covered.
#[derive(Debug)]
struct FdBatch {
    files: Vec<File>,
    from: u64,
    to: u64,
}

/// A client's stream, read through a buffer.
#[derive(Debug)]
pub(crate) struct MessageStream {
    stream: UnixStream,
    buf: Box<[u8]>,
    /// `buf[start..end]` is read but not yet taken.
    start: usize,
    end: usize,
    /// Stream position of `buf[start]`: bytes taken since the connection began.
    pos: u64,
    fds: Option<FdBatch>,
}

impl MessageStream {
    pub(crate) fn new(stream: UnixStream) -> Self {
        Self {
            stream,
            buf: vec![0; BUFFER].into_boxed_slice(),
            start: 0,
            end: 0,
            pos: 0,
            fds: None,
        }
    }

    /// The stream, for replies and shutdown.
    pub(crate) fn stream(&mut self) -> &mut UnixStream {
        &mut self.stream
    }

    /// Stream position of the next byte [`MessageStream::read_exact`] takes.
    pub(crate) fn position(&self) -> u64 {
        self.pos
    }

    /// Bytes read from the socket and not yet taken.
    pub(crate) fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// One `recvmsg` into the emptied buffer (blocking). Called only when every byte
    /// read before was taken. Returns the bytes read, 0 at the end of the stream.
    fn fill(&mut self) -> io::Result<usize> {
        debug_assert_eq!(self.start, self.end, "fill with bytes not yet taken");
        self.start = 0;
        self.end = 0;
        let free = &mut self.buf[..];
        let mut iov = [iovec {
            iov_base: free.as_mut_ptr() as *mut c_void,
            iov_len: free.len(),
        }];
        let mut raw: [RawFd; MAX_FDS] = [-1; MAX_FDS];
        // A signal that interrupts the wait is retried, as std's `read_exact` (which
        // upstream used for everything after the header) does.
        let (bytes, nfds) = loop {
            // SAFETY: the iovec describes `free`, a writable part of `self.buf` that
            // lives (and is not otherwise borrowed) for the whole call, and `raw` has
            // room for MAX_FDS descriptors, the length passed.
            match unsafe { self.stream.recv_with_fds(&mut iov, &mut raw) } {
                Ok(r) => break r,
                Err(e) if e.errno() == libc::EINTR => continue,
                Err(e) => return Err(io::Error::from_raw_os_error(e.errno())),
            }
        };
        let bytes = bytes.min(free.len());
        if nfds > 0 {
            let files = raw[..nfds.min(MAX_FDS)]
                .iter()
                // SAFETY: the kernel just installed these descriptors in this process
                // for us; nothing else owns them, and each is wrapped exactly once.
                .map(|&fd| unsafe { File::from_raw_fd(fd) })
                .collect();
            let from = self.pos;
            // Any earlier batch no message took is dropped here, which closes it.
            self.fds = Some(FdBatch {
                files,
                from,
                to: from + bytes as u64,
            });
        }
        self.end = bytes;
        Ok(bytes)
    }

    /// Fills `out` from the buffer, reading the socket when it runs dry.
    pub(crate) fn read_exact(&mut self, out: &mut [u8]) -> io::Result<()> {
        let mut done = 0;
        while done < out.len() {
            if self.start == self.end && self.fill()? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let n = (out.len() - done).min(self.end - self.start);
            out[done..done + n].copy_from_slice(&self.buf[self.start..self.start + n]);
            self.start += n;
            self.pos += n as u64;
            done += n;
        }
        Ok(())
    }

    /// Takes and drops `count` bytes. Returns how many there were before the end of
    /// the stream.
    pub(crate) fn skip(&mut self, count: u64) -> io::Result<u64> {
        let mut left = count;
        while left > 0 {
            if self.start == self.end && self.fill()? == 0 {
                break;
            }
            let n = left.min((self.end - self.start) as u64) as usize;
            self.start += n;
            self.pos += n as u64;
            left -= n as u64;
        }
        Ok(count - left)
    }

    /// The descriptors that came with the message whose header begins at stream
    /// position `header` and that is `size` bytes long: those of a read in which this
    /// header begins and the next one does not. Call once per message, in order.
    pub(crate) fn take_fds(&mut self, header: u64, size: u32) -> Vec<File> {
        let Some(batch) = &self.fds else {
            return Vec::new();
        };
        if header >= batch.to {
            // A later message: the batch belonged to none (a client that sends
            // descriptors with the middle of a message). Close them.
            self.fds = None;
            return Vec::new();
        }
        let last_in_read = header.saturating_add(u64::from(size)) >= batch.to;
        if header >= batch.from && last_in_read {
            return self.fds.take().map(|b| b.files).unwrap_or_default();
        }
        Vec::new()
    }

    /// Writes `parts` one after another with as few system calls as the socket
    /// allows (one, for replies that fit its buffer).
    pub(crate) fn write_parts(&mut self, parts: &[&[u8]]) -> io::Result<()> {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let mut written = 0;
        while written < total {
            let mut skip = written;
            let mut slices = Vec::with_capacity(parts.len());
            for p in parts {
                if skip >= p.len() {
                    skip -= p.len();
                    continue;
                }
                slices.push(io::IoSlice::new(&p[skip..]));
                skip = 0;
            }
            match self.stream.write_vectored(&slices) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::AsRawFd;

    fn pair() -> (UnixStream, MessageStream) {
        let (a, b) = UnixStream::pair().unwrap();
        (a, MessageStream::new(b))
    }

    fn memfd() -> File {
        // SAFETY: memfd_create takes a NUL-terminated name and flags; the descriptor it
        // returns (checked) is owned by the File.
        let fd = unsafe { libc::memfd_create(c"t".as_ptr(), 0) };
        assert!(fd >= 0);
        // SAFETY: fd was just created and is owned by nothing else.
        unsafe { File::from_raw_fd(fd) }
    }

    fn send(a: &UnixStream, data: &[u8], fds: &[RawFd]) {
        let n = a.send_with_fds(&[data], fds).unwrap();
        assert_eq!(n, data.len());
    }

    #[test]
    fn messages_sent_together_are_read_with_one_call() {
        let (mut a, mut s) = pair();
        a.write_all(b"0123456789").unwrap();
        let mut x = [0u8; 4];
        s.read_exact(&mut x).unwrap();
        assert_eq!(&x, b"0123");
        assert_eq!(s.buffered(), 6);
        assert_eq!(s.position(), 4);
        let mut y = [0u8; 6];
        s.read_exact(&mut y).unwrap();
        assert_eq!(&y, b"456789");
        drop(a);
        assert_eq!(
            s.read_exact(&mut x).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
    }

    #[test]
    fn a_message_larger_than_the_buffer_is_read_whole() {
        let (a, mut s) = pair();
        let data: Vec<u8> = (0..3 * BUFFER + 7).map(|i| i as u8).collect();
        let sent = data.clone();
        let w = std::thread::spawn(move || {
            let mut a = a;
            a.write_all(&sent).unwrap();
            a
        });
        let mut got = vec![0u8; data.len()];
        s.read_exact(&mut got).unwrap();
        assert_eq!(got, data);
        drop(w.join().unwrap());
    }

    #[test]
    fn descriptors_go_to_the_message_that_carried_them() {
        let (a, mut s) = pair();
        // Message A (8 bytes, no descriptor), then B (8 bytes) with one, then C.
        send(&a, b"AAAAAAAA", &[]);
        let f = memfd();
        send(&a, b"BBBBBBBB", &[f.as_raw_fd()]);
        send(&a, b"CCCCCCCC", &[]);
        let mut m = [0u8; 8];
        let at = s.position();
        s.read_exact(&mut m).unwrap();
        assert_eq!(&m, b"AAAAAAAA");
        // One read took A and B (and stopped after the descriptors).
        assert!(s.take_fds(at, 8).is_empty(), "A sent no descriptor");
        let at = s.position();
        s.read_exact(&mut m).unwrap();
        assert_eq!(&m, b"BBBBBBBB");
        assert_eq!(s.take_fds(at, 8).len(), 1);
        let at = s.position();
        s.read_exact(&mut m).unwrap();
        assert_eq!(&m, b"CCCCCCCC");
        assert!(s.take_fds(at, 8).is_empty());
    }

    #[test]
    fn stray_descriptors_are_closed_not_given_to_a_later_message() {
        let (a, mut s) = pair();
        // Descriptors sent with the middle of a 12-byte message.
        send(&a, b"HHHH", &[]);
        let mut h = [0u8; 4];
        let at = s.position();
        s.read_exact(&mut h).unwrap();
        let f = memfd();
        send(&a, b"bodybody", &[f.as_raw_fd()]);
        let mut body = [0u8; 8];
        s.read_exact(&mut body).unwrap();
        assert!(
            s.take_fds(at, 12).is_empty(),
            "its header came in an earlier read"
        );
        send(&a, b"NEXT", &[]);
        let at = s.position();
        s.read_exact(&mut h).unwrap();
        assert!(s.take_fds(at, 4).is_empty());
        assert!(s.fds.is_none(), "the stray batch is dropped");
    }

    #[test]
    fn skip_stops_at_the_end_of_the_stream() {
        let (mut a, mut s) = pair();
        a.write_all(&[7u8; 100]).unwrap();
        assert_eq!(s.skip(60).unwrap(), 60);
        drop(a);
        assert_eq!(s.skip(60).unwrap(), 40);
        assert_eq!(s.position(), 100);
    }

    #[test]
    fn parts_are_written_in_order() {
        let (mut a, mut s) = pair();
        s.write_parts(&[b"head", b"", b"er-and-data"]).unwrap();
        let mut got = [0u8; 15];
        a.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"header-and-data");
    }
}
