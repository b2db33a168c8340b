//! A listening Unix socket's file, created so that only a stale socket is ever replaced.

use std::io::{self, ErrorKind};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

/// Bind a listening socket at `path`. A socket file nobody accepts on (left by a server
/// that died) is replaced; a live one is an `AddrInUse` error, any other kind of file an
/// `AlreadyExists` error: neither is touched. Callers add the path to the message.
pub(crate) fn bind_replacing_stale(path: &Path) -> io::Result<UnixListener> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => {
            if !meta.file_type().is_socket() {
                return Err(io::Error::new(
                    ErrorKind::AlreadyExists,
                    "exists and is not a socket; refusing to replace it",
                ));
            }
            if UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    ErrorKind::AddrInUse,
                    "another server is already listening there",
                ));
            }
            log::info!("removing stale socket {}", path.display());
            std::fs::remove_file(path)?;
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    UnixListener::bind(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_socket_is_replaced_a_live_one_and_other_files_are_not() {
        let dir = std::env::temp_dir().join(format!("nic-emu-sys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sock");
        let _ = std::fs::remove_file(&path);

        let live = bind_replacing_stale(&path).unwrap();
        let e = bind_replacing_stale(&path).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AddrInUse, "{e}");
        drop(live); // the file stays, nobody listens: stale
        let again = bind_replacing_stale(&path).expect("a stale socket is replaced");
        drop(again);
        std::fs::remove_file(&path).unwrap();

        std::fs::write(&path, b"data").unwrap();
        let e = bind_replacing_stale(&path).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), b"data", "left alone");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
