//! MAC addresses: parsing, printing, classes.

use std::fmt;
use std::str::FromStr;

/// A 48-bit Ethernet address.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MacAddress([u8; 6]);

impl MacAddress {
    /// The default address: locally administered (QEMU's `52:54:00` prefix), `e1` for
    /// e1000, and deliberately not [`QEMU_DEFAULT`](Self::QEMU_DEFAULT), so that a QEMU
    /// started without `-nic none` adds a card the user can tell apart.
    pub const DEFAULT: MacAddress = MacAddress([0x52, 0x54, 0x00, 0xe1, 0x00, 0x00]);
    /// The address QEMU gives its own first NIC when none is set (the next ones count
    /// up from it): the card QEMU adds by default, without `-nic none` or `-nodefaults`.
    pub const QEMU_DEFAULT: MacAddress = MacAddress([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
    /// The broadcast address.
    pub const BROADCAST: MacAddress = MacAddress([0xFF; 6]);

    /// From six octets, first on the wire first.
    pub const fn new(octets: [u8; 6]) -> Self {
        Self(octets)
    }
    /// The six octets.
    pub const fn octets(&self) -> [u8; 6] {
        self.0
    }
    /// Group (multicast or broadcast) address.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 != 0
    }

    /// Whether a card may have this address as its own: not a group address and not all
    /// zeros, the test Linux's e1000 driver applies to the address it reads from the
    /// EEPROM (it refuses the card otherwise). `Err` says why not.
    pub fn check_station(&self) -> Result<(), String> {
        if self.is_multicast() {
            Err(format!(
                "{self} is a group (multicast) address: the first octet's lowest bit is set, \
                 and a guest driver refuses a card with it; use a unicast address such as \
                 52:54:00:00:00:01 (first octet even)"
            ))
        } else if self.0 == [0; 6] {
            Err(format!(
                "{self} is all zeros, which a guest driver refuses; use an address such as \
                 52:54:00:00:00:01"
            ))
        } else {
            Ok(())
        }
    }
}

/// A MAC address that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid MAC address {0:?}: expected six hex octets like 52:54:00:12:34:56")]
pub struct ParseMacError(pub String);

impl FromStr for MacAddress {
    type Err = ParseMacError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseMacError(s.to_string());
        let parts: Vec<&str> = s.split([':', '-']).collect();
        if parts.len() != 6 {
            return Err(err());
        }
        let mut o = [0u8; 6];
        for (i, p) in parts.iter().enumerate() {
            if p.len() != 2 {
                return Err(err());
            }
            o[i] = u8::from_str_radix(p, 16).map_err(|_| err())?;
        }
        Ok(Self(o))
    }
}

impl fmt::Display for MacAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            o[0], o[1], o[2], o[3], o[4], o[5]
        )
    }
}

impl fmt::Debug for MacAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        let m: MacAddress = "52:54:00:AB:cd:0f".parse().unwrap();
        assert_eq!(m.octets(), [0x52, 0x54, 0, 0xab, 0xcd, 0x0f]);
        assert_eq!(m.to_string(), "52:54:00:ab:cd:0f");
        assert!("52:54:00:ab:cd".parse::<MacAddress>().is_err());
        assert!("52:54:00:ab:cd:zz".parse::<MacAddress>().is_err());
        assert!("525:4:00:ab:cd:00".parse::<MacAddress>().is_err());
    }

    #[test]
    fn station_addresses() {
        assert_eq!(MacAddress::DEFAULT.check_station(), Ok(()));
        assert_ne!(MacAddress::DEFAULT, MacAddress::QEMU_DEFAULT);
        let e = MacAddress::new([0x01, 0, 0x5e, 0, 0, 1])
            .check_station()
            .unwrap_err();
        assert!(
            e.contains("01:00:5e:00:00:01") && e.contains("multicast"),
            "{e}"
        );
        assert!(MacAddress::BROADCAST.check_station().is_err());
        assert!(MacAddress::new([0x53, 0x54, 0, 0, 0, 1])
            .check_station()
            .is_err());
        let e = MacAddress::new([0; 6]).check_station().unwrap_err();
        assert!(e.contains("zeros"), "{e}");
        assert_eq!(
            MacAddress::new([0x02, 0, 0, 0, 0, 1]).check_station(),
            Ok(())
        );
    }
}
