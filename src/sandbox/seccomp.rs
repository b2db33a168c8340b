//! seccomp-bpf: the lists of `policy.rs` compiled with rust-vmm's `seccompiler`, for
//! x86_64 or aarch64, and installed on the calling thread.
//!
//! A thread's filter is one allowlist program (a call outside it raises SIGSYS, which
//! `sigsys.rs` reports before the process exits; or, in [`Mode::Log`], it is allowed and
//! the kernel logs it) and, stacked under it, one small program per error number that
//! answers the [soft](super::policy::SOFT) calls with that error. The kernel runs every
//! program of the stack and takes the strictest answer, so the allowlist lets the soft
//! calls through to the program that fails them.
//!
//! Filters stack across threads too: a thread inherits its creator's. nic-emu-cli
//! installs the process filter (every kind's calls, and installing a filter) on its main
//! thread before starting any other; each thread then narrows itself to its kind
//! ([`enter`]), the main thread last.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::OnceLock;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use super::policy::{self, Allowed, CallList, Cond, Needs, ThreadKind};
use super::SandboxError;

/// What a call outside the list does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// SIGSYS: reported (call and thread) and the process exits with status 159.
    #[default]
    Enforce,
    /// Allowed, and logged by the kernel (audit, `dmesg`): for finding what a new setup
    /// needs. Not a sandbox.
    Log,
}

/// An architecture nic-emu compiles filters for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// x86_64.
    X86_64,
    /// aarch64 (arm64).
    Aarch64,
}

impl Arch {
    /// The architecture this program runs on, if filters can be compiled for it.
    pub fn host() -> Option<Arch> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Arch::X86_64),
            "aarch64" => Some(Arch::Aarch64),
            _ => None,
        }
    }

    fn target(self) -> TargetArch {
        match self {
            Arch::X86_64 => TargetArch::x86_64,
            Arch::Aarch64 => TargetArch::aarch64,
        }
    }

    /// The number of `call` on this architecture.
    pub fn number(self, call: &str) -> Option<i64> {
        match self {
            Arch::X86_64 => syscalls::x86_64::Sysno::from_str(call)
                .ok()
                .map(|s| i64::from(s.id())),
            Arch::Aarch64 => syscalls::aarch64::Sysno::from_str(call)
                .ok()
                .map(|s| i64::from(s.id())),
        }
    }
}

/// A thread's compiled filter: the programs to install, in order.
#[derive(Clone, Debug)]
pub struct ThreadFilter {
    programs: Vec<BpfProgram>,
    calls: usize,
}

impl ThreadFilter {
    /// Calls the allowlist lets through (soft refusals included).
    pub fn calls(&self) -> usize {
        self.calls
    }

    /// BPF instructions, all programs together.
    pub fn instructions(&self) -> usize {
        self.programs.iter().map(Vec::len).sum()
    }

    /// Install on the calling thread (sets no_new_privs first, as seccomp requires
    /// without CAP_SYS_ADMIN). Irreversible.
    pub fn install(&self) -> Result<(), SandboxError> {
        for p in &self.programs {
            seccompiler::apply_filter(p)
                .map_err(|e| SandboxError::Seccomp(format!("installing a filter: {e}")))?;
        }
        Ok(())
    }
}

fn condition(c: &Cond) -> Result<SeccompCondition, SandboxError> {
    let (index, op, value) = match *c {
        Cond::Eq(i, v) => (i, SeccompCmpOp::Eq, v),
        Cond::Masked(i, mask, v) => (i, SeccompCmpOp::MaskedEq(mask), v),
    };
    SeccompCondition::new(index, SeccompCmpArgLen::Dword, op, value)
        .map_err(|e| SandboxError::Seccomp(format!("condition {c:?}: {e}")))
}

fn rules(allowed: &Allowed) -> Result<Vec<SeccompRule>, SandboxError> {
    match allowed {
        Allowed::Any => Ok(Vec::new()),
        Allowed::When(conds) => conds
            .iter()
            .map(|c| {
                SeccompRule::new(vec![condition(c)?])
                    .map_err(|e| SandboxError::Seccomp(format!("rule {c:?}: {e}")))
            })
            .collect(),
    }
}

/// Compile `list` for `arch`.
pub fn compile(list: &CallList, arch: Arch, mode: Mode) -> Result<ThreadFilter, SandboxError> {
    let mut allow: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    let resolve = |name: &str| -> Result<Option<i64>, SandboxError> {
        match arch.number(name) {
            Some(n) => Ok(Some(n)),
            None if policy::only_elsewhere(name, arch == Arch::X86_64) => Ok(None),
            None => Err(SandboxError::UnknownCall(format!("{name} ({arch:?})"))),
        }
    };
    for (name, allowed) in &list.calls {
        if let Some(nr) = resolve(name)? {
            allow.insert(nr, rules(allowed)?);
        }
    }
    for name in &list.extra {
        if let Some(nr) = resolve(name)? {
            allow.insert(nr, Vec::new());
        }
    }
    let mut soft: BTreeMap<i32, BTreeMap<i64, Vec<SeccompRule>>> = BTreeMap::new();
    for s in &list.soft {
        if let Some(nr) = resolve(s.call)? {
            allow.insert(nr, Vec::new());
            soft.entry(s.errno).or_default().insert(nr, Vec::new());
        }
    }
    let calls = allow.len();
    let mismatch = match mode {
        Mode::Enforce => SeccompAction::Trap,
        Mode::Log => SeccompAction::Log,
    };
    let build = |rules, mismatch, action| -> Result<BpfProgram, SandboxError> {
        SeccompFilter::new(rules, mismatch, action, arch.target())
            .and_then(BpfProgram::try_from)
            .map_err(|e| SandboxError::Seccomp(e.to_string()))
    };
    let mut programs = Vec::new();
    for (errno, rules) in soft {
        let errno = u32::try_from(errno).unwrap_or(libc::EPERM as u32);
        programs.push(build(
            rules,
            SeccompAction::Allow,
            SeccompAction::Errno(errno),
        )?);
    }
    // Installed last: once it is in place the thread can install nothing more.
    programs.push(build(allow, mismatch, SeccompAction::Allow)?);
    Ok(ThreadFilter { programs, calls })
}

