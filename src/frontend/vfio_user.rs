//! A vfio-user server: QEMU (`-device vfio-user-pci`) or any vfio-user client attaches
//! to the emulated 82540EM through a Unix socket.
//!
//! Built on the rust-vmm `vfio_user` crate (nic-emu's fork of 0.1.7 in
//! `vendor/vfio_user`: it adds the hook the socket polling of `tuning.rs` uses, and
//! bounds region accesses before allocating them). The device exposes the regions a
//! PCI vfio device has: BAR0 (128 KiB of registers), BAR1 (the 64-byte I/O window)
//! and 256 bytes of configuration space; the other BARs, the ROM and VGA have size 0. Interrupts are
//! INTx only, through the eventfd the client sends (see [`intx`]); MSI, MSI-X and REQ
//! are declared with a count of 0, ERR with one vector that is never signalled.
//!
//! Threads: the caller's thread serves the socket (one client at a time; the next one is
//! accepted when it leaves, and sees a freshly reset device); an [`EventLoop`] thread
//! receives frames and fires timers. They share the device behind a mutex held only for
//! one access or one receive pass.
//!
//! Guest RAM arrives as DMA_MAP messages with file descriptors (QEMU needs
//! `-object memory-backend-memfd,...,share=on`); ranges without a descriptor (ROM) are
//! recorded but unreachable. [`dma`] keeps the table with the VFIO type1 rules (range
//! unmaps, unmap-all, overlaps refused). A bad map is answered with an error, never a
//! crash; a client that leaves takes every map with it.

pub mod dma;
pub mod intx;
mod sys;
mod tuning;

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vfio_user::{DmaMapFlags, DmaUnmapFlags, IrqInfo, Server, ServerBackend, ServerRegion};

use super::event_loop::{lock_device, poll_readable, EventLoop, EventLoopHandle, Waker};
use super::{Frontend, FrontendError};
use crate::backend::PacketBackend;
use crate::clock::{Clock, MonotonicClock};
use crate::device::pci_config::CONFIG_SIZE;
use crate::device::regs::{BAR0_SIZE, BAR1_SIZE, CTRL, IMC, IMS, RCTL, RDT, TCTL, TDT};
use crate::device::{Bar, DeviceConfig, E1000};
use crate::memory::GuestRam;
pub use intx::IntxEventfd;
pub use tuning::DEFAULT_SOCKET_SPIN;

/// vfio region index of BAR0.
pub const REGION_BAR0: u32 = 0;
/// vfio region index of BAR1.
pub const REGION_BAR1: u32 = 1;
/// vfio region index of the expansion ROM.
pub const REGION_ROM: u32 = 6;
/// vfio region index of PCI configuration space.
pub const REGION_CONFIG: u32 = 7;
/// Number of vfio-pci regions (BAR0-5, ROM, config, VGA).
pub const NUM_REGIONS: u32 = 9;
/// vfio irq index of INTx.
pub const IRQ_INTX: u32 = 0;
/// vfio irq index of the error (AER) notification.
pub const IRQ_ERR: u32 = 3;
/// Number of vfio-pci irq indexes (INTx, MSI, MSI-X, ERR, REQ).
pub const NUM_IRQS: u32 = 5;

pub use dma::MAX_DMA_MAPS;

const REGION_FLAG_READ: u32 = 1 << 0;
const REGION_FLAG_WRITE: u32 = 1 << 1;
const IRQ_INFO_EVENTFD: u32 = 1 << 0;
const IRQ_INFO_MASKABLE: u32 = 1 << 1;
const IRQ_INFO_AUTOMASKED: u32 = 1 << 2;

/// Size of a region, by vfio index.
pub fn region_size(index: u32) -> u64 {
    match index {
        REGION_BAR0 => BAR0_SIZE,
        REGION_BAR1 => BAR1_SIZE,
        REGION_CONFIG => CONFIG_SIZE as u64,
        _ => 0,
    }
}

fn server_regions() -> Vec<ServerRegion> {
    (0..NUM_REGIONS)
        .map(|index| {
            let mut r = ServerRegion {
                region_info: Default::default(),
                sparse_areas: Vec::new(),
                mmap_fd: None,
            };
            r.region_info.argsz = 32; // sizeof(struct vfio_region_info)
            r.region_info.index = index;
            r.region_info.size = region_size(index);
            if r.region_info.size > 0 {
                r.region_info.flags = REGION_FLAG_READ | REGION_FLAG_WRITE;
            }
            r
        })
        .collect()
}

