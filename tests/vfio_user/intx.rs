//! INTx as userspace drivers (uio_pci_generic, vfio-pci) claim it: a frame from the
//! backend raises the interrupt on the event-loop thread, and the handler's config read
//! that follows the eventfd signal must see the PCI status interrupt bit at once, also
//! after it masked the line with the command register's INTx-disable bit.
#![cfg(all(feature = "vfio-user", feature = "udp"))]

use crate::support::vfio;

use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use nic_emu::backend::UdpTunnel;
use nic_emu::device::regs::*;
use vfio::*;
use vfio_user::Client;
use vmm_sys_util::eventfd::EventFd;

const GPA: u64 = 0x1000_0000;
const STATUS_INTERRUPT: u32 = 1 << 19; // bit 3 of the status word at 0x06, in dword 0x04
const COMMAND_INTX_DISABLE: u16 = 1 << 10;

/// Block until the eventfd fires (at most 2 s); returns how long it took.
fn wait_signal(efd: &EventFd) -> Duration {
    let t = Instant::now();
    loop {
        if efd.read().is_ok() {
            return t.elapsed();
        }
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "no interrupt signalled"
        );
        std::thread::sleep(Duration::from_micros(200));
    }
}

#[test]
fn a_received_frame_shows_in_pci_status_when_the_handler_looks() {
    let udp = UdpTunnel::new("127.0.0.1:0".parse().unwrap(), None).unwrap();
    let device_addr = udp.local_addr();
    let s = start_with(Box::new(udp));
    let mut c = Client::new(&s.path).unwrap();
    let efd = EventFd::new(libc::EFD_NONBLOCK).unwrap();
    c.set_irqs(0, IRQ_TRIGGER_EVENTFD, 0, 1, &[efd.as_raw_fd()])
        .unwrap();

    // A minimal receive set-up, as a userspace driver makes it: 16 descriptors, RXT0
    // unmasked, no mitigation.
    let mem = memfd(1 << 20);
    c.dma_map(0, GPA, 1 << 20, mem.as_raw_fd()).unwrap();
    for i in 0..16u64 {
        mem.write_all_at(&(GPA + 0x10000 + i * 2048).to_le_bytes(), i * 16)
            .unwrap();
    }
    cfg_wr16(&mut c, 0x04, 0x0007);
    wr(&mut c, RDBAL, GPA as u32);
    wr(&mut c, RDLEN, 16 * 16);
    wr(&mut c, RDH, 0);
    wr(&mut c, RDTR, 0);
    wr(&mut c, ITR, 0);
    wr(&mut c, RCTL, RCTL_EN | RCTL_BAM | RCTL_SECRC);
    wr(&mut c, RDT, 15);
    wr(&mut c, IMS, ICR_RXT0);
    assert_eq!(rd(&mut c, ICR), 0);

    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut frame = vec![0xFFu8; 6];
    frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 7, 0x88, 0xB5]);
    frame.resize(64, 0xA5);
    for n in 0..10 {
        assert_eq!(
            cfg_rd(&mut c, 0x04) & STATUS_INTERRUPT,
            0,
            "frame {n}: idle"
        );
        peer.send_to(&frame, device_addr).unwrap();
        wait_signal(&efd);
        // The handler (pci_check_and_mask_intx) reads the status: it must be set now,
        // whichever thread raised the interrupt.
        let w = cfg_rd(&mut c, 0x04);
        assert_ne!(w & STATUS_INTERRUPT, 0, "frame {n}: status bit not set");
        // It masks INTx and looks again: the bit stays (PCI spec).
        cfg_wr16(&mut c, 0x04, 0x0007 | COMMAND_INTX_DISABLE);
        assert_ne!(
            cfg_rd(&mut c, 0x04) & STATUS_INTERRUPT,
            0,
            "frame {n}: masked"
        );
        // Userspace: read ICR, return the descriptor, unmask (uio: clear INTx-disable;
        // QEMU's vfio-user client unmasks its automasked eventfd).
        assert_ne!(rd(&mut c, ICR) & ICR_RXT0, 0);
        wr(&mut c, RDT, n % 16);
        cfg_wr16(&mut c, 0x04, 0x0007);
        c.set_irqs(0, IRQ_UNMASK, 0, 1, &[]).unwrap();
    }
    assert_eq!(s.device.lock().metrics().rx_frames, 10);
    // No interrupt was left over: exactly one signal per frame.
    std::thread::sleep(Duration::from_millis(20));
    assert!(efd.read().is_err(), "a spurious interrupt");
}
