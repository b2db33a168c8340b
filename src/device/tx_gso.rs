//! Transmit, segmentation handed on: when the backend segments itself (a tap with a
//! virtio-net header, [`PacketBackend::accepts_gso`]), a TCP packet the guest gives for
//! TSO is gathered whole (up to 64 KiB) and sent in one piece with what the backend needs
//! to cut it ([`Gso`]), instead of being cut here into up to 44 frames, each with its own
//! checksums and its own write.
//!
//! The packet is finished as the first segment of a segmentation that had no others:
//! IPv4 total length (or IPv6 payload length) for the whole packet, the IP header
//! checksum if the guest asked for it, and the TCP checksum field holding the
//! pseudo-header sum with the packet's TCP length added to the driver's seed (the form
//! a partial checksum takes in Linux). The statistics registers count the segments the
//! wire will carry, as when the device segments. Packets that do not fit this path
//! (UDP, a VLAN tag to insert, no TCP checksum requested, over 64 KiB) take the
//! device's own segmentation (`tx.rs`).
//!
//! [`PacketBackend::accepts_gso`]: crate::PacketBackend::accepts_gso

use super::offload::{self, popts, Context, Segment};
use super::stats::DestKind;
use super::tx::HEADROOM;
use super::E1000;
use crate::backend::Gso;
use crate::wire::{checksum, MAX_FRAME};

/// Largest packet handed on whole: the largest IP datagram plus an Ethernet header.
pub(super) const GSO_MAX: usize = 65535 + 14;

/// The header fields a partial checksum needs, from the context.
fn gso_of(ctx: &Context) -> Option<Gso> {
    Some(Gso {
        ipv6: !ctx.ipv4,
        segment: true,
        hdr_len: u16::from(ctx.hdrlen),
        mss: ctx.mss,
        csum_start: u16::from(ctx.tucss),
        csum_offset: u16::from(ctx.tucso.checked_sub(ctx.tucss)?),
    })
}

impl E1000 {
    /// Whether a TSO packet starting with this context goes to the backend whole.
    pub(super) fn gso_eligible(&self, ctx: &Context, popts_bits: u8, vlan: Option<u16>) -> bool {
        self.gso_refusal(ctx, popts_bits, vlan).is_none()
    }

