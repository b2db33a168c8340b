//! Guest memory as the device reaches it by DMA: a sorted table of mapped ranges.
//!
//! Each entry maps a range of device-visible addresses (guest physical addresses, or IO
//! virtual addresses when the guest has a virtual IOMMU) onto a window of a host mapping.
//! Many entries may share one host mapping: a vfio-user client sends the same memfd for
//! every range it maps, and the file is mapped into this process once
//! (`frontend::vfio_user::dma`), so a DMA_MAP or DMA_UNMAP is a short edit of this table,
//! not an `mmap` or `munmap`.
//!
//! The table follows the rules of the kernel's VFIO type1 driver: a new range may not
//! overlap an existing one; an unmap removes every range that lies inside it and refuses
//! (changing nothing) a range that would cut an entry in two. Every access is
//! bounds-checked: an address no entry covers is an error, never undefined behaviour and
//! never a write elsewhere. An access may span adjacent entries.

use std::sync::Arc;

use vm_memory::{MmapRegion, VolatileMemory};

/// A DMA access that did not reach guest RAM.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
#[error("DMA of {len} bytes at guest address {addr:#x} is outside guest memory")]
pub struct DmaError {
    /// Guest physical (or IO virtual) address of the access.
    pub addr: u64,
    /// Length of the access.
    pub len: usize,
}

/// Failure to build or change a guest memory map.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum MemoryError {
    /// The range is empty, wraps the address space, or does not fit its host mapping.
    #[error("cannot map guest memory: {0}")]
    Map(String),
    /// The new range overlaps one already mapped.
    #[error("{addr:#x}+{len:#x} overlaps the mapped range {other_addr:#x}+{other_len:#x}")]
    Overlap {
        /// Start of the refused range.
        addr: u64,
        /// Length of the refused range.
        len: u64,
        /// Start of the range already mapped.
        other_addr: u64,
        /// Length of the range already mapped.
        other_len: u64,
    },
    /// An unmap range cuts a mapped range in two (nothing was unmapped).
    #[error(
        "unmapping {addr:#x}+{len:#x} would split the mapped range {other_addr:#x}+{other_len:#x}"
    )]
    Split {
        /// Start of the refused unmap range.
        addr: u64,
        /// Length of the refused unmap range.
        len: u64,
        /// Start of the range it cuts.
        other_addr: u64,
        /// Length of the range it cuts.
        other_len: u64,
    },
    /// The table already holds the most entries it may.
    #[error("already {0} ranges mapped")]
    Full(usize),
}

/// Host memory that backs guest ranges (an anonymous or file mapping, or memory an
/// embedder owns). Shared by every table entry that points into it; unmapped when the
/// last one goes.
pub type HostMapping = Arc<MmapRegion>;

/// One entry of the table.
#[derive(Clone, Debug)]
struct Range {
    /// First device-visible address.
    start: u64,
    /// Length in bytes (non-zero; `start + len` does not wrap).
    len: u64,
    /// The host window: `host.1` is the offset of `start` in `host.0`. `None`: a range
    /// the client declared without memory we can reach (a ROM sent without a file
    /// descriptor); it takes part in the overlap rules, and every DMA to it fails.
    host: Option<(HostMapping, usize)>,
    /// Whether the device may write here (a client maps buffers the device only reads,
    /// such as transmit buffers under an IOMMU, read-only).
    writable: bool,
}

impl Range {
    /// The last address of the range (inclusive: a range may end at 2^64).
    fn last(&self) -> u64 {
        self.start + (self.len - 1)
    }
}

/// The last address of `[addr, addr + len)`, if the range is not empty and does not run
/// past 2^64 (it may end exactly there, as the VFIO type1 driver allows).
fn last_of(addr: u64, len: u64) -> Option<u64> {
    addr.checked_add(len.checked_sub(1)?)
}

