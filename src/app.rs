//! One wrapped run, step by step (spec section 3): identify the command, exec it at once when
//! there is nothing to do, else find its cache, lock, run attempts, decide after each failure
//! (clean, back off, retry), and report. The details of each step live in their own modules.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::attempt::{self, AttemptSpec, Ending, Output, StopReason};
use crate::cache::{self, CacheLocation};
use crate::exit::Outcome;
use crate::installer::{self, Class, Invocation};
use crate::lock::{self, Acquired, CacheLock, LockError, LockRequest};
use crate::retry::{Decision, RetryPolicy};
use crate::settings::Settings;
use crate::sys::{self, SignalPipe};
use crate::ui;

/// How long an installer's own clean command may take (uv's waits on uv's own lock).
const CLEAN_TIMEOUT: Duration = Duration::from_secs(120);

pub fn run(settings: Settings) -> Outcome {
    ui::set_verbosity(settings.verbosity);
    if settings.command.is_empty() {
        ui::error("no command given; usage: steady [OPTIONS] [--] <COMMAND> [ARGS...]");
        return Outcome::SteadyFailed;
    }
    let forced = match settings.installer.as_deref() {
        None => None,
        Some(name) => match installer::by_name(name) {
            Some(i) => Some(i),
            None => {
                let known: Vec<&str> = installer::INSTALLERS.iter().map(|i| i.name).collect();
                ui::error(&format!(
                    "unknown installer `{name}` for --installer; known: {}",
                    known.join(", ")
                ));
                return Outcome::SteadyFailed;
            }
        },
    };
    let inv = installer::identify(&settings.command, forced);
    let writes = inv.as_ref().is_some_and(|i| i.class == Class::Writes);
    let supervise = match &inv {
        Some(_) => writes || settings.supervise_flag_given,
        None => settings.supervise_requested || settings.cache.is_some(),
    };
    if !supervise {
        return exec(&settings);
    }
    match sys::install_signal_handlers() {
        Ok(signals) => Supervisor {
            settings: &settings,
            inv: inv.as_ref(),
            writes,
            signals: &signals,
        }
        .run(),
        Err(e) => {
            ui::error(&format!("cannot set up signal handling: {e}"));
            Outcome::SteadyFailed
        }
    }
}

/// Replaces steady with the command: same pid, no lock, nothing in between.
fn exec(settings: &Settings) -> Outcome {
    let argv = &settings.command;
    let err = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .envs(settings.envs.iter().map(|(k, v)| (k, v)))
        .exec();
    report_spawn_failure(argv, &attempt_ending_for(&err))
}

fn attempt_ending_for(err: &std::io::Error) -> Ending {
    match (err.kind(), err.raw_os_error()) {
        (std::io::ErrorKind::NotFound, _) => Ending::NotFound,
        (std::io::ErrorKind::PermissionDenied, _) | (_, Some(libc::ENOEXEC)) => {
            Ending::NotExecutable(err.to_string())
        }
        _ => Ending::SpawnFailed(err.to_string()),
    }
}

fn report_spawn_failure(argv: &[OsString], ending: &Ending) -> Outcome {
    let program = argv[0].to_string_lossy();
    match ending {
        Ending::NotFound => {
            ui::error(&format!("`{program}`: command not found"));
            Outcome::NotFound
        }
        Ending::NotExecutable(e) => {
            ui::error(&format!("cannot run `{program}`: {e}"));
            Outcome::NotExecutable
        }
        Ending::NoProcesses => {
            ui::error(&format!(
                "cannot start `{program}`: the process limit is reached (ulimit -u)"
            ));
            Outcome::SteadyFailed
        }
        other => {
            ui::error(&format!("cannot start `{program}`: {}", other.describe()));
            Outcome::SteadyFailed
        }
    }
}

struct Supervisor<'a> {
    settings: &'a Settings,
    inv: Option<&'a Invocation>,
    writes: bool,
    signals: &'a SignalPipe,
}

