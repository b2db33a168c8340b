//! The outer UDP source port: a hash of the inner flow, so that the frames of one TCP
//! connection keep one port (and one path) while different flows spread over the
//! routers' ECMP paths and the receivers' RSS queues, as RFC 7348 (section 5) recommends
//! and as Linux's vxlan driver does: the port lies in Linux's default local port range,
//! 32768 to 60999.
//!
//! Linux writes the port into each packet it builds; a program without raw sockets sends
//! from a socket bound to the port. So the range is cut into [`PORT_BUCKETS`] buckets, one
//! socket each, opened with the backend: the flow's hash picks the bucket, as it picks
//! the port in Linux (the same scaling of the hash onto the range, at a coarser grain).

use std::ops::Range;

/// Where hashed source ports lie: Linux's default `ip_local_port_range` (32768 60999),
/// which its vxlan driver uses unless `srcport` is given.
pub const SRC_PORT_RANGE: Range<u16> = 32768..61000;

use crate::wire::ethernet::{ETHERTYPE_IPV4, ETHERTYPE_IPV6, VLAN_TPIDS};
use crate::wire::ip::{PROTO_TCP, PROTO_UDP};

/// IP protocols whose first four bytes are the source and destination ports.
fn has_ports(proto: u8) -> bool {
    const SCTP: u8 = 132;
    const UDP_LITE: u8 = 136;
    matches!(proto, PROTO_TCP | PROTO_UDP | SCTP | UDP_LITE)
}