    /// Why a TSO packet starting with this context is segmented by the device rather
    /// than handed to the backend whole (`None`: it is handed whole).
    pub(super) fn gso_refusal(
        &self,
        ctx: &Context,
        popts_bits: u8,
        vlan: Option<u16>,
    ) -> Option<&'static str> {
        let hdrlen = usize::from(ctx.hdrlen);
        let ip_hdr = if ctx.ipv4 { 0 } else { 40 };
        let ip_len = (hdrlen + ctx.paylen as usize).checked_sub(usize::from(ctx.ipcss) + ip_hdr);
        if !self.backend.accepts_gso() {
            Some("the backend takes wire frames only")
        } else if !ctx.tcp {
            Some("not TCP")
        } else if vlan.is_some() {
            Some("a VLAN tag to insert")
        } else if popts_bits & popts::TXSM == 0 || ctx.tucso <= ctx.tucss {
            Some("no TCP checksum asked for")
        } else if ctx.tso_problem(popts_bits).is_some() {
            Some("a malformed context")
        } else if hdrlen + ctx.paylen as usize > GSO_MAX || ip_len.is_none_or(|l| l > 65535) {
            Some("larger than one IP datagram")
        } else {
            None
        }
    }

    /// Copy `len` bytes at `addr` onto the end of a packet gathered whole.
    pub(super) fn gso_append(&mut self, addr: u64, len: usize) {
        let p = self.tx.pkt;
        let limit = usize::from(p.ctx.hdrlen) + p.ctx.paylen as usize;
        let end = p.len.saturating_add(len);
        if end > limit {
            return self.tx_fail("TSO data beyond HDRLEN + PAYLEN");
        }
        let mut gso_buf = std::mem::take(&mut self.tx.gso_buf);
        if gso_buf.len() < GSO_MAX {
            gso_buf.resize(GSO_MAX, 0);
        }
        let read = match gso_buf.get_mut(p.len..end) {
            Some(dst) => self.dma_read(addr, dst).is_ok(),
            None => false,
        };
        self.tx.gso_buf = gso_buf;
        if read {
            self.tx.pkt.len = end;
        } else {
            self.tx_fail(super::tx::BUFFER_OUTSIDE);
        }
    }

    /// EOP of a packet gathered whole: finish it and hand it on, or (one segment or
    /// less) send it as a plain frame. Returns false if the packet failed.
    pub(super) fn gso_finish(&mut self, buf: &mut [u8]) -> bool {
        let p = self.tx.pkt;
        let hdrlen = usize::from(p.ctx.hdrlen);
        if p.len < hdrlen {
            self.tx_fail("TSO packet shorter than HDRLEN");
            return false;
        }
        let mut gso_buf = std::mem::take(&mut self.tx.gso_buf);
        let ok = match gso_buf.get_mut(..p.len) {
            Some(gathered) if p.len <= hdrlen + usize::from(p.ctx.mss) => {
                self.gso_single(gathered, buf)
            }
            Some(gathered) => self.gso_whole(gathered),
            None => {
                self.tx_fail("TSO packet larger than the buffer");
                false
            }
        };
        self.tx.gso_buf = gso_buf;
        ok
    }

    /// A packet of one segment: finished here and sent as a plain frame.
    fn gso_single(&mut self, gathered: &[u8], buf: &mut [u8]) -> bool {
        let p = self.tx.pkt;
        let (Some(src), Some(dst)) = (
            gathered.get(..p.len),
            buf.get_mut(HEADROOM..HEADROOM + p.len),
        ) else {
            self.tx_fail("TSO segment larger than the frame buffer");
            return false;
        };
        dst.copy_from_slice(src);
        let last = Segment {
            index: 0,
            offset: 0,
            last: true,
        };
        match offload::fix_segment_headers(dst, &p.ctx, last) {
            Some(l4_len) => offload::apply_checksums(dst, &p.ctx, p.popts, l4_len),
            None => {
                self.tx_fail("TSO header fix-up outside the segment");
                return false;
            }
        }
        self.tx_send(buf, p.len, None);
        true
    }

    /// A packet of several segments, handed on whole.
    fn gso_whole(&mut self, frame: &mut [u8]) -> bool {
        let p = self.tx.pkt;
        let ctx = p.ctx;
        let last = Segment {
            index: 0,
            offset: 0,
            last: true,
        };
        let (Some(l4_len), Some(gso)) = (
            offload::fix_segment_headers(frame, &ctx, last),
            gso_of(&ctx),
        ) else {
            self.tx_fail("TSO header fix-up outside the packet");
            return false;
        };
        if p.popts & popts::IXSM != 0 {
            offload::insert_checksum(
                frame,
                usize::from(ctx.ipcss),
                usize::from(ctx.ipcso),
                usize::from(ctx.ipcse),
                0,
                false,
            );
        }
        // The driver seeded the pseudo-header without the length; a partial checksum
        // carries it with the TCP length of the whole packet.
        let at = usize::from(ctx.tucso);
        let Some(seed) = frame
            .get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
        else {
            self.tx_fail("TSO checksum offset outside the packet");
            return false;
        };
        let partial = checksum::fold(u64::from(seed) + l4_len);
        frame[at..at + 2].copy_from_slice(&partial.to_be_bytes());
        self.tx_send_gso(frame, &gso);
        true
    }

    /// Hand a whole packet to the backend, counting the segments the wire will carry.
    fn tx_send_gso(&mut self, frame: &[u8], gso: &Gso) {
        let hdrlen = usize::from(gso.hdr_len);
        let mss = usize::from(gso.mss).max(1);
        let payload = frame.len().saturating_sub(hdrlen);
        let segments = payload.div_ceil(mss).max(1) as u64;
        if !self.link_up() {
            self.metrics.tx_no_link += segments;
            if self.tx.log.note().is_some() {
                log::info!(
                    "link down: transmitted frames discarded ({} so far)",
                    self.metrics.tx_no_link
                );
            }
            return;
        }
        match self.backend.send_gso(frame, gso) {
            Ok(true) => {
                self.metrics.tx_frames += segments;
                self.metrics.tx_bytes += (payload + hdrlen * segments as usize) as u64;
            }
            Ok(false) => self.metrics.tx_backend_drops += segments,
            Err(e) => {
                self.metrics.tx_backend_drops += segments;
                self.metrics.backend_errors += 1;
                if self.tx.log.note().is_some() {
                    log::warn!("backend {}: send failed: {e}", self.backend.name());
                }
            }
        }
        // As with the device's own segmentation: every segment counts on the wire.
        let kind = DestKind::of(frame);
        let mut left = payload;
        loop {
            let seg = left.min(mss);
            self.stats.tx_good((hdrlen + seg).min(MAX_FRAME), kind);
            left -= seg;
            if left == 0 {
                break;
            }
        }
    }
}
