//! Why frames were not delivered and descriptors not processed: one counter per reason,
//! so "RX stays 0" has an answer (filtered as broadcast? receiver disabled? no
//! descriptors?). Counted by the engines where they decide; shown next to the lints.

/// Counts of frames and descriptors the device did not deliver or process, by reason.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Drops {
    /// Received unicast frames no RAL/RAH entry (with AV) matched, RCTL.UPE clear.
    pub rx_filtered_unicast: u64,
    /// Received multicast frames whose MTA bit is clear, RCTL.MPE clear.
    pub rx_filtered_multicast: u64,
    /// Received broadcast frames with RCTL.BAM and RCTL.MPE clear.
    pub rx_filtered_broadcast: u64,
    /// Received VLAN frames whose VLAN ID is not in the VFTA (RCTL.VFE set).
    pub rx_filtered_vlan: u64,
    /// Frames that arrived with RCTL.EN clear.
    pub rx_disabled: u64,
    /// Frames that arrived while the link was down.
    pub rx_link_down: u64,
    /// Frames that arrived while the card was in PHY or MAC loopback (its receiver
    /// listens to its own transmitter then).
    pub rx_looping: u64,
    /// Runt (shorter than 14 bytes) or oversize frames.
    pub rx_malformed: u64,
    /// Frames lost for lack of descriptors: larger than the whole ring can hold, held
    /// for descriptors when the device was reset, or looped back (PHY or MAC loopback)
    /// with no free descriptor.
    pub rx_no_descriptors: u64,
    /// Frames whose descriptor or buffer is outside guest memory (written back with RXE).
    pub rx_unmapped_dma: u64,
    /// Transmitted frames discarded because the link was down.
    pub tx_link_down: u64,
    /// Transmit packets dropped as malformed (bad length, bad context, mixed types).
    pub tx_malformed: u64,
    /// Transmit packets or descriptors not processed because a descriptor or buffer is
    /// outside guest memory.
    pub tx_unmapped_dma: u64,
    /// TDT writes that queued descriptors while TCTL.EN was clear (left unprocessed).
    pub tx_disabled: u64,
    /// TDT writes that queued descriptors while PCI bus mastering was off.
    pub tx_bus_master_off: u64,
    /// TDT writes left unprocessed because TDLEN is 0 or TDH/TDT is outside the ring.
    pub tx_ring_invalid: u64,
    /// Frames the backend refused or failed to send.
    pub tx_backend_refused: u64,
}

impl Drops {
    /// Every counter as (direction, reason, what it counts, value); the destructuring
    /// fails to compile when a field is added and not listed.
    pub fn fields(&self) -> [(&'static str, &'static str, &'static str, u64); 17] {
        let Self {
            rx_filtered_unicast,
            rx_filtered_multicast,
            rx_filtered_broadcast,
            rx_filtered_vlan,
            rx_disabled,
            rx_link_down,
            rx_looping,
            rx_malformed,
            rx_no_descriptors,
            rx_unmapped_dma,
            tx_link_down,
            tx_malformed,
            tx_unmapped_dma,
            tx_disabled,
            tx_bus_master_off,
            tx_ring_invalid,
            tx_backend_refused,
        } = *self;
        [
            (
                "rx",
                "filtered_unicast",
                "unicast matching no RAL/RAH with AV",
                rx_filtered_unicast,
            ),
            (
                "rx",
                "filtered_multicast",
                "multicast with its MTA bit clear",
                rx_filtered_multicast,
            ),
            (
                "rx",
                "filtered_broadcast",
                "broadcast with RCTL.BAM clear",
                rx_filtered_broadcast,
            ),
            (
                "rx",
                "filtered_vlan",
                "VLAN ID not in the VFTA",
                rx_filtered_vlan,
            ),
            ("rx", "disabled", "arrived with RCTL.EN clear", rx_disabled),
            (
                "rx",
                "link_down",
                "arrived with the link down",
                rx_link_down,
            ),
            (
                "rx",
                "looping",
                "arrived while the card was in PHY or MAC loopback",
                rx_looping,
            ),
            ("rx", "malformed", "runt or oversize", rx_malformed),
            (
                "rx",
                "no_descriptors",
                "no descriptors could ever hold it, lost at reset, or looped back to a full ring",
                rx_no_descriptors,
            ),
            (
                "rx",
                "unmapped_dma",
                "descriptor or buffer outside guest memory",
                rx_unmapped_dma,
            ),
            ("tx", "link_down", "sent with the link down", tx_link_down),
            (
                "tx",
                "malformed",
                "malformed packet or descriptor",
                tx_malformed,
            ),
            (
                "tx",
                "unmapped_dma",
                "descriptor or buffer outside guest memory",
                tx_unmapped_dma,
            ),
            (
                "tx",
                "disabled",
                "TDT written while TCTL.EN was clear",
                tx_disabled,
            ),
            (
                "tx",
                "bus_master_off",
                "TDT written while PCI bus mastering was off",
                tx_bus_master_off,
            ),
            (
                "tx",
                "ring_invalid",
                "TDT written with TDLEN 0 or TDH/TDT outside the ring",
                tx_ring_invalid,
            ),
            (
                "tx",
                "backend_refused",
                "the backend refused or failed to send",
                tx_backend_refused,
            ),
        ]
    }

    /// Frames and descriptors dropped, all reasons together.
    pub fn total(&self) -> u64 {
        self.fields().iter().map(|f| f.3).sum()
    }
}
