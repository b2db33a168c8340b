//! Frontends: how a guest reaches the device.
//!
//! * [`fake_bus::FakePciBus`]: an in-process PCI bus with guest RAM, BAR decoding and an
//!   interrupt line, for tests, benchmarks and embedding without root or QEMU.
//! * `vfio_user` (feature `vfio-user`): a vfio-user server QEMU attaches to.

use std::sync::atomic::AtomicBool;

pub mod event_loop;
pub mod fake_bus;
#[cfg(feature = "vfio-user")]
pub mod vfio_user;

/// A way for a guest to reach the device.
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
