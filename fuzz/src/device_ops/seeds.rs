//! Seeds for `device_ops`, written from the driver models of `tests/support` (the Linux
//! e1000 probe and open, iPXE, DPDK's em PMD) as operation lists.

use super::{encode, reg_index, Op, MAC, RX_BUFS, RX_RING, SLOT, TX_BUFS, TX_RING};
use nic_emu::device::regs::*;

const PEER: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];

/// A driver that records what it would do.
#[derive(Default)]
struct Driver {
    ops: Vec<Op>,
    tx_count: u32,
    tx_tail: u32,
    rx_count: u32,
}

fn frame(dst: [u8; 6], len: usize, seed: u8) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&PEER);
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    f.extend((0..len).map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed)));
    f
}

impl Driver {
    fn wr(&mut self, reg: u32, val: u32) {
        self.ops.push(Op::RegWrite {
            reg: reg_index(reg),
            val,
        });
    }
    fn rd(&mut self, reg: u32) {
        self.ops.push(Op::RegRead {
            reg: reg_index(reg),
        });
    }
    fn io_wr(&mut self, reg: u32, val: u32) {
        for (off, v) in [(0, reg), (4, val)] {
            self.ops.push(Op::BarWrite {
                io: true,
                off,
                len: 4,
                val: u64::from(v),
            });
        }
    }
    fn bus_master(&mut self) {
        self.ops.push(Op::ConfigRead { off: 4, len: 2 });
        self.ops.push(Op::ConfigWrite {
            off: 4,
            len: 2,
            val: 7,
        });
    }

    /// One EEPROM word through EECD bit-banging (Linux).
    fn eeprom_bitbang(&mut self, addr: u16) {
        let mut eecd = EECD_REQ;
        self.wr(EECD, eecd);
        self.rd(EECD);
        eecd = (eecd | EECD_CS) & !(EECD_SK | EECD_DI);
        self.wr(EECD, eecd);
        let bits = (0b110u32 << 6) | u32::from(addr & 0x3F);
        for i in (0..9).rev() {
            eecd = if (bits >> i) & 1 != 0 {
                eecd | EECD_DI
            } else {
                eecd & !EECD_DI
            };
            self.wr(EECD, eecd);
            self.wr(EECD, eecd | EECD_SK);
            self.wr(EECD, eecd & !EECD_SK);
        }
        eecd &= !EECD_DI;
        for _ in 0..16 {
            self.wr(EECD, eecd | EECD_SK);
            self.rd(EECD);
            self.wr(EECD, eecd);
        }
        self.wr(EECD, eecd & !(EECD_CS | EECD_REQ));
    }

    fn mdic_read(&mut self, reg: u32) {
        self.wr(
            MDIC,
            MDIC_OP_READ | (1 << MDIC_PHY_SHIFT) | (reg << MDIC_REG_SHIFT),
        );
        self.rd(MDIC);
    }
    fn mdic_write(&mut self, reg: u32, val: u16) {
        self.wr(
            MDIC,
            MDIC_OP_WRITE | (1 << MDIC_PHY_SHIFT) | (reg << MDIC_REG_SHIFT) | u32::from(val),
        );
        self.rd(MDIC);
    }

    /// The Linux probe (EEPROM words 0..words).
    fn linux_probe(&mut self, words: u16) {
        self.bus_master();
        self.wr(IMC, 0xFFFF_FFFF);
        self.wr(RCTL, 0);
        self.wr(TCTL, TCTL_PSP);
        self.io_wr(CTRL, CTRL_RST);
        self.rd(CTRL);
        self.wr(IMC, 0xFFFF_FFFF);
        self.rd(ICR);
        for a in 0..words {
            self.eeprom_bitbang(a);
        }
        self.wr(PBA, 0x30);
        self.mdic_read(2);
        self.mdic_read(3);
        self.mdic_write(0x10, 0x0068);
        self.mdic_write(0x14, 0x0D60);
        self.mdic_write(0, 0x9140);
        self.mdic_write(4, 0x0DE1);
        self.mdic_write(9, 0x0E00);
        self.mdic_write(0, 0x1340);
        self.mdic_read(1);
        self.mdic_read(1);
    }

