//! Reading a spec: both syntaxes fill one flat [`RawSpec`], which `TryFrom` checks
//! (keys of the kind, required keys, values) with errors that name the key.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

use super::{valid_ifname, vxlan, BackendKind, BackendSpec, RecordSpec, SpecError};
use crate::backend::impair::{is_impair_key, ImpairSpec};
use crate::backend::params::{DstRewrite, RecordLimits, ReplayTiming, Rewrite};
use crate::backend::stream::StreamRole;
use crate::mac::MacAddress;

/// A value of a key kept as given: TOML may give a number where the inline syntax
/// gives text.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "config", derive(serde::Deserialize))]
#[cfg_attr(feature = "config", serde(untagged))]
#[cfg_attr(not(feature = "config"), allow(dead_code))]
enum RawValue {
    Int(i64),
    Float(f64),
    Text(String),
    Bool(bool),
}

impl RawValue {
    fn text(&self) -> String {
        match self {
            Self::Int(n) => n.to_string(),
            Self::Float(x) => x.to_string(),
            Self::Text(s) => s.clone(),
            Self::Bool(b) => b.to_string(),
        }
    }
}

/// Every key, flat, as read from either syntax; checked by `TryFrom`. Keys not named
/// here land in `other`, where only the impairment keys are accepted.
#[derive(Debug, Default)]
#[cfg_attr(feature = "config", derive(serde::Deserialize))]
pub(super) struct RawSpec {
    kind: String,
    ifname: Option<String>,
    fd: Option<u64>,
    local: Option<String>,
    remote: Option<String>,
    mcast: Option<String>,
    group: Option<String>,
    vni: Option<u64>,
    ttl: Option<u64>,
    src_port: Option<u64>,
    connect: Option<String>,
    listen: Option<String>,
    replay: Option<String>,
    timing: Option<String>,
    repeat: Option<u64>,
    rewrite_dst: Option<String>,
    rewrite_src: Option<String>,
    record: Option<String>,
    record_max_bytes: Option<u64>,
    record_max_frames: Option<u64>,
    #[cfg_attr(feature = "config", serde(flatten))]
    other: BTreeMap<String, RawValue>,
}

/// Keys each kind accepts, besides `kind`, the `record*` keys and the impairments.
pub(super) fn kind_keys(kind: &str) -> Option<&'static [&'static str]> {
    match kind {
        "tap" => Some(&["ifname", "fd"]),
        "udp" => Some(&["local", "remote", "mcast"]),
        "vxlan" => Some(&["remote", "group", "vni", "local", "ttl", "src_port"]),
        "stream" => Some(&["connect", "listen"]),
        "pcap" => Some(&["replay", "timing", "repeat", "rewrite_dst", "rewrite_src"]),
        "loopback" => Some(&[]),
        _ => None,
    }
}

fn bad(key: &str, reason: impl Into<String>) -> SpecError {
    SpecError::BadValue {
        key: key.into(),
        reason: reason.into(),
    }
}

