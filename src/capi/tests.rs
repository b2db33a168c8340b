//! Unit tests of the C API called from Rust: argument rejection, panics, strings; and the
//! helpers `tests_device` shares (guest RAM the "embedder" owns, callbacks that record).

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::cell::{Cell, RefCell};
use std::ffi::c_void;
use std::ptr::{null, null_mut};

use super::*;
use crate::device::regs::*;

pub(super) const RAM_BASE: u64 = 0x1000_0000;
pub(super) const RAM_SIZE: usize = 64 << 10;
pub(super) const RX_RING: u64 = RAM_BASE;
pub(super) const RX_BUFS: u64 = RAM_BASE + 0x1000;

/// Page-aligned host memory standing in for the embedder's guest RAM.
pub(super) struct HostRam {
    pub(super) ptr: *mut u8,
    pub(super) layout: Layout,
}

impl HostRam {
    pub(super) fn new(size: usize) -> Self {
        let layout = Layout::from_size_align(size, 4096).unwrap();
        // SAFETY: the layout has a nonzero size.
        let ptr = unsafe { alloc_zeroed(layout) };
        assert!(!ptr.is_null());
        Self { ptr, layout }
    }
    /// Copy `len` bytes out of guest RAM at `gpa`.
    pub(super) fn read(&self, gpa: u64, len: usize) -> Vec<u8> {
        let off = (gpa - RAM_BASE) as usize;
        assert!(off + len <= self.layout.size());
        let mut v = vec![0u8; len];
        // SAFETY: in bounds (asserted); the source is initialised memory we own.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr.add(off), v.as_mut_ptr(), len) };
        v
    }
    /// Copy `data` into guest RAM at `gpa`.
    pub(super) fn write(&self, gpa: u64, data: &[u8]) {
        let off = (gpa - RAM_BASE) as usize;
        assert!(off + data.len() <= self.layout.size());
        // SAFETY: in bounds (asserted); nobody holds a reference into this memory.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.add(off), data.len()) };
    }
}

impl Drop for HostRam {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { dealloc(self.ptr, self.layout) }
    }
}

/// What the callbacks record. Shared (`&Seen`) between the test and the callbacks, so
/// every field that changes is a `Cell` or `RefCell`.
#[derive(Default)]
pub(super) struct Seen {
    pub(super) dev: Cell<*mut NicEmuDevice>,
    pub(super) other: Cell<*mut NicEmuDevice>,
    pub(super) irq_levels: RefCell<Vec<bool>>,
    pub(super) reentry: Cell<Option<NicEmuStatus>>,
    pub(super) other_call: Cell<Option<NicEmuStatus>>,
    pub(super) sent: RefCell<Vec<Vec<u8>>>,
    pub(super) refuse_sends: Cell<bool>,
}

pub(super) unsafe extern "C" fn on_send(user: *mut c_void, frame: *const u8, len: usize) -> bool {
    // SAFETY: the tests pass a live `Seen` as user data (only shared references to it
    // exist); the device passes a frame valid for `len` bytes.
    let (seen, frame) = unsafe {
        (
            &*user.cast_const().cast::<Seen>(),
            std::slice::from_raw_parts(frame, len),
        )
    };
    seen.sent.borrow_mut().push(frame.to_vec());
    !seen.refuse_sends.get()
}

pub(super) unsafe extern "C" fn on_irq(user: *mut c_void, asserted: bool) {
    // SAFETY: the tests pass a live `Seen` as user data (only shared references to it).
    let seen = unsafe { &*user.cast_const().cast::<Seen>() };
    seen.irq_levels.borrow_mut().push(asserted);
    let mut ready = false;
    if !seen.dev.get().is_null() && seen.reentry.get().is_none() {
        // SAFETY: `dev` is live for the whole test.
        seen.reentry.set(Some(unsafe {
            nic_emu_rx_ready(seen.dev.get(), &mut ready)
        }));
    }
    if !seen.other.get().is_null() && seen.other_call.get().is_none() {
        // SAFETY: `other` is live for the whole test.
        seen.other_call.set(Some(unsafe {
            nic_emu_rx_ready(seen.other.get(), &mut ready)
        }));
    }
}

