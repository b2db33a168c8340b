//! The regions and interrupts a vfio-user client sees: those of a vfio-pci device.

use vfio_user::{IrqInfo, ServerRegion};

use crate::device::pci_config::CONFIG_SIZE;
use crate::device::Bar;

/// vfio region index of BAR0.
pub const REGION_BAR0: u32 = 0;
/// vfio region index of BAR1.
pub const REGION_BAR1: u32 = 1;
/// vfio region index of the expansion ROM.
pub const REGION_ROM: u32 = 6;
/// vfio region index of PCI configuration space.
pub const REGION_CONFIG: u32 = 7;
/// Number of vfio-pci regions (BAR0-5, ROM, config, VGA).
pub const NUM_REGIONS: u32 = 9;
/// vfio irq index of INTx.
pub const IRQ_INTX: u32 = 0;
/// vfio irq index of the error (AER) notification.
pub const IRQ_ERR: u32 = 3;
/// Number of vfio-pci irq indexes (INTx, MSI, MSI-X, ERR, REQ).
pub const NUM_IRQS: u32 = 5;

const REGION_FLAG_READ: u32 = 1 << 0;
const REGION_FLAG_WRITE: u32 = 1 << 1;
const IRQ_INFO_EVENTFD: u32 = 1 << 0;
const IRQ_INFO_MASKABLE: u32 = 1 << 1;
const IRQ_INFO_AUTOMASKED: u32 = 1 << 2;

/// What a vfio region index stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Region {
    /// A BAR of the device.
    Bar(Bar),
    /// PCI configuration space.
    Config,
}

impl Region {
    /// The region with vfio index `index`, if the device has one.
    pub(super) fn from_index(index: u32) -> Option<Self> {
        match index {
            REGION_CONFIG => Some(Self::Config),
            n => Bar::from_index(n).map(Self::Bar),
        }
    }

    /// Whether `[offset, offset + len)` lies inside the region.
    pub(super) fn contains(self, offset: u64, len: usize) -> bool {
        let size = match self {
            Self::Bar(bar) => bar.size(),
            Self::Config => CONFIG_SIZE as u64,
        };
        offset
            .checked_add(len as u64)
            .is_some_and(|end| end <= size)
    }
}

/// Size of a region, by vfio index.
pub fn region_size(index: u32) -> u64 {
    match Region::from_index(index) {
        Some(Region::Bar(bar)) => bar.size(),
        Some(Region::Config) => CONFIG_SIZE as u64,
        None => 0,
    }
}

/// The region table the server announces.
pub(super) fn server_regions() -> Vec<ServerRegion> {
    (0..NUM_REGIONS)
        .map(|index| {
            let mut r = ServerRegion {
                region_info: Default::default(),
                sparse_areas: Vec::new(),
                mmap_fd: None,
            };
            r.region_info.argsz = 32; // sizeof(struct vfio_region_info)
            r.region_info.index = index;
            r.region_info.size = region_size(index);
            if r.region_info.size > 0 {
                r.region_info.flags = REGION_FLAG_READ | REGION_FLAG_WRITE;
            }
            r
        })
        .collect()
}

/// The interrupt table the server announces: INTx only (the 82540EM has no MSI).
pub(super) fn server_irqs() -> Vec<IrqInfo> {
    (0..NUM_IRQS)
        .map(|index| match index {
            IRQ_INTX => IrqInfo {
                index,
                flags: IRQ_INFO_EVENTFD | IRQ_INFO_MASKABLE | IRQ_INFO_AUTOMASKED,
                count: 1,
            },
            // One error-notification vector, which the device never signals: declaring
            // it keeps QEMU from warning that it "could not enable error recovery".
            IRQ_ERR => IrqInfo {
                index,
                flags: IRQ_INFO_EVENTFD,
                count: 1,
            },
            _ => IrqInfo {
                index,
                flags: 0,
                count: 0,
            },
        })
        .collect()
}
