//! Retry delays: exponential backoff with jitter, as pure functions.

use std::time::Duration;

use rand::Rng;

/// How long a failed key waits before its next attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The delay after the first failure.
    pub base: Duration,
    /// The cap on the delay (before jitter).
    pub max: Duration,
}

impl Default for Backoff {
    /// The reference figures: 30 seconds, doubling, capped at 10 minutes.
    fn default() -> Self {
        Self {
            base: Duration::from_secs(30),
            max: Duration::from_secs(600),
        }
    }
}

impl Backoff {
    /// The delay after `attempts` failures, without jitter: `base * 2^(attempts-1)`, capped.
    pub fn delay(&self, attempts: u32) -> Duration {
        let exponent = attempts.saturating_sub(1).min(32);
        self.base
            .saturating_mul(1u32 << exponent.min(31))
            .min(self.max)
    }

    /// [`Backoff::delay`] plus a random jitter in `[0, delay/2)`, which spreads retries of keys
    /// that failed together.
    pub fn delay_with_jitter(&self, attempts: u32, rng: &mut impl Rng) -> Duration {
        let delay = self.delay(attempts);
        delay + jitter(delay / 2, rng)
    }
}

/// A uniformly random duration in `[0, below)`.
pub fn jitter(below: Duration, rng: &mut impl Rng) -> Duration {
    let nanos = u64::try_from(below.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(rng.random_range(0..nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_should_double_from_base_and_stop_at_max() {
        let backoff = Backoff::default();
        let secs: Vec<u64> = (1..=7).map(|a| backoff.delay(a).as_secs()).collect();
        assert_eq!(secs, [30, 60, 120, 240, 480, 600, 600]);
        assert_eq!(backoff.delay(0).as_secs(), 30);
        assert_eq!(backoff.delay(u32::MAX).as_secs(), 600);
    }

    #[test]
    fn delay_with_jitter_should_add_less_than_half_the_delay() {
        let backoff = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        let mut rng = rand::rng();
        for attempts in 1..6 {
            let plain = backoff.delay(attempts);
            for _ in 0..200 {
                let jittered = backoff.delay_with_jitter(attempts, &mut rng);
                assert!(jittered >= plain && jittered < plain + plain / 2);
            }
        }
    }
}
