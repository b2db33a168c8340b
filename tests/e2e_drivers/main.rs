//! End to end with drivers other than the Linux e1000 driver's usual setup (`drivers`:
//! DPDK testpmd, a virtual IOMMU, the project's userspace INTx driver), iPXE netbooting
//! Linux (`ipxe`) and the driver writer's workbench (`workbench`).
//!
//! Run: `flock /tmp/nic-emu-e2e.lock cargo test --all-features --test e2e_drivers [module::]`.

#[path = "../support/mod.rs"]
pub mod support;

mod drivers;
mod ipxe;
mod workbench;
