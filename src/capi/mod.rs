//! The C API: the device for programs written in C (or anything with a C FFI).
//!
//! The crate builds as a static library (`libnic_emu.a`); with the `generate-bindings`
//! feature, `build.rs` runs cbindgen over this module and writes the header to
//! `$OUT_DIR/nic_emu.h` and `include/nic_emu.h`. `examples/c/embed.c` is a complete
//! program; link it with `libnic_emu.a -lpthread -ldl -lm`.
//!
//! # Model
//!
//! The embedder is the machine: it owns guest RAM, decodes the guest's PCI accesses and
//! forwards them here BAR-relative, delivers the frames the outside world sends to the
//! guest, and keeps time. The device calls back for the frames the guest transmits and
//! when its interrupt line changes level.
//!
//! ```c
//! NicEmuConfig cfg;
//! nic_emu_config_init(&cfg);               // default MAC, link up, manual clock
//! cfg.send_frame = my_send;                // bool my_send(void *user, const uint8_t *f, size_t n)
//! cfg.set_irq_level = my_irq;              // void my_irq(void *user, bool asserted)
//! NicEmuDevice *dev;
//! if (nic_emu_create(&cfg, &dev) != NIC_EMU_STATUS_OK) abort();
//! NicEmuMemRegion ram = { .guest_addr = 0, .host_addr = buf, .len = size };
//! nic_emu_set_memory(dev, &ram, 1);        // buf page-aligned, lives until destroy
//! nic_emu_bar_write(dev, 0, 0x0100 /* RCTL */, bytes, 4);
//! nic_emu_receive_frame(dev, frame, len, &outcome);
//! nic_emu_destroy(dev);
//! ```
//!
//! # Rules
//!
//! * Every function returns a [`NicEmuStatus`] (0 is success, errors are negative) or, for
//!   the two string functions, a static string. Results go through out-pointers, which
//!   are written only on success (`nic_emu_create` also sets `*out` to NULL on failure).
//! * NULL pointers, lengths that are zero, too large or not an access size (1, 2, 4, 8),
//!   and offsets outside a region are rejected with an error; nothing is done.
//! * No panic crosses the boundary: each call runs under `catch_unwind`. After a caught
//!   panic the device answers [`NicEmuStatus::Panicked`] to every call but destroy.
//! * A device may be used from any thread, one call at a time (calls from several threads
//!   are serialised by a lock). Callbacks run on the calling thread, inside the call, with
//!   the device locked: a callback that calls into *the same* device gets
//!   [`NicEmuStatus::Reentrant`]; calling into another device is fine.
//! * `user_data` and the callbacks may be used from whichever thread calls the device.
//! * Guest memory is a list of (guest physical address, host pointer, length) ranges: the
//!   host memory must be page-aligned (`mmap`, `posix_memalign`), readable and writable,
//!   and must stay valid until the device is destroyed or given another map. The device
//!   never reads or writes outside these ranges; a DMA elsewhere fails and is counted in
//!   `dma_errors`. (Mapped memory rather than DMA callbacks: descriptors and buffers are
//!   copied once, bounds-checked by vm-memory, with no call out of the library per DMA.)
//! * Received frames are pushed in with `nic_emu_receive_frame`. The outcome
//!   `NIC_EMU_RX_OUTCOME_NO_ROOM` means the guest's ring is full: keep the frame and offer
//!   it again once `nic_emu_rx_ready` is true (check after each BAR write, which is how
//!   the guest frees buffers).
//! * Time: with `NIC_EMU_CLOCK_MANUAL` the embedder moves the clock
//!   (`nic_emu_set_time_ns`, `nic_emu_advance_time_ns`); either way it calls
//!   `nic_emu_run_timers` at `nic_emu_next_timer_deadline` for interrupt moderation.

use std::ffi::c_char;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::clock::{Clock, ManualClock, MonotonicClock};
use crate::device::{Bar, DeviceConfig, E1000};
use crate::mac::MacAddress;
use crate::memory::GuestRam;

mod handle;
mod lints;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_device;
mod types;

pub use handle::NicEmuDevice;
use handle::{
    check_access, guard, handle, put, thread_token, with_device, CallbackBackend, CallbackIrq,
};
pub use lints::*;
pub use types::*;

