//! A guest driver and an e1000 on the in-process PCI bus, wired to a loopback backend:
//! every frame the guest transmits comes back to it as a received frame.
//!
//! The program brings the card up as a driver does (bus mastering, reset, MAC from the
//! EEPROM through EERD, receive and transmit rings, interrupts), sends a few frames, and
//! prints what happened: the frames, the interrupts, the device's counters.
//!
//! Run: `cargo run --example loopback_demo`

use std::error::Error;
use std::sync::Arc;

use nic_emu::backend::Loopback;
use nic_emu::device::pci_config::{offsets, COMMAND_BUS_MASTER};
use nic_emu::device::regs::*;
use nic_emu::frontend::fake_bus::{FakeBusConfig, FakePciBus};
use nic_emu::{MacAddress, ManualClock};

// Guest memory layout (the fake bus has 16 MiB of RAM at address 0).
const TX_RING: u64 = 0x1_0000;
const RX_RING: u64 = 0x2_0000;
const TX_BUFS: u64 = 0x10_0000;
const RX_BUFS: u64 = 0x20_0000;
const RING: u32 = 8; // descriptors per ring (RDLEN/TDLEN must be a multiple of 128 bytes)
const BUF: u64 = 2048;

// Legacy transmit descriptor command bits and the status bits of both rings.
const TXD_EOP: u8 = 0x01;
const TXD_IFCS: u8 = 0x02;
const TXD_RS: u8 = 0x08;
const DD: u8 = 0x01;
const EOP: u8 = 0x02;

/// The driver side: registers through BAR0, descriptors in guest RAM.
struct Driver {
    bus: FakePciBus,
    mmio: u64,
    tx_tail: u32,
    rx_next: u32,
    causes_seen: u32,
}

impl Driver {
    fn rd(&mut self, reg: u32) -> u32 {
        self.bus.mmio_read32(self.mmio + u64::from(reg))
    }
    fn wr(&mut self, reg: u32, v: u32) {
        self.bus.mmio_write32(self.mmio + u64::from(reg), v)
    }

    fn eeprom_word(&mut self, word: u32) -> Result<u16, Box<dyn Error>> {
        self.wr(EERD, (word << EERD_ADDR_SHIFT) | EERD_START);
        for _ in 0..100 {
            let v = self.rd(EERD);
            if v & EERD_DONE != 0 {
                return Ok((v >> EERD_DATA_SHIFT) as u16);
            }
        }
        Err("EEPROM read did not complete".into())
    }

    /// What the Linux e1000 driver does at probe and open, in short.
    fn bring_up(&mut self) -> Result<MacAddress, Box<dyn Error>> {
        let cmd = self.bus.config_read16(offsets::COMMAND as u16);
        self.bus
            .config_write16(offsets::COMMAND as u16, cmd | COMMAND_BUS_MASTER);
        let ctrl = self.rd(CTRL);
        self.wr(CTRL, ctrl | CTRL_RST);
        let ctrl = self.rd(CTRL);
        self.wr(CTRL, ctrl | CTRL_SLU);
        let mut mac = [0u8; 6];
        for w in 0..3 {
            let v = self.eeprom_word(w)?.to_le_bytes();
            mac[2 * w as usize..2 * w as usize + 2].copy_from_slice(&v);
        }
        self.rd(ICR); // drop what reset raised
        let ram = self.bus.ram().clone();
        for i in 0..u64::from(RING) {
            ram.write_u64(RX_RING + 16 * i, RX_BUFS + BUF * i)?;
        }
        self.wr(RDBAL, RX_RING as u32);
        self.wr(RDBAH, 0);
        self.wr(RDLEN, RING * 16);
        self.wr(RDH, 0);
        self.wr(RDT, RING - 1);
        self.wr(TDBAL, TX_RING as u32);
        self.wr(TDBAH, 0);
        self.wr(TDLEN, RING * 16);
        self.wr(TDH, 0);
        self.wr(TDT, 0);
        self.wr(IMS, ICR_TXDW | ICR_RXT0 | ICR_LSC);
        self.wr(RCTL, RCTL_EN | RCTL_BAM | RCTL_SECRC);
        self.wr(TCTL, TCTL_EN | TCTL_PSP);
        Ok(MacAddress::new(mac))
    }

    /// Put one frame on the transmit ring and tell the device.
    fn transmit(&mut self, frame: &[u8]) -> Result<(), Box<dyn Error>> {
        let ram = self.bus.ram().clone();
        let slot = u64::from(self.tx_tail);
        let buf = TX_BUFS + BUF * slot;
        ram.write(buf, frame)?;
        let mut desc = [0u8; 16];
        desc[..8].copy_from_slice(&buf.to_le_bytes());
        desc[8..10].copy_from_slice(&(frame.len() as u16).to_le_bytes());
        desc[11] = TXD_EOP | TXD_IFCS | TXD_RS;
        ram.write(TX_RING + 16 * slot, &desc)?;
        self.tx_tail = (self.tx_tail + 1) % RING;
        self.wr(TDT, self.tx_tail);
        Ok(())
    }

