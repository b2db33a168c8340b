//! Backend specifications: a backend as the user configured it, from a QEMU-style
//! string (`udp,local=127.0.0.1:7001,remote=127.0.0.1:7002`) or a `[backends.NAME]`
//! table of backends.toml, and [`BackendSpec::open`] to build it.
//!
//! Keys, the same in both syntaxes:
//!
//! | kind       | keys                                                          |
//! |------------|---------------------------------------------------------------|
//! | `tap`      | `ifname` (default `tap%d`; `%d` is replaced by the kernel)    |
//! | `udp`      | `local` (required), `remote` (learned when absent)            |
//! | `pcap`     | `replay` (required), `timing` (`original`, `fast`, `<N>pps`; default `original`), `repeat` (times played, 0 = forever; default 1) |
//! | `loopback` | none                                                          |
//! | any        | `record` (pcap file of both directions), `record_max_bytes`, `record_max_frames` |
//!
//! In the inline syntax the kind comes first, then `key=value` items separated by
//! commas; a comma inside a value is written `,,` (as in QEMU).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::str::FromStr;

use super::PacketBackend;

/// Pace of a pcap replay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayTiming {
    /// Honour the gaps between the file's timestamps.
    Original,
    /// As fast as the guest takes frames.
    Fast,
    /// A fixed number of frames per second.
    Rate(NonZeroU32),
}

impl FromStr for ReplayTiming {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "original" => Ok(Self::Original),
            "fast" => Ok(Self::Fast),
            _ => s
                .strip_suffix("pps")
                .and_then(|n| n.parse::<NonZeroU32>().ok())
                .map(Self::Rate)
                .ok_or_else(|| {
                    format!("`{s}` is not a timing: use original, fast or <N>pps (N >= 1)")
                }),
        }
    }
}

impl fmt::Display for ReplayTiming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Original => f.write_str("original"),
            Self::Fast => f.write_str("fast"),
            Self::Rate(n) => write!(f, "{n}pps"),
        }
    }
}

/// When a pcap recording stops (traffic goes on).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordLimits {
    /// Largest file size in bytes, header included.
    pub max_bytes: Option<u64>,
    /// Most frames recorded (both directions together).
    pub max_frames: Option<u64>,
}

/// A pcap recording of a backend's traffic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordSpec {
    /// File to write (created or truncated).
    pub path: PathBuf,
    /// When to stop recording.
    pub limits: RecordLimits,
}

/// Which backend, with its settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackendKind {
    /// A Linux tap interface, created or attached.
    Tap {
        /// Interface name, possibly with one `%d`.
        ifname: String,
    },
    /// A UDP tunnel, one frame per datagram.
    Udp {
        /// Address to bind.
        local: SocketAddr,
        /// Peer; learned from the first datagram when `None`.
        remote: Option<SocketAddr>,
    },
    /// Frames replayed from a capture file.
    Pcap {
        /// pcap or pcapng file to read.
        replay: PathBuf,
        /// Pace.
        timing: ReplayTiming,
        /// Times the file is played; 0 = forever.
        repeat: u64,
    },
    /// Everything sent comes back.
    Loopback,
}

impl BackendKind {
    /// The kind's name as written in a spec.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Tap { .. } => "tap",
            Self::Udp { .. } => "udp",
            Self::Pcap { .. } => "pcap",
            Self::Loopback => "loopback",
        }
    }
}

/// A backend as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "config", derive(serde::Deserialize))]
#[cfg_attr(feature = "config", serde(try_from = "RawSpec"))]
pub struct BackendSpec {
    /// Kind and its settings.
    pub kind: BackendKind,
    /// Record the traffic to a pcap file.
    pub record: Option<RecordSpec>,
}