/// Fill `config` with defaults: MAC 52:54:00:e1:00:00, link up, manual clock, no
/// callbacks, NULL `user_data`.
///
/// # Safety
///
/// `config` is NULL or valid for writes of a `NicEmuConfig`.
#[no_mangle]
pub unsafe extern "C" fn nic_emu_config_init(config: *mut NicEmuConfig) -> NicEmuStatus {
    let defaults = NicEmuConfig {
        mac: MacAddress::DEFAULT.octets(),
        link_up: true,
        clock: NIC_EMU_CLOCK_MANUAL,
        user_data: std::ptr::null_mut(),
        send_frame: None,
        set_irq_level: None,
    };
    // SAFETY: forwarded contract.
    guard(|| unsafe { put(config, defaults) })
}

/// Create a device at power-on, with no guest memory (see `nic_emu_set_memory`). On
/// success `*out` is the new device; otherwise `*out` is set to NULL (if `out` is not).
///
/// # Safety
///
/// `config` is NULL or points to a valid `NicEmuConfig` whose callbacks, if not NULL,
/// have the declared signatures; `out` is NULL or valid for writes of a pointer.
#[no_mangle]
pub unsafe extern "C" fn nic_emu_create(
    config: *const NicEmuConfig,
    out: *mut *mut NicEmuDevice,
) -> NicEmuStatus {
    guard(|| {
        if out.is_null() || !out.is_aligned() {
            return NicEmuStatus::NullPointer;
        }
        // SAFETY: checked non-null and aligned; valid for writes by contract.
        unsafe { out.write(std::ptr::null_mut()) };
        if config.is_null() || !config.is_aligned() {
            return NicEmuStatus::NullPointer;
        }
        // SAFETY: non-null, aligned, valid by contract; the struct is `Copy`.
        let cfg = unsafe { config.read() };
        let manual_clock = match cfg.clock {
            NIC_EMU_CLOCK_MANUAL => Some(ManualClock::new()),
            NIC_EMU_CLOCK_MONOTONIC => None,
            _ => return NicEmuStatus::InvalidArgument,
        };
        let mac = MacAddress::new(cfg.mac);
        if mac.check_station().is_err() {
            // A guest driver refuses a card whose EEPROM holds a group or all-zero
            // address, as the CLI and the configuration file say when they refuse it.
            return NicEmuStatus::InvalidArgument;
        }
        let clock: Arc<dyn Clock> = match &manual_clock {
            Some(c) => Arc::new(c.clone()),
            None => Arc::new(MonotonicClock::new()),
        };
        let backend = CallbackBackend {
            send: cfg.send_frame,
            user_data: cfg.user_data,
        };
        let irq = CallbackIrq {
            set_level: cfg.set_irq_level,
            user_data: cfg.user_data,
        };
        let device_config = DeviceConfig {
            mac,
            link_up: cfg.link_up,
            ..DeviceConfig::default()
        };
        let device = E1000::new(
            device_config,
            Box::new(backend),
            Box::new(irq),
            clock.clone(),
        );
        let handle = Box::new(NicEmuDevice {
            device: Mutex::new(device),
            owner: AtomicUsize::new(0),
            clock,
            manual_clock,
        });
        // SAFETY: checked above.
        unsafe { out.write(Box::into_raw(handle)) };
        NicEmuStatus::Ok
    })
}

/// Destroy a device. No other call on it may be running or start afterwards. Guest
/// memory is not freed (it belongs to the embedder) and may be released after this.
///
/// # Safety
///
/// `dev` is NULL or a live pointer from `nic_emu_create`, not used again afterwards.
#[no_mangle]
pub unsafe extern "C" fn nic_emu_destroy(dev: *mut NicEmuDevice) -> NicEmuStatus {
    if dev.is_null() {
        return NicEmuStatus::NullPointer;
    }
    guard(|| {
        // SAFETY: live by contract; only a shared reference, to check for reentry.
        if unsafe { &*dev }.owner.load(Ordering::Acquire) == thread_token() {
            return NicEmuStatus::Reentrant;
        }
        // SAFETY: `dev` came from `Box::into_raw` in `nic_emu_create` and, by contract,
        // no other call uses it now or later.
        drop(unsafe { Box::from_raw(dev) });
        NicEmuStatus::Ok
    })
}

