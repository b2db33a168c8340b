//! UDP tunnel: one bare Ethernet frame per datagram, no header, as QEMU's
//! `-netdev dgram` (and the older `-netdev socket,udp=`) sends them. Two nic-emu
//! instances, or nic-emu and a QEMU, can be joined this way without root.
//!
//! With a multicast group instead of a peer ([`UdpTunnel::multicast`]), any number of
//! members share one segment: the wire of QEMU's `-netdev dgram` with a multicast
//! `remote`. Datagrams are received on a socket bound to the group's port (shared with
//! the other members on the host through `SO_REUSEADDR`) and sent from a second socket
//! of their own, so that a member recognises its own frames, which the kernel loops
//! back, by their source address and does not receive them.
//!
//! A peer that goes away: the tunnel asks the kernel for ICMP errors (`IP_RECVERR`), so a
//! peer whose port is closed (or whose host is unreachable) is noticed, counted
//! (`peer_unreachable`) and logged with rate limiting; a remote learned from the first
//! datagram is then forgotten, so that a peer coming back on another port is learned
//! anew. The guest's link does not follow: a UDP wire is connectionless, a quiet peer
//! looks the same as a gone one, a peer behind a firewall sends no ICMP at all, and a
//! segment whose other end is away is still a working cable (as a switch port whose
//! other hosts are off). Frames go on leaving, and reach the peer once it is back.

use std::io::{self, ErrorKind};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, RawFd};

use super::sys::RecvBatch;
use super::{sys, BackendCounter, PacketBackend, MAX_FRAME};

/// Datagrams taken from the socket per `recvmmsg` call unless `NIC_EMU_UDP_RX_BATCH`
/// says otherwise (1: one datagram per call).
pub const DEFAULT_RX_BATCH: usize = 32;

/// The receive batch size from `NIC_EMU_UDP_RX_BATCH` (1 to 64), or the default. The
/// VXLAN backend takes its batches the same way.
pub(crate) fn rx_batch_from_env() -> usize {
    std::env::var("NIC_EMU_UDP_RX_BATCH")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .map_or(DEFAULT_RX_BATCH, |n| n.clamp(1, sys::MAX_BATCH))
}

/// A send that failed for a reason that passes (or concerns one datagram only): the
/// frame is dropped and counted, the backend goes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SendFailure {
    /// The socket buffer is full (or the call was interrupted).
    Full,
    /// The datagram is too big (`EMSGSIZE`).
    TooBig,
    /// An ICMP error from an earlier datagram: the peer is not listening (yet).
    Refused,
    /// No route to the peer (the network is down or unreachable).
    NoRoute,
}

impl SendFailure {
    /// Why, for the log.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Full => "socket buffer full",
            Self::TooBig => "frame too big",
            Self::Refused => "peer refused",
            Self::NoRoute => "no route to the peer",
        }
    }
}

/// Which [`SendFailure`] `e` is, if it is one; `None` is an error worth reporting.
pub(crate) fn send_failure(e: &io::Error) -> Option<SendFailure> {
    match (e.kind(), e.raw_os_error()) {
        (ErrorKind::WouldBlock | ErrorKind::Interrupted, _) => Some(SendFailure::Full),
        (_, Some(libc::EMSGSIZE)) => Some(SendFailure::TooBig),
        (ErrorKind::ConnectionRefused, _) => Some(SendFailure::Refused),
        (_, Some(libc::ENETUNREACH | libc::EHOSTUNREACH)) => Some(SendFailure::NoRoute),
        _ => None,
    }
}

/// Counters of a [`UdpTunnel`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UdpCounters {
    /// Frames sent.
    pub sent: u64,
    /// Frames received and returned by `recv`.
    pub received: u64,
    /// Frames not sent: no remote known yet, socket buffer full, too big, or no route.
    pub send_dropped: u64,
    /// Datagrams larger than the caller's buffer, or empty, dropped.
    pub rx_dropped: u64,
    /// Datagrams from an address other than the remote, dropped.
    pub rx_foreign: u64,
    /// Multicast: our own frames looped back by the kernel, not received.
    pub rx_own: u64,
    /// Receive system calls made (`recvmmsg`, each taking up to the batch size of
    /// datagrams), the ones that found nothing included.
    pub rx_calls: u64,
    /// ICMP errors about datagrams sent to the peer (port unreachable: nobody listens
    /// there; host or network unreachable).
    pub peer_unreachable: u64,
}