/// The guest's memory as the device sees it.
#[derive(Clone, Debug, Default)]
pub struct GuestRam {
    /// Sorted by `start`, non-overlapping.
    ranges: Vec<Range>,
    /// Maps and unmaps applied so far (each DMA_MAP/DMA_UNMAP a client sends is one).
    edits: u64,
}

impl GuestRam {
    /// No memory at all: every DMA fails.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Anonymous memory covering `[base, base + size)`.
    pub fn anonymous(base: u64, size: usize) -> Result<Self, MemoryError> {
        let host = MmapRegion::new(size).map_err(|e| MemoryError::Map(e.to_string()))?;
        let mut ram = Self::empty();
        ram.map(base, size as u64, Arc::new(host), 0, true)?;
        Ok(ram)
    }

    /// Guest memory over host memory the caller already owns (the C API's mapping): each
    /// `(guest address, host pointer, length)` becomes one range. Host pointers must be
    /// page-aligned; empty, wrapping or overlapping ranges are errors.
    ///
    /// # Safety
    ///
    /// Each `[host, host + len)` must be readable and writable memory of this process that
    /// stays mapped, and is not freed, for as long as the returned value or any clone of it
    /// lives. Other writers may change it concurrently (accesses are volatile).
    pub unsafe fn from_raw_regions(regions: &[(u64, *mut u8, usize)]) -> Result<Self, MemoryError> {
        let mut ram = Self::empty();
        for &(addr, host, len) in regions {
            if len == 0 || host.is_null() || (host as usize).checked_add(len).is_none() {
                return Err(MemoryError::Map(format!(
                    "bad host range {host:p}+{len:#x} for guest address {addr:#x}"
                )));
            }
            // SAFETY: the caller guarantees `[host, host + len)` is valid, mapped
            // read/write memory that outlives the map; `build_raw` checks alignment and
            // does not take ownership (it never unmaps it).
            let mapping = unsafe {
                MmapRegion::build_raw(
                    host,
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED,
                )
            }
            .map_err(|e| MemoryError::Map(format!("host range {host:p}: {e}")))?;
            ram.map(addr, len as u64, Arc::new(mapping), 0, true)?;
        }
        Ok(ram)
    }

    /// Check a new range and find where it goes in the table.
    fn slot_for(&self, addr: u64, len: u64) -> Result<usize, MemoryError> {
        let last = last_of(addr, len)
            .ok_or_else(|| MemoryError::Map(format!("bad range {addr:#x}+{len:#x}")))?;
        let i = self.ranges.partition_point(|r| r.start < addr);
        let clash = [i.checked_sub(1), Some(i)]
            .into_iter()
            .flatten()
            .filter_map(|j| self.ranges.get(j))
            .find(|r| r.start <= last && addr <= r.last());
        if let Some(r) = clash {
            return Err(MemoryError::Overlap {
                addr,
                len,
                other_addr: r.start,
                other_len: r.len,
            });
        }
        Ok(i)
    }

    /// Map `[addr, addr + len)` onto `host` starting at byte `offset` of it, for reads
    /// and (if `writable`) writes. The range must fit the host mapping and overlap no
    /// range already mapped.
    pub fn map(
        &mut self,
        addr: u64,
        len: u64,
        host: HostMapping,
        offset: usize,
        writable: bool,
    ) -> Result<(), MemoryError> {
        let fits = usize::try_from(len)
            .ok()
            .and_then(|l| offset.checked_add(l))
            .is_some_and(|end| end <= host.len());
        if !fits {
            return Err(MemoryError::Map(format!(
                "{addr:#x}+{len:#x} at offset {offset:#x} does not fit a {}-byte mapping",
                host.len()
            )));
        }
        self.insert(Range {
            start: addr,
            len,
            host: Some((host, offset)),
            writable,
        })
    }

    /// Record `[addr, addr + len)` as mapped by the client without memory the device can
    /// reach (DMA there fails); it counts for overlaps and unmaps like any other range.
    pub fn map_unbacked(&mut self, addr: u64, len: u64) -> Result<(), MemoryError> {
        self.insert(Range {
            start: addr,
            len,
            host: None,
            writable: false,
        })
    }

