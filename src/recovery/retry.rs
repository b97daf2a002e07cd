//! The retry policy's numbers: how many retries, whether cleans are wanted, and how long to
//! back off between attempts (exponential, capped, with jitter). Which failures are retried is
//! decided in `recover`.

use std::time::Duration;

use crate::recovery::CleanMode;

/// The longest back-off between two attempts.
const BACKOFF_CAP: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub retries: u32,
    pub backoff: Duration,
    pub clean: CleanMode,
}

impl RetryPolicy {
    /// The pause before attempt `next` (2, 3, …): `backoff`, doubling, capped, each drawn
    /// uniformly from its upper half so that waiters woken together spread out.
    pub fn delay(&self, next: u32, random: u64) -> Duration {
        let doublings = next.saturating_sub(2).min(20);
        let full = self.backoff.saturating_mul(1 << doublings).min(BACKOFF_CAP);
        let half = full / 2;
        let spread = half.as_nanos() as u64;
        half + Duration::from_nanos(if spread == 0 {
            0
        } else {
            random % (spread + 1)
        })
    }
}

/// A cheap random number for jitter: no need for a cryptographic source here.
pub fn jitter_seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mut x = t.as_nanos() as u64 ^ (u64::from(std::process::id()) << 32);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(clean: CleanMode) -> RetryPolicy {
        RetryPolicy {
            retries: 2,
            backoff: Duration::from_secs(1),
            clean,
        }
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let p = policy(CleanMode::Auto);
        for r in [0, 1, u64::MAX / 3, u64::MAX] {
            let d2 = p.delay(2, r);
            assert!(
                d2 >= Duration::from_millis(500) && d2 <= Duration::from_secs(1),
                "{d2:?}"
            );
            let d4 = p.delay(4, r);
            assert!(
                d4 >= Duration::from_secs(2) && d4 <= Duration::from_secs(4),
                "{d4:?}"
            );
            assert!(p.delay(30, r) <= BACKOFF_CAP);
        }
        assert_ne!(p.delay(3, 1), p.delay(3, 987_654_321));
    }
}
