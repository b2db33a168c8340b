//! INTx over vfio-user: the device's level-triggered line, delivered as eventfd signals.
//!
//! The client (QEMU) hands over an eventfd in SET_IRQS (`DATA_EVENTFD | ACTION_TRIGGER`,
//! flags 0x24). Like the kernel's vfio-pci INTx, the line is *automasked*: a signal masks
//! it, and the client unmasks it (`DATA_NONE | ACTION_UNMASK`, 0x11) after the guest has
//! serviced the interrupt. QEMU sends that unmask right after the guest's next BAR access
//! (usually the interrupt cause read that lowers the line; the whole sequence is in
//! `tuning.rs`), so a line still high at unmask time is re-signalled only after the
//! client's next access, or after [`RECHECK_DELAY`] at the latest: the level semantics of
//! a real line without a spurious interrupt per interrupt.
//! `DATA_NONE | ACTION_TRIGGER` with count 0 (0x21) disables the line.

use std::fs::File;
use std::io::{self, Write};

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rustix::fs::{fcntl_getfl, fcntl_setfl, OFlags};

use crate::irq::IrqLine;

pub use vfio_bindings::bindings::vfio::{
    VFIO_IRQ_SET_ACTION_MASK as IRQ_SET_ACTION_MASK,
    VFIO_IRQ_SET_ACTION_TRIGGER as IRQ_SET_ACTION_TRIGGER,
    VFIO_IRQ_SET_ACTION_UNMASK as IRQ_SET_ACTION_UNMASK,
    VFIO_IRQ_SET_DATA_BOOL as IRQ_SET_DATA_BOOL, VFIO_IRQ_SET_DATA_EVENTFD as IRQ_SET_DATA_EVENTFD,
    VFIO_IRQ_SET_DATA_NONE as IRQ_SET_DATA_NONE,
};
use vfio_bindings::bindings::vfio::{
    VFIO_IRQ_SET_ACTION_TYPE_MASK as ACTION_MASK, VFIO_IRQ_SET_DATA_TYPE_MASK as DATA_MASK,
};

/// Longest a re-signal after an unmask waits for the client's next access.
pub const RECHECK_DELAY: Duration = Duration::from_millis(1);

/// The INTx line of a vfio-user device. Clones share the same line: give one to the
/// device as its [`IrqLine`] and keep one in the frontend for SET_IRQS.
#[derive(Clone, Debug, Default)]
pub struct IntxEventfd {
    inner: Arc<Mutex<IntxState>>,
}

#[derive(Debug, Default)]
struct IntxState {
    eventfd: Option<File>,
    /// The device's line level.
    level: bool,
    /// Automasked (signalled, not yet unmasked) or masked by the client.
    masked: bool,
    /// Unmasked while the line was high: re-signal if it is still high after the next
    /// access (or at this instant).
    recheck_at: Option<Instant>,
    /// Signals written to the eventfd.
    signals: u64,
}

impl IntxState {
    fn signal(&mut self) {
        self.recheck_at = None;
        let Some(fd) = self.eventfd.as_mut() else {
            return;
        };
        // The eventfd is non-blocking (see `checked_eventfd`): a counter the client let
        // run up to its maximum answers EAGAIN instead of blocking this thread, with the
        // interrupt and device locks held, for good. Its reader wakes anyway.
        match fd.write(&1u64.to_ne_bytes()) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                log::debug!("INTx: eventfd counter full; the client has a signal pending");
            }
            Err(e) => {
                log::warn!("INTx: writing the eventfd failed: {e}");
                return;
            }
        }
        self.masked = true;
        self.signals += 1;
    }

    fn recheck(&mut self) {
        if self.recheck_at.take().is_some() && self.level && !self.masked {
            self.signal();
        }
    }
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.to_string())
}

/// The client's INTx descriptor, if it is an eventfd, made non-blocking. Anything else (a
/// pipe, a socket, a file) is refused: a write to it could block or mean something else.
fn checked_eventfd(fd: File) -> io::Result<File> {
    use std::os::fd::AsRawFd;
    let raw = fd.as_raw_fd();
    let kind = std::fs::read_link(format!("/proc/self/fd/{raw}"))?;
    if kind.as_os_str() != "anon_inode:[eventfd]" {
        return Err(invalid(&format!(
            "the INTx descriptor is not an eventfd ({})",
            kind.display()
        )));
    }
    // The flag is shared with the client's copy, and QEMU's own eventfds are
    // non-blocking already.
    let flags = fcntl_getfl(&fd)?;
    fcntl_setfl(&fd, flags | OFlags::NONBLOCK)?;
    Ok(fd)
}

impl IntxEventfd {
    /// A disabled line (no eventfd), low.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, IntxState> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Signals written to the eventfd so far.
    pub fn signals(&self) -> u64 {
        self.lock().signals
    }

    /// Whether the line was signalled (or masked by the client) and is not yet
    /// unmasked: the guest's interrupt handler is about to run, or running, and QEMU
    /// unmasks at its first access.
    pub fn awaiting_unmask(&self) -> bool {
        let s = self.lock();
        s.eventfd.is_some() && s.masked
    }

