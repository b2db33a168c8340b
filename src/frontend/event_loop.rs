//! The device's own thread: receive frames and fire mitigation timers while the frontend
//! thread serves register accesses.
//!
//! A frontend that reaches the device from one thread (the vfio-user socket thread, say)
//! cannot also wait for frames arriving from the backend. [`EventLoop`] does that part: it
//! calls [`E1000::service`] and sleeps in `poll(2)` on the backend's
//! [`rx_fd`](crate::PacketBackend::rx_fd) and on a [`Waker`], until the deadlines the
//! service step returned.
//!
//! The frontend wakes the loop (see [`Waker::wake`]) after an access whose
//! [`AccessEffect::service_due`](crate::device::AccessEffect::service_due) is set, and
//! calls [`Waker::wake_if_earlier`] with the device's next timer deadline after the others.
//!
//! The loop watches the backend's fd only while the last service step said
//! [`rx_ready`](crate::device::Service::rx_ready): while the device cannot take the next
//! frame (ring full, receiver off, a failed `recv`) a readable fd would only make it spin.
//! The access that changes that wakes it ([`AccessEffect::service_due`](crate::device::AccessEffect::service_due)),
//! or the step's `rx_deadline` brings it back. Accesses on the frontend's thread take
//! frames too (the frontend contract says which and why), so the loop may wake for a
//! frame that is already gone: the step then takes nothing and the loop sleeps again.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::shared_device::SharedDevice;
use super::waker::{poll_two, Waker};
use crate::clock::Clock;
#[cfg(doc)]
use crate::device::E1000;

/// Something the loop runs on every iteration, returning how soon it wants to run again
/// (`None`: no deadline). The vfio-user frontend uses it for deferred interrupt work.
pub type LoopHook = Box<dyn FnMut() -> Option<Duration> + Send>;

/// Waits for frames and timer deadlines and lets the device act on them.
pub struct EventLoop {
    device: SharedDevice,
    clock: Arc<dyn Clock>,
    waker: Arc<Waker>,
    stop: Arc<AtomicBool>,
    hook: Option<LoopHook>,
    max_sleep: Duration,
}

impl std::fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLoop")
            .field("max_sleep", &self.max_sleep)
            .finish()
    }
}

/// What one iteration saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Iteration {
    /// Frames the device delivered to the guest.
    pub delivered: usize,
    /// The waker had been signalled.
    pub woken: bool,
    /// The backend's fd was readable.
    pub rx_readable: bool,
}

impl EventLoop {
    /// A loop for `device`, whose timers read `clock` (the same clock the device uses).
    pub fn new(device: SharedDevice, clock: Arc<dyn Clock>) -> io::Result<Self> {
        Ok(Self {
            device,
            clock,
            waker: Arc::new(Waker::new()?),
            stop: Arc::new(AtomicBool::new(false)),
            hook: None,
            max_sleep: Duration::from_millis(100),
        })
    }

    /// The waker that interrupts this loop's sleep.
    pub fn waker(&self) -> Arc<Waker> {
        self.waker.clone()
    }

    /// Longest sleep between iterations even when nothing is due (default 100 ms).
    pub fn set_max_sleep(&mut self, d: Duration) {
        self.max_sleep = d.max(Duration::from_millis(1));
    }

    /// Run `hook` on every iteration (replacing any earlier hook).
    pub fn set_hook(&mut self, hook: LoopHook) {
        self.hook = Some(hook);
    }

    /// Run iterations until [`EventLoopHandle::stop`] (or the stop flag) is set.
    pub fn run(&mut self) {
        while !self.stop.load(Ordering::Acquire) {
            if let Err(e) = self.iterate() {
                log::warn!("event loop: poll failed: {e}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    /// Start [`run`](Self::run) on a thread named `nic-emu-io`.
    pub fn spawn(mut self) -> io::Result<EventLoopHandle> {
        let stop = self.stop.clone();
        let waker = self.waker.clone();
        let thread = std::thread::Builder::new()
            .name("nic-emu-io".into())
            .spawn(move || {
                #[cfg(feature = "sandbox")]
                crate::sandbox::enter(crate::sandbox::ThreadKind::EventLoop);
                self.run()
            })?;
        Ok(EventLoopHandle {
            stop,
            waker,
            thread: Some(thread),
        })
    }

    /// Let the device work, then sleep until something is due: one iteration.
    pub fn iterate(&mut self) -> io::Result<Iteration> {
        let (delivered, watch_rx, wait) = {
            let mut d = self.device.lock();
            let service = d.service();
            let rx_fd = d.backend_mut().rx_fd();
            let now = self.clock.now_ns();
            let mut wait = self.max_sleep;
            if let Some(hook) = self.hook.as_mut() {
                if let Some(w) = hook() {
                    wait = wait.min(w);
                }
            }
            if let Some(deadline) = service.timer_deadline {
                wait = wait.min(Duration::from_nanos(deadline.saturating_sub(now)));
            }
            for deadline in [service.rx_deadline, service.backend_deadline]
                .into_iter()
                .flatten()
            {
                wait = wait.min(deadline.saturating_duration_since(Instant::now()));
            }
            if service.more {
                // Come straight back (after letting the frontend take the lock).
                wait = Duration::ZERO;
            }
            // Published while the device is locked: an access that arms an earlier timer
            // after this point sees it and wakes us (Waker::wake_if_earlier).
            let wait_ns = u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX);
            self.waker.set_sleep_until(now.saturating_add(wait_ns));
            // The backend's fd only while the device can take the next frame.
            let watch_rx = rx_fd.filter(|_| service.rx_ready);
            (service.delivered, watch_rx, wait)
        };
        let (woken, rx_readable) = poll_two(self.waker.raw_fd(), watch_rx, wait)?;
        if woken {
            self.waker.drain();
        }
        Ok(Iteration {
            delivered,
            woken,
            rx_readable,
        })
    }
}

/// Controls a spawned [`EventLoop`]; stops and joins it when dropped.
#[derive(Debug)]
pub struct EventLoopHandle {
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    thread: Option<JoinHandle<()>>,
}

impl EventLoopHandle {
    /// The loop's waker.
    pub fn waker(&self) -> Arc<Waker> {
        self.waker.clone()
    }

    /// Ask the loop to end and wait for its thread.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.waker.wake();
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                log::error!("event loop thread panicked");
            }
        }
    }
}

impl Drop for EventLoopHandle {
    fn drop(&mut self) {
        self.stop();
    }
}
