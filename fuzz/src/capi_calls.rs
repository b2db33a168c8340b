//! The `capi_calls` target: sequences of C API calls with arbitrary arguments.
//!
//! Pointers are NULL (where the contract allows NULL: everywhere but inside the memory
//! ranges) or made from live buffers exactly as long as the length passed with them. The
//! harness checks that no call panics (`NIC_EMU_STATUS_PANICKED`), that argument errors
//! are the documented ones (NULL, length, offset), that a callback calling back into
//! its own device gets `NIC_EMU_STATUS_REENTRANT`, and that the send callback's frame is
//! readable and as long as it says (AddressSanitizer checks the reads).

use std::ffi::{c_void, CStr};

use arbitrary::Arbitrary;
use nic_emu::capi::*;

/// Bytes of the embedder's guest memory (16 pages).
const MEM_LEN: usize = 16 * 4096;

/// A BAR or configuration offset.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum Off {
    /// Small.
    Small(u16),
    /// Any.
    Any(u64),
}

impl Off {
    fn get(self) -> u64 {
        match self {
            Self::Small(n) => u64::from(n),
            Self::Any(n) => n,
        }
    }
}

/// A guest memory range made from the embedder's buffer.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub struct Region {
    guest_addr: u64,
    page: u8,
    len: u16,
    misaligned: bool,
}

/// One C API call.
#[derive(Arbitrary, Clone, Debug)]
pub enum Call {
    ConfigRead {
        off: Off,
        len: u8,
        null: bool,
    },
    ConfigWrite {
        off: Off,
        len: u8,
        null: bool,
        val: u64,
    },
    BarRead {
        bar: u8,
        off: Off,
        len: u8,
        null: bool,
    },
    BarWrite {
        bar: u8,
        off: Off,
        len: u8,
        null: bool,
        val: u64,
    },
    /// A register write with a 4-byte value (reaches the device more often).
    Reg {
        reg: u16,
        val: u32,
    },
    ReceiveFrame {
        len: u16,
        null_frame: bool,
        null_outcome: bool,
        dst_self: bool,
        fill: u8,
    },
    RxReady {
        null: bool,
    },
    SetLink {
        up: bool,
    },
    IrqLevel {
        null: bool,
    },
    RunTimers,
    NextDeadline {
        null: bool,
    },
    NowNs {
        null: bool,
    },
    SetTime {
        ns: u64,
    },
    AdvanceTime {
        ns: u64,
    },
    GetMetrics {
        null: bool,
    },
    Reset,
    /// The lint calls: a total, a count by a (possibly unknown) name, the report into a
    /// buffer of `len` bytes, a clear.
    LintTotal {
        severity: u32,
        null: bool,
    },
    LintCount {
        name: Vec<u8>,
        null: bool,
    },
    LintReport {
        len: u16,
        null_buf: bool,
        null_needed: bool,
    },
    LintsClear,
    DropCount {
        direction: Vec<u8>,
        reason: Vec<u8>,
    },
    SetMemory {
        regions: Vec<Region>,
        null: bool,
        huge_count: bool,
    },
    StatusString {
        status: i32,
    },
    /// A call with a NULL device (index picks the function).
    NullDevice {
        which: u8,
    },
}

/// The input: the device's configuration, then calls.
#[derive(Arbitrary, Clone, Debug)]
pub struct Input {
    mac: [u8; 6],
    link_up: bool,
    clock: u8,
    send_cb: bool,
    irq_cb: bool,
    calls: Vec<Call>,
}

/// What the callbacks see.
struct Ctx {
    dev: *mut NicEmuDevice,
    sent: u64,
    irq_changes: u64,
}