/// A spec that could not be understood. The message names the key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// Nothing was given.
    #[error("empty backend spec: expected tap, udp, pcap or loopback")]
    Empty,
    /// `kind` is not one of ours.
    #[error("unknown backend kind `{0}`: expected tap, udp, pcap or loopback")]
    UnknownKind(String),
    /// A key no kind has.
    #[error("unknown key `{key}` for a {kind} backend")]
    UnknownKey {
        /// The kind.
        kind: String,
        /// The key.
        key: String,
    },
    /// A key of another kind.
    #[error("key `{key}` does not apply to a {kind} backend")]
    KeyNotForKind {
        /// The kind.
        kind: String,
        /// The key.
        key: String,
    },
    /// A required key is absent.
    #[error("a {kind} backend needs `{key}`")]
    MissingKey {
        /// The kind.
        kind: String,
        /// The key.
        key: String,
    },
    /// A key given twice (inline syntax).
    #[error("key `{0}` given twice")]
    DuplicateKey(String),
    /// An inline item is not `key=value`.
    #[error("`{0}` is not key=value")]
    Syntax(String),
    /// A value of the wrong form.
    #[error("bad value for `{key}`: {reason}")]
    BadValue {
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A TOML document that does not parse or does not fit.
    #[error("{0}")]
    Toml(String),
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

/// Every key, flat, as read from either syntax; checked by `TryFrom`.
#[derive(Debug, Default)]
#[cfg_attr(feature = "config", derive(serde::Deserialize))]
#[cfg_attr(feature = "config", serde(deny_unknown_fields))]
struct RawSpec {
    kind: String,
    ifname: Option<String>,
    local: Option<String>,
    remote: Option<String>,
    replay: Option<String>,
    timing: Option<String>,
    repeat: Option<u64>,
    record: Option<String>,
    record_max_bytes: Option<u64>,
    record_max_frames: Option<u64>,
}

/// Keys each kind accepts, besides `kind` and the `record*` keys.
fn kind_keys(kind: &str) -> Option<&'static [&'static str]> {
    match kind {
        "tap" => Some(&["ifname"]),
        "udp" => Some(&["local", "remote"]),
        "pcap" => Some(&["replay", "timing", "repeat"]),
        "loopback" => Some(&[]),
        _ => None,
    }
}

fn addr(key: &str, v: &str) -> Result<SocketAddr, SpecError> {
    v.parse().map_err(|_| SpecError::BadValue {
        key: key.into(),
        reason: format!("`{v}` is not an IP:port address"),
    })
}

impl TryFrom<RawSpec> for BackendSpec {
    type Error = SpecError;

    fn try_from(raw: RawSpec) -> Result<Self, SpecError> {
        let kind = raw.kind.as_str();
        let allowed = kind_keys(kind).ok_or_else(|| SpecError::UnknownKind(kind.into()))?;
        let given = [
            ("ifname", raw.ifname.is_some()),
            ("local", raw.local.is_some()),
            ("remote", raw.remote.is_some()),
            ("replay", raw.replay.is_some()),
            ("timing", raw.timing.is_some()),
            ("repeat", raw.repeat.is_some()),
        ];
        if let Some((key, _)) = given.iter().find(|(k, g)| *g && !allowed.contains(k)) {
            return Err(SpecError::KeyNotForKind {
                kind: kind.into(),
                key: (*key).into(),
            });
        }
        let missing = |key: &str| SpecError::MissingKey {
            kind: kind.into(),
            key: key.into(),
        };
        let backend = match kind {
            "tap" => {
                let ifname = raw.ifname.unwrap_or_else(|| "tap%d".into());
                check_ifname(&ifname)?;
                BackendKind::Tap { ifname }
            }
            "udp" => {
                let local = addr(
                    "local",
                    raw.local.as_deref().ok_or_else(|| missing("local"))?,
                )?;
                let remote = raw
                    .remote
                    .as_deref()
                    .map(|r| addr("remote", r))
                    .transpose()?;
                if let Some(r) = remote.filter(|r| r.is_ipv4() != local.is_ipv4()) {
                    return Err(SpecError::BadValue {
                        key: "remote".into(),
                        reason: format!("{r} and local {local} are not the same IP version"),
                    });
                }
                BackendKind::Udp { local, remote }
            }
            "pcap" => BackendKind::Pcap {
                replay: non_empty("replay", raw.replay.ok_or_else(|| missing("replay"))?)?,
                timing: raw
                    .timing
                    .as_deref()
                    .map(ReplayTiming::from_str)
                    .transpose()
                    .map_err(|reason| SpecError::BadValue {
                        key: "timing".into(),
                        reason,
                    })?
                    .unwrap_or(ReplayTiming::Original),
                repeat: raw.repeat.unwrap_or(1),
            },
            _ => BackendKind::Loopback,
        };
        let limits = RecordLimits {
            max_bytes: raw.record_max_bytes,
            max_frames: raw.record_max_frames,
        };
        let record = match raw.record {
            Some(path) => Some(RecordSpec {
                path: non_empty("record", path)?,
                limits,
            }),
            None if limits != RecordLimits::default() => {
                let key = if limits.max_bytes.is_some() {
                    "record_max_bytes"
                } else {
                    "record_max_frames"
                };
                return Err(SpecError::BadValue {
                    key: key.into(),
                    reason: "only meaningful with record=FILE".into(),
                });
            }
            None => None,
        };
        Ok(Self {
            kind: backend,
            record,
        })
    }
}

