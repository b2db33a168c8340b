//! Impairment: a wrapper (smoltcp's `FaultInjector`, Linux's netem) that makes any
//! backend a worse wire, each direction on its own: loss, duplication and corruption (in
//! percent), delay with jitter, reordering and a rate limit. Decisions come from a
//! seeded pseudo-random generator, so a run with the same `seed` and the same frames
//! loses, duplicates and corrupts the same frames. Every effect is counted.
//!
//! "rx" is toward the guest (frames the inner backend delivers), "tx" from the guest
//! (frames the device sends), as in the device's own names.
//!
//! Frames that are held (delay, rate, reordering) leave when the wrapper is next called
//! after they are due; [`next_rx_deadline`](PacketBackend::next_rx_deadline) tells the
//! event loop when that is. The event loop only polls a backend while the guest's receive
//! ring has room, so a held transmitted frame can wait longer while the guest receives
//! nothing (it also leaves on the guest's next transmission).

use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::RxOutcome;
use super::{BackendCounter, PacketBackend};

pub use super::params::impair::*;

/// Frames held at most per direction (netem's default limit); beyond it frames are
/// dropped and counted.
pub const QUEUE_LIMIT: usize = 1000;
/// A frame held back for reordering leaves after the next frame, or after this long.
const REORDER_HOLD: Duration = Duration::from_millis(10);

/// SplitMix64: a tiny, well-studied generator (Steele, Lea, Flood 2014), plenty for
/// deciding which frames to impair, and the same on every platform.
#[derive(Clone, Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// True with probability `pct` percent. Always draws, so that later decisions do
    /// not depend on which impairments are enabled.
    fn chance(&mut self, pct: f64) -> bool {
        self.unit() * 100.0 < pct
    }
}

/// A frame waiting to leave.
#[derive(Debug)]
struct Held {
    due: Instant,
    seq: u64,
    data: Vec<u8>,
    /// The first copy of a frame from the inner backend (its verdict is passed on).
    original: bool,
}

impl PartialEq for Held {
    fn eq(&self, o: &Self) -> bool {
        (self.due, self.seq) == (o.due, o.seq)
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Held {
    /// Reversed: `BinaryHeap` is a max-heap and the earliest frame must come out first.
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (o.due, o.seq).cmp(&(self.due, self.seq))
    }
}

/// One direction's pipeline.
#[derive(Debug)]
struct Lane {
    p: ImpairParams,
    rng: SplitMix64,
    queue: BinaryHeap<Held>,
    /// A frame held for reordering, and when it leaves anyway.
    reorder: Option<(Held, Instant)>,
    seq: u64,
    /// When the rate-limited link is free again.
    link_free: Option<Instant>,
    c: DirCounters,
}

impl Lane {
    fn new(p: ImpairParams, seed: u64) -> Self {
        Self {
            p,
            rng: SplitMix64(seed),
            queue: BinaryHeap::new(),
            reorder: None,
            seq: 0,
            link_free: None,
            c: DirCounters::default(),
        }
    }

    fn held(&self) -> usize {
        self.queue.len() + usize::from(self.reorder.is_some())
    }

