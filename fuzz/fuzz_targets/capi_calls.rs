#![no_main]
//! Sequences of C API calls; see `src/capi_calls.rs`.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: nic_emu_fuzz::capi_calls::Input| {
    nic_emu_fuzz::capi_calls::run(&input);
});
