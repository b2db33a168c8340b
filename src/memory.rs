//! Guest memory as the device reaches it by DMA.
//!
//! Every access is bounds-checked by `vm-memory`: an address outside the guest's mapped RAM
//! is an error, never undefined behaviour. The same code works on anonymous memory (tests,
//! the in-process bus) and on the file descriptors QEMU hands over in vfio-user DMA_MAP.

use std::fs::File;

use vm_memory::{Bytes, FileOffset, GuestAddress, GuestMemoryMmap, GuestRegionMmap, MmapRegion};

/// A DMA access that did not reach guest RAM.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
#[error("DMA of {len} bytes at guest address {addr:#x} is outside guest memory")]
pub struct DmaError {
    /// Guest physical address of the access.
    pub addr: u64,
    /// Length of the access.
    pub len: usize,
}

/// Failure to build or change a guest memory map.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// The ranges overlap, are empty, or cannot be mapped.
    #[error("cannot map guest memory: {0}")]
    Map(String),
}

/// The guest's RAM: a set of non-overlapping regions, each mapped into this process.
#[derive(Clone, Debug, Default)]
pub struct GuestRam {
    mem: GuestMemoryMmap,
}

impl GuestRam {
    /// No memory at all: every DMA fails.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Anonymous memory covering `[base, base + size)`.
    pub fn anonymous(base: u64, size: usize) -> Result<Self, MemoryError> {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(base), size)])
            .map_err(|e| MemoryError::Map(e.to_string()))?;
        Ok(Self { mem })
    }

    /// A copy of this map with `[addr, addr + size)` backed by `file` at `offset` added
    /// (shared mapping: the guest sees our writes).
    pub fn with_file_region(
        &self,
        addr: u64,
        size: u64,
        file: File,
        offset: u64,
    ) -> Result<Self, MemoryError> {
        let size = usize::try_from(size).map_err(|_| MemoryError::Map("size too large".into()))?;
        let mapping = MmapRegion::from_file(FileOffset::new(file, offset), size)
            .map_err(|e| MemoryError::Map(e.to_string()))?;
        let region = GuestRegionMmap::new(mapping, GuestAddress(addr))
            .ok_or_else(|| MemoryError::Map("region wraps the address space".into()))?;
        let mem = self
            .mem
            .insert_region(std::sync::Arc::new(region))
            .map_err(|e| MemoryError::Map(e.to_string()))?;
        Ok(Self { mem })
    }

    /// Guest memory over host memory the caller already owns (the C API's mapping): each
    /// `(guest address, host pointer, length)` becomes one region. Host pointers must be
    /// page-aligned; empty, wrapping or overlapping ranges are errors.
    ///
    /// # Safety
    ///
    /// Each `[host, host + len)` must be readable and writable memory of this process that
    /// stays mapped, and is not freed, for as long as the returned value or any clone of it
    /// lives. Other writers may change it concurrently (accesses are volatile).
    pub unsafe fn from_raw_regions(regions: &[(u64, *mut u8, usize)]) -> Result<Self, MemoryError> {
        let mut list = Vec::with_capacity(regions.len());
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
            let region = GuestRegionMmap::new(mapping, GuestAddress(addr))
                .ok_or_else(|| MemoryError::Map("region wraps the address space".into()))?;
            list.push(region);
        }
        if list.is_empty() {
            return Ok(Self::empty());
        }
        let mem =
            GuestMemoryMmap::from_regions(list).map_err(|e| MemoryError::Map(e.to_string()))?;
        Ok(Self { mem })
    }

    /// A copy of this map without the region that starts at `addr` and is `size` long.
    pub fn without_region(&self, addr: u64, size: u64) -> Result<Self, MemoryError> {
        let (mem, _) = self
            .mem
            .remove_region(GuestAddress(addr), size)
            .map_err(|e| MemoryError::Map(e.to_string()))?;
        Ok(Self { mem })
    }

    /// Read `buf.len()` bytes at guest address `addr`.
    pub fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), DmaError> {
        let err = DmaError {
            addr,
            len: buf.len(),
        };
        if buf.is_empty() {
            return Ok(());
        }
        self.mem
            .read_slice(buf, GuestAddress(addr))
            .map_err(|_| err)
    }

    /// Write `buf` at guest address `addr`.
    pub fn write(&self, addr: u64, buf: &[u8]) -> Result<(), DmaError> {
        let err = DmaError {
            addr,
            len: buf.len(),
        };
        if buf.is_empty() {
            return Ok(());
        }
        self.mem
            .write_slice(buf, GuestAddress(addr))
            .map_err(|_| err)
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

    /// Number of mapped regions.
    pub fn region_count(&self) -> usize {
        use vm_memory::GuestMemoryBackend;
        self.mem.num_regions()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
