//! The retry policy: which endings are worth another attempt, whether the cache is cleared
//! first, and how long to back off (exponential, capped, with jitter, never after the last
//! attempt). Deeper, per-installer classification of failures builds on `decide`.

use std::time::Duration;

use crate::attempt::{Ending, StopReason};
use crate::cli::CleanMode;

/// The longest back-off between two attempts.
const BACKOFF_CAP: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub retries: u32,
    pub backoff: Duration,
    pub clean: CleanMode,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Retrying cannot help (or was not wanted): stop with this attempt's result.
    Stop,
    Retry {
        clean: bool,
    },
}

impl RetryPolicy {
    /// `attempt` counts from 1; `cleaned` says whether the cache was cleared in this run.
    pub fn decide(&self, ending: &Ending, attempt: u32, cleaned: bool) -> Decision {
        if attempt > self.retries {
            return Decision::Stop;
        }
        match ending {
            Ending::Exited(0) => Decision::Stop,
            // The command is missing or broken, or someone asked it to stop.
            Ending::NotFound
            | Ending::NotExecutable(_)
            | Ending::SpawnFailed(_)
            | Ending::Interrupted { .. } => Decision::Stop,
            Ending::Signaled(s)
                if [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT].contains(s) =>
            {
                Decision::Stop
            }
            Ending::Stopped(StopReason::Deadline) => Decision::Stop,
            // A hang or a process limit is not cured by deleting the cache.
            Ending::Stopped(StopReason::Timeout) | Ending::NoProcesses => {
                Decision::Retry { clean: false }
            }
            Ending::Exited(_) | Ending::Signaled(_) => Decision::Retry {
                clean: match self.clean {
                    CleanMode::Always => true,
                    CleanMode::Auto => !cleaned,
                    CleanMode::Never => false,
                },
            },
        }
    }

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
    fn decisions() {
        let p = policy(CleanMode::Auto);
        assert_eq!(
            p.decide(&Ending::Exited(1), 1, false),
            Decision::Retry { clean: true }
        );
        assert_eq!(
            p.decide(&Ending::Exited(1), 2, true),
            Decision::Retry { clean: false }
        );
        assert_eq!(p.decide(&Ending::Exited(1), 3, true), Decision::Stop);
        assert_eq!(p.decide(&Ending::NotFound, 1, false), Decision::Stop);
        assert_eq!(
            p.decide(&Ending::NotExecutable("x".into()), 1, false),
            Decision::Stop
        );
        assert_eq!(
            p.decide(&Ending::Stopped(StopReason::Timeout), 1, false),
            Decision::Retry { clean: false }
        );
        assert_eq!(
            p.decide(&Ending::Stopped(StopReason::Deadline), 1, false),
            Decision::Stop
        );
        assert_eq!(
            p.decide(&Ending::Signaled(libc::SIGINT), 1, false),
            Decision::Stop
        );
        assert_eq!(
            p.decide(&Ending::Signaled(libc::SIGABRT), 1, false),
            Decision::Retry { clean: true }
        );
        assert_eq!(
            policy(CleanMode::Never).decide(&Ending::Exited(1), 1, false),
            Decision::Retry { clean: false }
        );
        assert_eq!(
            policy(CleanMode::Always).decide(&Ending::Exited(1), 2, true),
            Decision::Retry { clean: true }
        );
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
