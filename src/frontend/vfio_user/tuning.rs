//! Latency tuning of the vfio-user socket thread: when the client's next message is
//! due within microseconds, poll the client's stream for a short while instead of
//! going to sleep in the `vfio_user` crate's blocking receive. QEMU's vCPU waits for
//! every register read and every INTx unmask, and waking a sleeping thread costs more
//! than the poll (figures and the variants measured: docs/PERFORMANCE.md, "The socket
//! thread polls where QEMU waits").
//!
//! What the socket thread receives from Linux's e1000 driver around one interrupt (the
//! rules below follow from it; other files point here):
//!
//! 1. the device raises INTx; the line is automasked (`intx.rs`) and QEMU injects it;
//! 2. the handler's first access, the cause read (ICR), which the vCPU waits for;
//! 3. right after it, QEMU's SET_IRQS UNMASK, whose reply the vCPU also waits for;
//! 4. the handler masks interrupts (IMC) and flushes that posted write with a STATUS
//!    read;
//! 5. the NAPI poll hands receive descriptors back (RDT writes, each releasing frames
//!    waiting in the backend) and may transmit (TDT);
//! 6. NAPI done: ITR and IMS writes, flushed with another STATUS read.
//!
//! The socket thread polls at four moments:
//!
//! - after a posted write that drivers follow at once with another access (the device
//!   says which: [`AccessEffect::next_access_soon`](crate::device::AccessEffect)): TDT,
//!   and the mask writes of steps 4 and 6;
//! - after the reply to the first register read after an interrupt (step 2) and to
//!   every UNMASK (step 3), whatever the traffic;
//! - after the reply to a DMA_MAP or DMA_UNMAP: behind a virtual IOMMU QEMU sends one
//!   for every buffer the guest maps or unmaps, in runs, and waits for each reply;
//! - after the reply to any register read while the guest is a paced receiver
//!   ([`ReceiveBias`]), so that the thread is awake for step 5's RDT writes. While the
//!   guest mostly transmits, or the host floods it, the host needs that CPU for the
//!   transmit work or the sender: polling is off then.
//!
//! Each arms [`SocketSpin`]; the poll runs when the crate calls
//! [`ServerBackend::before_receive`](vfio_user::ServerBackend::before_receive) (a hook
//! of nic-emu's fork of the crate, `vendor/vfio_user`), which it does only before a
//! receive that may block: never while whole messages wait in its read buffer.
//! `NIC_EMU_SOCKET_SPIN_US` overrides the time ([`DEFAULT_SOCKET_SPIN`]; 0 turns
//! polling off; capped at 10 ms).
//!
//! The same wake-ups are why [`halt_poll_hint`] exists: on a VM whose idle CPUs halt at
//! once, the server says so in its log when it starts.

use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};

/// How long the socket thread polls for the next message after a write the driver
/// follows at once, or after replying to a register read or an INTx SET_IRQS.
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
    /// A duplicate of the client's stream, once accepted.
    stream: Option<UnixStream>,
    /// Poll before the next blocking receive ([`SocketSpin::arm`]).
    armed: bool,
}

impl SocketSpin {
    /// Poll for up to `limit` (0: never, at most 10 ms) after a posted write.
    pub(super) fn new(limit: Duration) -> Self {
        Self {
            limit: limit.min(MAX_SPIN),
            stream: None,
            armed: false,
        }
    }

    /// [`DEFAULT_SOCKET_SPIN`], or `NIC_EMU_SOCKET_SPIN_US` when set.
    pub(super) fn from_env() -> Self {
        Self::new(env_us("NIC_EMU_SOCKET_SPIN_US").unwrap_or(DEFAULT_SOCKET_SPIN))
    }

    /// The client's stream (a duplicate, kept until the connection ends).
    pub(super) fn set_stream(&mut self, stream: UnixStream) {
        self.stream = Some(stream);
    }

    /// The client's stream, once accepted.
    pub(super) fn stream(&self) -> Option<&UnixStream> {
        self.stream.as_ref()
    }

    /// Poll the client's stream until the next message is there or the limit passes.
    fn spin(&mut self) {
        if self.limit.is_zero() {
            return;
        }
        if let Some(s) = &self.stream {
            spin_until_readable(s.as_fd(), self.limit);
        }
    }

    /// Poll at the next [`SocketSpin::before_receive`]: the client's next message
    /// follows the one being handled closely.
    pub(super) fn arm(&mut self) {
        self.armed = true;
    }

