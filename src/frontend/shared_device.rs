//! The device shared between a frontend's threads.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::device::E1000;

/// One [`E1000`] shared by the threads of a frontend (the vfio-user socket thread, the
/// event loop, a command-line program's statistics thread). Every access to the device,
/// DMA included, happens under its lock; keep it for one access or one service step.
#[derive(Clone, Debug)]
pub struct SharedDevice(Arc<Mutex<E1000>>);

impl SharedDevice {
    /// Share `device`.
    pub fn new(device: E1000) -> Self {
        Self(Arc::new(Mutex::new(device)))
    }

    /// Lock the device. A thread that panicked while holding the lock leaves the device
    /// consistent register by register, so the lock is recovered rather than refusing
    /// service for good.
    pub fn lock(&self) -> MutexGuard<'_, E1000> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
