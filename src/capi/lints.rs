//! Lints and drop reasons through the C API: a driver's own test suite, running its
//! driver against an embedded device, asserts that a run left no lint.

use std::ffi::{c_char, CStr};

use super::handle::{handle, put, with_device};
use super::{NicEmuDevice, NicEmuStatus};
use crate::device::lint::{LintId, Severity};

/// Severity for [`nic_emu_lint_total`]: every lint.
pub const NIC_EMU_LINT_INFO: u32 = 0;
/// Severity for [`nic_emu_lint_total`]: only lints that are driver bugs.
pub const NIC_EMU_LINT_WARN: u32 = 1;

/// A C string argument, or `None` when NULL or not UTF-8.
///
/// # Safety
///
/// `s` is NULL or a NUL-terminated string.
unsafe fn c_str<'a>(s: *const c_char) -> Option<&'a str> {
    if s.is_null() {
        return None;
    }
    // SAFETY: not NULL, and NUL-terminated by the caller's contract.
    unsafe { CStr::from_ptr(s) }.to_str().ok()
}

/// `*total` = how many times lints of at least `min_severity` (`NIC_EMU_LINT_INFO` or
/// `NIC_EMU_LINT_WARN`) fired since creation or the last `nic_emu_lints_clear`.
///
/// # Safety
///
/// `dev` as for every call; `total` is NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn nic_emu_lint_total(
    dev: *mut NicEmuDevice,
    min_severity: u32,
    total: *mut u64,
) -> NicEmuStatus {
    let severity = match min_severity {
        NIC_EMU_LINT_INFO => Severity::Info,
        NIC_EMU_LINT_WARN => Severity::Warn,
        _ => return NicEmuStatus::InvalidArgument,
    };
    // SAFETY: `dev` is NULL or live, by this function's contract.
    let h = unsafe { handle(dev) };
    // SAFETY: `total` is NULL or valid for writes by contract.
    with_device(h, |_, d| unsafe { put(total, d.lint_total(severity)) })
}

/// `*count` = how many times the lint named `id` (`"tx-no-ifcs"`, ...) fired; an unknown
/// name is `NIC_EMU_STATUS_INVALID_ARGUMENT`.
///
/// # Safety
///
/// `dev` as for every call; `id` is NULL or a NUL-terminated string; `count` is NULL or
/// valid for writes.
#[no_mangle]
pub unsafe extern "C" fn nic_emu_lint_count(
    dev: *mut NicEmuDevice,
    id: *const c_char,
    count: *mut u64,
) -> NicEmuStatus {
    if id.is_null() {
        return NicEmuStatus::NullPointer;
    }
    // SAFETY: `id` is a NUL-terminated string by contract.
    let Some(lint) = unsafe { c_str(id) }.and_then(LintId::from_name) else {
        return NicEmuStatus::InvalidArgument;
    };
    // SAFETY: `dev` is NULL or live, by this function's contract.
    let h = unsafe { handle(dev) };
    with_device(h, |_, d| {
        let n = d
            .lints()
            .iter()
            .find(|f| f.id == lint)
            .map_or(0, |f| f.count);
        // SAFETY: `count` is NULL or valid for writes by contract.
        unsafe { put(count, n) }
    })
}

/// The findings as text, one line each: `id severity count message`. Writes at most
/// `len` bytes including the terminating NUL into `buf` and sets `*needed` to the size
/// the whole report needs (with its NUL); a report that did not fit is cut and the call
/// returns `NIC_EMU_STATUS_INVALID_LENGTH`. `buf` may be NULL when `len` is 0 (to ask
/// for the size).
///
/// # Safety
///
/// `dev` as for every call; `buf` is NULL or valid for writes of `len` bytes; `needed`
/// is NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn nic_emu_lint_report(
    dev: *mut NicEmuDevice,
    buf: *mut c_char,
    len: usize,
    needed: *mut usize,
) -> NicEmuStatus {
    if needed.is_null() || (buf.is_null() && len != 0) {
        return NicEmuStatus::NullPointer;
    }
    // SAFETY: `dev` is NULL or live, by this function's contract.
    let h = unsafe { handle(dev) };
    let mut text = String::new();
    let st = with_device(h, |_, d| {
        for f in d.lints() {
            let l = f.id.lint();
            text.push_str(&format!(
                "{} {} {} {}\n",
                l.name,
                l.severity.name(),
                f.count,
                f.message.replace('\n', " ")
            ));
        }
        NicEmuStatus::Ok
    });
    if st != NicEmuStatus::Ok {
        return st;
    }
    let bytes = text.as_bytes();
    // SAFETY: `needed` is not NULL and valid for writes by contract.
    unsafe { needed.write(bytes.len() + 1) };
    if len == 0 {
        return NicEmuStatus::InvalidLength;
    }
    let n = bytes.len().min(len - 1);
    // SAFETY: `buf` is valid for `len` bytes by contract and `n + 1 <= len`; the source
    // is a distinct Rust allocation.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf.cast::<u8>(), n);
        buf.add(n).write(0);
    }
    if n == bytes.len() {
        NicEmuStatus::Ok
    } else {
        NicEmuStatus::InvalidLength
    }
}

/// Forget every finding and count (between two runs of a driver on one device).
///
/// # Safety
///
/// `dev` as for every call.
#[no_mangle]
pub unsafe extern "C" fn nic_emu_lints_clear(dev: *mut NicEmuDevice) -> NicEmuStatus {
    // SAFETY: `dev` is NULL or live, by this function's contract.
    let h = unsafe { handle(dev) };
    with_device(h, |_, d| {
        d.clear_lints();
        NicEmuStatus::Ok
    })
}

/// `*count` = frames (or doorbells) not delivered for `reason` in `direction` (`"rx"` or
/// `"tx"`; reasons as in `nic_emu_drop_total`: `"filtered_broadcast"`, `"disabled"`,
/// ...). An unknown pair is `NIC_EMU_STATUS_INVALID_ARGUMENT`.
///
/// # Safety
///
/// `dev` as for every call; `direction` and `reason` are NULL or NUL-terminated strings;
/// `count` is NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn nic_emu_drop_count(
    dev: *mut NicEmuDevice,
    direction: *const c_char,
    reason: *const c_char,
    count: *mut u64,
) -> NicEmuStatus {
    if direction.is_null() || reason.is_null() {
        return NicEmuStatus::NullPointer;
    }
    // SAFETY: both are NUL-terminated strings by contract.
    let (Some(dir), Some(why)) = (unsafe { c_str(direction) }, unsafe { c_str(reason) }) else {
        return NicEmuStatus::InvalidArgument;
    };
    // SAFETY: `dev` is NULL or live, by this function's contract.
    let h = unsafe { handle(dev) };
    with_device(h, |_, d| {
        match d.drops().fields().iter().find(|f| f.0 == dir && f.1 == why) {
            // SAFETY: `count` is NULL or valid for writes by contract.
            Some(f) => unsafe { put(count, f.3) },
            None => NicEmuStatus::InvalidArgument,
        }
    })
}
