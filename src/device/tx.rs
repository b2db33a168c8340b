//! The transmit engine: descriptors from the guest's transmit ring to the backend.
//!
//! `E1000::process_tx` walks the ring from TDH to TDT (at most one ring's worth per
//! call), reading each descriptor with one 16-byte DMA read:
//!
//! - legacy descriptors (DEXT=0): data, with the EOP descriptor's IC/CSS/CSO checksum
//!   insertion and VLE/special tag insertion;
//! - context descriptors (DEXT, DTYP=0): offload parameters. As on the 8254x there are
//!   two contexts: one set with TSE (segmentation plus checksums) and one without
//!   (checksums only); a data descriptor with TSE uses the first, one without the second;
//! - data descriptors (DEXT, DTYP=1): data, with POPTS (IXSM/TXSM) and TSE taken from
//!   the first descriptor of the packet.
//!
//! Packet data is copied straight from guest memory into one frame buffer allocated at
//! creation; segmentation is done on the fly, so the buffer never holds more than
//! HDRLEN + MSS bytes, however large the payload (PAYLEN is 20 bits). Write-back sets DD
//! only in descriptors with RS (legacy: or RPS). TDH is written once per call, TXDW is
//! raised (or its TIDV/TADV delay started) once per call, TXQE when the ring drained.
//!
//! Guest mistakes never stop the ring: a packet that cannot be sent (buffer outside
//! memory, larger than [`MAX_FRAME`], bad segmentation context, legacy and extended
//! descriptors mixed) is dropped, counted in `Metrics::tx_malformed` and logged
//! (rate-limited), and its descriptors are consumed as usual.

use super::offload::{self, Context, Segment};
use super::regs::*;
use super::stats::DestKind;
use super::{AccessEffect, E1000};
use crate::wire::ethernet::MIN_FRAME;
use crate::wire::MAX_FRAME;

/// Transmit descriptor size in bytes.
pub const TX_DESC_SIZE: u64 = 16;

/// Command bits: legacy CMD, context TUCMD and data DCMD share these positions.
pub mod cmd {
    /// End of packet.
    pub const EOP: u8 = 1 << 0;
    /// Insert FCS (the backend carries frames without FCS, so nothing to do).
    pub const IFCS: u8 = 1 << 1;
    /// Legacy: insert checksum (CSS to end of packet, at CSO).
    pub const IC: u8 = 1 << 2;
    /// Extended: TCP segmentation enable.
    pub const TSE: u8 = 1 << 2;
    /// Report status: write back DD.
    pub const RS: u8 = 1 << 3;
    /// Legacy: report packet sent (written back like RS).
    pub const RPS: u8 = 1 << 4;
    /// Extended descriptor.
    pub const DEXT: u8 = 1 << 5;
    /// Insert the VLAN tag from `special` (with CTRL.VME).
    pub const VLE: u8 = 1 << 6;
    /// Interrupt delay enable: TXDW after TIDV/TADV instead of at once.
    pub const IDE: u8 = 1 << 7;
}

/// Why a packet is dropped when a buffer cannot be read (a drop reason of its own).
pub(super) const BUFFER_OUTSIDE: &str = "buffer outside guest memory";

/// Descriptor status bit written back: descriptor done.
pub const STA_DD: u8 = 1 << 0;

/// Bytes kept free before the frame in the buffer, for VLAN tag insertion.
pub(super) const HEADROOM: usize = 4;

/// Frames (TSO segments included) one call of `E1000::process_tx` sends at most. A
/// hostile TSO context (MSS 16, PAYLEN 1 MiB per packet, 64 Ki descriptors) could
/// otherwise keep one register write busy for minutes; past the budget the engine stops
/// at a descriptor boundary and [`E1000::tx_pending`] asks the caller to come back.
pub const TX_FRAME_BUDGET: u64 = 4096;

/// Descriptor types of extended descriptors (DTYP).
const DTYP_CONTEXT: u8 = 0;
const DTYP_DATA: u8 = 1;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Mode {
    #[default]
    Legacy,
    Data,
}