    fn post_rx(&mut self) {
        for i in 0..self.rx_count {
            self.ops.push(Op::RxDesc {
                idx: i as u16,
                buf: RX_BUFS + u64::from(i) * SLOT,
            });
        }
    }

    /// The Linux open: rings, RCTL/TCTL, interrupts.
    fn linux_open(&mut self, tx: u32, rx: u32, itr: u32) {
        self.tx_count = tx;
        self.rx_count = rx;
        self.wr(TDBAL, TX_RING as u32);
        self.wr(TDBAH, 0);
        self.wr(TDLEN, tx * 16);
        self.wr(TDH, 0);
        self.wr(TDT, 0);
        self.wr(TIPG, 0x0060_2008);
        self.wr(TIDV, 8);
        self.wr(TADV, 32);
        self.wr(TCTL, TCTL_PSP | (0x0F << 4) | (0x40 << 12));
        self.wr(RCTL, RCTL_BAM);
        self.wr(RDTR, 0);
        self.wr(RADV, 8);
        self.wr(ITR, itr);
        self.wr(RDBAL, RX_RING as u32);
        self.wr(RDBAH, 0);
        self.wr(RDLEN, rx * 16);
        self.wr(RDH, 0);
        self.wr(RDT, 0);
        self.wr(RXCSUM, RXCSUM_TUOFLD);
        self.post_rx();
        self.wr(RCTL, RCTL_BAM | RCTL_EN);
        self.wr(RDT, rx - 1);
        self.wr(IMS, 0x9D);
        self.wr(ICS, ICR_LSC);
        self.mdic_read(1);
        self.wr(TCTL, TCTL_PSP | (0x0F << 4) | (0x40 << 12) | TCTL_EN);
    }

    /// Legacy transmit descriptors for `frames`, one each, then one TDT write.
    fn send(&mut self, frames: &[Vec<u8>], cmd_extra: u8) {
        for f in frames {
            let slot = u64::from(self.tx_tail % 8);
            let addr = TX_BUFS + slot * SLOT;
            self.ops.push(Op::RamWrite {
                addr: addr as u32,
                data: f.clone(),
            });
            let mut d = [0u8; 16];
            d[..8].copy_from_slice(&addr.to_le_bytes());
            d[8..10].copy_from_slice(&(f.len() as u16).to_le_bytes());
            d[11] = 0x01 | 0x02 | 0x08 | cmd_extra; // EOP, IFCS, RS
            self.ops.push(Op::TxDesc {
                idx: self.tx_tail as u16,
                desc: d,
            });
            self.tx_tail = (self.tx_tail + 1) % self.tx_count;
        }
        self.wr(TDT, self.tx_tail);
    }

    fn inject(&mut self, dst: u8, f: Vec<u8>) {
        self.ops.push(Op::Inject { dst, frame: f });
    }

    /// The interrupt handler: ICR read, clean, give buffers back.
    fn irq_and_refill(&mut self, upto: u32) {
        self.rd(ICR);
        for i in 0..upto {
            self.ops.push(Op::RxDesc {
                idx: i as u16,
                buf: RX_BUFS + u64::from(i) * SLOT,
            });
        }
        self.wr(RDT, upto.saturating_sub(1));
    }
}

