//! DMA_MAP and DMA_UNMAP as a guest with a virtual IOMMU sends them, over a real socket:
//! many small maps torn down by one large unmap, unmap-all, a range that would cut a map,
//! overlapping maps, read-only maps, DMA after unmap (refused, counted, nothing written),
//! unsealed files, and a client that leaves with maps in place.
#![cfg(feature = "vfio-user")]

use crate::support::vfio;

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

use nic_emu::device::regs::*;
use vfio::*;
use vfio_user::{Client, DmaMapFlags, DmaUnmapFlags, Error};

const PAGE: u64 = 4096;
/// Where the test's "IOMMU" puts the rings and buffers (IO virtual addresses).
const IOVA_RINGS: u64 = 0xfff0_0000;
const IOVA_BUFS: u64 = 0x1_0000_0000;

fn errno(r: Result<(), Error>) -> u32 {
    match r {
        Err(Error::ErrorReply(e)) => e,
        other => panic!("expected an error reply, got {other:?}"),
    }
}

fn regions(s: &Running) -> usize {
    s.device.lock().memory().region_count()
}

fn dma_errors(s: &Running) -> u64 {
    s.device.lock().metrics().dma_errors
}

/// How many mappings of memfds called `name` this process has (from /proc/self/maps).
fn host_mappings_of(name: &str) -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&format!("memfd:{name} ")) || l.ends_with(&format!("memfd:{name}")))
        .count()
}

/// A sealed memfd with its own name, so its mappings can be counted.
fn named_memfd(name: &str, size: u64) -> File {
    let c = std::ffi::CString::new(name).unwrap();
    // SAFETY: a valid NUL-terminated name; memfd_create returns a new descriptor or -1.
    let raw =
        unsafe { libc::memfd_create(c.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    assert!(raw >= 0);
    // SAFETY: `raw` is a new descriptor nobody else owns.
    let f =
        File::from(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) });
    f.set_len(size).unwrap();
    // SAFETY: F_ADD_SEALS on our descriptor; no memory passed.
    assert_eq!(
        unsafe {
            libc::fcntl(
                f.as_raw_fd(),
                libc::F_ADD_SEALS,
                libc::F_SEAL_SHRINK | libc::F_SEAL_GROW,
            )
        },
        0
    );
    f
}

/// A guest's vIOMMU maps each page separately: `n` pages of `mem` starting at file
/// offset `off`, at consecutive IOVAs from `iova`.
fn map_pages(c: &mut Client, mem: &File, off: u64, iova: u64, n: u64) {
    for i in 0..n {
        c.dma_map(off + i * PAGE, iova + i * PAGE, PAGE, mem.as_raw_fd())
            .unwrap();
    }
}

/// Receive set-up through IOVAs: ring of 8 descriptors at `IOVA_RINGS`, buffers of 2 KiB
/// at `IOVA_BUFS` (two per page).
fn rx_up(c: &mut Client, mem: &File, ring_off: u64) {
    for i in 0..8u64 {
        mem.write_all_at(&(IOVA_BUFS + i * 2048).to_le_bytes(), ring_off + i * 16)
            .unwrap();
    }
    cfg_wr16(c, 0x04, 0x0007);
    wr(c, RDBAL, IOVA_RINGS as u32);
    wr(c, RDBAH, (IOVA_RINGS >> 32) as u32);
    wr(c, RDLEN, 8 * 16);
    wr(c, RDH, 0);
    wr(c, RCTL, RCTL_EN | RCTL_BAM | RCTL_SECRC);
    wr(c, RDT, 7);
}