pub(super) fn create(seen: &Seen) -> *mut NicEmuDevice {
    let mut cfg = std::mem::MaybeUninit::<NicEmuConfig>::uninit();
    // SAFETY: valid for writes; initialised on success, which is asserted.
    let mut cfg = unsafe {
        assert_eq!(nic_emu_config_init(cfg.as_mut_ptr()), NicEmuStatus::Ok);
        cfg.assume_init()
    };
    cfg.user_data = std::ptr::from_ref(seen).cast_mut().cast();
    cfg.set_irq_level = Some(on_irq);
    cfg.send_frame = Some(on_send);
    let mut dev = null_mut();
    // SAFETY: valid config and out-pointer.
    assert_eq!(unsafe { nic_emu_create(&cfg, &mut dev) }, NicEmuStatus::Ok);
    assert!(!dev.is_null());
    dev
}

pub(super) fn wr32(dev: *mut NicEmuDevice, off: u32, v: u32) {
    let b = v.to_le_bytes();
    // SAFETY: live device, 4 readable bytes.
    let st = unsafe { nic_emu_bar_write(dev, NIC_EMU_BAR_MMIO, u64::from(off), b.as_ptr(), 4) };
    assert_eq!(st, NicEmuStatus::Ok);
}

pub(super) fn rd32(dev: *mut NicEmuDevice, off: u32) -> u32 {
    let mut b = [0u8; 4];
    // SAFETY: live device, 4 writable bytes.
    let st = unsafe { nic_emu_bar_read(dev, NIC_EMU_BAR_MMIO, u64::from(off), b.as_mut_ptr(), 4) };
    assert_eq!(st, NicEmuStatus::Ok);
    u32::from_le_bytes(b)
}

/// Map `ram`, enable bus mastering, post 8 receive buffers (RDLEN is a multiple of 128)
/// and enable the receiver.
pub(super) fn bring_up_rx(dev: *mut NicEmuDevice, ram: &HostRam) {
    let region = NicEmuMemRegion {
        guest_addr: RAM_BASE,
        host_addr: ram.ptr.cast(),
        len: RAM_SIZE,
    };
    // SAFETY: `ram` outlives the device in every test (destroyed first).
    let st = unsafe { nic_emu_set_memory(dev, &region, 1) };
    assert_eq!(st, NicEmuStatus::Ok);
    let cmd = 0x7u16.to_le_bytes();
    // SAFETY: live device, 2 readable bytes.
    let st = unsafe { nic_emu_config_write(dev, 4, cmd.as_ptr(), 2) };
    assert_eq!(st, NicEmuStatus::Ok);
    for i in 0..8u64 {
        ram.write(RX_RING + 16 * i, &(RX_BUFS + 2048 * i).to_le_bytes());
    }
    wr32(dev, RDBAL, RX_RING as u32);
    wr32(dev, RDBAH, (RX_RING >> 32) as u32);
    wr32(dev, RDLEN, 8 * 16);
    wr32(dev, RDH, 0);
    wr32(dev, RDT, 7);
    wr32(dev, IMS, ICR_RXT0);
    wr32(dev, RCTL, RCTL_EN | RCTL_SECRC);
}

pub(super) fn frame_to(mac: [u8; 6]) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[..6].copy_from_slice(&mac);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f
}

pub(super) fn destroy(dev: *mut NicEmuDevice) {
    // SAFETY: live device, not used afterwards.
    assert_eq!(unsafe { nic_emu_destroy(dev) }, NicEmuStatus::Ok);
}