    /// Put `r` in its place in the table, unless it is empty, wraps or overlaps.
    fn insert(&mut self, r: Range) -> Result<(), MemoryError> {
        let i = self.slot_for(r.start, r.len)?;
        self.edits += 1;
        self.ranges.insert(i, r);
        Ok(())
    }

    /// Remove every range that lies inside `[addr, addr + len)` and return how many bytes
    /// they covered. A range that is only partly inside makes the whole unmap fail with
    /// nothing removed; so does an empty or wrapping range.
    pub fn unmap(&mut self, addr: u64, len: u64) -> Result<u64, MemoryError> {
        let last = last_of(addr, len)
            .ok_or_else(|| MemoryError::Map(format!("bad range {addr:#x}+{len:#x}")))?;
        // The entries touching the range are consecutive in the sorted table.
        let from = self.ranges.partition_point(|r| r.last() < addr);
        let to = from + self.ranges[from..].partition_point(|r| r.start <= last);
        let touched = &self.ranges[from..to];
        if let Some(r) = touched.iter().find(|r| r.start < addr || r.last() > last) {
            return Err(MemoryError::Split {
                addr,
                len,
                other_addr: r.start,
                other_len: r.len,
            });
        }
        self.edits += 1;
        Ok(self.ranges.drain(from..to).map(|r| r.len).sum())
    }

    /// Remove every range.
    pub fn clear(&mut self) {
        self.edits += 1;
        self.ranges.clear();
    }

    /// Maps and unmaps applied so far (refused ones not counted).
    pub fn edits(&self) -> u64 {
        self.edits
    }

    /// Number of mapped ranges.
    pub fn region_count(&self) -> usize {
        self.ranges.len()
    }

    /// The host mappings the table points into (each once), e.g. to see which may be
    /// dropped.
    pub fn host_mappings(&self) -> impl Iterator<Item = &HostMapping> {
        self.ranges
            .iter()
            .filter_map(|r| r.host.as_ref().map(|h| &h.0))
    }

    /// The entry holding `addr`.
    fn range_at(&self, addr: u64) -> Option<&Range> {
        let i = self.ranges.partition_point(|r| r.start <= addr);
        let r = self.ranges.get(i.checked_sub(1)?)?;
        (addr <= r.last()).then_some(r)
    }

    /// Split `[addr, addr + len)` into `(host, host offset, bytes)` pieces, or fail if any
    /// byte is unmapped. Calls `f` for each piece only once all are known to be mapped.
    fn for_each_piece(
        &self,
        addr: u64,
        len: usize,
        write: bool,
        mut f: impl FnMut(&MmapRegion, usize, usize, usize),
    ) -> Result<(), DmaError> {
        let err = DmaError { addr, len };
        if len == 0 {
            return Ok(());
        }
        let last = last_of(addr, len as u64).ok_or(err)?;
        // Fast path: one entry covers the whole access.
        let first = self.range_at(addr).ok_or(err)?;
        if write && !first.writable {
            return Err(err);
        }
        if last <= first.last() {
            let (host, off) = first.host.as_ref().ok_or(err)?;
            f(host, off + (addr - first.start) as usize, 0, len);
            return Ok(());
        }
        // Spanning entries: they must be adjacent and all backed.
        let mut pieces = Vec::new();
        let mut done = 0usize;
        while done < len {
            let pos = addr + done as u64; // at most `last`
            let r = self.range_at(pos).ok_or(err)?;
            if write && !r.writable {
                return Err(err);
            }
            let (host, off) = r.host.as_ref().ok_or(err)?;
            let n = (r.last().min(last) - pos) as usize + 1;
            pieces.push((host, off + (pos - r.start) as usize, done, n));
            done += n;
        }
        for (host, off, at, n) in pieces {
            f(host, off, at, n);
        }
        Ok(())
    }

