//! The device handle behind the C API and the checks every entry point makes: NULL and
//! range checks, panics caught, reentry from a callback detected.

use std::ffi::c_void;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::{NicEmuSendFrameFn, NicEmuSetIrqLevelFn, NicEmuStatus};
use crate::backend::PacketBackend;
use crate::clock::{Clock, ManualClock};
use crate::device::E1000;
use crate::irq::IrqLine;

/// A device created by `nic_emu_create`; opaque to C.
pub struct NicEmuDevice {
    /// The device; the lock serialises calls from several threads.
    pub(super) device: Mutex<E1000>,
    /// Token of the thread inside a call (0: none), to detect reentry from a callback.
    pub(super) owner: AtomicUsize,
    /// The clock the device reads.
    pub(super) clock: Arc<dyn Clock>,
    /// The same clock when the embedder drives time.
    pub(super) manual_clock: Option<ManualClock>,
}

/// The transmit side for C: frames go to the send callback; received frames come in
/// through `nic_emu_receive_frame`, so `recv` never has one.
pub(super) struct CallbackBackend {
    pub(super) send: NicEmuSendFrameFn,
    pub(super) user_data: *mut c_void,
}

// SAFETY: the C contract (module docs, header) is that `user_data` and the callbacks may
// be used from whichever thread calls the device; the device lock ensures one at a time.
unsafe impl Send for CallbackBackend {}

impl PacketBackend for CallbackBackend {
    fn name(&self) -> String {
        "C callback".into()
    }
    fn send(&mut self, frame: &[u8]) -> io::Result<bool> {
        match self.send {
            // SAFETY: the embedder supplied this function for exactly this signature;
            // `frame` is a valid slice for the duration of the call.
            Some(f) => Ok(unsafe { f(self.user_data, frame.as_ptr(), frame.len()) }),
            None => Ok(true),
        }
    }
    fn recv(&mut self, _buf: &mut [u8]) -> io::Result<Option<usize>> {
        Ok(None)
    }
}

/// The interrupt line for C: level changes go to the callback.
pub(super) struct CallbackIrq {
    pub(super) set_level: NicEmuSetIrqLevelFn,
    pub(super) user_data: *mut c_void,
}

// SAFETY: as for `CallbackBackend`.
unsafe impl Send for CallbackIrq {}

impl IrqLine for CallbackIrq {
    fn set_level(&mut self, asserted: bool) {
        if let Some(f) = self.set_level {
            // SAFETY: the embedder supplied this function for exactly this signature.
            unsafe { f(self.user_data, asserted) }
        }
    }
}

/// A nonzero number unique to the calling thread while it lives.
pub(super) fn thread_token() -> usize {
    thread_local!(static TOKEN: u8 = const { 0 });
    TOKEN.with(|t| t as *const u8 as usize)
}

/// Clears `owner` when a call ends, also when it unwinds.
struct OwnerReset<'a>(&'a AtomicUsize);

impl Drop for OwnerReset<'_> {
    fn drop(&mut self) {
        self.0.store(0, Ordering::Release);
    }
}

/// Run `f`, turning a panic into [`NicEmuStatus::Panicked`].
pub(super) fn guard(f: impl FnOnce() -> NicEmuStatus) -> NicEmuStatus {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(NicEmuStatus::Panicked)
}

/// The handle behind `dev`, or `None` for NULL.
///
/// # Safety
///
/// `dev` is NULL or a live pointer from `nic_emu_create`.
pub(super) unsafe fn handle<'a>(dev: *const NicEmuDevice) -> Option<&'a NicEmuDevice> {
    // SAFETY: by the caller's contract `dev` is NULL or from `nic_emu_create` and not yet
    // destroyed. Only shared references to the handle are ever made, so a reentrant or
    // concurrent call aliases nothing mutable; the device itself is behind the mutex.
    unsafe { dev.as_ref() }
}

/// Run `f` on the locked device, with the checks every call makes.
pub(super) fn with_device(
    handle: Option<&NicEmuDevice>,
    f: impl FnOnce(&NicEmuDevice, &mut E1000) -> NicEmuStatus,
) -> NicEmuStatus {
    let Some(handle) = handle else {
        return NicEmuStatus::NullPointer;
    };
    guard(|| {
        let me = thread_token();
        if handle.owner.load(Ordering::Acquire) == me {
            return NicEmuStatus::Reentrant;
        }
        let Ok(mut device) = handle.device.lock() else {
            return NicEmuStatus::Panicked;
        };
        handle.owner.store(me, Ordering::Release);
        // Dropped before `device`: the owner is cleared while the lock is still held.
        let _reset = OwnerReset(&handle.owner);
        f(handle, &mut device)
    })
}

/// A valid access size for config space and BARs.
fn access_len_ok(len: usize) -> bool {
    matches!(len, 1 | 2 | 4 | 8)
}

/// Whether `[offset, offset + len)` lies within `size` bytes.
fn in_range(offset: u64, len: usize, size: u64) -> bool {
    u64::try_from(len)
        .ok()
        .and_then(|l| offset.checked_add(l))
        .is_some_and(|end| end <= size)
}

/// Check a caller's buffer pointer and access size; `Ok` carries nothing.
pub(super) fn check_access(
    data_null: bool,
    offset: u64,
    len: usize,
    size: u64,
) -> Result<(), NicEmuStatus> {
    if data_null {
        Err(NicEmuStatus::NullPointer)
    } else if !access_len_ok(len) {
        Err(NicEmuStatus::InvalidLength)
    } else if !in_range(offset, len, size) {
        Err(NicEmuStatus::OutOfRange)
    } else {
        Ok(())
    }
}

/// Write `value` through `out`, or fail if it is NULL or misaligned.
///
/// # Safety
///
/// `out` is NULL or valid for writes of a `T`.
pub(super) unsafe fn put<T>(out: *mut T, value: T) -> NicEmuStatus {
    if out.is_null() || !out.is_aligned() {
        return NicEmuStatus::NullPointer;
    }
    // SAFETY: non-null, aligned, and valid for writes by the caller's contract.
    unsafe { out.write(value) };
    NicEmuStatus::Ok
}