/// The multicast side of a tunnel: the socket that sends, and its address (how our own
/// looped-back datagrams are recognised).
#[derive(Debug)]
struct McastSender {
    socket: UdpSocket,
    source: SocketAddr,
}

/// A UDP socket carrying Ethernet frames to and from one peer.
#[derive(Debug)]
pub struct UdpTunnel {
    socket: UdpSocket,
    local: SocketAddr,
    remote: Option<SocketAddr>,
    learn: bool,
    /// Multicast: datagrams go out through this socket; `remote` is the group and
    /// `socket` receives.
    mcast: Option<McastSender>,
    /// Datagrams received in one `recvmmsg` and not yet returned. A slot holds a whole
    /// frame; a longer datagram is known by its full length and dropped, never cut.
    rx: RecvBatch,
    counters: UdpCounters,
}

impl UdpTunnel {
    /// Bind `local` and send to `remote`. Without `remote`, the peer is learned from the
    /// first datagram received (frames sent before that are dropped and counted); from
    /// then on, as with a configured remote, datagrams from other addresses are dropped.
    pub fn new(local: SocketAddr, remote: Option<SocketAddr>) -> io::Result<Self> {
        let socket = UdpSocket::bind(local)
            .map_err(|e| io::Error::new(e.kind(), format!("udp: cannot bind {local}: {e}")))?;
        socket.set_nonblocking(true)?;
        let local = socket.local_addr()?;
        if let Err(e) = sys::set_recverr(socket.as_fd(), local.is_ipv6()) {
            log::info!("udp {local}: no ICMP errors from the peer ({e}): a peer gone unseen");
        }
        log::info!(
            "udp {local}: tunnel to {}",
            remote.map_or_else(
                || "(learned from the first datagram)".to_string(),
                |r| r.to_string()
            )
        );
        Ok(Self {
            socket,
            local,
            remote,
            learn: remote.is_none(),
            mcast: None,
            rx: RecvBatch::new(rx_batch_from_env(), MAX_FRAME),
            counters: UdpCounters::default(),
        })
    }

    /// Join multicast `group` (on the interface with address `iface`, or the one the
    /// routing table picks): every frame sent goes to all members, and every member's
    /// frames arrive here, except our own.
    pub fn multicast(group: SocketAddrV4, iface: Option<Ipv4Addr>) -> io::Result<Self> {
        let ctx = |what: &str, e: io::Error| {
            io::Error::new(e.kind(), format!("udp mcast {group}: {what}: {e}"))
        };
        let if_addr = iface.unwrap_or(Ipv4Addr::UNSPECIFIED);
        let socket = sys::udp_reuseaddr_bound(group).map_err(|e| ctx("cannot bind", e))?;
        socket
            .join_multicast_v4(group.ip(), &if_addr)
            .map_err(|e| ctx(&join_failure(iface), e))?;
        let sender = UdpSocket::bind(SocketAddrV4::new(if_addr, 0))
            .map_err(|e| ctx("cannot bind the sending socket", e))?;
        sender.set_nonblocking(true)?;
        sender
            .set_multicast_loop_v4(true)
            .map_err(|e| ctx("IP_MULTICAST_LOOP", e))?;
        sender
            .set_multicast_ttl_v4(1)
            .map_err(|e| ctx("IP_MULTICAST_TTL", e))?;
        if let Some(ip) = iface {
            sys::set_multicast_if_v4(sender.as_fd(), ip)
                .map_err(|e| ctx(&format!("IP_MULTICAST_IF {ip}"), e))?;
        }
        // Connecting fixes the source address the kernel picks for the group (honouring
        // IP_MULTICAST_IF): the address our looped-back datagrams come from.
        sender.connect(group).map_err(|e| {
            ctx(
                "no route to the group (a multicast route or local=IFACE-IP is needed)",
                e,
            )
        })?;
        let source = sender.local_addr()?;
        log::info!("udp mcast {group}: joined, sending from {source}");
        Ok(Self {
            socket,
            local: SocketAddr::V4(group),
            remote: Some(SocketAddr::V4(group)),
            learn: false,
            mcast: Some(McastSender {
                socket: sender,
                source,
            }),
            rx: RecvBatch::new(rx_batch_from_env(), MAX_FRAME),
            counters: UdpCounters::default(),
        })
    }