    /// A frame enters at `now`.
    fn push(&mut self, frame: &[u8], now: Instant) {
        self.c.frames_in += 1;
        // Fixed draw order: the same frames get the same fate whatever else is enabled.
        let lose = self.rng.chance(self.p.loss);
        let corrupt = self.rng.chance(self.p.corrupt);
        let bit = self.rng.next_u64();
        let dup = self.rng.chance(self.p.dup);
        let reorder = self.rng.chance(self.p.reorder);
        let spread = self.rng.unit() * 2.0 - 1.0;
        if lose {
            self.c.lost += 1;
            return;
        }
        let mut data = frame.to_vec();
        if corrupt && !data.is_empty() {
            let nbits = (data.len() as u64).saturating_mul(8);
            let at = bit % nbits;
            if let Some(b) = usize::try_from(at / 8).ok().and_then(|i| data.get_mut(i)) {
                *b ^= 1 << (at % 8);
                self.c.corrupted += 1;
            }
        }
        let copies = if dup { 2 } else { 1 };
        if dup {
            self.c.duplicated += 1;
        }
        let jitter = self.p.jitter.as_secs_f64() * spread;
        let delay = (self.p.delay.as_secs_f64() + jitter).max(0.0);
        if delay > 0.0 {
            self.c.delayed += 1;
        }
        let mut due = now + Duration::from_secs_f64(delay);
        for copy in 0..copies {
            if self.held() >= QUEUE_LIMIT {
                self.c.queue_full += 1;
                continue;
            }
            if let Some(rate) = self.p.rate {
                let start = self.link_free.map_or(due, |f| f.max(due));
                if start > due {
                    self.c.rate_limited += 1;
                }
                let bits = (data.len() as f64 + 24.0) * 8.0; // preamble, FCS, gap
                let send_time = Duration::from_secs_f64(bits / rate as f64);
                self.link_free = Some(start + send_time);
                due = start + send_time;
            }
            self.seq += 1;
            let held = Held {
                due,
                seq: self.seq,
                data: if copy + 1 == copies {
                    std::mem::take(&mut data)
                } else {
                    data.clone()
                },
                original: copy == 0,
            };
            if copy == 0 && reorder && self.reorder.is_none() {
                self.c.reordered += 1;
                let until = held.due + REORDER_HOLD;
                self.reorder = Some((held, until));
                continue;
            }
            // A frame held for reordering leaves right after this one.
            let after = self.reorder.take().map(|(mut h, _)| {
                h.due = held.due;
                h.seq = self.seq + 1;
                h
            });
            self.queue.push(held);
            if let Some(h) = after {
                self.seq += 1;
                self.queue.push(h);
            }
        }
    }

    /// The next frame due at `now`, if any.
    fn pop_due(&mut self, now: Instant) -> Option<Held> {
        if self
            .reorder
            .as_ref()
            .is_some_and(|(_, until)| *until <= now)
        {
            if let Some((h, _)) = self.reorder.take() {
                self.queue.push(h);
            }
        }
        if self.queue.peek().is_some_and(|h| h.due <= now) {
            let h = self.queue.pop()?;
            self.c.frames_out += 1;
            return Some(h);
        }
        None
    }

