//! # nic-emu: an Intel 82540EM (e1000) emulator
//!
//! The device model ([`device::E1000`]) sits between two pluggable sides:
//!
//! ```text
//!   guest driver ──> Frontend ──> E1000 device model ──> PacketBackend ──> the world
//!                    (vfio-user,   (registers, EEPROM,   (tap, UDP tunnel, pcap replay,
//!                     fake PCI      PHY, interrupts,      loopback; pcap recording wraps
//!                     bus, C API)   TX/RX, statistics)    any of them)
//! ```
//!
//! * [`frontend`]: how a guest reaches the device.
//! * [`device`]: the 82540EM itself.
//! * [`backend`]: where frames go.
//! * [`memory`], [`irq`], [`clock`]: what a frontend gives the device (guest RAM, an
//!   interrupt line, time).
#![deny(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod backend;
pub mod capi;
pub mod clock;
#[cfg(feature = "config")]
pub mod config;
pub mod device;
pub mod frontend;
pub mod irq;
pub mod mac;
pub mod memory;

pub use backend::PacketBackend;
pub use clock::{Clock, ManualClock, MonotonicClock};
pub use device::{Bar, DeviceConfig, Metrics, E1000};
pub use irq::{IrqLine, SharedIrqLine};
pub use mac::MacAddress;
pub use memory::GuestRam;