/// The packet being assembled.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Packet {
    /// Descriptors of this packet have been consumed (no EOP yet).
    active: bool,
    mode: Mode,
    /// Segmentation (data descriptor with TSE).
    pub(super) tse: bool,
    /// Segmentation handed on: gathered whole in `TxState::gso_buf` (`tx_gso.rs`).
    pub(super) gso: bool,
    pub(super) popts: u8,
    /// The context in force when the packet started.
    pub(super) ctx: Context,
    /// Segmentation: VLAN tag of every segment (from the first descriptor).
    tso_vlan: Option<u16>,
    /// Bytes in the buffer (after [`HEADROOM`], or in `gso_buf`).
    pub(super) len: usize,
    /// Dropped: the rest of its descriptors are consumed without DMA.
    failed: bool,
    /// Segmentation: segments sent.
    segs: u32,
    /// Segmentation: payload bytes sent.
    sent_payload: u32,
}

/// Transmit-side state beyond the registers.
#[derive(Debug)]
pub(crate) struct TxState {
    /// Frame buffer: [`HEADROOM`] bytes, then the frame.
    buf: Vec<u8>,
    /// Segmentation: the header as the guest wrote it, restored after each segment.
    hdr: [u8; 256],
    /// Checksum-only context (context descriptor without TSE).
    csum_ctx: Context,
    /// Segmentation context (context descriptor with TSE).
    tso_ctx: Context,
    pub(super) pkt: Packet,
    /// A TSO packet gathered whole for a backend that segments (empty until needed).
    pub(super) gso_buf: Vec<u8>,
    /// Rate-limits the log of transmit problems (not their counting).
    pub(super) log: crate::log_limit::LogLimit,
    /// The last pass stopped at [`TX_FRAME_BUDGET`] with descriptors left.
    more: bool,
    /// A TSO packet was seen (and logged) since power-on.
    tso_seen: bool,
}

impl Default for TxState {
    fn default() -> Self {
        Self {
            buf: vec![0; HEADROOM + MAX_FRAME],
            hdr: [0; 256],
            csum_ctx: Context::default(),
            tso_ctx: Context::default(),
            pkt: Packet::default(),
            gso_buf: Vec::new(),
            log: Default::default(),
            more: false,
            tso_seen: false,
        }
    }
}

impl TxState {
    pub(crate) fn reset(&mut self) {
        self.csum_ctx = Context::default();
        self.tso_ctx = Context::default();
        self.pkt = Packet::default();
        self.more = false;
    }
}