    fn next_due(&self) -> Option<Instant> {
        let q = self.queue.peek().map(|h| h.due);
        let r = self.reorder.as_ref().map(|(_, until)| *until);
        match (q, r) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Mixed into the seed of the receive lane's generator ("rxrx").
const RX_SALT: u64 = 0x7278_7278;
/// Mixed into the seed of the transmit lane's generator ("txtx").
const TX_SALT: u64 = 0x7478_7478;

/// `key=value,...` of a spec, for logs.
fn describe(spec: &ImpairSpec) -> String {
    spec.items()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Wraps a backend and impairs the frames crossing it.
pub struct Impair<B: PacketBackend> {
    inner: B,
    shared: Arc<Shared>,
    /// For each frame handed to the device, in order: whether its verdict goes to the
    /// inner backend (only the first copy of one of its frames).
    verdicts_owed: VecDeque<bool>,
    scratch: Vec<u8>,
}

/// The impairments in force and both directions' pipelines, shared by the wrapper (on
/// the frame path, under the device lock) and its [`ImpairHandle`]s (a control client,
/// without the device lock). Lock order: device, then this.
#[derive(Debug)]
struct Shared(Mutex<Lanes>);

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Lanes> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[derive(Debug)]
struct Lanes {
    /// The wrapped backend's name, for logs.
    label: String,
    spec: ImpairSpec,
    rx: Lane,
    tx: Lane,
}

impl Lanes {
    fn counters(&self) -> ImpairCounters {
        ImpairCounters {
            rx: self.rx.c,
            tx: self.tx.c,
        }
    }

    fn set_spec(&mut self, spec: ImpairSpec) {
        if spec.seed != self.spec.seed {
            self.rx.rng = SplitMix64(spec.seed ^ RX_SALT);
            self.tx.rng = SplitMix64(spec.seed ^ TX_SALT);
        }
        self.rx.p = spec.rx;
        self.tx.p = spec.tx;
        self.spec = spec;
        log::info!("impair {}: now {}", self.label, describe(&spec));
    }

    /// Send the transmitted frames that are due.
    fn release_tx(&mut self, inner: &mut impl PacketBackend, now: Instant) -> io::Result<()> {
        while let Some(h) = self.tx.pop_due(now) {
            inner.send(&h.data)?;
        }
        Ok(())
    }

    /// Take what the inner backend has (bounded) into the receive lane.
    fn pull_rx(
        &mut self,
        inner: &mut impl PacketBackend,
        scratch: &mut [u8],
        now: Instant,
    ) -> io::Result<()> {
        for _ in 0..64 {
            if self.rx.held() >= QUEUE_LIMIT {
                // Leave the rest in the inner backend until frames leave.
                break;
            }
            match inner.recv(scratch)? {
                Some(n) => {
                    let frame = scratch.get(..n).unwrap_or_default();
                    let before = self.rx.c.lost;
                    self.rx.push(frame, now);
                    if self.rx.c.lost != before {
                        // Lost before the device saw it: tell the inner backend.
                        inner.rx_outcome(RxOutcome::Dropped);
                    }
                }
                None => break,
            }
        }
        Ok(())
    }
}

/// Steering an [`Impair`] from another thread (a control client): read and change the
/// impairments without the device lock.
#[derive(Clone, Debug)]
pub struct ImpairHandle {
    shared: Arc<Shared>,
}

impl ImpairHandle {
    /// The impairments in force, and what they did so far.
    pub fn get(&self) -> (ImpairSpec, ImpairCounters) {
        let l = self.shared.lock();
        (l.spec, l.counters())
    }

    /// Change the impairments with `f`, which sees those in force; read, change and
    /// write back under one lock, so two clients cannot interleave. Frames already held
    /// keep their fate; a new seed restarts the generators. Returns the impairments
    /// now in force and the counters, or `f`'s error (nothing changed).
    pub fn update<E>(
        &self,
        f: impl FnOnce(&mut ImpairSpec) -> Result<(), E>,
    ) -> Result<(ImpairSpec, ImpairCounters), E> {
        let mut l = self.shared.lock();
        let mut spec = l.spec;
        f(&mut spec)?;
        l.set_spec(spec);
        Ok((l.spec, l.counters()))
    }
}

impl<B: PacketBackend> fmt::Debug for Impair<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = self.shared.lock();
        f.debug_struct("Impair")
            .field("inner", &self.inner.name())
            .field("spec", &l.spec)
            .field("counters", &l.counters())
            .finish_non_exhaustive()
    }
}

impl<B: PacketBackend> Impair<B> {
    /// Wrap `inner`.
    pub fn new(inner: B, spec: ImpairSpec) -> Self {
        let label = inner.name();
        log::info!("impair {label}: {}", describe(&spec));
        let lanes = Lanes {
            label,
            rx: Lane::new(spec.rx, spec.seed ^ RX_SALT),
            tx: Lane::new(spec.tx, spec.seed ^ TX_SALT),
            spec,
        };
        Self {
            inner,
            shared: Arc::new(Shared(Mutex::new(lanes))),
            verdicts_owed: VecDeque::new(),
            scratch: vec![0; super::MAX_FRAME],
        }
    }

