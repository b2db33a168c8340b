//! Steering and watching a running nic-emu (feature `control`): a control socket in the
//! spirit of QEMU's QMP, the counters in the Prometheus text format, and a tiny HTTP
//! endpoint that serves them.
//!
//! # The control socket
//!
//! A Unix stream socket ([`ControlServer`], created mode 0600: whoever may use it may
//! pull the cable and write files). One JSON request per line, one JSON reply per line;
//! several clients may be connected at once. A request names a command and its
//! arguments, and may carry an `id` that the reply repeats:
//!
//! ```text
//! -> {"execute": "link", "arguments": {"up": false}, "id": 1}
//! <- {"return": {"link_up": false, "cable_plugged": false, "backend_carrier": true, "backend_carrier_note": null}, "id": 1}
//! -> {"execute": "nonsense"}
//! <- {"error": {"class": "CommandNotFound", "desc": "unknown command `nonsense`; ..."}}
//! ```
//!
//! Commands (`request.rs` defines them once, as the wire reads them and as `nic-emu-cli
//! ctl` parses them; `execute.rs` does them):
//!
//! | command | arguments | does |
//! |---|---|---|
//! | `info` | | version, backend, MAC, link (and the cable and the backend's carrier it follows, with the backend's reason when it has none), client connected, uptime |
//! | `link` | `up`: bool | plug or pull the cable: the guest gets LSC at once (the link is up only while the backend has a carrier too) |
//! | `stats` | `format`: `json` (default) or `prometheus` | every counter: nic-emu's metrics, lint counts, drop reasons, the statistics registers (read without clearing them for the guest), the backend's |
//! | `lints` | `clear`: bool (default false) | each lint that fired (id, severity, manual section, count, first occurrence, message); `clear` forgets them after replying |
//! | `record` | `action`: `start` (`file`, optional `max_bytes`, `max_frames`), `stop`, `status` | pcap recording of both directions, at run time |
//! | `replay` | `action`: `pause`, `resume`, `status` | the pcap replay backend |
//! | `impair` | `action`: `get`, or `set` with `settings` (`{"loss": 10, "delay": "20ms"}`) and optional `reset` | the impairment wrapper |
//! | `query-commands` | | the command names |
//!
//! `record start` writes into the file whose descriptor came with the request line
//! (`SCM_RIGHTS`: `nic-emu-cli ctl record start FILE` creates FILE with the rights of
//! whoever runs it and passes it); without one, nic-emu creates `file` itself, unless it
//! runs sandboxed ([`ControlContext::create_files`]).
//!
//! A request that is not JSON, too long ([`MAX_REQUEST`]), names an unknown command or
//! has arguments of the wrong kind gets an `error` reply and never reaches the device.
//! The device is locked only for the moment a command needs it (a copy of the counters,
//! a link change), so the vfio-user path never waits on a control client. `record`,
//! `replay` and `impair` do not take it at all: they act on the wrapper's own state
//! through the [`Handles`] the backend was built with
//! ([`BackendSpec::open_with_handles`](crate::config::BackendSpec::open_with_handles)).

use std::sync::Arc;
use std::time::Instant;

use crate::backend::Handles;
use crate::device::E1000;
use crate::frontend::SharedDevice;

pub mod client;
mod execute;
pub mod http;
pub mod prometheus;
pub mod request;
mod server;
pub mod snapshot;

pub use execute::{execute, execute_with, reply_line, reply_line_with};
pub use request::{ErrorClass, Request, RequestError};
pub use server::{ControlServer, MAX_CLIENTS, MAX_REQUEST};
pub use snapshot::Snapshot;

/// What the control plane steers: a device behind a frontend.
pub trait Controlled: Send + Sync + 'static {
    /// Run `f` on the locked device, then let the frontend act on what changed (wake
    /// its service loop). Keep `f` short.
    fn with_device(&self, f: &mut dyn FnMut(&mut E1000));

    /// Whether a guest (vfio-user client) is connected; `None` if the frontend cannot
    /// tell.
    fn client_connected(&self) -> Option<bool> {
        None
    }

    /// Clients served so far; `None` if the frontend does not count them.
    fn clients_served(&self) -> Option<u64> {
        None
    }

    /// Wake the frontend's service loop without taking the device lock: a command
    /// changed a backend's wrapper through its handle (a replay resumed, impairments
    /// changed), so its deadlines may have moved. No loop to wake: nothing to do.
    fn wake(&self) {}
}

/// A bare shared device: no service loop to wake (tests, an embedder's own loop).
impl Controlled for SharedDevice {
    fn with_device(&self, f: &mut dyn FnMut(&mut E1000)) {
        f(&mut self.lock());
    }
}

#[cfg(feature = "vfio-user")]
impl Controlled for crate::frontend::vfio_user::DeviceHandle {
    fn with_device(&self, f: &mut dyn FnMut(&mut E1000)) {
        crate::frontend::vfio_user::DeviceHandle::with_device(self, |d| f(d));
    }

    fn client_connected(&self) -> Option<bool> {
        Some(crate::frontend::vfio_user::DeviceHandle::client_connected(
            self,
        ))
    }

    fn clients_served(&self) -> Option<u64> {
        Some(crate::frontend::vfio_user::DeviceHandle::clients_served(
            self,
        ))
    }

    fn wake(&self) {
        crate::frontend::vfio_user::DeviceHandle::wake(self);
    }
}

/// Everything a command may need: the device, the handles of the backend's wrappers
/// and what the program knows about itself.
pub struct ControlContext {
    /// The device.
    pub target: Arc<dyn Controlled>,
    /// The recorder, impairment and replay of the device's backend, steered without the
    /// device lock (`record`, `impair`, `replay`); a part that is `None` answers
    /// `NotSupported`.
    pub handles: Handles,
    /// How the backend was configured (label and spec), for `info`.
    pub backend: String,
    /// When the program started, for `uptime`.
    pub started: Instant,
    /// Whether `record start FILE` may create FILE itself (default). A sandboxed program
    /// cannot: the client opens the file and passes its descriptor with the request
    /// (`nic-emu-cli ctl` does), and a request without one is refused with a message
    /// that says so.
    pub create_files: bool,
}

impl std::fmt::Debug for ControlContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlContext")
            .field("backend", &self.backend)
            .field("started", &self.started)
            .finish_non_exhaustive()
    }
}

impl ControlContext {
    /// A context for `target`, started now, with no handles (see
    /// [`with_handles`](Self::with_handles)).
    pub fn new(target: Arc<dyn Controlled>, backend: impl Into<String>) -> Self {
        Self {
            target,
            handles: Handles::default(),
            backend: backend.into(),
            started: Instant::now(),
            create_files: true,
        }
    }

    /// The same context steering the backend's wrappers through `handles`.
    pub fn with_handles(mut self, handles: Handles) -> Self {
        self.handles = handles;
        self
    }

    /// Run `f` on the locked device (then wake the frontend) and return its result.
    pub fn with_device<R>(&self, f: impl FnOnce(&mut E1000) -> R) -> R {
        let mut f = Some(f);
        let mut out = None;
        self.target.with_device(&mut |d| {
            if let Some(f) = f.take() {
                out = Some(f(d));
            }
        });
        match out {
            Some(r) => r,
            // `with_device` must call its closure; a frontend that did not is a bug here.
            None => unreachable!("Controlled::with_device did not run its closure"),
        }
    }
}
