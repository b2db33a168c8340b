#![no_main]
//! DMA_MAP/UNMAP sequences against `GuestRam`, checked against a model.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|ops: Vec<nic_emu_fuzz::dma_table::DmaOp>| {
    nic_emu_fuzz::dma_table::run(&ops);
});
