//! Remembers the handshake ephemeral keys a responder has seen, so that a
//! recorded first handshake message cannot be played to it again.
//!
//! Shared by all sessions of one service (the caller owns it and lends it to
//! [`crate::Session::admit_stranger`] / [`crate::Session::admit_contact`]).
//! Bounded in size and in age: once an entry has aged out or been evicted a
//! replay is no longer detected here, which is why receivers also drop
//! duplicate message ids (PROTOCOL.md §7.4).

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use crate::error::ProtocolError;

/// A bounded, time-windowed set of seen ephemeral keys.
#[derive(Debug)]
pub struct ReplayCache {
    capacity: usize,
    window: Duration,
    seen: HashSet<[u8; 32]>,
    order: VecDeque<(Instant, [u8; 32])>,
}

impl ReplayCache {
    /// Default capacity: 65,536 keys (about 4 MiB at most).
    pub const DEFAULT_CAPACITY: usize = 1 << 16;
    /// Default window: 24 hours.
    pub const DEFAULT_WINDOW: Duration = Duration::from_secs(24 * 3600);

    /// A cache of at most `capacity` keys, each kept for `window`.
    pub fn new(capacity: usize, window: Duration) -> Self {
        ReplayCache {
            capacity: capacity.max(1),
            window,
            seen: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    /// Records `key`; fails with [`ProtocolError::Replayed`] if it was seen
    /// within the window.
    pub fn check_and_insert(&mut self, now: Instant, key: &[u8; 32]) -> Result<(), ProtocolError> {
        while let Some((t, k)) = self.order.front() {
            if now.saturating_duration_since(*t) < self.window && self.order.len() < self.capacity {
                break;
            }
            self.seen.remove(k);
            self.order.pop_front();
        }
        if !self.seen.insert(*key) {
            return Err(ProtocolError::Replayed);
        }
        self.order.push_back((now, *key));
        Ok(())
    }

    /// Number of keys remembered.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

impl Default for ReplayCache {
    fn default() -> Self {
        ReplayCache::new(Self::DEFAULT_CAPACITY, Self::DEFAULT_WINDOW)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_within_window_and_forgets_after() {
        let t0 = Instant::now();
        let mut c = ReplayCache::new(3, Duration::from_secs(10));
        assert_eq!(c.check_and_insert(t0, &[1; 32]), Ok(()));
        assert_eq!(
            c.check_and_insert(t0, &[1; 32]),
            Err(ProtocolError::Replayed)
        );
        assert_eq!(
            c.check_and_insert(t0 + Duration::from_secs(9), &[1; 32]),
            Err(ProtocolError::Replayed)
        );
        assert_eq!(
            c.check_and_insert(t0 + Duration::from_secs(10), &[1; 32]),
            Ok(())
        );
        // Capacity bounds memory: the oldest entry is evicted.
        let t1 = t0 + Duration::from_secs(11);
        for k in 2..=4u8 {
            assert_eq!(c.check_and_insert(t1, &[k; 32]), Ok(()));
        }
        assert!(c.len() <= 3);
    }
}
