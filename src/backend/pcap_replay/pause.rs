//! Pausing a replay at run time, and what it tells a control client: the state a
//! [`ReplayHandle`] shares with its replay.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::super::BackendCounter;
use super::PcapReplay;

/// Where a pcap replay is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayStatus {
    /// Paused by a control request.
    pub paused: bool,
    /// Every pass played.
    pub finished: bool,
    /// Frames offered to the device so far.
    pub delivered: u64,
    /// Passes over the file completed.
    pub passes: u64,
}

/// What a replay shares with its handles: the replay (under the device lock) reads the
/// pause with one atomic load per call and publishes where it is; a handle (a control
/// client, without the device lock) pauses and resumes.
#[derive(Debug)]
pub(super) struct Shared {
    path: PathBuf,
    /// Paused: `recv` offers nothing and `next_rx_deadline` asks for no wake-up.
    pub(super) paused: AtomicBool,
    /// Since when (the handles' side of `paused`).
    paused_since: Mutex<Option<Instant>>,
    /// Nanoseconds spent in pauses that ended since the replay last looked: its schedule
    /// moves by them, so the gaps between frames stay as they were.
    pub(super) shift_ns: AtomicU64,
    pub(super) delivered: AtomicU64,
    pub(super) passes: AtomicU64,
    pub(super) finished: AtomicBool,
}

impl Shared {
    pub(super) fn new(path: PathBuf) -> Self {
        Self {
            path,
            paused: AtomicBool::new(false),
            paused_since: Mutex::new(None),
            shift_ns: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            passes: AtomicU64::new(0),
            finished: AtomicBool::new(false),
        }
    }
}

/// Steering a [`PcapReplay`] from another thread (a control client): pause, resume and
/// status without the device lock.
#[derive(Clone, Debug)]
pub struct ReplayHandle {
    shared: Arc<Shared>,
}

impl ReplayHandle {
    /// Stop offering frames; the position in the file is kept. Returns whether it was
    /// running.
    pub fn pause(&self) -> bool {
        let s = &self.shared;
        let mut since = s.paused_since.lock().unwrap_or_else(|p| p.into_inner());
        if since.is_some() {
            return false;
        }
        *since = Some(Instant::now());
        s.paused.store(true, Ordering::Release);
        log::info!(
            "pcap replay {}: paused after {} frames",
            s.path.display(),
            s.delivered.load(Ordering::Acquire)
        );
        true
    }

    /// Go on from where [`pause`](Self::pause) left off. With `timing=original` or a
    /// rate, the schedule moves by the time spent paused, so the gaps between frames
    /// stay as they were. Returns whether it was paused. The caller wakes whoever waits
    /// on the replay's deadline (a paused replay has none).
    pub fn resume(&self) -> bool {
        let s = &self.shared;
        let mut since = s.paused_since.lock().unwrap_or_else(|p| p.into_inner());
        let Some(at) = since.take() else {
            return false;
        };
        let paused_for = at.elapsed();
        let ns = u64::try_from(paused_for.as_nanos()).unwrap_or(u64::MAX);
        s.shift_ns.fetch_add(ns, Ordering::AcqRel);
        s.paused.store(false, Ordering::Release);
        log::info!(
            "pcap replay {}: resumed after {:.1} s",
            s.path.display(),
            paused_for.as_secs_f64()
        );
        true
    }

    /// Whether paused.
    pub fn paused(&self) -> bool {
        self.shared.paused.load(Ordering::Acquire)
    }

    /// Where the replay is.
    pub fn status(&self) -> ReplayStatus {
        let s = &self.shared;
        ReplayStatus {
            paused: self.paused(),
            finished: s.finished.load(Ordering::Acquire),
            delivered: s.delivered.load(Ordering::Acquire),
            passes: s.passes.load(Ordering::Acquire),
        }
    }
}

impl PcapReplay {
    /// A handle that pauses, resumes and watches this replay from another thread.
    pub fn handle(&self) -> ReplayHandle {
        ReplayHandle {
            shared: self.shared.clone(),
        }
    }

    /// [`ReplayHandle::pause`].
    pub fn pause(&mut self) -> bool {
        self.handle().pause()
    }

    /// [`ReplayHandle::resume`].
    pub fn resume(&mut self) -> bool {
        self.handle().resume()
    }

    /// Whether paused.
    pub fn paused(&self) -> bool {
        self.shared.paused.load(Ordering::Acquire)
    }

    /// Where the replay is.
    pub fn status(&self) -> ReplayStatus {
        self.handle().status()
    }

    /// Move the schedule by the pauses that ended since the last call (none: one
    /// atomic load).
    pub(super) fn take_shift(&mut self) {
        if self.shared.shift_ns.load(Ordering::Acquire) == 0 {
            return;
        }
        let ns = self.shared.shift_ns.swap(0, Ordering::AcqRel);
        if let Some((at, _, _)) = self.anchor.as_mut() {
            *at = at.checked_add(Duration::from_nanos(ns)).unwrap_or(*at);
        }
    }

    /// Let the handles see where the replay is.
    pub(super) fn publish(&self) {
        let s = &self.shared;
        s.delivered
            .store(self.counters.delivered, Ordering::Release);
        s.passes.store(self.counters.passes, Ordering::Release);
        s.finished.store(self.finished, Ordering::Release);
    }

    /// The replay's counters, for `stats`.
    pub(super) fn counter_list(&self) -> Vec<BackendCounter> {
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
        all.into_iter()
            .map(|(n, h, v)| BackendCounter::new("replay", n, h, v))
            .collect()
    }
}