/// Transmit one broadcast frame of `len` bytes from file offset `buf_off` (mapped at
/// `buf_iova`), through a TX ring at `IOVA_RINGS + 0x1000` (file `ring_off + 0x1000`).
/// The loopback backend hands it straight back to the receive side.
fn tx_one(c: &mut Client, mem: &File, ring_off: u64, buf_iova: u64, buf_off: u64, slot: u32) {
    let mut frame = vec![0xFFu8; 6];
    frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 9, 0x88, 0xB5]);
    frame.resize(200, slot as u8 ^ 0x5A);
    mem.write_all_at(&frame, buf_off).unwrap();
    let mut d = [0u8; 16];
    d[..8].copy_from_slice(&buf_iova.to_le_bytes());
    d[8..10].copy_from_slice(&(frame.len() as u16).to_le_bytes());
    d[11] = 0x01 | 0x02 | 0x08;
    mem.write_all_at(&d, ring_off + 0x1000 + u64::from(slot) * 16)
        .unwrap();
    if slot == 0 {
        wr(c, TDBAL, (IOVA_RINGS + 0x1000) as u32);
        wr(c, TDBAH, ((IOVA_RINGS + 0x1000) >> 32) as u32);
        wr(c, TDLEN, 8 * 16);
        wr(c, TDH, 0);
        wr(c, TDT, 0);
        wr(c, TCTL, TCTL_EN | TCTL_PSP);
    }
    wr(c, TDT, slot + 1);
}

#[test]
fn one_large_unmap_removes_every_page_map_inside_it_and_they_can_be_mapped_again() {
    let s = start();
    let mut c = Client::new(&s.path).unwrap();
    let mem = memfd(1 << 20);
    // A guest with intel-iommu maps its buffers page by page...
    map_pages(&mut c, &mem, 0, IOVA_BUFS, 64);
    map_pages(&mut c, &mem, 0x80000, 0x10_0000, 16);
    assert_eq!(regions(&s), 80);
    // ...and tears the address space down with one range covering them all (QEMU sends
    // 0x0+0x80000000 and the like when the IOMMU is switched on or a VFIO user exits).
    c.dma_unmap(0, 0x1_0000_0000 + 64 * PAGE).unwrap();
    assert_eq!(regions(&s), 0);
    // Nothing stays behind to refuse the next maps of the same addresses.
    map_pages(&mut c, &mem, 0, IOVA_BUFS, 64);
    assert_eq!(regions(&s), 64);
    // QEMU's teardown of a vIOMMU space can end exactly at 2^64
    // (0xfef00000+0xffffffff01100000): accepted, everything above its start goes.
    c.dma_map(0, 0x1000, PAGE, mem.as_raw_fd()).unwrap();
    c.dma_map(0, 0xfef0_0000, PAGE, mem.as_raw_fd()).unwrap();
    c.dma_unmap(0xfef0_0000, 0u64.wrapping_sub(0xfef0_0000))
        .unwrap();
    assert_eq!(regions(&s), 1, "only the map below 0xfef00000 stays");
    c.dma_unmap(0x1000, PAGE).unwrap();
    map_pages(&mut c, &mem, 0, IOVA_BUFS, 64);
    // A range holding some maps and holes removes just those.
    c.dma_unmap(IOVA_BUFS - PAGE, 3 * PAGE).unwrap();
    assert_eq!(regions(&s), 62);
    assert_eq!(cfg_rd(&mut c, 0), 0x100E_8086, "still serving");
}

#[test]
fn unmap_all_flag_removes_everything_and_is_checked() {
    let s = start();
    let mut c = Client::new(&s.path).unwrap();
    let mem = memfd(1 << 20);
    map_pages(&mut c, &mem, 0, IOVA_BUFS, 8);
    c.dma_map(0, 0, 1 << 20, mem.as_raw_fd()).unwrap();
    // ALL wants address and size 0.
    assert_eq!(
        errno(c.dma_unmap_flags(DmaUnmapFlags::UNMAP_ALL, 0, PAGE)),
        libc::EINVAL as u32
    );
    assert_eq!(regions(&s), 9);
    // Dirty page tracking is not offered.
    assert_eq!(
        errno(c.dma_unmap_flags(DmaUnmapFlags::GET_DIRTY_BITMAP, IOVA_BUFS, PAGE)),
        libc::ENOTSUP as u32
    );
    c.dma_unmap_flags(DmaUnmapFlags::UNMAP_ALL, 0, 0).unwrap();
    assert_eq!(regions(&s), 0);
}

