//! What each backend is opened with, as plain values: the settings of a pcap replay
//! (timing, address rewriting), of a recording (limits), of a VXLAN segment and of an
//! impairment ([`impair`]). The configuration (`crate::config`) reads them from a spec and
//! the control socket from its requests; the backends take them. Built whatever the
//! features, since a spec names any kind.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::str::FromStr;

use crate::mac::MacAddress;

pub mod impair;

/// The destination a replay writes into unicast frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DstRewrite {
    /// The guest's MAC (the one the device starts with).
    Guest,
    /// This MAC.
    Mac(MacAddress),
}

/// Address rewriting of replayed frames (what tcprewrite's `--enet-dmac/--enet-smac` do).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rewrite {
    /// New destination of unicast frames (broadcast and multicast are left alone).
    pub dst: Option<DstRewrite>,
    /// New source of every frame.
    pub src: Option<MacAddress>,
}

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

/// The UDP port IANA assigned to VXLAN, and the default of `remote` and `group`.
pub const VXLAN_PORT: u16 = 4789;

/// The largest VXLAN network identifier (24 bits).
pub const MAX_VNI: u32 = (1 << 24) - 1;

/// A host: an IP address, or a DNS name resolved when the backend opens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VxlanHost {
    /// An IPv4 or IPv6 address.
    Ip(IpAddr),
    /// A name.
    Name(String),
}

/// Where frames go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VxlanPeer {
    /// One VTEP: every frame goes to it (`remote=HOST[:PORT]`).
    Remote {
        /// The peer.
        host: VxlanHost,
        /// Its VXLAN port, which is also the port nic-emu listens on unless `local`
        /// names another.
        port: u16,
    },
    /// A multicast group (`group=ADDR[:PORT]`): frames for unknown, broadcast and
    /// multicast destinations go to the group; unicast to a MAC learned from a received
    /// frame goes to the VTEP it came from. The port is also the one nic-emu listens on.
    Group(SocketAddr),
}

/// What `local` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VxlanLocal {
    /// An address of this host: with `remote`, the source address (and, with a port, the
    /// port listened on); with an IPv4 `group`, the interface that has it.
    Addr {
        /// The address.
        ip: IpAddr,
        /// The port to listen on (`remote` only); the peer's port when `None`.
        port: Option<u16>,
    },
    /// An interface, by name: the one a `group` is joined on and sent to.
    Iface(String),
}

/// A `vxlan` backend as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VxlanSpec {
    /// VXLAN network identifier (24 bits): the segment.
    pub vni: u32,
    /// Peer or group.
    pub peer: VxlanPeer,
    /// Source address, listening port or multicast interface.
    pub local: Option<VxlanLocal>,
    /// Outer IP TTL (hop limit). Default: the system's for unicast, 1 for the group.
    pub ttl: Option<u8>,
    /// Fixed outer UDP source port. Default: a hash of the inner flow, in Linux's
    /// default range (see `backend::vxlan`).
    pub src_port: Option<u16>,
}

impl fmt::Display for VxlanHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip(ip) => write!(f, "{ip}"),
            Self::Name(n) => f.write_str(n),
        }
    }
}

/// `host:port`, an IPv6 address in brackets.
pub(crate) fn host_port(host: &VxlanHost, port: u16) -> String {
    match host {
        VxlanHost::Ip(IpAddr::V6(ip)) => format!("[{ip}]:{port}"),
        h => format!("{h}:{port}"),
    }
}

impl fmt::Display for VxlanLocal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Addr { ip, port: None } => write!(f, "{ip}"),
            Self::Addr { ip, port: Some(p) } => f.write_str(&host_port(&VxlanHost::Ip(*ip), *p)),
            Self::Iface(name) => f.write_str(name),
        }
    }
}

impl VxlanSpec {
    /// The keys and values of this spec, as the parser reads them back.
    pub(crate) fn items(&self) -> Vec<(String, String)> {
        let mut v = Vec::new();
        match &self.peer {
            VxlanPeer::Remote { host, port } => v.push(("remote".into(), host_port(host, *port))),
            VxlanPeer::Group(g) => v.push(("group".into(), g.to_string())),
        }
        v.push(("vni".into(), self.vni.to_string()));
        if let Some(l) = &self.local {
            v.push(("local".into(), l.to_string()));
        }
        if let Some(t) = self.ttl {
            v.push(("ttl".into(), t.to_string()));
        }
        if let Some(p) = self.src_port {
            v.push(("src_port".into(), p.to_string()));
        }
        v
    }
}