/// Replace the device's guest memory with `count` ranges (0: no memory; every DMA fails).
///
/// # Safety
///
/// `dev` as for every call; `regions` is NULL or points to `count` valid
/// `NicEmuMemRegion`s, each describing page-aligned, readable and writable memory of this
/// process that stays valid until the device is destroyed or given another map.
#[no_mangle]
pub unsafe extern "C" fn nic_emu_set_memory(
    dev: *mut NicEmuDevice,
    regions: *const NicEmuMemRegion,
    count: usize,
) -> NicEmuStatus {
    // SAFETY: `dev` is NULL or live, by this function's contract.
    let h = unsafe { handle(dev) };
    with_device(h, |_, d| {
        if count > NIC_EMU_MAX_MEM_REGIONS {
            return NicEmuStatus::InvalidLength;
        }
        let list: &[NicEmuMemRegion] = if count == 0 {
            &[]
        } else if regions.is_null() || !regions.is_aligned() {
            return NicEmuStatus::NullPointer;
        } else {
            // SAFETY: non-null, aligned, `count` (bounded above) valid elements by
            // contract.
            unsafe { std::slice::from_raw_parts(regions, count) }
        };
        let raw: Vec<(u64, *mut u8, usize)> = list
            .iter()
            .map(|r| (r.guest_addr, r.host_addr.cast::<u8>(), r.len))
            .collect();
        // SAFETY: the embedder guarantees each range is valid read/write memory until
        // destroy or the next map, which is as long as the device holds this map.
        match unsafe { GuestRam::from_raw_regions(&raw) } {
            Ok(ram) => {
                d.set_memory(ram);
                NicEmuStatus::Ok
            }
            Err(e) => {
                log::warn!("nic_emu_set_memory: {e}");
                NicEmuStatus::MemoryMap
            }
        }
    })
}

/// Read `len` (1, 2, 4 or 8) bytes of PCI configuration space at `offset`.
///
/// # Safety
///
/// `dev` as for every call; `data` is NULL or valid for writes of `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn nic_emu_config_read(
    dev: *mut NicEmuDevice,
    offset: u64,
    data: *mut u8,
    len: usize,
) -> NicEmuStatus {
    // SAFETY: `dev` is NULL or live, by this function's contract.
    let h = unsafe { handle(dev) };
    with_device(h, |_, d| {
        if let Err(e) = check_access(data.is_null(), offset, len, NIC_EMU_CONFIG_SPACE_SIZE) {
            return e;
        }
        // SAFETY: non-null, `len` bytes writable by contract; u8 needs no alignment.
        let buf = unsafe { std::slice::from_raw_parts_mut(data, len) };
        d.config_read(offset, buf);
        NicEmuStatus::Ok
    })
}

/// Write `len` (1, 2, 4 or 8) bytes of PCI configuration space at `offset`.
///
/// # Safety
///
/// `dev` as for every call; `data` is NULL or valid for reads of `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn nic_emu_config_write(
    dev: *mut NicEmuDevice,
    offset: u64,
    data: *const u8,
    len: usize,
) -> NicEmuStatus {
    // SAFETY: `dev` is NULL or live, by this function's contract.
    let h = unsafe { handle(dev) };
    with_device(h, |_, d| {
        if let Err(e) = check_access(data.is_null(), offset, len, NIC_EMU_CONFIG_SPACE_SIZE) {
            return e;
        }
        // SAFETY: non-null, `len` bytes readable by contract.
        let buf = unsafe { std::slice::from_raw_parts(data, len) };
        d.config_write(offset, buf);
        NicEmuStatus::Ok
    })
}

/// The BAR with index `bar`, or the error for a bad index.
fn bar_of(bar: u32) -> Result<Bar, NicEmuStatus> {
    Bar::from_index(bar).ok_or(NicEmuStatus::InvalidArgument)
}

/// Read `len` (1, 2, 4 or 8) bytes at `offset` within BAR `bar` (0: registers, 1: I/O
/// window), with the read's side effects (reading ICR clears it).
///
/// # Safety
///
/// `dev` as for every call; `data` is NULL or valid for writes of `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn nic_emu_bar_read(
    dev: *mut NicEmuDevice,
    bar: u32,
    offset: u64,
    data: *mut u8,
    len: usize,
) -> NicEmuStatus {
    // SAFETY: `dev` is NULL or live, by this function's contract.
    let h = unsafe { handle(dev) };
    with_device(h, |_, d| {
        let b = match bar_of(bar) {
            Ok(b) => b,
            Err(e) => return e,
        };
        if let Err(e) = check_access(data.is_null(), offset, len, b.size()) {
            return e;
        }
        // SAFETY: non-null, `len` bytes writable by contract.
        let buf = unsafe { std::slice::from_raw_parts_mut(data, len) };
        d.bar_read(b, offset, buf);
        NicEmuStatus::Ok
    })
}

