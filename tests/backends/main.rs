//! The packet backends (src/backend) and their wrappers: specs, tap, UDP tunnel and
//! multicast, VXLAN, stream, pcap replay and recording, impairment, carrier and bursts,
//! each alone and with the device on the fake bus where the backend shapes what a guest sees.
//!
//! Run: `cargo test --all-features --test backends [module::]`.

#[path = "../support/mod.rs"]
pub mod support;

mod bursts;
mod carrier;
mod impair;
mod pcap;
mod spec;
mod stream;
mod tap;
mod udp;
mod vxlan;
mod vxlan_linux;