impl E1000 {
    /// Process transmit descriptors from TDH to TDT.
    pub(crate) fn process_tx(&mut self) {
        if self.reg(TCTL) & TCTL_EN == 0 || !self.dma_allowed() {
            return;
        }
        let ring = self.reg(TDLEN) / TX_DESC_SIZE as u32;
        if ring == 0 {
            return;
        }
        let (mut head, tail) = (self.reg(TDH), self.reg(TDT));
        let start = head;
        if head >= ring || tail >= ring {
            self.tx_problem(format_args!(
                "TDH {head} or TDT {tail} outside the ring of {ring} descriptors: stopped"
            ));
            return;
        }
        if head == tail {
            return;
        }
        let base = (u64::from(self.reg(TDBAH)) << 32) | u64::from(self.reg(TDBAL));
        let frames_before = self.metrics.tx_frames;
        let attempted_before = self.tx_attempts();
        self.tx.more = false;
        let mut buf = std::mem::take(&mut self.tx.buf);
        self.backend.begin_burst();
        let mut wrote_back = false;
        let mut delay = true;
        // head and tail are both inside the ring: fewer than `ring` iterations.
        while head != tail {
            let at = base.wrapping_add(u64::from(head) * TX_DESC_SIZE);
            let mut d = [0u8; 16];
            if self.dma_read(at, &mut d).is_err() {
                // Nothing past an unreadable descriptor is consumed: the guest (or its
                // IOMMU) named memory that is not there. TDH stays on it, so a later
                // doorbell retries it, and a hostile ring costs one failed read per
                // doorbell instead of a walk of up to 65,536.
                if self.tx.pkt.active {
                    self.tx.pkt = Packet::default();
                }
                self.drops.tx_unmapped_dma += 1;
                self.tx_problem(format_args!(
                    "descriptor {head} at {at:#x} unreadable: transmit stopped there"
                ));
                break;
            }
            if super::trace::frames_on() {
                self.trace_tx_desc(head, at, &d);
            }
            self.lint_tx_desc(head, &d, ring);
            self.tx_descriptor(&d, &mut buf);
            let c = d[11];
            let report = if c & cmd::DEXT != 0 {
                cmd::RS
            } else {
                cmd::RS | cmd::RPS
            };
            if c & report != 0 {
                // Status: DD set, the other status bits (EC, LC, TU) clear.
                let sta = (d[12] & 0xF0) | STA_DD;
                if self.dma_write(at.wrapping_add(12), &[sta]).is_ok() {
                    wrote_back = true;
                    delay &= c & cmd::IDE != 0;
                }
            }
            head = (head + 1) % ring;
            if head != tail && self.tx_attempts() - attempted_before >= TX_FRAME_BUDGET {
                self.tx.more = true;
                break;
            }
        }
        self.tx.buf = buf;
        if let Err(e) = self.backend.end_burst() {
            self.metrics.backend_errors += 1;
            if self.tx.log.note().is_some() {
                log::warn!(
                    "backend {}: sending a burst failed: {e}",
                    self.backend.name()
                );
            }
        }
        self.set_reg(TDH, head);
        let now = self.now();
        if wrote_back {
            let (tidv, tadv) = (self.reg(TIDV), self.reg(TADV));
            self.irq.tx_done(now, delay, tidv, tadv);
        }
        if head == tail {
            self.irq.raise(ICR_TXQE, now);
            self.lint_tx_drained(head, self.tx.pkt.active);
        }
        // TXD_LOW: the descriptors left for the hardware fell to 8 * TXDCTL.LWTHRESH
        // during this pass (with LWTHRESH 0: the ring drained).
        let before = (tail + ring - start) % ring;
        let left = (tail + ring - head) % ring;
        let low = 8 * (self.reg(TXDCTL) >> TXDCTL_LWTHRESH_SHIFT);
        if before > low && left <= low {
            self.irq.raise(ICR_TXD_LOW, now);
        }
        if self.metrics.tx_frames != frames_before {
            // Loopback-style backends have the frames ready to receive now.
            self.poll_backend();
        }
    }

    /// A write to one of the transmit registers (`None`: `off` is not one); `stored` is
    /// the value under the register's writable mask, `val` the raw write (for TIDV.FPD).
    /// TCTL and TDT run the engine.
    pub(super) fn write_tx_reg(
        &mut self,
        off: u32,
        val: u32,
        stored: u32,
        now: u64,
    ) -> Option<AccessEffect> {
        match off {
            TCTL => {
                self.set_reg(TCTL, stored);
                self.process_tx();
                Some(AccessEffect::SERVICE)
            }
            TDT => {
                self.set_reg(TDT, stored);
                self.process_tx();
                // Work left at the budget is the service step's. An interrupt-driven
                // driver's doorbell is followed at once by the interrupt's accesses; a
                // polling driver (DPDK) rings the next one a burst later, and a
                // frontend that waited for it would only take CPU from the guest.
                Some(AccessEffect {
                    service_due: self.tx_pending(),
                    next_access_soon: self.irq.packet_interrupts_used(),
                })
            }
            TIDV => {
                if val & TIDV_FPD != 0 {
                    self.irq.flush_tx_timer(now);
                }
                self.set_reg(TIDV, stored);
                Some(AccessEffect::NONE)
            }
            _ => None,
        }
    }

    /// Frames the engine finished so far: sent, refused by the backend, or discarded
    /// for lack of link (what the work budget counts).
    fn tx_attempts(&self) -> u64 {
        self.metrics.tx_frames + self.metrics.tx_backend_drops + self.metrics.tx_no_link
    }

    /// Whether the last `process_tx` stopped at its work budget with
    /// descriptors left: the caller (event loop, bus) should call it again soon.
    pub fn tx_pending(&self) -> bool {
        self.tx.more
    }

