//! EEPROM programming as Linux's `ethtool -E` does it (Microwire EWEN, WRITE, busy then
//! ready on DO, EWDS, then the checksum word), on the fake bus: the driver reads the
//! byte back, a store is told every change, and a card started from the stored image
//! (nic-emu restarted with `--eeprom FILE`) shows it.

use crate::support;

use std::sync::{Arc, Mutex};

use nic_emu::backend::Loopback;
use nic_emu::device::eeprom::{checksum_ok, checksum_word, EEPROM_WORDS};
use nic_emu::device::EepromStore;
use nic_emu::{DeviceConfig, MacAddress};
use support::*;

/// A store that keeps what it is given.
#[derive(Debug, Default)]
struct Kept(Mutex<Vec<[u16; EEPROM_WORDS]>>);

impl EepromStore for Kept {
    fn save(&self, words: &[u16; EEPROM_WORDS]) -> std::io::Result<()> {
        self.0.lock().unwrap().push(*words);
        Ok(())
    }
}

fn device(store: Arc<Kept>, image: Option<[u16; EEPROM_WORDS]>) -> FakeGuest {
    FakeGuest::with_device(
        Box::new(Loopback::new()),
        DeviceConfig {
            mac: MacAddress::new(MAC),
            eeprom: image,
            eeprom_store: Some(store),
            autoneg_delay: std::time::Duration::ZERO,
            ..DeviceConfig::default()
        },
    )
}

/// What e1000_set_eeprom does for `ethtool -E ... offset OFF value V` (one byte): read
/// the word, patch the byte, write the word, then fix the checksum word.
fn ethtool_set_byte(g: &mut FakeGuest, offset: usize, value: u8) {
    let addr = (offset / 2) as u16;
    let mut bytes = g.eeprom_bitbang_read(addr).to_le_bytes();
    bytes[offset % 2] = value;
    let busy = g.eeprom_bitbang_write(addr, &[u16::from_le_bytes(bytes)]);
    assert_eq!(busy, vec![1], "DO reads busy once, then ready");
    let mut words = [0u16; EEPROM_WORDS];
    for (i, w) in words.iter_mut().enumerate() {
        *w = g.eeprom_bitbang_read(i as u16);
    }
    g.eeprom_bitbang_write(0x3F, &[checksum_word(&words)]);
}

#[test]
fn ethtool_set_eeprom_is_read_back_stored_and_survives_a_restart() {
    let store = Arc::new(Kept::default());
    let mut g = device(store.clone(), None);
    g.linux_probe();
    ethtool_set_byte(&mut g, 0x61, 0x5A);
    assert_eq!(g.eeprom_bitbang_read(0x30).to_le_bytes()[1], 0x5A);
    assert_eq!(
        g.eeprom_eerd_read(0x30).to_le_bytes()[1],
        0x5A,
        "EERD sees it too"
    );
    let probe = g.linux_probe();
    let sum = probe.eeprom.iter().fold(0u16, |a, &w| a.wrapping_add(w));
    assert_eq!(sum, 0xBABA, "the driver's checksum still holds");
    assert_eq!(probe.mac, MAC);

    // Two programming commands: the word, then the checksum; the store saw both.
    let saved = store.0.lock().unwrap().clone();
    assert_eq!(saved.len(), 2);
    let last = *saved.last().unwrap();
    assert!(checksum_ok(&last));
    assert_eq!(last[0x30].to_le_bytes()[1], 0x5A);

    // nic-emu restarted with the stored image: the guest reads the byte again.
    let mut g2 = device(Arc::new(Kept::default()), Some(last));
    let probe = g2.linux_probe();
    assert_eq!(probe.eeprom[0x30].to_le_bytes()[1], 0x5A);
    assert_eq!(probe.mac, MAC);
}

#[test]
fn the_mac_comes_from_the_eeprom_image() {
    let mut image = nic_emu::device::eeprom::default_image(
        [0x02, 0x11, 0x22, 0x33, 0x44, 0x55],
        nic_emu::device::Model::I82540Em.eeprom_identity(),
    );
    image[0x3F] = checksum_word(&image);
    let mut g = device(Arc::new(Kept::default()), Some(image));
    let p = g.linux_probe();
    assert_eq!(p.mac, [0x02, 0x11, 0x22, 0x33, 0x44, 0x55]);
    assert_eq!(
        g.rd(nic_emu::device::regs::ral(0)),
        0x3322_1102,
        "RA[0] at reset"
    );
}
