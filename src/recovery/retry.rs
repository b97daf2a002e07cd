//! The retry policy's numbers: how many retries, whether cleans are wanted, and how long to
//! back off between attempts (exponential, capped, with jitter); and the user's own retry
//! rules (`--retry-on-exit`, `--retry-on-output`). Which failures are retried is decided in
//! `recovery`, where the user's rules can turn a stop into a retry.

use std::time::Duration;

use crate::attempt::Ending;
use crate::recovery::CleanMode;

/// The longest back-off between two attempts unless `--backoff-max` says otherwise.
#[cfg(test)]
const BACKOFF_CAP: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub retries: u32,
    pub backoff: Duration,
    /// `--backoff-max`: no pause is longer.
    pub backoff_max: Duration,
    pub clean: CleanMode,
    /// `--retry-on-exit`: these exit codes are retried even where steady would stop.
    pub retry_on_exit: Vec<i32>,
    /// `--retry-on-output`: a failed attempt whose output matches one of these is retried
    /// even where steady would stop.
    pub retry_on_output: Vec<regex::Regex>,
}

impl RetryPolicy {
    /// The user's rule that makes a failed attempt retryable, in words (`--retry-on-exit 3`),
    /// or `None`. `output` is the tail steady kept of the attempt's output.
    pub fn user_rule(&self, ending: &Ending, output: &str) -> Option<String> {
        if ending.succeeded() {
            return None;
        }
        // A death by signal N counts as 128+N, as a shell shows it (`--retry-on-exit 137`
        // for an attempt the OOM killer ended).
        let code = match ending {
            Ending::Exited(c) => Some(*c),
            Ending::Signaled(sig) => Some(128 + sig),
            _ => None,
        };
        if let Some(code) = code.filter(|c| self.retry_on_exit.contains(c)) {
            return Some(format!("--retry-on-exit {code}"));
        }
        self.retry_on_output
            .iter()
            .find(|r| r.is_match(output))
            .map(|r| format!("--retry-on-output '{}'", r.as_str()))
    }

    /// The pause before attempt `next` (2, 3, …): `backoff`, doubling, capped, each drawn
    /// uniformly from its upper half so that waiters woken together spread out.
    pub fn delay(&self, next: u32, random: u64) -> Duration {
        let doublings = next.saturating_sub(2).min(20);
        let full = self
            .backoff
            .saturating_mul(1 << doublings)
            .min(self.backoff_max);
        let half = full / 2;
        let spread = half.as_nanos() as u64;
        half + Duration::from_nanos(if spread == 0 {
            0
        } else {
            random % (spread + 1)
        })
    }
}

/// Compiles the `--retry-on-output` patterns, with `^` and `$` matching at each line of the
/// output. The error names the pattern and what is wrong with it, on one line; `named` is where
/// it came from (`for --retry-on-output`, `in STEADY_RETRY_ON_OUTPUT`).
pub fn compile_patterns(patterns: &[String], named: &str) -> Result<Vec<regex::Regex>, String> {
    patterns
        .iter()
        .map(|p| compile_pattern(p).map_err(|why| format!("invalid pattern `{p}` {named}: {why}")))
        .collect()
}

fn compile_pattern(p: &str) -> Result<regex::Regex, String> {
    if p.is_empty() {
        return Err("an empty pattern would match every failure".into());
    }
    regex::RegexBuilder::new(p)
        .multi_line(true)
        .build()
        .map_err(|e| {
            // regex's own message spans lines (the pattern, a caret); its reason is the last.
            let text = e.to_string();
            text.lines()
                .find_map(|l| l.strip_prefix("error: "))
                .unwrap_or(text.lines().last().unwrap_or("not a regular expression"))
                .to_owned()
        })
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
            backoff_max: BACKOFF_CAP,
            clean,
            retry_on_exit: vec![3],
            retry_on_output: compile_patterns(&["^flaky$".into()], "").unwrap(),
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

    #[test]
    fn backoff_max_caps_every_pause() {
        let mut p = policy(CleanMode::Auto);
        p.backoff_max = Duration::from_secs(3);
        for r in [0, u64::MAX] {
            assert!(p.delay(10, r) <= Duration::from_secs(3));
            assert!(p.delay(10, r) >= Duration::from_millis(1500));
        }
        p.backoff_max = Duration::ZERO;
        assert_eq!(p.delay(4, 12345), Duration::ZERO);
    }

    #[test]
    fn user_rules_name_what_matched() {
        let p = policy(CleanMode::Auto);
        assert_eq!(
            p.user_rule(&Ending::Exited(3), "").as_deref(),
            Some("--retry-on-exit 3")
        );
        assert_eq!(p.user_rule(&Ending::Exited(4), "a\nflakyish\n"), None);
        assert_eq!(
            p.user_rule(&Ending::Exited(4), "a\nflaky\nb").as_deref(),
            Some("--retry-on-output '^flaky$'")
        );
        assert_eq!(p.user_rule(&Ending::Exited(0), "flaky"), None);
        let mut p = p;
        p.retry_on_exit = vec![137];
        assert_eq!(
            p.user_rule(&Ending::Signaled(9), "").as_deref(),
            Some("--retry-on-exit 137")
        );
    }

    #[test]
    fn patterns_match_per_line_and_errors_are_one_line() {
        let r = compile_pattern("^error: .*reset$").unwrap();
        assert!(r.is_match("ok\nerror: connection reset\nmore"));
        let e = compile_patterns(&["(unclosed".into()], "for --retry-on-output").unwrap_err();
        assert_eq!(
            e,
            "invalid pattern `(unclosed` for --retry-on-output: unclosed group"
        );
        assert!(compile_pattern("").is_err());
    }
}
