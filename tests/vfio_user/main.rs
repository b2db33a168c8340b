//! The vfio-user server (src/frontend/vfio_user) over a real Unix socket, driven by the
//! `vfio_user` crate's client: the protocol, DMA mapping, hostile clients and INTx.
//!
//! Run: `cargo test --all-features --test vfio_user [module::]`.

#[path = "../support/mod.rs"]
pub mod support;

mod client;
mod dma;
mod hostile;
mod intx;