#[test]
fn a_range_that_cuts_a_map_is_refused_and_changes_nothing() {
    let s = start();
    let mut c = Client::new(&s.path).unwrap();
    let mem = memfd(1 << 20);
    c.dma_map(0, IOVA_RINGS, 2 * PAGE, mem.as_raw_fd()).unwrap();
    map_pages(&mut c, &mem, 0x10000, IOVA_BUFS, 4);
    for (a, l) in [
        (IOVA_RINGS, PAGE),
        (IOVA_RINGS + PAGE, 2 * PAGE),
        (IOVA_BUFS - PAGE, PAGE + 0x800),
    ] {
        assert_eq!(
            errno(c.dma_unmap(a, l)),
            libc::EINVAL as u32,
            "{a:#x}+{l:#x}"
        );
    }
    assert_eq!(regions(&s), 5);
    // The rings still work: the device receives into them.
    rx_up(&mut c, &mem, 0);
    tx_one(&mut c, &mem, 0, IOVA_BUFS + 3 * PAGE, 0x13000, 0);
    wait_for("frame received", || {
        s.device.lock().metrics().rx_frames == 1
    });
    assert_eq!(dma_errors(&s), 0);
}

#[test]
fn an_overlapping_map_is_refused_with_eexist() {
    let s = start();
    let mut c = Client::new(&s.path).unwrap();
    let mem = memfd(1 << 20);
    c.dma_map(0, IOVA_BUFS, 4 * PAGE, mem.as_raw_fd()).unwrap();
    for (a, l) in [
        (IOVA_BUFS, PAGE),
        (IOVA_BUFS - PAGE, 2 * PAGE),
        (IOVA_BUFS + 3 * PAGE, 2 * PAGE),
        (IOVA_BUFS - 16 * PAGE, 1 << 20),
    ] {
        let r = c.dma_map(0, a, l, mem.as_raw_fd());
        assert_eq!(errno(r), libc::EEXIST as u32, "{a:#x}+{l:#x}");
    }
    // Maps without a descriptor (QEMU's ROM) count too.
    c.dma_map_flags(DmaMapFlags::READ, 0, 0xFFFC_0000, 0x4_0000, None)
        .unwrap();
    let r = c.dma_map_flags(DmaMapFlags::READ, 0, 0xFFFC_0000, PAGE, None);
    assert_eq!(errno(r), libc::EEXIST as u32);
    assert_eq!(regions(&s), 2);
}

#[test]
fn dma_after_unmap_is_refused_counted_and_writes_nothing() {
    let s = start();
    let mut c = Client::new(&s.path).unwrap();
    let mem = memfd(1 << 20);
    // Rings at IOVA_RINGS (file 0..8K), receive buffers at IOVA_BUFS (file 64K..), a
    // transmit buffer page elsewhere.
    c.dma_map(0, IOVA_RINGS, 2 * PAGE, mem.as_raw_fd()).unwrap();
    map_pages(&mut c, &mem, 0x10000, IOVA_BUFS, 4);
    c.dma_map(0x40000, 0x2000_0000, PAGE, mem.as_raw_fd())
        .unwrap();
    rx_up(&mut c, &mem, 0);
    tx_one(&mut c, &mem, 0, 0x2000_0000, 0x40000, 0);
    wait_for("first frame received", || {
        s.device.lock().metrics().rx_frames == 1
    });
    // The guest frees the page holding receive buffers 0 and 1 (the next frame's) and
    // reuses it for something else: its IOMMU unmaps it, and the bytes are not ours.
    c.dma_unmap(IOVA_BUFS, PAGE).unwrap();
    let guard = vec![0xC3u8; PAGE as usize];
    mem.write_all_at(&guard, 0x10000).unwrap();
    let before = dma_errors(&s);
    tx_one(&mut c, &mem, 0, 0x2000_0000, 0x40000, 1);
    wait_for("refused DMA counted", || dma_errors(&s) > before);
    let mut after = vec![0u8; PAGE as usize];
    mem.read_exact_at(&mut after, 0x10000).unwrap();
    assert!(
        after == guard,
        "the device wrote into unmapped (freed) memory"
    );
    assert_eq!(s.device.lock().metrics().rx_frames, 1);
    assert_eq!(cfg_rd(&mut c, 0), 0x100E_8086, "still serving");
}

