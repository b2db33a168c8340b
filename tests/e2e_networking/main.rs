//! End to end with real QEMU guests on nic-emu-cli without a tap (`networking`: passt
//! behind `stream`, UDP multicast) and against Linux's own vxlan devices (`vxlan`).
//!
//! Run: `flock /tmp/nic-emu-e2e.lock cargo test --all-features --test e2e_networking [module::]`.

#[path = "../support/mod.rs"]
pub mod support;

mod networking;
mod vxlan;
