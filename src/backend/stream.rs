//! Stream socket: QEMU's `-netdev stream` framing, each Ethernet frame preceded by its
//! length as a 4-byte big-endian integer, over a Unix or TCP socket. As a client it
//! reaches passt (user-mode networking without root: DHCP, DNS, TCP/UDP to the host) or a
//! QEMU `-netdev stream,server=on`; as a server it takes a QEMU `-netdev stream` client.
//!
//! One peer at a time. When the peer goes away, a client reconnects (every 100 ms at
//! first, backing off to 2 s) and a server takes the next connection; frames sent
//! meanwhile are dropped and counted. The peer is the other end of the cable: without
//! one the backend has no [carrier](PacketBackend::carrier), so the guest sees its link
//! down from the moment the peer goes until one is connected again (a server's guest,
//! until the first peer connects). A length prefix of 0 is skipped, one larger than
//! the device can take is read past without being stored, and one larger than QEMU ever
//! sends (69632 bytes) ends the connection: the peer is not speaking this protocol.

use std::fmt;
use std::io::{self, ErrorKind, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant};

use super::{sys, BackendCounter, Carrier, PacketBackend};
use crate::sys::unix_socket;

/// Largest length prefix accepted: QEMU's `NET_BUFSIZE` (4096 + 65536). Longer ones end
/// the connection.
pub const MAX_STREAM_FRAME: usize = 4096 + 65536;
/// Bytes of frames waiting to be written before new frames are dropped.
pub const TX_BUFFER: usize = 256 * 1024;
/// Receive buffer: a length prefix and the largest frame the device takes, with room to
/// spare so that several small frames are read at once.
const RX_BUFFER: usize = 64 * 1024;
/// First wait before a client reconnects; doubled after each failure up to
/// [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// A TCP connect waits at most this long (the device thread waits with it).
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// Where the stream goes: `unix:/path` or `IP:PORT`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamAddr {
    /// A Unix socket path.
    Unix(PathBuf),
    /// A TCP address.
    Tcp(SocketAddr),
}

impl FromStr for StreamAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("`unix:` needs a path".into());
            }
            return Ok(Self::Unix(PathBuf::from(path)));
        }
        s.parse()
            .map(Self::Tcp)
            .map_err(|_| format!("`{s}` is neither unix:PATH nor IP:PORT"))
    }
}

impl fmt::Display for StreamAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unix(p) => write!(f, "unix:{}", p.display()),
            Self::Tcp(a) => write!(f, "{a}"),
        }
    }
}

/// Which end of the stream nic-emu is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamRole {
    /// Connect to a listening peer (passt, QEMU `-netdev stream,server=on`).
    Connect,
    /// Listen and take one peer at a time (QEMU `-netdev stream,server=off`).
    Listen,
}

/// Counters of a [`StreamBackend`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamCounters {
    /// Frames written (or queued whole to be written).
    pub sent: u64,
    /// Frames received and returned by `recv`.
    pub received: u64,
    /// Frames not sent: no peer, or the write buffer full.
    pub tx_dropped: u64,
    /// Frames lost because the connection ended while they were partly written.
    pub tx_lost_on_disconnect: u64,
    /// Frames read past: length 0, or larger than the caller's buffer.
    pub rx_skipped: u64,
    /// Connections ended because of a length prefix above [`MAX_STREAM_FRAME`].
    pub rx_bad_length: u64,
    /// Connections made (client) or accepted (server).
    pub connects: u64,
    /// Connections that ended.
    pub disconnects: u64,
    /// Write system calls made (inside a burst, one for all its frames).
    pub tx_writes: u64,
}

enum Conn {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Conn {
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Conn::Unix(s) => s.as_fd(),
            Conn::Tcp(s) => s.as_fd(),
        }
    }
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Unix(s) => s.read(buf),
            Conn::Tcp(s) => s.read(buf),
        }
    }
}

enum Listener {
    Unix(UnixListener),
    Tcp(TcpListener),
}

