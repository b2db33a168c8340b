//! Shared by the tests that drive the vfio-user server through `vfio_user::Client`: a
//! server on its own thread, register and config accessors, sealed memfds for guest RAM.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nic_emu::backend::Loopback;
use nic_emu::frontend::vfio_user::{
    IntxEventfd, ShutdownHandle, VfioUserServer, REGION_BAR0, REGION_CONFIG,
};
use nic_emu::frontend::SharedDevice;
use nic_emu::{DeviceConfig, MacAddress};
use vfio_user::Client;
use vmm_sys_util::eventfd::EventFd;

pub const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0xAB, 0xCD, 0x01];
pub const IRQ_TRIGGER_EVENTFD: u32 = 0x24;
pub const IRQ_UNMASK: u32 = 0x11;

/// A server on its own thread; shut down and joined on drop.
pub struct Running {
    pub path: PathBuf,
    pub device: SharedDevice,
    pub intx: IntxEventfd,
    pub handle: ShutdownHandle,
    thread: Option<JoinHandle<VfioUserServer>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        assert!(!self.path.exists(), "socket file left behind");
    }
}

pub fn socket_path() -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("nic-emu-vu-{}-{n}.sock", std::process::id()))
}

pub fn start() -> Running {
    start_with(Box::new(Loopback::new()))
}

pub fn start_with(backend: Box<dyn nic_emu::PacketBackend>) -> Running {
    let path = socket_path();
    let config = DeviceConfig {
        mac: MacAddress::new(MAC),
        link_up: true,
        ..DeviceConfig::default()
    };
    let mut server = VfioUserServer::new(&path, config, backend).unwrap();
    let device = server.device();
    let intx = server.intx();
    let handle = server.shutdown_handle();
    let thread = std::thread::spawn(move || {
        server.serve().unwrap();
        server
    });
    Running {
        path,
        device,
        intx,
        handle,
        thread: Some(thread),
    }
}

pub fn rd(c: &mut Client, off: u32) -> u32 {
    let mut b = [0u8; 4];
    c.region_read(REGION_BAR0, u64::from(off), &mut b).unwrap();
    u32::from_le_bytes(b)
}

pub fn wr(c: &mut Client, off: u32, v: u32) {
    c.region_write(REGION_BAR0, u64::from(off), &v.to_le_bytes())
        .unwrap();
}

pub fn cfg_rd(c: &mut Client, off: u64) -> u32 {
    let mut b = [0u8; 4];
    c.region_read(REGION_CONFIG, off, &mut b).unwrap();
    u32::from_le_bytes(b)
}

pub fn cfg_wr16(c: &mut Client, off: u64, v: u16) {
    c.region_write(REGION_CONFIG, off, &v.to_le_bytes())
        .unwrap();
}

pub fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

pub fn eventfd_count(efd: &EventFd) -> u64 {
    efd.read().unwrap_or(0)
}

/// Guest RAM as QEMU's `memory-backend-memfd` makes it: a memfd of `size` bytes, sealed
/// against growing and shrinking.
pub fn memfd(size: u64) -> File {
    let f = memfd_unsealed(size);
    // SAFETY: F_ADD_SEALS on a descriptor we own; no memory is passed.
    let r = unsafe {
        libc::fcntl(
            std::os::fd::AsRawFd::as_raw_fd(&f),
            libc::F_ADD_SEALS,
            libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL,
        )
    };
    assert_eq!(r, 0, "F_ADD_SEALS failed");
    f
}

/// A memfd of `size` bytes that can still be truncated (a hostile client's).
pub fn memfd_unsealed(size: u64) -> File {
    // SAFETY: the name is a valid NUL-terminated string; memfd_create returns a new
    // descriptor or -1.
    let raw = unsafe {
        libc::memfd_create(
            c"nic-emu-test".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    assert!(raw >= 0, "memfd_create failed");
    // SAFETY: `raw` is a new descriptor owned by nobody else.
    let f = File::from(unsafe { OwnedFd::from_raw_fd(raw) });
    f.set_len(size).unwrap();
    f
}

/// Send raw bytes as a client, read whatever comes back until the server closes or
/// goes quiet, and return it.
pub fn raw_session(path: &Path, bytes: &[u8], close_write: bool) -> Vec<u8> {
    let mut s = UnixStream::connect(path).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let _ = s.write_all(bytes);
    if close_write {
        let _ = s.shutdown(std::net::Shutdown::Write);
    }
    let mut out = Vec::new();
    let mut b = [0u8; 256];
    while let Ok(n) = s.read(&mut b) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&b[..n]);
    }
    out
}