    /// Whether an eventfd is installed.
    pub fn enabled(&self) -> bool {
        self.lock().eventfd.is_some()
    }

    /// Forget the client's eventfd and mask state (a new client connects); the level is
    /// the device's and stays.
    pub fn disconnect(&self) {
        let mut s = self.lock();
        s.eventfd = None;
        s.masked = false;
        s.recheck_at = None;
    }

    /// Whether a re-signal deferred by an unmask is waiting (the event loop should run
    /// [`poll_recheck`](Self::poll_recheck) soon).
    pub fn recheck_pending(&self) -> bool {
        self.lock().recheck_at.is_some()
    }

    /// Run a re-signal deferred by an unmask: call after serving each client access.
    pub fn after_access(&self) {
        let mut s = self.lock();
        if s.recheck_at.is_some() {
            s.recheck();
        }
    }

    /// For the event loop: run a deferred re-signal that is due, and say how long until
    /// the next one is.
    pub fn poll_recheck(&self) -> Option<Duration> {
        let mut s = self.lock();
        let at = s.recheck_at?;
        let now = Instant::now();
        if now >= at {
            s.recheck();
            None
        } else {
            Some(at - now)
        }
    }

    /// Apply a SET_IRQS message for the INTx index. `fds` are the descriptors that came
    /// with it. Unsupported combinations are `InvalidInput` errors (the client sees an
    /// error reply).
    pub fn set_irqs(
        &self,
        flags: u32,
        start: u32,
        count: u32,
        mut fds: Vec<File>,
    ) -> io::Result<()> {
        if start != 0 || count > 1 {
            return Err(invalid("INTx has exactly one vector"));
        }
        let data = flags & DATA_MASK;
        let action = flags & ACTION_MASK;
        if data.count_ones() != 1 || action.count_ones() != 1 {
            return Err(invalid(
                "SET_IRQS needs exactly one data type and one action",
            ));
        }
        let mut s = self.lock();
        match (action, data) {
            (IRQ_SET_ACTION_TRIGGER, IRQ_SET_DATA_EVENTFD) => {
                if count == 0 || fds.is_empty() {
                    s.eventfd = None;
                    s.masked = false;
                    s.recheck_at = None;
                    log::debug!("INTx: eventfd removed");
                } else {
                    let fd = fds.pop().map(checked_eventfd).transpose()?;
                    let was_enabled = s.eventfd.is_some();
                    s.eventfd = fd;
                    if !was_enabled {
                        s.masked = false;
                    }
                    log::debug!("INTx: eventfd installed (level {})", s.level);
                    // A line already high is signalled on the new eventfd.
                    if s.level && !s.masked {
                        s.signal();
                    }
                }
            }
            (IRQ_SET_ACTION_TRIGGER, IRQ_SET_DATA_NONE) => {
                if count == 0 {
                    s.eventfd = None;
                    s.masked = false;
                    s.recheck_at = None;
                    log::debug!("INTx: disabled");
                } else {
                    // Loopback test of the interrupt path.
                    s.signal();
                }
            }
            (IRQ_SET_ACTION_UNMASK, IRQ_SET_DATA_NONE) => {
                if count == 1 {
                    s.masked = false;
                    if s.level {
                        s.recheck_at = Some(Instant::now() + RECHECK_DELAY);
                    }
                }
            }
            (IRQ_SET_ACTION_MASK, IRQ_SET_DATA_NONE) => {
                if count == 1 {
                    s.masked = true;
                    s.recheck_at = None;
                }
            }
            // Unmask through an eventfd (KVM's resampling irqfd) and boolean data are
            // not supported; QEMU falls back to the plain path.
            _ => return Err(invalid("unsupported SET_IRQS action for INTx")),
        }
        Ok(())
    }
}

