//! Harness for the real-QEMU end-to-end tests: the provisioned rig (scripts/provision.sh),
//! child processes that are always stopped (process-group kill on drop), network
//! namespaces the test creates and deletes, guests booted with scripts/boot-guest.sh and
//! their serial console read back.
//!
//! Every process the harness starts is owned by a [`Proc`]; every namespace by a
//! [`Netns`]; both clean up in `Drop`, so a failing assertion leaves nothing running.
#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::net::UdpSocket;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::common::{can_run, is_root};

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
}

impl Rig {
    /// The rig, if this test can use it: QEMU and the guest provisioned and, when
    /// `need_root`, running as root. Otherwise `None` after `can_run` printed `SKIP:`
    /// (or panicked under `NIC_EMU_NO_SKIP=1`).
    pub fn get(test: &str, need_root: bool) -> Option<Rig> {
        let cache = PathBuf::from(
            std::env::var("NIC_EMU_CACHE").unwrap_or_else(|_| "/var/cache/nic-emu".into()),
        );
        let rig = Rig {
            scripts: Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts"),
            cache,
        };
        if need_root && !can_run(test, is_root(), "needs root (netns, tap)") {
            return None;
        }
        // boot-guest.sh writes logs and lock files in the cache.
        let writable = is_root() || writable_dir(&rig.cache.join("logs"));
        if !can_run(test, writable, "needs root or a writable NIC_EMU_CACHE") {
            return None;
        }
        let qemu = std::env::var("NIC_EMU_QEMU")
            .map(PathBuf::from)
            .unwrap_or_else(|_| rig.cache.join("bin/qemu-system-x86_64"));
        let ok = qemu.exists()
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

    /// The guest's static busybox, runnable on the host.
    pub fn busybox(&self) -> PathBuf {
        self.cache.join("guest-root/bin/busybox")
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

/// A child process in its own process group, stopped (SIGTERM, then SIGKILL) on drop.
pub struct Proc {
    /// What it is, for messages.
    pub name: String,
    child: Option<Child>,
    /// A stdin pipe held open (see [`Proc::spawn_open_stdin`]).
    stdin: Option<std::process::ChildStdin>,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
}

impl Proc {
    /// Start `cmd` with stdin from /dev/null and output to `log`.
    pub fn spawn(name: &str, cmd: Command, log: &Path) -> Proc {
        Self::spawn_with(name, cmd, log, Stdio::null(), None)
    }

    /// Start `cmd` with stdout to `out`, stderr to `log`, and stdin a pipe that stays
    /// open (never EOF) until the process is stopped: for `nc -l`, which would otherwise
    /// half-close the connection as soon as its stdin ends.
    pub fn spawn_open_stdin(name: &str, cmd: Command, out: &Path, log: &Path) -> Proc {
        let out = fs::File::create(out).expect("create output file");
        let mut p = Self::spawn_with(name, cmd, log, Stdio::piped(), Some(Stdio::from(out)));
        p.stdin = p.child.as_mut().and_then(|c| c.stdin.take());
        p
    }

    fn spawn_with(
        name: &str,
        mut cmd: Command,
        log: &Path,
        stdin: Stdio,
        stdout: Option<Stdio>,
    ) -> Proc {
        let out = fs::File::create(log).expect("create log");
        let err = out.try_clone().expect("dup log");
        let stdout = stdout.unwrap_or_else(|| Stdio::from(out));
        cmd.stdin(stdin)
            .stdout(stdout)
            .stderr(Stdio::from(err))
            .process_group(0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: cannot start {cmd:?}: {e}"));
        Proc {
            name: name.to_string(),
            child: Some(child),
            stdin: None,
            log: log.to_path_buf(),
        }
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    /// Exit status if it has ended.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Wait up to `limit` for it to end.
    pub fn wait_for(&mut self, limit: Duration) -> Option<ExitStatus> {
        let t0 = Instant::now();
        loop {
            if let Some(s) = self.try_wait() {
                return Some(s);
            }
            if t0.elapsed() >= limit {
                return None;
            }
            sleep(Duration::from_millis(50));
        }
    }

    fn signal_group(&self, sig: i32) {
        if let Some(c) = &self.child {
            let Ok(pid) = i32::try_from(c.id()) else {
                return;
            };
            // SAFETY: kill(2) with a negative pid signals the process group we created for
            // this child (process_group(0) makes its pgid equal to its pid); no memory is
            // involved.
            unsafe {
                libc::kill(-pid, sig);
            }
        }
    }

    /// SIGTERM the process group and wait up to `limit`; SIGKILL if it is still there.
    /// Returns the exit status when it ended on SIGTERM.
    pub fn stop(&mut self, limit: Duration) -> Option<ExitStatus> {
        self.child.as_ref()?;
        if let Some(s) = self.try_wait() {
            self.child = None;
            return Some(s);
        }
        self.signal_group(libc::SIGTERM);
        let st = self.wait_for(limit);
        if st.is_none() {
            self.signal_group(libc::SIGKILL);
            if let Some(c) = self.child.as_mut() {
                let _ = c.wait();
            }
        }
        self.child = None;
        st
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `n` lines of the log, for failure messages.
    pub fn log_tail(&self, n: usize) -> String {
        tail(&self.log_text(), n)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.stop(Duration::from_secs(5));
        }
    }
}

/// The last `n` lines of `s`.
pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Run a command to completion, returning its output (spawn failures panic).
pub fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Run a command that must succeed.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

static NETNS_SEQ: AtomicU32 = AtomicU32::new(0);

/// A network namespace the test creates (with `lo` up) and deletes on drop.
pub struct Netns {
    /// Its name under /run/netns.
    pub name: String,
    /// Interfaces to delete before the namespace goes.
    links: Vec<String>,
}

impl Netns {
    /// A new namespace `ne-e2e-<pid>-<n>-<tag>` (tag shortened).
    pub fn new(tag: &str) -> Netns {
        let n = NETNS_SEQ.fetch_add(1, Ordering::Relaxed);
        let name = format!(
            "ne-e2e-{}-{n}-{}",
            std::process::id(),
            &tag[..tag.len().min(8)]
        );
        run_ok(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns {
            name,
            links: Vec::new(),
        };
        run_ok(&mut ns.cmd("ip", &["link", "set", "lo", "up"]));
        ns
    }

    /// `ip netns exec NAME prog args...`.
    pub fn cmd(&self, prog: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(prog).args(args);
        c
    }

    /// Create a persistent tap `ifname` in the namespace with `cidr` on it, up.
    pub fn add_tap(&mut self, ifname: &str, cidr: &str) {
        run_ok(&mut self.cmd("ip", &["tuntap", "add", "dev", ifname, "mode", "tap"]));
        self.links.push(ifname.to_string());
        run_ok(&mut self.cmd("ip", &["addr", "add", cidr, "dev", ifname]));
        run_ok(&mut self.cmd("ip", &["link", "set", ifname, "up"]));
    }

    /// Set the MTU of an interface in the namespace.
    pub fn set_mtu(&self, ifname: &str, mtu: u32) {
        run_ok(&mut self.cmd("ip", &["link", "set", ifname, "mtu", &mtu.to_string()]));
    }

    /// Contents of /sys/class/net/IF/ATTR as seen in the namespace.
    pub fn sysfs(&self, ifname: &str, attr: &str) -> String {
        let out = run(&mut self.cmd("cat", &[&format!("/sys/class/net/{ifname}/{attr}")]));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for l in &self.links {
            let _ = run(&mut self.cmd("ip", &["link", "del", l]));
        }
        let _ = run(Command::new("ip").args(["netns", "del", &self.name]));
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

/// A guest booted by scripts/boot-guest.sh, console in a log file.
pub struct Guest {
    /// Name for messages.
    pub name: String,
    proc: Proc,
    console: PathBuf,
    started: Instant,
}

/// How a guest ended.
pub struct GuestRun {
    /// Name for messages.
    pub name: String,
    /// boot-guest.sh's status (the guest command's, 124 timeout, 125 no RIG-EXIT).
    pub rc: Option<i32>,
    /// Serial console, carriage returns removed.
    pub console: String,
    /// boot-guest.sh's own output (its summary line).
    pub script_log: String,
    /// Wall time from start to exit.
    pub wall: Duration,
}

impl Guest {
    /// Boot a guest: `args` are boot-guest.sh options (the NIC), `cmd` the guest command.
    pub fn boot(rig: &Rig, wd: &Workdir, name: &str, args: &[&str], cmd: &str) -> Guest {
        let console = wd.path(&format!("{name}.console"));
        let mut c = Command::new("bash");
        c.arg(rig.boot_script())
            .args(args)
            .args(["--quiet", "--timeout", &GUEST_TIMEOUT.to_string(), "--log"])
            .arg(&console)
            .arg("--")
            .arg(cmd);
        let proc = Proc::spawn(name, c, &wd.path(&format!("{name}.boot.log")));
        Guest {
            name: name.to_string(),
            proc,
            console,
            started: Instant::now(),
        }
    }

    /// The console so far, carriage returns removed.
    pub fn console(&self) -> String {
        fs::read_to_string(&self.console)
            .unwrap_or_default()
            .replace('\r', "")
    }

    /// Wait until the guest printed `marker` on its console (panics after `limit` or if
    /// the guest ended first).
    pub fn wait_console(&mut self, marker: &str, limit: Duration) {
        let t0 = Instant::now();
        loop {
            if self.console().contains(marker) {
                return;
            }
            if let Some(st) = self.proc.try_wait() {
                panic!(
                    "{}: ended ({st}) before printing {marker:?}:\n{}\n{}",
                    self.name,
                    tail(&self.console(), 40),
                    self.proc.log_tail(10)
                );
            }
            assert!(
                t0.elapsed() < limit,
                "{}: no {marker:?} after {limit:?}:\n{}",
                self.name,
                tail(&self.console(), 40)
            );
            sleep(Duration::from_millis(100));
        }
    }

    /// Wait for the guest to power off (QEMU's --timeout bounds it).
    pub fn finish(mut self) -> GuestRun {
        let limit = Duration::from_secs(u64::from(GUEST_TIMEOUT) + 15);
        let st = self.proc.wait_for(limit);
        if st.is_none() {
            self.proc.stop(Duration::from_secs(5));
        }
        GuestRun {
            name: self.name.clone(),
            rc: st.and_then(|s| s.code()),
            console: self.console(),
            script_log: self.proc.log_text(),
            wall: self.started.elapsed(),
        }
    }
}

impl GuestRun {
    /// Panic with the console tail unless the guest command exited 0.
    pub fn assert_ok(&self) {
        assert_eq!(
            self.rc,
            Some(0),
            "{}: boot-guest.sh rc {:?}\n--- console ---\n{}\n--- boot-guest.sh ---\n{}",
            self.name,
            self.rc,
            tail(&self.console, 80),
            tail(&self.script_log, 10)
        );
    }

    /// Lines between `BEGIN-<tag>` and `END-<tag>` (exclusive) printed by the guest.
    pub fn section(&self, tag: &str) -> String {
        let begin = format!("BEGIN-{tag}");
        let end = format!("END-{tag}");
        let mut out = String::new();
        let mut on = false;
        for l in self.console.lines() {
            if l.starts_with(&end) {
                break;
            }
            if on {
                out.push_str(l);
                out.push('\n');
            }
            if l.starts_with(&begin) {
                on = true;
            }
        }
        out
    }

    /// The value printed by the guest as `KEY=value` (last occurrence).
    pub fn value(&self, key: &str) -> Option<String> {
        let prefix = format!("{key}=");
        self.console
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix(&prefix))
            .map(|v| v.trim().to_string())
    }

    /// The guest's `dmesg` (printed by [`guest_report`]).
    pub fn dmesg(&self) -> String {
        self.section("DMESG")
    }

    /// Assert the ping whose output the guest printed in section `tag` got `n` of `n`.
    pub fn assert_ping(&self, tag: &str, n: u32) {
        let out = self.section(tag);
        let want = format!("{n} packets transmitted, {n} packets received");
        assert!(
            out.contains(&want),
            "{}: ping {tag}: want {want:?}, got:\n{out}\n--- console tail ---\n{}",
            self.name,
            tail(&self.console, 60)
        );
    }

    /// The e1000 driver bound the device at 0000:00:02.0 with `mac`, saw the link come
    /// up, carrier is 1, and neither dmesg nor the console shows a driver error or a TX
    /// hang.
    pub fn assert_e1000_healthy(&self, mac: &str) {
        let dmesg = self.dmesg();
        assert!(!dmesg.is_empty(), "{}: no dmesg section", self.name);
        let mac = mac.to_ascii_lowercase();
        assert!(
            dmesg
                .lines()
                .any(|l| l.contains("e1000 0000:00:02.0 eth0:") && l.contains(&mac)),
            "{}: no e1000 eth0 line with MAC {mac}:\n{dmesg}",
            self.name
        );
        assert!(
            dmesg.contains("Intel(R) PRO/1000 Network Connection"),
            "{}: driver did not finish probe:\n{dmesg}",
            self.name
        );
        assert!(
            dmesg.contains("NIC Link is Up"),
            "{}: no 'Link is Up':\n{dmesg}",
            self.name
        );
        self.assert_no_e1000_errors();
        assert_eq!(
            self.value("CARRIER").as_deref(),
            Some("1"),
            "{}: eth0 carrier",
            self.name
        );
    }

    /// No e1000/eth0 line of dmesg mentions an EEPROM, checksum, probe, hang, reset or
    /// error, and the console shows no TX hang, oops or panic.
    pub fn assert_no_e1000_errors(&self) {
        const BAD: [&str; 8] = [
            "eeprom",
            "checksum",
            "probe",
            "tx unit hang",
            "reset adapter",
            "error",
            "fail",
            "timeout",
        ];
        for l in self.dmesg().lines() {
            let low = l.to_ascii_lowercase();
            if !(low.contains("e1000") || low.contains("eth0")) {
                continue;
            }
            if let Some(b) = BAD.iter().find(|b| low.contains(*b)) {
                panic!("{}: dmesg line mentions {b:?}: {l}", self.name);
            }
        }
        for bad in [
            "Detected Tx Unit Hang",
            "Kernel panic",
            "BUG:",
            "WARNING:",
            "Oops",
        ] {
            assert!(
                !self.console.contains(bad),
                "{}: console shows {bad:?}:\n{}",
                self.name,
                tail(&self.console, 60)
            );
        }
    }
}

/// Guest shell lines that print carrier, eth0 counters and dmesg in sections.
pub fn guest_report() -> &'static str {
    "echo CARRIER=$(cat /sys/class/net/eth0/carrier)\n\
     echo RX_PACKETS=$(cat /sys/class/net/eth0/statistics/rx_packets)\n\
     echo TX_PACKETS=$(cat /sys/class/net/eth0/statistics/tx_packets)\n\
     echo BEGIN-DMESG; dmesg; echo END-DMESG\n"
}

/// Guest shell lines: `ping -c N` to `ip`, output in section `tag`, after first waiting
/// (up to ~20 tries) for one answer, since the peer may still be booting.
pub fn guest_ping(tag: &str, ip: &str, n: u32) -> String {
    guest_ping_sized(tag, ip, n, 56)
}

/// [`guest_ping`] with `size` bytes of ICMP payload.
pub fn guest_ping_sized(tag: &str, ip: &str, n: u32, size: u32) -> String {
    format!(
        "i=0; until ping -c 1 -W 1 -s {size} {ip} >/dev/null 2>&1 || [ $i -ge 20 ]; do i=$((i+1)); done\n\
         echo BEGIN-{tag}; ping -c {n} -W 2 -s {size} {ip}; echo END-{tag} rc=$?\n"
    )
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