fn mac(key: &str, v: &str) -> Result<MacAddress, SpecError> {
    v.parse().map_err(|_| {
        bad(
            key,
            format!("`{v}` is not a MAC address like 52:54:00:12:34:56"),
        )
    })
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
        if let Some(key) = raw.other.keys().find(|k| !is_impair_key(k)) {
            return Err(SpecError::UnknownKey {
                kind: kind.into(),
                key: key.clone(),
            });
        }
        let given = [
            ("ifname", raw.ifname.is_some()),
            ("fd", raw.fd.is_some()),
            ("local", raw.local.is_some()),
            ("remote", raw.remote.is_some()),
            ("mcast", raw.mcast.is_some()),
            ("group", raw.group.is_some()),
            ("vni", raw.vni.is_some()),
            ("ttl", raw.ttl.is_some()),
            ("src_port", raw.src_port.is_some()),
            ("connect", raw.connect.is_some()),
            ("listen", raw.listen.is_some()),
            ("replay", raw.replay.is_some()),
            ("timing", raw.timing.is_some()),
            ("repeat", raw.repeat.is_some()),
            ("rewrite_dst", raw.rewrite_dst.is_some()),
            ("rewrite_src", raw.rewrite_src.is_some()),
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
            "tap" => match raw.fd {
                Some(_) if raw.ifname.is_some() => {
                    return Err(bad("fd", "give either ifname or fd, not both"))
                }
                Some(fd) => BackendKind::TapFd {
                    fd: i32::try_from(fd)
                        .map_err(|_| bad("fd", format!("{fd} is not a descriptor number")))?,
                },
                None => {
                    let ifname = raw.ifname.unwrap_or_else(|| "tap%d".into());
                    check_ifname(&ifname)?;
                    BackendKind::Tap { ifname }
                }
            },
            "udp" if raw.mcast.is_some() => udp_mcast(&raw)?,
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
                    return Err(bad(
                        "remote",
                        format!("{r} and local {local} are not the same IP version"),
                    ));
                }
                BackendKind::Udp { local, remote }
            }
            "vxlan" => BackendKind::Vxlan(vxlan::parse(vxlan::RawVxlan {
                remote: raw.remote.as_deref(),
                group: raw.group.as_deref(),
                vni: raw.vni,
                local: raw.local.as_deref(),
                ttl: raw.ttl,
                src_port: raw.src_port,
            })?),
            "stream" => {
                let (key, role, v) = match (&raw.connect, &raw.listen) {
                    (Some(v), None) => ("connect", StreamRole::Connect, v),
                    (None, Some(v)) => ("listen", StreamRole::Listen, v),
                    (Some(_), Some(_)) => {
                        return Err(bad("listen", "give either connect or listen, not both"))
                    }
                    (None, None) => return Err(missing("connect` or `listen")),
                };
                BackendKind::Stream {
                    addr: v.parse().map_err(|e: String| bad(key, e))?,
                    role,
                }
            }
            "pcap" => BackendKind::Pcap {
                replay: non_empty("replay", raw.replay.ok_or_else(|| missing("replay"))?)?,
                timing: raw
                    .timing
                    .as_deref()
                    .map(ReplayTiming::from_str)
                    .transpose()
                    .map_err(|reason| bad("timing", reason))?
                    .unwrap_or(ReplayTiming::Original),
                repeat: raw.repeat.unwrap_or(1),
                rewrite: Rewrite {
                    dst: raw
                        .rewrite_dst
                        .as_deref()
                        .map(|v| match v {
                            "guest" => Ok(DstRewrite::Guest),
                            _ => mac("rewrite_dst", v).map(DstRewrite::Mac),
                        })
                        .transpose()?,
                    src: raw
                        .rewrite_src
                        .as_deref()
                        .map(|v| mac("rewrite_src", v))
                        .transpose()?,
                },
            },
            _ => BackendKind::Loopback,
        };
        let mut impair = None;
        for (key, value) in &raw.other {
            impair
                .get_or_insert_with(ImpairSpec::default)
                .set(key, &value.text())
                .map_err(|reason| bad(key, reason))?;
        }
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
                return Err(bad(key, "only meaningful with record=FILE"));
            }
            None => None,
        };
        Ok(Self {
            kind: backend,
            record,
            impair,
        })
    }
}

/// `udp,mcast=GROUP:PORT[,local=IFACE-IP]`.
fn udp_mcast(raw: &RawSpec) -> Result<BackendKind, SpecError> {
    if raw.remote.is_some() {
        return Err(bad(
            "remote",
            "a multicast segment has no remote: every member of `mcast` gets the frames",
        ));
    }
    let v = raw.mcast.as_deref().unwrap_or_default();
    let group = match addr("mcast", v)? {
        SocketAddr::V4(g) if g.ip().is_multicast() && g.port() != 0 => g,
        SocketAddr::V4(_) => {
            return Err(bad(
                "mcast",
                format!("`{v}` is not an IPv4 multicast group (224.0.0.0/4) with a port"),
            ))
        }
        SocketAddr::V6(_) => return Err(bad("mcast", "only IPv4 multicast is supported")),
    };
    let iface = raw
        .local
        .as_deref()
        .map(|l| match l.parse::<IpAddr>() {
            Ok(IpAddr::V4(ip)) => Ok(ip),
            _ => Err(bad(
                "local",
                format!("`{l}` is not the IPv4 address of an interface (with mcast, local is the interface)"),
            )),
        })
        .transpose()?;
    Ok(BackendKind::Mcast { group, iface })
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
    if !valid_ifname(name) {
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
    /// `udp,local=127.0.0.1:7001,remote=127.0.0.1:7002`, `vxlan,remote=192.0.2.7,vni=42`,
    /// `pcap,replay=in.pcap,timing=fast,repeat=3`, `loopback`, each optionally with
    /// `record=FILE` (and `record_max_bytes=N`, `record_max_frames=N`).
    pub fn parse_inline(s: &str) -> Result<BackendSpec, SpecError> {
        // Values are taken as given, spaces included, as backends.toml takes them (and
        // as Display writes them); only the kind may have spaces around it.
        let mut items = split_items(s).into_iter();
        let kind = items.next().unwrap_or_default().trim().to_string();
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
                "fd" => raw.fd.replace(number(value)?).is_some(),
                "local" => raw.local.replace(value.into()).is_some(),
                "remote" => raw.remote.replace(value.into()).is_some(),
                "mcast" => raw.mcast.replace(value.into()).is_some(),
                "group" => raw.group.replace(value.into()).is_some(),
                "vni" => raw.vni.replace(number(value)?).is_some(),
                "ttl" => raw.ttl.replace(number(value)?).is_some(),
                "src_port" => raw.src_port.replace(number(value)?).is_some(),
                "connect" => raw.connect.replace(value.into()).is_some(),
                "listen" => raw.listen.replace(value.into()).is_some(),
                "rewrite_dst" => raw.rewrite_dst.replace(value.into()).is_some(),
                "rewrite_src" => raw.rewrite_src.replace(value.into()).is_some(),
                k if is_impair_key(k) => raw
                    .other
                    .insert(k.into(), RawValue::Text(value.into()))
                    .is_some(),
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
}
