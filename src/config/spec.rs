//! Backend specifications: a backend as the user configured it, from a QEMU-style
//! string (`udp,local=127.0.0.1:7001,remote=127.0.0.1:7002`) or a `[backends.NAME]`
//! table of backends.toml; [`BackendSpec::open_for`] (`factory.rs`) builds it.
//!
//! Keys, the same in both syntaxes:
//!
//! | kind       | keys                                                          |
//! |------------|---------------------------------------------------------------|
//! | `tap`      | `ifname` (default `tap%d`; `%d` is replaced by the kernel), or `fd`: a tap descriptor inherited from whoever started nic-emu |
//! | `udp`      | `local` (required), `remote` (learned when absent); or `mcast` (`GROUP:PORT`, IPv4) with `local` the interface address (optional) |
//! | `vxlan`    | `vni` (required, 0 to 16777215); `remote` (`HOST[:PORT]`, port 4789 by default) or `group` (`ADDR[:PORT]`, IPv4 or IPv6 multicast); `local` (with `remote`: `IP[:PORT]` to send from and listen on; with `group`: the interface, by address (IPv4) or name); `ttl`; `src_port` (fixed outer source port) |
//! | `stream`   | `connect` or `listen`: `unix:PATH` or `IP:PORT`               |
//! | `pcap`     | `replay` (required), `timing` (`original`, `fast`, `<N>pps`; default `original`), `repeat` (times played, 0 = forever; default 1), `rewrite_dst` (`guest` or a MAC: destination of unicast frames), `rewrite_src` (a MAC) |
//! | `loopback` | none                                                          |
//! | any        | `record` (pcap file of both directions), `record_max_bytes`, `record_max_frames` |
//! | any        | impairments: `loss`, `dup`, `corrupt`, `reorder` (percent), `delay`, `jitter` (`20ms`), `rate` (`1mbit`), each also as `rx_KEY`/`tx_KEY` for one direction; `seed` |
//!
//! In the inline syntax the kind comes first, then `key=value` items separated by
//! commas; a comma inside a value is written `,,` (as in QEMU).

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};

use crate::backend::impair::ImpairSpec;
use crate::backend::params::{DstRewrite, RecordLimits, ReplayTiming, Rewrite, VxlanSpec};
use crate::backend::stream::{StreamAddr, StreamRole};

mod parse;
mod vxlan;

/// Whether `name` can be a Linux interface name: 1 to 15 bytes, no white space, `/` or
/// `:`.
fn valid_ifname(name: &str) -> bool {
    (1..=15).contains(&name.len())
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c == '/' || c == ':')
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
    /// A tap descriptor inherited from whoever started this process (QEMU's
    /// `-netdev tap,fd=N`): the opener kept the privilege.
    TapFd {
        /// The descriptor number.
        fd: i32,
    },
    /// A UDP tunnel, one frame per datagram.
    Udp {
        /// Address to bind.
        local: SocketAddr,
        /// Peer; learned from the first datagram when `None`.
        remote: Option<SocketAddr>,
    },
    /// A UDP multicast group: every member gets every frame (but not its own).
    Mcast {
        /// Group and port.
        group: SocketAddrV4,
        /// Address of the interface to use; the routing table decides when `None`.
        iface: Option<Ipv4Addr>,
    },
    /// VXLAN (RFC 7348): Ethernet frames in UDP with a segment identifier, to one peer
    /// or a multicast group.
    Vxlan(VxlanSpec),
    /// QEMU's `-netdev stream` framing over a Unix or TCP socket.
    Stream {
        /// Where.
        addr: StreamAddr,
        /// Connect or listen.
        role: StreamRole,
    },
    /// Frames replayed from a capture file.
    Pcap {
        /// pcap or pcapng file to read.
        replay: PathBuf,
        /// Pace.
        timing: ReplayTiming,
        /// Times the file is played; 0 = forever.
        repeat: u64,
        /// Address rewriting.
        rewrite: Rewrite,
    },
    /// Everything sent comes back.
    Loopback,
}

impl BackendKind {
    /// The kind's name as written in a spec.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Tap { .. } | Self::TapFd { .. } => "tap",
            Self::Udp { .. } | Self::Mcast { .. } => "udp",
            Self::Vxlan(_) => "vxlan",
            Self::Stream { .. } => "stream",
            Self::Pcap { .. } => "pcap",
            Self::Loopback => "loopback",
        }
    }
}

/// A backend as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "config", derive(serde::Deserialize))]
#[cfg_attr(feature = "config", serde(try_from = "parse::RawSpec"))]
pub struct BackendSpec {
    /// Kind and its settings.
    pub kind: BackendKind,
    /// Record the traffic to a pcap file.
    pub record: Option<RecordSpec>,
    /// Impair the traffic (loss, delay, ...).
    pub impair: Option<ImpairSpec>,
}