    /// Whether the next [`SocketSpin::before_receive`] polls.
    #[cfg(test)]
    fn is_armed(&self) -> bool {
        self.armed && !self.limit.is_zero()
    }

    /// Called before the crate's blocking receive: polls if armed since the last call.
    pub(super) fn before_receive(&mut self) {
        if std::mem::take(&mut self.armed) {
            self.spin();
        }
    }
}

/// Whether the guest is a paced receiver: decided from the device's frame counters
/// over windows of [`ReceiveBias::WINDOW`]. That is at least twice as many frames
/// received as sent in the last complete window, and some sent: a TCP receiver sends
/// one ACK per 2-40 frames, and its sender waits for them, so the host has CPU to
/// spare and the guest's register round trips are what limit the rate. Not a TCP
/// sender (it receives one ACK per 2-40 frames it sends), and not a flood the guest
/// does not answer (64-byte UDP), whose sender needs the host CPU that polling would
/// take. A window, not a single read, because the reads of one interrupt come close
/// together with no frame between them.
#[derive(Debug)]
pub(super) struct ReceiveBias {
    start: Instant,
    rx: u64,
    tx: u64,
    receiving: bool,
}

impl ReceiveBias {
    /// Length of a measuring window.
    pub(super) const WINDOW: Duration = Duration::from_millis(2);

    pub(super) fn new(now: Instant) -> Self {
        Self {
            start: now,
            rx: 0,
            tx: 0,
            receiving: false,
        }
    }

    /// Returns whether the guest is a paced receiver (the verdict of the last complete
    /// window). `totals` gives the device's running totals of received and sent
    /// frames; it is called only when a window ends.
    pub(super) fn update(&mut self, now: Instant, totals: impl FnOnce() -> (u64, u64)) -> bool {
        if now.saturating_duration_since(self.start) >= Self::WINDOW {
            let (rx_frames, tx_frames) = totals();
            let rx = rx_frames.wrapping_sub(self.rx);
            let tx = tx_frames.wrapping_sub(self.tx);
            self.receiving = tx > 0 && rx >= tx.saturating_mul(2);
            self.rx = rx_frames;
            self.tx = tx_frames;
            self.start = now;
        }
        self.receiving
    }

    /// The verdict of the last complete window.
    pub(super) fn receiving(&self) -> bool {
        self.receiving
    }
}

/// Poll `fd` without sleeping (yielding the CPU between polls) until it is readable or
/// `limit` (at most 10 ms) has passed. Returns whether it became readable.
fn spin_until_readable(fd: BorrowedFd<'_>, limit: Duration) -> bool {
    const NOW: Timespec = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let end = Instant::now() + limit.min(MAX_SPIN);
    loop {
        let mut p = [PollFd::from_borrowed_fd(fd, PollFlags::IN)];
        match poll(&mut p, Some(&NOW)) {
            // Readable, hung up or an error: the caller's blocking receive sees which.
            Ok(0) => {}
            Ok(_) => return true,
            Err(_) => return false,
        }
        if Instant::now() >= end {
            return false;
        }
        rustix::thread::sched_yield();
    }
}

/// The haltpoll cpuidle governor's polling limit, present when this machine is itself a
/// VM running Linux's haltpoll driver.
const HALT_POLL_PARAM: &str = "/sys/module/haltpoll/parameters/guest_halt_poll_ns";

/// A line for the log when this machine is a VM whose idle CPUs halt at once (the
/// governor's limit is 0; the kernel's default is 200000 ns). Every register read
/// QEMU's vCPU waits for then crosses CPUs that must be woken from a halt
/// (docs/PERFORMANCE.md, "Halt polling"). `None` on other machines.
pub(super) fn halt_poll_hint() -> Option<String> {
    halt_poll_hint_for(std::fs::read_to_string(HALT_POLL_PARAM).ok().as_deref())
}

