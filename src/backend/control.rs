//! Steering a running backend: the requests nic-emu-cli's control socket passes down the
//! chain of backends, and their answers.
//!
//! One hook, [`PacketBackend::control`](super::PacketBackend::control), carries them: a
//! wrapper answers the requests that are its own (the pcap recorder `Record*`, [`Impair`]
//! `Impair*`, the pcap replay `Replay*`) and passes the others to the backend it wraps; a
//! backend that knows none of them keeps the default, `None`. [`BackendRequest::Counters`]
//! is answered by every layer: a wrapper puts its counters before those of the backend it
//! wraps.
//!
//! [`Impair`]: super::Impair

use std::fs::File;
use std::path::PathBuf;

use super::params::impair::{ImpairCounters, ImpairSpec};
use super::params::RecordLimits;

/// What a control client asks of the backend.
#[derive(Debug)]
pub enum BackendRequest {
    /// Every layer's counters.
    Counters,
    /// Start recording to `file` (already created by the caller, outside the device
    /// lock), which is at `path`. A recording in progress is finished first.
    RecordStart {
        /// The file, empty.
        file: File,
        /// Where it is, for logs and status.
        path: PathBuf,
        /// When recording stops by itself.
        limits: RecordLimits,
    },
    /// Finish the recording in progress (the file is flushed); traffic goes on.
    RecordStop,
    /// What the recorder is doing.
    RecordStatus,
    /// Stop offering frames from the capture (the position in the file is kept).
    ReplayPause,
    /// Go on from where the replay was paused.
    ReplayResume,
    /// Where the replay is.
    ReplayStatus,
    /// The impairments in force.
    ImpairGet,
    /// Replace the impairments (frames already held keep their fate).
    ImpairSet(ImpairSpec),
}

impl BackendRequest {
    /// The request's name, for "nobody here does X" messages.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Counters => "counters",
            Self::RecordStart { .. } | Self::RecordStop | Self::RecordStatus => "record",
            Self::ReplayPause | Self::ReplayResume | Self::ReplayStatus => "replay",
            Self::ImpairGet | Self::ImpairSet(_) => "impair",
        }
    }
}

/// A backend's answer.
#[derive(Clone, Debug, PartialEq)]
pub enum BackendReply {
    /// Every layer's counters, outermost first.
    Counters(Vec<BackendCounter>),
    /// The recorder's state (after the request).
    Record(RecordStatus),
    /// The replay's state (after the request).
    Replay(ReplayStatus),
    /// The impairments in force (after the request), and what they did so far.
    Impair(Box<(ImpairSpec, ImpairCounters)>),
    /// The request was understood but could not be done; the message says why.
    Failed(String),
}

/// One counter of a backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendCounter {
    /// Name: lower case, `[a-z0-9_]`, prefixed by the layer (`impair_rx_lost`).
    pub name: String,
    /// What it counts, one line.
    pub help: &'static str,
    /// The value.
    pub value: u64,
}

impl BackendCounter {
    /// A counter named `layer_name`.
    pub fn new(layer: &str, name: &str, help: &'static str, value: u64) -> Self {
        Self {
            name: format!("{layer}_{name}"),
            help,
            value,
        }
    }
}

/// Add `inner`'s counters (the answer of the wrapped backend to
/// [`BackendRequest::Counters`]) after `own`.
pub fn with_inner_counters(
    mut own: Vec<BackendCounter>,
    inner: Option<BackendReply>,
) -> BackendReply {
    if let Some(BackendReply::Counters(more)) = inner {
        own.extend(more);
    }
    BackendReply::Counters(own)
}

/// What a pcap recorder is doing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordStatus {
    /// Whether frames are being written now.
    pub recording: bool,
    /// The file of the current (or last) recording.
    pub path: Option<PathBuf>,
    /// Frames written by the current (or last) recording, both directions.
    pub frames: u64,
    /// Bytes in its file, header included.
    pub bytes: u64,
    /// Why it stopped by itself (limit, write error), if it did.
    pub stopped: Option<String>,
}

/// Where a pcap replay is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayStatus {
    /// Paused by a control request.
    pub paused: bool,
    /// Every pass played.
    pub finished: bool,
    /// Frames offered to the device so far.
    pub delivered: u64,
    /// Passes over the file completed.
    pub passes: u64,
}
