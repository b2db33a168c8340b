//! The receive engine: frames from the backend into the guest's receive ring.
//!
//! A frame passes the filters, is padded to 60 bytes, may have its VLAN tag stripped
//! (CTRL.VME), and is written into as many buffers as it needs (RCTL.BSIZE/BSEX), the
//! last descriptor carrying EOP. When the ring has too few free descriptors the frame is
//! held and the device stops taking frames from the backend (backpressure) until the
//! driver advances RDT; frames that can never fit are dropped and counted (MPC, RXO).

use super::regs::*;
use super::stats::DestKind;
use super::{AccessEffect, E1000};
use crate::backend::RxOutcome;
use crate::wire::checksum;
use crate::wire::ethernet::{MAX_STD_TAGGED, MAX_STD_UNTAGGED, MIN_FRAME};
use crate::wire::MAX_FRAME;

/// Receive descriptor size in bytes.
pub const RX_DESC_SIZE: u64 = 16;

/// Receive descriptor status bits.
pub mod status {
    /// Descriptor done.
    pub const DD: u8 = 1 << 0;
    /// End of packet.
    pub const EOP: u8 = 1 << 1;
    /// Ignore checksum indication.
    pub const IXSM: u8 = 1 << 2;
    /// Packet is 802.1Q (tag stripped into `special`).
    pub const VP: u8 = 1 << 3;
    /// TCP/UDP checksum calculated.
    pub const TCPCS: u8 = 1 << 5;
    /// IP checksum calculated.
    pub const IPCS: u8 = 1 << 6;
}

/// Receive descriptor error bits.
pub mod errors {
    /// TCP/UDP checksum error.
    pub const TCPE: u8 = 1 << 5;
    /// IP checksum error.
    pub const IPE: u8 = 1 << 6;
    /// RX data error.
    pub const RXE: u8 = 1 << 7;
}

/// Receive-side state beyond the registers.
#[derive(Debug)]
pub(crate) struct RxState {
    /// Frame buffer for frames pulled from the backend.
    buf: Vec<u8>,
    /// Length of a frame held in `buf` for lack of descriptors.
    held: Option<usize>,
    /// The held frame was already counted in RNBC.
    held_counted: bool,
    /// Descriptors the held frame needs (it was refused for lack of them).
    held_needs: u32,
    /// Descriptors the last frame `rx_accept` refused for lack of them needed.
    refused_needs: u32,
    /// The backend's `recv` failed in the last [`E1000::poll_backend`].
    recv_failed: bool,
    /// Scratch for padding and VLAN stripping.
    scratch: Vec<u8>,
    /// Rate-limits the log of frames lost to loopback (not their counting).
    log: crate::log_limit::LogLimit,
}

impl Default for RxState {
    fn default() -> Self {
        Self {
            buf: vec![0; MAX_FRAME + 64],
            held: None,
            held_counted: false,
            held_needs: 0,
            refused_needs: 0,
            recv_failed: false,
            scratch: Vec::with_capacity(MAX_FRAME + 64),
            log: Default::default(),
        }
    }
}

impl RxState {
    /// Forget a held frame; returns how many frames were dropped.
    pub(crate) fn reset(&mut self) -> u64 {
        self.held_counted = false;
        u64::from(self.held.take().is_some())
    }
}

/// Most frames taken from the backend per [`E1000::poll_backend`] call, so a flood of
/// filtered frames cannot keep the caller in the loop forever.
const POLL_BUDGET: usize = 512;

