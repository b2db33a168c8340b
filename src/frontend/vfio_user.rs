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
//! accepted when it leaves, and sees a freshly reset device) and carries each access to
//! the device; an [`EventLoop`] thread runs the device's service step. They share the
//! device ([`SharedDevice`]) behind a lock held for one access or one service step.
//! Which register an access hit is the device's business: it answers each write with an
//! [`AccessEffect`](crate::device::AccessEffect) that says whether to wake the event
//! loop, and whether to poll for the guest's next access (`tuning.rs`).
//!
//! Files: `regions.rs` (what the client sees), `connection.rs` (one client's callbacks),
//! `dma.rs` (guest memory), `intx.rs` (the interrupt), `tuning.rs` (socket polling),
//! `socket.rs` (the socket file).
//!
//! Guest RAM arrives as DMA_MAP messages with file descriptors (QEMU needs
//! `-object memory-backend-memfd,...,share=on`); ranges without a descriptor (ROM) are
//! recorded but unreachable. [`dma`] keeps the table with the VFIO type1 rules (range
//! unmaps, unmap-all, overlaps refused). A bad map is answered with an error, never a
//! crash; a client that leaves takes every map with it.

mod connection;
pub mod dma;
pub mod intx;
mod regions;
mod socket;
mod tuning;

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use vfio_user::Server;

use super::event_loop::{EventLoop, EventLoopHandle};
use super::waker::{poll_readable, Waker};
use super::{Frontend, FrontendError, SharedDevice};
use crate::backend::PacketBackend;
use crate::clock::{Clock, MonotonicClock};
use crate::device::{DeviceConfig, E1000};
use crate::mac::MacAddress;
use crate::memory::GuestRam;
pub use dma::MAX_DMA_MAPS;
pub use intx::IntxEventfd;
pub use regions::{
    region_size, IRQ_ERR, IRQ_INTX, NUM_IRQS, NUM_REGIONS, REGION_BAR0, REGION_BAR1, REGION_CONFIG,
    REGION_ROM,
};
pub use tuning::DEFAULT_SOCKET_SPIN;

/// State shared by the socket thread, the event loop and [`ShutdownHandle`]s.
struct Shared {
    device: SharedDevice,
    intx: IntxEventfd,
    waker: Arc<Waker>,
    stop: AtomicBool,
    path: PathBuf,
    /// Clients served so far (connections accepted).
    clients: AtomicU64,
    /// A duplicate of the connected client's stream, to disconnect it from elsewhere.
    connection: Mutex<Option<UnixStream>>,
}

impl Shared {
    fn set_connection(&self, stream: Option<UnixStream>) {
        *self.connection.lock().unwrap_or_else(|p| p.into_inner()) = stream;
    }

    /// Shut the connected client's stream down (its session ends); 1 if there was one.
    fn disconnect(&self) -> usize {
        let guard = self.connection.lock().unwrap_or_else(|p| p.into_inner());
        match guard.as_ref() {
            Some(s) => usize::from(s.shutdown(std::net::Shutdown::Both).is_ok()),
            None => 0,
        }
    }
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
        if self.shared.disconnect() > 0 {
            log::info!("vfio-user: disconnected the client for shutdown");
        }
    }

    /// Disconnect the current client but keep serving (the next client gets a reset
    /// device). Returns how many clients were disconnected (0 or 1).
    pub fn kick_client(&self) -> usize {
        self.shared.disconnect()
    }
}

/// Steers the device of a running [`VfioUserServer`] from another thread (a control
/// socket): runs a closure on the locked device, then wakes the event loop so that what
/// the closure changed (link state, a backend that has frames again) takes effect at once.
#[derive(Clone)]
pub struct DeviceHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for DeviceHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceHandle")
            .field("path", &self.shared.path)
            .finish()
    }
}

impl DeviceHandle {
    /// Run `f` on the device under its lock (keep it short), then wake the event loop.
    pub fn with_device<R>(&self, f: impl FnOnce(&mut E1000) -> R) -> R {
        let r = f(&mut self.shared.device.lock());
        self.shared.waker.wake();
        r
    }

    /// Wake the event loop without taking the device lock (a backend's wrapper was
    /// changed through its handle).
    pub fn wake(&self) {
        self.shared.waker.wake();
    }

    /// Plug (`true`) or pull the cable: the guest gets LSC and sees the new link state.
    pub fn set_link(&self, up: bool) {
        self.with_device(|d| d.set_link(up));
    }

    /// Whether a client is connected now.
    pub fn client_connected(&self) -> bool {
        self.shared
            .connection
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// Clients accepted so far.
    pub fn clients_served(&self) -> u64 {
        self.shared.clients.load(Ordering::Acquire)
    }

    /// The socket's path (or a description of an inherited socket).
    pub fn path(&self) -> &Path {
        &self.shared.path
    }
}

/// Where a [`VfioUserServer`] listens.
#[derive(Debug)]
pub enum Listen<'a> {
    /// Bind a socket at this path (a stale socket file is replaced; removed at the end).
    Path(&'a Path),
    /// A socket that is already listening (handed over; its file is left alone).
    Listener(UnixListener),
}

/// The vfio-user server for one emulated e1000.
pub struct VfioUserServer {
    server: Server,
    /// A duplicate of the listening socket, to wait for connections with a timeout.
    listener: OwnedFd,
    /// Device and inode of the socket file we created, so we only ever remove our own;
    /// `None` for a socket handed to us ([`from_listener`](Self::from_listener)).
    socket_id: Option<(u64, u64)>,
    shared: Arc<Shared>,
    clock: Arc<dyn Clock>,
    /// The event loop, until [`spawn`](VfioUserServer::spawn) starts it.
    pending_loop: Option<EventLoop>,
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
        let mut s = Self::bind(Listen::Path(path), config, backend)?;
        s.spawn()?;
        Ok(s)
    }

