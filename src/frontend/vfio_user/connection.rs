//! One client's session: the `vfio_user` crate's callbacks, each a short visit to the
//! device under its lock.

use std::fs::File;
use std::io;
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::time::Instant;

use vfio_user::{DmaMapFlags, DmaUnmapFlags, ServerBackend};

use super::intx::IRQ_SET_ACTION_UNMASK;
use super::regions::{Region, IRQ_ERR, IRQ_INTX};
use super::{dma, tuning, Shared};

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// One client's view of the server.
pub(super) struct Connection<'a> {
    shared: &'a Shared,
    /// The client's DMA backing files, each mapped once.
    dma_files: dma::DmaFiles,
    /// After a posted write the driver follows at once, or a reply while the guest
    /// mostly receives, poll for the client's next message for a while. It holds our
    /// duplicate of the accepted stream, which is also shut down on stop.
    spin: tuning::SocketSpin,
    /// Whether the guest is a paced receiver (decides polling after replies).
    bias: tuning::ReceiveBias,
}

impl<'a> Connection<'a> {
    pub(super) fn new(shared: &'a Shared) -> Self {
        Self {
            shared,
            dma_files: dma::DmaFiles::default(),
            spin: tuning::SocketSpin::from_env(),
            bias: tuning::ReceiveBias::new(Instant::now()),
        }
    }

    /// A client accepted after a shutdown request is disconnected at its first message.
    fn check_stop(&self) {
        if self.shared.stop.load(Ordering::Acquire) {
            if let Some(s) = self.spin.stream() {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        }
    }
}

impl ServerBackend for Connection<'_> {
    fn accepted(&mut self, stream: &UnixStream) {
        let (Ok(ours), Ok(for_shutdown)) = (stream.try_clone(), stream.try_clone()) else {
            log::warn!("vfio-user: cannot duplicate the client's stream; no socket polling");
            return;
        };
        self.spin.set_stream(ours);
        self.shared.set_connection(Some(for_shutdown));
        self.check_stop();
    }

    fn before_receive(&mut self) {
        self.spin.before_receive();
    }

    fn region_read(&mut self, region: u32, offset: u64, data: &mut [u8]) -> io::Result<()> {
        self.check_stop();
        // The first access after an interrupt is the guest's handler (the sequence:
        // tuning.rs).
        let in_handler = self.shared.intx.awaiting_unmask();
        let Some(r) = Region::from_index(region).filter(|r| r.contains(offset, data.len())) else {
            return Err(invalid(format!(
                "read of {} bytes at {offset:#x} is outside region {region}",
                data.len()
            )));
        };
        let (deadline, receiving) = {
            let mut d = self.shared.device.lock();
            match r {
                Region::Bar(bar) => d.bar_read(bar, offset, data),
                Region::Config => d.config_read(offset, data),
            }
            let receiving = self.bias.update(Instant::now(), || {
                let m = d.metrics();
                (m.rx_frames, m.tx_frames)
            });
            (d.next_timer_deadline(), receiving)
        };
        if let Some(deadline) = deadline {
            // A read may have started interrupt throttling.
            self.shared.waker.wake_if_earlier(deadline);
        }
        self.shared.intx.after_access();
        // The guest's vCPU waits for this reply and the driver's next access follows
        // closely: poll for it once the reply is out, in an interrupt handler and while
        // the guest is a paced receiver (tuning.rs says when and why).
        if (in_handler || receiving) && r != Region::Config {
            self.spin.arm();
        }
        Ok(())
    }

