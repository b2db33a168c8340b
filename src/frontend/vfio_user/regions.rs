//! The regions and interrupts a vfio-user client sees: those of a vfio-pci device.

use vfio_bindings::bindings::vfio::{
    vfio_region_info, VFIO_IRQ_INFO_AUTOMASKED, VFIO_IRQ_INFO_EVENTFD, VFIO_IRQ_INFO_MASKABLE,
    VFIO_REGION_INFO_FLAG_READ, VFIO_REGION_INFO_FLAG_WRITE,
};
use vfio_user::{IrqInfo, ServerRegion};

use crate::device::pci_config::CONFIG_SIZE;
use crate::device::Bar;

/// vfio region index of BAR0.
pub use vfio_bindings::bindings::vfio::VFIO_PCI_BAR0_REGION_INDEX as REGION_BAR0;
/// vfio region index of BAR1.
pub use vfio_bindings::bindings::vfio::VFIO_PCI_BAR1_REGION_INDEX as REGION_BAR1;
/// vfio region index of PCI configuration space.
pub use vfio_bindings::bindings::vfio::VFIO_PCI_CONFIG_REGION_INDEX as REGION_CONFIG;
/// vfio irq index of the error (AER) notification.
pub use vfio_bindings::bindings::vfio::VFIO_PCI_ERR_IRQ_INDEX as IRQ_ERR;
/// vfio irq index of INTx.
pub use vfio_bindings::bindings::vfio::VFIO_PCI_INTX_IRQ_INDEX as IRQ_INTX;
/// Number of vfio-pci irq indexes (INTx, MSI, MSI-X, ERR, REQ).
pub use vfio_bindings::bindings::vfio::VFIO_PCI_NUM_IRQS as NUM_IRQS;
/// Number of vfio-pci regions (BAR0-5, ROM, config, VGA).
pub use vfio_bindings::bindings::vfio::VFIO_PCI_NUM_REGIONS as NUM_REGIONS;
/// vfio region index of the expansion ROM.
pub use vfio_bindings::bindings::vfio::VFIO_PCI_ROM_REGION_INDEX as REGION_ROM;

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
            r.region_info.argsz = std::mem::size_of::<vfio_region_info>() as u32;
            r.region_info.index = index;
            r.region_info.size = region_size(index);
            if r.region_info.size > 0 {
                r.region_info.flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
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
                flags: VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED,
                count: 1,
            },
            // One error-notification vector, which the device never signals: declaring
            // it keeps QEMU from warning that it "could not enable error recovery".
            IRQ_ERR => IrqInfo {
                index,
                flags: VFIO_IRQ_INFO_EVENTFD,
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
