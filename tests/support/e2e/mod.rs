//! Harness for the real-QEMU end-to-end tests: the provisioned rig (scripts/provision.sh),
//! child processes that are always stopped (process-group kill on drop), network
//! namespaces the test creates and deletes, guests booted with scripts/boot-guest.sh and
//! their serial console read back.
//!
//! Every process the harness starts is owned by a [`Proc`]; every namespace by a
//! [`Netns`]; both clean up in `Drop`, so a failing assertion leaves nothing running.

use std::fs;
use std::io::Write;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::thread::sleep;
use std::time::{Duration, Instant};

mod flows;
mod guest;
mod proc;
pub use flows::*;
pub use guest::*;
pub use proc::*;

use super::{can_run, is_root};

/// The nic-emu-cli binary cargo built for this test, or `$NIC_EMU_E2E_CLI` (to test
/// another build, e.g. target/release/nic-emu-cli).
pub fn cli() -> PathBuf {
    std::env::var_os("NIC_EMU_E2E_CLI")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_nic-emu-cli")))
}

/// Seconds a guest may run before boot-guest.sh kills QEMU.
pub const GUEST_TIMEOUT: u32 = 120;

static SERIAL: Mutex<()> = Mutex::new(());

/// Each TCG guest needs a CPU of its own and the machine has two: the scenarios run one
/// at a time (a scenario may boot two guests together).
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The provisioned rig: scripts, QEMU and guest under the cache directory.
pub struct Rig {
    /// The repository's scripts/ directory.
    pub scripts: PathBuf,
    /// `${NIC_EMU_CACHE:-/var/cache/nic-emu}`.
    pub cache: PathBuf,
    /// The QEMU binary (`$NIC_EMU_QEMU` or the rig's wrapper; for the arm64 guest
    /// `$NIC_EMU_QEMU_AARCH64` or the rig's qemu-system-aarch64, for the riscv64 guest
    /// `$NIC_EMU_QEMU_RISCV64` or qemu-system-riscv64).
    pub qemu: PathBuf,
    /// The guest's architecture, boot-guest.sh's `--arch`: `x86_64`, `aarch64` or
    /// `riscv64`.
    pub arch: &'static str,
}

impl Rig {
    /// The rig, if this test can use it: QEMU and the guest provisioned and, when
    /// `need_root`, running as root. Otherwise `None` after `can_run` printed `SKIP:`
    /// (or panicked under `NIC_EMU_NO_SKIP=1`).
    pub fn get(test: &str, need_root: bool) -> Option<Rig> {
        let cache = PathBuf::from(
            std::env::var("NIC_EMU_CACHE").unwrap_or_else(|_| "/var/cache/nic-emu".into()),
        );
        let qemu = std::env::var("NIC_EMU_QEMU")
            .map(PathBuf::from)
            .unwrap_or_else(|_| cache.join("bin/qemu-system-x86_64"));
        let rig = Rig {
            scripts: Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts"),
            cache,
            qemu,
            arch: "x86_64",
        };
        if need_root && !can_run(test, is_root(), "needs root (netns, tap)") {
            return None;
        }
        // boot-guest.sh writes logs and lock files in the cache.
        let writable = is_root() || writable_dir(&rig.cache.join("logs"));
        if !can_run(test, writable, "needs root or a writable NIC_EMU_CACHE") {
            return None;
        }
        let ok = rig.qemu.exists()
            && rig.cache.join("guest/initramfs.cpio.gz").exists()
            && rig.busybox().exists();
        if !can_run(
            test,
            ok,
            "QEMU rig not provisioned (run: sudo bash scripts/provision.sh)",
        ) {
            return None;
        }
        Some(rig)
    }

    /// The arm64 rig (scripts/build-guest-arch.sh's arm64 guest on qemu-system-aarch64
    /// `-machine virt`, TCG), after [`get`](Self::get)'s checks (the host side uses the
    /// x86 guest's busybox). `None` after `SKIP:` when it is not provisioned.
    pub fn get_arm64(test: &str, need_root: bool) -> Option<Rig> {
        Self::get_other_arch(test, need_root, "aarch64")
    }

    /// The riscv64 rig (scripts/build-guest-arch.sh's riscv64 guest on
    /// qemu-system-riscv64 `-machine virt`, TCG), as [`get_arm64`](Self::get_arm64).
    pub fn get_riscv64(test: &str, need_root: bool) -> Option<Rig> {
        Self::get_other_arch(test, need_root, "riscv64")
    }

    /// A guest of `arch` (`aarch64` or `riscv64`): its QEMU (`$NIC_EMU_QEMU_<ARCH>` or the
    /// rig's wrapper), kernel and initramfs must be there.
    fn get_other_arch(test: &str, need_root: bool, arch: &'static str) -> Option<Rig> {
        let rig = Self::get(test, need_root)?;
        let qemu = std::env::var(format!("NIC_EMU_QEMU_{}", arch.to_uppercase()))
            .map(PathBuf::from)
            .unwrap_or_else(|_| rig.cache.join(format!("bin/qemu-system-{arch}")));
        let rig = Rig { qemu, arch, ..rig };
        let guest = rig.guest_dir();
        let ok = rig.qemu.exists()
            && guest.join("vmlinuz").exists()
            && guest.join("initramfs.cpio.gz").exists();
        let why = format!("{arch} rig not provisioned (run: sudo bash scripts/provision.sh)");
        if !can_run(test, ok, &why) {
            return None;
        }
        Some(rig)
    }

    /// The guest's static busybox, runnable on the host.
    pub fn busybox(&self) -> PathBuf {
        self.cache.join("guest-root/bin/busybox")
    }

