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
//! 3. **Threads and locking.** The device is not `Sync`. A frontend with more than one
//!    thread shares it as a [`SharedDevice`] and holds the lock for one access or one
//!    service step, never across a blocking call. All DMA happens under that lock, so a
//!    change to guest memory ([`E1000::memory_mut`](crate::E1000::memory_mut)) made under
//!    it is in force for every later DMA. [`event_loop::EventLoop`] is a ready-made service
//!    thread: it follows rule 2 and sleeps in `poll(2)` between steps.
//! 4. **Memory and interrupts.** Give the device guest memory
//!    ([`set_memory`](crate::E1000::set_memory)) and an [`IrqLine`](crate::IrqLine) at
//!    creation; the line's level is the device's INTx output.

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