    /// Create the device on `backend` and listen, but start no thread yet: everything
    /// the server will use is open (the socket, the event loop's wake-up), nothing runs
    /// until [`spawn`](Self::spawn) or [`serve`](Self::serve). For a program that locks
    /// itself down in between (`crate::sandbox`, feature `sandbox`, wants one thread).
    pub fn bind(
        listen: Listen<'_>,
        config: DeviceConfig,
        backend: Box<dyn PacketBackend>,
    ) -> Result<Self, FrontendError> {
        match listen {
            Listen::Path(path) => {
                let listener = socket::bind_socket(path)?;
                let socket_id = socket::file_id(path)?;
                Self::serve_on(
                    listener,
                    path.to_path_buf(),
                    Some(socket_id),
                    config,
                    backend,
                )
            }
            Listen::Listener(listener) => {
                let path = listener
                    .local_addr()?
                    .as_pathname()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| PathBuf::from(format!("(fd {})", listener.as_raw_fd())));
                // The server accepts after poll(2) says a client is there; a blocking
                // accept keeps the vfio_user crate's loop simple whatever flags the
                // socket came with.
                listener.set_nonblocking(false)?;
                Self::serve_on(listener, path, None, config, backend)
            }
        }
    }

    /// Start the event-loop thread (`nic-emu-io`) if it is not running yet.
    pub fn spawn(&mut self) -> Result<(), FrontendError> {
        if let Some(lp) = self.pending_loop.take() {
            self.event_loop = Some(lp.spawn()?);
        }
        Ok(())
    }

    /// Like [`new`](Self::new), on a socket that is already listening: one a service
    /// manager handed over (systemd socket activation) or the caller bound. Its file, if
    /// any, is left alone when the server goes: whoever created it removes it.
    pub fn from_listener(
        listener: UnixListener,
        config: DeviceConfig,
        backend: Box<dyn PacketBackend>,
    ) -> Result<Self, FrontendError> {
        let mut s = Self::bind(Listen::Listener(listener), config, backend)?;
        s.spawn()?;
        Ok(s)
    }

    fn serve_on(
        listener: UnixListener,
        path: PathBuf,
        socket_id: Option<(u64, u64)>,
        config: DeviceConfig,
        backend: Box<dyn PacketBackend>,
    ) -> Result<Self, FrontendError> {
        let listener_dup = OwnedFd::from(listener.try_clone()?);
        // A fact about the host, not about nic-emu's setup: for -v readers and benchmarks.
        if let Some(hint) = tuning::halt_poll_hint() {
            log::debug!("{hint}");
        }
        if config.mac == MacAddress::QEMU_DEFAULT {
            log::warn!(
                "vfio-user: MAC {} is the one QEMU gives its own first NIC: start QEMU with \
                 `-nic none` (or -nodefaults), or the guest also gets QEMU's e1000 with \
                 this MAC, as eth0",
                config.mac
            );
        }

        let clock: Arc<dyn Clock> = Arc::new(MonotonicClock::new());
        let intx = IntxEventfd::new();
        let device = E1000::new(config, backend, Box::new(intx.clone()), clock.clone());
        let device = SharedDevice::new(device);

        let mut event_loop = EventLoop::new(device.clone(), clock.clone())?;
        let waker = event_loop.waker();
        let hook_intx = intx.clone();
        event_loop.set_hook(Box::new(move || hook_intx.poll_recheck()));

        let server = Server::from_owned_fd(
            OwnedFd::from(listener),
            true,
            regions::server_irqs(),
            regions::server_regions(),
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
                path,
                clients: AtomicU64::new(0),
                connection: Mutex::new(None),
            }),
            clock,
            pending_loop: Some(event_loop),
            event_loop: None,
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// The shared device (for metrics, link control, tests). Keep the lock short.
    pub fn device(&self) -> SharedDevice {
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

    /// A handle that steers the device from another thread (link, backend requests).
    pub fn device_handle(&self) -> DeviceHandle {
        DeviceHandle {
            shared: self.shared.clone(),
        }
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
        self.spawn()?;
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
        if let Err(e) = self.spawn() {
            log::error!("vfio-user: cannot start the event loop: {e}");
        }
        self.fresh_device();
        let n = self.shared.clients.fetch_add(1, Ordering::AcqRel) + 1;
        log::info!(
            "vfio-user: client #{n} connecting on {}",
            self.shared.path.display()
        );
        let mut conn = connection::Connection::new(&self.shared);
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| self.server.run(&mut conn)));
        self.shared.set_connection(None);
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
        // The client's maps go with the table here, and its files with `conn`.
        self.fresh_device();
        drop(conn);
        let m = self.shared.device.lock().metrics();
        log::info!("vfio-user: after client #{n}: {m}");
    }

    /// Power-on reset, no guest memory, no interrupt eventfd: what a new client finds.
    fn fresh_device(&self) {
        self.shared.intx.disconnect();
        let mut d = self.shared.device.lock();
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
        if self.socket_id.is_some() && socket::file_id(&self.shared.path).ok() == self.socket_id {
            let _ = std::fs::remove_file(&self.shared.path);
        }
    }
}
