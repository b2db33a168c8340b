//! Becoming another user for good: `--user NAME` / `--group NAME`. nic-emu starts as
//! root, opens what needs root (the tap, sockets in root's directories), then sets its
//! supplementary groups, group and user, and checks that the way back is closed: a
//! `setuid(0)` after the switch must fail.

use std::ffi::{CStr, CString};
use std::io;

use super::SandboxError;

/// A user and group to run as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// User id (`None`: keep the current one; only `--group` was given).
    pub uid: Option<u32>,
    /// Group id.
    pub gid: u32,
    /// How it was named, for messages (`nobody:nogroup`).
    pub label: String,
}

fn lookup_buffer() -> Vec<libc::c_char> {
    vec![0; 16 * 1024]
}

/// The user id and primary group of `name` (or of a numeric id).
fn user(name: &str) -> Result<(u32, u32), SandboxError> {
    let bad = |why: String| SandboxError::Identity(format!("--user {name}: {why}"));
    let c = CString::new(name).map_err(|_| bad("contains a NUL byte".into()))?;
    let mut pw: libc::passwd = unsafe_zeroed_passwd();
    let mut buf = lookup_buffer();
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: getpwnam_r reads the NUL-terminated name, fills `pw` with pointers into
    // `buf` (its length passed), and sets `out` to `&pw` or NULL; all live for the call.
    let rc =
        unsafe { libc::getpwnam_r(c.as_ptr(), &mut pw, buf.as_mut_ptr(), buf.len(), &mut out) };
    if rc == 0 && !out.is_null() {
        return Ok((pw.pw_uid, pw.pw_gid));
    }
    match name.parse::<u32>() {
        // A number that names no user: that id, group the same number.
        Ok(uid) => Ok((uid, uid)),
        Err(_) if rc != 0 => Err(bad(format!(
            "looking it up failed: {}",
            io::Error::from_raw_os_error(rc)
        ))),
        Err(_) => Err(bad("no such user".into())),
    }
}

fn unsafe_zeroed_passwd() -> libc::passwd {
    // SAFETY: passwd is plain C data (integers and pointers); all-zero is a valid value
    // that getpwnam_r overwrites.
    unsafe { std::mem::zeroed() }
}

fn group(name: &str) -> Result<u32, SandboxError> {
    let bad = |why: String| SandboxError::Identity(format!("--group {name}: {why}"));
    let c = CString::new(name).map_err(|_| bad("contains a NUL byte".into()))?;
    // SAFETY: group is plain C data; all-zero is a valid value that getgrnam_r overwrites.
    let mut gr: libc::group = unsafe { std::mem::zeroed() };
    let mut buf = lookup_buffer();
    let mut out: *mut libc::group = std::ptr::null_mut();
    // SAFETY: as for getpwnam_r above.
    let rc =
        unsafe { libc::getgrnam_r(c.as_ptr(), &mut gr, buf.as_mut_ptr(), buf.len(), &mut out) };
    if rc == 0 && !out.is_null() {
        return Ok(gr.gr_gid);
    }
    match name.parse::<u32>() {
        Ok(gid) => Ok(gid),
        Err(_) if rc != 0 => Err(bad(format!(
            "looking it up failed: {}",
            io::Error::from_raw_os_error(rc)
        ))),
        Err(_) => Err(bad("no such group".into())),
    }
}

/// Resolve `--user` and `--group` (names or numbers). The group defaults to the user's
/// primary group. `None` when neither is given.
pub fn resolve(
    user_name: Option<&str>,
    group_name: Option<&str>,
) -> Result<Option<Identity>, SandboxError> {
    let (uid, primary) = match user_name {
        Some(u) => {
            let (uid, gid) = user(u)?;
            (Some(uid), Some(gid))
        }
        None => (None, None),
    };
    let gid = match (group_name, primary) {
        (Some(g), _) => group(g)?,
        (None, Some(g)) => g,
        (None, None) => return Ok(None),
    };
    let label = match (user_name, group_name) {
        (Some(u), Some(g)) => format!("{u}:{g}"),
        (Some(u), None) => format!("{u} (group {gid})"),
        (None, Some(g)) => format!("group {g}"),
        (None, None) => String::new(),
    };
    Ok(Some(Identity { uid, gid, label }))
}

fn last_error(what: &'static str) -> SandboxError {
    SandboxError::Os(what, io::Error::last_os_error())
}

fn resuid() -> (u32, u32, u32) {
    let (mut r, mut e, mut s) = (0, 0, 0);
    // SAFETY: getresuid writes three uid_t through pointers to our locals.
    unsafe { libc::getresuid(&mut r, &mut e, &mut s) };
    (r, e, s)
}

