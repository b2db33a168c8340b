//! Which member of the 8254x family the card is: the 82540EM (8086:100E, the default) or
//! the 82545EM copper part (8086:100F).
//!
//! The two share the register set, the Microwire EEPROM and the Marvell M88E1011 PHY.
//! What differs is the identity (PCI device and subsystem IDs, the EEPROM's copy of
//! them) and what drivers make of it: Linux's e1000 treats the 82545 as a newer MAC
//! (`mac_type` e1000_82545) and offers interrupt coalescing (`ethtool -C`) only from the
//! 82545 on; macOS guests need the 82545EM. The 82545EM is a 64-bit PCI/PCI-X part; on
//! the conventional 32-bit PCI bus QEMU gives it, its STATUS reads as the 82540EM's
//! (PCIX_MODE and BUS64 clear), and the model has no PCI-X capability.

use super::eeprom::EepromIdentity;

/// PCI vendor ID of every model (Intel).
pub(crate) const VENDOR_ID: u16 = 0x8086;

/// The emulated controller.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Model {
    /// Intel 82540EM (8086:100E), as on the PRO/1000 MT Desktop adapter.
    #[default]
    I82540Em,
    /// Intel 82545EM copper (8086:100F), as on the PRO/1000 MT Server adapter.
    I82545Em,
}

impl Model {
    /// Every model, for help texts.
    pub const ALL: [Model; 2] = [Model::I82540Em, Model::I82545Em];

    /// The name used in configuration and on the command line (`82540em`, `82545em`).
    pub fn name(self) -> &'static str {
        match self {
            Self::I82540Em => "82540em",
            Self::I82545Em => "82545em",
        }
    }

    /// The datasheet's name of the part.
    pub fn part(self) -> &'static str {
        match self {
            Self::I82540Em => "82540EM",
            Self::I82545Em => "82545EM",
        }
    }

    /// PCI device ID.
    pub fn device_id(self) -> u16 {
        match self {
            Self::I82540Em => 0x100E,
            Self::I82545Em => 0x100F,
        }
    }

    /// PCI subsystem ID (Intel's boards: PRO/1000 MT Desktop, PRO/1000 MT Server).
    pub fn subsystem_id(self) -> u16 {
        match self {
            Self::I82540Em => 0x001E,
            Self::I82545Em => 0x1001,
        }
    }

    /// PCI subsystem vendor ID.
    pub fn subsystem_vendor_id(self) -> u16 {
        0x8086
    }

    /// PCI revision ID.
    pub fn revision(self) -> u8 {
        match self {
            Self::I82540Em => 0x03,
            Self::I82545Em => 0x01,
        }
    }

    /// The identity words of the EEPROM image.
    pub fn eeprom_identity(self) -> EepromIdentity {
        EepromIdentity {
            vendor_id: VENDOR_ID,
            device_id: self.device_id(),
            subsystem_id: self.subsystem_id(),
            subsystem_vendor_id: self.subsystem_vendor_id(),
        }
    }
}

impl std::fmt::Display for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A model name that is not one of [`Model::ALL`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown model `{0}` (known: 82540em, 82545em)")]
pub struct UnknownModel(pub String);

impl std::str::FromStr for Model {
    type Err = UnknownModel;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownModel(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for m in Model::ALL {
            assert_eq!(m.name().parse::<Model>(), Ok(m));
            assert_eq!(m.part().parse::<Model>(), Ok(m));
        }
        assert!("82541".parse::<Model>().is_err());
        assert_eq!(Model::default(), Model::I82540Em);
    }
}
