//! Loopback: every frame the guest sends comes straight back to it.

use std::collections::VecDeque;
use std::io;

use super::PacketBackend;

/// Frames queued at most before new ones are dropped (and counted).
pub const DEFAULT_LOOPBACK_DEPTH: usize = 1024;

/// A queue from the device's TX side back to its RX side.
///
/// The queue is bounded: when the guest transmits faster than it receives, the excess is
/// dropped, counted in [`Loopback::dropped`] and logged once per burst.
#[derive(Debug)]
pub struct Loopback {
    queue: VecDeque<Vec<u8>>,
    spare: Vec<Vec<u8>>,
    depth: usize,
    dropped: u64,
}

impl Loopback {
    /// A loopback holding up to [`DEFAULT_LOOPBACK_DEPTH`] frames.
    pub fn new() -> Self {
        Self::with_depth(DEFAULT_LOOPBACK_DEPTH)
    }

    /// A loopback holding up to `depth` frames (at least 1).
    pub fn with_depth(depth: usize) -> Self {
        Self {
            queue: VecDeque::new(),
            spare: Vec::new(),
            depth: depth.max(1),
            dropped: 0,
        }
    }

    /// Frames dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Frames waiting to be received.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }
}

impl Default for Loopback {
    fn default() -> Self {
        Self::new()
    }
}

impl PacketBackend for Loopback {
    fn name(&self) -> String {
        "loopback".into()
    }

    fn send(&mut self, frame: &[u8]) -> io::Result<bool> {
        if self.queue.len() >= self.depth {
            self.dropped += 1;
            if crate::log_limit::worth_logging(self.dropped) {
                log::warn!(
                    "loopback: queue full ({} frames), dropped {} so far",
                    self.depth,
                    self.dropped
                );
            }
            return Ok(false);
        }
        // Reuse buffers so the steady state allocates nothing.
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(frame);
        self.queue.push_back(buf);
        Ok(true)
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let Some(frame) = self.queue.pop_front() else {
            return Ok(None);
        };
        let n = frame.len().min(buf.len());
        buf[..n].copy_from_slice(&frame[..n]);
        if self.spare.len() < 64 {
            self.spare.push(frame);
        }
        Ok(Some(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_come_back_in_order_and_overflow_is_counted() {
        let mut lo = Loopback::with_depth(2);
        assert!(lo.send(&[1, 2, 3]).unwrap());
        assert!(lo.send(&[4]).unwrap());
        assert!(!lo.send(&[5]).unwrap());
        assert_eq!(lo.dropped(), 1);
        let mut buf = [0u8; 16];
        assert_eq!(lo.recv(&mut buf).unwrap(), Some(3));
        assert_eq!(&buf[..3], &[1, 2, 3]);
        assert_eq!(lo.recv(&mut buf).unwrap(), Some(1));
        assert_eq!(buf[0], 4);
        assert_eq!(lo.recv(&mut buf).unwrap(), None);
    }
}
