//! An in-process PCI bus: configuration space, BAR decoding by address, guest RAM and an
//! interrupt line, all inside one process. A test or an embedding program acts as the
//! guest: it writes descriptors into [`FakePciBus::ram`], touches registers through
//! [`FakePciBus::mmio_write32`] or the I/O ports, and watches [`FakePciBus::irq`].
//!
//! Decoding follows the BARs as the guest programmed them, with checked arithmetic;
//! accesses that hit nothing read as all-ones (a master abort) and writes are dropped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{Frontend, FrontendError};
use crate::backend::PacketBackend;
use crate::clock::Clock;
use crate::device::pci_config::{offsets, COMMAND_IO, COMMAND_MEMORY};
use crate::device::{Bar, DeviceConfig, E1000};
use crate::irq::SharedIrqLine;
use crate::memory::{GuestRam, MemoryError};

/// Where things sit on the fake bus.
#[derive(Clone, Debug)]
pub struct FakeBusConfig {
    /// Guest-physical address of RAM.
    pub ram_base: u64,
    /// Bytes of RAM.
    pub ram_size: usize,
    /// Address the "firmware" assigns to BAR0.
    pub mmio_base: u32,
    /// Port the "firmware" assigns to BAR1.
    pub io_base: u32,
    /// The device's own settings.
    pub device: DeviceConfig,
}

impl Default for FakeBusConfig {
    fn default() -> Self {
        Self {
            ram_base: 0,
            ram_size: 16 << 20,
            mmio_base: 0xFEBC_0000,
            io_base: 0xC000,
            device: DeviceConfig::default(),
        }
    }
}

/// One e1000 on an in-process PCI bus.
pub struct FakePciBus {
    device: E1000,
    ram: GuestRam,
    irq: SharedIrqLine,
    clock: Arc<dyn Clock>,
}

impl FakePciBus {
    /// A bus with RAM, the device, and BARs assigned and decoding enabled (as firmware
    /// leaves it; the driver still has to enable bus mastering).
    pub fn new(
        config: FakeBusConfig,
        backend: Box<dyn PacketBackend>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, MemoryError> {
        let ram = GuestRam::anonymous(config.ram_base, config.ram_size)?;
        let irq = SharedIrqLine::new();
        let mut device = E1000::new(config.device, backend, Box::new(irq.clone()), clock.clone());
        device.set_memory(ram.clone());
        device.config_write(offsets::BAR0 as u64, &config.mmio_base.to_le_bytes());
        device.config_write(offsets::BAR1 as u64, &config.io_base.to_le_bytes());
        device.config_write(
            offsets::COMMAND as u64,
            &(COMMAND_IO | COMMAND_MEMORY).to_le_bytes(),
        );
        Ok(Self {
            device,
            ram,
            irq,
            clock,
        })
    }

    /// Guest RAM, for the test to lay out rings and buffers.
    pub fn ram(&self) -> &GuestRam {
        &self.ram
    }

    /// The interrupt line.
    pub fn irq(&self) -> &SharedIrqLine {
        &self.irq
    }

    /// The clock the device reads.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The device, for host-side actions (link, metrics).
    pub fn device(&mut self) -> &mut E1000 {
        &mut self.device
    }

    /// Read a dword of configuration space.
    pub fn config_read32(&self, offset: u16) -> u32 {
        let mut b = [0u8; 4];
        self.device.config_read(u64::from(offset), &mut b);
        u32::from_le_bytes(b)
    }

    /// Read a word of configuration space.
    pub fn config_read16(&self, offset: u16) -> u16 {
        let mut b = [0u8; 2];
        self.device.config_read(u64::from(offset), &mut b);
        u16::from_le_bytes(b)
    }

    /// Write a dword of configuration space.
    pub fn config_write32(&mut self, offset: u16, val: u32) {
        self.device
            .config_write(u64::from(offset), &val.to_le_bytes());
    }

    /// Write a word of configuration space.
    pub fn config_write16(&mut self, offset: u16, val: u16) {
        self.device
            .config_write(u64::from(offset), &val.to_le_bytes());
    }

    fn decode(&self, addr: u64, len: u64, io: bool) -> Option<(Bar, u64)> {
        let cmd = self.config_read16(offsets::COMMAND as u16);
        let (bar, enable) = if io {
            (Bar::Io, COMMAND_IO)
        } else {
            (Bar::Mmio, COMMAND_MEMORY)
        };
        if cmd & enable == 0 {
            return None;
        }
        let index = if io { 1 } else { 0 };
        let mut b = [0u8; 4];
        self.device
            .config_read((offsets::BAR0 + 4 * index) as u64, &mut b);
        let raw = u64::from(u32::from_le_bytes(b));
        let base = if io { raw & !0x3 } else { raw & !0xF };
        let off = addr.checked_sub(base)?;
        let end = off.checked_add(len)?;
        (end <= bar.size()).then_some((bar, off))
    }

    /// A 32-bit memory read at guest-physical `addr`.
    pub fn mmio_read32(&mut self, addr: u64) -> u32 {
        let mut b = [0xFFu8; 4];
        if let Some((bar, off)) = self.decode(addr, 4, false) {
            self.device.bar_read(bar, off, &mut b);
        }
        u32::from_le_bytes(b)
    }

    /// A 32-bit memory write at guest-physical `addr`.
    pub fn mmio_write32(&mut self, addr: u64, val: u32) {
        if let Some((bar, off)) = self.decode(addr, 4, false) {
            self.device.bar_write(bar, off, &val.to_le_bytes());
        }
    }

    /// A 32-bit port read.
    pub fn io_read32(&mut self, port: u16) -> u32 {
        let mut b = [0xFFu8; 4];
        if let Some((bar, off)) = self.decode(u64::from(port), 4, true) {
            self.device.bar_read(bar, off, &mut b);
        }
        u32::from_le_bytes(b)
    }

    /// A 32-bit port write.
    pub fn io_write32(&mut self, port: u16, val: u32) {
        if let Some((bar, off)) = self.decode(u64::from(port), 4, true) {
            self.device.bar_write(bar, off, &val.to_le_bytes());
        }
    }

    /// BAR0 address as currently programmed.
    pub fn mmio_base(&self) -> u64 {
        u64::from(self.config_read32(offsets::BAR0 as u16) & !0xF)
    }

    /// BAR1 port as currently programmed.
    pub fn io_base(&self) -> u16 {
        (self.config_read32(offsets::BAR1 as u16) & !0x3) as u16
    }

    /// Let the device work: fire due timers and take frames from the backend. Returns
    /// the number of frames delivered to the guest.
    pub fn poll(&mut self) -> usize {
        self.device.service().delivered
    }
}

impl Frontend for FakePciBus {
    fn run(&mut self, stop: &AtomicBool) -> Result<(), FrontendError> {
        while !stop.load(Ordering::Acquire) {
            self.poll();
            let now = self.clock.now_ns();
            let wait = self
                .device
                .next_timer_deadline()
                .map_or(1_000_000, |d| d.saturating_sub(now).min(1_000_000));
            std::thread::sleep(Duration::from_nanos(wait.max(10_000)));
        }
        Ok(())
    }
}
