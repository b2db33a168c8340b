//! Harnesses of nic-emu's fuzz targets (`fuzz_targets/*.rs` are one-line wrappers), kept
//! in a library so the seed writer (`examples/make_seeds.rs`) shares their encodings.
//! See docs/FUZZING.md.

pub mod capi_calls;
pub mod device_ops;
pub mod dma_table;
pub mod vfio_user_stream;