    /// Continue transmitting if the last pass stopped at its budget (part of
    /// [`service`](Self::service)).
    pub(crate) fn resume_tx(&mut self) {
        if self.tx.more {
            self.process_tx();
        }
    }

    /// Count and (rate-limited) log a transmit problem.
    fn tx_problem(&mut self, what: std::fmt::Arguments<'_>) {
        self.metrics.tx_malformed += 1;
        if let Some(n) = self.tx.log.note() {
            log::warn!("tx: {what} ({n} transmit problems so far)");
        }
    }

    /// Drop the current packet (once): its remaining descriptors are consumed unread.
    pub(super) fn tx_fail(&mut self, why: &str) {
        if !self.tx.pkt.failed {
            self.tx.pkt.failed = true;
            if why == BUFFER_OUTSIDE {
                self.drops.tx_unmapped_dma += 1;
            } else {
                self.drops.tx_malformed += 1;
            }
            self.tx_problem(format_args!("{why}: packet dropped"));
        }
    }

    fn tx_descriptor(&mut self, d: &[u8; 16], buf: &mut [u8]) {
        let c = d[11];
        if c & cmd::DEXT == 0 {
            return self.tx_data(d, buf, Mode::Legacy);
        }
        match d[10] >> 4 {
            DTYP_CONTEXT => {
                let ctx = Context::parse(d);
                if ctx.tse {
                    self.tx.tso_ctx = ctx;
                } else {
                    self.tx.csum_ctx = ctx;
                }
            }
            DTYP_DATA => self.tx_data(d, buf, Mode::Data),
            t => self.tx_problem(format_args!("descriptor type {t} ignored")),
        }
    }

