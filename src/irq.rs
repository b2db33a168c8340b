//! The interrupt line between the device and whatever delivers interrupts to the guest.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// A level-triggered interrupt line (the 82540EM has only INTx).
///
/// The device calls [`IrqLine::set_level`] only when the level changes.
pub trait IrqLine: Send {
    /// Drive the line high (`true`) or low (`false`).
    fn set_level(&mut self, asserted: bool);
}

/// An interrupt line that records its level and counts rising edges; for tests and for
/// embedders that poll.
#[derive(Clone, Default, Debug)]
pub struct SharedIrqLine {
    inner: Arc<SharedIrqState>,
}

#[derive(Default, Debug)]
struct SharedIrqState {
    level: AtomicBool,
    rising_edges: AtomicU64,
}

impl SharedIrqLine {
    /// A new line, low, with no edges counted.
    pub fn new() -> Self {
        Self::default()
    }
    /// The current level.
    pub fn level(&self) -> bool {
        self.inner.level.load(Ordering::Acquire)
    }
    /// How many times the line went from low to high.
    pub fn rising_edges(&self) -> u64 {
        self.inner.rising_edges.load(Ordering::Acquire)
    }
}

impl IrqLine for SharedIrqLine {
    fn set_level(&mut self, asserted: bool) {
        let was = self.inner.level.swap(asserted, Ordering::AcqRel);
        if asserted && !was {
            self.inner.rising_edges.fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// A line that goes nowhere (for a device nobody listens to).
#[derive(Default, Debug, Clone, Copy)]
pub struct NoIrq;

impl IrqLine for NoIrq {
    fn set_level(&mut self, _asserted: bool) {}
}