#[test]
fn constants_match_the_device() {
    assert_eq!(NIC_EMU_MAX_FRAME, crate::wire::MAX_FRAME);
    assert_eq!(
        NIC_EMU_CONFIG_SPACE_SIZE,
        crate::device::pci_config::CONFIG_SIZE as u64
    );
    assert_eq!(Bar::from_index(NIC_EMU_BAR_MMIO), Some(Bar::Mmio));
    assert_eq!(Bar::from_index(NIC_EMU_BAR_IO), Some(Bar::Io));
}

/// The C header's `NicEmuMetrics` lists the metrics of `metrics_table!` in its order (the
/// struct literal in types.rs checks the names; this, the layout C code compiles against).
#[test]
fn c_metrics_struct_follows_the_metrics_table() {
    let header = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/include/nic_emu.h"))
        .expect("include/nic_emu.h");
    let start = header
        .find("typedef struct NicEmuMetrics {")
        .expect("NicEmuMetrics in the header");
    let body = &header[start..];
    let body = &body[..body.find("} NicEmuMetrics;").expect("end of NicEmuMetrics")];
    let fields: Vec<&str> = body
        .lines()
        .filter_map(|l| l.trim().strip_prefix("uint64_t "))
        .map(|f| f.trim_end_matches(';'))
        .collect();
    let want: Vec<&str> = crate::device::Metrics::FIELDS.iter().map(|f| f.0).collect();
    assert_eq!(fields, want);
    assert_eq!(
        std::mem::size_of::<NicEmuMetrics>(),
        8 * crate::device::Metrics::COUNT
    );
    let m = crate::device::Metrics {
        tx_no_link: 5,
        dma_map_edits: 7,
        ..Default::default()
    };
    let c = NicEmuMetrics::from(&m);
    assert_eq!((c.tx_no_link, c.dma_map_edits, c.reg_reads), (5, 7, 0));
}

#[test]
fn null_pointers_are_rejected() {
    use NicEmuStatus::NullPointer;
    let mut b = [0u8; 4];
    let mut flag = false;
    let mut n = 0u64;
    let mut o = NicEmuRxOutcome::Dropped;
    let mut m = NicEmuMetrics::default();
    let d = null_mut();
    // SAFETY: NULL is allowed for every pointer argument; the other pointers are valid.
    unsafe {
        assert_eq!(nic_emu_config_init(null_mut()), NullPointer);
        assert_eq!(nic_emu_create(null(), null_mut()), NullPointer);
        let mut out = std::ptr::dangling_mut::<NicEmuDevice>();
        assert_eq!(nic_emu_create(null(), &mut out), NullPointer);
        assert!(out.is_null(), "*out is cleared on failure");
        assert_eq!(nic_emu_destroy(d), NullPointer);
        assert_eq!(nic_emu_set_memory(d, null(), 0), NullPointer);
        assert_eq!(nic_emu_config_read(d, 0, b.as_mut_ptr(), 4), NullPointer);
        assert_eq!(nic_emu_config_write(d, 0, b.as_ptr(), 4), NullPointer);
        assert_eq!(nic_emu_bar_read(d, 0, 0, b.as_mut_ptr(), 4), NullPointer);
        assert_eq!(nic_emu_bar_write(d, 0, 0, b.as_ptr(), 4), NullPointer);
        assert_eq!(nic_emu_receive_frame(d, b.as_ptr(), 4, &mut o), NullPointer);
        assert_eq!(nic_emu_rx_ready(d, &mut flag), NullPointer);
        assert_eq!(nic_emu_set_link(d, true), NullPointer);
        assert_eq!(nic_emu_irq_level(d, &mut flag), NullPointer);
        assert_eq!(nic_emu_run_timers(d), NullPointer);
        assert_eq!(nic_emu_next_timer_deadline(d, &mut n), NullPointer);
        assert_eq!(nic_emu_now_ns(d, &mut n), NullPointer);
        assert_eq!(nic_emu_set_time_ns(d, 1), NullPointer);
        assert_eq!(nic_emu_advance_time_ns(d, 1), NullPointer);
        assert_eq!(nic_emu_get_metrics(d, &mut m), NullPointer);
        assert_eq!(nic_emu_reset(d), NullPointer);

        let seen = Seen::default();
        let dev = create(&seen);
        assert_eq!(nic_emu_config_read(dev, 0, null_mut(), 4), NullPointer);
        assert_eq!(nic_emu_config_write(dev, 0, null(), 4), NullPointer);
        assert_eq!(nic_emu_bar_read(dev, 0, 0, null_mut(), 4), NullPointer);
        assert_eq!(nic_emu_bar_write(dev, 0, 0, null(), 4), NullPointer);
        assert_eq!(nic_emu_receive_frame(dev, null(), 60, &mut o), NullPointer);
        assert_eq!(
            nic_emu_receive_frame(dev, b.as_ptr(), 4, null_mut()),
            NullPointer
        );
        assert_eq!(nic_emu_rx_ready(dev, null_mut()), NullPointer);
        assert_eq!(nic_emu_irq_level(dev, null_mut()), NullPointer);
        assert_eq!(nic_emu_next_timer_deadline(dev, null_mut()), NullPointer);
        assert_eq!(nic_emu_now_ns(dev, null_mut()), NullPointer);
        assert_eq!(nic_emu_get_metrics(dev, null_mut()), NullPointer);
        assert_eq!(nic_emu_set_memory(dev, null(), 1), NullPointer);
        // Nothing was counted: rejected calls never reached the device.
        assert_eq!(nic_emu_get_metrics(dev, &mut m), NicEmuStatus::Ok);
        assert_eq!(m, NicEmuMetrics::default());
        destroy(dev);
    }
}