    /// Multicast: the address our datagrams leave from.
    pub fn multicast_source(&self) -> Option<SocketAddr> {
        self.mcast.as_ref().map(|m| m.source)
    }

    /// The bound address (with the real port when `local` asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The peer: configured, learned, or not known yet.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.remote
    }

    /// Whether the remote was learned rather than configured.
    pub fn remote_learned(&self) -> bool {
        self.learn && self.remote.is_some()
    }

    /// Take up to `n` (1 to 64) datagrams from the socket per system call
    /// (`recvmmsg`); 1 is one datagram per call. Datagrams already taken are kept.
    pub fn set_rx_batch(&mut self, n: usize) {
        if !self.rx.pending() {
            self.rx = RecvBatch::new(n, MAX_FRAME);
        }
    }

    /// Datagrams taken per receive system call at most.
    pub fn rx_batch(&self) -> usize {
        self.rx.capacity()
    }

    /// Counters so far.
    pub fn counters(&self) -> UdpCounters {
        self.counters
    }

    /// The kernel passed on an ICMP error about a datagram sent to the peer: count it,
    /// clear the error queue, log now and then, and forget a learned remote.
    fn peer_unreachable(&mut self, e: &io::Error) {
        let queued = sys::drain_error_queue(self.socket.as_fd()) as u64;
        self.counters.peer_unreachable += queued.max(1);
        let n = self.counters.peer_unreachable;
        let peer = self
            .remote
            .map_or_else(|| "the peer".to_string(), |r| r.to_string());
        if crate::log_limit::worth_logging(n) {
            log::warn!(
                "udp {}: {peer} unreachable ({e}): nothing listens there now; frames sent to \
                 it are lost until it is back ({n} ICMP error(s) so far)",
                self.local
            );
        }
        if self.learn && self.remote.take().is_some() {
            log::info!(
                "udp {}: forgetting the learned remote {peer}: the sender of the next \
                 datagram becomes the peer",
                self.local
            );
        }
    }

    fn drop_tx(&mut self, why: &str) -> io::Result<bool> {
        self.counters.send_dropped += 1;
        if crate::log_limit::worth_logging(self.counters.send_dropped) {
            log::warn!(
                "udp {}: frame not sent ({why}); {} dropped so far",
                self.local,
                self.counters.send_dropped
            );
        }
        Ok(false)
    }
}

/// The errors an ICMP message about a sent datagram turns into.
fn is_unreachable(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ECONNREFUSED | libc::EHOSTUNREACH | libc::ENETUNREACH | libc::EHOSTDOWN)
    )
}

impl PacketBackend for UdpTunnel {
    fn name(&self) -> String {
        match &self.mcast {
            Some(_) => format!("udp mcast {}", self.local),
            None => format!("udp {}", self.local),
        }
    }