/// Write `len` (1, 2, 4 or 8) bytes at `offset` within BAR `bar`. A write may transmit
/// (the send callback runs before this returns) and change the interrupt level.
///
/// # Safety
///
/// `dev` as for every call; `data` is NULL or valid for reads of `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn nic_emu_bar_write(
    dev: *mut NicEmuDevice,
    bar: u32,
    offset: u64,
    data: *const u8,
    len: usize,
) -> NicEmuStatus {
    // SAFETY: `dev` is NULL or live, by this function's contract.
    let h = unsafe { handle(dev) };
    with_device(h, |_, d| {
        let b = match bar_of(bar) {
            Ok(b) => b,
            Err(e) => return e,
        };
        if let Err(e) = check_access(data.is_null(), offset, len, b.size()) {
            return e;
        }
        // SAFETY: non-null, `len` bytes readable by contract.
        let buf = unsafe { std::slice::from_raw_parts(data, len) };
        d.bar_write(b, offset, buf);
        NicEmuStatus::Ok
    })
}

/// Offer one frame from the outside world (destination MAC first, no FCS, 1 to
/// `NIC_EMU_MAX_FRAME` bytes) to the guest; `*outcome` says what became of it.
///
/// # Safety
///
/// `dev` as for every call; `frame` is NULL or valid for reads of `len` bytes; `outcome`
/// is NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn nic_emu_receive_frame(
    dev: *mut NicEmuDevice,
    frame: *const u8,
    len: usize,
    outcome: *mut NicEmuRxOutcome,
) -> NicEmuStatus {
    // SAFETY: `dev` is NULL or live, by this function's contract.
    let h = unsafe { handle(dev) };
    with_device(h, |_, d| {
        if frame.is_null() || outcome.is_null() || !outcome.is_aligned() {
            return NicEmuStatus::NullPointer;
        }
        if len == 0 || len > NIC_EMU_MAX_FRAME {
            return NicEmuStatus::InvalidLength;
        }
        // SAFETY: non-null, `len` bytes readable by contract.
        let buf = unsafe { std::slice::from_raw_parts(frame, len) };
        let o = d.receive_frame(buf);
        // SAFETY: `outcome` is valid for writes by contract.
        unsafe { put(outcome, NicEmuRxOutcome::from(o)) }
    })
}

/// `*ready` = whether the device can take a frame now (receiver on, link up, bus master
/// on, a free receive descriptor).
///
/// # Safety
///
/// `dev` as for every call; `ready` is NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn nic_emu_rx_ready(
    dev: *mut NicEmuDevice,
    ready: *mut bool,
) -> NicEmuStatus {
    // SAFETY: `dev` is NULL or live, by this function's contract.
    let h = unsafe { handle(dev) };
    // SAFETY: `ready` is NULL or valid for writes by contract.
    with_device(h, |_, d| unsafe { put(ready, d.rx_ready()) })
}

/// Plug (`up` true) or pull the cable; raises the link-status-change interrupt.
///
/// # Safety
///
/// `dev` as for every call.
#[no_mangle]
pub unsafe extern "C" fn nic_emu_set_link(dev: *mut NicEmuDevice, up: bool) -> NicEmuStatus {
    // SAFETY: `dev` is NULL or live, by this function's contract.
    let h = unsafe { handle(dev) };
    with_device(h, |_, d| {
        d.set_link(up);
        NicEmuStatus::Ok
    })
}

/// `*asserted` = the current level of the interrupt line.
///
/// # Safety
///
/// `dev` as for every call; `asserted` is NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn nic_emu_irq_level(
    dev: *mut NicEmuDevice,
    asserted: *mut bool,
) -> NicEmuStatus {
    // SAFETY: `dev` is NULL or live, by this function's contract.
    let h = unsafe { handle(dev) };
    // SAFETY: `asserted` is NULL or valid for writes by contract.
    with_device(h, |_, d| unsafe { put(asserted, d.irq_level()) })
}

