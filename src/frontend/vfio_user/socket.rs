//! The listening socket's file: created so that only a stale socket is ever replaced
//! (`crate::sys::unix_socket` does that), and recognised so that only our own is removed.

use std::io;
use std::os::unix::net::UnixListener;
use std::path::Path;

use crate::frontend::FrontendError;
use crate::sys::unix_socket;

/// Bind a listening socket at `path`, replacing a stale socket file (nobody accepting);
/// a live one, or any other kind of file, is an error.
pub(super) fn bind_socket(path: &Path) -> Result<UnixListener, FrontendError> {
    unix_socket::bind_replacing_stale(path)
        .map_err(|e| FrontendError::Other(format!("cannot listen on {}: {e}", path.display())))
}

/// Device and inode of `path`, to recognise our own socket file later.
pub(super) fn file_id(path: &Path) -> io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(path)?;
    Ok((m.dev(), m.ino()))
}
