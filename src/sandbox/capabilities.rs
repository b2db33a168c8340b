//! Capabilities and no_new_privs: after start-up nic-emu holds no capability in any set
//! (effective, permitted, inheritable, ambient, bounding) and can never gain one.
//!
//! The bounding set can only be emptied by a thread that holds `CAP_SETPCAP`, so it is
//! emptied before the user switch; a process started without that capability keeps its
//! bounding set, which `no_new_privs` makes moot (nothing is gained through `execve`,
//! and no filter allows `execve`). Written with libc rather than the `caps` crate: that
//! crate drops only the capabilities it knows by name, and a newer kernel's would stay
//! in the bounding set; here the loop runs until the kernel says there are no more.

use std::io;

use super::SandboxError;

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
const CAP_SETPCAP: u32 = 8;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// The capability sets of the calling thread, one bit per capability.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CapSets {
    /// Effective.
    pub effective: u64,
    /// Permitted.
    pub permitted: u64,
    /// Inheritable.
    pub inheritable: u64,
    /// Bounding.
    pub bounding: u64,
    /// Ambient.
    pub ambient: u64,
}

impl CapSets {
    /// Whether every set is empty.
    pub fn none(&self) -> bool {
        *self == CapSets::default()
    }
}

fn prctl(option: libc::c_int, arg: libc::c_ulong) -> libc::c_int {
    prctl2(option, arg, 0)
}

fn prctl2(option: libc::c_int, arg: libc::c_ulong, arg2: libc::c_ulong) -> libc::c_int {
    // SAFETY: the prctl options used here (PR_CAPBSET_READ, PR_CAPBSET_DROP,
    // PR_CAP_AMBIENT, PR_SET_NO_NEW_PRIVS, PR_GET_NO_NEW_PRIVS) take integers only and
    // touch no memory of ours.
    unsafe { libc::prctl(option, arg, arg2, 0 as libc::c_ulong, 0 as libc::c_ulong) }
}

fn cap_get() -> io::Result<[CapData; 2]> {
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget(2) with a version-3 header reads the header and writes two CapData
    // structs; both live on our stack for the call.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut hdr, data.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(data)
}

/// Read the calling thread's capability sets.
pub fn read() -> io::Result<CapSets> {
    let d = cap_get()?;
    let wide = |f: fn(&CapData) -> u32| u64::from(f(&d[0])) | (u64::from(f(&d[1])) << 32);
    let mut sets = CapSets {
        effective: wide(|c| c.effective),
        permitted: wide(|c| c.permitted),
        inheritable: wide(|c| c.inheritable),
        ..CapSets::default()
    };
    for cap in 0..64u32 {
        match prctl(libc::PR_CAPBSET_READ, libc::c_ulong::from(cap)) {
            1 => sets.bounding |= 1 << cap,
            0 => {}
            _ => break, // past the last capability this kernel has
        }
        let ambient = prctl2(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_IS_SET as libc::c_ulong,
            libc::c_ulong::from(cap),
        );
        if ambient == 1 {
            sets.ambient |= 1 << cap;
        }
    }
    Ok(sets)
}

/// Empty the bounding set if this thread may (it holds `CAP_SETPCAP`). Returns whether
/// it is empty now.
pub fn drop_bounding() -> Result<bool, SandboxError> {
    let have_setpcap = read()
        .map_err(|e| SandboxError::Os("reading capabilities", e))?
        .effective
        & (1 << CAP_SETPCAP)
        != 0;
    let mut left = false;
    for cap in 0..64u32 {
        match prctl(libc::PR_CAPBSET_READ, libc::c_ulong::from(cap)) {
            1 if have_setpcap => {
                if prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap)) != 0 {
                    return Err(SandboxError::Os(
                        "emptying the capability bounding set",
                        io::Error::last_os_error(),
                    ));
                }
            }
            1 => left = true,
            0 => {}
            _ => break,
        }
    }
    Ok(!left)
}

/// Clear the effective, permitted, inheritable and ambient sets.
pub fn drop_all() -> Result<(), SandboxError> {
    // Needs no privilege: lowering is always allowed.
    let rc = prctl(
        libc::PR_CAP_AMBIENT,
        libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
    );
    // EINVAL: a kernel without ambient capabilities (before 4.3): nothing to clear.
    if rc != 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL) {
        return Err(SandboxError::Os(
            "clearing ambient capabilities",
            io::Error::last_os_error(),
        ));
    }
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [CapData::default(); 2];
    // SAFETY: capset(2) with a version-3 header reads the header and two CapData structs
    // from our stack.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut hdr, data.as_ptr()) };
    if rc != 0 {
        return Err(SandboxError::Os(
            "clearing capabilities",
            io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// Set `no_new_privs`: no `execve` can ever grant privileges again (set-user-ID bits,
/// file capabilities). Inherited by every thread started after.
pub fn set_no_new_privs() -> Result<(), SandboxError> {
    if prctl(libc::PR_SET_NO_NEW_PRIVS, 1) != 0 {
        return Err(SandboxError::Os(
            "setting no_new_privs",
            io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// Whether `no_new_privs` is set on the calling thread.
pub fn no_new_privs() -> bool {
    prctl(libc::PR_GET_NO_NEW_PRIVS, 0) == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sets_read_back_as_the_kernel_reports_them() {
        let sets = read().unwrap();
        let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
        let field = |name: &str| {
            let line = status
                .lines()
                .find(|l| l.starts_with(name))
                .unwrap_or_else(|| panic!("{name} in /proc/thread-self/status"));
            u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
        };
        assert_eq!(sets.effective, field("CapEff:"));
        assert_eq!(sets.permitted, field("CapPrm:"));
        assert_eq!(sets.inheritable, field("CapInh:"));
        assert_eq!(sets.bounding, field("CapBnd:"));
        assert_eq!(sets.ambient, field("CapAmb:"));
    }
}