    /// A legacy or data descriptor.
    fn tx_data(&mut self, d: &[u8; 16], buf: &mut [u8], mode: Mode) {
        let c = d[11];
        let addr = u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]);
        let len = match mode {
            Mode::Legacy => usize::from(u16::from_le_bytes([d[8], d[9]])),
            Mode::Data => (u32::from_le_bytes([d[8], d[9], d[10], 0]) & 0xF_FFFF) as usize,
        };
        let special = u16::from_le_bytes([d[14], d[15]]);
        let vlan = (c & cmd::VLE != 0 && self.reg(CTRL) & CTRL_VME != 0).then_some(special);
        if !self.tx.pkt.active {
            let tse = mode == Mode::Data && c & cmd::TSE != 0;
            let popts = if mode == Mode::Data { d[13] } else { 0 };
            let ctx = if tse {
                self.tx.tso_ctx
            } else {
                self.tx.csum_ctx
            };
            let gso = tse && self.gso_eligible(&ctx, popts, vlan);
            if tse && !self.tx.tso_seen {
                // Once per device: whether the guest's driver uses TSO at all, and where
                // its packets are cut.
                self.tx.tso_seen = true;
                log::info!(
                    "tx: the guest uses TSO (MSS {}, headers {} bytes): {}",
                    ctx.mss,
                    ctx.hdrlen,
                    match self.gso_refusal(&ctx, popts, vlan) {
                        None => "packets go to the backend whole".to_string(),
                        Some(why) => format!("the device cuts packets ({why})"),
                    }
                );
            }
            self.tx.pkt = Packet {
                active: true,
                mode,
                tse,
                gso,
                popts,
                ctx,
                tso_vlan: vlan,
                ..Packet::default()
            };
            if tse && !gso {
                if let Some(why) = ctx.tso_problem(popts) {
                    self.tx_fail(why);
                }
            }
        } else if self.tx.pkt.mode != mode {
            // CVE-2021-20257 came from a data descriptor continuing a legacy packet.
            self.tx_fail("legacy and extended data descriptors mixed in one packet");
        }
        if !self.tx.pkt.failed && len > 0 {
            if self.tx.pkt.gso {
                self.gso_append(addr, len);
            } else if self.tx.pkt.tse {
                self.tso_append(buf, addr, len);
            } else {
                self.tx_append(buf, addr, len);
            }
        }
        if c & cmd::EOP != 0 {
            // Legacy IC, CSS and CSO, and VLE/special, count in the EOP descriptor.
            let legacy_ic = (mode == Mode::Legacy && c & cmd::IC != 0)
                .then_some((usize::from(d[13]), usize::from(d[10])));
            self.tx_end_packet(buf, vlan, legacy_ic);
        }
    }

    /// Copy `len` bytes at `addr` onto the end of a packet sent whole.
    fn tx_append(&mut self, buf: &mut [u8], addr: u64, len: usize) {
        let at = self.tx.pkt.len;
        let end = at.saturating_add(len);
        if end > MAX_FRAME {
            return self.tx_fail("packet larger than the largest frame");
        }
        let Some(dst) = buf.get_mut(HEADROOM + at..HEADROOM + end) else {
            return self.tx_fail("packet larger than the frame buffer");
        };
        if self.dma_read(addr, dst).is_err() {
            return self.tx_fail(BUFFER_OUTSIDE);
        }
        self.tx.pkt.len = end;
    }

    /// Copy `len` bytes at `addr` into a segmented packet, sending a segment each time
    /// one is full and more payload follows.
    fn tso_append(&mut self, buf: &mut [u8], mut addr: u64, mut left: usize) {
        let hdrlen = usize::from(self.tx.pkt.ctx.hdrlen);
        let mss = usize::from(self.tx.pkt.ctx.mss);
        let paylen = self.tx.pkt.ctx.paylen as usize;
        while left > 0 && !self.tx.pkt.failed {
            let have = self.tx.pkt.len;
            let room = if have < hdrlen {
                hdrlen - have
            } else {
                if have >= hdrlen + mss {
                    // Full, and more payload follows: not the last segment.
                    self.tso_emit(buf, false);
                    continue;
                }
                let payload = self.tx.pkt.sent_payload as usize + (have - hdrlen);
                if payload >= paylen {
                    return self.tx_fail("TSO data beyond HDRLEN + PAYLEN");
                }
                (hdrlen + mss - have).min(paylen - payload)
            };
            let n = room.min(left);
            let Some(dst) = buf.get_mut(HEADROOM + have..HEADROOM + have + n) else {
                return self.tx_fail("TSO segment larger than the frame buffer");
            };
            if self.dma_read(addr, dst).is_err() {
                return self.tx_fail(BUFFER_OUTSIDE);
            }
            if have < hdrlen && have + n == hdrlen {
                if let (Some(h), Some(src)) = (
                    self.tx.hdr.get_mut(..hdrlen),
                    buf.get(HEADROOM..HEADROOM + hdrlen),
                ) {
                    h.copy_from_slice(src);
                }
            }
            self.tx.pkt.len = have + n;
            addr = addr.wrapping_add(n as u64);
            left -= n;
        }
    }

    /// Send the segment in the buffer and make room for the next one. Always leaves
    /// exactly the header in the buffer.
    fn tso_emit(&mut self, buf: &mut [u8], last: bool) {
        let p = self.tx.pkt;
        let hdrlen = usize::from(p.ctx.hdrlen);
        let payload = p.len.saturating_sub(hdrlen);
        let seg = Segment {
            index: p.segs,
            offset: p.sent_payload,
            last,
        };
        let ok = match buf.get_mut(HEADROOM..HEADROOM + p.len) {
            Some(frame) => match offload::fix_segment_headers(frame, &p.ctx, seg) {
                Some(l4_len) => {
                    offload::apply_checksums(frame, &p.ctx, p.popts, l4_len);
                    true
                }
                None => false,
            },
            None => false,
        };
        if ok {
            self.tx_send(buf, p.len, p.tso_vlan);
        } else {
            self.tx_fail("TSO header fix-up outside the segment");
        }
        if let (Some(dst), Some(h)) = (
            buf.get_mut(HEADROOM..HEADROOM + hdrlen),
            self.tx.hdr.get(..hdrlen),
        ) {
            dst.copy_from_slice(h);
        }
        let p = &mut self.tx.pkt;
        p.len = hdrlen.min(p.len);
        p.segs = p.segs.saturating_add(1);
        p.sent_payload = p.sent_payload.wrapping_add(payload as u32);
    }

    /// EOP: finish the packet (checksums, last segment) and send it.
    fn tx_end_packet(
        &mut self,
        buf: &mut [u8],
        vlan: Option<u16>,
        legacy_ic: Option<(usize, usize)>,
    ) {
        let p = self.tx.pkt;
        if p.gso {
            if !p.failed && self.gso_finish(buf) && !self.tx.pkt.failed {
                self.stats.inc(TSCTC);
            } else {
                self.stats.inc(TSCTFC);
            }
        } else if p.tse {
            if !p.failed && p.len < usize::from(p.ctx.hdrlen) {
                self.tx_fail("TSO packet shorter than HDRLEN");
            }
            if !self.tx.pkt.failed && (p.len > usize::from(p.ctx.hdrlen) || p.segs == 0) {
                self.tso_emit(buf, true);
            }
            // tso_emit may have failed the packet too.
            if self.tx.pkt.failed {
                self.stats.inc(TSCTFC);
            } else {
                self.stats.inc(TSCTC);
            }
        } else if !p.failed && p.len == 0 {
            self.drops.tx_malformed += 1;
            self.tx_problem(format_args!("empty packet dropped"));
        } else if !p.failed {
            if let Some(frame) = buf.get_mut(HEADROOM..HEADROOM + p.len) {
                if let Some((css, cso)) = legacy_ic {
                    offload::insert_checksum(frame, css, cso, 0, 0, false);
                } else if p.mode == Mode::Data {
                    offload::apply_checksums(frame, &p.ctx, p.popts, 0);
                }
                self.tx_send(buf, p.len, vlan);
            }
        }
        self.tx.pkt = Packet::default();
    }

    /// Send the `len` bytes after [`HEADROOM`] in `buf`, with tag insertion and padding.
    pub(super) fn tx_send(&mut self, buf: &mut [u8], len: usize, vlan: Option<u16>) {
        let mut start = HEADROOM;
        let end = HEADROOM + len;
        if let Some(tci) = vlan {
            let tpid = self.reg(VET) as u16;
            if let Some(s) = offload::insert_vlan(buf, start, end, tpid, tci) {
                start = s;
            }
        }
        let mut end = end;
        if self.reg(TCTL) & TCTL_PSP != 0 && end - start < MIN_FRAME {
            if let Some(pad) = buf.get_mut(end..start + MIN_FRAME) {
                pad.fill(0);
                end = start + MIN_FRAME;
            }
        }
        if end - start > MAX_FRAME {
            return self.tx_fail("frame with VLAN tag larger than the largest frame");
        }
        let Some(frame) = buf.get(start..end) else {
            return;
        };
        if self.reg(TCTL) & TCTL_PSP == 0 {
            self.lint_tx_frame(frame.len());
        }
        if self.looping() {
            // PHY or MAC loopback: the frame goes to the card's own receiver and nothing
            // reaches the wire (Linux's loopback self-test sends 640 of them).
            self.metrics.tx_looped += 1;
            self.stats.tx_good(frame.len(), DestKind::of(frame));
            self.receive_looped(frame);
            return;
        }
        if !self.link_up() {
            // No link, nothing on the wire: the descriptors complete as usual (a driver
            // that transmits blind, as DPDK's txonly does, must not hang), the frame is
            // discarded and counted.
            self.metrics.tx_no_link += 1;
            if self.tx.log.note().is_some() {
                log::info!(
                    "link down: transmitted frame discarded ({} so far)",
                    self.metrics.tx_no_link
                );
            }
            return;
        }
        match self.backend.send(frame) {
            Ok(true) => {
                self.metrics.tx_frames += 1;
                self.metrics.tx_bytes += frame.len() as u64;
            }
            Ok(false) => self.metrics.tx_backend_drops += 1,
            Err(e) => {
                self.metrics.tx_backend_drops += 1;
                self.metrics.backend_errors += 1;
                if self.tx.log.note().is_some() {
                    log::warn!("backend {}: send failed: {e}", self.backend.name());
                }
            }
        }
        // The device transmitted it; what the backend did with it is the wire's business.
        self.stats.tx_good(frame.len(), DestKind::of(frame));
    }
}