fn resgid() -> (u32, u32, u32) {
    let (mut r, mut e, mut s) = (0, 0, 0);
    // SAFETY: getresgid writes three gid_t through pointers to our locals.
    unsafe { libc::getresgid(&mut r, &mut e, &mut s) };
    (r, e, s)
}

/// Become `id` for good: no supplementary groups, real, effective and saved group and
/// user ids all set, then checked, and a `setuid(0)` / `setgid(0)` tried and required to
/// fail. Call while the process has one thread (glibc would otherwise change the others
/// through a signal, which the seccomp filters do not expect).
pub fn switch(id: &Identity) -> Result<(), SandboxError> {
    let need = |e: SandboxError| match e {
        SandboxError::Os(what, err) if err.raw_os_error() == Some(libc::EPERM) => {
            SandboxError::Identity(format!(
                "{what}: not permitted; --user and --group need nic-emu-cli started as root \
                 (or with CAP_SETUID and CAP_SETGID)"
            ))
        }
        other => other,
    };
    // SAFETY: setgroups with a count of 0 reads no memory.
    if unsafe { libc::setgroups(0, std::ptr::null()) } != 0 {
        return Err(need(last_error("clearing supplementary groups")));
    }
    // SAFETY: setresgid/setresuid take integers only.
    if unsafe { libc::setresgid(id.gid, id.gid, id.gid) } != 0 {
        return Err(need(last_error("setting the group")));
    }
    if let Some(uid) = id.uid {
        // SAFETY: as above.
        if unsafe { libc::setresuid(uid, uid, uid) } != 0 {
            return Err(need(last_error("setting the user")));
        }
    }
    verify(id)
}

fn verify(id: &Identity) -> Result<(), SandboxError> {
    let fail =
        |what: String| SandboxError::Identity(format!("after switching to {}: {what}", id.label));
    if resgid() != (id.gid, id.gid, id.gid) {
        return Err(fail(format!("group ids are {:?}", resgid())));
    }
    // SAFETY: getgroups with a size of 0 returns the count and writes nothing.
    let n = unsafe { libc::getgroups(0, std::ptr::null_mut()) };
    if n != 0 {
        return Err(fail(format!("{n} supplementary groups remain")));
    }
    let Some(uid) = id.uid else {
        return Ok(());
    };
    if resuid() != (uid, uid, uid) {
        return Err(fail(format!("user ids are {:?}", resuid())));
    }
    if uid != 0 {
        // The way back must be closed: these calls must fail.
        // SAFETY: setuid/setgid take integers only.
        if unsafe { libc::setuid(0) } == 0 {
            return Err(fail("setuid(0) succeeded: root could be regained".into()));
        }
        // SAFETY: as above.
        if id.gid != 0 && unsafe { libc::setgid(0) } == 0 {
            return Err(fail("setgid(0) succeeded".into()));
        }
    }
    Ok(())
}

/// The name of the user `uid`, if it has one (for messages).
pub fn user_name(uid: u32) -> Option<String> {
    let mut pw = unsafe_zeroed_passwd();
    let mut buf = lookup_buffer();
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: as in `user`.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut out) };
    if rc != 0 || out.is_null() || pw.pw_name.is_null() {
        return None;
    }
    // SAFETY: pw_name points into `buf`, NUL-terminated by getpwuid_r.
    Some(
        unsafe { CStr::from_ptr(pw.pw_name) }
            .to_string_lossy()
            .into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_resolve_and_the_group_defaults_to_the_users() {
        let id = resolve(Some("root"), None).unwrap().unwrap();
        assert_eq!((id.uid, id.gid), (Some(0), 0));
        let id = resolve(Some("12345"), None).unwrap().unwrap();
        assert_eq!((id.uid, id.gid), (Some(12345), 12345));
        let id = resolve(None, Some("0")).unwrap().unwrap();
        assert_eq!((id.uid, id.gid), (None, 0));
        assert_eq!(resolve(None, None).unwrap(), None);
    }

    #[test]
    fn an_unknown_name_is_an_error_naming_the_option() {
        let e = resolve(Some("no-such-user-here"), None).unwrap_err();
        assert!(
            e.to_string()
                .contains("--user no-such-user-here: no such user"),
            "{e}"
        );
        let e = resolve(None, Some("no-such-group-here")).unwrap_err();
        assert!(e.to_string().contains("--group no-such-group-here"), "{e}");
    }
}