#[test]
fn bad_lengths_offsets_and_indices_are_rejected() {
    use NicEmuStatus::*;
    let seen = Seen::default();
    let dev = create(&seen);
    let mut b = [0u8; 16];
    let mut o = NicEmuRxOutcome::Delivered;
    let big = vec![0u8; NIC_EMU_MAX_FRAME + 1];
    // SAFETY: live device; buffers are at least as long as the lengths passed, except
    // where the length is the thing rejected before any access.
    unsafe {
        for len in [0, 3, 5, 16] {
            assert_eq!(
                nic_emu_bar_read(dev, 0, 0, b.as_mut_ptr(), len),
                InvalidLength
            );
            assert_eq!(nic_emu_bar_write(dev, 0, 0, b.as_ptr(), len), InvalidLength);
            assert_eq!(
                nic_emu_config_read(dev, 0, b.as_mut_ptr(), len),
                InvalidLength
            );
            assert_eq!(nic_emu_config_write(dev, 0, b.as_ptr(), len), InvalidLength);
        }
        assert_eq!(
            nic_emu_bar_read(dev, 0, 0x1_FFFC, b.as_mut_ptr(), 8),
            OutOfRange
        );
        assert_eq!(
            nic_emu_bar_read(dev, 0, u64::MAX - 1, b.as_mut_ptr(), 4),
            OutOfRange
        );
        assert_eq!(nic_emu_bar_write(dev, 1, 0x40, b.as_ptr(), 4), OutOfRange);
        assert_eq!(nic_emu_config_read(dev, 255, b.as_mut_ptr(), 2), OutOfRange);
        assert_eq!(nic_emu_config_write(dev, 256, b.as_ptr(), 1), OutOfRange);
        assert_eq!(
            nic_emu_bar_read(dev, 2, 0, b.as_mut_ptr(), 4),
            InvalidArgument
        );
        assert_eq!(
            nic_emu_bar_write(dev, u32::MAX, 0, b.as_ptr(), 4),
            InvalidArgument
        );
        assert_eq!(
            nic_emu_receive_frame(dev, b.as_ptr(), 0, &mut o),
            InvalidLength
        );
        assert_eq!(
            nic_emu_receive_frame(dev, big.as_ptr(), big.len(), &mut o),
            InvalidLength
        );
        assert_eq!(o, NicEmuRxOutcome::Delivered, "not written on error");
        let r = NicEmuMemRegion {
            guest_addr: 0,
            host_addr: b.as_mut_ptr().cast(),
            len: 16,
        };
        assert_eq!(
            nic_emu_set_memory(dev, &r, NIC_EMU_MAX_MEM_REGIONS + 1),
            InvalidLength
        );
        // The edges that are allowed.
        assert_eq!(nic_emu_bar_read(dev, 0, 0x1_FFF8, b.as_mut_ptr(), 8), Ok);
        assert_eq!(nic_emu_bar_read(dev, 1, 0x3C, b.as_mut_ptr(), 4), Ok);
        assert_eq!(nic_emu_config_read(dev, 252, b.as_mut_ptr(), 4), Ok);
        assert_eq!(nic_emu_config_read(dev, 0, b.as_mut_ptr(), 8), Ok);
        assert_eq!(&b[..4], &[0x86, 0x80, 0x0E, 0x10]);
    }
    destroy(dev);
}

