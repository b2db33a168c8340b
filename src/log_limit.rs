//! Rate-limited logging of repeated events: a hostile guest or a broken peer can cause
//! the same problem millions of times a second, and each must be counted, but the log
//! must stay readable.

/// Counts one kind of event and says which occurrences to log: the first eight, then
/// every power of two (so the log still shows that it goes on, and how often).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogLimit {
    seen: u64,
}

/// Whether the `n`th occurrence (counting from 1) of an event is logged: the first eight,
/// then every power of two. For counters that already exist (a backend's drop counts).
pub fn worth_logging(n: u64) -> bool {
    n <= 8 || n.is_power_of_two()
}

impl LogLimit {
    /// Count one more occurrence; `Some(n)` (the count so far) if this one is logged.
    pub fn note(&mut self) -> Option<u64> {
        self.seen = self.seen.saturating_add(1);
        let n = self.seen;
        worth_logging(n).then_some(n)
    }

    /// Occurrences so far.
    pub fn count(&self) -> u64 {
        self.seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_eight_then_powers_of_two() {
        let mut l = LogLimit::default();
        let logged: Vec<u64> = (0..1000).filter_map(|_| l.note()).collect();
        assert_eq!(logged, [1, 2, 3, 4, 5, 6, 7, 8, 16, 32, 64, 128, 256, 512]);
        assert_eq!(l.count(), 1000);
    }
}
