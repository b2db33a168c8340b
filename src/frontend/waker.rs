//! Waking the device's service thread, and waiting for descriptors to become readable.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rustix::event::{eventfd, poll, EventfdFlags, PollFd, PollFlags, Timespec};
use rustix::io::Errno;

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
        let fd = eventfd(0, EventfdFlags::NONBLOCK | EventfdFlags::CLOEXEC)?;
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
    let ready = |p: &PollFd<'_>| {
        p.revents()
            .intersects(PollFlags::IN | PollFlags::ERR | PollFlags::HUP)
    };
    // SAFETY: both descriptors stay open across this call: the waker's own eventfd,
    // and the backend's descriptor, owned by the backend inside the device, which the
    // service step does not close while the loop waits (a descriptor closed meanwhile
    // would make poll(2) report POLLNVAL, never touch memory).
    let (a, b) = unsafe {
        (
            BorrowedFd::borrow_raw(a),
            b.map(|b| BorrowedFd::borrow_raw(b)),
        )
    };
    match b {
        Some(b) => {
            let mut fds = [
                PollFd::from_borrowed_fd(a, PollFlags::IN),
                PollFd::from_borrowed_fd(b, PollFlags::IN),
            ];
            if poll_fds(&mut fds, timeout)? == 0 {
                return Ok((false, false));
            }
            Ok((ready(&fds[0]), ready(&fds[1])))
        }
        None => {
            let mut fds = [PollFd::from_borrowed_fd(a, PollFlags::IN)];
            Ok((poll_fds(&mut fds, timeout)? > 0 && ready(&fds[0]), false))
        }
    }
}

/// Wait up to `timeout` for `fd` to become readable.
#[cfg(any(feature = "vfio-user", feature = "control"))]
pub(crate) fn poll_readable(fd: RawFd, timeout: Duration) -> io::Result<bool> {
    // SAFETY: the callers pass a listening socket that their server owns and closes
    // only after its thread, the caller, has returned.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    let mut fds = [PollFd::from_borrowed_fd(fd, PollFlags::IN)];
    Ok(poll_fds(&mut fds, timeout)? > 0 && !fds[0].revents().is_empty())
}

fn poll_fds(fds: &mut [PollFd<'_>], timeout: Duration) -> io::Result<usize> {
    // Round up so a deadline 0.3 ms away does not turn into a busy zero-timeout poll.
    let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as u64;
    let ts = Timespec {
        tv_sec: (ms / 1000) as _,
        tv_nsec: ((ms % 1000) * 1_000_000) as _,
    };
    match poll(fds, Some(&ts)) {
        Ok(n) => Ok(n),
        Err(Errno::INTR) => Ok(0),
        Err(e) => Err(e.into()),
    }
}