/// Compile the filter of a thread `kind` for this machine.
pub fn filter_for(
    kind: ThreadKind,
    needs: &Needs,
    mode: Mode,
) -> Result<ThreadFilter, SandboxError> {
    let arch = Arch::host().ok_or(SandboxError::Unsupported(
        "seccomp filters for this architecture",
    ))?;
    compile(&policy::calls_for(kind, needs), arch, mode)
}

/// The filters of each thread kind, registered once per process by whoever applies the
/// sandbox; [`enter`] installs them.
#[derive(Debug)]
pub struct ThreadFilters {
    by_kind: BTreeMap<ThreadKind, ThreadFilter>,
}

impl ThreadFilters {
    /// Compile every kind of nic-emu-cli for `needs`.
    pub fn compile(needs: &Needs, mode: Mode) -> Result<Self, SandboxError> {
        let mut by_kind = BTreeMap::new();
        for kind in ThreadKind::PROGRAM {
            by_kind.insert(kind, filter_for(kind, needs, mode)?);
        }
        Ok(Self { by_kind })
    }

    /// The filter of `kind`.
    pub fn get(&self, kind: ThreadKind) -> Option<&ThreadFilter> {
        self.by_kind.get(&kind)
    }
}

static REGISTERED: OnceLock<ThreadFilters> = OnceLock::new();

/// Whether thread filters are registered (a sandbox was applied).
pub fn registered() -> bool {
    REGISTERED.get().is_some()
}

/// Make [`enter`] install these filters from now on. Once per process: a second call
/// is refused.
pub fn register(filters: ThreadFilters) -> Result<(), SandboxError> {
    REGISTERED
        .set(filters)
        .map_err(|_| SandboxError::Seccomp("thread filters are already registered".into()))
}

/// The calling thread was started by a thread of `kind` and runs under the filter it
/// inherited: only the SIGSYS report's label is set (the control socket's client
/// threads).
pub fn inherit(kind: ThreadKind) {
    if REGISTERED.get().is_some() {
        super::sigsys::set_thread_kind(kind);
    }
}

/// The calling thread becomes a thread of `kind`: if a sandbox registered thread filters
/// ([`register`]), that kind's is installed (and the SIGSYS report names the kind);
/// otherwise nothing happens. The library's own threads call this first thing, so an
/// embedder that applies no sandbox sees no change.
///
/// A filter that cannot be installed ends the process: a thread must not run with less
/// containment than was asked for.
pub fn enter(kind: ThreadKind) {
    let Some(filters) = REGISTERED.get() else {
        return;
    };
    super::sigsys::set_thread_kind(kind);
    let Some(f) = filters.get(kind) else {
        return;
    };
    if let Err(e) = f.install() {
        log::error!("sandbox: {} thread: {e}; exiting", kind.name());
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_list_compiles_for_x86_64_and_aarch64() {
        let needs = Needs::everything();
        for arch in [Arch::X86_64, Arch::Aarch64] {
            for kind in ThreadKind::PROGRAM {
                let f = compile(&policy::calls_for(kind, &needs), arch, Mode::Enforce)
                    .unwrap_or_else(|e| panic!("{kind:?} on {arch:?}: {e}"));
                assert!(f.calls() > 15, "{kind:?}: {}", f.calls());
            }
            compile(&policy::calls_for_process(&needs), arch, Mode::Log).unwrap();
        }
    }

    #[test]
    fn names_resolve_to_each_architectures_numbers() {
        assert_eq!(Arch::X86_64.number("execve"), Some(59));
        assert_eq!(Arch::Aarch64.number("execve"), Some(221));
        assert_eq!(Arch::X86_64.number("poll"), Some(7));
        assert_eq!(Arch::Aarch64.number("poll"), None);
        assert_eq!(Arch::Aarch64.number("ppoll"), Some(73));
    }

    #[test]
    fn an_unknown_extra_call_is_an_error_that_names_it() {
        let needs = Needs {
            extra: vec!["no_such_call".into()],
            ..Needs::default()
        };
        let e = compile(
            &policy::calls_for(ThreadKind::Embedded, &needs),
            Arch::X86_64,
            Mode::Enforce,
        )
        .unwrap_err();
        assert!(e.to_string().contains("no_such_call"), "{e}");
    }

    #[test]
    fn soft_calls_get_a_program_of_their_own_under_the_allowlist() {
        let f = compile(
            &policy::calls_for(ThreadKind::Ticker, &Needs::default()),
            Arch::X86_64,
            Mode::Enforce,
        )
        .unwrap();
        // ENOSYS (clone3) and EACCES (openat), then the allowlist.
        assert_eq!(f.programs.len(), 3);
    }
}
