//! The sockets datagrams leave from. The outer UDP source port is either fixed
//! (`src_port=`, or the listening port) or picked by the inner flow's hash (see
//! [`super::flow`]): then one socket per bucket of the port range, all opened with the
//! backend, so sending never opens a socket (and every socket is in the network
//! namespace the backend was opened in).

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsFd;

use super::flow::{bucket_port, PORT_BUCKETS, SRC_PORT_RANGE};
use crate::backend::sys;

/// Ports tried, from a bucket's first port upwards, when it is taken by another socket.
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

/// Where datagrams leave from.
#[derive(Debug)]
pub(super) enum Senders {
    /// The listening socket (`src_port` equal to the listening port).
    Listening,
    /// One socket bound to `src_port`.
    Fixed(UdpSocket),
    /// A socket per bucket of the port range; `None` where no port of the bucket's first
    /// few could be bound (that bucket's flows leave from the listening socket).
    Hashed(Vec<Option<UdpSocket>>),
}

/// The socket for one datagram.
pub(super) enum Chosen<'a> {
    /// This one.
    Socket(&'a UdpSocket),
    /// The listening socket: the port wanted is the listening one, or its bucket had no
    /// socket (`fallback`).
    Listening {
        /// Whether the bucket had no socket.
        fallback: bool,
    },
}

impl Senders {
    /// A socket for each bucket of the hashed port range, made with `opts`.
    pub(super) fn hashed(opts: &SendOpts) -> Self {
        let span = SRC_PORT_RANGE.end - SRC_PORT_RANGE.start;
        let pool = (0..PORT_BUCKETS)
            .map(|i| {
                let first = bucket_port(i) - SRC_PORT_RANGE.start;
                (0..BIND_TRIES)
                    .find_map(|k| opts.bind(SRC_PORT_RANGE.start + (first + k) % span).ok())
            })
            .collect();
        Self::Hashed(pool)
    }

    /// The socket to send a datagram of a flow in `bucket` (ignored unless hashing).
    pub(super) fn choose(&self, bucket: usize) -> Chosen<'_> {
        match self {
            Self::Listening => Chosen::Listening { fallback: false },
            Self::Fixed(s) => Chosen::Socket(s),
            Self::Hashed(pool) => match pool.get(bucket).and_then(Option::as_ref) {
                Some(s) => Chosen::Socket(s),
                None => Chosen::Listening { fallback: true },
            },
        }
    }

    /// The source port datagrams of a flow in `bucket` leave from, given the listening
    /// port.
    pub(super) fn port(&self, bucket: usize, listening: u16) -> u16 {
        let port = |s: &UdpSocket| s.local_addr().map_or(listening, |a| a.port());
        match self.choose(bucket) {
            Chosen::Socket(s) => port(s),
            Chosen::Listening { .. } => listening,
        }
    }

    /// Sockets open for hashed ports.
    pub(super) fn pool_len(&self) -> usize {
        match self {
            Self::Hashed(pool) => pool.iter().flatten().count(),
            _ => 0,
        }
    }
}