/// Do what is due at the device's current time: fire the interrupt-mitigation timers
/// that are due, and finish transmit work a BAR write left at the engine's per-call
/// budget (4096 frames). Call it at `nic_emu_next_timer_deadline`, and after each BAR
/// write (cheap when nothing is due).
///
/// # Safety
///
/// `dev` as for every call.
#[no_mangle]
pub unsafe extern "C" fn nic_emu_run_timers(dev: *mut NicEmuDevice) -> NicEmuStatus {
    // SAFETY: `dev` is NULL or live, by this function's contract.
    let h = unsafe { handle(dev) };
    with_device(h, |_, d| {
        d.service();
        NicEmuStatus::Ok
    })
}

/// `*deadline_ns` = when `nic_emu_run_timers` next has work, in the device's clock's
/// nanoseconds, or `NIC_EMU_NO_DEADLINE`.
///
/// # Safety
///
/// `dev` as for every call; `deadline_ns` is NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn nic_emu_next_timer_deadline(
    dev: *mut NicEmuDevice,
    deadline_ns: *mut u64,
) -> NicEmuStatus {
    // SAFETY: `dev` is NULL or live, by this function's contract.
    let h = unsafe { handle(dev) };
    with_device(h, |_, d| {
        let deadline = d.next_timer_deadline().unwrap_or(NIC_EMU_NO_DEADLINE);
        // SAFETY: `deadline_ns` is NULL or valid for writes by contract.
        unsafe { put(deadline_ns, deadline) }
    })
}

/// `*now_ns` = the device's current time in nanoseconds.
///
/// # Safety
///
/// `dev` as for every call; `now_ns` is NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn nic_emu_now_ns(dev: *mut NicEmuDevice, now_ns: *mut u64) -> NicEmuStatus {
    // SAFETY: `dev` is NULL or live, by this function's contract.
    let h = unsafe { handle(dev) };
    // SAFETY: `now_ns` is NULL or valid for writes by contract.
    with_device(h, |h, _| unsafe { put(now_ns, h.clock.now_ns()) })
}

/// Set a manual clock to `ns` (earlier than now is ignored: time never goes back). Does
/// not run timers: call `nic_emu_run_timers` afterwards.
///
/// # Safety
///
/// `dev` as for every call.
#[no_mangle]
pub unsafe extern "C" fn nic_emu_set_time_ns(dev: *mut NicEmuDevice, ns: u64) -> NicEmuStatus {
    // SAFETY: `dev` is NULL or live, by this function's contract.
    let h = unsafe { handle(dev) };
    with_device(h, |h, _| match &h.manual_clock {
        Some(c) => {
            c.set_ns(ns);
            NicEmuStatus::Ok
        }
        None => NicEmuStatus::ClockNotManual,
    })
}

/// Move a manual clock forward by `ns` nanoseconds (saturating).
///
/// # Safety
///
/// `dev` as for every call.
#[no_mangle]
pub unsafe extern "C" fn nic_emu_advance_time_ns(dev: *mut NicEmuDevice, ns: u64) -> NicEmuStatus {
    // SAFETY: `dev` is NULL or live, by this function's contract.
    let h = unsafe { handle(dev) };
    with_device(h, |h, _| match &h.manual_clock {
        Some(c) => {
            c.set_ns(c.now_ns().saturating_add(ns));
            NicEmuStatus::Ok
        }
        None => NicEmuStatus::ClockNotManual,
    })
}

/// `*metrics` = the emulator-side counters.
///
/// # Safety
///
/// `dev` as for every call; `metrics` is NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn nic_emu_get_metrics(
    dev: *mut NicEmuDevice,
    metrics: *mut NicEmuMetrics,
) -> NicEmuStatus {
    // SAFETY: `dev` is NULL or live, by this function's contract.
    let h = unsafe { handle(dev) };
    with_device(h, |_, d| {
        let out = NicEmuMetrics::from(&d.metrics());
        // SAFETY: `metrics` is NULL or valid for writes by contract.
        unsafe { put(metrics, out) }
    })
}

