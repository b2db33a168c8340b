//! A tiny HTTP/1.x responder for Prometheus: `GET /metrics` (or `HEAD`) answers the
//! counters in the text format; any other path is 404, any other method 405. Requests
//! are read up to [`MAX_HEAD`] bytes with a timeout, one connection at a time, and every
//! response closes the connection. Standard library only.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::prometheus;
use super::snapshot::Snapshot;
use super::ControlContext;
use crate::frontend::waker::poll_readable;

/// Largest request head (request line and headers) read.
pub const MAX_HEAD: usize = 8192;
/// Time a client has to send its request, and to take the response.
pub const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// A running metrics endpoint; stopped on drop.
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    /// The listener and context, until [`spawn`](MetricsServer::spawn) hands them over.
    pending: Option<(TcpListener, Arc<ControlContext>)>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for MetricsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl MetricsServer {
    /// Listen on `addr` (port 0: any free port, see [`addr`](Self::addr)).
    pub fn start(addr: SocketAddr, ctx: Arc<ControlContext>) -> io::Result<Self> {
        let mut s = Self::bind(addr, ctx)?;
        s.spawn()?;
        Ok(s)
    }

    /// Listen on `addr` but answer nothing until [`spawn`](Self::spawn).
    pub fn bind(addr: SocketAddr, ctx: Arc<ControlContext>) -> io::Result<Self> {
        let listener = TcpListener::bind(addr)
            .map_err(|e| io::Error::new(e.kind(), format!("metrics listen {addr}: {e}")))?;
        let addr = listener.local_addr()?;
        Ok(Self {
            addr,
            stop: Arc::new(AtomicBool::new(false)),
            pending: Some((listener, ctx)),
            thread: None,
        })
    }

    /// Start the serving thread (`nic-emu-metrics`), once.
    pub fn spawn(&mut self) -> io::Result<()> {
        let Some((listener, ctx)) = self.pending.take() else {
            return Ok(());
        };
        let st = self.stop.clone();
        let thread = std::thread::Builder::new()
            .name("nic-emu-metrics".into())
            .spawn(move || {
                #[cfg(feature = "sandbox")]
                crate::sandbox::enter(crate::sandbox::ThreadKind::Metrics);
                while !st.load(Ordering::Acquire) {
                    match poll_readable(listener.as_raw_fd(), Duration::from_millis(200)) {
                        Ok(true) => {}
                        Ok(false) => continue,
                        Err(_) => {
                            std::thread::sleep(Duration::from_millis(200));
                            continue;
                        }
                    }
                    if let Ok((s, _)) = listener.accept() {
                        if let Err(e) = serve(&s, &ctx) {
                            log::debug!("metrics: client: {e}");
                        }
                    }
                }
            })?;
        self.thread = Some(thread);
        Ok(())
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Read the request head: up to the blank line, [`MAX_HEAD`] bytes, [`IO_TIMEOUT`].
/// `None` when it is too long.
fn read_head(s: &TcpStream) -> io::Result<Option<Vec<u8>>> {
    let deadline = Instant::now() + IO_TIMEOUT;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            return Ok(Some(head));
        }
        if head.len() > MAX_HEAD {
            return Ok(None);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(ErrorKind::TimedOut, "request head too slow"));
        }
        s.set_read_timeout(Some(left))?;
        match (&*s).read(&mut buf)? {
            0 => {
                return Err(io::Error::new(
                    ErrorKind::UnexpectedEof,
                    "closed mid-request",
                ))
            }
            n => head.extend_from_slice(buf.get(..n).unwrap_or_default()),
        }
    }
}

fn respond(
    s: &TcpStream,
    status: &str,
    ctype: &str,
    body: &str,
    head_only: bool,
) -> io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if !head_only {
        out.push_str(body);
    }
    (&*s).write_all(out.as_bytes())?;
    let _ = s.shutdown(std::net::Shutdown::Write);
    Ok(())
}

fn serve(s: &TcpStream, ctx: &ControlContext) -> io::Result<()> {
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    let text = "text/plain; charset=utf-8";
    let Some(head) = read_head(s)? else {
        return respond(
            s,
            "431 Request Header Fields Too Large",
            text,
            "request too large\n",
            false,
        );
    };
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if !parts.next().is_some_and(|v| v.starts_with("HTTP/1.")) {
        return respond(s, "400 Bad Request", text, "bad request line\n", false);
    }
    let head_only = method == "HEAD";
    if method != "GET" && !head_only {
        return respond(s, "405 Method Not Allowed", text, "GET /metrics\n", false);
    }
    let path = target.split('?').next().unwrap_or("");
    if path != "/metrics" {
        return respond(
            s,
            "404 Not Found",
            text,
            "not found; the counters are at /metrics\n",
            head_only,
        );
    }
    let body = prometheus::render(&Snapshot::take(ctx));
    respond(s, "200 OK", prometheus::CONTENT_TYPE, &body, head_only)
}
