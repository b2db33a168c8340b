//! DMA_MAP and DMA_UNMAP: the client's table of guest memory.
//!
//! QEMU sends one DMA_MAP per range of guest memory the device may reach: the guest's
//! RAM at boot, and, with a virtual IOMMU, one per IO virtual range the guest's drivers
//! map (4 KiB pages for driver buffers, 2 MiB for hugepages), each with a descriptor of
//! the same memfd. Each backing file is mapped into this process once, whole, and kept in
//! [`DmaFiles`]; a map or unmap is then an edit of the device's [`GuestRam`] table under
//! the device lock. Because every DMA happens under that lock too, once an unmap returns
//! (and its reply is sent) no DMA can reach the removed range.
//!
//! The rules are the kernel's VFIO type1 driver's: an overlapping map is refused with
//! EEXIST and changes nothing; an unmap removes every map inside its range and refuses
//! one that would split a map (EINVAL, nothing changed); the ALL flag removes every map.
//! Only files sealed against shrinking are mapped (QEMU's `memory-backend-memfd` seals
//! by default): a file that could shrink under a mapping would turn the next DMA into
//! SIGBUS.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

use vfio_user::{DmaMapFlags, DmaUnmapFlags};
use vm_memory::{FileOffset, MmapRegion};

use crate::memory::{GuestRam, HostMapping, MemoryError};

/// Most ranges a client may map at once, as announced in the VERSION reply
/// (`max_dma_maps`). A guest with a virtual IOMMU maps each driver buffer separately:
/// thousands of 4 KiB maps for a large ring are normal.
pub const MAX_DMA_MAPS: usize = vfio_user::MAX_DMA_MAPS as usize;

/// Log `msg` and make the error whose errno the client receives.
fn errno(code: i32, msg: String) -> io::Error {
    log::warn!("vfio-user: {msg}");
    io::Error::from_raw_os_error(code)
}

fn map_error(what: &str, e: MemoryError) -> io::Error {
    let code = match e {
        MemoryError::Overlap { .. } => libc::EEXIST,
        MemoryError::Full(_) => libc::ENOSPC,
        MemoryError::Map(_) | MemoryError::Split { .. } => libc::EINVAL,
    };
    errno(code, format!("{what}: {e}"))
}

/// Key of a backing file: device and inode.
type FileKey = (u64, u64);

/// The client's backing files, each mapped once, whole.
#[derive(Default)]
pub struct DmaFiles {
    files: HashMap<FileKey, HostMapping>,
}

impl std::fmt::Debug for DmaFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DmaFiles")
            .field("files", &self.files.len())
            .finish()
    }
}

impl DmaFiles {
    /// A mapping of `file` that covers at least `[0, end)`.
    fn mapping(&mut self, file: File, end: u64) -> Result<HostMapping, String> {
        let meta = file.metadata().map_err(|e| format!("fstat: {e}"))?;
        if !meta.file_type().is_file() {
            return Err("the descriptor is not a regular file".into());
        }
        if end > meta.len() {
            return Err(format!(
                "the range ends past the file's {} bytes",
                meta.len()
            ));
        }
        let key = (meta.dev(), meta.ino());
        if let Some(m) = self.files.get(&key) {
            if m.size() as u64 >= end {
                return Ok(m.clone());
            }
        }
        // SAFETY: F_GET_SEALS reads the seals of a descriptor we own; no memory is passed.
        let seals = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GET_SEALS) };
        if seals < 0 || seals & libc::F_SEAL_SHRINK == 0 {
            return Err(
                "the file is not sealed against shrinking (F_SEAL_SHRINK): it could \
                 shrink under the mapping; use memory-backend-memfd (sealed by default)"
                    .into(),
            );
        }
        let len = usize::try_from(meta.len()).map_err(|_| "file too large".to_string())?;
        let mapping = MmapRegion::from_file(FileOffset::new(file, 0), len)
            .map_err(|e| format!("mmap of {len} bytes: {e}"))?;
        let mapping = Arc::new(mapping);
        self.files.insert(key, mapping.clone());
        Ok(mapping)
    }

    /// Forget the files no map uses any more (unmapped once the table lets go too).
    pub fn prune(&mut self, table: &GuestRam) {
        if self.files.values().all(|m| Arc::strong_count(m) > 1) {
            return;
        }
        let in_use: Vec<*const MmapRegion> = table.host_mappings().map(Arc::as_ptr).collect();
        self.files.retain(|_, m| in_use.contains(&Arc::as_ptr(m)));
    }

    /// Number of files mapped.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether no file is mapped.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Drop every mapping (the client left).
    pub fn clear(&mut self) {
        self.files.clear();
    }
}

