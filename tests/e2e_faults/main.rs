//! End to end with real QEMU guests: backends that fail safely (`faults`), QEMU killed
//! mid-transfer and a card started with the cable out (`lifecycle`), and the control plane
//! at run time (`control`: the cable, recording, Prometheus counters).
//!
//! Run: `flock /tmp/nic-emu-e2e.lock cargo test --all-features --test e2e_faults [module::]`.

#[path = "../support/mod.rs"]
pub mod support;

mod control;
mod faults;
mod lifecycle;