pub fn header(id: u16, command: u16, size: u32, flags: u32) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&id.to_le_bytes());
    h.extend_from_slice(&command.to_le_bytes());
    h.extend_from_slice(&size.to_le_bytes());
    h.extend_from_slice(&flags.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes());
    h
}

/// What a hostile-client test needs from a server: its socket, and where it can tell,
/// its guest-memory map count and whether an INTx eventfd is connected.
pub trait Target {
    fn path(&self) -> &Path;
    /// DMA regions mapped now (`None`: not visible from outside the server's process).
    fn region_count(&self) -> Option<usize>;
    /// An INTx eventfd connected (`None`: not visible).
    fn intx_enabled(&self) -> Option<bool>;
}

impl Target for Running {
    fn path(&self) -> &Path {
        &self.path
    }
    fn region_count(&self) -> Option<usize> {
        Some(self.device.lock().memory().region_count())
    }
    fn intx_enabled(&self) -> Option<bool> {
        Some(self.intx.enabled())
    }
}

/// `nic-emu-cli` itself, with its sandbox on (the default), on a loopback backend: a
/// hostile input that reached a system call outside its lists would kill it (status
/// 159), and the drop checks that it is alive and stops cleanly.
#[cfg(feature = "cli")]
pub struct CliServer {
    pub path: PathBuf,
    log: PathBuf,
    child: std::process::Child,
}

#[cfg(feature = "cli")]
impl CliServer {
    pub fn start() -> CliServer {
        Self::start_with_args(&[])
    }

    /// With these options added to the command line.
    pub fn start_with_args(extra: &[&str]) -> CliServer {
        let path = socket_path();
        let log = path.with_extension("log");
        let out = File::create(&log).expect("create the log");
        let err = out.try_clone().expect("dup the log");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_nic-emu-cli"))
            .args([
                "--backend",
                "loopback",
                "--mac",
                "52:54:00:ab:cd:01",
                "--socket",
            ])
            .arg(&path)
            .args(extra)
            .current_dir(std::env::temp_dir())
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start nic-emu-cli");
        let mut s = CliServer { path, log, child };
        let t = Instant::now();
        while !s.log_text().contains("listening on") {
            if let Ok(Some(st)) = s.child.try_wait() {
                panic!("nic-emu-cli exited ({st}):\n{}", s.log_text());
            }
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "nic-emu-cli did not start:\n{}",
                s.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            s.log_text().contains("sandbox: running as"),
            "not sandboxed:\n{}",
            s.log_text()
        );
        s
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

#[cfg(feature = "cli")]
impl Target for CliServer {
    fn path(&self) -> &Path {
        &self.path
    }
    fn region_count(&self) -> Option<usize> {
        None
    }
    fn intx_enabled(&self) -> Option<bool> {
        None
    }
}

#[cfg(feature = "cli")]
impl Drop for CliServer {
    fn drop(&mut self) {
        let alive = matches!(self.child.try_wait(), Ok(None));
        // SAFETY: kill(2) on our own child's pid; no memory involved.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let t = Instant::now();
        let status = loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                break Some(st);
            }
            if t.elapsed() > Duration::from_secs(10) {
                let _ = self.child.kill();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let log = self.log_text();
        let _ = std::fs::remove_file(&self.log);
        if std::thread::panicking() {
            eprintln!("nic-emu-cli log:\n{log}");
            return;
        }
        assert!(alive, "nic-emu-cli died during the test:\n{log}");
        assert!(
            status.is_some_and(|s| s.success()),
            "nic-emu-cli ended with {status:?} after SIGTERM:\n{log}"
        );
        assert!(!log.contains("nic-emu: sandbox: system call"), "{log}");
        assert!(!self.path.exists(), "socket file left behind");
    }
}
