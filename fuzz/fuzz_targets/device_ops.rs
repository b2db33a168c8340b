#![no_main]
//! Guest, wire and time operations on the in-process bus; see `src/device_ops.rs`.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    nic_emu_fuzz::device_ops::run(data);
});
