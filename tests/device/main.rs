//! The device (src/device) on the in-process PCI bus, as drivers reach it through the
//! driver model `support::FakeGuest`: registers, interrupts, the receive and transmit
//! paths and their offloads, loopback, the EEPROM, the smaller corners, hostile guests,
//! real driver sequences, the lints and traces of the workbench, and the event loop.
//!
//! Run: `cargo test --all-features --test device [module::]`.

#[path = "../support/mod.rs"]
pub mod support;

mod card_loopback;
mod corners;
mod drivers;
mod eeprom;
mod event_loop;
mod gso;
mod hostile;
mod interrupts;
mod lints;
mod loopback;
mod offload;
mod registers;
mod rx;
mod trace;
mod tx_hostile;
mod workbench;