    /// The guest kernel and initramfs directory.
    pub fn guest_dir(&self) -> PathBuf {
        match self.arch {
            "aarch64" => self.cache.join("guest-arm64"),
            "riscv64" => self.cache.join("guest-riscv64"),
            _ => self.cache.join("guest"),
        }
    }

    /// The firmware directory of the rig's QEMU (option ROMs such as pxe-e1000.rom).
    pub fn qemu_share(&self) -> PathBuf {
        self.cache.join("qemu-root/usr/share/qemu")
    }

    /// scripts/boot-guest.sh.
    pub fn boot_script(&self) -> PathBuf {
        self.scripts.join("boot-guest.sh")
    }
}

/// Whether this process may create files in `dir`.
fn writable_dir(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: access(2) reads the NUL-terminated path `c` owns for the whole call.
    unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
}

/// A scratch directory for one scenario; kept (and its path printed) when the test
/// fails, removed otherwise.
pub struct Workdir(pub PathBuf);

impl Workdir {
    /// A fresh directory named after the scenario and this process.
    pub fn new(tag: &str) -> Workdir {
        let p = std::env::temp_dir().join(format!("nic-emu-e2e.{}.{tag}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).expect("create work dir");
        Workdir(p)
    }

    /// A path inside the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        if std::thread::panicking() || std::env::var_os("NIC_EMU_E2E_KEEP").is_some() {
            eprintln!("e2e: logs kept in {}", self.0.display());
        } else {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

/// `n` UDP ports on 127.0.0.1 that were free a moment ago.
pub fn free_udp_ports(n: usize) -> Vec<u16> {
    let socks: Vec<UdpSocket> = (0..n)
        .map(|_| UdpSocket::bind("127.0.0.1:0").expect("bind an ephemeral UDP port"))
        .collect();
    socks
        .iter()
        .map(|s| s.local_addr().expect("local addr").port())
        .collect()
}

/// Options of one nic-emu-cli run.
pub struct NicEmu<'a> {
    /// `--backend` value.
    pub backend: String,
    /// `--mac`.
    pub mac: &'a str,
    /// `--record FILE`.
    pub record: Option<PathBuf>,
    /// Run inside this namespace.
    pub netns: Option<&'a Netns>,
}

impl NicEmu<'_> {
    /// Start the server on `socket` and wait until the socket exists.
    pub fn start(&self, wd: &Workdir, name: &str, socket: &Path) -> Proc {
        self.start_with(wd, name, socket, &[])
    }

    /// [`start`](Self::start) with more nic-emu-cli options.
    pub fn start_with(&self, wd: &Workdir, name: &str, socket: &Path, extra: &[&str]) -> Proc {
        let _ = fs::remove_file(socket);
        let mut args: Vec<String> = vec![
            "--backend".into(),
            self.backend.clone(),
            "--socket".into(),
            socket.display().to_string(),
            "--mac".into(),
            self.mac.into(),
        ];
        if let Some(r) = &self.record {
            args.push("--record".into());
            args.push(r.display().to_string());
        }
        args.extend(extra.iter().map(|a| a.to_string()));
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let cmd = match self.netns {
            Some(ns) => ns.cmd(cli(), &argv),
            None => {
                let mut c = Command::new(cli());
                c.args(&argv);
                c
            }
        };
        let mut cmd = cmd;
        // Not the repository root: its backends.toml must not change the test's setup.
        cmd.current_dir(&wd.0).env("RUST_BACKTRACE", "1");
        let mut p = Proc::spawn(name, cmd, &wd.path(&format!("{name}.log")));
        let t0 = Instant::now();
        loop {
            if is_socket(socket) {
                return p;
            }
            if let Some(st) = p.try_wait() {
                panic!(
                    "{name} exited ({st}) before creating {}:\n{}",
                    socket.display(),
                    p.log_tail(30)
                );
            }
            if t0.elapsed() > Duration::from_secs(15) {
                panic!(
                    "{name}: no socket {} after 15 s:\n{}",
                    socket.display(),
                    p.log_tail(30)
                );
            }
            sleep(Duration::from_millis(50));
        }
    }
}

fn is_socket(p: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    fs::metadata(p).is_ok_and(|m| m.file_type().is_socket())
}

/// Append a classic pcap (microsecond, Ethernet) file with `frames`, 1 ms apart.
pub fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let mut f = fs::File::create(path).expect("create pcap");
    let mut hdr = Vec::with_capacity(24);
    hdr.extend_from_slice(&0xA1B2_C3D4u32.to_le_bytes());
    hdr.extend_from_slice(&2u16.to_le_bytes());
    hdr.extend_from_slice(&4u16.to_le_bytes());
    hdr.extend_from_slice(&0i32.to_le_bytes());
    hdr.extend_from_slice(&0u32.to_le_bytes());
    hdr.extend_from_slice(&65535u32.to_le_bytes());
    hdr.extend_from_slice(&1u32.to_le_bytes()); // LINKTYPE_ETHERNET
    f.write_all(&hdr).expect("write pcap header");
    for (i, fr) in frames.iter().enumerate() {
        let us = i as u32 * 1000;
        let len = fr.len() as u32;
        let mut rec = Vec::with_capacity(16 + fr.len());
        rec.extend_from_slice(&(1_700_000_000 + us / 1_000_000).to_le_bytes());
        rec.extend_from_slice(&(us % 1_000_000).to_le_bytes());
        rec.extend_from_slice(&len.to_le_bytes());
        rec.extend_from_slice(&len.to_le_bytes());
        rec.extend_from_slice(fr);
        f.write_all(&rec).expect("write pcap record");
    }
}

/// Parse `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> [u8; 6] {
    let v: Vec<u8> = s
        .split(':')
        .map(|h| u8::from_str_radix(h, 16).expect("hex MAC"))
        .collect();
    v.try_into().expect("six MAC bytes")
}
