//! The control socket: a listening thread and one thread per client, each reading lines
//! of at most [`MAX_REQUEST`] bytes and answering each with one line.

use std::fs::File;
use std::io::{self, ErrorKind, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use vmm_sys_util::sock_ctrl_msg::ScmSocket;

use super::execute::{reply_line_with, with_id};
use super::request::{ErrorClass, RequestError};
use super::ControlContext;
use crate::frontend::waker::poll_readable;

/// Longest request line, newline excluded. A longer one is answered with an error and
/// the connection is closed (what follows cannot be told from the rest of the line).
pub const MAX_REQUEST: usize = 64 * 1024;
/// Clients connected at once; one more is told so and disconnected.
pub const MAX_CLIENTS: usize = 16;
/// How often threads look at the stop flag.
const TICK: Duration = Duration::from_millis(200);
/// A client that does not take its reply within this time is disconnected.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

struct State {
    ctx: Arc<ControlContext>,
    stop: AtomicBool,
    clients: AtomicUsize,
}

/// A running control socket; stopped, and its socket file removed, on drop.
pub struct ControlServer {
    path: PathBuf,
    /// Device and inode of the socket file we created (only ours is removed).
    file_id: (u64, u64),
    state: Arc<State>,
    /// The listening socket, until [`spawn`](ControlServer::spawn) hands it to the thread.
    listener: Option<UnixListener>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for ControlServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlServer")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn file_id(path: &Path) -> io::Result<(u64, u64)> {
    let m = std::fs::symlink_metadata(path)?;
    Ok((m.dev(), m.ino()))
}

/// Bind `path`, replacing a stale socket (nobody listening); anything else there is an
/// error that names the path.
fn bind(path: &Path) -> io::Result<UnixListener> {
    let named =
        |e: io::Error| io::Error::new(e.kind(), format!("control socket {}: {e}", path.display()));
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(named(io::Error::new(
                ErrorKind::AlreadyExists,
                "exists and is not a socket; refusing to replace it",
            )));
        }
        if UnixStream::connect(path).is_ok() {
            return Err(named(io::Error::new(
                ErrorKind::AddrInUse,
                "another server is listening there",
            )));
        }
        std::fs::remove_file(path).map_err(named)?;
    }
    let l = UnixListener::bind(path).map_err(named)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(named)?;
    Ok(l)
}

impl ControlServer {
    /// Listen on `path` (mode 0600) and serve requests on `ctx` until dropped.
    pub fn start(path: &Path, ctx: Arc<ControlContext>) -> io::Result<Self> {
        let mut s = Self::bind(path, ctx)?;
        s.spawn()?;
        Ok(s)
    }

    /// Listen on `path` (mode 0600) but answer nothing until [`spawn`](Self::spawn):
    /// clients that connect meanwhile wait in the backlog. For a program that locks
    /// itself down between opening its sockets and starting threads.
    pub fn bind(path: &Path, ctx: Arc<ControlContext>) -> io::Result<Self> {
        let listener = bind(path)?;
        let id = file_id(path)?;
        let state = Arc::new(State {
            ctx,
            stop: AtomicBool::new(false),
            clients: AtomicUsize::new(0),
        });
        Ok(Self {
            path: path.to_path_buf(),
            file_id: id,
            state,
            listener: Some(listener),
            thread: None,
        })
    }

