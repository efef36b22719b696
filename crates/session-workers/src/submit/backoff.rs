//! When to try again: exponential backoff with full jitter, never before `Retry-After`.
//!
//! Written here rather than taken from `backon`: our retries are not an in-process loop
//! but state saved in the session (`nextAttemptAt`), computed once per failed attempt,
//! and backon's jitter adds to the delay instead of drawing it whole ("full jitter").

use std::time::Duration;

use rand::Rng;

/// The backoff parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Backoff {
    /// The delay scale of the first retry.
    pub base: Duration,
    /// The largest delay.
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(5),
            cap: Duration::from_secs(15 * 60),
        }
    }
}

impl Backoff {
    /// Retries scaled by `base`, never more than `cap` apart.
    pub fn new(base: Duration, cap: Duration) -> Self {
        Backoff { base, cap }
    }

    /// The delay after the `attempts`-th failed attempt: uniform in
    /// `[0, min(cap, base * 2^(attempts-1))]`, but never less than `retry_after`, which
    /// itself counts as at most `cap` (a server asking for years is not obeyed).
    pub fn delay(&self, attempts: u32, retry_after: Option<Duration>, rng: &mut impl Rng) -> Duration {
        let exp = attempts.saturating_sub(1).min(30);
        let ceiling = self.base.saturating_mul(1u32 << exp).min(self.cap);
        let drawn = Duration::from_millis(rng.random_range(0..=ceiling.as_millis() as u64));
        drawn.max(retry_after.unwrap_or_default().min(self.cap))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn delays_grow_to_the_cap_and_honour_retry_after() {
        let backoff = Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_millis(1000),
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for attempts in 1..12u32 {
            let ceiling = (100u64 << (attempts - 1)).min(1000);
            for _ in 0..50 {
                let d = backoff.delay(attempts, None, &mut rng).as_millis() as u64;
                assert!(d <= ceiling, "attempt {attempts}: {d} > {ceiling}");
            }
        }
        let d = backoff.delay(1, Some(Duration::from_millis(700)), &mut rng);
        assert!(d >= Duration::from_millis(700));
        // Retry-After beyond the cap counts as the cap.
        let d = backoff.delay(1, Some(Duration::from_secs(999_999_999)), &mut rng);
        assert_eq!(d, Duration::from_millis(1000));
        // Full jitter really spreads: not every draw is the ceiling.
        let draws: std::collections::HashSet<_> = (0..20).map(|_| backoff.delay(5, None, &mut rng)).collect();
        assert!(draws.len() > 10);
    }
}