impl E1000 {
    /// A write to one of the receive registers (`None`: `off` is not one); `stored` is the
    /// value under the register's writable mask, `val` the raw write (for action bits such
    /// as RDTR.FPD). Writes that may let frames in (RCTL, RDT) take waiting frames from the
    /// backend at once.
    pub(super) fn write_rx_reg(
        &mut self,
        off: u32,
        val: u32,
        stored: u32,
        now: u64,
    ) -> Option<AccessEffect> {
        match off {
            RCTL => {
                self.set_reg(RCTL, stored);
                self.poll_backend();
                Some(AccessEffect::SERVICE)
            }
            RDT => {
                self.set_reg(RDT, stored);
                self.poll_backend();
                // New buffers after the service step found the ring full: the frontend
                // must look at the backend again (it may have stopped watching it).
                Some(if self.rx_stalled {
                    AccessEffect::SERVICE
                } else {
                    AccessEffect::NONE
                })
            }
            RDTR => {
                if val & RDTR_FPD != 0 {
                    self.irq.flush_rx_timer(now);
                }
                self.set_reg(RDTR, stored);
                Some(AccessEffect::NONE)
            }
            _ => None,
        }
    }

    /// Buffer size selected by RCTL.BSIZE and RCTL.BSEX.
    pub(super) fn rx_buffer_size(&self) -> usize {
        rctl_buffer_size(self.reg(RCTL))
    }

    /// Descriptors in the ring (0 if RDLEN is 0).
    fn rx_ring_len(&self) -> u32 {
        self.reg(RDLEN) / RX_DESC_SIZE as u32
    }

    /// Free descriptors the device may fill, or `None` if the ring is misconfigured
    /// (head or tail beyond the ring).
    ///
    /// RDT equal to the ring length (OS/2's driver writes it, meaning "the whole ring";
    /// VirtualBox accepts it) is treated as the manual defines RDT: an index of a
    /// descriptor inside the ring, which the ring's length is not. The card then owns no
    /// descriptor and takes no frame (they wait with the backend) until the driver
    /// writes a tail inside the ring; the tail-outside-ring lint says why. Accepting it
    /// would give the card every descriptor with no point where it stops, so it would
    /// write over descriptors the driver has not read back yet.
    fn rx_free_descriptors(&self) -> Option<u32> {
        let n = self.rx_ring_len();
        let (h, t) = (self.reg(RDH), self.reg(RDT));
        if n == 0 || h >= n || t >= n {
            return None;
        }
        Some(if t >= h { t - h } else { n - h + t })
    }

    /// Whether the device can take a frame now: receiver enabled, link up, bus master on
    /// and at least one free descriptor; or the card is looping (frames from the backend
    /// are then taken and discarded, as a card whose transceiver is off never sees them).
    pub fn rx_ready(&self) -> bool {
        self.looping()
            || (self.reg(RCTL) & RCTL_EN != 0
                && self.phy.link_up()
                && self.dma_allowed()
                && self.rx_free_descriptors().is_some_and(|f| f > 0))
    }

    /// Whether the card loops what it transmits into its own receiver: PHY loopback
    /// (PHY control bit 14) or MAC loopback (RCTL.LBM = 01; 11, loopback through the
    /// transceiver, works the same here). Nothing reaches the backend then, and nothing
    /// from the backend reaches the guest.
    pub fn looping(&self) -> bool {
        self.phy.loopback() || self.reg(RCTL) & RCTL_LBM_MASK != 0
    }

    /// Pull frames from the backend into the receive ring while there is room. Returns
    /// the number of frames delivered. Frontends reach it through
    /// [`service`](Self::service).
    pub(crate) fn poll_backend(&mut self) -> usize {
        let mut delivered = 0;
        self.rx.recv_failed = false;
        let mut buf = std::mem::take(&mut self.rx.buf);
        for _ in 0..POLL_BUDGET {
            if !self.rx_ready() {
                break;
            }
            let len = match self.rx.held.take() {
                Some(len) => len,
                None => match self.backend.recv(&mut buf[..MAX_FRAME]) {
                    Ok(Some(len)) => {
                        self.rx.held_counted = false;
                        len.min(MAX_FRAME)
                    }
                    Ok(None) => break,
                    Err(e) => {
                        self.metrics.backend_errors += 1;
                        self.rx.recv_failed = true;
                        if crate::log_limit::worth_logging(self.metrics.backend_errors) {
                            log::warn!(
                                "backend {}: receive failed: {e} ({} backend errors so far)",
                                self.backend.name(),
                                self.metrics.backend_errors
                            );
                        }
                        break;
                    }
                },
            };
            let outcome = self.receive_frame(&buf[..len]);
            match outcome {
                RxOutcome::Delivered => delivered += 1,
                RxOutcome::NoRoom => {
                    self.rx.held = Some(len);
                    break;
                }
                RxOutcome::Filtered | RxOutcome::Dropped => {}
            }
            // The backend hears the verdict on each frame it gave, once, in order.
            self.backend.rx_outcome(outcome);
        }
        self.rx.buf = buf;
        delivered
    }

