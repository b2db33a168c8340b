//! Landlock: after start-up nic-emu may touch no file but the few the configuration
//! names, make no TCP connection but the configured stream peer's, bind no TCP port,
//! reach no abstract Unix socket and signal no process outside its own domain.
//!
//! Everything nic-emu needs is open before the ruleset is applied (the sockets, the tap,
//! the recording, the replayed capture: replay passes go back to the start of the
//! descriptor it already has). What is left: removing its own socket files at exit (the
//! right to remove a file in their directories), reattaching a tap (`/dev/net/tun`, read,
//! write and ioctl), an EEPROM image's directory (each save creates a temporary file there
//! and renames it over the image: [`Rules::replace_in`]), and the paths a caller adds
//! ([`Rules::read`], [`Rules::write`]). A recording started at run time comes as a descriptor over the
//! control socket, opened by the `ctl` client with its own rights.
//!
//! The kernel's Landlock version decides what is enforced: nic-emu asks for ABI 6 (file
//! access, TCP bind and connect, scopes) and takes what the kernel has, saying so in one
//! log line when that is less, or nothing.

use std::path::{Path, PathBuf};

use ::landlock::{
    Access, AccessFs, AccessNet, BitFlags, NetPort, PathBeneath, PathFd, Ruleset, RulesetAttr,
    RulesetCreatedAttr, RulesetStatus, Scope, ABI,
};

use super::SandboxError;

/// The Landlock version whose rights nic-emu asks for.
const TARGET: ABI = ABI::V6;

/// What stays reachable.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rules {
    /// Files that may be opened for reading.
    pub read: Vec<PathBuf>,
    /// Files that may be opened for writing (and truncated).
    pub write: Vec<PathBuf>,
    /// Devices that may be opened for reading and writing, with ioctls (`/dev/net/tun`).
    pub devices: Vec<PathBuf>,
    /// Directories in which a file may be removed (those of the socket files nic-emu
    /// created and removes at exit).
    pub remove_in: Vec<PathBuf>,
    /// Directories in which a file may be created, written and renamed over another
    /// (removing it), and which may be opened for their fsync: an EEPROM image's, whose
    /// every save is a new file renamed over the old one.
    pub replace_in: Vec<PathBuf>,
    /// TCP ports that may be connected to (a stream client's peer).
    pub tcp_connect: Vec<u16>,
}

/// What the kernel enforced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enforced {
    /// Every right asked for.
    Fully,
    /// Some (an older Landlock).
    Partially,
    /// None: the kernel has no Landlock (or it is disabled).
    Not,
}

/// The directory of `path` (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn rule(path: &Path, access: BitFlags<AccessFs>) -> Result<PathBeneath<PathFd>, SandboxError> {
    let fd = PathFd::new(path)
        .map_err(|e| SandboxError::Landlock(format!("{}: {e}", path.display())))?;
    Ok(PathBeneath::new(fd, access))
}

/// Apply `rules` to the calling thread and the threads it starts after. Irreversible.
pub fn restrict(rules: &Rules) -> Result<Enforced, SandboxError> {
    let err = |e: ::landlock::RulesetError| SandboxError::Landlock(e.to_string());
    let file_read = AccessFs::ReadFile;
    let file_write = AccessFs::WriteFile | AccessFs::Truncate;
    let mut created = Ruleset::default()
        .handle_access(AccessFs::from_all(TARGET))
        .map_err(err)?
        .handle_access(AccessNet::from_all(TARGET))
        .map_err(err)?
        .scope(Scope::from_all(TARGET))
        .map_err(err)?
        .create()
        .map_err(err)?;
    for p in &rules.read {
        created = created.add_rule(rule(p, file_read.into())?).map_err(err)?;
    }
    for p in &rules.write {
        created = created.add_rule(rule(p, file_write)?).map_err(err)?;
    }
    for p in &rules.devices {
        let access = AccessFs::ReadFile | AccessFs::WriteFile | AccessFs::IoctlDev;
        created = created.add_rule(rule(p, access)?).map_err(err)?;
    }
    for d in &rules.remove_in {
        created = created
            .add_rule(rule(d, AccessFs::RemoveFile.into())?)
            .map_err(err)?;
    }
    for d in &rules.replace_in {
        // Truncate: File::create asks for O_TRUNC (a temporary file left by an earlier
        // process of the same id is overwritten). ReadDir: the directory is opened to
        // fsync the rename.
        let access = AccessFs::MakeReg
            | AccessFs::RemoveFile
            | AccessFs::WriteFile
            | AccessFs::Truncate
            | AccessFs::ReadDir;
        created = created.add_rule(rule(d, access)?).map_err(err)?;
    }
    for port in &rules.tcp_connect {
        created = created
            .add_rule(NetPort::new(*port, AccessNet::ConnectTcp))
            .map_err(err)?;
    }
    let status = created.restrict_self().map_err(err)?;
    Ok(match status.ruleset {
        RulesetStatus::FullyEnforced => Enforced::Fully,
        RulesetStatus::PartiallyEnforced => Enforced::Partially,
        RulesetStatus::NotEnforced => Enforced::Not,
    })
}

/// The Landlock ABI version of the running kernel (0: none).
pub fn kernel_abi() -> i32 {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_ulong = 1;
    // SAFETY: landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION) reads no
    // memory and returns the ABI version or -1.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    i32::try_from(v).unwrap_or(0).max(0)
}
