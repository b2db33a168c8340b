//! VXLAN (RFC 7348): each Ethernet frame travels in a UDP datagram (port 4789) behind an
//! 8-byte header naming its segment, the 24-bit VNI. This is the overlay Linux's `vxlan`
//! devices, Open vSwitch and EVPN fabrics speak, so a nic-emu guest joins a segment that
//! spans hosts without root and without a tap.
//!
//! Two ways to find the other VTEPs (tunnel endpoints):
//! - **one peer** (`remote=HOST[:PORT]`): every frame goes there, as with Linux's
//!   `ip link add vx0 type vxlan id 42 remote HOST dstport 4789`;
//! - **flood and learn** (`group=ADDR[:PORT]`, IPv4 or IPv6 multicast): broadcast,
//!   multicast and unknown unicast go to the group; the outer source address of every
//!   frame received is learned for its inner source MAC ([`Fdb`]: bounded, aged), and
//!   unicast to a learned MAC goes straight to that VTEP.
//!
//! Either way nic-emu listens on the port (4789, or `local=IP:PORT` with a peer) and
//! takes datagrams from any VTEP, as Linux does: the VNI is the segment's boundary.
//! Datagrams that are not frames of this segment are counted by reason and dropped:
//! another VNI, the I flag clear, a header cut short, an inner frame shorter than an
//! Ethernet header or larger than the device takes. Flags and reserved fields other than
//! I are ignored, as RFC 7348 says receivers must (Linux drops such frames unless told
//! otherwise); they are counted and logged, so a sender that uses them is visible.
//!
//! The outer source port is picked by a hash of the inner flow, in Linux's default range
//! (see [`flow_src_port`]; one socket per [`PORT_BUCKETS`]th of the range), unless
//! `src_port=` fixes it. IPv4 datagrams leave without DF, as
//! with Linux's default `df unset`: see [`OVERHEAD_V4`] for the path MTU a 1500-byte inner
//! MTU needs, which nic-emu logs once at start.

use std::io::{self, ErrorKind};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::Instant;

use super::params::{VxlanHost, VxlanLocal, VxlanPeer, VxlanSpec};
use super::sys::{self, RecvBatch};
use super::udp::{rx_batch_from_env, send_failure, SendFailure};
use super::BackendCounter;
use super::{PacketBackend, MAX_FRAME};
use crate::log_limit::worth_logging;

mod fdb;
mod flow;
mod header;
mod senders;

pub use fdb::{Fdb, Learned, DEFAULT_AGEING, DEFAULT_MAX_ENTRIES};
pub use flow::{flow_hash, src_port as flow_src_port, PORT_BUCKETS, SRC_PORT_RANGE};
pub use header::{
    decode as decode_header, encode as encode_header, Header, HeaderError, FLAG_I, HEADER_LEN,
    OVERHEAD_V4, OVERHEAD_V6,
};
use senders::{Chosen, McastIface, SendOpts, Senders};

/// Bytes of an Ethernet header: the shortest inner frame taken or sent.
const ETH_HLEN: usize = 14;

/// Counters of a [`Vxlan`] backend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VxlanCounters {
    /// Frames sent.
    pub tx_frames: u64,
    /// Group mode: frames sent to the group (broadcast, multicast, unknown unicast).
    pub tx_flooded: u64,
    /// Group mode: frames sent to the VTEP their destination MAC was learned behind.
    pub tx_learned: u64,
    /// Frames not sent: socket buffer full, peer refused, no route, too big, or shorter
    /// than an Ethernet header.
    pub tx_dropped: u64,
    /// Of those, frames the kernel refused as too big (`EMSGSIZE`).
    pub tx_too_big: u64,
    /// Frames sent from the listening port because no port of their flow's bucket could
    /// be bound.
    pub tx_src_port_fallback: u64,
    /// Frames received and returned by `recv`.
    pub rx_frames: u64,
    /// Datagrams for another VNI, dropped.
    pub rx_other_vni: u64,
    /// Datagrams without the I flag, dropped.
    pub rx_no_i_flag: u64,
    /// Datagrams shorter than the VXLAN header, dropped.
    pub rx_short_header: u64,
    /// Inner frames shorter than an Ethernet header, dropped.
    pub rx_inner_short: u64,
    /// Inner frames larger than the device takes, dropped.
    pub rx_inner_oversize: u64,
    /// Frames with flags or reserved fields set besides I: delivered (RFC 7348: ignored
    /// on receipt), counted.
    pub rx_reserved_ignored: u64,
    /// Receive system calls made (`recvmmsg`), the ones that found nothing included.
    pub rx_calls: u64,
    /// Group mode: MACs learned.
    pub fdb_learned: u64,
    /// Group mode: MACs seen behind another VTEP than before.
    pub fdb_moved: u64,
    /// Group mode: MACs not learned because the table was full.
    pub fdb_full: u64,
    /// Group mode: entries forgotten after the ageing time.
    pub fdb_aged: u64,
}

