//! Building a backend from its spec: the kind, wrapped in the impairment and the
//! recorder the spec asks for. A kind whose cargo feature is off is an error naming it.

use std::io;

use super::spec::{BackendKind, BackendSpec};
use crate::backend::{self, Handles, PacketBackend};
use crate::mac::MacAddress;

/// What a backend learns from the device when it is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackendContext {
    /// The MAC address the device starts with (its EEPROM), for `rewrite_dst=guest`.
    pub guest_mac: MacAddress,
}

impl Default for BackendContext {
    fn default() -> Self {
        Self {
            guest_mac: MacAddress::DEFAULT,
        }
    }
}

/// A backend chain as built, with the handles that steer its wrappers at run time.
pub struct Opened {
    /// The chain, for the device.
    pub backend: Box<dyn PacketBackend>,
    /// Its recorder, impairment and replay, for the control socket.
    pub handles: Handles,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("backend", &self.backend.name())
            .field("handles", &self.handles)
            .finish()
    }
}

/// A backend that could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The spec needs a cargo feature this build lacks.
    #[error("{what} needs nic-emu built with the `{feature}` feature")]
    FeatureDisabled {
        /// What was asked for ("backend kind `tap`", "`record`").
        what: String,
        /// The feature.
        feature: &'static str,
    },
    /// The backend failed to open; the message names it (interface, address, file).
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl BackendSpec {
    /// [`open_for`](Self::open_for) a device with the default MAC address.
    pub fn open(&self) -> Result<Box<dyn PacketBackend>, BackendError> {
        self.open_for(&BackendContext::default())
    }

    /// Build the backend for a device described by `ctx`: the kind, wrapped in an
    /// [`Impair`](crate::backend::Impair) when impairments are set, and that in a
    /// `PcapRecorder` (feature `pcap`) when `record` is set, so the recording shows what
    /// the guest sent and received. A kind whose cargo feature is off is an error naming
    /// the feature.
    pub fn open_for(&self, ctx: &BackendContext) -> Result<Box<dyn PacketBackend>, BackendError> {
        self.open_with_handles(ctx).map(|o| o.backend)
    }

    /// [`open_for`](Self::open_for), and the handles of the recorder, impairment and
    /// replay it built, which steer them from another thread without the device lock.
    pub fn open_with_handles(&self, ctx: &BackendContext) -> Result<Opened, BackendError> {
        let mut handles = Handles::default();
        let mut inner = open_kind(&self.kind, ctx, &mut handles)?;
        if let Some(imp) = self.impair {
            let impair = backend::Impair::new(inner, imp);
            handles.impair = Some(impair.handle());
            inner = Box::new(impair);
        }
        let Some(record) = &self.record else {
            return Ok(Opened {
                backend: inner,
                handles,
            });
        };
        #[cfg(feature = "pcap")]
        {
            let rec = backend::PcapRecorder::create(inner, &record.path, record.limits)?;
            handles.recorder = Some(rec.handle());
            Ok(Opened {
                backend: Box::new(rec),
                handles,
            })
        }
        #[cfg(not(feature = "pcap"))]
        {
            let _ = (inner, record);
            Err(BackendError::FeatureDisabled {
                what: "`record`".into(),
                feature: "pcap",
            })
        }
    }
}

fn open_kind(
    kind: &BackendKind,
    ctx: &BackendContext,
    handles: &mut Handles,
) -> Result<Box<dyn PacketBackend>, BackendError> {
    #[allow(unused)]
    let disabled = |feature: &'static str| BackendError::FeatureDisabled {
        what: format!("backend kind `{}`", kind.name()),
        feature,
    };
    #[allow(unused)]
    let _ = (ctx, &handles);
    match kind {
        BackendKind::Loopback => Ok(Box::new(backend::Loopback::new())),
        BackendKind::Stream { addr, role } => {
            Ok(Box::new(backend::StreamBackend::open(addr.clone(), *role)?))
        }
        #[cfg(feature = "tap")]
        BackendKind::Tap { ifname } => Ok(Box::new(backend::Tap::open(ifname)?)),
        #[cfg(feature = "tap")]
        BackendKind::TapFd { fd } => Ok(Box::new(backend::Tap::from_inherited_fd(*fd)?)),
        #[cfg(feature = "udp")]
        BackendKind::Udp { local, remote } => {
            Ok(Box::new(backend::UdpTunnel::new(*local, *remote)?))
        }
        #[cfg(feature = "udp")]
        BackendKind::Mcast { group, iface } => {
            Ok(Box::new(backend::UdpTunnel::multicast(*group, *iface)?))
        }
        #[cfg(feature = "udp")]
        BackendKind::Vxlan(x) => Ok(Box::new(backend::Vxlan::open(x)?)),
        #[cfg(feature = "pcap")]
        BackendKind::Pcap {
            replay,
            timing,
            repeat,
            rewrite,
        } => {
            let mut r = backend::PcapReplay::open(replay, *timing, *repeat)?;
            r.set_rewrite(*rewrite, ctx.guest_mac);
            handles.replay = Some(r.handle());
            Ok(Box::new(r))
        }
        #[allow(unreachable_patterns)]
        BackendKind::Tap { .. } | BackendKind::TapFd { .. } => Err(disabled("tap")),
        #[allow(unreachable_patterns)]
        BackendKind::Udp { .. } | BackendKind::Mcast { .. } | BackendKind::Vxlan(_) => {
            Err(disabled("udp"))
        }
        #[allow(unreachable_patterns)]
        BackendKind::Pcap { .. } => Err(disabled("pcap")),
    }
}
