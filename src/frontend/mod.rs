//! Frontends: how a guest reaches the device.
//!
//! * [`fake_bus::FakePciBus`]: an in-process PCI bus with guest RAM, BAR decoding and an
//!   interrupt line, for tests, benchmarks and embedding without root or QEMU.
//! * `vfio_user` (feature `vfio-user`): a vfio-user server QEMU attaches to.
//! * The C API (`crate::capi`) is a frontend too, driven by its embedder.
//!
//! # The frontend contract
//!
//! The device ([`E1000`](crate::E1000)) knows nothing of frontends; a frontend owes it
//! exactly this:
//!
//! 1. **Accesses.** Carry each guest access to
//!    [`config_read`](crate::E1000::config_read)/[`config_write`](crate::E1000::config_write)
//!    and [`bar_read`](crate::E1000::bar_read)/[`bar_write`](crate::E1000::bar_write),
//!    BAR-relative. A write returns an [`AccessEffect`](crate::device::AccessEffect):
//!    if `service_due`, run the service step soon (on another thread: wake it); if
//!    `next_access_soon`, the guest's next access is microseconds away. A frontend never
//!    looks at which register was hit.
//! 2. **The service step.** Call [`E1000::service`](crate::E1000::service), the one
//!    function that fires timers, finishes transmit work and takes frames from the
//!    backend, whenever: an access said `service_due`; the backend's
//!    [`rx_fd`](crate::PacketBackend::rx_fd) became readable (watch it only while the last
//!    step said [`rx_ready`](crate::device::Service::rx_ready)); the step's
//!    `timer_deadline`, `rx_deadline` or `backend_deadline` passed (the last one: the
//!    backend looks after its wire, e.g. reopens a deleted tap, and the link follows its
//!    carrier); or it said `more` (at once). After an
//!    access that did not ask for service, a timer may still have moved earlier: compare
//!    [`next_timer_deadline`](crate::E1000::next_timer_deadline) with the planned wake-up
//!    ([`waker::Waker::wake_if_earlier`]). Nothing else drives the device.
//!
//!    The accesses that make room for frames or let them in take waiting frames from the
//!    backend themselves, on the thread that carries them: a tail write that gives
//!    receive buffers back (RDT), switching the receiver on (RCTL), bus mastering or the
//!    link coming up, and the end of a transmit (a loopback-style backend has the frame
//!    now). That thread is awake and holds the device already, and the guest's receive
//!    path is a run of such writes; handing each to the service thread would add a
//!    wake-up, which costs more than the delivery (`docs/PERFORMANCE.md`). So the
//!    service step may find that a readable fd's frame is gone: it takes nothing, and
//!    the fd is not readable at the next wait.
//! 3. **Threads and locking.** The device is not `Sync`. A frontend with more than one
//!    thread shares it as a [`SharedDevice`] and holds the lock for one access or one
//!    service step, never across a blocking call. All DMA happens under that lock, so a
//!    change to guest memory ([`E1000::memory_mut`](crate::E1000::memory_mut)) made under
//!    it is in force for every later DMA. [`event_loop::EventLoop`] is a ready-made service
//!    thread: it follows rule 2 and sleeps in `poll(2)` between steps.
//! 4. **Memory and interrupts.** Give the device guest memory
//!    ([`set_memory`](crate::E1000::set_memory)) and an [`IrqLine`](crate::IrqLine) at
//!    creation; the line's level is the device's INTx output.
//!
//! # Threads
//!
//! The in-process bus and the C API run on their embedder's thread. The vfio-user server
//! and `nic-emu-cli` run these; all share one device ([`SharedDevice`]) and take its lock
//! for one access, one service step or one control command, never across a wait.
//!
//! | thread | what wakes it | locks (in this order) | how it stops |
//! |---|---|---|---|
//! | socket (the caller of `VfioUserServer::serve`; nic-emu-cli's main thread) | a client on the listener (`poll`, 100 ms); then the client's next message (blocking receive, after up to 200 us of polling when one is due, `vfio_user/tuning.rs`) | device, then INTx (`vfio_user/intx.rs`, when the device raises the line); the connection slot | `ShutdownHandle::shutdown`: a flag read every 100 ms and at each message, and the client's stream shut down |
//! | stop watcher (in `Frontend::run`) | a 50 ms sleep | the connection slot (through `shutdown`) | when `serve` returns; passes the caller's stop flag on to `shutdown` |
//! | `nic-emu-io` ([`event_loop::EventLoop`]) | its [`waker::Waker`] (an access said `service_due`, a control command, a timer moved earlier); the backend's fd while the last step said `rx_ready`; the step's deadlines (a timer, the backend's next frame, its wire's next repair), the INTx re-signal; 100 ms at most | device, then INTx | `EventLoopHandle::stop` (a flag and the waker), when the server is dropped |
//! | statistics ticker (nic-emu-cli `--stats-interval`) | a 200 ms sleep | device (the counters, every interval) | the program's stop flag |
//! | `nic-emu-control` (`crate::control`) | a client on the listener (`poll`, 200 ms) | none | its flag, read every 200 ms, when the server is dropped; joins its clients |
//! | `nic-emu-control-client`, one per client (at most 16) | a request line (read, 200 ms timeout) | device, for one command (then it wakes `nic-emu-io`), or for `record`, `replay`, `impair` only the wrapper's own state through its handle (then it wakes `nic-emu-io`); the connection slot | the client leaves, or the listener's flag |
//! | `nic-emu-metrics` (`--metrics-listen`) | a client on the listener (`poll`, 200 ms); one request at a time | device (one snapshot of the counters) | its flag, read every 200 ms, when the server is dropped |
//!
//! The device lock is always taken before INTx's, and before a backend wrapper's own
//! state (the recorder's file, the impairment's lanes: the frame path runs under the
//! device lock, a control client's handle takes the wrapper's alone); the connection
//! slot and the control and metrics servers' state are never taken with the device lock
//! held.

use std::sync::atomic::AtomicBool;

pub mod activation;
pub mod event_loop;
pub mod fake_bus;
mod shared_device;
#[cfg(feature = "vfio-user")]
pub mod vfio_user;
pub mod waker;

pub use shared_device::SharedDevice;

/// A way for a guest to reach the device (see the module documentation for what a
/// frontend owes the device).
pub trait Frontend {
    /// Serve the guest until `stop` becomes true (checked at least every few hundred
    /// milliseconds) or the frontend fails.
    fn run(&mut self, stop: &AtomicBool) -> Result<(), FrontendError>;
}

/// A frontend that could not go on.
#[derive(Debug, thiserror::Error)]
pub enum FrontendError {
    /// I/O on the frontend's transport failed.
    #[error("frontend I/O: {0}")]
    Io(#[from] std::io::Error),
    /// Anything else, described.
    #[error("{0}")]
    Other(String),
}
