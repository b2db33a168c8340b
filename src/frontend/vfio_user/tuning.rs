//! Latency tuning of the vfio-user socket thread: after a posted write that is usually
//! followed at once by another access, poll the client's stream for a short while
//! instead of going to sleep in the `vfio_user` crate's blocking receive.
//!
//! On this project's test machine (a 2-CPU VM) waking a thread that sleeps costs about
//! 20-25 us per hop; a thread that polls finds the message without that cost. See
//! docs/PERFORMANCE.md, Optimisations. `NIC_EMU_SOCKET_SPIN_US` overrides the time
//! ([`DEFAULT_SOCKET_SPIN`]; 0 turns polling off; capped at 10 ms).

use std::os::fd::RawFd;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long the socket thread polls for the next message after a TDT, IMC or IMS write.
pub const DEFAULT_SOCKET_SPIN: Duration = Duration::from_micros(200);

/// Longest poll allowed.
const MAX_SPIN: Duration = Duration::from_millis(10);

/// A duration in microseconds from the environment variable `name` (capped at 10 ms).
fn env_us(name: &str) -> Option<Duration> {
    let v = std::env::var(name).ok()?;
    let us = v.trim().parse::<u64>().ok()?;
    Some(Duration::from_micros(us).min(MAX_SPIN))
}

/// The socket thread's wait for the next message after a posted write.
#[derive(Debug)]
pub(super) struct SocketSpin {
    limit: Duration,
    /// The client's stream, found on first use (-1: not found).
    fd: Option<RawFd>,
}

impl SocketSpin {
    /// Poll for up to `limit` (0: never, at most 10 ms) after a posted write.
    pub(super) fn new(limit: Duration) -> Self {
        Self {
            limit: limit.min(MAX_SPIN),
            fd: None,
        }
    }

    /// [`DEFAULT_SOCKET_SPIN`], or `NIC_EMU_SOCKET_SPIN_US` when set.
    pub(super) fn from_env() -> Self {
        Self::new(env_us("NIC_EMU_SOCKET_SPIN_US").unwrap_or(DEFAULT_SOCKET_SPIN))
    }

    /// Poll the client's stream (the one accepted on `path`) until the next message is
    /// there or the limit passes.
    pub(super) fn after_posted_write(&mut self, path: &Path) {
        if self.limit.is_zero() {
            return;
        }
        let fd = *self
            .fd
            .get_or_insert_with(|| super::sys::connection_on(path).unwrap_or(-1));
        spin_until_readable(fd, self.limit);
    }
}

/// Poll `fd` without sleeping (yielding the CPU between polls) until it is readable or
/// `limit` (at most 10 ms) has passed. Returns whether it became readable. A negative
/// `fd` returns false at once.
fn spin_until_readable(fd: RawFd, limit: Duration) -> bool {
    if fd < 0 {
        return false;
    }
    let end = Instant::now() + limit.min(MAX_SPIN);
    loop {
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `p` is one valid, writable pollfd for the duration of the call; a zero
        // timeout never blocks.
        let rc = unsafe { libc::poll(&mut p, 1, 0) };
        if rc != 0 {
            // Readable, hung up or an error: the caller's blocking receive sees which.
            return rc > 0;
        }
        if Instant::now() >= end {
            return false;
        }
        // SAFETY: sched_yield takes no arguments and only gives up the CPU.
        unsafe { libc::sched_yield() };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn spin_returns_when_data_arrives_and_gives_up_at_the_limit() {
        let (mut a, b) = UnixStream::pair().unwrap();
        let t = Instant::now();
        assert!(!spin_until_readable(
            b.as_raw_fd(),
            Duration::from_millis(3)
        ));
        assert!(t.elapsed() >= Duration::from_millis(3));
        let w = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(2));
            a.write_all(b"x").unwrap();
            a
        });
        // Capped at 10 ms: a 5 s limit still returns when the byte comes.
        let t = Instant::now();
        assert!(spin_until_readable(b.as_raw_fd(), Duration::from_secs(5)));
        assert!(t.elapsed() < Duration::from_secs(1));
        drop(w.join().unwrap());
        assert!(!spin_until_readable(-1, Duration::from_millis(5)));
    }

    #[test]
    fn spin_limit_is_capped() {
        assert_eq!(SocketSpin::new(Duration::from_secs(9)).limit, MAX_SPIN);
        let t = Instant::now();
        let (_a, b) = UnixStream::pair().unwrap();
        assert!(!spin_until_readable(b.as_raw_fd(), Duration::from_secs(9)));
        assert!(t.elapsed() < Duration::from_millis(500));
    }
}
