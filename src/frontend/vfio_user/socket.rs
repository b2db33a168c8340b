//! The listening socket's file: created so that only a stale socket is ever replaced, and
//! recognised so that only our own is removed.

use std::io;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

use crate::frontend::FrontendError;

/// Bind a listening socket at `path`, replacing a stale socket file (nobody accepting);
/// a live one, or any other kind of file, is an error.
pub(super) fn bind_socket(path: &Path) -> Result<UnixListener, FrontendError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => {
            if !meta.file_type().is_socket() {
                return Err(FrontendError::Other(format!(
                    "{} exists and is not a socket; refusing to replace it",
                    path.display()
                )));
            }
            if UnixStream::connect(path).is_ok() {
                return Err(FrontendError::Other(format!(
                    "{}: another server is already listening there",
                    path.display()
                )));
            }
            log::info!("removing stale socket {}", path.display());
            std::fs::remove_file(path)?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(FrontendError::Io(e)),
    }
    UnixListener::bind(path)
        .map_err(|e| FrontendError::Other(format!("cannot listen on {}: {e}", path.display())))
}

/// Device and inode of `path`, to recognise our own socket file later.
pub(super) fn file_id(path: &Path) -> io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(path)?;
    Ok((m.dev(), m.ino()))
}
