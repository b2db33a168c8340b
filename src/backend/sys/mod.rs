//! The few libc calls the backends need, behind safe functions. All `unsafe` of the
//! backend module lives here.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Put `fd` in non-blocking mode (`O_NONBLOCK`), keeping its other status flags.
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    let raw = fd.as_raw_fd();
    // SAFETY: F_GETFL takes no argument and only reads the status flags of `raw`, which
    // is a valid open descriptor for the lifetime of the `BorrowedFd` it came from.
    let flags = unsafe { libc::fcntl(raw, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    if flags & libc::O_NONBLOCK != 0 {
        return Ok(());
    }
    // SAFETY: F_SETFL takes an int argument (the new status flags); `raw` is valid as
    // above and no memory is passed to the kernel.
    let rc = unsafe { libc::fcntl(raw, libc::F_SETFL, flags | libc::O_NONBLOCK) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether `fd` is in non-blocking mode.
#[cfg(test)]
pub(crate) fn is_nonblocking(fd: BorrowedFd<'_>) -> io::Result<bool> {
    // SAFETY: as in `set_nonblocking`: F_GETFL reads flags of a valid descriptor.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(flags & libc::O_NONBLOCK != 0)
}
