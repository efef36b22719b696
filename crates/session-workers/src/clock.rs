//! Wall-clock time for decisions that are stored (next-attempt times, expiry).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Epoch milliseconds, as every timestamp in a session.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time.
    fn now_ms(&self) -> u64;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        session_fs::now_ms()
    }
}

/// A clock that moves only when told to: for tests and for `--now`.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock reading `now_ms`.
    pub fn at(now_ms: u64) -> Self {
        Self(Arc::new(AtomicU64::new(now_ms)))
    }

    /// Moves the clock forward.
    pub fn advance(&self, ms: u64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }

    /// Sets the clock.
    pub fn set(&self, now_ms: u64) {
        self.0.store(now_ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_clock_is_the_wall_clock_and_a_manual_one_moves_only_when_told() {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        assert!(
            SystemClock.now_ms().abs_diff(wall) < 60_000,
            "{}",
            SystemClock.now_ms()
        );
        let manual = ManualClock::at(1_000);
        manual.advance(500);
        assert_eq!(manual.now_ms(), 1_500);
        manual.set(7);
        assert_eq!(manual.now_ms(), 7);
    }
}
