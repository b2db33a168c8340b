//! Listening sockets handed over by whoever starts nic-emu: systemd socket activation
//! (`LISTEN_PID`/`LISTEN_FDS`, the first socket at fd 3, as `sd_listen_fds(3)` reads them)
//! or a descriptor number given on the command line (`--fd N`).
//!
//! The socket is checked before it is used: open, a socket, of the Unix domain, stream
//! type, and listening. A socket handed over is never unlinked by nic-emu: the service
//! manager created its file and owns it.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;

/// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
pub const SD_LISTEN_FDS_START: RawFd = 3;

/// A descriptor that cannot serve as the vfio-user listening socket.
#[derive(Debug, thiserror::Error)]
pub enum ActivationError {
    /// `LISTEN_PID` or `LISTEN_FDS` is not a number.
    #[error("{var}={value:?} is not a number")]
    BadVariable {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
    },
    /// systemd passed more than one socket; nic-emu serves one.
    #[error("LISTEN_FDS={0}: nic-emu takes exactly one socket (give the .socket unit one ListenStream=)")]
    TooMany(u32),
    /// The descriptor is not open.
    #[error("fd {0} is not open")]
    NotOpen(RawFd),
    /// The descriptor is not what the server needs; the message says what it is.
    #[error("fd {fd}: {what}; a listening Unix stream socket is needed")]
    Unsuitable {
        /// The descriptor.
        fd: RawFd,
        /// What is wrong.
        what: String,
    },
}

/// The descriptor systemd passed to this process, if it passed one: reads the values
/// of `LISTEN_PID` and `LISTEN_FDS` (given, so that tests need not change the
/// environment). `None` when the variables are absent or meant for another process.
pub fn systemd_fd(
    listen_pid: Option<&str>,
    listen_fds: Option<&str>,
    my_pid: u32,
) -> Result<Option<RawFd>, ActivationError> {
    let (Some(pid), Some(fds)) = (listen_pid, listen_fds) else {
        return Ok(None);
    };
    let num = |var: &'static str, value: &str| {
        value
            .trim()
            .parse::<u32>()
            .map_err(|_| ActivationError::BadVariable {
                var,
                value: value.to_string(),
            })
    };
    if num("LISTEN_PID", pid)? != my_pid {
        return Ok(None);
    }
    match num("LISTEN_FDS", fds)? {
        0 => Ok(None),
        1 => Ok(Some(SD_LISTEN_FDS_START)),
        n => Err(ActivationError::TooMany(n)),
    }
}

fn sockopt(fd: RawFd, opt: libc::c_int) -> io::Result<libc::c_int> {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `v`, which lives for the call;
    // a bad descriptor is an error return, not undefined behaviour.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            opt,
            (&mut v as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(v)
}

/// Check that `fd` is an open, listening Unix stream socket.
pub fn check_listener(fd: RawFd) -> Result<(), ActivationError> {
    if fd < 0 {
        return Err(ActivationError::NotOpen(fd));
    }
    // SAFETY: F_GETFD only reads the descriptor's flags; no memory is passed.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(ActivationError::NotOpen(fd));
    }
    let unsuitable = |what: String| ActivationError::Unsuitable { fd, what };
    let domain =
        sockopt(fd, libc::SO_DOMAIN).map_err(|e| unsuitable(format!("not a socket ({e})")))?;
    if domain != libc::AF_UNIX {
        return Err(unsuitable(format!(
            "socket of address family {domain}, not AF_UNIX"
        )));
    }
    let ty = sockopt(fd, libc::SO_TYPE).map_err(|e| unsuitable(e.to_string()))?;
    if ty != libc::SOCK_STREAM {
        return Err(unsuitable(format!("socket of type {ty}, not SOCK_STREAM")));
    }
    let listening = sockopt(fd, libc::SO_ACCEPTCONN).map_err(|e| unsuitable(e.to_string()))?;
    if listening == 0 {
        return Err(unsuitable("a Unix socket that is not listening".into()));
    }
    Ok(())
}

/// Take `fd` as the listening socket, after [`check_listener`]. It is marked
/// close-on-exec.
///
/// # Safety
///
/// `fd` must not be owned by anything else in this process (it was inherited for this
/// purpose): from here on the returned listener owns and closes it.
pub unsafe fn take_listener(fd: RawFd) -> Result<UnixListener, ActivationError> {
    check_listener(fd)?;
    // SAFETY: F_SETFD only changes the descriptor's flags; no memory is passed.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    // SAFETY: `fd` is open (checked) and, by this function's contract, owned by nothing
    // else in the process.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    Ok(UnixListener::from(owned))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn systemd_variables() {
        assert_eq!(systemd_fd(None, None, 7).unwrap(), None);
        assert_eq!(systemd_fd(Some("7"), Some("1"), 7).unwrap(), Some(3));
        assert_eq!(systemd_fd(Some("8"), Some("1"), 7).unwrap(), None);
        assert_eq!(systemd_fd(Some("7"), Some("0"), 7).unwrap(), None);
        assert!(matches!(
            systemd_fd(Some("7"), Some("2"), 7),
            Err(ActivationError::TooMany(2))
        ));
        let e = systemd_fd(Some("x"), Some("1"), 7).unwrap_err().to_string();
        assert!(e.contains("LISTEN_PID"), "{e}");
    }

    #[test]
    fn only_listening_unix_stream_sockets() {
        let dir = std::env::temp_dir().join(format!("nic-emu-act-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let l = UnixListener::bind(dir.join("l.sock")).unwrap();
        check_listener(l.as_raw_fd()).unwrap();
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let e = check_listener(a.as_raw_fd()).unwrap_err().to_string();
        assert!(e.contains("not listening"), "{e}");
        let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let e = check_listener(u.as_raw_fd()).unwrap_err().to_string();
        assert!(e.contains("AF_UNIX"), "{e}");
        let f = std::fs::File::open("/dev/null").unwrap();
        let e = check_listener(f.as_raw_fd()).unwrap_err().to_string();
        assert!(e.contains("not a socket"), "{e}");
        assert!(matches!(
            check_listener(-1),
            Err(ActivationError::NotOpen(-1))
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
