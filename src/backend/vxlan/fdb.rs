//! The forwarding table of a multicast (flood-and-learn) VXLAN segment: which remote VTEP
//! each inner source MAC was last seen behind, so that unicast frames to it go there
//! instead of to the whole group.
//!
//! Bounded and aged as Linux's vxlan driver does it: an entry not refreshed for the
//! ageing time (300 s by default) is forgotten, and when the table is full a new MAC is
//! not learned (its frames are still delivered, and frames to it are flooded to the
//! group), so a flood of made-up source MACs can neither grow memory nor push out the
//! entries in use.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How long an entry lives without being refreshed (Linux's default `ageing`).
pub const DEFAULT_AGEING: Duration = Duration::from_secs(300);

/// Most entries held.
pub const DEFAULT_MAX_ENTRIES: usize = 4096;

/// Expired entries are swept out of a full table at most this often.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// What [`Fdb::learn`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Learned {
    /// A MAC not known before.
    New,
    /// A known MAC, now behind another VTEP.
    Moved {
        /// Where it was.
        from: IpAddr,
    },
    /// A known MAC behind the same VTEP: its age starts again.
    Refreshed,
    /// Not learned: the source is not a unicast MAC (group bit set, or all zero).
    NotUnicast,
    /// Not learned: the table is full.
    Full,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    vtep: IpAddr,
    seen: Instant,
}

/// MAC address -> remote VTEP, bounded, aged.
#[derive(Debug)]
pub struct Fdb {
    entries: HashMap<[u8; 6], Entry>,
    max: usize,
    ageing: Duration,
    last_sweep: Option<Instant>,
    aged: u64,
}

impl Default for Fdb {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_ENTRIES, DEFAULT_AGEING)
    }
}

/// Whether `mac` may be learned: unicast (group bit clear) and not all zero.
fn learnable(mac: &[u8; 6]) -> bool {
    mac[0] & 1 == 0 && *mac != [0; 6]
}

impl Fdb {
    /// A table of at most `max` entries that live `ageing` without a refresh.
    pub fn new(max: usize, ageing: Duration) -> Self {
        Self {
            entries: HashMap::new(),
            max,
            ageing,
            last_sweep: None,
            aged: 0,
        }
    }

    /// `mac` was seen as the source of a frame from `vtep` at `now`.
    pub fn learn(&mut self, mac: [u8; 6], vtep: IpAddr, now: Instant) -> Learned {
        if !learnable(&mac) {
            return Learned::NotUnicast;
        }
        if let Some(e) = self.entries.get_mut(&mac) {
            let from = e.vtep;
            *e = Entry { vtep, seen: now };
            return if from == vtep {
                Learned::Refreshed
            } else {
                Learned::Moved { from }
            };
        }
        if self.entries.len() >= self.max {
            self.sweep(now);
            if self.entries.len() >= self.max {
                return Learned::Full;
            }
        }
        self.entries.insert(mac, Entry { vtep, seen: now });
        Learned::New
    }

    /// The VTEP behind `mac`, if learned and not aged out by `now`.
    pub fn lookup(&mut self, mac: &[u8; 6], now: Instant) -> Option<IpAddr> {
        let e = *self.entries.get(mac)?;
        if now.saturating_duration_since(e.seen) >= self.ageing {
            self.entries.remove(mac);
            self.aged += 1;
            return None;
        }
        Some(e.vtep)
    }

    /// Forget every entry older than the ageing time (at most once per second).
    fn sweep(&mut self, now: Instant) {
        if self
            .last_sweep
            .is_some_and(|t| now.saturating_duration_since(t) < SWEEP_EVERY)
        {
            return;
        }
        self.last_sweep = Some(now);
        let before = self.entries.len();
        let ageing = self.ageing;
        self.entries
            .retain(|_, e| now.saturating_duration_since(e.seen) < ageing);
        self.aged += (before - self.entries.len()) as u64;
    }