unsafe extern "C" fn send_cb(user: *mut c_void, frame: *const u8, len: usize) -> bool {
    // SAFETY: `user` is the harness's `Ctx`, alive for the device's life.
    let ctx = unsafe { &mut *user.cast::<Ctx>() };
    assert!(!frame.is_null() && len > 0 && len <= NIC_EMU_MAX_FRAME);
    // SAFETY: the API promises `len` readable bytes for the call; ASan checks it.
    let f = unsafe { std::slice::from_raw_parts(frame, len) };
    std::hint::black_box(f.iter().fold(0u8, |a, b| a ^ b));
    let mut level = false;
    // SAFETY: the device is alive (we are inside one of its calls).
    let st = unsafe { nic_emu_irq_level(ctx.dev, &mut level) };
    assert_eq!(
        st,
        NicEmuStatus::Reentrant,
        "reentry from the send callback"
    );
    ctx.sent += 1;
    ctx.sent % 7 != 3 // refuse some frames: tx_backend_drops
}

unsafe extern "C" fn irq_cb(user: *mut c_void, _asserted: bool) {
    // SAFETY: as in `send_cb`.
    let ctx = unsafe { &mut *user.cast::<Ctx>() };
    let mut b = [0u8; 4];
    // SAFETY: as in `send_cb`; `b` is 4 writable bytes.
    let st = unsafe { nic_emu_bar_read(ctx.dev, 0, 8, b.as_mut_ptr(), 4) };
    assert_eq!(st, NicEmuStatus::Reentrant, "reentry from the irq callback");
    ctx.irq_changes += 1;
}

fn access_status(null: bool, off: u64, len: usize, size: u64) -> NicEmuStatus {
    if null {
        NicEmuStatus::NullPointer
    } else if !matches!(len, 1 | 2 | 4 | 8) {
        NicEmuStatus::InvalidLength
    } else if off.checked_add(len as u64).is_none_or(|e| e > size) {
        NicEmuStatus::OutOfRange
    } else {
        NicEmuStatus::Ok
    }
}

fn len_of(l: u8) -> usize {
    // Mostly access sizes and their neighbours; sometimes larger.
    match l % 16 {
        n @ 0..=9 => usize::from(n),
        n => usize::from(n) * 64,
    }
}

/// The embedder's guest memory: anonymous pages, unmapped on drop.
struct Mem(*mut u8);

impl Mem {
    fn new() -> Self {
        // SAFETY: an anonymous private mapping; the result is checked.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                MEM_LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED);
        Self(p.cast())
    }
}

impl Drop for Mem {
    fn drop(&mut self) {
        // SAFETY: our mapping; the device using it was destroyed first.
        unsafe { libc::munmap(self.0.cast(), MEM_LEN) };
    }
}

/// Run one input.
pub fn run(input: &Input) {
    let mem = Mem::new();
    let mut ctx = Box::new(Ctx {
        dev: std::ptr::null_mut(),
        sent: 0,
        irq_changes: 0,
    });
    let mut cfg = std::mem::MaybeUninit::<NicEmuConfig>::uninit();
    // SAFETY: a valid pointer to writable config storage.
    assert_eq!(
        unsafe { nic_emu_config_init(cfg.as_mut_ptr()) },
        NicEmuStatus::Ok
    );
    // SAFETY: initialised by nic_emu_config_init.
    let mut cfg = unsafe { cfg.assume_init() };
    cfg.mac = input.mac;
    cfg.link_up = input.link_up;
    cfg.clock = match input.clock % 4 {
        0 | 1 => NIC_EMU_CLOCK_MANUAL,
        2 => NIC_EMU_CLOCK_MONOTONIC,
        _ => u32::from(input.clock),
    };
    cfg.user_data = std::ptr::addr_of_mut!(*ctx).cast();
    cfg.send_frame = input.send_cb.then_some(send_cb as _);
    cfg.set_irq_level = input.irq_cb.then_some(irq_cb as _);
    let mut dev: *mut NicEmuDevice = std::ptr::dangling_mut();
    // SAFETY: valid config and out pointer.
    let st = unsafe { nic_emu_create(&cfg, &mut dev) };
    let valid_clock = matches!(cfg.clock, NIC_EMU_CLOCK_MANUAL | NIC_EMU_CLOCK_MONOTONIC);
    // A group or all-zero address is refused: a guest driver would refuse the card.
    let valid_mac = nic_emu::mac::MacAddress::new(cfg.mac)
        .check_station()
        .is_ok();
    if !(valid_clock && valid_mac) {
        assert_eq!(st, NicEmuStatus::InvalidArgument);
        assert!(dev.is_null(), "*out set to NULL on failure");
        for call in &input.calls {
            if let Call::NullDevice { which } = call {
                null_device(*which);
            }
        }
        return;
    }
    assert_eq!(st, NicEmuStatus::Ok);
    ctx.dev = dev;
    let manual = cfg.clock == NIC_EMU_CLOCK_MANUAL;
    for call in &input.calls {
        // SAFETY: `dev` is live; every pointer below is NULL or a live buffer of the
        // length passed with it.
        let st = unsafe { one(dev, call, &mem, manual) };
        assert_ne!(
            st,
            NicEmuStatus::Panicked,
            "{call:?} panicked inside the library"
        );
    }
    // SAFETY: live, not used again.
    assert_eq!(unsafe { nic_emu_destroy(dev) }, NicEmuStatus::Ok);
    drop(mem);
}

