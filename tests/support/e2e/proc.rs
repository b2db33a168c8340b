//! Child processes that are always stopped, commands run to completion, and network
//! namespaces that are always deleted.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

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

    /// Take charge of namespace `name`, made by commands the test ran (a README
    /// example): deleted on drop like the others.
    pub fn adopt(name: &str) -> Netns {
        Netns {
            name: name.to_string(),
            links: Vec::new(),
        }
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

    /// Run `f` on a thread that has entered the namespace: sockets and taps it opens
    /// belong to the namespace for good.
    pub fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        use std::os::fd::AsRawFd;
        let path = format!("/run/netns/{}", self.name);
        std::thread::scope(|s| {
            s.spawn(|| {
                let file = fs::File::open(&path).expect("open the namespace");
                // SAFETY: setns(2) with a descriptor of a network namespace, which `file`
                // keeps open across the call; it changes only this thread's namespace.
                let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
                f()
            })
            .join()
            .expect("no panic in the namespace")
        })
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