/// FNV-1a over `bytes`, then a finaliser (MurmurHash3's fmix32) so that every input bit
/// reaches the high bits, which pick the port.
fn hash(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811C_9DC5;
    for &b in bytes {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h ^= h >> 16;
    h = h.wrapping_mul(0x85EB_CA6B);
    h ^= h >> 13;
    h = h.wrapping_mul(0xC2B2_AE35);
    h ^ (h >> 16)
}

/// The bytes that name a flow, at most 37 (IPv6: next header, two addresses, ports).
struct Key {
    buf: [u8; 40],
    len: usize,
}

impl Key {
    fn put(&mut self, bytes: &[u8]) {
        let end = (self.len + bytes.len()).min(self.buf.len());
        if let (Some(dst), Some(src)) =
            (self.buf.get_mut(self.len..end), bytes.get(..end - self.len))
        {
            dst.copy_from_slice(src);
        }
        self.len = end;
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// What names `frame`'s flow: IP addresses, protocol and ports (the 5-tuple) when the
/// frame is IPv4 or IPv6 (behind up to two VLAN tags), else its MAC addresses and
/// EtherType.
fn flow_key(frame: &[u8]) -> Key {
    let mut key = Key {
        buf: [0; 40],
        len: 0,
    };
    let mut off = 12;
    let mut ethertype = 0;
    for _ in 0..3 {
        let Some(t) = frame.get(off..off + 2) else {
            break;
        };
        ethertype = u16::from_be_bytes([t[0], t[1]]);
        off += 2;
        if !VLAN_TPIDS.contains(&ethertype) {
            break;
        }
        off += 2; // the tag's TCI
    }
    let ip = frame.get(off..).unwrap_or_default();
    match ethertype {
        ETHERTYPE_IPV4 if ip.len() >= 20 && ip[0] >> 4 == 4 => {
            let ihl = usize::from(ip[0] & 0x0F) * 4;
            let proto = ip[9];
            key.put(&[proto]);
            key.put(&ip[12..20]);
            let fragment = u16::from_be_bytes([ip[6], ip[7]]) & 0x3FFF != 0;
            if ihl >= 20 && !fragment && has_ports(proto) {
                key.put(ip.get(ihl..ihl + 4).unwrap_or_default());
            }
        }
        ETHERTYPE_IPV6 if ip.len() >= 40 && ip[0] >> 4 == 6 => {
            let next = ip[6];
            key.put(&[next]);
            key.put(&ip[8..40]);
            if has_ports(next) {
                key.put(ip.get(40..44).unwrap_or_default());
            }
        }
        _ => {
            key.put(frame.get(..12).unwrap_or(frame));
            key.put(&ethertype.to_be_bytes());
        }
    }
    key
}

/// Buckets of the source port range: sockets a backend keeps for hashed source ports.
pub const PORT_BUCKETS: usize = 64;

/// A hash of `frame`'s flow: the same for every frame of one flow.
pub fn flow_hash(frame: &[u8]) -> u32 {
    hash(flow_key(frame).bytes())
}

/// The bucket (0 to [`PORT_BUCKETS`] - 1) of a flow hash: the hash scaled onto the
/// buckets (multiply, keep the high half), as Linux scales it onto its port range.
pub fn bucket(hash: u32) -> usize {
    ((u64::from(hash) * PORT_BUCKETS as u64) >> 32) as usize
}

/// The first port of bucket `i`: bucket `i` covers the `1 / PORT_BUCKETS` of
/// [`SRC_PORT_RANGE`] from here.
pub fn bucket_port(i: usize) -> u16 {
    let span = usize::from(SRC_PORT_RANGE.end - SRC_PORT_RANGE.start);
    let off = i.min(PORT_BUCKETS - 1) * span / PORT_BUCKETS;
    SRC_PORT_RANGE.start + off as u16
}

/// The outer source port of `frame`'s flow (when its bucket's port was free to bind):
/// the same for every frame of one flow, in [`SRC_PORT_RANGE`].
pub fn src_port(frame: &[u8]) -> u16 {
    bucket_port(bucket(flow_hash(frame)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn tcp4(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, payload: u8) -> Vec<u8> {
        let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00];
        let mut ip = [0u8; 20];
        ip[0] = 0x45;
        ip[9] = 6;
        ip[12..16].copy_from_slice(&src);
        ip[16..20].copy_from_slice(&dst);
        f.extend_from_slice(&ip);
        f.extend_from_slice(&sport.to_be_bytes());
        f.extend_from_slice(&dport.to_be_bytes());
        f.extend_from_slice(&[payload; 30]);
        f
    }

    #[test]
    fn one_flow_one_port_in_range() {
        let a = tcp4([10, 0, 0, 1], [10, 0, 0, 2], 40000, 80, 1);
        let b = tcp4([10, 0, 0, 1], [10, 0, 0, 2], 40000, 80, 2);
        assert_eq!(
            src_port(&a),
            src_port(&b),
            "payload is not part of the flow"
        );
        assert!(SRC_PORT_RANGE.contains(&src_port(&a)));
        // The MACs do not matter once there is an IP header.
        let mut c = a.clone();
        c[0..6].copy_from_slice(&[0x02, 9, 9, 9, 9, 9]);
        assert_eq!(src_port(&a), src_port(&c));
    }

    #[test]
    fn flows_spread_over_the_buckets_and_the_range() {
        let flows: Vec<Vec<u8>> = (0..2000u16)
            .map(|p| tcp4([10, 0, 0, 1], [10, 0, 0, 2], 30000 + p, 443, 0))
            .collect();
        let hashes: HashSet<u32> = flows.iter().map(|f| flow_hash(f)).collect();
        assert!(hashes.len() > 1990, "{} distinct hashes", hashes.len());
        let mut per_bucket = [0u32; PORT_BUCKETS];
        for f in &flows {
            per_bucket[bucket(flow_hash(f))] += 1;
        }
        // 2000 flows over 64 buckets: about 31 each; none empty, none crowded.
        assert!(
            per_bucket.iter().all(|&n| (8..=60).contains(&n)),
            "{per_bucket:?}"
        );
        let ports: HashSet<u16> = flows.iter().map(|f| src_port(f)).collect();
        assert_eq!(ports.len(), PORT_BUCKETS);
        assert!(ports.iter().all(|p| SRC_PORT_RANGE.contains(p)));
        assert_eq!(bucket_port(0), SRC_PORT_RANGE.start);
        assert!(bucket_port(PORT_BUCKETS - 1) + 441 < SRC_PORT_RANGE.end);
    }

    #[test]
    fn vlan_tags_are_skipped_and_fragments_hash_without_ports() {
        let plain = tcp4([10, 0, 0, 1], [10, 0, 0, 2], 1234, 80, 0);
        let mut tagged = plain[..12].to_vec();
        tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x05]);
        tagged.extend_from_slice(&plain[12..]);
        assert_eq!(src_port(&plain), src_port(&tagged));
        // A later fragment has no ports: hashed on addresses and protocol, like the
        // first fragment.
        let mut frag1 = plain.clone();
        frag1[14 + 6] = 0x20; // MF
        let mut frag2 = tcp4([10, 0, 0, 1], [10, 0, 0, 2], 9999, 9999, 0);
        frag2[14 + 7] = 0x10; // offset
        assert_eq!(src_port(&frag1), src_port(&frag2));
    }

    #[test]
    fn anything_hashes_without_panicking() {
        for n in 0..80 {
            let f: Vec<u8> = (0..n).map(|i| (i * 37) as u8).collect();
            assert!(SRC_PORT_RANGE.contains(&src_port(&f)));
        }
        let mut ip6 = vec![0u8; 14 + 44];
        ip6[12..14].copy_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
        ip6[14] = 0x60;
        ip6[14 + 6] = 17;
        let p = src_port(&ip6);
        ip6[14 + 40] = 1; // another source port
        assert_ne!(p, src_port(&ip6));
        // An ARP frame hashes on its MACs.
        let mut arp = vec![0xFF; 6];
        arp.extend_from_slice(&[0x02, 0, 0, 0, 0, 1, 0x08, 0x06]);
        arp.extend_from_slice(&[0; 28]);
        let mut arp2 = arp.clone();
        arp2[11] = 2;
        assert_ne!(src_port(&arp), src_port(&arp2));
    }
}
