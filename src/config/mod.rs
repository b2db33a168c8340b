//! The configuration: backend specifications, inline (`--backend udp,local=...`) or
//! named in `backends.toml`, and the factory that opens the backend a spec describes.
//!
//! * [`spec`]: [`BackendSpec`], read from either syntax, with errors that name the key;
//! * `factory.rs`: [`BackendSpec::open_with_handles`] builds the backend (the kind, wrapped in
//!   the impairment and the recorder the spec asks for) and the handles that steer them;
//! * `file.rs` (feature `config`): `backends.toml` itself (`Config`);
//! * `sandbox.rs` (feature `sandbox`): what each backend kind needs from the sandbox.
//!
//! The configuration sits above the backends: it names and builds them, they know
//! nothing of it (what each is opened with is in [`crate::backend::params`]).

mod factory;
#[cfg(feature = "config")]
mod file;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod spec;

pub use factory::{BackendContext, BackendError, Opened};
#[cfg(feature = "config")]
pub use file::{comment, Config, ConfigError, BUILTIN_BACKEND, MAX_AUTONEG_MS};
pub use spec::{BackendKind, BackendSpec, RecordSpec, SpecError};