impl VxlanCounters {
    /// Every datagram received and dropped.
    pub fn rx_dropped(&self) -> u64 {
        self.rx_other_vni
            + self.rx_no_i_flag
            + self.rx_short_header
            + self.rx_inner_short
            + self.rx_inner_oversize
    }
}

/// Where frames go.
#[derive(Debug)]
enum Mode {
    Remote(SocketAddr),
    Group { group: SocketAddr, fdb: Box<Fdb> },
}

/// A VXLAN tunnel endpoint carrying one segment (VNI).
#[derive(Debug)]
pub struct Vxlan {
    /// Receives; sends too when the source port is the listening one.
    socket: UdpSocket,
    local: SocketAddr,
    vni: u32,
    mode: Mode,
    senders: Senders,
    /// Datagrams of the last `recvmmsg`; a slot holds a header and the largest frame.
    rx: RecvBatch,
    tx_buf: Vec<u8>,
    counters: VxlanCounters,
    label: String,
}

fn ctx_err(label: &str, what: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{label}: {what}: {e}"))
}

/// The peer's address: the IP, or the first address `name` resolves to (of the family
/// of `local`, when that is an address).
fn resolve(host: &VxlanHost, port: u16, local: Option<&VxlanLocal>) -> io::Result<SocketAddr> {
    let name = match host {
        VxlanHost::Ip(ip) => return Ok(SocketAddr::new(*ip, port)),
        VxlanHost::Name(n) => n,
    };
    let want_v4 = match local {
        Some(VxlanLocal::Addr { ip, .. }) => Some(ip.is_ipv4()),
        _ => None,
    };
    let addrs = (name.as_str(), port).to_socket_addrs().map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("vxlan: cannot resolve remote {name}: {e}"),
        )
    })?;
    let mut first = None;
    for a in addrs {
        if want_v4.is_none_or(|v4| a.is_ipv4() == v4) {
            return Ok(a);
        }
        first.get_or_insert(a);
    }
    Err(io::Error::new(
        ErrorKind::NotFound,
        match first {
            Some(a) => format!(
                "vxlan: remote {name} resolves to {} but local is of the other IP version",
                a.ip()
            ),
            None => format!("vxlan: remote {name} has no address"),
        },
    ))
}

fn unspecified(v4: bool) -> IpAddr {
    if v4 {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    }
}

/// The MTU a path needs for a 1500-byte inner MTU, and the inner MTU a 1500-byte path
/// takes, over IPv4 or IPv6: 1550 and 1450, 1570 and 1430.
fn mtu_note(v4: bool) -> (usize, usize, &'static str) {
    let (overhead, ipv) = if v4 {
        (OVERHEAD_V4, "IPv4")
    } else {
        (OVERHEAD_V6, "IPv6")
    };
    (1500 + overhead, 1500 - overhead, ipv)
}