/// `(name, bytes)` of each seed.
pub fn all() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();

    // Linux: probe (a few EEPROM words), open, two frames each way, timers.
    let mut d = Driver::default();
    d.linux_probe(3);
    d.linux_open(8, 16, 195);
    d.send(&[frame(PEER, 60, 1), frame([0xFF; 6], 300, 2)], 0);
    d.inject(0, frame(MAC, 100, 3));
    d.inject(1, frame([0xFF; 6], 1500, 4));
    d.inject(3, frame(PEER, 64, 5)); // unicast elsewhere: filtered
    d.ops.push(Op::Service);
    d.ops.push(Op::Advance { us: 50 });
    d.irq_and_refill(16);
    d.ops.push(Op::Advance { us: 1000 });
    out.push(("linux-probe-open-traffic", encode(&d.ops)));

    // Linux with a tiny ring that fills: backpressure, then buffers given back.
    let mut d = Driver::default();
    d.linux_open(8, 4, 0);
    for i in 0..6 {
        d.inject(0, frame(MAC, 200, i));
    }
    d.ops.push(Op::Service);
    d.irq_and_refill(4);
    d.ops.push(Op::Service);
    d.ops.push(Op::SetLink { up: false });
    d.inject(0, frame(MAC, 60, 9));
    d.ops.push(Op::SetLink { up: true });
    d.ops.push(Op::Service);
    d.ops.push(Op::Reset);
    d.ops.push(Op::Service);
    out.push(("linux-ring-full-link-reset", encode(&d.ops)));

    // iPXE: EERD for the MAC, CTRL.SLU, small rings, polling (no interrupts), VLAN filter
    // off, long-packet receive.
    let mut d = Driver::default();
    d.bus_master();
    d.wr(CTRL, CTRL_RST);
    for a in 0..3u32 {
        d.wr(EERD, EERD_START | (a << EERD_ADDR_SHIFT));
        d.rd(EERD);
    }
    d.wr(CTRL, CTRL_SLU | CTRL_ASDE);
    d.wr(IMC, 0xFFFF_FFFF);
    d.linux_open(8, 8, 0);
    d.wr(IMC, 0xFFFF_FFFF);
    d.wr(RCTL, RCTL_EN | RCTL_BAM | RCTL_SECRC | RCTL_LPE);
    d.send(&[frame([0xFF; 6], 342, 7)], 0);
    d.rd(ICR);
    d.inject(0, frame(MAC, 3000, 8)); // jumbo: needs two buffers
    d.ops.push(Op::Service);
    d.rd(RDH);
    d.irq_and_refill(8);
    out.push(("ipxe-eerd-poll-jumbo", encode(&d.ops)));

    // DPDK em: rings of 32/16, no interrupts, a burst of 8 frames with checksum offload
    // (a context descriptor), multicast table, VLAN stripping.
    let mut d = Driver::default();
    d.bus_master();
    d.wr(IMC, 0xFFFF_FFFF);
    d.wr(CTRL, CTRL_RST);
    d.rd(STATUS);
    d.wr(CTRL, CTRL_SLU | CTRL_VME);
    d.wr(VET, 0x8100);
    d.wr(MTA, 1 << 5);
    d.wr(VFTA, 0xFFFF_FFFF);
    d.linux_open(16, 16, 0);
    d.wr(IMC, 0xFFFF_FFFF);
    d.wr(RCTL, RCTL_EN | RCTL_BAM | RCTL_SECRC | RCTL_MPE);
    // A TCP/IP context descriptor, then data descriptors with DEXT.
    let mut ctx = [0u8; 16];
    ctx[0] = 14; // IPCSS
    ctx[1] = 24; // IPCSO
    ctx[4] = 34; // TUCSS
    ctx[5] = 50; // TUCSO
    ctx[11] = 0x20 | 0x01 | 0x02 | 0x08; // DEXT, TCP, IP, RS
    d.ops.push(Op::TxDesc { idx: 0, desc: ctx });
    d.tx_tail = 1;
    let frames: Vec<Vec<u8>> = (0..8).map(|i| frame(PEER, 100 + i * 50, i as u8)).collect();
    d.send(&frames, 0);
    let mut tagged = frame(MAC, 80, 11);
    tagged.splice(12..12, [0x81, 0x00, 0x00, 0x05]);
    d.inject(0, tagged);
    d.inject(2, frame([0x01, 0x00, 0x5E, 0, 0, 1], 90, 12));
    d.ops.push(Op::Service);
    d.irq_and_refill(16);
    out.push(("dpdk-em-burst-offload-vlan", encode(&d.ops)));

    out
}