/// A DMA_MAP request.
#[derive(Debug)]
pub struct MapRequest {
    /// Protocol flags (READ, WRITE).
    pub flags: DmaMapFlags,
    /// Offset of the range in the file.
    pub offset: u64,
    /// First device address.
    pub address: u64,
    /// Length.
    pub size: u64,
}

/// A DMA_MAP checked and with its file mapped, ready to enter the device's table.
#[derive(Debug)]
pub struct PreparedMap {
    what: String,
    address: u64,
    size: u64,
    writable: bool,
    /// The file's mapping and the range's offset in it; `None` for a range sent without
    /// a descriptor (QEMU: ROM), recorded so the overlap and unmap rules see it, but
    /// unreachable by the device.
    backing: Option<(HostMapping, usize)>,
}

/// Check a DMA_MAP and map its file (once per file), without the device lock.
pub fn prepare_map(
    files: &mut DmaFiles,
    req: MapRequest,
    fd: Option<File>,
) -> io::Result<PreparedMap> {
    let MapRequest {
        flags,
        offset,
        address,
        size,
    } = req;
    let what = format!("DMA_MAP {address:#x}+{size:#x}");
    // The range may end exactly at 2^64 (VFIO type1 checks the inclusive end).
    if size == 0 || address.checked_add(size - 1).is_none() {
        return Err(errno(
            libc::EINVAL,
            format!("{what}: empty or wrapping range"),
        ));
    }
    if !flags.intersects(DmaMapFlags::READ_WRITE) {
        return Err(errno(
            libc::EINVAL,
            format!("{what}: neither READ nor WRITE"),
        ));
    }
    let backing = match fd {
        None => None,
        Some(file) => {
            let end = offset
                .checked_add(size)
                .ok_or_else(|| errno(libc::EINVAL, format!("{what}: offset wraps")))?;
            let mapping = files
                .mapping(file, end)
                .map_err(|e| errno(libc::EINVAL, format!("{what} at offset {offset:#x}: {e}")))?;
            let offset = usize::try_from(offset)
                .map_err(|_| errno(libc::EINVAL, format!("{what}: offset too large")))?;
            Some((mapping, offset))
        }
    };
    Ok(PreparedMap {
        what,
        address,
        size,
        writable: flags.contains(DmaMapFlags::WRITE),
        backing,
    })
}

impl PreparedMap {
    /// Enter the range into the device's table (called with the device lock held).
    pub fn apply(self, table: &mut GuestRam) -> io::Result<()> {
        if table.region_count() >= MAX_DMA_MAPS {
            return Err(map_error(&self.what, MemoryError::Full(MAX_DMA_MAPS)));
        }
        let r = match self.backing {
            Some((m, off)) => table.map(self.address, self.size, m, off, self.writable),
            None => table.map_unbacked(self.address, self.size),
        };
        r.map_err(|e| map_error(&self.what, e))
    }
}

/// Carry out a DMA_UNMAP on the device's table (called with the device lock held).
pub fn dma_unmap(
    files: &mut DmaFiles,
    table: &mut GuestRam,
    flags: DmaUnmapFlags,
    address: u64,
    size: u64,
) -> io::Result<()> {
    let what = format!("DMA_UNMAP {address:#x}+{size:#x} flags {:#x}", flags.bits());
    if flags.contains(DmaUnmapFlags::GET_DIRTY_BITMAP) {
        return Err(errno(
            libc::ENOTSUP,
            format!("{what}: dirty page tracking is not supported"),
        ));
    }
    if flags.contains(DmaUnmapFlags::UNMAP_ALL) {
        if address != 0 || size != 0 {
            return Err(errno(
                libc::EINVAL,
                format!("{what}: ALL needs address and size 0"),
            ));
        }
        let n = table.region_count();
        table.clear();
        files.prune(table);
        log::debug!("{what}: removed all {n} maps");
        return Ok(());
    }
    if flags.bits() != 0 {
        return Err(errno(libc::EINVAL, format!("{what}: unknown flags")));
    }
    let removed = table
        .unmap(address, size)
        .map_err(|e| map_error(&what, e))?;
    files.prune(table);
    log::debug!("{what}: {removed:#x} bytes unmapped");
    Ok(())
}
