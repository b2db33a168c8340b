//! The libc calls the vfio-user frontend needs, behind safe functions.

use std::io;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Shut down (both directions) every connected socket in this process whose local address
/// is `path`: the server side of the connections accepted on a listener bound there.
/// Listening sockets are left alone. Returns how many were shut down.
///
/// The `vfio_user` crate keeps its accepted stream to itself; shutting it down makes its
/// blocking receive return end-of-file, so `Server::run` returns.
pub(crate) fn shutdown_connections_on(path: &Path) -> usize {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return 0;
    };
    let want = path.as_os_str().as_bytes();
    let mut n = 0;
    for entry in dir.flatten() {
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<RawFd>().ok())
        else {
            continue;
        };
        if local_unix_path(fd).as_deref() != Some(want) || is_listening(fd) {
            continue;
        }
        // SAFETY: shutdown(2) takes a descriptor and a constant; on a descriptor that is
        // not (or no longer) a socket it fails with ENOTSOCK/EBADF and changes nothing.
        if unsafe { libc::shutdown(fd, libc::SHUT_RDWR) } == 0 {
            n += 1;
        }
    }
    n
}

/// A connected (accepted) socket in this process whose local address is `path`: the
/// stream the `vfio_user` crate serves. Only ever polled, never read or closed.
pub(crate) fn connection_on(path: &Path) -> Option<RawFd> {
    let want = path.as_os_str().as_bytes();
    std::fs::read_dir("/proc/self/fd")
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<RawFd>().ok()))
        .find(|&fd| local_unix_path(fd).as_deref() == Some(want) && !is_listening(fd))
}

/// The filesystem path a Unix socket `fd` is bound to, if it is one.
fn local_unix_path(fd: RawFd) -> Option<Vec<u8>> {
    // SAFETY: sockaddr_un is plain data; all-zero is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    // SAFETY: `addr` is a writable sockaddr_un and `len` holds its size, so the kernel
    // writes at most that many bytes; a non-socket fd just fails.
    let rc = unsafe {
        libc::getsockname(
            fd,
            (&mut addr as *mut libc::sockaddr_un).cast::<libc::sockaddr>(),
            &mut len,
        )
    };
    if rc != 0 || addr.sun_family != libc::AF_UNIX as libc::sa_family_t {
        return None;
    }
    let path_len = (len as usize)
        .checked_sub(std::mem::offset_of!(libc::sockaddr_un, sun_path))?
        .min(addr.sun_path.len());
    let bytes: Vec<u8> = addr
        .sun_path
        .get(..path_len)?
        .iter()
        .map(|&c| c as u8)
        .collect();
    // Trailing NULs are not part of the path; abstract addresses (leading NUL) never match.
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    Some(bytes.get(..end)?.to_vec())
}

fn is_listening(fd: RawFd) -> bool {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `v` is a writable c_int and `len` its size, as SO_ACCEPTCONN expects.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ACCEPTCONN,
            (&mut v as *mut libc::c_int).cast::<libc::c_void>(),
            &mut len,
        )
    };
    rc == 0 && v != 0
}

/// Device and inode of `path`, to recognise our own socket file later.
pub(crate) fn file_id(path: &Path) -> io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(path)?;
    Ok((m.dev(), m.ino()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::net::{UnixListener, UnixStream};

    #[test]
    fn shuts_down_only_accepted_connections_on_the_path() {
        let dir = std::env::temp_dir().join(format!("nic-emu-sys-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("s.sock");
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap();
        let mut client = UnixStream::connect(&path).unwrap();
        let (_server_side, _) = listener.accept().unwrap();
        assert_eq!(shutdown_connections_on(&path), 1);
        let mut b = [0u8; 1];
        assert_eq!(client.read(&mut b).unwrap(), 0);
        // The listener still accepts.
        let _c2 = UnixStream::connect(&path).unwrap();
        assert!(listener.accept().is_ok());
        let _ = std::fs::remove_file(&path);
    }
}
