//! The programs and interfaces a user meets: nic-emu-cli, the control socket, the README's
//! examples as written, the C API from C and the Rust examples.
//!
//! Run: `cargo test --all-features --test program [module::]`.

#[path = "../support/mod.rs"]
pub mod support;

mod c_api;
mod cli;
mod control;
mod examples;
mod readme;