    /// A handle that reads and changes the impairments from another thread.
    pub fn handle(&self) -> ImpairHandle {
        ImpairHandle {
            shared: self.shared.clone(),
        }
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// The wrapped backend, mutably.
    pub fn inner_mut(&mut self) -> &mut B {
        &mut self.inner
    }

    /// Counters so far.
    pub fn counters(&self) -> ImpairCounters {
        self.shared.lock().counters()
    }

    /// The impairments in force.
    pub fn spec(&self) -> ImpairSpec {
        self.shared.lock().spec
    }

    /// Impair the frames from now on as `spec` says (a control client's `impair set`).
    /// Frames already held keep their fate; a new seed restarts the generators.
    pub fn set_spec(&mut self, spec: ImpairSpec) {
        self.shared.lock().set_spec(spec);
    }
}

impl<B: PacketBackend> PacketBackend for Impair<B> {
    fn name(&self) -> String {
        format!("{} (impaired)", self.inner.name())
    }

    fn send(&mut self, frame: &[u8]) -> io::Result<bool> {
        let now = Instant::now();
        let mut l = self.shared.lock();
        let full = l.tx.c.queue_full;
        l.tx.push(frame, now);
        l.release_tx(&mut self.inner, now)?;
        Ok(l.tx.c.queue_full == full)
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let now = Instant::now();
        let mut l = self.shared.lock();
        l.release_tx(&mut self.inner, now)?;
        l.pull_rx(&mut self.inner, &mut self.scratch, now)?;
        let Some(h) = l.rx.pop_due(now) else {
            return Ok(None);
        };
        drop(l);
        let n = h.data.len().min(buf.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), h.data.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.verdicts_owed.push_back(h.original);
        Ok(Some(n))
    }

    fn rx_fd(&self) -> Option<RawFd> {
        // With the queue full, `recv` leaves the inner backend's frames where they are:
        // its fd stays readable and is not worth watching until frames leave
        // (`next_rx_deadline`).
        if self.shared.lock().rx.held() >= QUEUE_LIMIT {
            return None;
        }
        self.inner.rx_fd()
    }

    fn next_rx_deadline(&self) -> Option<Instant> {
        let l = self.shared.lock();
        [
            self.inner.next_rx_deadline(),
            l.rx.next_due(),
            l.tx.next_due(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn rx_outcome(&mut self, outcome: RxOutcome) {
        if self.verdicts_owed.pop_front() == Some(true) {
            self.inner.rx_outcome(outcome);
        }
    }

    fn carrier(&mut self) -> super::Carrier {
        self.inner.carrier()
    }

    fn carrier_note(&self) -> Option<String> {
        self.inner.carrier_note()
    }

    fn begin_burst(&mut self) {
        self.inner.begin_burst()
    }

    fn end_burst(&mut self) -> io::Result<()> {
        self.inner.end_burst()
    }

    fn flush(&mut self) -> io::Result<()> {
        let c = self.counters();
        log::info!("impair {}: rx {}", self.inner.name(), c.rx);
        log::info!("impair {}: tx {}", self.inner.name(), c.tx);
        self.inner.flush()
    }

    fn backend_counters(&self) -> Vec<BackendCounter> {
        let c = self.counters();
        let mut all = Vec::new();
        for (dir, c) in [("rx", &c.rx), ("tx", &c.tx)] {
            all.extend(dir_counters(dir, c));
        }
        all.extend(self.inner.backend_counters());
        all
    }
}

/// One direction's counters, named `impair_<dir>_<counter>`.
fn dir_counters(dir: &str, c: &DirCounters) -> Vec<BackendCounter> {
    let layer = format!("impair_{dir}");
    let all: [(&str, &'static str, u64); 6] = [
        (
            "frames_in",
            "Frames that entered the impairment",
            c.frames_in,
        ),
        (
            "frames_out",
            "Frames that left the impairment (duplicates included)",
            c.frames_out,
        ),
        ("lost", "Frames lost on purpose", c.lost),
        ("duplicated", "Extra copies made", c.duplicated),
        ("corrupted", "Frames with a bit flipped", c.corrupted),
        (
            "queue_full",
            "Frames dropped because the impairment queue was full",
            c.queue_full,
        ),
    ];
    all.into_iter()
        .map(|(name, help, v)| BackendCounter::new(&layer, name, help, v))
        .collect()
}
