//! A packet backend written outside the crate: an "echo peer" that answers every frame
//! the guest sends with the same frame, source and destination MAC swapped, and counts
//! what it saw. Anything that can send and receive Ethernet frames (a socket, a switch
//! model, a fuzzer) plugs into the device the same way: implement `PacketBackend`.
//!
//! The device is driven directly here (no bus): the program writes registers with
//! `E1000::write_reg` and lays out descriptors in `GuestRam` itself.
//!
//! Run: `cargo run --example custom_backend`

use std::collections::VecDeque;
use std::error::Error;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use nic_emu::device::pci_config::{offsets, COMMAND_BUS_MASTER, COMMAND_MEMORY};
use nic_emu::device::regs::*;
use nic_emu::{
    DeviceConfig, GuestRam, MacAddress, ManualClock, PacketBackend, SharedIrqLine, E1000,
};

/// Counters the program keeps after handing the backend to the device.
#[derive(Default, Debug)]
struct EchoCounters {
    seen: AtomicU64,
    echoed: AtomicU64,
    ignored: AtomicU64,
}

/// Answers each frame with its MAC addresses swapped; broadcast frames are not echoed
/// (an echo of a broadcast would come from the broadcast address).
struct EchoPeer {
    replies: VecDeque<Vec<u8>>,
    counters: Arc<EchoCounters>,
}

impl PacketBackend for EchoPeer {
    fn name(&self) -> String {
        "echo peer".into()
    }

    fn send(&mut self, frame: &[u8]) -> io::Result<bool> {
        self.counters.seen.fetch_add(1, Ordering::Relaxed);
        if frame.len() < 14 || frame[0] & 1 != 0 || self.replies.len() >= 64 {
            self.counters.ignored.fetch_add(1, Ordering::Relaxed);
            return Ok(true);
        }
        let mut reply = frame.to_vec();
        let (dst, src) = reply.split_at_mut(6);
        dst.swap_with_slice(&mut src[..6]);
        self.replies.push_back(reply);
        self.counters.echoed.fetch_add(1, Ordering::Relaxed);
        Ok(true)
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let Some(frame) = self.replies.pop_front() else {
            return Ok(None);
        };
        let n = frame.len().min(buf.len());
        buf[..n].copy_from_slice(&frame[..n]);
        Ok(Some(n))
    }
}

const GUEST: MacAddress = MacAddress::new([0x52, 0x54, 0x00, 0x00, 0x00, 0x0A]);
const PEER: MacAddress = MacAddress::new([0x02, 0x00, 0x00, 0x00, 0x00, 0x0B]);
const TX_RING: u64 = 0x1000;
const RX_RING: u64 = 0x2000;
const TX_BUF: u64 = 0x10000;
const RX_BUFS: u64 = 0x20000;
const RING: u32 = 8;

fn main() -> Result<(), Box<dyn Error>> {
    let counters = Arc::new(EchoCounters::default());
    let backend = EchoPeer {
        replies: VecDeque::new(),
        counters: counters.clone(),
    };
    let irq = SharedIrqLine::new();
    let config = DeviceConfig {
        mac: GUEST,
        link_up: true,
        ..DeviceConfig::default()
    };
    let clock = Arc::new(ManualClock::new());
    let mut dev = E1000::new(config, Box::new(backend), Box::new(irq.clone()), clock);
    let ram = GuestRam::anonymous(0, 1 << 20)?;
    dev.set_memory(ram.clone());
    dev.config_write(
        offsets::COMMAND as u64,
        &(COMMAND_MEMORY | COMMAND_BUS_MASTER).to_le_bytes(),
    );

    for i in 0..u64::from(RING) {
        ram.write_u64(RX_RING + 16 * i, RX_BUFS + 2048 * i)?;
    }
    dev.write_reg(RDBAL, RX_RING as u32);
    dev.write_reg(RDLEN, RING * 16);
    dev.write_reg(RDT, RING - 1);
    dev.write_reg(TDBAL, TX_RING as u32);
    dev.write_reg(TDLEN, RING * 16);
    dev.write_reg(IMS, ICR_RXT0);
    dev.write_reg(RCTL, RCTL_EN | RCTL_BAM | RCTL_SECRC);
    dev.write_reg(TCTL, TCTL_EN | TCTL_PSP);

    let mut received = Vec::new();
    for (i, dst) in [PEER, MacAddress::BROADCAST, PEER].iter().enumerate() {
        let mut frame = Vec::new();
        frame.extend_from_slice(&dst.octets());
        frame.extend_from_slice(&GUEST.octets());
        frame.extend_from_slice(&0x88B5u16.to_be_bytes());
        frame.extend_from_slice(format!("ping {i}").as_bytes());
        frame.resize(60, 0);
        ram.write(TX_BUF, &frame)?;
        let slot = i as u64 % u64::from(RING);
        ram.write_u64(TX_RING + 16 * slot, TX_BUF)?;
        // length, then CMD = EOP | IFCS | RS, status cleared
        ram.write_u32(TX_RING + 16 * slot + 8, 60 | (0x0B << 24))?;
        ram.write_u32(TX_RING + 16 * slot + 12, 0)?;
        dev.write_reg(TDT, (i as u32 + 1) % RING);
        // The echo is waiting in the backend; let the device take it.
        dev.service();
        let rdh = dev.read_reg(RDH) as usize;
        while received.len() < rdh {
            let n = received.len() as u64;
            let len = ram.read_u32(RX_RING + 16 * n + 8)? & 0xFFFF;
            let mut f = vec![0u8; len as usize];
            ram.read(RX_BUFS + 2048 * n, &mut f)?;
            received.push(f);
        }
        dev.read_reg(ICR);
    }

    for (i, f) in received.iter().enumerate() {
        let dst = MacAddress::new(f[..6].try_into()?);
        let src = MacAddress::new(f[6..12].try_into()?);
        let text = String::from_utf8_lossy(&f[14..20]);
        println!(
            "received {i}: {} bytes from {src} to {dst}: {text:?}",
            f.len()
        );
    }
    println!(
        "echo peer: saw {}, echoed {}, ignored {}",
        counters.seen.load(Ordering::Relaxed),
        counters.echoed.load(Ordering::Relaxed),
        counters.ignored.load(Ordering::Relaxed)
    );
    let m = dev.metrics();
    println!(
        "device: tx_frames {} rx_frames {} interrupts {}",
        m.tx_frames,
        m.rx_frames,
        irq.rising_edges()
    );
    let from_peer = received
        .iter()
        .all(|f| f[..6] == GUEST.octets()[..] && f[6..12] == PEER.octets()[..]);
    if received.len() != 2 || !from_peer {
        return Err("expected two echoes from the peer".into());
    }
    Ok(())
}