    fn region_write(&mut self, region: u32, offset: u64, data: &[u8]) -> io::Result<()> {
        self.check_stop();
        let Some(r) = Region::from_index(region).filter(|r| r.contains(offset, data.len())) else {
            return Err(invalid(format!(
                "write of {} bytes at {offset:#x} is outside region {region}",
                data.len()
            )));
        };
        let (effect, deadline) = {
            let mut d = self.shared.device.lock();
            let effect = match r {
                Region::Bar(bar) => d.bar_write(bar, offset, data),
                Region::Config => d.config_write(offset, data),
            };
            (effect, d.next_timer_deadline())
        };
        if effect.service_due {
            self.shared.waker.wake();
        } else if let Some(deadline) = deadline {
            // The write may have armed a timer earlier than the event loop's planned
            // wake-up.
            self.shared.waker.wake_if_earlier(deadline);
        }
        self.shared.intx.after_access();
        // QEMU posts BAR writes (no reply awaited); when the driver follows this one at
        // once, polling for it spares this thread a sleep and a wake-up. The poll runs
        // before the crate's next blocking receive: not while later messages already
        // wait in its buffer, and after the reply when the client asked for one.
        if effect.next_access_soon {
            self.spin.arm();
        }
        Ok(())
    }

    fn dma_map(
        &mut self,
        flags: DmaMapFlags,
        offset: u64,
        address: u64,
        size: u64,
        fd: Option<File>,
    ) -> io::Result<()> {
        log::debug!(
            "DMA_MAP {address:#x}+{size:#x} offset {offset:#x} flags {flags:?} fd {}",
            fd.is_some()
        );
        let req = dma::MapRequest {
            flags,
            offset,
            address,
            size,
        };
        // Behind a virtual IOMMU, QEMU sends a map or unmap for every buffer the guest
        // driver maps or unmaps, and its vCPU waits for each reply; they come in runs
        // (an unmap, then the map of the refilled buffer). Poll for the next.
        self.spin.arm();
        // The file is mapped (first time only) before the device lock is taken.
        let prepared = dma::prepare_map(&mut self.dma_files, req, fd)?;
        let mut d = self.shared.device.lock();
        let r = prepared.apply(d.memory_mut());
        if r.is_err() {
            self.dma_files.prune(d.memory());
        }
        r
    }

    fn dma_unmap(&mut self, flags: DmaUnmapFlags, address: u64, size: u64) -> io::Result<()> {
        log::debug!("DMA_UNMAP {address:#x}+{size:#x} flags {flags:?}");
        // As after a map: the next map or unmap follows within microseconds.
        self.spin.arm();
        // Under the device lock, as every DMA: when this returns and the reply goes out,
        // no DMA can reach the removed ranges.
        let mut d = self.shared.device.lock();
        dma::dma_unmap(&mut self.dma_files, d.memory_mut(), flags, address, size)
    }

    fn reset(&mut self) -> io::Result<()> {
        log::debug!("device reset by the client");
        self.shared.device.lock().power_on_reset();
        Ok(())
    }

    fn set_irqs(
        &mut self,
        index: u32,
        flags: u32,
        start: u32,
        count: u32,
        fds: Vec<File>,
    ) -> io::Result<()> {
        log::debug!(
            "SET_IRQS index {index} flags {flags:#x} start {start} count {count} fds {}",
            fds.len()
        );
        if index == IRQ_INTX {
            // QEMU waits for an UNMASK's reply and the handler's next access follows
            // (tuning.rs).
            if flags & IRQ_SET_ACTION_UNMASK != 0 || self.bias.receiving() {
                self.spin.arm();
            }
            self.shared.intx.set_irqs(flags, start, count, fds)?;
            if self.shared.intx.recheck_pending() {
                // The event loop re-signals if no access comes first.
                self.shared.waker.wake();
            }
            return Ok(());
        }
        if index == IRQ_ERR {
            // Accepted (eventfd installed or removed) and never signalled.
            return if start == 0 && count <= 1 {
                Ok(())
            } else {
                Err(invalid(format!("irq index {index} has one vector")))
            };
        }
        // MSI, MSI-X, REQ have no vectors: only "disable" (count 0) is accepted.
        if count == 0 {
            Ok(())
        } else {
            Err(invalid(format!("irq index {index} has no vectors")))
        }
    }
}