#[test]
fn bad_memory_maps_are_rejected_and_the_old_map_kept() {
    let seen = Seen::default();
    let dev = create(&seen);
    let ram = HostRam::new(RAM_SIZE);
    bring_up_rx(dev, &ram);
    let page = |off: usize, gpa: u64, len: usize| NicEmuMemRegion {
        guest_addr: gpa,
        // SAFETY: `off` is within `ram`.
        host_addr: unsafe { ram.ptr.add(off) }.cast(),
        len,
    };
    let bad: [&[NicEmuMemRegion]; 4] = [
        &[page(1, RAM_BASE, 4096)],        // unaligned host
        &[page(0, RAM_BASE, 0)],           // empty
        &[page(0, u64::MAX - 4095, 8192)], // wraps
        &[page(0, RAM_BASE, 8192), page(8192, RAM_BASE + 4096, 4096)], // overlaps
    ];
    for regions in bad {
        // SAFETY: every range lies inside `ram`, which outlives the device.
        let st = unsafe { nic_emu_set_memory(dev, regions.as_ptr(), regions.len()) };
        assert_eq!(st, NicEmuStatus::MemoryMap, "{regions:?}");
    }
    // The map from bring-up still works.
    let f = frame_to(MacAddress::DEFAULT.octets());
    let mut o = NicEmuRxOutcome::Dropped;
    // SAFETY: live device, valid frame and out-pointer.
    let st = unsafe { nic_emu_receive_frame(dev, f.as_ptr(), f.len(), &mut o) };
    assert_eq!(st, NicEmuStatus::Ok);
    assert_eq!(o, NicEmuRxOutcome::Delivered);
    // Two disjoint regions are fine; an empty map makes every DMA fail (and be counted).
    let two = [
        page(0, RAM_BASE, 8192),
        page(8192, RAM_BASE + 0x10_0000, 8192),
    ];
    // SAFETY: as above.
    unsafe {
        assert_eq!(nic_emu_set_memory(dev, two.as_ptr(), 2), NicEmuStatus::Ok);
        assert_eq!(nic_emu_set_memory(dev, null(), 0), NicEmuStatus::Ok);
    }
    destroy(dev);
}
#[test]
fn panics_become_a_status_and_poison_the_device() {
    assert_eq!(guard(|| panic!("test panic")), NicEmuStatus::Panicked);
    let seen = Seen::default();
    let dev = create(&seen);
    // SAFETY: live device.
    let h = unsafe { handle(dev) };
    assert_eq!(
        with_device(h, |_, _| panic!("panic with the device locked")),
        NicEmuStatus::Panicked
    );
    // SAFETY: live device.
    assert_eq!(unsafe { nic_emu_run_timers(dev) }, NicEmuStatus::Panicked);
    destroy(dev);
}

#[test]
fn strings_are_static_and_nul_terminated() {
    for st in [0, -1, -2, -3, -4, -5, -6, -7, -8, -9, 42, i32::MIN] {
        // SAFETY: the function returns a static NUL-terminated string.
        let s = unsafe { std::ffi::CStr::from_ptr(nic_emu_status_string(st)) };
        assert!(!s.to_bytes().is_empty());
    }
    // SAFETY: as above.
    let v = unsafe { std::ffi::CStr::from_ptr(nic_emu_version()) };
    assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
}