impl Vxlan {
    /// Open the endpoint `spec` describes: bind the port, join the group (group mode),
    /// resolve the peer (peer mode). Errors name what failed and, where there is one,
    /// the setting that would fix it.
    pub fn open(spec: &VxlanSpec) -> io::Result<Self> {
        let vni = spec.vni;
        let (mode, listen) = match &spec.peer {
            VxlanPeer::Remote { host, port } => {
                let peer = resolve(host, *port, spec.local.as_ref())?;
                let listen = match &spec.local {
                    Some(VxlanLocal::Addr { ip, port: lp }) => {
                        SocketAddr::new(*ip, lp.unwrap_or(*port))
                    }
                    _ => SocketAddr::new(unspecified(peer.is_ipv4()), *port),
                };
                (Mode::Remote(peer), listen)
            }
            VxlanPeer::Group(g) => (
                Mode::Group {
                    group: *g,
                    fdb: Box::default(),
                },
                SocketAddr::new(unspecified(g.is_ipv4()), g.port()),
            ),
        };
        let label = format!("vxlan vni {vni}");
        let socket = UdpSocket::bind(listen).map_err(|e| {
            let hint = if e.kind() == ErrorKind::AddrInUse {
                format!(
                    " (another VTEP, such as a Linux vxlan device with dstport {}, listens \
                     on it in this network namespace; one VTEP per address and port)",
                    listen.port()
                )
            } else {
                String::new()
            };
            io::Error::new(
                e.kind(),
                format!("{label}: cannot bind {listen}: {e}{hint}"),
            )
        })?;
        let local = socket.local_addr()?;
        let v4 = local.is_ipv4();
        let mcast = match &mode {
            Mode::Group { group, .. } => Some(join(&socket, group.ip(), spec, &label)?),
            Mode::Remote(_) => None,
        };
        let opts = SendOpts {
            bind_ip: match &spec.local {
                Some(VxlanLocal::Addr { ip, .. }) if matches!(mode, Mode::Remote(_)) => *ip,
                _ => unspecified(v4),
            },
            ttl: spec.ttl,
            mcast: mcast.map(|iface| (iface, spec.ttl.unwrap_or(1))),
        };
        opts.apply(&socket)
            .map_err(|e| ctx_err(&label, "socket options", e))?;
        let senders = match spec.src_port {
            Some(p) if p == local.port() => Senders::Listening,
            Some(p) => Senders::Fixed(
                opts.bind(p)
                    .map_err(|e| ctx_err(&label, &format!("cannot bind src_port={p}"), e))?,
            ),
            None => Senders::hashed(&opts),
        };
        let label = match &mode {
            Mode::Remote(peer) => format!("{label} {local} -> {peer}"),
            Mode::Group { group, .. } => format!("{label} {local} group {group}"),
        };
        log::info!(
            "{label}: open; outer source port {}",
            match spec.src_port {
                Some(p) => p.to_string(),
                None => format!(
                    "by inner flow ({}-{})",
                    SRC_PORT_RANGE.start,
                    SRC_PORT_RANGE.end - 1
                ),
            }
        );
        let (path_mtu, inner_mtu, ipv) = mtu_note(v4);
        log::info!(
            "{label}: a 1500-byte inner MTU needs a path MTU of {path_mtu} over {ipv} \
             (VXLAN adds {} bytes). Over a smaller one the datagrams sent from here are \
             fragmented ({}) and reassembled by the receiving VTEP, but Linux's vxlan sends \
             none fragmented over IPv6, nor over IPv4 for inner packets with DF: there, or \
             where fragments are lost, set the guest's MTU to {inner_mtu} (ip link set eth0 \
             mtu {inner_mtu})",
            path_mtu - 1500,
            if v4 {
                "sent without DF, as Linux's vxlan does by default"
            } else {
                "by this host, to the path MTU it knows"
            }
        );
        if let Some(VxlanLocal::Iface(name)) = &spec.local {
            warn_small_mtu(&label, name, path_mtu);
        }
        Ok(Self {
            socket,
            local,
            vni,
            mode,
            senders,
            rx: RecvBatch::new(rx_batch_from_env(), MAX_FRAME + HEADER_LEN),
            tx_buf: Vec::with_capacity(MAX_FRAME + HEADER_LEN),
            counters: VxlanCounters::default(),
            label,
        })
    }

    /// The bound address (with the real port when `local` asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The segment.
    pub fn vni(&self) -> u32 {
        self.vni
    }

    /// Counters so far.
    pub fn counters(&self) -> VxlanCounters {
        let mut c = self.counters;
        if let Mode::Group { fdb, .. } = &self.mode {
            c.fdb_aged = fdb.aged();
        }
        c
    }

    /// Group mode: the VTEP a MAC was learned behind (and has not aged out).
    pub fn learned_vtep(&mut self, mac: [u8; 6]) -> Option<IpAddr> {
        match &mut self.mode {
            Mode::Group { fdb, .. } => fdb.lookup(&mac, Instant::now()),
            Mode::Remote(_) => None,
        }
    }

    /// Sockets open for hashed source ports: one per bucket ([`PORT_BUCKETS`]) whose
    /// ports were not all taken; none with a fixed `src_port`.
    pub fn source_port_sockets(&self) -> usize {
        self.senders.pool_len()
    }

    /// The outer source port `frame` would leave from.
    pub fn source_port_for(&self, frame: &[u8]) -> u16 {
        self.senders
            .port(flow::bucket(flow::flow_hash(frame)), self.local.port())
    }

    /// Take up to `n` (1 to 64) datagrams per receive system call; datagrams already
    /// taken are kept.
    pub fn set_rx_batch(&mut self, n: usize) {
        if !self.rx.pending() {
            self.rx = RecvBatch::new(n, MAX_FRAME + HEADER_LEN);
        }
    }