/// A QEMU-framed stream socket to one peer.
pub struct StreamBackend {
    addr: StreamAddr,
    role: StreamRole,
    listener: Option<Listener>,
    conn: Option<Conn>,
    /// Client: when to try connecting again, and the wait after that.
    retry_at: Instant,
    backoff: Duration,
    /// Received bytes not yet consumed: `rx[rx_start..rx_end]`.
    rx: Box<[u8]>,
    rx_start: usize,
    rx_end: usize,
    /// Bytes of an oversize frame still to read past.
    rx_skip: usize,
    /// Bytes queued for the peer: `tx[tx_start..]`, whole frames only.
    tx: Vec<u8>,
    tx_start: usize,
    /// Frame boundaries in `tx` (end offsets), to count frames lost on a disconnect.
    tx_frames: std::collections::VecDeque<usize>,
    /// Inside a burst (see [`PacketBackend::begin_burst`]): frames are queued, and
    /// written together when it ends (or when the queue would overflow).
    burst: bool,
    counters: StreamCounters,
    /// Unix socket file we created and remove on drop.
    unlink: Option<PathBuf>,
}

impl fmt::Debug for StreamBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamBackend")
            .field("addr", &self.addr)
            .field("role", &self.role)
            .field("connected", &self.conn.is_some())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

fn ctx(addr: &StreamAddr, what: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("stream {addr}: {what}: {e}"))
}

impl StreamBackend {
    /// Connect to, or listen on, `addr`. A server binds here (errors name the address);
    /// a client tries to connect once here and, if the peer is not there yet, again
    /// later (logged).
    pub fn open(addr: StreamAddr, role: StreamRole) -> io::Result<Self> {
        let mut me = Self {
            addr: addr.clone(),
            role,
            listener: None,
            conn: None,
            retry_at: Instant::now(),
            backoff: MIN_BACKOFF,
            rx: vec![0; RX_BUFFER].into_boxed_slice(),
            rx_start: 0,
            rx_end: 0,
            rx_skip: 0,
            tx: Vec::new(),
            tx_start: 0,
            tx_frames: Default::default(),
            counters: StreamCounters::default(),
            burst: false,
            unlink: None,
        };
        match role {
            StreamRole::Listen => {
                let listener = match &addr {
                    StreamAddr::Unix(p) => {
                        let l = unix_socket::bind_replacing_stale(p)
                            .map_err(|e| ctx(&addr, "cannot listen", e))?;
                        me.unlink = Some(p.clone());
                        l.set_nonblocking(true)?;
                        Listener::Unix(l)
                    }
                    StreamAddr::Tcp(a) => {
                        let l = TcpListener::bind(a).map_err(|e| ctx(&addr, "cannot listen", e))?;
                        l.set_nonblocking(true)?;
                        if let Ok(local) = l.local_addr() {
                            me.addr = StreamAddr::Tcp(local);
                        }
                        Listener::Tcp(l)
                    }
                };
                me.listener = Some(listener);
                log::info!("stream {}: listening for a peer", me.addr);
            }
            StreamRole::Connect => {
                if let Err(e) = me.try_connect() {
                    log::warn!(
                        "stream {}: not connected yet ({e}); retrying every {} ms to {} s",
                        me.addr,
                        MIN_BACKOFF.as_millis(),
                        MAX_BACKOFF.as_secs()
                    );
                }
            }
        }
        Ok(me)
    }

    /// The address: for a TCP server asked for port 0, with the real port.
    pub fn addr(&self) -> &StreamAddr {
        &self.addr
    }

    /// Whether a peer is connected now.
    pub fn connected(&self) -> bool {
        self.conn.is_some()
    }

    /// Counters so far.
    pub fn counters(&self) -> StreamCounters {
        self.counters
    }

    fn try_connect(&mut self) -> io::Result<()> {
        let conn = match &self.addr {
            StreamAddr::Unix(p) => {
                let s = UnixStream::connect(p)?;
                s.set_nonblocking(true)?;
                Conn::Unix(s)
            }
            StreamAddr::Tcp(a) => {
                let s = TcpStream::connect_timeout(a, CONNECT_TIMEOUT)?;
                s.set_nonblocking(true)?;
                s.set_nodelay(true)?;
                Conn::Tcp(s)
            }
        };
        self.connected_to(conn);
        Ok(())
    }

