//! The resync period: its cron schedule and the delay that spreads a run's keys across it.

use std::time::Duration;

use sha2::{Digest, Sha256};

/// How often the resync runs: 1 to 744 hours (31 days); above a day, whole days.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period {
    hours: u32,
}

/// A period that cannot be scheduled.
#[derive(Debug, thiserror::Error)]
pub enum PeriodError {
    /// Outside 1..=744 hours.
    #[error("the resync period must be 1 to 744 hours, got {0}")]
    OutOfRange(u32),
    /// Over a day but not whole days (the schedule counts days then).
    #[error("a resync period over 24 hours must be a multiple of 24, got {0}")]
    NotWholeDays(u32),
}

impl Period {
    /// The period of `hours` hours.
    pub fn from_hours(hours: u32) -> Result<Self, PeriodError> {
        match hours {
            0 | 745.. => Err(PeriodError::OutOfRange(hours)),
            25.. if !hours.is_multiple_of(24) => Err(PeriodError::NotWholeDays(hours)),
            _ => Ok(Self { hours }),
        }
    }

    /// The period in minutes: the range of the spread delay.
    pub fn minutes(&self) -> u64 {
        u64::from(self.hours) * 60
    }

    /// The schedule, as `tokio-cron-scheduler` reads it (seconds first): every N hours on the
    /// hour under a day (`0 */N * * *` in five fields), else at midnight every D days of the
    /// month (`0 0 */D * *`), as the reference schedules it. Times are UTC.
    pub fn cron(&self) -> String {
        if self.hours < 24 {
            format!("0 0 */{} * * *", self.hours)
        } else {
            format!("0 0 0 */{} * *", self.hours / 24)
        }
    }
}

/// How long `key` waits in the run that started at `run_unix` (seconds since the epoch): the
/// first 8 bytes of SHA-256(`"<key>-<run_unix>"`), big-endian, modulo the period's minutes, in
/// minutes (docs/architecture.md, "Resync"). The same key lands elsewhere in the next run.
pub fn spread_delay(key: &str, run_unix: u64, period: Period) -> Duration {
    let digest = Sha256::digest(format!("{key}-{run_unix}"));
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    Duration::from_secs(u64::from_be_bytes(first) % period.minutes() * 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_should_be_validated_and_scheduled_like_the_reference() {
        for bad in [0, 25, 36, 745, 1000] {
            assert!(Period::from_hours(bad).is_err(), "{bad}");
        }
        let cron = |h| Period::from_hours(h).unwrap().cron();
        assert_eq!(cron(1), "0 0 */1 * * *");
        assert_eq!(cron(6), "0 0 */6 * * *");
        assert_eq!(cron(24), "0 0 0 */1 * *");
        assert_eq!(cron(168), "0 0 0 */7 * *");
        assert_eq!(cron(744), "0 0 0 */31 * *");
        let message = Period::from_hours(30).unwrap_err().to_string();
        assert!(message.contains("multiple of 24"), "{message}");
    }

    #[test]
    fn the_spread_delay_should_follow_the_documented_formula() {
        // Computed independently: sha256("k-1700000000"), first 8 bytes big-endian.
        let period = Period::from_hours(24).unwrap();
        let digest = Sha256::digest(b"k-1700000000");
        let expected = u64::from_be_bytes(digest[..8].try_into().unwrap()) % 1440;
        assert_eq!(
            spread_delay("k", 1_700_000_000, period),
            Duration::from_secs(expected * 60)
        );
        assert_ne!(
            spread_delay("k", 1_700_000_000, period),
            spread_delay("k", 1_700_086_400, period),
            "another run, another place (for this key and these runs)"
        );
    }

    #[test]
    fn delays_should_stay_inside_the_period_and_spread_across_it() {
        let period = Period::from_hours(2).unwrap();
        let mut per_quarter = [0usize; 4];
        for i in 0..4000 {
            let delay = spread_delay(
                &format!("https://github.com/o/r/blob/main/f{i}"),
                42,
                period,
            );
            assert!(delay < Duration::from_secs(2 * 3600), "{delay:?}");
            assert_eq!(delay.as_secs() % 60, 0, "whole minutes");
            per_quarter[(delay.as_secs() / 1800) as usize] += 1;
        }
        for count in per_quarter {
            assert!((800..1200).contains(&count), "{per_quarter:?}");
        }
    }
}
