//! The types and constants of the C API (everything in the header but the functions).

use std::ffi::c_void;

use crate::backend::RxOutcome;
use crate::device::metrics::metrics_table;
use crate::device::Metrics;

/// The result of a C API call: `NIC_EMU_STATUS_OK` (0) or a negative error.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NicEmuStatus {
    /// Success.
    Ok = 0,
    /// A required pointer argument was NULL (or misaligned for its type).
    NullPointer = -1,
    /// A length is zero, too large, or not an allowed access size.
    InvalidLength = -2,
    /// An offset plus length is outside the configuration space or the BAR.
    OutOfRange = -3,
    /// An argument has a value outside its allowed set (BAR index, clock kind).
    InvalidArgument = -4,
    /// The guest memory ranges are unaligned, empty, wrapping or overlapping.
    MemoryMap = -5,
    /// The device's clock is the host's monotonic clock, not driven by the embedder.
    ClockNotManual = -6,
    /// Called from inside one of this device's own callbacks.
    Reentrant = -7,
    /// A panic was caught inside the library; only `nic_emu_destroy` is still allowed.
    Panicked = -8,
    /// Not available: the library was built without the feature, or the kernel refused.
    Unsupported = -9,
}

/// What became of a frame passed to `nic_emu_receive_frame`.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NicEmuRxOutcome {
    /// Written into the guest's receive ring.
    Delivered = 0,
    /// Rejected by the address or VLAN filters the guest programmed.
    Filtered = 1,
    /// The receive ring is full: offer the frame again once `nic_emu_rx_ready` says so.
    NoRoom = 2,
    /// Dropped: receiver disabled, link down, runt, oversize, or can never fit.
    Dropped = 3,
}

impl From<RxOutcome> for NicEmuRxOutcome {
    fn from(o: RxOutcome) -> Self {
        match o {
            RxOutcome::Delivered => Self::Delivered,
            RxOutcome::Filtered => Self::Filtered,
            RxOutcome::NoRoom => Self::NoRoom,
            RxOutcome::Dropped => Self::Dropped,
        }
    }
}

/// `NicEmuConfig.clock`: time moves only through `nic_emu_set_time_ns` and
/// `nic_emu_advance_time_ns` (starts at 0).
pub const NIC_EMU_CLOCK_MANUAL: u32 = 0;
/// `NicEmuConfig.clock`: the host's monotonic clock.
pub const NIC_EMU_CLOCK_MONOTONIC: u32 = 1;
/// `nic_emu_next_timer_deadline` when no timer is pending.
pub const NIC_EMU_NO_DEADLINE: u64 = 0xFFFF_FFFF_FFFF_FFFF;
/// Largest frame `nic_emu_receive_frame` accepts (destination MAC first, no FCS).
pub const NIC_EMU_MAX_FRAME: usize = 16384;
/// Size of the PCI configuration space.
pub const NIC_EMU_CONFIG_SPACE_SIZE: u64 = 256;
/// BAR0: the memory-mapped register file.
pub const NIC_EMU_BAR_MMIO: u32 = 0;
/// BAR1: the I/O window (IOADDR at 0, IODATA at 4).
pub const NIC_EMU_BAR_IO: u32 = 1;
/// Most ranges `nic_emu_set_memory` takes.
pub const NIC_EMU_MAX_MEM_REGIONS: usize = 1024;

/// Called with each frame the guest transmits (destination MAC first, no FCS). Return
/// true if the frame was sent, false if it was dropped (counted in `tx_backend_drops`).
/// `frame` is valid only during the call.
pub type NicEmuSendFrameFn =
    Option<unsafe extern "C" fn(user_data: *mut c_void, frame: *const u8, len: usize) -> bool>;

/// Called when the device's INTx line changes level (true: asserted).
pub type NicEmuSetIrqLevelFn = Option<unsafe extern "C" fn(user_data: *mut c_void, asserted: bool)>;

/// How to create a device. Fill it with `nic_emu_config_init`, then change fields.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NicEmuConfig {
    /// MAC address in the EEPROM, first octet first. A group address (first octet odd)
    /// or all zeros makes `nic_emu_create` return `NIC_EMU_STATUS_INVALID_ARGUMENT`: a
    /// guest driver would refuse the card.
    pub mac: [u8; 6],
    /// Whether the cable is plugged in at power-on.
    pub link_up: bool,
    /// `NIC_EMU_CLOCK_MANUAL` or `NIC_EMU_CLOCK_MONOTONIC`.
    pub clock: u32,
    /// Passed unchanged to the callbacks.
    pub user_data: *mut c_void,
    /// Transmit callback; NULL discards transmitted frames (counted as sent).
    pub send_frame: NicEmuSendFrameFn,
    /// Interrupt callback; NULL: poll with `nic_emu_irq_level`.
    pub set_irq_level: NicEmuSetIrqLevelFn,
}

/// One range of guest RAM: `len` bytes at guest physical `guest_addr`, held by the
/// embedder at `host_addr` (page-aligned).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NicEmuMemRegion {
    /// Guest physical address of the first byte.
    pub guest_addr: u64,
    /// Where the range is in this process; page-aligned.
    pub host_addr: *mut c_void,
    /// Length in bytes (not zero).
    pub len: usize,
}

/// Emulator-side counters: the Rust `Metrics`, field for field and in its order (see it
/// for the meaning of each).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NicEmuMetrics {
    /// Register reads (MMIO and I/O window).
    pub reg_reads: u64,
    /// Register writes (MMIO and I/O window).
    pub reg_writes: u64,
    /// Frames the guest sent, handed to the send callback.
    pub tx_frames: u64,
    /// Bytes the guest sent, handed to the send callback.
    pub tx_bytes: u64,
    /// Frames the send callback refused.
    pub tx_backend_drops: u64,
    /// Frames the guest sent while the link was down: completed, not sent.
    pub tx_no_link: u64,
    /// Frames the card looped into its own receiver (PHY or MAC loopback), not sent.
    pub tx_looped: u64,
    /// Transmit descriptors or packets rejected as malformed.
    pub tx_malformed: u64,
    /// Frames written into the guest's receive ring.
    pub rx_frames: u64,
    /// Bytes written into the guest's receive ring.
    pub rx_bytes: u64,
    /// Frames dropped by the guest's address/VLAN filters.
    pub rx_filtered: u64,
    /// Frames dropped for other reasons (receiver off, no link, oversize, ...).
    pub rx_dropped: u64,
    /// Times the receive ring was found full.
    pub rx_backpressure: u64,
    /// Frames received while the card was in loopback, discarded (also in rx_dropped).
    pub rx_while_looping: u64,
    /// DMA accesses outside guest memory or with bus mastering off.
    pub dma_errors: u64,
    /// Maps and unmaps applied to the guest memory table (vfio-user DMA_MAP/DMA_UNMAP).
    pub dma_map_edits: u64,
    /// Errors from the backend.
    pub backend_errors: u64,
    /// Rising edges of the interrupt line.
    pub irq_asserts: u64,
}

// Every metric, named on both sides: a field missing from either struct does not compile
// (the order is checked against include/nic_emu.h by a test in tests.rs).
macro_rules! c_metrics_from {
    ($($name:ident: $help:literal,)*) => {
        impl From<&Metrics> for NicEmuMetrics {
            fn from(m: &Metrics) -> Self {
                Self { $($name: m.$name,)* }
            }
        }
    };
}
metrics_table!(c_metrics_from);
