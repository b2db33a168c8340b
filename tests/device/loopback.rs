//! Traffic through the loopback backend, as the Linux driver moves it: every frame the
//! guest transmits comes back through the receive ring, byte for byte.

use crate::support;

use nic_emu::backend::Loopback;
use nic_emu::device::regs::*;
use support::*;

fn opened() -> FakeGuest {
    let mut g = FakeGuest::new(Box::new(Loopback::new()));
    g.linux_probe();
    g.linux_open(64, 64);
    g.rd(ICR);
    g
}

#[test]
fn frames_from_60_to_1514_bytes_come_back_intact() {
    let mut g = opened();
    for len in (60..=1514).step_by(7).chain([61, 1513, 1514]) {
        let f = frame(MAC, PEER, 0x0800, len - 14, len as u8);
        g.send(&f);
        let got = g
            .recv()
            .unwrap_or_else(|| panic!("frame of {len} bytes did not come back"));
        assert_eq!(got, f, "len {len}");
    }
    let m = g.bus.device().metrics();
    assert_eq!(m.tx_frames, m.rx_frames);
    assert_eq!(m.tx_bytes, m.rx_bytes);
}

#[test]
fn scatter_gather_frames_reassemble() {
    let mut g = opened();
    let f = frame(MAC, PEER, 0x86DD, 1400, 42);
    let parts: Vec<&[u8]> = vec![&f[..14], &f[14..54], &f[54..700], &f[700..]];
    g.send_legacy(&parts, 0, 0);
    assert_eq!(g.recv().as_deref(), Some(&f[..]));
}

#[test]
fn jumbo_frames_with_lpe() {
    let mut g = opened();
    let rctl = g.rd(RCTL) & !(RCTL_BSIZE_MASK | RCTL_BSEX);
    g.wr(RCTL, rctl | RCTL_LPE | RCTL_BSEX | (1 << RCTL_BSIZE_SHIFT)); // 16 KiB buffers
    for len in [1515usize, 4000, 9014, 16384] {
        let f = frame(MAC, PEER, 0x0800, len - 14, 3);
        // Descriptors carry at most 4096 bytes each, as Linux splits them.
        let parts: Vec<&[u8]> = f.chunks(4096).collect();
        g.send_legacy(&parts, 0, 0);
        assert_eq!(g.recv().as_deref(), Some(&f[..]), "jumbo {len}");
    }
    // Without LPE the same frame is dropped on receive and counted.
    let rctl = g.rd(RCTL);
    g.wr(RCTL, rctl & !RCTL_LPE);
    let f = frame(MAC, PEER, 0x0800, 9000, 3);
    let parts: Vec<&[u8]> = f.chunks(4096).collect();
    g.send_legacy(&parts, 0, 0);
    assert!(g.recv().is_none());
    assert_eq!(g.rd(ROC), 1);
}

#[test]
fn transmit_interrupts_and_write_back() {
    let mut g = opened();
    g.wr(ITR, 0);
    g.wr(TIDV, 0);
    g.wr(IMS, ICR_TXDW | ICR_TXQE);
    let f = frame(PEER, MAC, 0x0800, 100, 1);
    let edges = g.bus.irq().rising_edges();
    g.send(&f);
    assert_ne!(g.tx_status(0) & 1, 0, "DD written back (RS was set)");
    assert!(g.bus.irq().rising_edges() > edges);
    let icr = g.rd(ICR);
    assert_ne!(icr & ICR_TXDW, 0);
    assert_ne!(icr & ICR_TXQE, 0, "ring drained");
    assert_eq!(g.rd(TDH), g.rd(TDT));
    assert_eq!(g.rd(GPTC), 1);
    assert_eq!(g.rd(GOTCL), (f.len() + 4) as u32);
    assert!(
        g.recv().is_none(),
        "a frame to another MAC is filtered on the way back"
    );
}

#[test]
fn a_burst_larger_than_the_receive_ring_is_not_lost() {
    let mut g = opened(); // 64 RX descriptors, loopback queue of 1024 frames
    let frames: Vec<Vec<u8>> = (0..200u32)
        .map(|i| frame(MAC, PEER, 0x0800, 100 + i as usize, i as u8))
        .collect();
    for chunk in frames.chunks(50) {
        for f in chunk {
            let slot = g.tx_tail;
            let addr = TX_BUFS + u64::from(slot % 64) * TX_SLOT;
            g.bus.ram().write(addr, f).unwrap();
            g.write_tx_desc(addr, f.len() as u16, TXD_EOP | TXD_IFCS | TXD_RS, 0);
        }
        let tail = g.tx_tail;
        g.wr(TDT, tail);
    }
    let mut got = Vec::new();
    for _ in 0..1000 {
        match g.recv() {
            Some(f) => got.push(f),
            None => {
                if got.len() == frames.len() {
                    break;
                }
                g.bus.poll();
            }
        }
    }
    assert_eq!(got, frames, "all 200 frames, in order");
    assert_eq!(g.rd(MPC), 0);
}
