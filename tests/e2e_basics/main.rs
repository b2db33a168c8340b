//! End to end with real QEMU guests (TCG) on nic-emu-cli over vfio-user, the basics: the
//! Linux e1000 driver on a tap, UDP and pcap replay (`basics`), bulk TCP and jumbo
//! frames (`traffic`), the README's tap example as
//! written (`readme`) and a tap without root (`tap_rootless`). Root and the provisioned
//! rig (scripts/provision.sh), or `SKIP:`; one guest scenario at a time.
//!
//! Run: `flock /tmp/nic-emu-e2e.lock cargo test --all-features --test e2e_basics [module::]`.

#[path = "../support/mod.rs"]
pub mod support;

mod basics;
mod readme;
mod tap_rootless;
mod traffic;