    /// Whether a frame is held waiting for receive descriptors.
    pub fn rx_frame_held(&self) -> bool {
        self.rx.held.is_some()
    }

    /// Whether the service step can take the next frame now: [`rx_ready`](Self::rx_ready),
    /// and a frame held for lack of descriptors fits in the free ones (a jumbo frame in
    /// 2 KiB buffers may need more than one).
    pub(crate) fn rx_can_take(&self) -> bool {
        self.rx_ready()
            && (self.rx.held.is_none()
                || self
                    .rx_free_descriptors()
                    .is_some_and(|free| free >= self.rx.held_needs))
    }

    /// Whether the backend's `recv` failed during the last pass over it.
    pub(crate) fn rx_recv_failed(&self) -> bool {
        self.rx.recv_failed
    }

    /// Offer one frame from the wire (destination MAC first, no FCS) to the receive path.
    pub fn receive_frame(&mut self, frame: &[u8]) -> RxOutcome {
        if self.looping() {
            // The card listens to itself: a frame from the wire is lost, as on a card
            // whose transceiver is off.
            self.metrics.rx_while_looping += 1;
            self.metrics.rx_dropped += 1;
            self.drops.rx_looping += 1;
            if let Some(n) = self.rx.log.note() {
                log::info!(
                    "rx: frame from the backend discarded: the card is in loopback ({n} so far)"
                );
            }
            if super::trace::frames_on() {
                self.trace_rx_frame(frame, "dropped: the card is in PHY or MAC loopback");
            }
            return RxOutcome::Dropped;
        }
        if !self.phy.link_up() {
            self.metrics.rx_dropped += 1;
            self.drops.rx_link_down += 1;
            if super::trace::frames_on() {
                self.trace_rx_frame(frame, "dropped: link down");
            }
            return RxOutcome::Dropped;
        }
        match self.rx_accept(frame) {
            RxOutcome::NoRoom => {
                self.rx.held_needs = self.rx.refused_needs;
                self.rx_no_room()
            }
            outcome => outcome,
        }
    }

    /// A frame the transmitter looped back (PHY or MAC loopback) into the receive path.
    /// The link does not matter; a frame that finds no free descriptor is missed
    /// (MPC), as when the receive FIFO overflows.
    pub(super) fn receive_looped(&mut self, frame: &[u8]) {
        if self.rx_accept(frame) == RxOutcome::NoRoom {
            self.stats.inc(MPC);
            self.metrics.rx_dropped += 1;
            self.drops.rx_no_descriptors += 1;
            if super::trace::frames_on() {
                self.trace_rx_frame(frame, "missed: looped back with no free descriptor");
            }
            if let Some(n) = self.rx.log.note() {
                log::info!("rx: looped-back frame missed: no free receive descriptor ({n} so far)");
            }
        }
    }