/// Bad arguments are refused before anything is installed (tests/sandbox.rs installs a
/// filter for real, in a child process).
#[test]
fn sandbox_thread_refuses_bad_lists_without_installing() {
    // SAFETY: a NULL list with a non-zero count is what is being refused.
    let st = unsafe { nic_emu_sandbox_thread(std::ptr::null(), 1) };
    assert_eq!(st, NicEmuStatus::NullPointer);
    let names = [c"read".as_ptr(), std::ptr::null()];
    // SAFETY: two readable pointers, the second NULL (refused).
    let st = unsafe { nic_emu_sandbox_thread(names.as_ptr(), 2) };
    assert_eq!(st, NicEmuStatus::NullPointer);
    let names = [c"read".as_ptr(), c"no_such_call".as_ptr()];
    // SAFETY: two NUL-terminated strings.
    let st = unsafe { nic_emu_sandbox_thread(names.as_ptr(), 2) };
    let want = if cfg!(feature = "sandbox") {
        NicEmuStatus::InvalidArgument
    } else {
        NicEmuStatus::Unsupported
    };
    assert_eq!(st, want);
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
    assert!(
        status.contains("Seccomp:\t0"),
        "a filter was installed:\n{status}"
    );
}

/// (space, offset, length, value, write?): offsets near both ends of BAR0 and anywhere.
fn access_strategy() -> impl proptest::strategy::Strategy<Value = (u32, u64, usize, u64, bool)> {
    use proptest::prelude::*;
    let offset = prop_oneof![0u64..0x20, 0x1FFF0u64..0x20010, any::<u64>()];
    (0u32..4, offset, 0usize..12, any::<u64>(), any::<bool>())
}

proptest::proptest! {
    /// Any BAR or config access the embedder makes either succeeds exactly when the
    /// index, length and range are valid, or is rejected; the device never panics (a
    /// caught panic would show as `Panicked`).
    #[test]
    fn any_access_is_accepted_exactly_when_valid(
        ops in proptest::collection::vec(access_strategy(), 1..64)
    ) {
        let seen = Seen::default();
        let dev = create(&seen);
        let ram = HostRam::new(RAM_SIZE);
        bring_up_rx(dev, &ram);
        for (space, offset, len, value, write) in ops {
            let mut buf = value.to_le_bytes().to_vec();
            buf.resize(len.max(8), 0);
            // space 0/1: BAR0/BAR1, 2: config space, 3: a BAR index that does not exist
            let (size, bar) = match space {
                0 => (0x2_0000u64, Some(0)),
                1 => (0x40, Some(1)),
                2 => (256, None),
                _ => (0, Some(7)),
            };
            // SAFETY: live device; `buf` holds at least `len` bytes.
            let st = unsafe {
                match (bar, write) {
                    (Some(b), true) => nic_emu_bar_write(dev, b, offset, buf.as_ptr(), len),
                    (Some(b), false) => nic_emu_bar_read(dev, b, offset, buf.as_mut_ptr(), len),
                    (None, true) => nic_emu_config_write(dev, offset, buf.as_ptr(), len),
                    (None, false) => nic_emu_config_read(dev, offset, buf.as_mut_ptr(), len),
                }
            };
            let expected = if space == 3 {
                NicEmuStatus::InvalidArgument
            } else if !matches!(len, 1 | 2 | 4 | 8) {
                NicEmuStatus::InvalidLength
            } else if offset.checked_add(len as u64).is_none_or(|end| end > size) {
                NicEmuStatus::OutOfRange
            } else {
                NicEmuStatus::Ok
            };
            proptest::prop_assert_eq!(st, expected, "space {} offset {:#x} len {}",
                space, offset, len);
        }
        destroy(dev);
    }
}
