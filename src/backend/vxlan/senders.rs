//! The sockets datagrams leave from. The outer UDP source port is either fixed
//! (`src_port=`, or the listening port) or a hash of the inner flow (see [`super::flow`]);
//! a port is a socket bound to it, so hashed ports are sockets opened on first use and
//! kept in a small pool (the least recently used is closed when it is full).

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsFd;

use super::flow::SRC_PORT_RANGE;
use crate::backend::sys;

/// Most sockets kept for hashed source ports.
pub const MAX_POOL: usize = 64;

/// Ports tried, from the hashed one upwards, when it is taken by another socket.
const BIND_TRIES: u16 = 8;

/// Which interface multicast leaves by.
#[derive(Clone, Copy, Debug)]
pub(super) enum McastIface {
    /// The routing table's choice.
    Default,
    /// The IPv4 interface with this address.
    Addr(Ipv4Addr),
    /// The interface with this index.
    Index(u32),
}

/// Options every sending socket gets.
#[derive(Clone, Copy, Debug)]
pub(super) struct SendOpts {
    /// Address the sockets are bound to (unspecified: the routing table picks).
    pub bind_ip: IpAddr,
    /// Unicast TTL / hop limit; the system's when `None`.
    pub ttl: Option<u8>,
    /// Group mode: the interface and the multicast TTL.
    pub mcast: Option<(McastIface, u8)>,
}

impl SendOpts {
    /// Set the options on `s` (non-blocking, DF clear over IPv4, TTLs, multicast
    /// interface, no multicast loopback: a VTEP never hears its own frames).
    pub(super) fn apply(&self, s: &UdpSocket) -> io::Result<()> {
        s.set_nonblocking(true)?;
        let fd = s.as_fd();
        if self.bind_ip.is_ipv4() {
            sys::set_df_clear_v4(fd)?;
            if let Some(t) = self.ttl {
                s.set_ttl(u32::from(t))?;
            }
            if let Some((iface, ttl)) = self.mcast {
                s.set_multicast_loop_v4(false)?;
                s.set_multicast_ttl_v4(u32::from(ttl))?;
                match iface {
                    McastIface::Default => {}
                    McastIface::Addr(ip) => sys::set_multicast_if_v4(fd, ip)?,
                    McastIface::Index(i) => sys::set_multicast_if_v4_index(fd, i)?,
                }
            }
        } else {
            if let Some(t) = self.ttl {
                sys::set_hops_v6(fd, false, t)?;
            }
            if let Some((iface, ttl)) = self.mcast {
                s.set_multicast_loop_v6(false)?;
                sys::set_hops_v6(fd, true, ttl)?;
                if let McastIface::Index(i) = iface {
                    sys::set_multicast_if_v6(fd, i)?;
                }
            }
        }
        Ok(())
    }

    /// A socket bound to `port` with the options set.
    pub(super) fn bind(&self, port: u16) -> io::Result<UdpSocket> {
        let s = UdpSocket::bind(SocketAddr::new(self.bind_ip, port))?;
        self.apply(&s)?;
        Ok(s)
    }
}

/// One hashed port's socket: `None` when no port near it could be bound (frames of
/// that flow leave from the listening socket).
#[derive(Debug)]
pub(super) struct Slot {
    want: u16,
    socket: Option<UdpSocket>,
    used: u64,
}

/// Where datagrams leave from.
#[derive(Debug)]
pub(super) enum Senders {
    /// The listening socket (`src_port` equal to the listening port).
    Listening,
    /// One socket bound to `src_port`.
    Fixed(UdpSocket),
    /// A socket per hashed port.
    Hashed {
        opts: SendOpts,
        pool: Vec<Slot>,
        tick: u64,
    },
}

/// The socket for one datagram.
pub(super) enum Chosen<'a> {
    /// This one.
    Socket(&'a UdpSocket),
    /// The listening socket: the port wanted is the listening one, or could not be
    /// bound (`fallback`).
    Listening {
        /// Whether the port wanted could not be had.
        fallback: bool,
    },
}

impl Senders {
    /// Hashed source ports, sockets made with `opts`.
    pub(super) fn hashed(opts: SendOpts) -> Self {
        Self::Hashed {
            opts,
            pool: Vec::new(),
            tick: 0,
        }
    }

    /// The socket to send a datagram of a flow whose hashed port is `want` (ignored
    /// unless hashing).
    pub(super) fn choose(&mut self, want: u16) -> Chosen<'_> {
        let (opts, pool, tick) = match self {
            Self::Listening => return Chosen::Listening { fallback: false },
            Self::Fixed(s) => return Chosen::Socket(s),
            Self::Hashed { opts, pool, tick } => (opts, pool, tick),
        };
        *tick += 1;
        let i = match pool.iter().position(|s| s.want == want) {
            Some(i) => i,
            None => {
                let socket = (0..BIND_TRIES).find_map(|k| {
                    let span = SRC_PORT_RANGE.end - SRC_PORT_RANGE.start;
                    let off = (want.saturating_sub(SRC_PORT_RANGE.start) + k) % span;
                    opts.bind(SRC_PORT_RANGE.start + off).ok()
                });
                let slot = Slot {
                    want,
                    socket,
                    used: *tick,
                };
                if pool.len() < MAX_POOL {
                    pool.push(slot);
                    pool.len() - 1
                } else {
                    let lru = pool
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, s)| s.used)
                        .map_or(0, |(i, _)| i);
                    pool[lru] = slot;
                    lru
                }
            }
        };
        let slot = &mut pool[i];
        slot.used = *tick;
        match &slot.socket {
            Some(s) => Chosen::Socket(s),
            None => Chosen::Listening { fallback: true },
        }
    }

    /// Sockets open for hashed ports.
    pub(super) fn pool_len(&self) -> usize {
        match self {
            Self::Hashed { pool, .. } => pool.iter().filter(|s| s.socket.is_some()).count(),
            _ => 0,
        }
    }
}
