//! Reading the `vxlan` kind's keys (both syntaxes) into its settings
//! ([`VxlanSpec`](crate::backend::params::VxlanSpec)): which segment (`vni`), where the
//! other VTEPs are (`remote` for one peer, `group` for a multicast group with
//! flood-and-learn), and how datagrams leave (`local`, `ttl`, `src_port`).

use std::net::{IpAddr, SocketAddr};

use super::SpecError;
use crate::backend::params::{VxlanHost, VxlanLocal, VxlanPeer, VxlanSpec, MAX_VNI, VXLAN_PORT};

/// The raw values of the vxlan keys, as either syntax gives them.
pub(super) struct RawVxlan<'a> {
    pub remote: Option<&'a str>,
    pub group: Option<&'a str>,
    pub vni: Option<u64>,
    pub local: Option<&'a str>,
    pub ttl: Option<u64>,
    pub src_port: Option<u64>,
}

fn bad(key: &str, reason: impl Into<String>) -> SpecError {
    SpecError::BadValue {
        key: key.into(),
        reason: reason.into(),
    }
}

/// `ADDR`, `ADDR:PORT`, `[V6]` or `[V6]:PORT` as an address and an optional port.
fn ip_port(v: &str) -> Option<(IpAddr, Option<u16>)> {
    if let Ok(ip) = v.parse::<IpAddr>() {
        return Some((ip, None));
    }
    if let Ok(sa) = v.parse::<SocketAddr>() {
        return Some((sa.ip(), Some(sa.port())));
    }
    v.strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .and_then(|r| r.parse::<std::net::Ipv6Addr>().ok())
        .map(|ip| (IpAddr::V6(ip), None))
}

/// A DNS name as RFC 1123 allows one: letters, digits, `-` and `.`, not all digits.
fn host_name(v: &str) -> Option<String> {
    let ok = !v.is_empty()
        && v.len() <= 253
        && v.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && !v.chars().all(|c| c.is_ascii_digit() || c == '.');
    ok.then(|| v.to_string())
}

fn port_of(key: &str, p: Option<u16>) -> Result<u16, SpecError> {
    match p {
        Some(0) => Err(bad(key, "port 0 is not a destination")),
        Some(p) => Ok(p),
        None => Ok(VXLAN_PORT),
    }
}

/// `remote=HOST[:PORT]`.
fn remote(v: &str) -> Result<VxlanPeer, SpecError> {
    let (host, port) = match ip_port(v) {
        Some((ip, port)) => (VxlanHost::Ip(ip), port),
        None => {
            let (name, port) = match v.rsplit_once(':') {
                Some((n, p)) => (
                    n,
                    Some(p.parse::<u16>().map_err(|_| {
                        bad("remote", format!("`{p}` in `{v}` is not a port number"))
                    })?),
                ),
                None => (v, None),
            };
            let name = host_name(name).ok_or_else(|| {
                bad(
                    "remote",
                    format!("`{v}` is not HOST[:PORT] (an IP address, [IPv6], or a host name)"),
                )
            })?;
            (VxlanHost::Name(name), port)
        }
    };
    if let VxlanHost::Ip(ip) = host {
        if ip.is_multicast() {
            return Err(bad(
                "remote",
                format!("{ip} is a multicast group: use group= for flood-and-learn"),
            ));
        }
        if ip.is_unspecified() {
            return Err(bad("remote", format!("{ip} is no peer")));
        }
    }
    Ok(VxlanPeer::Remote {
        host,
        port: port_of("remote", port)?,
    })
}

/// `group=ADDR[:PORT]`.
fn group(v: &str) -> Result<SocketAddr, SpecError> {
    let (ip, port) = ip_port(v).ok_or_else(|| {
        bad(
            "group",
            format!("`{v}` is not a multicast address (239.1.1.1, ff05::42) with an optional port"),
        )
    })?;
    if !ip.is_multicast() {
        return Err(bad(
            "group",
            format!("{ip} is not a multicast address (224.0.0.0/4 or ff00::/8)"),
        ));
    }
    Ok(SocketAddr::new(ip, port_of("group", port)?))
}