    fn send(&mut self, frame: &[u8]) -> io::Result<bool> {
        let Some(remote) = self.remote else {
            return self.drop_tx("no remote address learned yet");
        };
        let sent = match &self.mcast {
            Some(m) => m.socket.send(frame),
            None => self.socket.send_to(frame, remote),
        };
        match sent {
            Ok(_) => {
                self.counters.sent += 1;
                Ok(true)
            }
            Err(e) => match send_failure(&e) {
                Some(f) => {
                    // An ICMP error from an earlier datagram: the peer is not listening
                    // (yet), or cannot be reached.
                    if is_unreachable(&e) && self.mcast.is_none() {
                        self.peer_unreachable(&e);
                    }
                    self.drop_tx(f.as_str())
                }
                None => Err(io::Error::new(
                    e.kind(),
                    format!("udp {}: send to {remote}: {e}", self.local),
                )),
            },
        }
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        // Bounded: every dropped datagram is consumed, so each turn makes progress.
        for _ in 0..64 {
            if !self.rx.pending() {
                self.counters.rx_calls += 1;
                match self.rx.fill(self.socket.as_fd()) {
                    Ok(0) => return Ok(None),
                    Ok(_) => {}
                    // An ICMP error from an earlier datagram: note it, try again at once.
                    Err(e) if is_unreachable(&e) => {
                        self.peer_unreachable(&e);
                        continue;
                    }
                    Err(e) => {
                        return Err(io::Error::new(
                            e.kind(),
                            format!("udp {}: receive: {e}", self.local),
                        ))
                    }
                }
            }
            let Some(d) = self.rx.take() else { continue };
            let (n, from) = (d.len, d.from);
            if let Some(m) = &self.mcast {
                if from == Some(m.source) {
                    self.counters.rx_own += 1;
                    continue;
                }
            } else if let Some(r) = self.remote.filter(|r| Some(*r) != from) {
                if self.counters.rx_foreign == 0 {
                    log::warn!(
                        "udp {}: ignoring datagrams from {} (peer is {r})",
                        self.local,
                        from.map_or_else(|| "an unknown address".to_string(), |f| f.to_string())
                    );
                }
                self.counters.rx_foreign += 1;
                continue;
            }
            match (buf.get_mut(..n), d.data.get(..n)) {
                (Some(dst), Some(src)) if n > 0 => {
                    dst.copy_from_slice(src);
                    self.counters.received += 1;
                    if self.remote.is_none() {
                        // Learned only from a datagram that was a usable frame.
                        if let Some(from) = from {
                            log::info!("udp {}: learned remote {from}", self.local);
                            self.remote = Some(from);
                        }
                    }
                    return Ok(Some(n));
                }
                _ => {
                    self.counters.rx_dropped += 1;
                    if crate::log_limit::worth_logging(self.counters.rx_dropped) {
                        log::warn!(
                            "udp {}: dropped a {n}-byte datagram (frames up to {} bytes); \
                             {} dropped so far",
                            self.local,
                            buf.len().min(MAX_FRAME),
                            self.counters.rx_dropped
                        );
                    }
                }
            }
        }
        Ok(None)
    }

    fn rx_fd(&self) -> Option<RawFd> {
        Some(self.socket.as_raw_fd())
    }

    /// Datagrams of the last batch still to be returned are ready now: the socket may
    /// be empty (not readable) while they wait for ring space.
    fn next_rx_deadline(&self) -> Option<std::time::Instant> {
        self.rx.pending().then(std::time::Instant::now)
    }

    fn backend_counters(&self) -> Vec<BackendCounter> {
        let c = self.counters;
        let counter = |name, help, value| BackendCounter::new("udp", name, help, value);
        vec![
            counter("sent", "Frames sent", c.sent),
            counter("received", "Frames received", c.received),
            counter(
                "send_dropped",
                "Frames not sent: no remote yet, buffer full, too big, peer unreachable",
                c.send_dropped,
            ),
            counter(
                "rx_dropped",
                "Datagrams empty or larger than a frame, dropped",
                c.rx_dropped,
            ),
            counter(
                "rx_foreign",
                "Datagrams from an address other than the peer, dropped",
                c.rx_foreign,
            ),
            counter(
                "rx_own",
                "Multicast: own frames looped back, not received",
                c.rx_own,
            ),
            counter("rx_calls", "Receive system calls", c.rx_calls),
            counter(
                "peer_unreachable",
                "ICMP errors about frames sent to the peer (port or host unreachable)",
                c.peer_unreachable,
            ),
        ]
    }
}

/// What a failed IP_ADD_MEMBERSHIP means for the user. Without `local=`, the kernel
/// joins on the interface its route to the group goes through; where there is none
/// (containers, network namespaces, hosts without a default route) that is ENODEV.
fn join_failure(iface: Option<Ipv4Addr>) -> String {
    match iface {
        Some(ip) => {
            format!("cannot join the group on the interface with address {ip} (local={ip})")
        }
        None => "cannot join the group on the interface of the route to it (no local= given): \
                 pick the interface with local=IFACE-IP, e.g. local=127.0.0.1 to stay on this \
                 host, or add a multicast route (ip route add 224.0.0.0/4 dev IFACE)"
            .to_string(),
    }
}