impl Supervisor<'_> {
    fn run(&self) -> Outcome {
        let s = self.settings;
        if let Err(e) = sys::become_subreaper() {
            ui::detail(&format!(
                "cannot become a child subreaper ({e}); escaped processes may be missed"
            ));
        }
        let deadline = s.deadline.map(|d| Instant::now() + d);
        let cache = self.locate_cache();
        match &cache {
            Some(CacheLocation::Dir { path, source }) => {
                ui::detail(&format!("cache `{}` ({source})", path.display()))
            }
            Some(CacheLocation::Disabled { reason }) => {
                ui::detail(&format!("no shared cache: {reason}"))
            }
            None => {}
        }
        let cache_dir = match &cache {
            Some(CacheLocation::Dir { path, .. }) => Some(path.clone()),
            _ => None,
        };
        let mut env: Vec<(OsString, OsString)> =
            s.envs.iter().map(|(k, v)| (k.into(), v.into())).collect();
        let mut held = None;
        if let Some(dir) = cache_dir.as_ref().filter(|_| !s.no_lock) {
            match self.lock(dir, deadline) {
                Ok(Acquired::Locked(l)) => {
                    env.push((lock::HELD_ENV.into(), lock::held_env_with(&l.key)));
                    held = Some(l);
                }
                Ok(Acquired::Nested { key }) => {
                    env.push((lock::HELD_ENV.into(), lock::held_env_with(&key)))
                }
                Ok(Acquired::Unlocked { reason }) => ui::warn(&format!(
                    "running without a lock: {reason}; installs sharing this cache at the same time may corrupt it"
                )),
                Err(e) => return self.lock_failed(e),
            }
        }
        self.attempts(&env, deadline, cache_dir, held)
    }

    fn locate_cache(&self) -> Option<CacheLocation> {
        if let Some(path) = &self.settings.cache {
            let path = std::path::absolute(path).unwrap_or_else(|_| path.clone());
            return Some(CacheLocation::Dir {
                path,
                source: "--cache".into(),
            });
        }
        let inv = self.inv.filter(|_| self.writes)?;
        let signals = self.signals;
        let mut ask = |argv: &[OsString], timeout| {
            let r = attempt::run_helper(argv, timeout, signals);
            if r.ending.succeeded() {
                Some(String::from_utf8_lossy(&r.stdout_tail).into_owned())
            } else {
                ui::detail(&format!(
                    "`{}` failed ({}); using the default cache",
                    cache::show(argv),
                    r.ending.describe()
                ));
                None
            }
        };
        Some(cache::locate(inv, &mut ask))
    }

    fn lock(
        &self,
        dir: &std::path::Path,
        deadline: Option<Instant>,
    ) -> Result<Acquired, LockError> {
        let s = self.settings;
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let wait = match (s.lock_timeout, left) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        lock::acquire(&LockRequest {
            cache: dir,
            lock_dir: s.lock_dir.as_deref(),
            wait,
            require: s.require_lock,
        })
    }

    fn lock_failed(&self, e: LockError) -> Outcome {
        match e {
            LockError::TimedOut {
                path,
                holder,
                waited,
            } => {
                let who = holder.map_or_else(|| "another process".to_owned(), |h| h.describe());
                ui::error(&format!(
                    "gave up waiting for the lock on `{}` after {}, held by {who}; the command was not run. \
                     Wait longer with --lock-timeout, or stop the holder.",
                    path.display(),
                    ui::human(waited)
                ));
                Outcome::LockTimeout
            }
            LockError::Interrupted(sig) => Outcome::Signaled {
                signal: sig as i32,
                reraise: true,
            },
            LockError::Unsafe(msg) => {
                ui::error(&format!(
                    "{msg}; the command was not run. Remove it, or choose another place with --lock-dir."
                ));
                Outcome::SteadyFailed
            }
            LockError::Unavailable(msg) => {
                ui::error(&format!(
                    "{msg}; the command was not run because STEADY_REQUIRE_LOCK=1."
                ));
                Outcome::LockTimeout
            }
        }
    }

    fn attempts(
        &self,
        env: &[(OsString, OsString)],
        deadline: Option<Instant>,
        cache_dir: Option<PathBuf>,
        mut held: Option<CacheLock>,
    ) -> Outcome {
        let s = self.settings;
        let policy = RetryPolicy {
            retries: s.retries,
            backoff: s.backoff,
            clean: s.clean,
        };
        let total = s.retries + 1;
        let same_group = sys::owns_foreground_terminal();
        let output = |fd| {
            if sys::is_terminal(fd) {
                Output::Inherit
            } else {
                Output::Forward
            }
        };
        let mut cleaned_at: Vec<u32> = Vec::new();
        let mut failures: Vec<String> = Vec::new();
        let mut attempt_no = 1;
        loop {
            let limit = earliest(
                s.timeout.map(|t| (Instant::now() + t, StopReason::Timeout)),
                deadline.map(|d| (d, StopReason::Deadline)),
            );
            let spec = AttemptSpec {
                argv: &s.command,
                env,
                limit,
                kill_after: s.kill_after,
                stdout: output(1),
                stderr: output(2),
                same_group,
            };
            ui::detail(&format!(
                "attempt {attempt_no} of {total}: `{}`",
                cache::show(&s.command)
            ));
            let result = attempt::run(&spec, self.signals);
            ui::detail(&format!(
                "attempt {attempt_no} ended after {}: {}",
                ui::human(result.duration),
                result.ending.describe()
            ));
            let cleanable = cache_dir.is_some() && self.inv.is_some();
            let decision = match policy.decide(&result.ending, attempt_no, !cleaned_at.is_empty()) {
                Decision::Retry { clean } => Decision::Retry {
                    clean: clean && cleanable,
                },
                stop => stop,
            };
            let Decision::Retry { clean } = decision else {
                return self.finish(&result.ending, attempt_no, &failures, &cleaned_at);
            };
            let delay = policy.delay(attempt_no + 1, crate::retry::jitter_seed());
            if deadline.is_some_and(|d| Instant::now() + delay >= d) {
                ui::status(&format!(
                    "attempt {attempt_no} failed ({}); no time left before --deadline to retry",
                    result.ending.describe()
                ));
                return self.finish(&result.ending, attempt_no, &failures, &cleaned_at);
            }
            failures.push(result.ending.describe());
            let what = if clean { ", clearing the cache" } else { "" };
            ui::warn(&format!(
                "attempt {attempt_no} of {total} failed ({}){what}; retrying in {}",
                result.ending.describe(),
                ui::human(delay)
            ));
            if clean && let (Some(inv), Some(dir)) = (self.inv, cache_dir.as_deref()) {
                self.clean(inv, dir);
                cleaned_at.push(attempt_no);
                if let Some(l) = held.as_mut() {
                    l.follow_recreated_dir();
                }
            }
            if let Some(sig) = self.sleep(delay) {
                return Outcome::Signaled {
                    signal: sig as i32,
                    reraise: true,
                };
            }
            attempt_no += 1;
        }
    }

    /// Clears the cache with the installer's own command, while steady holds the lock and
    /// after the failed attempt's tree is gone.
    fn clean(&self, inv: &Invocation, dir: &std::path::Path) {
        let argv = cache::clean_command(inv, dir);
        let r = attempt::run_helper(&argv, CLEAN_TIMEOUT, self.signals);
        match &r.ending {
            Ending::Exited(0) => {
                ui::detail(&format!("cleared the cache with `{}`", cache::show(&argv)))
            }
            Ending::Stopped(_) => ui::warn(&format!(
                "`{}` did not finish within {} (another process may hold the installer's own cache lock); retrying without a clean",
                cache::show(&argv),
                ui::human(CLEAN_TIMEOUT)
            )),
            other => {
                let said = String::from_utf8_lossy(&r.stderr_tail);
                let last = said
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("")
                    .trim();
                ui::warn(&format!(
                    "`{}` failed ({}): {last}; retrying anyway",
                    cache::show(&argv),
                    other.describe()
                ));
            }
        }
    }

    /// Waits `delay`, unless steady is told to stop: then returns that signal.
    fn sleep(&self, delay: Duration) -> Option<nix::sys::signal::Signal> {
        let until = Instant::now() + delay;
        loop {
            if let Some(a) = sys::take_signals()
                .into_iter()
                .find(|a| lock::is_stop_signal(a.signal))
            {
                return Some(a.signal);
            }
            while sys::reap_any().is_some() {}
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
            let _ = nix::poll::poll(
                &mut [nix::poll::PollFd::new(
                    self.signals.fd(),
                    nix::poll::PollFlags::POLLIN,
                )],
                nix::poll::PollTimeout::try_from(ms).unwrap_or(nix::poll::PollTimeout::MAX),
            );
            self.signals.drain();
        }
    }

    fn finish(
        &self,
        ending: &Ending,
        attempts: u32,
        failures: &[String],
        cleaned_at: &[u32],
    ) -> Outcome {
        let s = self.settings;
        let outcome = match ending {
            Ending::Exited(0) => Outcome::Success,
            Ending::Exited(c) => Outcome::Command(*c),
            Ending::Signaled(sig) => Outcome::Signaled {
                signal: *sig,
                reraise: false,
            },
            Ending::Stopped(reason) => {
                let why = match reason {
                    StopReason::Timeout => format!(
                        "ran past --timeout {}",
                        ui::human(s.timeout.unwrap_or_default())
                    ),
                    StopReason::Deadline => format!(
                        "ran past --deadline {}",
                        ui::human(s.deadline.unwrap_or_default())
                    ),
                };
                ui::error(&format!(
                    "`{}` {why}; steady killed its whole process tree",
                    cache::show(&s.command)
                ));
                Outcome::WatchdogKilled
            }
            Ending::Interrupted { signal, ended } => match ended {
                sys::Ended::Exited(c) => Outcome::Command(*c),
                sys::Ended::Signaled(_) => Outcome::Signaled {
                    signal: *signal as i32,
                    reraise: true,
                },
            },
            other => return report_spawn_failure(&s.command, other),
        };
        if attempts > 1 {
            let history = failures
                .iter()
                .enumerate()
                .map(|(i, f)| format!("attempt {}: {f}", i + 1))
                .collect::<Vec<_>>()
                .join("; ");
            let cleaned = if cleaned_at.is_empty() {
                String::new()
            } else {
                let name = self.inv.map_or("the", |i| i.installer.name);
                format!(
                    "; cleared the {name} cache {}",
                    if cleaned_at.len() == 1 {
                        "once".into()
                    } else {
                        format!("{} times", cleaned_at.len())
                    }
                )
            };
            if outcome == Outcome::Success {
                ui::status(&format!(
                    "succeeded on attempt {attempts} of {} ({history}{cleaned})",
                    s.retries + 1
                ));
            } else {
                ui::status(&format!(
                    "gave up after {attempts} attempts ({history}; attempt {attempts}: {}{cleaned})",
                    ending.describe()
                ));
            }
        }
        outcome
    }
}

fn earliest(
    a: Option<(Instant, StopReason)>,
    b: Option<(Instant, StopReason)>,
) -> Option<(Instant, StopReason)> {
    match (a, b) {
        (Some(x), Some(y)) => Some(if y.0 <= x.0 { y } else { x }),
        (x, y) => x.or(y),
    }
}