    fn connected_to(&mut self, conn: Conn) {
        self.conn = Some(conn);
        self.counters.connects += 1;
        self.backoff = MIN_BACKOFF;
        log::info!(
            "stream {}: connected (connection {})",
            self.addr,
            self.counters.connects
        );
    }

    /// Get a connection if there is none and it is time to try: the client connects, the
    /// server accepts a waiting peer. Never blocks (beyond a TCP connect's timeout).
    fn ensure_connected(&mut self) {
        if self.conn.is_some() {
            return;
        }
        match self.role {
            StreamRole::Connect => {
                let now = Instant::now();
                if now < self.retry_at {
                    return;
                }
                if let Err(e) = self.try_connect() {
                    log::debug!("stream {}: connect: {e}", self.addr);
                    self.retry_at = now + self.backoff;
                    self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                }
            }
            StreamRole::Listen => {
                let accepted = match &self.listener {
                    Some(Listener::Unix(l)) => l.accept().and_then(|(s, _)| {
                        s.set_nonblocking(true)?;
                        Ok(Conn::Unix(s))
                    }),
                    Some(Listener::Tcp(l)) => l.accept().and_then(|(s, _)| {
                        s.set_nonblocking(true)?;
                        s.set_nodelay(true)?;
                        Ok(Conn::Tcp(s))
                    }),
                    None => return,
                };
                match accepted {
                    Ok(c) => self.connected_to(c),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => log::warn!("stream {}: accept: {e}", self.addr),
                }
            }
        }
    }

    /// The peer went away (or broke the protocol): forget the connection and what was
    /// half-read or queued for it.
    fn disconnect(&mut self, why: &str) {
        if self.conn.take().is_none() {
            return;
        }
        self.counters.disconnects += 1;
        let lost = self.tx_frames.len() as u64;
        self.counters.tx_lost_on_disconnect += lost;
        self.tx.clear();
        self.tx_start = 0;
        self.tx_frames.clear();
        self.rx_start = 0;
        self.rx_end = 0;
        self.rx_skip = 0;
        self.retry_at = Instant::now() + self.backoff;
        // A peer that comes and goes must not flood the log: every disconnect is counted.
        if crate::log_limit::worth_logging(self.counters.disconnects) {
            log::warn!(
                "stream {}: connection ended ({why}); {lost} queued frame(s) lost; link down \
                 until {} ({} disconnect(s) so far)",
                self.addr,
                match self.role {
                    StreamRole::Connect => "reconnected",
                    StreamRole::Listen => "the next peer connects",
                },
                self.counters.disconnects
            );
        }
    }