    /// The receive path proper: filters, buffers, write-back. `NoRoom` has no side
    /// effect here; the caller decides what waiting means.
    fn rx_accept(&mut self, frame: &[u8]) -> RxOutcome {
        let rctl = self.reg(RCTL);
        if rctl & RCTL_EN == 0 {
            self.metrics.rx_dropped += 1;
            self.drops.rx_disabled += 1;
            if super::trace::frames_on() {
                self.trace_rx_frame(frame, "dropped: RCTL.EN=0");
            }
            return RxOutcome::Dropped;
        }
        if frame.len() < 14 {
            self.stats.inc(RUC);
            self.metrics.rx_dropped += 1;
            self.drops.rx_malformed += 1;
            log::debug!("rx: runt frame of {} bytes dropped", frame.len());
            if super::trace::frames_on() {
                self.trace_rx_frame(frame, "dropped: runt (no Ethernet header)");
            }
            return RxOutcome::Dropped;
        }
        // A tag needs its 2-byte TCI after the type; shorter frames count as untagged.
        let tagged = frame.len() >= 16
            && u32::from(u16::from_be_bytes([frame[12], frame[13]])) == self.reg(VET) & 0xFFFF;
        let max = if rctl & RCTL_LPE != 0 {
            MAX_JUMBO_FRAME
        } else if tagged {
            MAX_STD_TAGGED
        } else {
            MAX_STD_UNTAGGED
        };
        if frame.len() > max {
            self.stats.inc(ROC);
            self.metrics.rx_dropped += 1;
            self.drops.rx_malformed += 1;
            log::debug!(
                "rx: oversize frame of {} bytes dropped (max {max})",
                frame.len()
            );
            if super::trace::frames_on() {
                let why = format!(
                    "dropped: longer than {max} bytes (RCTL.LPE={})",
                    u8::from(rctl & RCTL_LPE != 0)
                );
                self.trace_rx_frame(frame, &why);
            }
            return RxOutcome::Dropped;
        }
        if !self.rx_filter_accepts(frame) {
            self.metrics.rx_filtered += 1;
            self.rx_filtered(frame);
            if super::trace::frames_on() {
                self.trace_rx_frame(frame, &self.filter_reason(frame, false));
            }
            return RxOutcome::Filtered;
        }
        if super::trace::frames_on() {
            self.trace_rx_frame(frame, &self.filter_reason(frame, true));
        }
        let Some(free) = self.rx_free_descriptors() else {
            return RxOutcome::NoRoom;
        };
        if !self.dma_allowed() {
            return RxOutcome::NoRoom;
        }

        // Build what goes into guest memory: stripped, padded, plus FCS space.
        let strip = tagged && self.reg(CTRL) & CTRL_VME != 0;
        let mut out = std::mem::take(&mut self.rx.scratch);
        out.clear();
        let mut special = 0u16;
        if strip {
            special = u16::from_be_bytes([frame[14], frame[15]]);
            out.extend_from_slice(&frame[..12]);
            out.extend_from_slice(&frame[16..]);
        } else {
            out.extend_from_slice(frame);
        }
        if out.len() < MIN_FRAME {
            out.resize(MIN_FRAME, 0);
        }
        let (csum_status, csum_errors) = self.rx_checksum(&out);
        if rctl & RCTL_SECRC == 0 {
            out.extend_from_slice(&[0; 4]); // FCS: the driver discards it
        }

        let bufsize = self.rx_buffer_size();
        let needed = out.len().div_ceil(bufsize) as u32;
        let ring = self.rx_ring_len();
        if needed > ring.saturating_sub(1) {
            // Can never fit, even in an empty ring: drop, or we would hold it forever.
            self.stats.inc(MPC);
            self.metrics.rx_dropped += 1;
            self.drops.rx_no_descriptors += 1;
            let now = self.now();
            self.irq.raise(ICR_RXO, now);
            log::warn!(
                "rx: frame of {} bytes needs {needed} buffers of {bufsize}, ring has {ring}: dropped",
                out.len()
            );
            self.rx.scratch = out;
            return RxOutcome::Dropped;
        }
        if needed > free {
            self.rx.scratch = out;
            self.rx.refused_needs = needed;
            return RxOutcome::NoRoom;
        }

        self.lint_rx_split(out.len(), needed as usize, bufsize);
        let wire_len = frame.len().max(MIN_FRAME);
        let landed = self.rx_write_ring(
            &out,
            bufsize,
            csum_status,
            csum_errors,
            strip.then_some(special),
        );
        self.rx.scratch = out;
        if landed {
            self.stats.rx_good(wire_len, DestKind::of(frame));
            self.metrics.rx_frames += 1;
            self.metrics.rx_bytes += frame.len() as u64;
        } else {
            // A buffer the guest named is not mapped (or not writable): the descriptors
            // are consumed with RXE set, and the frame is lost, counted as an error
            // (the DMA error itself is counted and logged in dma_errors).
            self.stats.inc(RXERRC);
            self.metrics.rx_dropped += 1;
            self.drops.rx_unmapped_dma += 1;
        }

        let now = self.now();
        let (rdtr, radv) = (self.reg(RDTR), self.reg(RADV));
        self.irq.rx_done(now, rdtr, radv);
        // SRPD: a packet no longer than RSRPD.SIZE (headers and CRC, not a stripped VLAN
        // tag) went to memory; at once, whatever the receive delay timers say.
        let small = self.reg(RSRPD) & 0xFFF;
        if small != 0 && wire_len_after_strip(wire_len, strip) <= small as usize {
            self.irq.raise(ICR_SRPD, now);
        }
        if let Some(free) = self.rx_free_descriptors() {
            let rdmts = (self.reg(RCTL) & RCTL_RDMTS_MASK) >> RCTL_RDMTS_SHIFT;
            let threshold = self.rx_ring_len() >> (rdmts.min(2) + 1);
            if free <= threshold {
                self.irq.raise(ICR_RXDMT0, now);
            }
        }
        RxOutcome::Delivered
    }