fn null_device(which: u8) {
    let null = std::ptr::null_mut();
    let mut b = [0u8; 4];
    let mut flag = false;
    let mut n = 0u64;
    // SAFETY: a NULL device is allowed by every call's contract.
    let st = unsafe {
        match which % 8 {
            0 => nic_emu_config_read(null, 0, b.as_mut_ptr(), 4),
            1 => nic_emu_bar_write(null, 0, 0, b.as_ptr(), 4),
            2 => nic_emu_rx_ready(null, &mut flag),
            3 => nic_emu_run_timers(null),
            4 => nic_emu_now_ns(null, &mut n),
            5 => nic_emu_set_link(null, true),
            6 => nic_emu_reset(null),
            _ => nic_emu_destroy(null),
        }
    };
    assert_eq!(st, NicEmuStatus::NullPointer, "NULL device, call {which}");
}

/// # Safety
///
/// `dev` is live.
unsafe fn one(dev: *mut NicEmuDevice, call: &Call, mem: &Mem, manual: bool) -> NicEmuStatus {
    // SAFETY (whole body): `dev` is live by contract; each pointer is NULL or a buffer
    // of the length passed.
    unsafe {
        match call {
            Call::ConfigRead { off, len, null } => {
                let len = len_of(*len);
                let mut b = vec![0u8; len];
                let p = if *null {
                    std::ptr::null_mut()
                } else {
                    b.as_mut_ptr()
                };
                let st = nic_emu_config_read(dev, off.get(), p, len);
                assert_eq!(
                    st,
                    access_status(*null, off.get(), len, NIC_EMU_CONFIG_SPACE_SIZE),
                    "{call:?}"
                );
                st
            }
            Call::ConfigWrite {
                off,
                len,
                null,
                val,
            } => {
                let len = len_of(*len);
                let b: Vec<u8> = (0..len).map(|i| val.to_le_bytes()[i % 8]).collect();
                let p = if *null { std::ptr::null() } else { b.as_ptr() };
                let st = nic_emu_config_write(dev, off.get(), p, len);
                assert_eq!(
                    st,
                    access_status(*null, off.get(), len, NIC_EMU_CONFIG_SPACE_SIZE),
                    "{call:?}"
                );
                st
            }
            Call::BarRead {
                bar,
                off,
                len,
                null,
            } => {
                let len = len_of(*len);
                let bar = u32::from(*bar % 3);
                let mut b = vec![0u8; len];
                let p = if *null {
                    std::ptr::null_mut()
                } else {
                    b.as_mut_ptr()
                };
                let st = nic_emu_bar_read(dev, bar, off.get(), p, len);
                bar_check(st, bar, *null, off.get(), len, call);
                st
            }
            Call::BarWrite {
                bar,
                off,
                len,
                null,
                val,
            } => {
                let len = len_of(*len);
                let bar = u32::from(*bar % 3);
                let b: Vec<u8> = (0..len).map(|i| val.to_le_bytes()[i % 8]).collect();
                let p = if *null { std::ptr::null() } else { b.as_ptr() };
                let st = nic_emu_bar_write(dev, bar, off.get(), p, len);
                bar_check(st, bar, *null, off.get(), len, call);
                st
            }
            Call::Reg { reg, val } => {
                let off = u64::from(*reg & !3);
                let st = nic_emu_bar_write(dev, 0, off, val.to_le_bytes().as_ptr(), 4);
                assert_eq!(st, NicEmuStatus::Ok, "{call:?}");
                st
            }
            Call::ReceiveFrame {
                len,
                null_frame,
                null_outcome,
                dst_self,
                fill,
            } => {
                let len = usize::from(*len);
                let mut f: Vec<u8> = (0..len).map(|i| fill.wrapping_add(i as u8)).collect();
                if *dst_self && len >= 6 {
                    f[..6].copy_from_slice(&[0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
                }
                let mut out = NicEmuRxOutcome::Dropped;
                let fp = if *null_frame {
                    std::ptr::null()
                } else {
                    f.as_ptr()
                };
                let op: *mut NicEmuRxOutcome = if *null_outcome {
                    std::ptr::null_mut()
                } else {
                    &mut out
                };
                let st = nic_emu_receive_frame(dev, fp, len, op);
                let want = if *null_frame || *null_outcome {
                    NicEmuStatus::NullPointer
                } else if len == 0 || len > NIC_EMU_MAX_FRAME {
                    NicEmuStatus::InvalidLength
                } else {
                    NicEmuStatus::Ok
                };
                assert_eq!(st, want, "{call:?}");
                st
            }
            Call::RxReady { null } => {
                let mut b = false;
                let p: *mut bool = if *null { std::ptr::null_mut() } else { &mut b };
                let st = nic_emu_rx_ready(dev, p);
                assert_eq!(st == NicEmuStatus::Ok, !*null, "{call:?}");
                st
            }
            Call::SetLink { up } => nic_emu_set_link(dev, *up),
            Call::IrqLevel { null } => {
                let mut b = false;
                let p: *mut bool = if *null { std::ptr::null_mut() } else { &mut b };
                let st = nic_emu_irq_level(dev, p);
                assert_eq!(st == NicEmuStatus::Ok, !*null, "{call:?}");
                st
            }
            Call::RunTimers => nic_emu_run_timers(dev),
            Call::NextDeadline { null } => {
                let mut n = 0u64;
                let p: *mut u64 = if *null { std::ptr::null_mut() } else { &mut n };
                let st = nic_emu_next_timer_deadline(dev, p);
                assert_eq!(st == NicEmuStatus::Ok, !*null, "{call:?}");
                st
            }
            Call::NowNs { null } => {
                let mut n = 0u64;
                let p: *mut u64 = if *null { std::ptr::null_mut() } else { &mut n };
                let st = nic_emu_now_ns(dev, p);
                assert_eq!(st == NicEmuStatus::Ok, !*null, "{call:?}");
                st
            }
            Call::SetTime { ns } => {
                let st = nic_emu_set_time_ns(dev, *ns);
                assert_eq!(st == NicEmuStatus::Ok, manual, "{call:?}");
                st
            }
            Call::AdvanceTime { ns } => {
                let st = nic_emu_advance_time_ns(dev, *ns);
                assert_eq!(st == NicEmuStatus::Ok, manual, "{call:?}");
                st
            }
            Call::GetMetrics { null } => {
                let mut m = std::mem::MaybeUninit::<NicEmuMetrics>::uninit();
                let p = if *null {
                    std::ptr::null_mut()
                } else {
                    m.as_mut_ptr()
                };
                let st = nic_emu_get_metrics(dev, p);
                assert_eq!(st == NicEmuStatus::Ok, !*null, "{call:?}");
                st
            }
            Call::Reset => nic_emu_reset(dev),
            Call::LintTotal { severity, null } => {
                let mut n = 0u64;
                let p: *mut u64 = if *null { std::ptr::null_mut() } else { &mut n };
                let st = nic_emu_lint_total(dev, *severity, p);
                assert_eq!(st == NicEmuStatus::Ok, !*null && *severity <= 1, "{call:?}");
                st
            }
            Call::LintCount { name, null } => {
                let mut c: Vec<u8> = name.iter().copied().filter(|&b| b != 0).collect();
                c.push(0);
                let mut n = 0u64;
                let p: *mut u64 = if *null { std::ptr::null_mut() } else { &mut n };
                nic_emu_lint_count(dev, c.as_ptr().cast(), p)
            }
            Call::LintReport {
                len,
                null_buf,
                null_needed,
            } => {
                let len = usize::from(*len);
                let mut buf = vec![0x55u8; len];
                let mut needed = 0usize;
                let bp = if *null_buf {
                    std::ptr::null_mut()
                } else {
                    buf.as_mut_ptr().cast()
                };
                let np: *mut usize = if *null_needed {
                    std::ptr::null_mut()
                } else {
                    &mut needed
                };
                let st = nic_emu_lint_report(dev, bp, len, np);
                if !*null_buf
                    && len > 0
                    && (st == NicEmuStatus::Ok || st == NicEmuStatus::InvalidLength)
                {
                    // Always NUL-terminated within the buffer.
                    assert!(buf.contains(&0), "{call:?}");
                }
                st
            }
            Call::LintsClear => nic_emu_lints_clear(dev),
            Call::DropCount { direction, reason } => {
                let mut d: Vec<u8> = direction.iter().copied().filter(|&b| b != 0).collect();
                d.push(0);
                let mut r: Vec<u8> = reason.iter().copied().filter(|&b| b != 0).collect();
                r.push(0);
                let mut n = 0u64;
                nic_emu_drop_count(dev, d.as_ptr().cast(), r.as_ptr().cast(), &mut n)
            }
            Call::SetMemory {
                regions,
                null,
                huge_count,
            } => {
                let list: Vec<NicEmuMemRegion> = regions
                    .iter()
                    .take(8)
                    .map(|r| {
                        let page = usize::from(r.page) % 16;
                        let at = page * 4096 + usize::from(r.misaligned);
                        let len = usize::from(r.len).min(MEM_LEN - at);
                        NicEmuMemRegion {
                            guest_addr: r.guest_addr,
                            host_addr: mem.0.add(at).cast(),
                            len,
                        }
                    })
                    .collect();
                if *huge_count {
                    // Too many ranges: refused before the list is read (NULL, so the
                    // contract holds either way).
                    let st = nic_emu_set_memory(dev, std::ptr::null(), NIC_EMU_MAX_MEM_REGIONS + 1);
                    assert_eq!(st, NicEmuStatus::InvalidLength, "{call:?}");
                    return st;
                }
                let p = if *null {
                    std::ptr::null()
                } else {
                    list.as_ptr()
                };
                let st = nic_emu_set_memory(dev, p, list.len());
                if *null && !list.is_empty() {
                    assert_eq!(st, NicEmuStatus::NullPointer, "{call:?}");
                }
                st
            }
            Call::StatusString { status } => {
                let s = nic_emu_status_string(*status);
                assert!(!s.is_null());
                let _ = CStr::from_ptr(s).to_str().expect("ASCII");
                let v = nic_emu_version();
                let _ = CStr::from_ptr(v).to_str().expect("ASCII");
                NicEmuStatus::Ok
            }
            Call::NullDevice { which } => {
                null_device(*which);
                NicEmuStatus::Ok
            }
        }
    }
}

fn bar_check(st: NicEmuStatus, bar: u32, null: bool, off: u64, len: usize, call: &Call) {
    let want = match bar {
        NIC_EMU_BAR_MMIO => access_status(null, off, len, 0x2_0000),
        NIC_EMU_BAR_IO => access_status(null, off, len, 0x40),
        _ => NicEmuStatus::InvalidArgument,
    };
    assert_eq!(st, want, "{call:?}");
}

impl Input {
    /// Number of calls (for the seed writer's file names).
    pub fn calls_len(&self) -> usize {
        self.calls.len()
    }
}
