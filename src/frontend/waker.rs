//! Waking the device's service thread, and waiting for descriptors to become readable.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Wakes an [`EventLoop`](super::event_loop::EventLoop) from another thread: a non-blocking eventfd.
#[derive(Debug)]
pub struct Waker {
    fd: File,
    /// When the loop plans to wake on its own, in device-clock nanoseconds.
    sleep_until: AtomicU64,
}

impl Waker {
    /// A new, unsignalled waker.
    pub fn new() -> io::Result<Self> {
        // SAFETY: eventfd takes an initial count and flags and returns a new descriptor
        // or -1; no memory is passed.
        let raw = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a freshly created descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        Ok(Self {
            fd: File::from(fd),
            sleep_until: AtomicU64::new(0),
        })
    }

    /// Make the loop run an iteration soon. Cheap (one `write(2)`); never blocks.
    pub fn wake(&self) {
        // EAGAIN means the counter is saturated: the loop is already due to wake.
        let _ = (&self.fd).write(&1u64.to_ne_bytes());
    }

    /// Wake the loop if `deadline` (device-clock nanoseconds, as from
    /// [`E1000::next_timer_deadline`](crate::E1000::next_timer_deadline)) comes before the loop's planned wake-up. A frontend
    /// calls this after each register access, which may have armed a timer (interrupt
    /// throttling, delay timers) while the loop sleeps.
    pub fn wake_if_earlier(&self, deadline: u64) {
        if deadline < self.sleep_until.load(Ordering::Acquire) {
            self.wake();
        }
    }

    /// Record when the loop will wake on its own (device-clock nanoseconds): published
    /// while the device is locked, so an access that arms an earlier timer after this
    /// sees it and wakes the loop.
    pub(crate) fn set_sleep_until(&self, at: u64) {
        self.sleep_until.store(at, Ordering::Release);
    }

    /// Consume pending wake-ups.
    pub(crate) fn drain(&self) {
        let mut b = [0u8; 8];
        let _ = (&self.fd).read(&mut b);
    }

    pub(crate) fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Wait up to `timeout` for `a` or `b` (if any) to become readable. Returns which were.
/// EINTR counts as a timeout.
pub(crate) fn poll_two(a: RawFd, b: Option<RawFd>, timeout: Duration) -> io::Result<(bool, bool)> {
    let mut fds = [
        libc::pollfd {
            fd: a,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: b.unwrap_or(-1),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    let n = poll_fds(&mut fds, timeout)?;
    if n == 0 {
        return Ok((false, false));
    }
    let ready = |p: &libc::pollfd| p.revents & (libc::POLLIN | libc::POLLERR | libc::POLLHUP) != 0;
    Ok((ready(&fds[0]), b.is_some() && ready(&fds[1])))
}

/// Wait up to `timeout` for `fd` to become readable.
#[cfg(any(feature = "vfio-user", feature = "control"))]
pub(crate) fn poll_readable(fd: RawFd, timeout: Duration) -> io::Result<bool> {
    let mut fds = [libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }];
    Ok(poll_fds(&mut fds, timeout)? > 0 && fds[0].revents != 0)
}

fn poll_fds(fds: &mut [libc::pollfd], timeout: Duration) -> io::Result<usize> {
    // Round up so a deadline 0.3 ms away does not turn into a busy zero-timeout poll.
    let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
    // SAFETY: `fds` is a valid, writable array of `fds.len()` pollfd structures for the
    // duration of the call; negative fds are ignored by poll(2).
    let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(e);
    }
    Ok(rc as usize)
}