    /// Read `buf.len()` bytes at device address `addr`.
    pub fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), DmaError> {
        let err = DmaError {
            addr,
            len: buf.len(),
        };
        let mut ok = true;
        self.for_each_piece(addr, buf.len(), false, |host, off, at, n| {
            // Bounds were checked at map time; get_slice checks them again.
            match host.get_slice(off, n) {
                Ok(s) => {
                    s.copy_to(&mut buf[at..at + n]);
                }
                Err(_) => ok = false,
            }
        })?;
        ok.then_some(()).ok_or(err)
    }

    /// Write `buf` at device address `addr`. Nothing is written unless every byte of the
    /// destination is mapped.
    pub fn write(&self, addr: u64, buf: &[u8]) -> Result<(), DmaError> {
        let err = DmaError {
            addr,
            len: buf.len(),
        };
        let mut ok = true;
        self.for_each_piece(addr, buf.len(), true, |host, off, at, n| {
            match host.get_slice(off, n) {
                Ok(s) => s.copy_from(&buf[at..at + n]),
                Err(_) => ok = false,
            }
        })?;
        ok.then_some(()).ok_or(err)
    }

    /// Read a little-endian u64.
    pub fn read_u64(&self, addr: u64) -> Result<u64, DmaError> {
        let mut b = [0u8; 8];
        self.read(addr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// Write a little-endian u64.
    pub fn write_u64(&self, addr: u64, v: u64) -> Result<(), DmaError> {
        self.write(addr, &v.to_le_bytes())
    }

    /// Read a little-endian u32.
    pub fn read_u32(&self, addr: u64) -> Result<u32, DmaError> {
        let mut b = [0u8; 4];
        self.read(addr, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// Write a little-endian u32.
    pub fn write_u32(&self, addr: u64, v: u32) -> Result<(), DmaError> {
        self.write(addr, &v.to_le_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(len: usize) -> HostMapping {
        Arc::new(MmapRegion::new(len).unwrap())
    }

    #[test]
    fn access_outside_ram_is_an_error() {
        let ram = GuestRam::anonymous(0x1000, 0x1000).unwrap();
        assert!(ram.write(0x1ff8, &[0u8; 8]).is_ok());
        assert_eq!(
            ram.write(0x1ffc, &[0u8; 8]),
            Err(DmaError {
                addr: 0x1ffc,
                len: 8
            })
        );
        assert!(ram.read_u32(0xfff).is_err());
        assert!(ram.read_u64(u64::MAX - 3).is_err());
        let mut b = [0u8; 4];
        assert!(GuestRam::empty().read(0, &mut b).is_err());
    }

    #[test]
    fn ranges_sharing_one_mapping_see_the_same_bytes() {
        let h = host(0x4000);
        let mut ram = GuestRam::empty();
        // Two IOVAs for the same page, as a guest with an IOMMU may map it.
        ram.map(0x10_0000, 0x1000, h.clone(), 0x2000, true).unwrap();
        ram.map(0x20_0000, 0x1000, h, 0x2000, true).unwrap();
        ram.write_u32(0x10_0010, 0xdead_beef).unwrap();
        assert_eq!(ram.read_u32(0x20_0010), Ok(0xdead_beef));
    }

    #[test]
    fn an_access_spans_adjacent_ranges_but_not_a_hole() {
        let h = host(0x3000);
        let mut ram = GuestRam::empty();
        // IOVA-contiguous, host-discontiguous pages.
        ram.map(0x1000, 0x1000, h.clone(), 0x2000, true).unwrap();
        ram.map(0x2000, 0x1000, h.clone(), 0x0, true).unwrap();
        let data: Vec<u8> = (0..64).collect();
        ram.write(0x1fe0, &data).unwrap();
        let mut back = [0u8; 64];
        ram.read(0x1fe0, &mut back).unwrap();
        assert_eq!(back[..], data[..]);
        // A hole after 0x3000: nothing at all is written.
        ram.write(0x2fff, &[0xAA; 2]).unwrap_err();
        assert_eq!(ram.read_u32(0x2ffc).unwrap() >> 24, 0);
        // An unbacked range is known but unreachable.
        ram.map_unbacked(0x3000, 0x1000).unwrap();
        ram.read_u32(0x3000).unwrap_err();
        ram.write(0x2fff, &[0xAA; 2]).unwrap_err();
    }

    #[test]
    fn overlapping_maps_are_refused() {
        let h = host(0x10000);
        let mut ram = GuestRam::empty();
        ram.map(0x4000, 0x2000, h.clone(), 0, true).unwrap();
        for (a, l) in [
            (0x4000, 0x1000),
            (0x3000, 0x2000),
            (0x5fff, 1),
            (0, 0x10000),
        ] {
            assert!(
                matches!(
                    ram.map(a, l, h.clone(), 0, true),
                    Err(MemoryError::Overlap { .. })
                ),
                "{a:#x}+{l:#x}"
            );
        }
        ram.map(0x6000, 0x1000, h.clone(), 0, true).unwrap();
        ram.map(0x3000, 0x1000, h.clone(), 0, true).unwrap();
        assert_eq!(ram.region_count(), 3);
        // Empty, wrapping and too-long ranges.
        ram.map(0x9000, 0, h.clone(), 0, true).unwrap_err();
        ram.map(u64::MAX, 2, h.clone(), 0, true).unwrap_err();
        ram.map(0x9000, 0x1000, h, 0xF001, true).unwrap_err();
    }

    #[test]
    fn a_range_may_end_at_the_top_of_the_address_space() {
        // QEMU tears a vIOMMU address space down with 0xfef00000+0xffffffff01100000,
        // which ends exactly at 2^64 (VFIO type1 checks the inclusive end).
        let h = host(0x2000);
        let mut ram = GuestRam::empty();
        ram.map(0xfef0_0000, 0x1000, h.clone(), 0, true).unwrap();
        ram.map(u64::MAX - 0xfff, 0x1000, h.clone(), 0x1000, true)
            .unwrap();
        ram.write(u64::MAX - 3, &[1, 2, 3, 4]).unwrap();
        assert_eq!(ram.read_u32(u64::MAX - 3), Ok(0x0403_0201));
        ram.write(u64::MAX - 3, &[0; 5]).unwrap_err();
        assert_eq!(
            ram.unmap(0xfef0_0000, 0u64.wrapping_sub(0xfef0_0000)),
            Ok(0x2000)
        );
        assert_eq!(ram.region_count(), 0);
    }

    #[test]
    fn unmap_removes_every_range_inside_and_refuses_a_cut() {
        let h = host(0x10000);
        let mut ram = GuestRam::empty();
        for i in 0..8u64 {
            ram.map(0x1000 * (i + 1), 0x1000, h.clone(), 0, true)
                .unwrap();
        }
        // Cutting 0x3000+0x1000 in two: refused, nothing removed.
        assert!(matches!(
            ram.unmap(0x1000, 0x2800),
            Err(MemoryError::Split { .. })
        ));
        assert_eq!(ram.region_count(), 8);
        // A range over three maps and a hole.
        assert_eq!(ram.unmap(0x0, 0x4000), Ok(0x3000));
        assert_eq!(ram.region_count(), 5);
        ram.read_u32(0x2000).unwrap_err();
        ram.read_u32(0x4000).unwrap();
        // Nothing there: fine, nothing removed.
        assert_eq!(ram.unmap(0x100_0000, 0x1000), Ok(0));
        // Empty and wrapping ranges are refused.
        ram.unmap(0x6000, 0).unwrap_err();
        ram.unmap(0x6000, u64::MAX).unwrap_err();
        ram.unmap(0x6001, u64::MAX - 0x6000).unwrap_err();
        assert_eq!(ram.unmap(0x6000, u64::MAX - 0x6000), Ok(0x3000));
        assert_eq!(ram.region_count(), 2);
        ram.clear();
        ram.read_u32(0x4000).unwrap_err();
    }
}