    fn drop_tx(&mut self, why: &str) -> io::Result<bool> {
        self.counters.tx_dropped += 1;
        if worth_logging(self.counters.tx_dropped) {
            log::warn!(
                "{}: frame not sent ({why}); {} dropped so far",
                self.label,
                self.counters.tx_dropped
            );
        }
        Ok(false)
    }

    /// Where a frame for `dst` goes, counting flooded and learned sends.
    fn destination(&mut self, dst: [u8; 6]) -> SocketAddr {
        match &mut self.mode {
            Mode::Remote(peer) => *peer,
            Mode::Group { group, fdb } => {
                let learned = (dst[0] & 1 == 0)
                    .then(|| fdb.lookup(&dst, Instant::now()))
                    .flatten();
                match learned {
                    Some(ip) => {
                        self.counters.tx_learned += 1;
                        SocketAddr::new(ip, group.port())
                    }
                    None => {
                        self.counters.tx_flooded += 1;
                        *group
                    }
                }
            }
        }
    }
}

/// Join `group` on the interface `spec.local` names (or the routing table's), and say
/// which interface multicast leaves by.
fn join(
    socket: &UdpSocket,
    group: IpAddr,
    spec: &VxlanSpec,
    label: &str,
) -> io::Result<McastIface> {
    let index = |name: &str| {
        sys::if_index(name)
            .map_err(|e| ctx_err(label, &format!("local={name}: no such interface"), e))
    };
    let (iface, joined) = match (group, &spec.local) {
        (IpAddr::V4(g), Some(VxlanLocal::Iface(name))) => {
            let i = index(name)?;
            (
                McastIface::Index(i),
                sys::join_multicast_v4_index(socket.as_fd(), g, i),
            )
        }
        (
            IpAddr::V4(g),
            Some(VxlanLocal::Addr {
                ip: IpAddr::V4(a), ..
            }),
        ) => (McastIface::Addr(*a), socket.join_multicast_v4(&g, a)),
        (IpAddr::V4(g), _) => (
            McastIface::Default,
            socket.join_multicast_v4(&g, &Ipv4Addr::UNSPECIFIED),
        ),
        (IpAddr::V6(g), Some(VxlanLocal::Iface(name))) => {
            let i = index(name)?;
            (McastIface::Index(i), socket.join_multicast_v6(&g, i))
        }
        (IpAddr::V6(g), _) => (McastIface::Default, socket.join_multicast_v6(&g, 0)),
    };
    joined.map_err(|e| {
        let hint = if e.raw_os_error() == Some(libc::ENODEV) && spec.local.is_none() {
            " (no route to the group: name the interface with local=IFNAME, e.g. local=eth0)"
        } else {
            ""
        };
        io::Error::new(
            e.kind(),
            format!("{label}: cannot join group {group}: {e}{hint}"),
        )
    })?;
    Ok(iface)
}

/// Warn when interface `name`'s MTU is below what a 1500-byte inner MTU needs.
fn warn_small_mtu(label: &str, name: &str, path_mtu: usize) {
    let mtu = std::fs::read_to_string(format!("/sys/class/net/{name}/mtu"))
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok());
    if let Some(mtu) = mtu.filter(|&m| m < path_mtu) {
        log::warn!(
            "{label}: {name} has MTU {mtu}, below the {path_mtu} a 1500-byte inner MTU \
             needs: large frames will be fragmented (guest MTU {} avoids it)",
            mtu.saturating_sub(path_mtu - 1500)
        );
    }
}

impl PacketBackend for Vxlan {
    fn name(&self) -> String {
        self.label.clone()
    }