fn server_irqs() -> Vec<IrqInfo> {
    (0..NUM_IRQS)
        .map(|index| match index {
            IRQ_INTX => IrqInfo {
                index,
                flags: IRQ_INFO_EVENTFD | IRQ_INFO_MASKABLE | IRQ_INFO_AUTOMASKED,
                count: 1,
            },
            // One error-notification vector, which the device never signals: declaring
            // it keeps QEMU from warning that it "could not enable error recovery".
            IRQ_ERR => IrqInfo {
                index,
                flags: IRQ_INFO_EVENTFD,
                count: 1,
            },
            _ => IrqInfo {
                index,
                flags: 0,
                count: 0,
            },
        })
        .collect()
}

/// State shared by the socket thread, the event loop and [`ShutdownHandle`]s.
struct Shared {
    device: Arc<Mutex<E1000>>,
    intx: IntxEventfd,
    waker: Arc<Waker>,
    stop: AtomicBool,
    path: PathBuf,
    /// Clients served so far (connections accepted).
    clients: AtomicU64,
}

/// Ends a running [`VfioUserServer`] from another thread (or a signal-handling thread).
#[derive(Clone)]
pub struct ShutdownHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ShutdownHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShutdownHandle")
            .field("path", &self.shared.path)
            .finish()
    }
}

impl ShutdownHandle {
    /// Stop serving: the current client (if any) is disconnected and
    /// [`VfioUserServer::serve`] returns within about 100 ms.
    pub fn shutdown(&self) {
        self.shared.stop.store(true, Ordering::Release);
        let n = sys::shutdown_connections_on(&self.shared.path);
        if n > 0 {
            log::info!("vfio-user: disconnected {n} client connection(s) for shutdown");
        }
    }

    /// Disconnect the current client but keep serving (the next client gets a reset device).
    pub fn kick_client(&self) -> usize {
        sys::shutdown_connections_on(&self.shared.path)
    }
}

/// The vfio-user server for one emulated e1000.
pub struct VfioUserServer {
    server: Server,
    /// A duplicate of the listening socket, to wait for connections with a timeout.
    listener: OwnedFd,
    /// Device and inode of the socket file we created, so we only ever remove our own.
    socket_id: (u64, u64),
    shared: Arc<Shared>,
    clock: Arc<dyn Clock>,
    event_loop: Option<EventLoopHandle>,
}

impl std::fmt::Debug for VfioUserServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VfioUserServer")
            .field("path", &self.shared.path)
            .finish()
    }
}

impl VfioUserServer {
    /// Create the device on `backend`, listen on `path` and start the event-loop thread.
    ///
    /// A stale socket file at `path` (nobody accepting) is replaced; a live one, or any
    /// other kind of file, is an error.
    pub fn new(
        path: &Path,
        config: DeviceConfig,
        backend: Box<dyn PacketBackend>,
    ) -> Result<Self, FrontendError> {
        let listener = bind_socket(path)?;
        let socket_id = sys::file_id(path)?;
        let listener_dup = OwnedFd::from(listener.try_clone()?);

        let clock: Arc<dyn Clock> = Arc::new(MonotonicClock::new());
        let intx = IntxEventfd::new();
        let device = E1000::new(config, backend, Box::new(intx.clone()), clock.clone());
        let device = Arc::new(Mutex::new(device));

        let mut event_loop = EventLoop::new(device.clone(), clock.clone())?;
        let waker = event_loop.waker();
        let hook_intx = intx.clone();
        event_loop.set_hook(Box::new(move || hook_intx.poll_recheck()));
        let event_loop = event_loop.spawn()?;

        let server = Server::from_owned_fd(
            OwnedFd::from(listener),
            true,
            server_irqs(),
            server_regions(),
        );
        Ok(Self {
            server,
            listener: listener_dup,
            socket_id,
            shared: Arc::new(Shared {
                device,
                intx,
                waker,
                stop: AtomicBool::new(false),
                path: path.to_path_buf(),
                clients: AtomicU64::new(0),
            }),
            clock,
            event_loop: Some(event_loop),
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// The shared device (for metrics, link control, tests). Keep the lock short.
    pub fn device(&self) -> Arc<Mutex<E1000>> {
        self.shared.device.clone()
    }

    /// The clock the device's timers read.
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    /// The INTx line (for tests and diagnostics: [`IntxEventfd::signals`]).
    pub fn intx(&self) -> IntxEventfd {
        self.shared.intx.clone()
    }

    /// Clients accepted so far.
    pub fn clients_served(&self) -> u64 {
        self.shared.clients.load(Ordering::Acquire)
    }

    /// A handle that stops [`serve`](Self::serve) from another thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            shared: self.shared.clone(),
        }
    }

    /// Serve clients one after the other until a [`ShutdownHandle`] stops the server.
    /// A client that sends garbage or fails is logged and dropped; the next one is served.
    pub fn serve(&mut self) -> Result<(), FrontendError> {
        while !self.shared.stop.load(Ordering::Acquire) {
            match poll_readable(self.listener.as_raw_fd(), Duration::from_millis(100)) {
                Ok(true) => self.serve_one(),
                Ok(false) => {}
                Err(e) => return Err(FrontendError::Io(e)),
            }
        }
        Ok(())
    }

    /// Accept one client (blocking until one connects) and serve it until it leaves.
    pub fn serve_one(&mut self) {
        self.fresh_device();
        let n = self.shared.clients.fetch_add(1, Ordering::AcqRel) + 1;
        log::info!(
            "vfio-user: client #{n} connecting on {}",
            self.shared.path.display()
        );
        let mut conn = Connection {
            shared: &self.shared,
            dma_files: dma::DmaFiles::default(),
            spin: tuning::SocketSpin::from_env(),
            bias: tuning::ReceiveBias::new(Instant::now()),
        };
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| self.server.run(&mut conn)));
        match result {
            Ok(Ok(())) => log::info!("vfio-user: client #{n} disconnected"),
            Ok(Err(e)) => {
                log::warn!("vfio-user: client #{n} dropped: {e}; serving the next client");
                if matches!(e, vfio_user::Error::SocketAccept(_)) {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            Err(_) => log::error!(
                "vfio-user: client #{n} sent a message the protocol library could not handle \
                 (it panicked); dropped, serving the next client"
            ),
        }
        self.fresh_device();
        let m = lock_device(&self.shared.device).metrics();
        log::info!("vfio-user: after client #{n}: {m:?}");
    }

    /// Power-on reset, no guest memory, no interrupt eventfd: what a new client finds.
    fn fresh_device(&self) {
        self.shared.intx.disconnect();
        let mut d = lock_device(&self.shared.device);
        d.set_memory(GuestRam::empty());
        d.power_on_reset();
    }
}

impl Frontend for VfioUserServer {
    fn run(&mut self, stop: &AtomicBool) -> Result<(), FrontendError> {
        let handle = self.shutdown_handle();
        let done = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                while !done.load(Ordering::Acquire) {
                    if stop.load(Ordering::Acquire) {
                        // Repeated until serve() returns: a client accepted just after
                        // one shutdown is disconnected by the next.
                        handle.shutdown();
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            });
            let r = self.serve();
            done.store(true, Ordering::Release);
            r
        })
    }
}

