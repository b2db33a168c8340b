//! End to end on other platforms and under Linux's own diagnostics: arm64 and riscv64
//! guests on QEMU's `virt` machine (`virt`) and the card as ethtool sees it (`fidelity`).
//!
//! Run: `flock /tmp/nic-emu-e2e.lock cargo test --all-features --test e2e_platforms [module::]`.

#[path = "../support/mod.rs"]
pub mod support;

mod fidelity;
mod virt;