impl IrqLine for IntxEventfd {
    fn set_level(&mut self, asserted: bool) {
        let mut s = self.lock();
        let rising = asserted && !s.level;
        s.level = asserted;
        if !asserted {
            s.recheck_at = None;
        } else if rising && !s.masked {
            s.signal();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::event::EventfdFlags;
    use std::io::Read;
    use std::os::fd::OwnedFd;

    fn eventfd() -> File {
        File::from(
            rustix::event::eventfd(0, EventfdFlags::NONBLOCK | EventfdFlags::CLOEXEC).unwrap(),
        )
    }

    fn count(fd: &mut File) -> u64 {
        let mut b = [0u8; 8];
        match fd.read(&mut b) {
            Ok(8) => u64::from_ne_bytes(b),
            _ => 0,
        }
    }

    const TRIGGER_FD: u32 = IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_TRIGGER;
    const UNMASK: u32 = IRQ_SET_DATA_NONE | IRQ_SET_ACTION_UNMASK;
    const DISABLE: u32 = IRQ_SET_DATA_NONE | IRQ_SET_ACTION_TRIGGER;

    #[test]
    fn automask_unmask_and_deferred_resignal() {
        let mut efd = eventfd();
        let mut line = IntxEventfd::new();
        let shared = line.clone();
        shared
            .set_irqs(TRIGGER_FD, 0, 1, vec![efd.try_clone().unwrap()])
            .unwrap();
        line.set_level(true);
        assert_eq!(count(&mut efd), 1);
        // Automasked: a new edge is not signalled.
        line.set_level(false);
        line.set_level(true);
        assert_eq!(count(&mut efd), 0);
        // Unmask with the line high: nothing until the next access...
        shared.set_irqs(UNMASK, 0, 1, vec![]).unwrap();
        assert_eq!(count(&mut efd), 0);
        shared.after_access();
        assert_eq!(count(&mut efd), 1);
        // ...and nothing at all if that access lowered the line.
        shared.set_irqs(UNMASK, 0, 1, vec![]).unwrap();
        line.set_level(false);
        shared.after_access();
        assert_eq!(count(&mut efd), 0);
        // Unmasked and low: the next edge signals at once.
        line.set_level(true);
        assert_eq!(count(&mut efd), 1);
        // Without an access, the event loop's recheck does it.
        shared.set_irqs(UNMASK, 0, 1, vec![]).unwrap();
        assert!(shared.poll_recheck().is_some());
        std::thread::sleep(RECHECK_DELAY * 2);
        assert!(shared.poll_recheck().is_none());
        assert_eq!(count(&mut efd), 1);
        assert_eq!(shared.signals(), 4);
    }

    #[test]
    fn a_signal_leaves_the_line_awaiting_unmask_until_the_client_unmasks() {
        let mut efd = eventfd();
        let mut line = IntxEventfd::new();
        let shared = line.clone();
        line.set_level(true);
        assert!(
            !shared.awaiting_unmask(),
            "no eventfd: nothing was signalled"
        );
        line.set_level(false);
        shared
            .set_irqs(TRIGGER_FD, 0, 1, vec![efd.try_clone().unwrap()])
            .unwrap();
        assert!(!shared.awaiting_unmask());
        line.set_level(true);
        assert_eq!(count(&mut efd), 1);
        assert!(
            shared.awaiting_unmask(),
            "the handler's first access is next"
        );
        line.set_level(false);
        assert!(
            shared.awaiting_unmask(),
            "lowering the line does not unmask"
        );
        shared.set_irqs(UNMASK, 0, 1, vec![]).unwrap();
        assert!(!shared.awaiting_unmask());
        shared.set_irqs(DISABLE, 0, 0, vec![]).unwrap();
        line.set_level(true);
        assert!(
            !shared.awaiting_unmask(),
            "a disabled line is never awaited"
        );
    }

    #[test]
    fn a_full_blocking_eventfd_never_blocks_and_other_descriptors_are_refused() {
        // A hostile client: a *blocking* eventfd whose counter is at its maximum.
        let mut efd = File::from(rustix::event::eventfd(0, EventfdFlags::CLOEXEC).unwrap());
        efd.write_all(&(u64::MAX - 1).to_ne_bytes()).unwrap();
        let mut line = IntxEventfd::new();
        let shared = line.clone();
        shared
            .set_irqs(TRIGGER_FD, 0, 1, vec![efd.try_clone().unwrap()])
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            line.set_level(true);
            let _ = tx.send(());
        });
        rx.recv_timeout(Duration::from_secs(5))
            .expect("signalling a full eventfd blocked");
        // A pipe, a socket or a plain file is not an eventfd.
        let (r, _w) = std::io::pipe().unwrap();
        let pipe = File::from(OwnedFd::from(r));
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let sock = File::from(OwnedFd::from(a));
        for fd in [pipe, sock] {
            let e = shared.set_irqs(TRIGGER_FD, 0, 1, vec![fd]).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
        }
    }

    #[test]
    fn disable_and_bad_requests() {
        let mut efd = eventfd();
        let mut line = IntxEventfd::new();
        let shared = line.clone();
        shared
            .set_irqs(TRIGGER_FD, 0, 1, vec![efd.try_clone().unwrap()])
            .unwrap();
        shared.set_irqs(DISABLE, 0, 0, vec![]).unwrap();
        assert!(!shared.enabled());
        line.set_level(true);
        assert_eq!(count(&mut efd), 0);
        // Re-enabled while high: signalled on installation.
        shared
            .set_irqs(TRIGGER_FD, 0, 1, vec![efd.try_clone().unwrap()])
            .unwrap();
        assert_eq!(count(&mut efd), 1);
        assert!(shared.set_irqs(TRIGGER_FD, 1, 1, vec![]).is_err());
        assert!(shared.set_irqs(TRIGGER_FD, 0, 2, vec![]).is_err());
        assert!(shared
            .set_irqs(IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_UNMASK, 0, 1, vec![])
            .is_err());
        assert!(shared
            .set_irqs(
                IRQ_SET_DATA_NONE | IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_TRIGGER,
                0,
                1,
                vec![]
            )
            .is_err());
        assert!(shared.set_irqs(0, 0, 1, vec![]).is_err());
    }
}