    /// Write queued bytes until done or the socket is full.
    fn flush_tx(&mut self) {
        while self.tx_start < self.tx.len() {
            let Some(conn) = &self.conn else { return };
            let pending = self.tx.get(self.tx_start..).unwrap_or_default();
            self.counters.tx_writes += 1;
            match sys::send_nosignal(conn.fd(), pending) {
                Ok(0) => return self.disconnect("peer closed"),
                Ok(n) => self.tx_start = self.tx_start.saturating_add(n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return self.disconnect(&format!("write: {e}")),
            }
        }
        while self
            .tx_frames
            .front()
            .is_some_and(|&end| end <= self.tx_start)
        {
            self.tx_frames.pop_front();
        }
        if self.tx_start == self.tx.len() {
            self.tx.clear();
            self.tx_start = 0;
            self.tx_frames.clear();
        } else if self.tx_start > TX_BUFFER / 2 {
            // Keep the buffer from creeping: move the unwritten tail to the front.
            self.tx.drain(..self.tx_start);
            let shift = self.tx_start;
            for end in &mut self.tx_frames {
                *end -= shift;
            }
            self.tx_start = 0;
        }
    }

    fn drop_tx(&mut self, why: &str) -> io::Result<bool> {
        self.counters.tx_dropped += 1;
        if crate::log_limit::worth_logging(self.counters.tx_dropped) {
            log::warn!(
                "stream {}: frame not sent ({why}); {} dropped so far",
                self.addr,
                self.counters.tx_dropped
            );
        }
        Ok(false)
    }

    /// The next whole frame in the receive buffer, copied into `buf`; `None` when more
    /// bytes are needed. Skips zero-length and oversize frames; a length prefix beyond
    /// [`MAX_STREAM_FRAME`] is `Err`.
    fn parse_frame(&mut self, buf: &mut [u8]) -> Result<Option<usize>, usize> {
        loop {
            if self.rx_skip > 0 {
                let n = self.rx_skip.min(self.rx_end - self.rx_start);
                self.rx_start += n;
                self.rx_skip -= n;
                if self.rx_skip > 0 {
                    return Ok(None);
                }
            }
            let avail = self.rx.get(self.rx_start..self.rx_end).unwrap_or_default();
            let Some(hdr) = avail.get(..4) else {
                return Ok(None);
            };
            let len = u32::from_be_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
            let len = usize::try_from(len).unwrap_or(usize::MAX);
            if len > MAX_STREAM_FRAME {
                return Err(len);
            }
            // The whole frame must fit in the receive buffer too (it always does for the
            // device's buffer of MAX_FRAME bytes).
            if len == 0 || len > buf.len().min(RX_BUFFER - 4) {
                if self.counters.rx_skipped == 0 {
                    log::warn!(
                        "stream {}: skipped a frame of {len} bytes (buffer {})",
                        self.addr,
                        buf.len()
                    );
                }
                self.counters.rx_skipped += 1;
                self.rx_start += 4;
                self.rx_skip = len;
                continue;
            }
            let Some(frame) = avail.get(4..4 + len) else {
                return Ok(None);
            };
            let dst = buf.get_mut(..len).ok_or(len)?;
            dst.copy_from_slice(frame);
            self.rx_start += 4 + len;
            return Ok(Some(len));
        }
    }
}

impl PacketBackend for StreamBackend {
    fn name(&self) -> String {
        let role = match self.role {
            StreamRole::Connect => "connect",
            StreamRole::Listen => "listen",
        };
        format!("stream {role} {}", self.addr)
    }

    fn send(&mut self, frame: &[u8]) -> io::Result<bool> {
        self.ensure_connected();
        if self.conn.is_none() {
            return self.drop_tx("no peer connected");
        }
        let Ok(len) = u32::try_from(frame.len()) else {
            return self.drop_tx("frame too big");
        };
        // Inside a burst, write only when the frame would not fit in the queue.
        let fits = |s: &Self| s.tx.len() - s.tx_start + 4 + frame.len() <= TX_BUFFER;
        if !self.burst || !fits(self) {
            self.flush_tx();
            if self.conn.is_none() {
                return self.drop_tx("no peer connected");
            }
        }
        if !fits(self) {
            return self.drop_tx("peer is not reading; write buffer full");
        }
        self.tx.extend_from_slice(&len.to_be_bytes());
        self.tx.extend_from_slice(frame);
        self.tx_frames.push_back(self.tx.len());
        self.counters.sent += 1;
        if !self.burst {
            self.flush_tx();
        }
        Ok(true)
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        self.ensure_connected();
        self.flush_tx();
        // Bounded: each turn either returns or reads more bytes from the socket.
        for _ in 0..64 {
            if self.conn.is_none() {
                return Ok(None);
            }
            match self.parse_frame(buf) {
                Ok(Some(n)) => {
                    self.counters.received += 1;
                    return Ok(Some(n));
                }
                Ok(None) => {}
                Err(len) => {
                    self.counters.rx_bad_length += 1;
                    self.disconnect(&format!(
                        "length prefix {len} exceeds {MAX_STREAM_FRAME}: not this protocol"
                    ));
                    return Ok(None);
                }
            }
            // Need more bytes: make room at the end, then read.
            if self.rx_start == self.rx_end {
                self.rx_start = 0;
                self.rx_end = 0;
            } else if self.rx_start > 0 {
                self.rx.copy_within(self.rx_start..self.rx_end, 0);
                self.rx_end -= self.rx_start;
                self.rx_start = 0;
            }
            let Some(conn) = self.conn.as_mut() else {
                return Ok(None);
            };
            let Some(space) = self.rx.get_mut(self.rx_end..) else {
                return Ok(None);
            };
            match conn.read(space) {
                Ok(0) => {
                    self.disconnect("peer closed");
                    return Ok(None);
                }
                Ok(n) => self.rx_end += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    self.disconnect(&format!("read: {e}"));
                    return Ok(None);
                }
            }
        }
        Ok(None)
    }