#[test]
fn a_read_only_map_is_never_written() {
    let s = start();
    let mut c = Client::new(&s.path).unwrap();
    let mem = memfd(1 << 20);
    c.dma_map(0, IOVA_RINGS, 2 * PAGE, mem.as_raw_fd()).unwrap();
    // Receive buffers mapped for the device to read only (DMA_TO_DEVICE).
    c.dma_map_flags(
        DmaMapFlags::READ,
        0x10000,
        IOVA_BUFS,
        4 * PAGE,
        Some(mem.as_raw_fd()),
    )
    .unwrap();
    c.dma_map(0x40000, 0x2000_0000, PAGE, mem.as_raw_fd())
        .unwrap();
    rx_up(&mut c, &mem, 0);
    let guard = vec![0x3Cu8; 4 * PAGE as usize];
    mem.write_all_at(&guard, 0x10000).unwrap();
    tx_one(&mut c, &mem, 0, 0x2000_0000, 0x40000, 0);
    wait_for("refused DMA counted", || dma_errors(&s) > 0);
    let mut after = vec![0u8; guard.len()];
    mem.read_exact_at(&mut after, 0x10000).unwrap();
    assert!(after == guard, "the device wrote into a read-only map");
    // Reading through a read-only map is fine: a transmit buffer there goes out.
    let tx_before = s.device.lock().metrics().tx_frames;
    tx_one(&mut c, &mem, 0, IOVA_BUFS, 0x10000, 1);
    wait_for("frame sent from a read-only buffer", || {
        s.device.lock().metrics().tx_frames > tx_before
    });
}

#[test]
fn a_file_that_could_shrink_is_refused() {
    let s = start();
    let mut c = Client::new(&s.path).unwrap();
    let loose = memfd_unsealed(1 << 20);
    assert_eq!(
        errno(c.dma_map(0, 0, 1 << 20, loose.as_raw_fd())),
        libc::EINVAL as u32
    );
    assert_eq!(regions(&s), 0);
    // Had it been taken, this truncation would turn the device's next DMA into SIGBUS.
    loose.set_len(0).unwrap();
    assert_eq!(cfg_rd(&mut c, 0), 0x100E_8086, "still serving");
}

#[test]
fn each_file_is_mapped_once_and_a_client_that_leaves_takes_every_map_with_it() {
    let s = start();
    let name = format!("nic-emu-dma-{}", std::process::id());
    {
        let mut c = Client::new(&s.path).unwrap();
        let mem = named_memfd(&name, 1 << 20);
        map_pages(&mut c, &mem, 0, IOVA_BUFS, 100);
        assert_eq!(regions(&s), 100);
        assert_eq!(host_mappings_of(&name), 1, "one mmap for 100 page maps");
        c.shutdown().unwrap();
    }
    let mut c = Client::new(&s.path).unwrap();
    assert_eq!(regions(&s), 0, "no map left from the previous client");
    assert_eq!(
        host_mappings_of(&name),
        0,
        "its memory unmapped from this process"
    );
    // The next client maps the same addresses without a clash.
    let mem = memfd(1 << 20);
    map_pages(&mut c, &mem, 0, IOVA_BUFS, 4);
    assert_eq!(regions(&s), 4);
    // And a file no map uses any more is let go of at once.
    let other = named_memfd(&format!("{name}-b"), 1 << 16);
    c.dma_map(0, 0x5000_0000, 1 << 16, other.as_raw_fd())
        .unwrap();
    assert_eq!(host_mappings_of(&format!("{name}-b")), 1);
    c.dma_unmap(0x5000_0000, 1 << 16).unwrap();
    assert_eq!(host_mappings_of(&format!("{name}-b")), 0);
}
