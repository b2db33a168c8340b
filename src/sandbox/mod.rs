//! Least privilege (feature `sandbox`): what nic-emu-cli does to itself after start-up,
//! and what an embedder may do to its own threads.
//!
//! A program opens everything it needs first (the vfio-user socket, the backend, the
//! control socket, the metrics listener, the recording), then calls [`apply`] while it
//! still has one thread, then starts its threads. [`apply`], in order:
//!
//! 1. empties the capability bounding set (`capabilities.rs`; possible while the
//!    process holds `CAP_SETPCAP`);
//! 2. becomes the user and group of [`Plan::identity`] for good (`user.rs`: `--user`,
//!    `--group`), and checks that `setuid(0)` fails afterwards;
//! 3. clears every other capability set and sets `no_new_privs`;
//! 4. applies a Landlock ruleset (`landlock.rs`): no file but those the configuration
//!    names, no TCP bind, no TCP connect but the stream peer's, no abstract Unix socket
//!    or signal outside the process;
//! 5. installs the SIGSYS report (`sigsys.rs`) and the process's seccomp filter
//!    (`seccomp.rs`): every system call any of its threads makes, and nothing else;
//! 6. registers one narrower filter per thread kind (`policy.rs` lists the calls of
//!    each, with the reason for each); each thread installs its own when it starts
//!    ([`enter`]: the library's threads do this themselves), and the main thread its own
//!    before it serves the first client.
//!
//! The library changes nothing by itself: without [`apply`] (or [`seccomp::register`]),
//! [`enter`] does nothing. `docs/SECURITY.md` describes the threat model and each layer.

pub mod capabilities;
pub mod landlock;
pub mod policy;
pub mod seccomp;
pub mod sigsys;
pub mod user;

use std::fmt;
use std::io;
use std::path::PathBuf;

pub use policy::{Needs, ThreadKind};
pub use seccomp::{enter, inherit, Mode};

/// Why the sandbox could not be applied (nothing is half-applied silently: the caller
/// should stop).
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// A system call failed.
    #[error("{0}: {1}")]
    Os(&'static str, #[source] io::Error),
    /// `--user` / `--group`: unknown, or the switch was refused or did not hold.
    #[error("{0}")]
    Identity(String),
    /// Compiling or installing a seccomp filter.
    #[error("seccomp: {0}")]
    Seccomp(String),
    /// A system call name that the target architecture does not have.
    #[error("seccomp: unknown system call {0}")]
    UnknownCall(String),
    /// Building or applying the Landlock ruleset.
    #[error("landlock: {0}")]
    Landlock(String),
    /// This machine cannot do it.
    #[error("not supported here: {0}")]
    Unsupported(&'static str),
    /// Threads were already running: they would escape parts of the sandbox.
    #[error(
        "the process already runs {0} threads; the sandbox must be applied before any \
         thread starts (capabilities and Landlock are per thread)"
    )]
    Threads(usize),
}

/// What a configuration needs once it runs.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// Become this user and group (`--user`, `--group`).
    pub identity: Option<user::Identity>,
    /// The backend's system calls.
    pub needs: Needs,
    /// Files, directories and ports that stay reachable.
    pub landlock: landlock::Rules,
    /// Socket files this process created and removes at exit: given to
    /// [`identity`](Self::identity)'s user before the switch, so that it may.
    pub own_files: Vec<PathBuf>,
    /// Kill (the default) or log calls outside the lists.
    pub mode: Mode,
}

impl Plan {
    /// An EEPROM image file the guest's writes are saved to: a temporary file is created
    /// in its directory, written, synced and renamed over it, and the directory synced
    /// ([`EepromFile`](crate::eeprom_file::EepromFile)).
    pub fn add_eeprom(&mut self, path: &std::path::Path) {
        self.needs.eeprom = true;
        self.landlock.replace_in.push(landlock::parent_dir(path));
    }

    /// A socket file this process created and removes at exit.
    pub fn add_own_socket(&mut self, path: PathBuf) {
        self.landlock.remove_in.push(landlock::parent_dir(&path));
        self.own_files.push(path);
    }
}