    /// The interrupt handler: read ICR, then collect received frames and recycle buffers.
    fn service(&mut self) -> Result<Vec<Vec<u8>>, Box<dyn Error>> {
        self.bus.poll();
        let mut frames = Vec::new();
        if self.bus.irq().level() {
            self.causes_seen |= self.rd(ICR);
        }
        let ram = self.bus.ram().clone();
        loop {
            let desc = RX_RING + 16 * u64::from(self.rx_next);
            let mut wb = [0u8; 8];
            ram.read(desc + 8, &mut wb)?;
            if wb[4] & DD == 0 {
                break;
            }
            if wb[4] & EOP == 0 {
                return Err("frame spans buffers: not expected with 2 KiB buffers".into());
            }
            let len = usize::from(u16::from_le_bytes([wb[0], wb[1]]));
            let mut frame = vec![0u8; len];
            ram.read(RX_BUFS + BUF * u64::from(self.rx_next), &mut frame)?;
            frames.push(frame);
            ram.write(desc + 8, &[0u8; 8])?; // hand the descriptor back
            self.wr(RDT, self.rx_next);
            self.rx_next = (self.rx_next + 1) % RING;
        }
        Ok(frames)
    }
}

fn cause_names(icr: u32) -> String {
    let names = [
        (ICR_TXDW, "TXDW"),
        (ICR_TXQE, "TXQE"),
        (ICR_LSC, "LSC"),
        (ICR_RXDMT0, "RXDMT0"),
        (ICR_RXO, "RXO"),
        (ICR_RXT0, "RXT0"),
    ];
    let v: Vec<&str> = names
        .iter()
        .filter(|(bit, _)| icr & bit != 0)
        .map(|(_, n)| *n)
        .collect();
    v.join(" ")
}

fn main() -> Result<(), Box<dyn Error>> {
    let clock = Arc::new(ManualClock::new());
    let bus = FakePciBus::new(FakeBusConfig::default(), Box::new(Loopback::new()), clock)?;
    let mmio = bus.mmio_base();
    let mut drv = Driver {
        bus,
        mmio,
        tx_tail: 0,
        rx_next: 0,
        causes_seen: 0,
    };
    let mac = drv.bring_up()?;
    let link = drv.rd(STATUS) & STATUS_LU != 0;
    println!(
        "device up: mac {mac} (from the EEPROM), link {}",
        if link { "up" } else { "down" }
    );

    let payloads: [&[u8]; 3] = [b"hello", b"from the guest", &[0xA5; 200]];
    let mut matched = 0;
    for (i, payload) in payloads.iter().enumerate() {
        // Addressed to ourselves so the receive filter accepts the looped-back frame.
        let mut frame = Vec::new();
        frame.extend_from_slice(&mac.octets());
        frame.extend_from_slice(&mac.octets());
        frame.extend_from_slice(&0x88B5u16.to_be_bytes()); // local experimental ethertype
        frame.extend_from_slice(payload);
        drv.transmit(&frame)?;
        let got = drv.service()?;
        // The device pads short frames to 60 bytes on receive.
        let ok = got.len() == 1 && got[0].get(..frame.len()) == Some(&frame[..]);
        matched += usize::from(ok);
        println!(
            "frame {i}: sent {} bytes, received {} frame(s) of {:?} bytes, contents {}",
            frame.len(),
            got.len(),
            got.iter().map(Vec::len).collect::<Vec<_>>(),
            if ok { "match" } else { "DIFFER" }
        );
    }
    println!("looped back: {matched}/{} frames", payloads.len());
    println!(
        "interrupts: {} rising edges, causes seen: {}",
        drv.bus.irq().rising_edges(),
        cause_names(drv.causes_seen)
    );
    let m = drv.bus.device().metrics();
    println!(
        "metrics: tx_frames {} tx_bytes {} rx_frames {} rx_bytes {} rx_dropped {} dma_errors {}",
        m.tx_frames, m.tx_bytes, m.rx_frames, m.rx_bytes, m.rx_dropped, m.dma_errors
    );
    let (gptc, gprc) = (drv.rd(GPTC), drv.rd(GPRC));
    println!("statistics registers: GPTC {gptc} GPRC {gprc}");
    if matched != payloads.len() {
        return Err("not every frame came back".into());
    }
    Ok(())
}