fn non_empty(key: &str, v: String) -> Result<PathBuf, SpecError> {
    if v.is_empty() {
        return Err(SpecError::BadValue {
            key: key.into(),
            reason: "empty file name".into(),
        });
    }
    Ok(PathBuf::from(v))
}

fn check_ifname(name: &str) -> Result<(), SpecError> {
    let bad = |reason: String| SpecError::BadValue {
        key: "ifname".into(),
        reason,
    };
    if name.is_empty() || name.len() > 15 {
        return Err(bad(format!("`{name}` must be 1 to 15 bytes long")));
    }
    if name
        .chars()
        .any(|c| c.is_whitespace() || c == '/' || c == ':')
    {
        return Err(bad(format!(
            "`{name}` contains a character Linux does not allow"
        )));
    }
    Ok(())
}

/// Split an inline spec on commas, `,,` standing for a literal comma.
fn split_items(s: &str) -> Vec<String> {
    let mut items = vec![String::new()];
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ',' {
            if chars.peek() == Some(&',') {
                chars.next();
                if let Some(last) = items.last_mut() {
                    last.push(',');
                }
            } else {
                items.push(String::new());
            }
        } else if let Some(last) = items.last_mut() {
            last.push(c);
        }
    }
    items
}

impl BackendSpec {
    /// Parse a QEMU-style spec: `tap,ifname=tap0`,
    /// `udp,local=127.0.0.1:7001,remote=127.0.0.1:7002`,
    /// `pcap,replay=in.pcap,timing=fast,repeat=3`, `loopback`, each optionally with
    /// `record=FILE` (and `record_max_bytes=N`, `record_max_frames=N`).
    pub fn parse_inline(s: &str) -> Result<BackendSpec, SpecError> {
        let mut items = split_items(s.trim()).into_iter();
        let kind = items.next().unwrap_or_default();
        if kind.is_empty() {
            return Err(SpecError::Empty);
        }
        if kind_keys(&kind).is_none() {
            return Err(SpecError::UnknownKind(kind));
        }
        let mut raw = RawSpec {
            kind: kind.clone(),
            ..RawSpec::default()
        };
        for item in items {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| SpecError::Syntax(item.clone()))?;
            let number = |v: &str| {
                v.parse::<u64>().map_err(|_| SpecError::BadValue {
                    key: key.into(),
                    reason: format!("`{v}` is not a non-negative integer"),
                })
            };
            let slot_was_set = match key {
                "ifname" => raw.ifname.replace(value.into()).is_some(),
                "local" => raw.local.replace(value.into()).is_some(),
                "remote" => raw.remote.replace(value.into()).is_some(),
                "replay" => raw.replay.replace(value.into()).is_some(),
                "timing" => raw.timing.replace(value.into()).is_some(),
                "record" => raw.record.replace(value.into()).is_some(),
                "repeat" => raw.repeat.replace(number(value)?).is_some(),
                "record_max_bytes" => raw.record_max_bytes.replace(number(value)?).is_some(),
                "record_max_frames" => raw.record_max_frames.replace(number(value)?).is_some(),
                _ => {
                    return Err(SpecError::UnknownKey {
                        kind,
                        key: key.into(),
                    })
                }
            };
            if slot_was_set {
                return Err(SpecError::DuplicateKey(key.into()));
            }
        }
        BackendSpec::try_from(raw)
    }

    /// Parse one backend table in TOML (`kind = "udp"`, `local = "..."`, ...): what a
    /// `[backends.NAME]` table of backends.toml holds. Errors name the key and line.
    #[cfg(feature = "config")]
    pub fn from_toml(s: &str) -> Result<BackendSpec, SpecError> {
        toml::from_str(s).map_err(|e| SpecError::Toml(e.to_string()))
    }

    /// Build the backend, wrapped in a `PcapRecorder` (feature `pcap`) when
    /// `record` is set. A kind whose cargo feature is off is an error naming the feature.
    pub fn open(&self) -> Result<Box<dyn PacketBackend>, BackendError> {
        let inner = open_kind(&self.kind)?;
        let Some(record) = &self.record else {
            return Ok(inner);
        };
        #[cfg(feature = "pcap")]
        {
            let rec = super::PcapRecorder::create(inner, &record.path, record.limits)?;
            Ok(Box::new(rec))
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

fn open_kind(kind: &BackendKind) -> Result<Box<dyn PacketBackend>, BackendError> {
    #[allow(unused)]
    let disabled = |feature: &'static str| BackendError::FeatureDisabled {
        what: format!("backend kind `{}`", kind.name()),
        feature,
    };
    match kind {
        BackendKind::Loopback => Ok(Box::new(super::Loopback::new())),
        #[cfg(feature = "tap")]
        BackendKind::Tap { ifname } => Ok(Box::new(super::Tap::open(ifname)?)),
        #[cfg(feature = "udp")]
        BackendKind::Udp { local, remote } => Ok(Box::new(super::UdpTunnel::new(*local, *remote)?)),
        #[cfg(feature = "pcap")]
        BackendKind::Pcap {
            replay,
            timing,
            repeat,
        } => Ok(Box::new(super::PcapReplay::open(replay, *timing, *repeat)?)),
        #[allow(unreachable_patterns)]
        BackendKind::Tap { .. } => Err(disabled("tap")),
        #[allow(unreachable_patterns)]
        BackendKind::Udp { .. } => Err(disabled("udp")),
        #[allow(unreachable_patterns)]
        BackendKind::Pcap { .. } => Err(disabled("pcap")),
    }
}

/// A value written back in inline syntax (commas doubled).
fn esc(v: &str) -> String {
    v.replace(',', ",,")
}

impl fmt::Display for BackendSpec {
    /// The inline syntax, which [`BackendSpec::parse_inline`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.name())?;
        match &self.kind {
            BackendKind::Tap { ifname } => write!(f, ",ifname={}", esc(ifname))?,
            BackendKind::Udp { local, remote } => {
                write!(f, ",local={local}")?;
                if let Some(r) = remote {
                    write!(f, ",remote={r}")?;
                }
            }
            BackendKind::Pcap {
                replay,
                timing,
                repeat,
            } => write!(
                f,
                ",replay={},timing={timing},repeat={repeat}",
                esc(&replay.to_string_lossy())
            )?,
            BackendKind::Loopback => {}
        }
        if let Some(r) = &self.record {
            write!(f, ",record={}", esc(&r.path.to_string_lossy()))?;
            if let Some(n) = r.limits.max_bytes {
                write!(f, ",record_max_bytes={n}")?;
            }
            if let Some(n) = r.limits.max_frames {
                write!(f, ",record_max_frames={n}")?;
            }
        }
        Ok(())
    }
}