/// A spec that could not be understood. The message names the key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// Nothing was given.
    #[error("empty backend spec: expected tap, udp, vxlan, stream, pcap or loopback")]
    Empty,
    /// `kind` is not one of ours.
    #[error("unknown backend kind `{0}`: expected tap, udp, vxlan, stream, pcap or loopback")]
    UnknownKind(String),
    /// A key no kind has.
    #[error("unknown key `{key}` for a {kind} backend; {}", expected_keys(kind))]
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

/// "tap takes `ifname`, and any backend ..." for an unknown-key message.
fn expected_keys(kind: &str) -> String {
    let own = parse::kind_keys(kind)
        .unwrap_or(&[])
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>();
    let own = if own.is_empty() {
        format!("{kind} takes no keys of its own")
    } else {
        format!("{kind} takes {}", own.join(", "))
    };
    format!(
        "{own}; any backend takes `record`, `record_max_bytes`, `record_max_frames` and \
         the impairments (`loss`, `delay`, ..., `rx_KEY`, `tx_KEY`, `seed`)"
    )
}

impl BackendSpec {
    /// Make the relative paths of this spec (`record`, `replay`, a `unix:` stream socket)
    /// relative to `base` rather than to the working directory: a backends.toml's paths
    /// are relative to the file's own directory.
    pub fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        if let Some(r) = &mut self.record {
            fix(&mut r.path);
        }
        match &mut self.kind {
            BackendKind::Pcap { replay, .. } => fix(replay),
            BackendKind::Stream {
                addr: StreamAddr::Unix(p),
                ..
            } => fix(p),
            _ => {}
        }
    }

    /// The checks that need no backend opened: the file a replay reads can be opened,
    /// and the directory a recording is written to exists. (`--print-config` makes them;
    /// opening the backend would fail the same way.)
    pub fn check_paths(&self) -> io::Result<()> {
        if let BackendKind::Pcap { replay, .. } = &self.kind {
            std::fs::File::open(replay).map_err(|e| {
                io::Error::new(e.kind(), format!("replay file {}: {e}", replay.display()))
            })?;
        }
        if let Some(r) = &self.record {
            let dir = match r.path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            if !dir.is_dir() {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!(
                        "record file {}: directory {} does not exist",
                        r.path.display(),
                        dir.display()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The keys and values of this spec (without `kind`), as
    /// [`parse_inline`](Self::parse_inline) and backends.toml read them back.
    pub fn items(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = Vec::new();
        let mut put = |k: &str, val: String| v.push((k.to_string(), val));
        match &self.kind {
            BackendKind::Tap { ifname } => put("ifname", ifname.clone()),
            BackendKind::TapFd { fd } => put("fd", fd.to_string()),
            BackendKind::Udp { local, remote } => {
                put("local", local.to_string());
                if let Some(r) = remote {
                    put("remote", r.to_string());
                }
            }
            BackendKind::Mcast { group, iface } => {
                put("mcast", group.to_string());
                if let Some(i) = iface {
                    put("local", i.to_string());
                }
            }
            BackendKind::Vxlan(x) => v.extend(x.items()),
            BackendKind::Stream { addr, role } => match role {
                StreamRole::Connect => put("connect", addr.to_string()),
                StreamRole::Listen => put("listen", addr.to_string()),
            },
            BackendKind::Pcap {
                replay,
                timing,
                repeat,
                rewrite,
            } => {
                put("replay", replay.to_string_lossy().into_owned());
                put("timing", timing.to_string());
                put("repeat", repeat.to_string());
                match rewrite.dst {
                    Some(DstRewrite::Guest) => put("rewrite_dst", "guest".into()),
                    Some(DstRewrite::Mac(m)) => put("rewrite_dst", m.to_string()),
                    None => {}
                }
                if let Some(m) = rewrite.src {
                    put("rewrite_src", m.to_string());
                }
            }
            BackendKind::Loopback => {}
        }
        if let Some(imp) = &self.impair {
            v.extend(imp.items());
        }
        if let Some(r) = &self.record {
            v.push(("record".into(), r.path.to_string_lossy().into_owned()));
            if let Some(n) = r.limits.max_bytes {
                v.push(("record_max_bytes".into(), n.to_string()));
            }
            if let Some(n) = r.limits.max_frames {
                v.push(("record_max_frames".into(), n.to_string()));
            }
        }
        v
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
        for (k, v) in self.items() {
            write!(f, ",{k}={}", esc(&v))?;
        }
        Ok(())
    }
}
