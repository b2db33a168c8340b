#![no_main]
//! Arbitrary bytes to the vfio-user server, then a good client; see
//! `src/vfio_user_stream.rs`.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    nic_emu_fuzz::vfio_user_stream::run(data);
});