/// Power-on reset: registers, PCI configuration space, interrupts, statistics and the
/// TX/RX engines back to power-on values (guest memory and the MAC are kept).
///
/// # Safety
///
/// `dev` as for every call.
#[no_mangle]
pub unsafe extern "C" fn nic_emu_reset(dev: *mut NicEmuDevice) -> NicEmuStatus {
    // SAFETY: `dev` is NULL or live, by this function's contract.
    let h = unsafe { handle(dev) };
    with_device(h, |_, d| {
        d.power_on_reset();
        NicEmuStatus::Ok
    })
}

/// A static, NUL-terminated description of a status code (any value is accepted).
#[no_mangle]
pub extern "C" fn nic_emu_status_string(status: i32) -> *const c_char {
    let s: &'static [u8] = match status {
        0 => b"ok\0",
        -1 => b"NULL or misaligned pointer\0",
        -2 => b"invalid length\0",
        -3 => b"offset out of range\0",
        -4 => b"invalid argument\0",
        -5 => b"guest memory ranges cannot be mapped\0",
        -6 => b"the device clock is not manual\0",
        -7 => b"called from inside this device's callback\0",
        -8 => b"the library panicked; destroy the device\0",
        -9 => b"not supported by this build or this kernel\0",
        _ => b"unknown status\0",
    };
    s.as_ptr().cast()
}

/// Confine the calling thread to the system calls the device makes (memory, locks,
/// time, writing to stderr) plus `extra_syscalls`, the embedder's own (`n_extra` names
/// such as "read", "sendto"; any arguments). Install it on each thread that calls into
/// the device, after that thread has opened what it needs. A call outside the list ends
/// the process with status 159 after writing which call it was to stderr (through a
/// SIGSYS handler this installs for the process); the filter cannot be removed.
/// Threads the calling thread starts afterwards inherit it.
///
/// Returns `NIC_EMU_STATUS_INVALID_ARGUMENT` for a name this architecture has no call of
/// (nothing is installed then), `NIC_EMU_STATUS_NULL_POINTER` for a NULL list or name,
/// `NIC_EMU_STATUS_UNSUPPORTED` when the library was built without the `sandbox`
/// feature or the kernel refused the filter. Landlock and privileges are the embedder's
/// business; `nic-emu-cli` shows the whole sandbox (docs/SECURITY.md).
///
/// # Safety
///
/// `extra_syscalls` is NULL (with `n_extra` 0) or points to `n_extra` pointers, each to a
/// NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn nic_emu_sandbox_thread(
    extra_syscalls: *const *const c_char,
    n_extra: usize,
) -> NicEmuStatus {
    let names = if n_extra == 0 {
        Vec::new()
    } else {
        if extra_syscalls.is_null() {
            return NicEmuStatus::NullPointer;
        }
        // SAFETY: the caller passes `n_extra` readable pointers at `extra_syscalls`.
        let ptrs = unsafe { std::slice::from_raw_parts(extra_syscalls, n_extra) };
        let mut names = Vec::with_capacity(n_extra);
        for &p in ptrs {
            if p.is_null() {
                return NicEmuStatus::NullPointer;
            }
            // SAFETY: each non-NULL pointer is a NUL-terminated string (the contract).
            match unsafe { std::ffi::CStr::from_ptr(p) }.to_str() {
                Ok(s) => names.push(s.to_string()),
                Err(_) => return NicEmuStatus::InvalidArgument,
            }
        }
        names
    };
    sandbox_thread(&names)
}

#[cfg(feature = "sandbox")]
fn sandbox_thread(names: &[String]) -> NicEmuStatus {
    use crate::sandbox::{apply_embedded, Mode, SandboxError};
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    match std::panic::catch_unwind(|| apply_embedded(&refs, Mode::Enforce)) {
        Ok(Ok(_)) => NicEmuStatus::Ok,
        Ok(Err(SandboxError::UnknownCall(_))) => NicEmuStatus::InvalidArgument,
        Ok(Err(_)) => NicEmuStatus::Unsupported,
        Err(_) => NicEmuStatus::Panicked,
    }
}

#[cfg(not(feature = "sandbox"))]
fn sandbox_thread(_names: &[String]) -> NicEmuStatus {
    NicEmuStatus::Unsupported
}

/// The library version, a static NUL-terminated string such as "0.1.0".
#[no_mangle]
pub extern "C" fn nic_emu_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