impl Drop for VfioUserServer {
    fn drop(&mut self) {
        if let Some(mut lp) = self.event_loop.take() {
            lp.stop();
        }
        // Remove the socket file only if it is still the one we created.
        if sys::file_id(&self.shared.path).ok() == Some(self.socket_id) {
            let _ = std::fs::remove_file(&self.shared.path);
        }
    }
}

/// Bind a listening socket at `path`, replacing a stale socket file.
fn bind_socket(path: &Path) -> Result<UnixListener, FrontendError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => {
            if !meta.file_type().is_socket() {
                return Err(FrontendError::Other(format!(
                    "{} exists and is not a socket; refusing to replace it",
                    path.display()
                )));
            }
            if UnixStream::connect(path).is_ok() {
                return Err(FrontendError::Other(format!(
                    "{}: another server is already listening there",
                    path.display()
                )));
            }
            log::info!("removing stale socket {}", path.display());
            std::fs::remove_file(path)?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(FrontendError::Io(e)),
    }
    UnixListener::bind(path)
        .map_err(|e| FrontendError::Other(format!("cannot listen on {}: {e}", path.display())))
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// Whether `[offset, offset + len)` lies inside region `index`.
fn in_region(index: u32, offset: u64, len: usize) -> bool {
    offset
        .checked_add(len as u64)
        .is_some_and(|end| end <= region_size(index))
}

/// Whether a BAR0 write at `offset` must wake the event loop. Writes that change the
/// receive or transmit set-up always do; RDT only when the loop last saw the device
/// unable to take frames (the device itself takes waiting frames on an RDT write); TDT
/// only when the transmit engine stopped at its budget (it receives loopback frames
/// itself). Everything else is covered by the timer deadline check.
fn wakes_event_loop(offset: u64, d: &E1000, waker: &Waker) -> bool {
    let dword = offset & !3;
    if dword == u64::from(RDT) {
        waker.rx_blocked()
    } else if dword == u64::from(TDT) {
        d.tx_pending()
    } else {
        [RCTL, TCTL, CTRL].iter().any(|&r| u64::from(r) == dword)
    }
}

/// One client's view of the server: the `vfio_user` callbacks.
struct Connection<'a> {
    shared: &'a Shared,
    /// The client's DMA backing files, each mapped once.
    dma_files: dma::DmaFiles,
    /// After a posted BAR write, or a reply while the guest mostly receives, poll for
    /// the client's next message for a while.
    spin: tuning::SocketSpin,
    /// Whether the guest is a paced receiver (decides polling after replies).
    bias: tuning::ReceiveBias,
}

