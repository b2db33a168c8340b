//! The SIGSYS report: a call outside a thread's list raises SIGSYS (seccomp's TRAP), and
//! this handler writes which call and which kind of thread to stderr, then ends the
//! process with status 159 (128 + SIGSYS, what a shell shows for a death by SIGSYS).
//!
//! The handler is async-signal-safe: it formats into a buffer on its stack, reads only
//! the signal's `siginfo_t` and a thread-local set before, and makes two system calls that
//! every thread's filter allows: `write(2, ...)` and `exit_group`.

use std::cell::Cell;

use super::policy::ThreadKind;
use super::SandboxError;

/// The exit status of a process that made a call outside its list.
pub const EXIT_STATUS: i32 = 159;

thread_local! {
    static KIND: Cell<&'static str> = const { Cell::new("unlabelled") };
}

/// Name this thread's kind in a report.
pub(crate) fn set_thread_kind(kind: ThreadKind) {
    KIND.with(|k| k.set(kind.name()));
}

/// `siginfo_t` as the kernel fills it for SIGSYS on 64-bit Linux (x86_64 and aarch64):
/// three ints, padding to 16, then `_sigsys { void *_call_addr; int _syscall; unsigned
/// _arch; }`.
#[repr(C)]
struct SigsysInfo {
    signo: i32,
    errno: i32,
    code: i32,
    _pad: i32,
    call_addr: usize,
    syscall: i32,
    arch: u32,
}

/// A fixed buffer for the report (no allocation in a signal handler).
struct Line {
    buf: [u8; 192],
    len: usize,
}

impl Line {
    fn push(&mut self, s: &[u8]) {
        for &b in s {
            if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = b;
                self.len += 1;
            }
        }
    }

    fn push_num(&mut self, n: i64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        let neg = n < 0;
        let mut v = n.unsigned_abs();
        loop {
            i -= 1;
            if let Some(d) = digits.get_mut(i) {
                *d = b'0' + (v % 10) as u8;
            }
            v /= 10;
            if v == 0 || i == 0 {
                break;
            }
        }
        if neg {
            self.push(b"-");
        }
        self.push(digits.get(i..).unwrap_or_default());
    }
}

/// The report line for call number `nr` in a thread of kind `kind`.
fn report(nr: i64, kind: &str) -> Line {
    let mut l = Line {
        buf: [0; 192],
        len: 0,
    };
    l.push(b"nic-emu: sandbox: system call ");
    l.push_num(nr);
    l.push(b" (");
    let name = usize::try_from(nr)
        .ok()
        .and_then(syscalls::Sysno::new)
        .map_or("unknown", |s| s.name());
    l.push(name.as_bytes());
    l.push(b") is not allowed in the ");
    l.push(kind.as_bytes());
    l.push(b" thread; exiting (docs/SECURITY.md)\n");
    l
}

extern "C" fn on_sigsys(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo_t for an SA_SIGINFO handler; for SIGSYS
    // its union holds `_sigsys`, which `SigsysInfo` lays out (64-bit Linux).
    let nr = unsafe { info.cast::<SigsysInfo>().as_ref() }.map_or(-1, |i| i64::from(i.syscall));
    let kind = KIND.try_with(Cell::get).unwrap_or("unknown");
    let line = report(nr, kind);
    let bytes = line.buf.get(..line.len).unwrap_or_default();
    // SAFETY: write(2) from a buffer on our stack, and _exit: both async-signal-safe, and
    // allowed by every filter (write to fd 2, exit_group).
    unsafe {
        libc::write(2, bytes.as_ptr().cast(), bytes.len());
        libc::_exit(EXIT_STATUS);
    }
}

/// Install the SIGSYS handler (process-wide). Before any filter.
pub fn install() -> Result<(), SandboxError> {
    // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value; we set the
    // handler (an extern "C" fn with the SA_SIGINFO signature) and pass pointers to live
    // values for the duration of the call.
    let rc = unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigsys as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGSYS, &sa, std::ptr::null_mut())
    };
    if rc != 0 {
        return Err(SandboxError::Os(
            "installing the SIGSYS handler",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(l: &Line) -> String {
        String::from_utf8_lossy(&l.buf[..l.len]).into_owned()
    }

    #[test]
    fn the_report_names_the_call_its_number_and_the_thread() {
        let execve = syscalls::Sysno::execve.id();
        let t = text(&report(i64::from(execve), "event loop"));
        assert_eq!(
            t,
            format!(
                "nic-emu: sandbox: system call {execve} (execve) is not allowed in the event \
                 loop thread; exiting (docs/SECURITY.md)\n"
            )
        );
        assert!(text(&report(-1, "main")).contains("call -1 (unknown)"));
        assert!(text(&report(99_999, "main")).contains("99999 (unknown)"));
    }

    #[test]
    fn a_long_report_is_cut_not_overflowed() {
        let long = "k".repeat(500);
        let l = report(1, &long);
        assert_eq!(l.len, l.buf.len());
    }
}