    fn rx_fd(&self) -> Option<RawFd> {
        match (&self.conn, &self.listener) {
            (Some(c), _) => Some(c.fd().as_raw_fd()),
            (None, Some(Listener::Unix(l))) => Some(l.as_raw_fd()),
            (None, Some(Listener::Tcp(l))) => Some(l.as_raw_fd()),
            (None, None) => None,
        }
    }

    /// With frames still queued, soon, to write them. (Reconnecting is
    /// [`carrier`](PacketBackend::carrier)'s business.)
    fn next_rx_deadline(&self) -> Option<Instant> {
        (self.conn.is_some() && self.tx_start < self.tx.len())
            .then(|| Instant::now() + Duration::from_millis(1))
    }

    /// Up while a peer is connected. Without one, a client tries to connect when its
    /// back-off says so (and asks to be called then); a server takes a waiting peer
    /// (its listening socket wakes the event loop).
    fn carrier(&mut self) -> Carrier {
        self.ensure_connected();
        match (&self.conn, self.role) {
            (Some(_), _) => Carrier::UP,
            (None, StreamRole::Connect) => Carrier::down(Some(self.retry_at)),
            (None, StreamRole::Listen) => Carrier::down(None),
        }
    }

    fn carrier_note(&self) -> Option<String> {
        if self.conn.is_some() {
            return None;
        }
        Some(match self.role {
            StreamRole::Connect => format!(
                "stream {}: no peer connected; reconnecting every {} ms to {} s ({} \
                 connection(s) so far)",
                self.addr,
                MIN_BACKOFF.as_millis(),
                MAX_BACKOFF.as_secs(),
                self.counters.connects
            ),
            StreamRole::Listen => format!(
                "stream {}: waiting for a peer to connect ({} connection(s) so far)",
                self.addr, self.counters.connects
            ),
        })
    }

    fn backend_counters(&self) -> Vec<BackendCounter> {
        let c = self.counters;
        let counter = |name, help, value| BackendCounter::new("stream", name, help, value);
        vec![
            counter("sent", "Frames written or queued whole", c.sent),
            counter("received", "Frames received", c.received),
            counter(
                "tx_dropped",
                "Frames not sent: no peer, or the write buffer full",
                c.tx_dropped,
            ),
            counter(
                "tx_lost_on_disconnect",
                "Frames queued when the connection ended",
                c.tx_lost_on_disconnect,
            ),
            counter(
                "rx_skipped",
                "Frames read past: length 0 or larger than the device takes",
                c.rx_skipped,
            ),
            counter(
                "rx_bad_length",
                "Connections ended for a length prefix beyond QEMU's limit",
                c.rx_bad_length,
            ),
            counter("connects", "Connections made or accepted", c.connects),
            counter("disconnects", "Connections that ended", c.disconnects),
            counter("tx_writes", "Write system calls", c.tx_writes),
        ]
    }

    fn begin_burst(&mut self) {
        self.burst = true;
    }

    fn end_burst(&mut self) -> io::Result<()> {
        self.burst = false;
        self.flush_tx();
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_tx();
        Ok(())
    }
}

impl Drop for StreamBackend {
    fn drop(&mut self) {
        if let Some(p) = &self.unlink {
            let _ = std::fs::remove_file(p);
        }
    }
}