    fn rx_no_room(&mut self) -> RxOutcome {
        if !self.rx.held_counted {
            self.rx.held_counted = true;
            self.stats.inc(RNBC);
            self.metrics.rx_backpressure += 1;
        }
        RxOutcome::NoRoom
    }

    /// Write `data` into consecutive descriptors starting at RDH; the caller checked
    /// there are enough. False if some of it could not be written (DMA refused).
    fn rx_write_ring(
        &mut self,
        data: &[u8],
        bufsize: usize,
        csum_status: u8,
        csum_errors: u8,
        vlan: Option<u16>,
    ) -> bool {
        let base = (u64::from(self.reg(RDBAH)) << 32) | u64::from(self.reg(RDBAL));
        let mut landed = true;
        let ring = self.rx_ring_len();
        let mut head = self.reg(RDH);
        let mut chunks = data.chunks(bufsize).peekable();
        while let Some(chunk) = chunks.next() {
            let desc = base.wrapping_add(u64::from(head) * RX_DESC_SIZE);
            let last = chunks.peek().is_none();
            let mut errors_bits = 0u8;
            let mut addr_bytes = [0u8; 8];
            let len = if self.dma_read(desc, &mut addr_bytes).is_err() {
                errors_bits |= errors::RXE;
                landed = false;
                0
            } else {
                let addr = u64::from_le_bytes(addr_bytes);
                if addr == 0 {
                    // A null buffer is consumed without data (CVE-2020-28916 looped here).
                    0
                } else if self.dma_write(addr, chunk).is_err() {
                    errors_bits |= errors::RXE;
                    landed = false;
                    0
                } else {
                    chunk.len()
                }
            };
            let mut status = status::DD;
            if last {
                status |= status::EOP | csum_status;
                errors_bits |= csum_errors;
                if vlan.is_some() {
                    status |= status::VP;
                }
            }
            let mut wb = [0u8; 8];
            wb[0..2].copy_from_slice(&(len as u16).to_le_bytes());
            wb[4] = status;
            wb[5] = errors_bits;
            wb[6..8].copy_from_slice(&vlan.unwrap_or(0).to_le_bytes());
            if self.dma_write(desc.wrapping_add(8), &wb).is_err() {
                landed = false;
            }
            head = (head + 1) % ring;
        }
        self.set_reg(RDH, head);
        landed
    }

