//! One finished attempt as the supervisor sees it: its result, its class, the words steady
//! prints for it, its record in the report, and the exit status it would give the run.

use super::*;

/// One attempt as the run loop looks at it afterwards.
pub(super) struct Done {
    pub(super) result: attempt::AttemptResult,
    pub(super) diag: classify::Diagnosis,
    /// Why the lock beyond this machine was lost, when that ended the attempt.
    pub(super) lock_lost: Option<String>,
    /// The failure in words: the lost lock's reason, else the diagnosis.
    pub(super) class: String,
    /// It failed: it did not succeed, or it succeeded from damaged cache entries.
    pub(super) failed: bool,
    /// The tail of its output, both streams, as classified.
    pub(super) tail: String,
}

impl Done {
    /// Classifies how attempt `attempt_no` ended and says so (`-v`).
    pub(super) fn classify(
        inv: Option<&Invocation>,
        recovery: &Recovery,
        result: attempt::AttemptResult,
        lock_lost: Option<String>,
        attempt_no: u32,
    ) -> Done {
        let tail = format!(
            "{}\n{}",
            String::from_utf8_lossy(&result.stdout_tail),
            String::from_utf8_lossy(&result.stderr_tail)
        );
        // A success that installed from damaged cache entries is a corruption failure.
        let silent = result
            .ending
            .succeeded()
            .then(|| recovery.silent_damage(&tail))
            .flatten();
        let failed = !result.ending.succeeded() || silent.is_some();
        let diag = silent
            .unwrap_or_else(|| classify::classify(inv.map(|i| i.installer), &result.ending, &tail));
        let class = lock_lost.clone().unwrap_or_else(|| describe(&diag));
        ui::detail(&format!(
            "attempt {attempt_no} ended after {}: {}{}",
            ui::human(result.duration),
            result.ending.describe(),
            if !failed {
                String::new()
            } else {
                format!(" ({class})")
            }
        ));
        Done {
            result,
            diag,
            lock_lost,
            class,
            failed,
            tail,
        }
    }

    /// How it ended, in words: `exit 3, unknown`, `exit 0`.
    pub(super) fn words(&self) -> String {
        if !self.failed {
            self.result.ending.describe()
        } else {
            format!("{}, {}", self.result.ending.describe(), self.class)
        }
    }

    /// The report's record of this attempt; its action is filled in by the decision.
    pub(super) fn record(&self, number: u32, started: SystemTime) -> AttemptRecord {
        let ending = &self.result.ending;
        AttemptRecord {
            number,
            started,
            duration: self.result.duration,
            ending: ending.describe(),
            exit_code: match ending {
                Ending::Exited(c) => Some(*c),
                _ => None,
            },
            signal: match ending {
                Ending::Signaled(sig) => Some(*sig),
                Ending::Interrupted { signal, .. } => Some(*signal as i32),
                _ => None,
            },
            class: match self.lock_lost {
                Some(_) => Some("lock lost"),
                None => self.failed.then(|| self.diag.failure.name()),
            },
            signature: self.diag.signature,
            package: self.diag.package.clone(),
            action: String::new(),
        }
    }
}

/// The exit status steady would have if `ending` ended the run (`STEADY_EXIT`): the code,
/// 128+N for a signal, 124 for the watchdog, 75 for a lost lock.
pub(super) fn exit_status(ending: &Ending) -> i32 {
    match ending {
        Ending::Exited(c) => *c,
        Ending::Signaled(sig) => 128 + sig,
        Ending::Interrupted { signal, ended } => match ended {
            sys::Ended::Exited(c) => *c,
            sys::Ended::Signaled(_) => 128 + *signal as i32,
        },
        Ending::Stopped(StopReason::LockLost) => i32::from(crate::exit::LOCK_TIMEOUT),
        Ending::Stopped(_) => i32::from(crate::exit::WATCHDOG_KILLED),
        Ending::NotFound => i32::from(crate::exit::NOT_FOUND),
        Ending::NotExecutable(_) => i32::from(crate::exit::NOT_EXECUTABLE),
        Ending::NoProcesses | Ending::SpawnFailed(_) => i32::from(crate::exit::STEADY_FAILED),
    }
}

/// The attempts' endings in a few words however many there were: a run of equal endings is
/// one entry (`attempts 1-12: timed out`), and of more than six entries only the first three
/// and the last two are named.
pub(super) fn summarize(endings: &[String]) -> String {
    let mut runs: Vec<(usize, usize, &str)> = Vec::new();
    for (i, e) in endings.iter().enumerate() {
        match runs.last_mut() {
            Some((_, last, text)) if *text == e.as_str() => *last = i + 1,
            _ => runs.push((i + 1, i + 1, e)),
        }
    }
    let show = |&(first, last, text): &(usize, usize, &str)| {
        if first == last {
            format!("attempt {first}: {text}")
        } else {
            format!("attempts {first}-{last}: {text}")
        }
    };
    let mut shown: Vec<String> = runs.iter().map(show).collect();
    if shown.len() > 6 {
        let tail = shown.split_off(shown.len() - 2);
        shown.truncate(3);
        shown.push("…".into());
        shown.extend(tail);
    }
    shown.join("; ")
}

/// A diagnosis as words: `cache corruption: alpha`, `network`.
fn describe(d: &classify::Diagnosis) -> String {
    match &d.package {
        Some(p) => format!("{}: {p}", d.failure.name()),
        None => d.failure.name().to_owned(),
    }
}
