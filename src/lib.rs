//! # nic-emu: an Intel 82540EM (e1000) emulator
//!
//! Unmodified e1000 drivers (Linux `e1000`, iPXE, DPDK `em`) run against this model. It
//! is a library first: the `nic-emu-cli` program (feature `cli`) is a thin layer that
//! serves the device to QEMU over vfio-user; a Rust program can embed the device
//! directly, and a C program through the static library and `include/nic_emu.h`
//! ([`capi`]).
//!
//! ## Architecture
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
//! * [`frontend`]: how a guest reaches the device: [`frontend::fake_bus::FakePciBus`]
//!   (in-process, for tests and embedding) and the vfio-user server (feature
//!   `vfio-user`).
//! * [`device`]: the 82540EM itself. A frontend calls [`E1000::config_read`],
//!   [`E1000::bar_read`], [`E1000::bar_write`] and friends; the device does DMA into
//!   [`GuestRam`], raises its [`IrqLine`] and hands frames to its [`PacketBackend`].
//! * [`backend`]: where frames go ([`backend::Loopback`] needs nothing; tap, UDP and pcap
//!   are behind features of the same names). Implement [`PacketBackend`] for your own.
//! * [`memory`], [`irq`], [`clock`]: what a frontend gives the device (guest RAM, an
//!   interrupt line, time). Timers read a [`Clock`], so [`ManualClock`] makes interrupt
//!   moderation deterministic.
//! * [`wire`]: facts about frames that the device and the backends share (the Internet
//!   checksum, EtherTypes and VLAN tags, header views), so neither reaches into the other.
//! * [`capi`]: the same device behind `extern "C"` functions.
//!
//! `cargo build --lib --no-default-features` builds the library alone, with none of the
//! program's dependencies.
//!
//! ## Embedding in Rust
//!
//! A guest on the in-process bus, wired to a loopback: it enables bus mastering, sets up
//! one receive and one transmit ring, sends a frame to itself and finds it in the receive
//! ring. (`examples/loopback_demo.rs` is the longer version with EEPROM and interrupts.)
//!
//! ```
//! use std::sync::Arc;
//! use nic_emu::backend::Loopback;
//! use nic_emu::device::pci_config::{offsets, COMMAND_BUS_MASTER};
//! use nic_emu::device::regs::*;
//! use nic_emu::frontend::fake_bus::{FakeBusConfig, FakePciBus};
//! use nic_emu::{MacAddress, ManualClock};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = FakeBusConfig::default(); // 16 MiB of RAM at 0, BARs assigned
//! let mac = config.device.mac;
//! let mut bus = FakePciBus::new(config, Box::new(Loopback::new()), Arc::new(ManualClock::new()))?;
//! let cmd = bus.config_read16(offsets::COMMAND as u16);
//! bus.config_write16(offsets::COMMAND as u16, cmd | COMMAND_BUS_MASTER);
//! let bar0 = bus.mmio_base();
//! let ram = bus.ram().clone();
//!
//! // Eight receive descriptors at 0x1000 with 2 KiB buffers from 0x10000; TX ring at 0x2000.
//! for i in 0..8 {
//!     ram.write_u64(0x1000 + 16 * i, 0x10000 + 2048 * i)?;
//! }
//! for (reg, val) in [
//!     (RDBAL, 0x1000), (RDLEN, 128), (RDT, 7), (RCTL, RCTL_EN | RCTL_SECRC),
//!     (TDBAL, 0x2000), (TDLEN, 128), (TCTL, TCTL_EN | TCTL_PSP),
//! ] {
//!     bus.mmio_write32(bar0 + u64::from(reg), val);
//! }
//!
//! // One 60-byte frame to our own address, in one legacy descriptor (EOP | IFCS | RS).
//! let mut frame = vec![0u8; 60];
//! frame[..6].copy_from_slice(&mac.octets());
//! frame[6..12].copy_from_slice(&MacAddress::new([2, 0, 0, 0, 0, 1]).octets());
//! frame[12..14].copy_from_slice(&0x88B5u16.to_be_bytes());
//! ram.write(0x30000, &frame)?;
//! ram.write_u64(0x2000, 0x30000)?;
//! ram.write_u32(0x2008, 60 | (0x0B << 24))?;
//! bus.mmio_write32(bar0 + u64::from(TDT), 1); // transmit
//! bus.poll(); // the loopback hands the frame back
//!
//! let status = ram.read_u32(0x100C)? & 0xFF;
//! assert_eq!(status & 0x03, 0x03, "descriptor done, end of packet");
//! let mut got = vec![0u8; 60];
//! ram.read(0x10000, &mut got)?;
//! assert_eq!(got, frame);
//! assert_eq!(bus.device().metrics().tx_frames, 1);
//! assert_eq!(bus.device().metrics().rx_frames, 1);
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod backend;
pub mod capi;
pub mod clock;
pub mod config;
#[cfg(feature = "control")]
pub mod control;
pub mod device;
pub mod eeprom_file;
pub mod frontend;
pub mod irq;
pub mod log_limit;
pub mod mac;
pub mod memory;
#[cfg(feature = "sandbox")]
pub mod sandbox;
mod sys;
pub mod wire;

pub use backend::PacketBackend;
pub use clock::{Clock, ManualClock, MonotonicClock};
pub use device::{Bar, DeviceConfig, Metrics, E1000};
pub use irq::{IrqLine, SharedIrqLine};
pub use mac::MacAddress;
pub use memory::GuestRam;
