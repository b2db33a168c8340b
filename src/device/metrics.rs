//! The emulator-side counters, defined once: `metrics_table!` lists every metric with
//! its help text, and everything else is generated from it: the [`Metrics`] struct (the
//! help text is each field's documentation), [`Metrics::FIELDS`] and [`Metrics::named`]
//! (what the control socket's `stats` and the Prometheus text print), and the C API's
//! `NicEmuMetrics` filling (`src/capi/types.rs`, whose struct literal names every field,
//! so a metric missing on either side does not compile).

/// Calls `$callback! { name: "help", ... }` with every metric, in order.
macro_rules! metrics_table {
    ($callback:ident) => {
        $callback! {
            reg_reads: "Register reads (MMIO and I/O window)",
            reg_writes: "Register writes (MMIO and I/O window)",
            tx_frames: "Frames the guest sent, handed to the backend",
            tx_bytes: "Bytes the guest sent, handed to the backend",
            tx_backend_drops: "Frames the backend refused or failed to send",
            tx_no_link: "Frames the guest sent while the link was down: completed, not sent",
            tx_looped: "Frames the card looped into its own receiver (PHY or MAC loopback), not sent",
            tx_malformed: "Transmit descriptors or packets rejected as malformed (each also logged)",
            rx_frames: "Frames written into the guest's receive ring",
            rx_bytes: "Bytes written into the guest's receive ring",
            rx_filtered: "Frames dropped by the guest's address and VLAN filters (as the guest asked)",
            rx_dropped: "Frames dropped for other reasons: oversize, receiver disabled, no link (also in the statistics registers where the hardware has a counter)",
            rx_backpressure: "Times the receive ring was full and frames waited",
            rx_while_looping: "Frames from the backend discarded while the card was in loopback (also in rx_dropped)",
            dma_errors: "DMA accesses outside guest memory or without bus mastering",
            dma_map_edits: "Maps and unmaps applied to the guest memory table (vfio-user DMA_MAP and DMA_UNMAP: a guest with a virtual IOMMU sends them for every buffer)",
            backend_errors: "Errors returned by the backend",
            irq_asserts: "Rising edges of the interrupt line",
        }
    };
}
pub(crate) use metrics_table;

macro_rules! define_metrics {
    ($($name:ident: $help:literal,)*) => {
        /// Emulator-side counters: what the device did and what it refused, for logs,
        /// benchmarks and tests. (The guest-visible counters are the statistics registers.)
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        pub struct Metrics {
            $(#[doc = concat!($help, ".")] pub $name: u64,)*
        }

        impl Metrics {
            /// How many metrics there are.
            pub const COUNT: usize = [$(stringify!($name)),*].len();

            /// Every metric's name and help text, in the order of the struct.
            pub const FIELDS: [(&'static str, &'static str); Self::COUNT] =
                [$((stringify!($name), $help)),*];

            /// Every metric's name, help text and value, in the order of the struct.
            pub fn named(&self) -> [(&'static str, &'static str, u64); Self::COUNT] {
                [$((stringify!($name), $help, self.$name)),*]
            }
        }
    };
}
metrics_table!(define_metrics);

impl std::fmt::Display for Metrics {
    /// One line for logs: the counters a reader looks at first.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "tx {} frames / {} bytes ({} backend drops, {} malformed), rx {} frames / {} \
             bytes ({} filtered, {} dropped, {} ring-full stalls), {} interrupts, {} register \
             reads, {} writes, {} DMA map/unmap, {} DMA errors, {} backend errors",
            self.tx_frames,
            self.tx_bytes,
            self.tx_backend_drops,
            self.tx_malformed,
            self.rx_frames,
            self.rx_bytes,
            self.rx_filtered,
            self.rx_dropped,
            self.rx_backpressure,
            self.irq_asserts,
            self.reg_reads,
            self.reg_writes,
            self.dma_map_edits,
            self.dma_errors,
            self.backend_errors
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_follow_the_struct_and_name_each_value() {
        let m = Metrics {
            reg_reads: 1,
            irq_asserts: 2,
            tx_no_link: 3,
            ..Metrics::default()
        };
        let named = m.named();
        assert_eq!(named.len(), Metrics::COUNT);
        for ((name, help, v), (fname, fhelp)) in named.iter().zip(Metrics::FIELDS) {
            assert_eq!((*name, *help), (fname, fhelp));
            let want = match fname {
                "reg_reads" => 1,
                "irq_asserts" => 2,
                "tx_no_link" => 3,
                _ => 0,
            };
            assert_eq!(*v, want, "{fname}");
            assert!(
                !fhelp.is_empty() && !fhelp.ends_with('.'),
                "{fname}: {fhelp}"
            );
        }
        assert_eq!(Metrics::FIELDS[0].0, "reg_reads");
        assert_eq!(Metrics::FIELDS[Metrics::COUNT - 1].0, "irq_asserts");
    }

    #[test]
    fn metrics_print_as_one_readable_line() {
        let m = Metrics {
            tx_frames: 3,
            tx_bytes: 180,
            rx_frames: 2,
            rx_filtered: 1,
            irq_asserts: 4,
            ..Metrics::default()
        };
        let line = m.to_string();
        assert!(
            line.starts_with("tx 3 frames / 180 bytes (0 backend drops, 0 malformed), rx 2 frames")
                && line.contains("(1 filtered, 0 dropped, 0 ring-full stalls), 4 interrupts"),
            "{line}"
        );
        assert!(!line.contains('{') && !line.contains('\n'), "{line}");
    }
}