    /// Entries held (some may have aged without being looked up since).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries forgotten because they aged out, so far.
    pub fn aged(&self) -> u64 {
        self.aged
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const A: [u8; 6] = [0x02, 0, 0, 0, 0, 0xA];
    const B: [u8; 6] = [0x02, 0, 0, 0, 0, 0xB];

    fn ip(n: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))
    }

    #[test]
    fn learns_refreshes_and_moves() {
        let t0 = Instant::now();
        let mut f = Fdb::default();
        assert_eq!(f.lookup(&A, t0), None);
        assert_eq!(f.learn(A, ip(1), t0), Learned::New);
        assert_eq!(f.lookup(&A, t0), Some(ip(1)));
        assert_eq!(f.learn(A, ip(1), t0), Learned::Refreshed);
        assert_eq!(f.learn(A, ip(2), t0), Learned::Moved { from: ip(1) });
        assert_eq!(f.lookup(&A, t0), Some(ip(2)));
        assert_eq!(f.lookup(&B, t0), None);
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn group_and_zero_sources_are_not_learned() {
        let t0 = Instant::now();
        let mut f = Fdb::default();
        for mac in [
            [0xFF; 6],
            [0x01, 0, 0x5E, 0, 0, 1],
            [0x33, 0x33, 0, 0, 0, 1],
            [0; 6],
        ] {
            assert_eq!(f.learn(mac, ip(1), t0), Learned::NotUnicast, "{mac:?}");
        }
        assert!(f.is_empty());
    }

    #[test]
    fn entries_age_out_unless_refreshed() {
        let t0 = Instant::now();
        let age = Duration::from_secs(300);
        let mut f = Fdb::new(16, age);
        f.learn(A, ip(1), t0);
        f.learn(B, ip(2), t0);
        // B is refreshed half way, A is not.
        f.learn(B, ip(2), t0 + age / 2);
        assert_eq!(f.lookup(&A, t0 + age - Duration::from_secs(1)), Some(ip(1)));
        assert_eq!(f.lookup(&A, t0 + age), None, "aged out");
        assert_eq!(f.lookup(&B, t0 + age), Some(ip(2)), "refreshed");
        assert_eq!(f.aged(), 1);
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn a_full_table_refuses_new_macs_until_old_ones_age() {
        let t0 = Instant::now();
        let age = Duration::from_secs(10);
        let mut f = Fdb::new(3, age);
        for n in 0..3u8 {
            assert_eq!(f.learn([2, 0, 0, 0, 1, n], ip(n), t0), Learned::New);
        }
        // A flood of new MACs changes nothing.
        for n in 0..1000u16 {
            let [hi, lo] = n.to_be_bytes();
            assert_eq!(f.learn([2, 0, 0, 9, hi, lo], ip(9), t0), Learned::Full);
        }
        assert_eq!(f.len(), 3);
        assert_eq!(
            f.lookup(&[2, 0, 0, 0, 1, 1], t0),
            Some(ip(1)),
            "old entry kept"
        );
        // Known MACs still refresh and move when full.
        assert_eq!(
            f.learn([2, 0, 0, 0, 1, 2], ip(7), t0),
            Learned::Moved { from: ip(2) }
        );
        // Once they have aged, room is made for a newcomer.
        let later = t0 + age;
        assert_eq!(f.learn(A, ip(5), later), Learned::New);
        assert_eq!(f.len(), 1);
        assert_eq!(f.aged(), 3);
    }

    #[test]
    fn sweeps_of_a_full_table_are_rate_limited() {
        let t0 = Instant::now();
        let mut f = Fdb::new(1, Duration::from_millis(500));
        f.learn(A, ip(1), t0);
        // First attempt sweeps at t0 (nothing old): full.
        assert_eq!(f.learn(B, ip(2), t0), Learned::Full);
        // A is old by now, but the last sweep was less than a second ago.
        let t1 = t0 + Duration::from_millis(600);
        assert_eq!(f.learn(B, ip(2), t1), Learned::Full);
        let t2 = t0 + SWEEP_EVERY;
        assert_eq!(f.learn(B, ip(2), t2), Learned::New);
    }
}