    fn send(&mut self, frame: &[u8]) -> io::Result<bool> {
        let Some(dst) = frame.first_chunk::<6>().filter(|_| frame.len() >= ETH_HLEN) else {
            return self.drop_tx("shorter than an Ethernet header");
        };
        let to = self.destination(*dst);
        let bucket = match self.senders {
            Senders::Hashed(_) => flow::bucket(flow::flow_hash(frame)),
            _ => 0,
        };
        self.tx_buf.clear();
        self.tx_buf.extend_from_slice(&header::encode(self.vni));
        self.tx_buf.extend_from_slice(frame);
        let sent = match self.senders.choose(bucket) {
            Chosen::Socket(s) => s.send_to(&self.tx_buf, to),
            Chosen::Listening { fallback } => {
                if fallback {
                    self.counters.tx_src_port_fallback += 1;
                }
                self.socket.send_to(&self.tx_buf, to)
            }
        };
        match sent {
            Ok(_) => {
                self.counters.tx_frames += 1;
                Ok(true)
            }
            Err(e) => match send_failure(&e) {
                Some(SendFailure::TooBig) => {
                    self.counters.tx_too_big += 1;
                    let why = format!(
                        "{} bytes with VXLAN's headers are too big for the path to {to} \
                         (EMSGSIZE); {} such so far",
                        frame.len() + HEADER_LEN,
                        self.counters.tx_too_big
                    );
                    self.drop_tx(&why)
                }
                Some(f) => self.drop_tx(f.as_str()),
                None => Err(io::Error::new(
                    e.kind(),
                    format!("{}: send to {to}: {e}", self.label),
                )),
            },
        }
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let room = buf.len().min(MAX_FRAME);
        let c = &mut self.counters;
        // Bounded: every dropped datagram is consumed, so each turn makes progress.
        for _ in 0..64 {
            if !self.rx.pending() {
                c.rx_calls += 1;
                match self.rx.fill(self.socket.as_fd()) {
                    Ok(0) => return Ok(None),
                    Ok(_) => {}
                    // An ICMP error from an earlier datagram: try again at once.
                    Err(e) if e.kind() == ErrorKind::ConnectionRefused => continue,
                    Err(e) => {
                        return Err(io::Error::new(
                            e.kind(),
                            format!("{}: receive: {e}", self.label),
                        ))
                    }
                }
            }
            let Some(d) = self.rx.take() else { continue };
            let from = d.from;
            let from_s = || from.map_or_else(|| "an unknown sender".into(), |f| f.to_string());
            let h = match header::decode(d.data) {
                Ok(h) => h,
                Err(header::HeaderError::Short) => {
                    c.rx_short_header += 1;
                    if worth_logging(c.rx_short_header) {
                        log::warn!(
                            "{}: dropped a {}-byte datagram from {}: shorter than the \
                             VXLAN header; {} so far",
                            self.label,
                            d.len,
                            from_s(),
                            c.rx_short_header
                        );
                    }
                    continue;
                }
                Err(header::HeaderError::NoIFlag) => {
                    c.rx_no_i_flag += 1;
                    if worth_logging(c.rx_no_i_flag) {
                        log::warn!(
                            "{}: dropped a datagram from {} without the I flag (flags \
                             {:#04x}): no valid VNI; {} so far",
                            self.label,
                            from_s(),
                            d.data.first().copied().unwrap_or(0),
                            c.rx_no_i_flag
                        );
                    }
                    continue;
                }
            };
            if h.vni != self.vni {
                c.rx_other_vni += 1;
                if worth_logging(c.rx_other_vni) {
                    log::warn!(
                        "{}: dropped a frame for VNI {} from {}; {} for other VNIs so far",
                        self.label,
                        h.vni,
                        from_s(),
                        c.rx_other_vni
                    );
                }
                continue;
            }
            let inner = d.len - HEADER_LEN;
            if inner < ETH_HLEN || inner > room {
                let (n, what) = if inner < ETH_HLEN {
                    c.rx_inner_short += 1;
                    (c.rx_inner_short, "shorter than an Ethernet header")
                } else {
                    c.rx_inner_oversize += 1;
                    (c.rx_inner_oversize, "larger than the device takes")
                };
                if worth_logging(n) {
                    log::warn!(
                        "{}: dropped a {inner}-byte inner frame from {}: {what} \
                         ({ETH_HLEN} to {room} bytes); {n} so far",
                        self.label,
                        from_s()
                    );
                }
                continue;
            }
            if h.reserved_set {
                c.rx_reserved_ignored += 1;
                if worth_logging(c.rx_reserved_ignored) {
                    log::info!(
                        "{}: a frame from {} has flags or reserved bits set besides I \
                         (header {:02x?}): ignored as RFC 7348 says, frame delivered; {} so far",
                        self.label,
                        from_s(),
                        d.data.get(..HEADER_LEN).unwrap_or_default(),
                        c.rx_reserved_ignored
                    );
                }
            }
            let (Some(dst), Some(src)) = (buf.get_mut(..inner), d.data.get(HEADER_LEN..d.len))
            else {
                continue;
            };
            dst.copy_from_slice(src);
            c.rx_frames += 1;
            if let (Mode::Group { fdb, .. }, Some(from)) = (&mut self.mode, from) {
                let mut mac = [0u8; 6];
                mac.copy_from_slice(&src[6..12]);
                match fdb.learn(mac, from.ip(), Instant::now()) {
                    Learned::New => {
                        c.fdb_learned += 1;
                        log::debug!("{}: learned {mac:02x?} behind {}", self.label, from.ip());
                    }
                    Learned::Moved { from: old } => {
                        c.fdb_moved += 1;
                        if worth_logging(c.fdb_moved) {
                            log::info!(
                                "{}: {mac:02x?} moved from {old} to {}; {} moves so far",
                                self.label,
                                from.ip(),
                                c.fdb_moved
                            );
                        }
                    }
                    Learned::Full => {
                        c.fdb_full += 1;
                        if worth_logging(c.fdb_full) {
                            log::warn!(
                                "{}: forwarding table full ({} entries): {mac:02x?} not \
                                 learned (its frames are flooded); {} so far",
                                self.label,
                                fdb.len(),
                                c.fdb_full
                            );
                        }
                    }
                    Learned::Refreshed | Learned::NotUnicast => {}
                }
            }
            return Ok(Some(inner));
        }
        Ok(None)
    }