    /// Receive checksum offload (RXCSUM.IPOFLD/TUOFLD): status and error bits for the
    /// EOP descriptor.
    fn rx_checksum(&self, frame: &[u8]) -> (u8, u8) {
        let rxcsum = self.reg(RXCSUM);
        let ip_ofl = rxcsum & RXCSUM_IPOFLD != 0;
        let tu_ofl = rxcsum & RXCSUM_TUOFLD != 0;
        if !ip_ofl && !tu_ofl {
            return (status::IXSM, 0);
        }
        let mut l3 = 12;
        let mut ethertype = u16::from_be_bytes([frame[12], frame[13]]);
        if u32::from(ethertype) == self.reg(VET) & 0xFFFF && frame.len() >= 18 {
            l3 = 16;
            ethertype = u16::from_be_bytes([frame[16], frame[17]]);
        }
        let l3 = l3 + 2;
        let (mut st, mut er) = (0u8, 0u8);
        let (proto, l4, l4_len, pseudo) = match ethertype {
            0x0800 => {
                let Some(&vihl) = frame.get(l3) else {
                    return (status::IXSM, 0);
                };
                let ihl = usize::from(vihl & 0xF) * 4;
                if vihl >> 4 != 4 || ihl < 20 || frame.len() < l3 + ihl {
                    return (status::IXSM, 0);
                }
                let hdr = &frame[l3..l3 + ihl];
                if ip_ofl {
                    st |= status::IPCS;
                    if checksum::fold(checksum::sum(hdr, 0)) != 0xFFFF {
                        er |= errors::IPE;
                    }
                }
                let total = usize::from(u16::from_be_bytes([hdr[2], hdr[3]]));
                let frag = u16::from_be_bytes([hdr[6], hdr[7]]) & 0x3FFF;
                if frag != 0 || total < ihl || l3 + total > frame.len() {
                    return (st, er);
                }
                let l4_len = total - ihl;
                let pseudo = checksum::sum(&hdr[12..20], u64::from(hdr[9]) + l4_len as u64);
                (hdr[9], l3 + ihl, l4_len, pseudo)
            }
            0x86DD => {
                if frame.len() < l3 + 40 {
                    return (status::IXSM, 0);
                }
                let hdr = &frame[l3..l3 + 40];
                let plen = usize::from(u16::from_be_bytes([hdr[4], hdr[5]]));
                if l3 + 40 + plen > frame.len() {
                    return (status::IXSM, 0);
                }
                let pseudo = checksum::sum(&hdr[8..40], u64::from(hdr[6]) + plen as u64);
                (hdr[6], l3 + 40, plen, pseudo)
            }
            _ => return (status::IXSM, 0),
        };
        if tu_ofl && (proto == 6 || proto == 17) {
            let seg = &frame[l4..l4 + l4_len];
            // UDP over IPv4 with checksum 0 means "no checksum".
            let udp_none = proto == 17 && ethertype == 0x0800 && seg.get(6..8) == Some(&[0, 0]);
            if !udp_none && seg.len() >= 8 {
                st |= status::TCPCS;
                if checksum::fold(checksum::sum(seg, pseudo)) != 0xFFFF {
                    er |= errors::TCPE;
                }
            }
        }
        if st == 0 {
            st = status::IXSM;
        }
        (st, er)
    }
}

/// The size RSRPD compares: the frame on the wire with its CRC (`wire_len` is without),
/// less a VLAN tag the device stripped.
fn wire_len_after_strip(wire_len: usize, stripped: bool) -> usize {
    wire_len + 4 - if stripped { 4 } else { 0 }
}