    /// Start the listening thread (`nic-emu-control`), once.
    pub fn spawn(&mut self) -> io::Result<()> {
        let Some(listener) = self.listener.take() else {
            return Ok(());
        };
        let st = self.state.clone();
        let thread = std::thread::Builder::new()
            .name("nic-emu-control".into())
            .spawn(move || {
                #[cfg(feature = "sandbox")]
                crate::sandbox::enter(crate::sandbox::ThreadKind::Control);
                accept_loop(&listener, &st)
            })?;
        self.thread = Some(thread);
        Ok(())
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Clients connected now.
    pub fn clients(&self) -> usize {
        self.state.clients.load(Ordering::Acquire)
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if file_id(&self.path).ok() == Some(self.file_id) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn accept_loop(listener: &UnixListener, st: &Arc<State>) {
    let mut handles: Vec<JoinHandle<()>> = Vec::new();
    while !st.stop.load(Ordering::Acquire) {
        handles.retain(|h| !h.is_finished());
        match poll_readable(listener.as_raw_fd(), TICK) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                log::error!("control: waiting for clients: {e}");
                std::thread::sleep(TICK);
                continue;
            }
        }
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) => {
                log::warn!("control: accept: {e}");
                continue;
            }
        };
        if st.clients.load(Ordering::Acquire) >= MAX_CLIENTS {
            let e = RequestError::new(
                ErrorClass::GenericError,
                format!("too many control clients ({MAX_CLIENTS}); try again later"),
            );
            let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
            let _ = writeln!(&stream, "{}", with_id(Err(e), None));
            continue;
        }
        st.clients.fetch_add(1, Ordering::AcqRel);
        let st2 = st.clone();
        let spawned = std::thread::Builder::new()
            .name("nic-emu-control-client".into())
            .spawn(move || {
                #[cfg(feature = "sandbox")]
                crate::sandbox::inherit(crate::sandbox::ThreadKind::Control);
                if let Err(e) = serve_client(&stream, &st2) {
                    log::debug!("control: client: {e}");
                }
                st2.clients.fetch_sub(1, Ordering::AcqRel);
            });
        match spawned {
            Ok(h) => handles.push(h),
            Err(e) => {
                st.clients.fetch_sub(1, Ordering::AcqRel);
                log::warn!("control: no thread for a client: {e}");
            }
        }
    }
    for h in handles {
        let _ = h.join();
    }
}

/// Serve one client until it leaves, sends an over-long line, or the server stops.
///
/// A descriptor sent with the bytes of a request (`SCM_RIGHTS`, one per message; more
/// are closed by the kernel) belongs to the first line that ends in or after that message
/// (`record start`'s file); a newer one replaces one not yet used.
fn serve_client(stream: &UnixStream, st: &State) -> io::Result<()> {
    stream.set_read_timeout(Some(TICK))?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let mut pending: Vec<u8> = Vec::new();
    let mut file: Option<File> = None;
    let mut chunk = [0u8; 4096];
    loop {
        if st.stop.load(Ordering::Acquire) {
            return Ok(());
        }
        let n = match stream.recv_with_fd(&mut chunk) {
            Ok((0, None)) => return Ok(()), // gone (a half line is dropped unanswered)
            Ok((n, f)) => {
                if f.is_some() {
                    file = f;
                }
                n
            }
            Err(e) if matches!(e.errno(), libc::EAGAIN | libc::ETIMEDOUT | libc::EINTR) => continue,
            Err(e) => return Err(io::Error::from_raw_os_error(e.errno())),
        };
        pending.extend_from_slice(chunk.get(..n).unwrap_or_default());
        while let Some(nl) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=nl).collect();
            let line = line.get(..nl).unwrap_or_default();
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            if line.len() > MAX_REQUEST {
                return too_long(stream);
            }
            let reply = reply_line_with(&st.ctx, line, file.take());
            (&*stream).write_all(format!("{reply}\n").as_bytes())?;
        }
        if pending.len() > MAX_REQUEST {
            return too_long(stream);
        }
    }
}

fn too_long(stream: &UnixStream) -> io::Result<()> {
    let e = RequestError::new(
        ErrorClass::InvalidRequest,
        format!("request longer than {MAX_REQUEST} bytes; closing the connection"),
    );
    log::warn!("control: {}", e.desc);
    (&*stream).write_all(format!("{}\n", with_id(Err(e), None)).as_bytes())?;
    let _ = stream.shutdown(std::net::Shutdown::Both);
    Ok(())
}
