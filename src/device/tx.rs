//! The transmit engine (being written: see the TX issue work in progress).

use super::E1000;

/// Transmit-side state beyond the registers.
#[derive(Debug, Default)]
pub(crate) struct TxState {}

impl TxState {
    pub(crate) fn reset(&mut self) {}
}

impl E1000 {
    /// Process transmit descriptors from TDH to TDT.
    pub(crate) fn process_tx(&mut self) {}
}
