//! Ethernet II frames (destination MAC first, no FCS) and their 802.1Q / 802.1ad tags.

/// Bytes of the header: destination and source address, EtherType.
pub const HEADER_LEN: usize = 14;
/// Bytes of one VLAN tag: its TPID and its TCI.
pub const VLAN_TAG_LEN: usize = 4;
/// Where the EtherType (or the first tag's TPID) is.
pub const ETHERTYPE_OFFSET: usize = 12;

/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86DD;
/// TPID of an IEEE 802.1Q (customer) VLAN tag.
pub const TPID_8021Q: u16 = 0x8100;
/// TPID of an IEEE 802.1ad (service, "QinQ") VLAN tag.
pub const TPID_8021AD: u16 = 0x88A8;
/// The TPIDs of both kinds of tag.
pub const VLAN_TPIDS: [u16; 2] = [TPID_8021Q, TPID_8021AD];

/// Shortest frame on the wire, without FCS (64 with it).
pub const MIN_FRAME: usize = 60;
/// Largest untagged frame without jumbo frames: 1500 bytes of payload and the header
/// (1518 with FCS).
pub const MAX_STD_UNTAGGED: usize = 1500 + HEADER_LEN;
/// Largest frame with one VLAN tag without jumbo frames.
pub const MAX_STD_TAGGED: usize = MAX_STD_UNTAGGED + VLAN_TAG_LEN;

/// A read-only view of an Ethernet frame at least [`HEADER_LEN`] bytes long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    bytes: &'a [u8],
}

impl<'a> Frame<'a> {
    /// A view of `bytes`, or `None` when they cannot hold the header.
    pub fn new(bytes: &'a [u8]) -> Option<Self> {
        (bytes.len() >= HEADER_LEN).then_some(Self { bytes })
    }

    /// The whole frame.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The destination address.
    pub fn dst(&self) -> [u8; 6] {
        let mut a = [0; 6];
        a.copy_from_slice(&self.bytes[..6]);
        a
    }

    /// The source address.
    pub fn src(&self) -> [u8; 6] {
        let mut a = [0; 6];
        a.copy_from_slice(&self.bytes[6..12]);
        a
    }

    /// Whether the destination is a group (multicast or broadcast) address.
    pub fn is_multicast(&self) -> bool {
        self.bytes[0] & 1 != 0
    }

    /// The 16 bits after the addresses: the EtherType, or the first tag's TPID.
    pub fn ethertype(&self) -> u16 {
        be16(self.bytes, ETHERTYPE_OFFSET).unwrap_or(0)
    }

    /// Whether the frame starts with a VLAN tag of either kind ([`VLAN_TPIDS`]).
    pub fn is_tagged(&self) -> bool {
        VLAN_TPIDS.contains(&self.ethertype())
    }

    /// The EtherType after at most `max_tags` VLAN tags (those whose TPID `is_tag`
    /// accepts), and the offset of the payload it describes. With more tags than that,
    /// the TPID after the last one skipped is returned as the type. `None` when a tag or
    /// the type is cut short.
    pub fn inner_type(
        &self,
        is_tag: impl Fn(u16) -> bool,
        max_tags: usize,
    ) -> Option<(u16, usize)> {
        let mut at = ETHERTYPE_OFFSET;
        let mut tags = 0;
        loop {
            let t = be16(self.bytes, at)?;
            if tags < max_tags && is_tag(t) {
                tags += 1;
                at += VLAN_TAG_LEN;
                continue;
            }
            return Some((t, at + 2));
        }
    }
}

/// The big-endian 16-bit field at `at`, if the bytes hold it.
pub(crate) fn be16(b: &[u8], at: usize) -> Option<u16> {
    let f = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([f[0], f[1]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(types: &[u16]) -> Vec<u8> {
        let mut f = vec![0xFF; 6];
        f.extend_from_slice(&[2, 0, 0, 0, 0, 1]);
        for t in types {
            f.extend_from_slice(&t.to_be_bytes());
            f.extend_from_slice(&[0, 5]);
        }
        f
    }

    #[test]
    fn addresses_type_and_tags() {
        let f = frame(&[ETHERTYPE_IPV4]);
        let v = Frame::new(&f).unwrap();
        assert_eq!(v.dst(), [0xFF; 6]);
        assert_eq!(v.src(), [2, 0, 0, 0, 0, 1]);
        assert!(v.is_multicast());
        assert!(!v.is_tagged());
        assert_eq!(
            v.inner_type(|t| VLAN_TPIDS.contains(&t), 4),
            Some((0x0800, 14))
        );
        assert!(Frame::new(&f[..13]).is_none());
    }

    #[test]
    fn tags_are_stepped_over_up_to_the_limit() {
        let any = |t: u16| VLAN_TPIDS.contains(&t);
        let f = frame(&[TPID_8021AD, TPID_8021Q, ETHERTYPE_IPV6]);
        let v = Frame::new(&f).unwrap();
        assert!(v.is_tagged());
        assert_eq!(v.inner_type(any, 4), Some((ETHERTYPE_IPV6, 22)));
        assert_eq!(
            v.inner_type(any, 1),
            Some((TPID_8021Q, 18)),
            "one tag allowed"
        );
        assert_eq!(
            v.inner_type(|t| t == TPID_8021Q, 4),
            Some((TPID_8021AD, 14))
        );
        // A tag whose inner type is cut off.
        assert_eq!(Frame::new(&f[..17]).unwrap().inner_type(any, 4), None);
    }
}