/// [`halt_poll_hint`] for the parameter's contents (`None`: no such parameter).
fn halt_poll_hint_for(value: Option<&str>) -> Option<String> {
    let ns: u64 = value?.trim().parse().ok()?;
    (ns == 0).then(|| {
        format!(
            "vfio-user: idle CPUs of this VM halt at once ({HALT_POLL_PARAM} is 0), so each \
             register read QEMU waits for pays for waking them; the kernel's default \
             (200000) makes them much cheaper (docs/PERFORMANCE.md, \"Halt polling\")"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixStream;

    #[test]
    fn halt_poll_hint_only_when_idle_cpus_halt_at_once() {
        let hint = halt_poll_hint_for(Some("0\n")).expect("a VM that never polls gets a hint");
        assert!(hint.contains(HALT_POLL_PARAM), "{hint}");
        assert_eq!(halt_poll_hint_for(Some("200000\n")), None);
        assert_eq!(halt_poll_hint_for(None), None, "not a VM with haltpoll");
        assert_eq!(halt_poll_hint_for(Some("garbage")), None);
    }

    #[test]
    fn spin_returns_when_data_arrives_and_gives_up_at_the_limit() {
        let (mut a, b) = UnixStream::pair().unwrap();
        let t = Instant::now();
        assert!(!spin_until_readable(b.as_fd(), Duration::from_millis(3)));
        assert!(t.elapsed() >= Duration::from_millis(3));
        let w = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(2));
            a.write_all(b"x").unwrap();
            a
        });
        // A 5 s limit is capped at 10 ms, and a spin returns true once the byte is
        // there. (The writer may be scheduled late on a busy machine, so a spin may
        // give up before the byte comes: it is tried again, each try capped.)
        let start = Instant::now();
        loop {
            let t = Instant::now();
            let got = spin_until_readable(b.as_fd(), Duration::from_secs(5));
            assert!(
                t.elapsed() < Duration::from_secs(1),
                "a 5 s spin took {:?}: the 10 ms cap did not hold",
                t.elapsed()
            );
            if got {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the byte never came"
            );
        }
        drop(w.join().unwrap());
        assert!(spin_until_readable(b.as_fd(), Duration::from_secs(5)));
    }

    #[test]
    fn arming_polls_once_at_the_next_receive() {
        let (_client, server) = UnixStream::pair().unwrap();
        let limit = Duration::from_millis(8);
        let mut spin = SocketSpin::new(limit);
        spin.set_stream(server.try_clone().unwrap());
        // Not armed: no poll.
        let t = Instant::now();
        spin.before_receive();
        assert!(t.elapsed() < limit);
        // Armed: polls the idle connection for the whole limit, then disarms.
        spin.arm();
        assert!(spin.is_armed());
        let t = Instant::now();
        spin.before_receive();
        assert!(t.elapsed() >= limit);
        assert!(!spin.is_armed());
        // A zero limit never polls.
        let mut off = SocketSpin::new(Duration::ZERO);
        off.set_stream(server.try_clone().unwrap());
        off.arm();
        assert!(!off.is_armed());
        let t = Instant::now();
        off.before_receive();
        assert!(t.elapsed() < limit);
        // Before a client is accepted there is nothing to poll.
        let mut none = SocketSpin::new(limit);
        none.arm();
        let t = Instant::now();
        none.before_receive();
        assert!(t.elapsed() < limit);
    }

    #[test]
    fn receive_bias_follows_the_last_window() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut b = ReceiveBias::new(t0);
        assert!(!b.receiving());
        // Inside the first window nothing is decided.
        assert!(!b.update(ms(1), || (100, 0)));
        // A receive-heavy window (TCP receiver: 100 frames in, 5 ACKs out).
        assert!(b.update(ms(2), || (100, 5)));
        // The verdict holds until the next window ends, whatever happens inside it.
        assert!(b.update(ms(3), || (100, 500)));
        // A transmit-heavy window (TCP sender) turns it off.
        assert!(!b.update(ms(4), || (110, 500)));
        // Balanced traffic (ping) is not receive-heavy; nor is an idle window.
        assert!(!b.update(ms(6), || (120, 510)));
        assert!(!b.update(ms(8), || (120, 510)));
        // Exactly twice as many received as sent counts.
        assert!(b.update(ms(10), || (140, 520)));
        assert!(b.receiving());
        // A flood the guest does not answer is not a paced receiver.
        assert!(!b.update(ms(12), || (5140, 520)));
    }

    #[test]
    fn spin_limit_is_capped() {
        assert_eq!(SocketSpin::new(Duration::from_secs(9)).limit, MAX_SPIN);
        let t = Instant::now();
        let (_a, b) = UnixStream::pair().unwrap();
        assert!(!spin_until_readable(b.as_fd(), Duration::from_secs(9)));
        assert!(t.elapsed() < Duration::from_millis(500));
    }
}