    fn rx_fd(&self) -> Option<RawFd> {
        Some(self.socket.as_raw_fd())
    }

    /// Datagrams of the last batch still to be returned are ready now.
    fn next_rx_deadline(&self) -> Option<Instant> {
        self.rx.pending().then(Instant::now)
    }

    fn backend_counters(&self) -> Vec<BackendCounter> {
        let c = self.counters();
        let all: [(&str, &'static str, u64); 18] = [
            ("tx_frames", "Frames sent to VTEPs", c.tx_frames),
            (
                "tx_flooded",
                "Frames sent to the multicast group",
                c.tx_flooded,
            ),
            ("tx_learned", "Frames sent to a learned VTEP", c.tx_learned),
            ("tx_dropped", "Frames not sent", c.tx_dropped),
            (
                "tx_too_big",
                "Frames the kernel refused as too big (EMSGSIZE)",
                c.tx_too_big,
            ),
            (
                "tx_src_port_fallback",
                "Frames sent from the listening port: their hashed source port was taken",
                c.tx_src_port_fallback,
            ),
            ("rx_frames", "Frames received for this VNI", c.rx_frames),
            (
                "rx_other_vni",
                "Datagrams for another VNI, dropped",
                c.rx_other_vni,
            ),
            (
                "rx_no_i_flag",
                "Datagrams without the I flag, dropped",
                c.rx_no_i_flag,
            ),
            (
                "rx_short_header",
                "Datagrams shorter than the VXLAN header, dropped",
                c.rx_short_header,
            ),
            (
                "rx_inner_short",
                "Inner frames shorter than an Ethernet header, dropped",
                c.rx_inner_short,
            ),
            (
                "rx_inner_oversize",
                "Inner frames larger than the device takes, dropped",
                c.rx_inner_oversize,
            ),
            (
                "rx_reserved_ignored",
                "Frames with reserved bits set, delivered (RFC 7348)",
                c.rx_reserved_ignored,
            ),
            ("rx_calls", "Receive system calls", c.rx_calls),
            ("fdb_learned", "MACs learned", c.fdb_learned),
            ("fdb_moved", "MACs seen behind another VTEP", c.fdb_moved),
            ("fdb_full", "MACs not learned: table full", c.fdb_full),
            ("fdb_aged", "Entries aged out", c.fdb_aged),
        ];
        all.iter()
            .map(|&(n, help, v)| BackendCounter::new("vxlan", n, help, v))
            .collect()
    }
}

impl Drop for Vxlan {
    /// What went through, once, when the endpoint closes.
    fn drop(&mut self) {
        let c = self.counters();
        log::info!(
            "{}: {} frames sent ({} flooded, {} to learned VTEPs, {} dropped, {} too big), \
             {} received; dropped on receipt: {} other VNI, {} without I flag, {} short \
             header, {} inner too short, {} inner too large; {} with reserved bits \
             delivered; {} MACs learned",
            self.label,
            c.tx_frames,
            c.tx_flooded,
            c.tx_learned,
            c.tx_dropped,
            c.tx_too_big,
            c.rx_frames,
            c.rx_other_vni,
            c.rx_no_i_flag,
            c.rx_short_header,
            c.rx_inner_short,
            c.rx_inner_oversize,
            c.rx_reserved_ignored,
            c.fdb_learned
        );
    }
}