/// `local=IP[:PORT]` or `local=IFNAME`, checked against the peer.
fn local(v: &str, peer: &VxlanPeer) -> Result<VxlanLocal, SpecError> {
    let l = match ip_port(v) {
        Some((ip, port)) => VxlanLocal::Addr { ip, port },
        None if super::valid_ifname(v) => VxlanLocal::Iface(v.to_string()),
        None => {
            return Err(bad(
                "local",
                format!("`{v}` is neither an address (IP[:PORT]) nor an interface name"),
            ))
        }
    };
    match (&l, peer) {
        (VxlanLocal::Iface(_), VxlanPeer::Remote { .. }) => Err(bad(
            "local",
            "with remote=, local is the address to send from (IP[:PORT]); \
             an interface name goes with group=",
        )),
        (VxlanLocal::Addr { ip, .. }, _) if ip.is_multicast() => {
            Err(bad("local", format!("{ip} is a multicast address")))
        }
        (
            VxlanLocal::Addr { ip, .. },
            VxlanPeer::Remote {
                host: VxlanHost::Ip(r),
                ..
            },
        ) if ip.is_ipv4() != r.is_ipv4() => Err(bad(
            "local",
            format!("{ip} and remote {r} are not the same IP version"),
        )),
        (VxlanLocal::Addr { port: Some(_), .. }, VxlanPeer::Group(_)) => Err(bad(
            "local",
            "with group=, local is the interface (its address or name), without a port: \
             the group's port is the one listened on",
        )),
        (VxlanLocal::Addr { ip, .. }, VxlanPeer::Group(g)) if g.is_ipv6() => Err(bad(
            "local",
            format!("{ip}: with an IPv6 group, local names the interface (local=eth0)"),
        )),
        (VxlanLocal::Addr { ip, .. }, VxlanPeer::Group(g)) if ip.is_ipv4() != g.is_ipv4() => {
            Err(bad(
                "local",
                format!("{ip} and group {} are not the same IP version", g.ip()),
            ))
        }
        _ => Ok(l),
    }
}

/// Check the vxlan keys: `vni` and one of `remote` or `group` are required.
pub(super) fn parse(raw: RawVxlan<'_>) -> Result<VxlanSpec, SpecError> {
    let missing = |key: &str| SpecError::MissingKey {
        kind: "vxlan".into(),
        key: key.into(),
    };
    let peer = match (raw.remote, raw.group) {
        (Some(r), None) => remote(r)?,
        (None, Some(g)) => VxlanPeer::Group(group(g)?),
        (Some(_), Some(_)) => {
            return Err(bad(
                "group",
                "give either remote (one peer) or group (flood-and-learn), not both",
            ))
        }
        (None, None) => return Err(missing("remote` or `group")),
    };
    let vni = raw.vni.ok_or_else(|| missing("vni"))?;
    let vni = u32::try_from(vni)
        .ok()
        .filter(|&n| n <= MAX_VNI)
        .ok_or_else(|| bad("vni", format!("{vni} is not a 24-bit VNI (0 to {MAX_VNI})")))?;
    let local = raw.local.map(|l| local(l, &peer)).transpose()?;
    let ttl = raw
        .ttl
        .map(|t| {
            u8::try_from(t)
                .ok()
                .filter(|&t| t >= 1)
                .ok_or_else(|| bad("ttl", format!("{t} is not a TTL (1 to 255)")))
        })
        .transpose()?;
    let src_port = raw
        .src_port
        .map(|p| {
            u16::try_from(p)
                .ok()
                .filter(|&p| p >= 1)
                .ok_or_else(|| bad("src_port", format!("{p} is not a UDP port (1 to 65535)")))
        })
        .transpose()?;
    Ok(VxlanSpec {
        vni,
        peer,
        local,
        ttl,
        src_port,
    })
}