/// What [`apply`] did, for the log.
#[derive(Clone, Debug)]
pub struct Report {
    /// The user and group now (ids and names).
    pub identity: String,
    /// Whether the bounding set is empty (it cannot be emptied without `CAP_SETPCAP`).
    pub bounding_empty: bool,
    /// The kernel's Landlock ABI version and what it enforced.
    pub landlock: (i32, landlock::Enforced),
    /// Calls in the process filter.
    pub process_calls: usize,
    /// Calls per thread kind.
    pub thread_calls: Vec<(ThreadKind, usize)>,
    /// The mode.
    pub mode: Mode,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "running as {}; no capabilities", self.identity)?;
        if !self.bounding_empty {
            f.write_str(" (bounding set kept: started without CAP_SETPCAP)")?;
        }
        f.write_str(", no_new_privs; ")?;
        let (abi, enforced) = self.landlock;
        match enforced {
            landlock::Enforced::Fully => write!(f, "landlock (ABI {abi})")?,
            landlock::Enforced::Partially => write!(f, "landlock partly (kernel ABI {abi})")?,
            landlock::Enforced::Not => f.write_str("no landlock (the kernel lacks it)")?,
        }
        let threads: Vec<String> = self
            .thread_calls
            .iter()
            .map(|(k, n)| format!("{} {n}", k.name()))
            .collect();
        write!(
            f,
            "; seccomp{}: calls allowed per thread: {}",
            match self.mode {
                Mode::Enforce => "",
                Mode::Log => " (LOG MODE: calls outside the lists are allowed and logged)",
            },
            threads.join(", ")
        )
    }
}

/// Threads in this process now.
fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(0)
}

fn chown(path: &std::path::Path, id: &user::Identity) -> Result<(), SandboxError> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| SandboxError::Identity(format!("{}: NUL in path", path.display())))?;
    let uid = id.uid.unwrap_or(u32::MAX); // -1: leave the owner
                                          // SAFETY: lchown reads the NUL-terminated path for the call; ids are integers.
    if unsafe { libc::lchown(c.as_ptr(), uid, id.gid) } != 0 {
        let e = io::Error::last_os_error();
        return Err(SandboxError::Os(
            "giving a socket file to --user",
            io::Error::new(e.kind(), format!("{}: {e}", path.display())),
        ));
    }
    Ok(())
}

/// Lock the process down as `plan` says: see the module documentation. Call it on the
/// main thread before any other thread starts; afterwards each thread started runs
/// [`enter`] with its kind (the library's do), and the main thread calls
/// `enter(ThreadKind::Main)` once it has started them. Irreversible; an error means the
/// process may be partly locked down and should stop.
pub fn apply(plan: &Plan) -> Result<Report, SandboxError> {
    if seccomp::registered() {
        return Err(SandboxError::Seccomp(
            "the sandbox is already applied".into(),
        ));
    }
    let threads = thread_count();
    if threads > 1 {
        return Err(SandboxError::Threads(threads));
    }
    // Compile everything first: an error here changes nothing.
    let arch = seccomp::Arch::host().ok_or(SandboxError::Unsupported(
        "seccomp filters for this architecture",
    ))?;
    let process = seccomp::compile(&policy::calls_for_process(&plan.needs), arch, plan.mode)?;
    let filters = seccomp::ThreadFilters::compile(&plan.needs, plan.mode)?;
    let thread_calls = ThreadKind::PROGRAM
        .iter()
        .filter_map(|k| filters.get(*k).map(|f| (*k, f.calls())))
        .collect();

    if let Some(id) = &plan.identity {
        for f in &plan.own_files {
            chown(f, id)?;
        }
    }
    let bounding_empty = capabilities::drop_bounding()?;
    if let Some(id) = &plan.identity {
        user::switch(id)?;
    }
    capabilities::drop_all()?;
    capabilities::set_no_new_privs()?;
    let caps = capabilities::read().map_err(|e| SandboxError::Os("reading capabilities", e))?;
    let mut left = caps;
    left.bounding = 0;
    if !left.none() || (bounding_empty && caps.bounding != 0) {
        return Err(SandboxError::Identity(format!(
            "capabilities remain after dropping them: {caps:?}"
        )));
    }
    // SAFETY: getuid/getgid take no arguments and cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let name = user::user_name(uid).unwrap_or_else(|| "?".into());
    let abi = landlock::kernel_abi();
    let enforced = landlock::restrict(&plan.landlock)?;
    sigsys::install()?;
    sigsys::set_thread_kind(ThreadKind::Main);
    process.install()?;
    seccomp::register(filters)?;
    Ok(Report {
        identity: format!("{name} (uid {uid}, gid {gid})"),
        bounding_empty,
        landlock: (abi, enforced),
        process_calls: process.calls(),
        thread_calls,
        mode: plan.mode,
    })
}

/// Install, on the calling thread only, the filter of the device embedded in a program
/// ([`ThreadKind::Embedded`]: memory, locks, time, stderr) plus the calls named in
/// `extra` (any arguments): what the C API's `nic_emu_sandbox_thread` does. A call
/// outside the list is reported and ends the process (status 159). No Landlock, no
/// change of user: an embedder has its own files and privileges to decide about.
pub fn apply_embedded(extra: &[&str], mode: Mode) -> Result<usize, SandboxError> {
    let needs = Needs {
        extra: extra.iter().map(|s| s.to_string()).collect(),
        ..Needs::default()
    };
    let filter = seccomp::filter_for(ThreadKind::Embedded, &needs, mode)?;
    sigsys::install()?;
    sigsys::set_thread_kind(ThreadKind::Embedded);
    filter.install()?;
    Ok(filter.calls())
}