impl Connection<'_> {
    /// A client accepted after a shutdown request is disconnected at its first message.
    fn check_stop(&self) {
        if self.shared.stop.load(Ordering::Acquire) {
            sys::shutdown_connections_on(&self.shared.path);
        }
    }
}

impl ServerBackend for Connection<'_> {
    fn before_receive(&mut self) {
        self.spin.before_receive(&self.shared.path);
    }

    fn region_read(&mut self, region: u32, offset: u64, data: &mut [u8]) -> io::Result<()> {
        self.check_stop();
        if !in_region(region, offset, data.len()) {
            return Err(invalid(format!(
                "read of {} bytes at {offset:#x} is outside region {region}",
                data.len()
            )));
        }
        let (deadline, receiving) = {
            let mut d = lock_device(&self.shared.device);
            match region {
                REGION_BAR0 => d.bar_read(Bar::Mmio, offset, data),
                REGION_BAR1 => d.bar_read(Bar::Io, offset, data),
                _ => d.config_read(offset, data),
            }
            let receiving = self.bias.update(Instant::now(), || {
                let m = d.metrics();
                (m.rx_frames, m.tx_frames)
            });
            (d.next_timer_deadline(), receiving)
        };
        if let Some(deadline) = deadline {
            // An ICR read may have started interrupt throttling.
            self.shared.waker.wake_if_earlier(deadline);
        }
        self.shared.intx.after_access();
        // The guest's vCPU waits for this reply, and the driver's next access follows
        // within tens of microseconds (Linux: ICR read, QEMU's UNMASK, IMC, a STATUS
        // flush, then the NAPI poll's RDT writes). While the guest is a paced receiver
        // (TCP), poll for it once the reply is out (tuning.rs says why only then).
        if receiving && region != REGION_CONFIG {
            self.spin.arm();
        }
        Ok(())
    }

    fn region_write(&mut self, region: u32, offset: u64, data: &[u8]) -> io::Result<()> {
        self.check_stop();
        if !in_region(region, offset, data.len()) {
            return Err(invalid(format!(
                "write of {} bytes at {offset:#x} is outside region {region}",
                data.len()
            )));
        }
        let (wake, deadline) = {
            let mut d = lock_device(&self.shared.device);
            let wake = match region {
                REGION_BAR0 => {
                    d.bar_write(Bar::Mmio, offset, data);
                    wakes_event_loop(offset, &d, &self.shared.waker)
                }
                REGION_BAR1 => {
                    d.bar_write(Bar::Io, offset, data);
                    // An IODATA write may hit any register.
                    true
                }
                _ => {
                    d.config_write(offset, data);
                    true
                }
            };
            (wake, d.next_timer_deadline())
        };
        if wake {
            self.shared.waker.wake();
        } else if let Some(deadline) = deadline {
            // The write may have armed a timer (IMS with throttled causes pending, ITR,
            // delay timers) earlier than the event loop's planned wake-up.
            self.shared.waker.wake_if_earlier(deadline);
        }
        self.shared.intx.after_access();
        // QEMU posts BAR writes (no reply awaited). After a transmit (TDT), or an IMC
        // or IMS write (Linux reads STATUS right after, to flush it), the next access
        // follows soon: polling for it spares this thread a sleep and a wake-up.
        let dword = offset & !3;
        if region == REGION_BAR0 && [TDT, IMC, IMS].iter().any(|&r| u64::from(r) == dword) {
            self.spin.after_posted_write(&self.shared.path);
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
        // The file is mapped (first time only) before the device lock is taken.
        let prepared = dma::prepare_map(&mut self.dma_files, req, fd)?;
        let mut d = lock_device(&self.shared.device);
        let r = prepared.apply(d.memory_mut());
        if r.is_err() {
            self.dma_files.prune(d.memory());
        }
        r
    }

    fn dma_unmap(&mut self, flags: DmaUnmapFlags, address: u64, size: u64) -> io::Result<()> {
        log::debug!("DMA_UNMAP {address:#x}+{size:#x} flags {flags:?}");
        // Under the device lock, as every DMA: when this returns and the reply goes out,
        // no DMA can reach the removed ranges.
        let mut d = lock_device(&self.shared.device);
        dma::dma_unmap(&mut self.dma_files, d.memory_mut(), flags, address, size)
    }

    fn reset(&mut self) -> io::Result<()> {
        log::debug!("device reset by the client");
        lock_device(&self.shared.device).power_on_reset();
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
            // QEMU unmasks INTx after the guest's first BAR access following an
            // interrupt and waits for the reply; the handler's next access follows.
            if self.bias.receiving() {
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
