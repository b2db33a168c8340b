//! Pausing a replay at run time, and what it tells a control client.

use std::time::Instant;

use super::super::control::{BackendCounter, ReplayStatus};
use super::super::{BackendReply, BackendRequest};
use super::PcapReplay;

impl PcapReplay {
    /// Stop offering frames; the position in the file is kept. Returns whether it was
    /// running.
    pub fn pause(&mut self) -> bool {
        if self.paused_since.is_some() {
            return false;
        }
        self.paused_since = Some(Instant::now());
        log::info!(
            "pcap replay {}: paused after {} frames",
            self.path.display(),
            self.counters.delivered
        );
        true
    }

    /// Go on from where [`pause`](Self::pause) left off. With `timing=original` or a
    /// rate, the schedule moves by the time spent paused, so the gaps between frames
    /// stay as they were. Returns whether it was paused.
    pub fn resume(&mut self) -> bool {
        let Some(since) = self.paused_since.take() else {
            return false;
        };
        let paused_for = since.elapsed();
        if let Some((at, _, _)) = self.anchor.as_mut() {
            *at = at.checked_add(paused_for).unwrap_or(*at);
        }
        log::info!(
            "pcap replay {}: resumed after {:.1} s",
            self.path.display(),
            paused_for.as_secs_f64()
        );
        true
    }

    /// Whether paused.
    pub fn paused(&self) -> bool {
        self.paused_since.is_some()
    }

    /// Where the replay is.
    pub fn status(&self) -> ReplayStatus {
        ReplayStatus {
            paused: self.paused(),
            finished: self.finished,
            delivered: self.counters.delivered,
            passes: self.counters.passes,
        }
    }

    /// [`PacketBackend::control`](super::super::PacketBackend::control).
    pub(super) fn answer(&mut self, request: BackendRequest) -> Option<BackendReply> {
        match request {
            BackendRequest::ReplayPause => {
                self.pause();
            }
            BackendRequest::ReplayResume => {
                self.resume();
            }
            BackendRequest::ReplayStatus => {}
            BackendRequest::Counters => {
                let c = self.counters;
                let r = self.report();
                let all: [(&str, &'static str, u64); 6] = [
                    (
                        "delivered",
                        "Frames of the capture offered to the device",
                        c.delivered,
                    ),
                    (
                        "accepted",
                        "Replayed frames the guest's receive filter accepted",
                        r.accepted,
                    ),
                    (
                        "filtered",
                        "Replayed frames the guest's receive filter dropped",
                        r.filtered(),
                    ),
                    (
                        "skipped",
                        "Frames of the capture skipped (empty or too large)",
                        c.skipped,
                    ),
                    ("passes", "Passes over the capture completed", c.passes),
                    (
                        "sent_discarded",
                        "Frames the guest sent, discarded",
                        c.sent_discarded,
                    ),
                ];
                return Some(BackendReply::Counters(
                    all.into_iter()
                        .map(|(n, h, v)| BackendCounter::new("replay", n, h, v))
                        .collect(),
                ));
            }
            _ => return None,
        }
        Some(BackendReply::Replay(self.status()))
    }
}
