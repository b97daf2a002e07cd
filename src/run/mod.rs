//! One wrapped run, step by step (spec section 3): identify the command, exec it at once when
//! there is nothing to do, else find its cache, lock, run attempts, classify each failure and
//! act on it (clean, mitigate, back off, retry), and report. The details of each step live in
//! their own modules; this one only sequences them.

pub mod held;
mod hook;
pub mod report;
pub mod settings;

use std::cell::RefCell;
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::attempt::input::Replay;
use crate::attempt::{self, AttemptSpec, Ending, Output, StopReason};
use crate::exit::Outcome;
use crate::installer::locate::{self, CacheLocation};
use crate::installer::{self, Class, Invocation};
use crate::lock::{self, LockError, LockRequest, RemoteFailure};
use crate::recovery::classify;
use crate::recovery::retry::{RetryPolicy, compile_patterns};
use crate::recovery::{Clean, Recovery, Step};
use crate::run::held::Held;
use crate::run::report::{AttemptRecord, Report};
use crate::run::settings::Settings;
use crate::sys::{self, SignalPipe};
use crate::ui;

/// What steady makes of a command line before doing anything.
pub struct Plan {
    pub inv: Option<Invocation>,
    /// The subcommand writes the cache or an environment: lock and supervise.
    pub writes: bool,
    /// Supervise (else exec at once).
    pub supervise: bool,
}

/// Identifies the command and decides between exec and supervision; `Err` is a usage error,
/// already reported.
pub fn plan(settings: &Settings) -> Result<Plan, Outcome> {
    if settings.command.is_empty() {
        ui::error("no command given; usage: steady [OPTIONS] [--] <COMMAND> [ARGS...]");
        return Err(Outcome::SteadyFailed);
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
                return Err(Outcome::SteadyFailed);
            }
        },
    };
    let inv = installer::identify(&settings.command, forced);
    let writes = inv.as_ref().is_some_and(|i| i.class == Class::Writes);
    let supervise = match &inv {
        Some(_) => writes || settings.supervise_flag_given,
        None => settings.supervise_requested || settings.cache.is_some(),
    };
    Ok(Plan {
        inv,
        writes,
        supervise,
    })
}

pub fn run(settings: Settings) -> Outcome {
    ui::set_verbosity(settings.verbosity);
    let plan = match plan(&settings) {
        Ok(p) => p,
        Err(outcome) => return outcome,
    };
    if !plan.supervise {
        return exec(&settings);
    }
    let patterns = match retry_patterns(&settings) {
        Ok(p) => p,
        Err(outcome) => return outcome,
    };
    // Before anything runs: a report that cannot be written is found now, not after a long
    // install.
    let report_file = match open_report(&settings) {
        Ok(f) => f,
        Err(outcome) => return outcome,
    };
    let held = hold_output(&settings);
    match sys::install_signal_handlers() {
        Ok(signals) => {
            let sup = Supervisor {
                settings: &settings,
                inv: plan.inv.as_ref(),
                writes: plan.writes,
                signals: &signals,
                record: RefCell::new(None),
                held: held.as_ref(),
                patterns,
            };
            let mut report = Report {
                command: settings
                    .command
                    .iter()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect(),
                installer: plan.inv.as_ref().map(|i| i.installer.name.to_owned()),
                ..Report::default()
            };
            let outcome = sup.run(&mut report);
            if let Some(h) = &held {
                if outcome == Outcome::Success {
                    h.discard();
                } else {
                    h.show(settings.retries + 1);
                }
            }
            if let (Some(file), Some(path)) = (&report_file, &settings.report) {
                write_report(&mut report, outcome, file, path);
            }
            outcome
        }
        Err(e) => {
            ui::error(&format!("cannot set up signal handling: {e}"));
            Outcome::SteadyFailed
        }
    }
}

/// The `--retry-on-output` patterns, compiled; `Err` (said why) when one is not a regular
/// expression.
fn retry_patterns(settings: &Settings) -> Result<Vec<regex::Regex>, Outcome> {
    let named = if settings.retry_on_output_from_env {
        format!("in {}", crate::env::RETRY_ON_OUTPUT)
    } else {
        "for --retry-on-output".to_owned()
    };
    match compile_patterns(&settings.retry_on_output, &named) {
        Ok(p) => Ok(p),
        Err(e) => {
            ui::error(&e);
            ui::hint(
                "give a regular expression (Rust regex syntax), e.g. --retry-on-output 'Connection reset|timed out'",
            );
            Err(Outcome::SteadyFailed)
        }
    }
}

/// The `--report` file, opened; `Err` (said why) when it cannot be written.
fn open_report(settings: &Settings) -> Result<Option<std::fs::File>, Outcome> {
    match settings.report.as_deref().map(report::open).transpose() {
        Ok(f) => Ok(f),
        Err(e) => {
            let path = settings.report.as_deref().unwrap_or(Path::new(""));
            ui::error(&format!(
                "cannot write the report to `{}`: {e}; the command was not run",
                path.display()
            ));
            ui::hint("give --report (or STEADY_REPORT) a file in a directory you can write to");
            Err(Outcome::SteadyFailed)
        }
    }
}

/// Appends the run's report, with its exit status, to `file` (at `path`).
fn write_report(report: &mut Report, outcome: Outcome, file: &std::fs::File, path: &Path) {
    report.exit_code = outcome.code();
    if let Err(e) = report.append(file) {
        ui::warn(&format!(
            "cannot write the report to `{}`: {e}",
            path.display()
        ));
    }
}

/// Says that failed attempt `attempt_no` is not retried, and `why`.
fn say_not_retried(attempt_no: u32, done: &Done, why: &str) {
    ui::status(&format!(
        "attempt {attempt_no} failed ({}); {why}",
        done.result.ending.describe()
    ));
}

/// The run's outcome when steady was told to stop by `sig` between attempts.
fn stopped_by(sig: nix::sys::signal::Signal) -> Outcome {
    Outcome::Signaled {
        signal: sig as i32,
        reraise: true,
    }
}

/// A retried attempt's action in the summary: what was done before the retry, then `retry`.
fn retry_action(actions: &[String]) -> String {
    if actions.is_empty() {
        "retry".into()
    } else {
        format!("{}; retry", actions.join(", "))
    }
}

/// Removes the trash directories a killed run left in the cache `dir`.
fn sweep_trash(dir: &Path) {
    let swept = crate::recovery::clean::remove::sweep_trash(dir);
    if swept > 0 {
        ui::detail(&format!(
            "removed {swept} trash director(ies) a killed run left at `{}`",
            dir.display()
        ));
    }
}

/// The file that holds the command's output for `--output on-failure`, when it is asked for
/// and steady's stdout or stderr is not a terminal (a terminal stays a terminal: someone is
/// watching, and a prompt must be seen). Without one the output is shown live.
fn hold_output(settings: &Settings) -> Option<Held> {
    if !settings.hold_output {
        return None;
    }
    if sys::is_terminal(1) && sys::is_terminal(2) {
        ui::detail(
            "--output on-failure: stdout and stderr are a terminal, so the output is shown live",
        );
        return None;
    }
    match Held::new() {
        Ok(h) => Some(h),
        Err(e) => {
            ui::warn(&format!(
                "cannot make a private temp file to hold the output ({e}); it is shown live"
            ));
            None
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
    report_spawn_failure(argv, &Ending::from_spawn_error(&err))
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

/// The cache the run locks and may clear: `--cache`, else the installer's own, for commands
/// that write it.
pub fn locate_cache(
    settings: &Settings,
    inv: Option<&Invocation>,
    writes: bool,
    signals: &SignalPipe,
) -> Option<CacheLocation> {
    if let Some(path) = &settings.cache {
        let path = std::path::absolute(path).unwrap_or_else(|_| path.clone());
        return Some(CacheLocation::Dir {
            path,
            source: "--cache".into(),
        });
    }
    // A --shared reader of a read-only subcommand locks the cache too: that keeps writers out.
    let inv = inv.filter(|_| writes || settings.shared)?;
    let mut ask = |argv: &[OsString], timeout| {
        let r = attempt::run_helper(argv, timeout, signals);
        if r.ending.succeeded() {
            Some(String::from_utf8_lossy(&r.stdout_tail).into_owned())
        } else {
            ui::detail(&format!(
                "`{}` failed ({}); using the default cache",
                ui::command_line(argv),
                r.ending.describe()
            ));
            None
        }
    };
    Some(locate::locate(inv, &mut ask))
}

struct Supervisor<'a> {
    settings: &'a Settings,
    inv: Option<&'a Invocation>,
    writes: bool,
    signals: &'a SignalPipe,
    /// The attempt's processes, recorded beside the lock while it runs, so that if steady is
    /// killed with SIGKILL the next holder can stop them. Ended before the lock is released.
    record: RefCell<Option<lock::leftovers::Record>>,
    /// Where the output goes with `--output on-failure`.
    held: Option<&'a Held>,
    /// `--retry-on-output`, compiled.
    patterns: Vec<regex::Regex>,
}

impl Supervisor<'_> {
    fn run(&self, report: &mut Report) -> Outcome {
        let s = self.settings;
        if let Err(e) = sys::become_subreaper() {
            ui::detail(&format!(
                "cannot become a child subreaper ({e}); escaped processes may be missed"
            ));
        }
        let deadline = s.deadline.map(|d| Instant::now() + d);
        let cache_dir = self.cache_dir(report);
        let mut env: Vec<(OsString, OsString)> =
            s.envs.iter().map(|(k, v)| (k.into(), v.into())).collect();
        let mut _held = None;
        // An installer with its own lock (apt) waits on that one: steady's would not be seen.
        let own_lock = self.inv.and_then(|i| i.installer.own_lock_words());
        if let Some(words) = &own_lock {
            ui::detail(words);
        }
        let lock_paths: Vec<PathBuf> = cache_dir
            .iter()
            .filter(|_| own_lock.is_none())
            .chain(&s.locks)
            .cloned()
            .collect();
        if !lock_paths.is_empty() && !s.no_lock {
            let cache = cache_dir.as_deref().filter(|_| own_lock.is_none());
            match self.lock(&lock_paths, cache, deadline) {
                Ok(locks) => {
                    self.locked(&locks, &mut env, report);
                    _held = Some(locks);
                }
                Err(e) => return self.lock_failed(e),
            }
        }
        if let Some(dir) = &cache_dir {
            sweep_trash(dir);
        }
        let policy = RetryPolicy {
            retries: s.retries,
            backoff: s.backoff,
            backoff_max: s.backoff_max,
            clean: s.clean,
            retry_on_exit: s.retry_on_exit.clone(),
            retry_on_output: self.patterns.clone(),
        };
        let mut recovery = Recovery::new(self.inv, cache_dir, policy.clone(), s.mitigate, &s.envs);
        let outcome = self.attempts(&env, deadline, &policy, &mut recovery, &mut _held, report);
        // The tree is gone (or only daemons of a success are left, which stay): the record
        // goes before the lock.
        self.record.borrow_mut().take();
        report.mitigations = recovery.applied.clone();
        outcome
    }

    /// The cache the command uses, said and put in the report; `None` when it has none.
    fn cache_dir(&self, report: &mut Report) -> Option<PathBuf> {
        match locate_cache(self.settings, self.inv, self.writes, self.signals) {
            Some(CacheLocation::Dir { path, source }) => {
                ui::detail(&format!("cache `{}` ({source})", path.display()));
                report.cache = Some(path.display().to_string());
                Some(path)
            }
            Some(CacheLocation::Disabled { reason }) => {
                ui::detail(&format!("no shared cache: {reason}"));
                None
            }
            None => None,
        }
    }

    /// Once `locks` are held: says what runs unlocked, tells the command about them in `env`,
    /// puts them in the report, and begins the record of the attempt's processes.
    fn locked(
        &self,
        locks: &lock::Locks,
        env: &mut Vec<(OsString, OsString)>,
        report: &mut Report,
    ) {
        let s = self.settings;
        for (key, reason) in &locks.unlocked {
            ui::warn(&format!(
                "running without a lock on `{key}`: {reason}; runs sharing it at the same time may corrupt it"
            ));
        }
        if let Some(v) = locks.held_env() {
            env.push((lock::HELD_ENV.into(), v));
        }
        report.lock = Some(locks.describe());
        // Before the command runs: a dead holder's leftovers are stopped first.
        let record = lock::leftovers::Record::begin(locks, s.lock_dir.as_deref());
        env.extend(record.as_ref().map(lock::leftovers::Record::env));
        *self.record.borrow_mut() = record;
    }

    /// The longest wait for the locks from now: the smaller of `--lock-timeout` and what is
    /// left of `--deadline`.
    fn lock_wait(&self, deadline: Option<Instant>) -> Option<Duration> {
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        match (self.settings.lock_timeout, left) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Takes the local locks, then the cache's lock beyond this machine where `--lock-url`
    /// asks for one.
    fn lock(
        &self,
        paths: &[PathBuf],
        cache: Option<&Path>,
        deadline: Option<Instant>,
    ) -> Result<lock::Locks, LockError> {
        let s = self.settings;
        #[cfg(feature = "postgres")]
        let remote = match (&s.lock_server, cache) {
            (Some(server), Some(cache)) => Some(lock::RemoteRequest {
                backend: server,
                cache,
                namespace: s.lock_namespace.as_deref(),
            }),
            (Some(_), None) => {
                ui::detail("no cache to lock, so --lock-url is not used");
                None
            }
            (None, _) => None,
        };
        #[cfg(not(feature = "postgres"))]
        let remote = cache.and(None);
        lock::acquire(&LockRequest {
            paths,
            lock_dir: s.lock_dir.as_deref(),
            wait: self.lock_wait(deadline),
            shared: s.shared,
            require: s.require_lock,
            progress_every: s.lock_progress,
            remote,
        })
    }

    /// Before an attempt: the lock beyond this machine, taken again if it was lost (while the
    /// last attempt ran, or since). `Some` ends the run.
    fn keep_remote(
        &self,
        held: &mut Option<lock::Locks>,
        deadline: Option<Instant>,
    ) -> Option<Outcome> {
        let remote = held.as_mut()?.remote.as_mut()?;
        let why = remote.check(Instant::now()).err()?;
        let give_up = self.lock_wait(deadline).map(|w| Instant::now() + w);
        match remote.reacquire(give_up) {
            Ok(()) => None,
            Err(LockError::Remote { failure, message }) => Some(remote_failed(
                failure,
                &format!("lost the lock ({why}), and cannot take it again: {message}"),
                "the command was not retried",
            )),
            Err(e) => Some(self.lock_failed(e)),
        }
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
            LockError::Remote { failure, message } => {
                remote_failed(failure, &message, "the command was not run")
            }
        }
    }

    /// The attempts, each followed by a decision: stop with the outcome, or act (clean,
    /// mitigate), back off and retry.
    fn attempts(
        &self,
        base_env: &[(OsString, OsString)],
        deadline: Option<Instant>,
        policy: &RetryPolicy,
        recovery: &mut Recovery,
        held: &mut Option<lock::Locks>,
        report: &mut Report,
    ) -> Outcome {
        self.say_stall_detection();
        let mut stdin = Replay::new();
        let mut history: Vec<String> = Vec::new();
        let mut attempt_no = 1;
        loop {
            let started = SystemTime::now();
            recovery.before_attempt(held.is_some());
            let done = match self
                .one_attempt(attempt_no, base_env, deadline, recovery, held, &mut stdin)
            {
                Ok(done) => done,
                Err(outcome) => return outcome,
            };
            if let Some(h) = self.held {
                h.end_attempt(attempt_no, done.words());
            }
            recovery.after_attempt(&done.result);
            let mut record = done.record(attempt_no, started);
            let stop = |record: AttemptRecord, report: &mut Report, history: &[String]| {
                report.attempts.push(record);
                self.finish(
                    &done.result.ending,
                    attempt_no,
                    history,
                    done.lock_lost.as_deref(),
                    done.result.lock_holder.as_deref(),
                )
            };
            let (clean, mitigations) = match self.decide(&done, recovery, attempt_no, &stdin) {
                Step::Stop(why) => {
                    record.action = format!("stop: {why}");
                    return stop(record, report, &history);
                }
                Step::Retry { clean, mitigations } => (clean, mitigations),
            };
            let delay = policy.delay(attempt_no + 1, crate::recovery::retry::jitter_seed());
            if deadline.is_some_and(|d| Instant::now() + delay >= d) {
                record.action = "stop: no time left before --deadline".into();
                say_not_retried(attempt_no, &done, "no time left before --deadline to retry");
                return stop(record, report, &history);
            }
            let did = self.prepare_retry(&clean, &mitigations, recovery, held);
            // Told to stop during the clean: the run ends here, and no retry is announced.
            if let Some(sig) = sys::stop_signal_pending() {
                record.action = format!("stop: {sig}");
                report.attempts.push(record);
                let why = format!("stopped by {sig}, so it is not retried");
                say_not_retried(attempt_no, &done, &why);
                return stopped_by(sig);
            }
            let mitigated: Vec<String> = mitigations.iter().map(|m| m.describe()).collect();
            history.push(self.announce_retry(attempt_no, &done, &did, &mitigated, delay));
            let mut actions = did;
            if let Some(cmd) = &self.settings.on_retry {
                actions.push(self.on_retry(cmd, attempt_no, &done, base_env, recovery, deadline));
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    // The hook used up the run's time: no retry, as when the back-off would.
                    history.pop();
                    actions.push("stop: no time left before --deadline".into());
                    record.action = actions.join(", ");
                    let why = "--on-retry ran into --deadline, so it is not retried";
                    say_not_retried(attempt_no, &done, why);
                    return stop(record, report, &history);
                }
            }
            record.action = retry_action(&actions);
            report.attempts.push(record);
            if let Some(sig) = self.sleep(delay) {
                return stopped_by(sig);
            }
            attempt_no += 1;
        }
    }

    /// Says that attempt `attempt_no` failed and what was done before the retry; returns the
    /// summary's entry for it.
    fn announce_retry(
        &self,
        attempt_no: u32,
        done: &Done,
        did: &[String],
        mitigated: &[String],
        delay: Duration,
    ) -> String {
        let total = self.settings.retries + 1;
        let and_did = |sep: &str| {
            if did.is_empty() {
                String::new()
            } else {
                format!("{sep}{}", did.join(", "))
            }
        };
        ui::warn(&format!(
            "attempt {attempt_no} of {total} failed ({}, {}){}; retrying in {}",
            done.result.ending.describe(),
            done.class,
            and_did("; "),
            ui::human(delay)
        ));
        for m in mitigated {
            ui::detail(&format!("mitigation: {m}"));
        }
        format!("{}{}", done.result.ending.describe(), and_did(", "))
    }

    fn say_stall_detection(&self) {
        ui::detail(&match self.settings.stall {
            Some(d) => format!(
                "stall detection: an attempt silent and idle for {} is killed",
                ui::human(d)
            ),
            None => "stall detection: off".to_owned(),
        });
    }

    /// Runs attempt `attempt_no` under the lock (taken again first if the lock beyond this
    /// machine was lost) and classifies how it ended; `Err` ends the run.
    fn one_attempt(
        &self,
        attempt_no: u32,
        base_env: &[(OsString, OsString)],
        deadline: Option<Instant>,
        recovery: &Recovery,
        held: &mut Option<lock::Locks>,
        stdin: &mut Replay,
    ) -> Result<Done, Outcome> {
        let s = self.settings;
        let total = s.retries + 1;
        let argv = match self.inv {
            Some(i) => i.with_own_lock_wait(&recovery.argv(&s.command), s.lock_timeout),
            None => recovery.argv(&s.command),
        };
        let mut env = base_env.to_vec();
        env.extend(recovery.env.iter().map(|(k, v)| (k.into(), v.into())));
        env.push((crate::env::ATTEMPT.into(), attempt_no.to_string().into()));
        env.push((crate::env::ATTEMPTS.into(), total.to_string().into()));
        let output = |fd| {
            if sys::is_terminal(fd) {
                Output::Terminal
            } else if let Some(h) = self.held {
                Output::Hold(h.fd())
            } else {
                Output::Forward
            }
        };
        // The timeout is a span, started by the attempt when its command starts: a wait for
        // the lock before it counts only against --deadline and --lock-timeout.
        let spec = AttemptSpec {
            argv: &argv,
            env: &env,
            timeout: s.timeout,
            deadline,
            stall: s.stall,
            lock_wait: self.inv.map_or(&[][..], |i| i.installer.recovery.lock_wait),
            lock_wait_limit: s.lock_timeout,
            kill_after: s.kill_after,
            stdout: output(1),
            stderr: output(2),
            same_group: sys::owns_foreground_terminal(),
        };
        if attempt_no > 1 {
            ui::group_start(&format!("attempt {attempt_no} of {total}"));
        }
        ui::detail(&format!(
            "attempt {attempt_no} of {total}: `{}`",
            ui::command_line(&argv)
        ));
        if let Some(outcome) = self.keep_remote(held, deadline) {
            return Err(outcome);
        }
        let watcher = held
            .as_mut()
            .and_then(|h| h.remote.as_deref_mut())
            .map(|r| r as &mut dyn attempt::Watcher);
        let mut record = self.record.borrow_mut();
        let hooks = attempt::Hooks {
            watcher,
            stdin: Some(stdin),
            record: record.as_mut().map(|r| r as &mut dyn attempt::Recorder),
            awaited: Some(awaited_lock),
        };
        let result = attempt::run_watched(&spec, hooks, self.signals);
        drop(record);
        let lock_lost = (result.ending == Ending::Stopped(StopReason::LockLost))
            .then(|| held.as_ref().and_then(|h| h.remote.as_ref()?.lost()))
            .map(|why| why.unwrap_or_else(|| "it is gone".into()));
        if attempt_no > 1 {
            ui::group_end();
        }
        Ok(Done::classify(
            self.inv, recovery, result, lock_lost, attempt_no,
        ))
    }

    /// What follows an attempt: stop, or retry with a clean and mitigations.
    fn decide(
        &self,
        done: &Done,
        recovery: &mut Recovery,
        attempt_no: u32,
        stdin: &Replay,
    ) -> Step {
        let s = self.settings;
        let step = if !done.failed {
            Step::Stop("succeeded".into())
        } else if done.lock_lost.is_some() {
            // Not the command's failure: nothing to clean or mitigate. The lock is taken
            // again before the retry.
            if attempt_no > s.retries {
                Step::Stop(format!("no retries left (--retries {})", s.retries))
            } else {
                Step::Retry {
                    clean: Clean::None,
                    mitigations: Vec::new(),
                }
            }
        } else {
            let step = recovery.after_failure(&done.diag, attempt_no);
            recovery.overrule(
                step,
                &done.diag,
                &done.result.ending,
                &done.tail,
                attempt_no,
            )
        };
        let step = match (step, stdin.lost()) {
            // A retry would read different input (or none): worse than stopping.
            (Step::Retry { .. }, Some(why)) => {
                ui::status(&format!(
                    "attempt {attempt_no} failed ({}); not retrying: the command read piped stdin that steady cannot give it again ({why})",
                    done.result.ending.describe()
                ));
                ui::status(
                    "hint: save the input to a file and pass that, or give it through a pipe of at most 1 GiB with TMPDIR on a writable filesystem",
                );
                Step::Stop("its stdin cannot be replayed".into())
            }
            (step, _) => step,
        };
        match step {
            Step::Stop(why) => {
                if done.failed && !matches!(done.diag.failure, crate::failure::Failure::NotRunnable)
                {
                    ui::detail(&format!("not retrying: {why}"));
                }
                Step::Stop(why)
            }
            Step::Retry { clean, mitigations } if s.shared && clean != Clean::None => {
                ui::detail("not clearing the cache: with --shared, other readers may be using it");
                Step::Retry {
                    clean: Clean::None,
                    mitigations,
                }
            }
            retry => retry,
        }
    }

    /// Cleans and mitigates before a retry; what was done, in words.
    fn prepare_retry(
        &self,
        clean: &Clean,
        mitigations: &[crate::recovery::mitigate::Applied],
        recovery: &mut Recovery,
        held: &mut Option<lock::Locks>,
    ) -> Vec<String> {
        let mut did = Vec::new();
        // Under the lost-lock watch of the lock beyond this machine, as the attempt is.
        let watcher = held
            .as_mut()
            .and_then(|h| h.remote.as_deref_mut())
            .map(|r| r as &mut dyn attempt::Watcher);
        did.extend(recovery.clean(clean, self.signals, watcher));
        if *clean != Clean::None
            && let Some(h) = held.as_mut()
        {
            h.follow_recreated_dir();
        }
        did.extend(
            mitigations
                .iter()
                .map(|m| format!("set {}={}", m.var, m.value)),
        );
        did
    }

    /// Runs `--on-retry` after attempt `attempt_no` failed: `sh -c CMD`, supervised like an
    /// attempt (its own process group, the tree killed at `--timeout` or the deadline, stop
    /// signals passed on), with the run's environment and `STEADY_ATTEMPT`, `STEADY_ATTEMPTS`,
    /// `STEADY_CLASS` and `STEADY_EXIT`; its stdout goes to steady's stderr, its stdin is
    /// empty, and processes it leaves behind are ended before the retry. A failure is said,
    /// not fatal. Returns what happened, for the report.
    fn on_retry(
        &self,
        cmd: &str,
        attempt_no: u32,
        done: &Done,
        base_env: &[(OsString, OsString)],
        recovery: &Recovery,
        deadline: Option<Instant>,
    ) -> String {
        let s = self.settings;
        let argv = hook::argv(cmd);
        let mut env = base_env.to_vec();
        env.extend(recovery.env.iter().map(|(k, v)| (k.into(), v.into())));
        let class = match &done.lock_lost {
            Some(_) => "lock lost",
            None => done.diag.failure.name(),
        };
        for (k, v) in [
            (crate::env::ATTEMPT, attempt_no.to_string()),
            (crate::env::ATTEMPTS, (s.retries + 1).to_string()),
            (crate::env::CLASS, class.to_owned()),
            (
                crate::env::EXIT,
                exit_status(&done.result.ending).to_string(),
            ),
        ] {
            env.push((k.into(), v.into()));
        }
        let spec = AttemptSpec {
            argv: &argv,
            env: &env,
            timeout: s.timeout,
            deadline,
            stall: None,
            lock_wait: &[],
            lock_wait_limit: None,
            kill_after: s.kill_after,
            stdout: Output::Stderr,
            stderr: Output::Forward,
            same_group: sys::owns_foreground_terminal(),
        };
        ui::detail(&format!("--on-retry: `{cmd}`"));
        let result = attempt::run(&spec, self.signals);
        let left = attempt::tree::descendants();
        if !left.is_empty() {
            ui::detail(&format!(
                "--on-retry left {} process(es) running; ending them before the retry",
                left.len()
            ));
            // No leader is left to reap: steady's own pid stands in, and is never a child.
            attempt::tree::end_all(
                self.signals,
                &attempt::tree::TreeKill {
                    pgid: None,
                    cgroup: None,
                    leader: std::process::id() as i32,
                    termed: false,
                    kill_at: Instant::now() + s.kill_after,
                },
            );
        }
        if !result.ending.succeeded() && !matches!(result.ending, Ending::Interrupted { .. }) {
            ui::warn(&format!(
                "--on-retry `{cmd}` failed ({}); retrying all the same",
                result.ending.describe()
            ));
        }
        format!("--on-retry {}", result.ending.describe())
    }

    /// Waits `delay`, unless steady is told to stop: then returns that signal.
    fn sleep(&self, delay: std::time::Duration) -> Option<nix::sys::signal::Signal> {
        let until = Instant::now() + delay;
        loop {
            if let Some(a) = sys::take_signals()
                .into_iter()
                .find(|a| sys::STOP_SIGNALS.contains(&a.signal))
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

    /// The run's outcome from the last attempt's ending; `lock_lost` says why the lock was
    /// lost when that ended it, `lock_holder` who held the lock the installer waited for.
    fn finish(
        &self,
        ending: &Ending,
        attempts: u32,
        history: &[String],
        lock_lost: Option<&str>,
        lock_holder: Option<&str>,
    ) -> Outcome {
        let s = self.settings;
        // The held output comes before the lines that say how the run ended.
        if let Some(h) = self.held.filter(|_| !ending.succeeded()) {
            h.show(s.retries + 1);
        }
        let outcome = match ending {
            Ending::Exited(0) => Outcome::Success,
            Ending::Exited(c) => Outcome::Command(*c),
            Ending::Signaled(sig) => Outcome::Signaled {
                signal: *sig,
                reraise: false,
            },
            Ending::Stopped(reason) => self.stopped(*reason, lock_lost, lock_holder),
            Ending::Interrupted { signal, ended } => match ended {
                sys::Ended::Exited(c) => Outcome::Command(*c),
                sys::Ended::Signaled(_) => Outcome::Signaled {
                    signal: *signal as i32,
                    reraise: true,
                },
            },
            other => return report_spawn_failure(&s.command, other),
        };
        self.say_attempts(&outcome, ending, attempts, history);
        outcome
    }

    /// The outcome of an attempt the watchdog stopped for `reason`, said with why.
    fn stopped(
        &self,
        reason: StopReason,
        lock_lost: Option<&str>,
        lock_holder: Option<&str>,
    ) -> Outcome {
        let s = self.settings;
        let why = match reason {
            StopReason::Timeout => format!(
                "ran past --timeout {}",
                ui::human(s.timeout.unwrap_or_default())
            ),
            StopReason::Deadline => format!(
                "ran past --deadline {}",
                ui::human(s.deadline.unwrap_or_default())
            ),
            StopReason::Stall => format!(
                "printed nothing, used almost no CPU, and read, wrote or received no bytes for --stall {} (hung)",
                ui::human(s.stall.unwrap_or_default())
            ),
            StopReason::LockLost => {
                format!("lost its lock ({})", lock_lost.unwrap_or("it is gone"))
            }
            StopReason::LockWait => format!(
                "waited for its own lock for --lock-timeout {}, held by {}",
                ui::human(s.lock_timeout.unwrap_or_default()),
                lock_holder.unwrap_or("a process steady cannot see")
            ),
        };
        ui::error(&format!(
            "`{}` {why}; steady killed its whole process tree",
            ui::command_line(&s.command)
        ));
        if reason == StopReason::LockLost {
            // Why it was lost is said above; whether the server is up now is not
            // known here (an ended session leaves it up), so no guess about it.
            ui::error(
                "hint: the lock no longer kept other machines out of the cache, so the command was stopped; run again, or give --retries to have steady take the lock again and retry by itself",
            );
            Outcome::LockTimeout
        } else if reason == StopReason::LockWait {
            ui::hint(
                "that process uses the installer's cache outside steady's lock; let it finish, run it through steady too, or give a longer --lock-timeout",
            );
            Outcome::LockTimeout
        } else {
            Outcome::WatchdogKilled
        }
    }

    /// After more than one attempt, says how the run ended: on which attempt it succeeded, or
    /// after how many it gave up.
    fn say_attempts(&self, outcome: &Outcome, ending: &Ending, attempts: u32, history: &[String]) {
        let s = self.settings;
        if attempts > 1 {
            if *outcome == Outcome::Success {
                ui::status(&format!(
                    "succeeded on attempt {attempts} of {} ({})",
                    s.retries + 1,
                    summarize(history)
                ));
            } else {
                let mut all = history.to_vec();
                all.push(ending.describe());
                ui::error(&format!(
                    "gave up after {attempts} attempts ({})",
                    summarize(&all)
                ));
            }
        }
    }
}

/// Says that the lock beyond this machine could not be had, what became of the command, and
/// what to do; the exit status: 75 when a later run may get it, 125 when the user must fix
/// something.
fn remote_failed(failure: RemoteFailure, message: &str, command: &str) -> Outcome {
    let (advice, outcome) = match failure {
        RemoteFailure::TimedOut => (
            "Wait longer with --lock-timeout, or stop the holder.",
            Outcome::LockTimeout,
        ),
        RemoteFailure::Unreachable => (
            "Check that the server is up and reachable, or run without --lock-url.",
            Outcome::LockTimeout,
        ),
        RemoteFailure::Refused => (
            "Fix the user, password or database in --lock-url (or PGPASSWORD).",
            Outcome::SteadyFailed,
        ),
    };
    ui::error(&format!("{message}; {command}. {advice}"));
    outcome
}

/// The kernel lock one of `tree` waits for (a `->` line of `/proc/locks`), its holder and its
/// file: for an installer that says it waits for a lock of its own.
fn awaited_lock(tree: &[i32]) -> Option<attempt::Awaited> {
    use lock::holders;
    let locks = holders::proc_locks();
    let waiter = locks.iter().find(|l| l.waiting && tree.contains(&l.pid))?;
    let same = |l: &&holders::ProcLock| {
        (l.major, l.minor, l.ino) == (waiter.major, waiter.minor, waiter.ino)
    };
    let holder = locks
        .iter()
        .filter(same)
        .find(|l| !l.waiting && l.pid > 0)
        .map(|l| l.pid);
    let path = holders::open_files(waiter.pid)
        .into_iter()
        .find(|f| waiter.is_on(f.dev, f.ino))
        .map(|f| f.target.display().to_string());
    Some(attempt::Awaited {
        holder,
        holder_words: holder.map_or_else(
            || "a process steady cannot see (another user or PID namespace)".to_owned(),
            |pid| holders::describe_pid(pid).describe(),
        ),
        path,
    })
}

/// One attempt as the run loop looks at it afterwards.
struct Done {
    result: attempt::AttemptResult,
    diag: classify::Diagnosis,
    /// Why the lock beyond this machine was lost, when that ended the attempt.
    lock_lost: Option<String>,
    /// The failure in words: the lost lock's reason, else the diagnosis.
    class: String,
    /// It failed: it did not succeed, or it succeeded from damaged cache entries.
    failed: bool,
    /// The tail of its output, both streams, as classified.
    tail: String,
}

impl Done {
    /// Classifies how attempt `attempt_no` ended and says so (`-v`).
    fn classify(
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
    fn words(&self) -> String {
        if !self.failed {
            self.result.ending.describe()
        } else {
            format!("{}, {}", self.result.ending.describe(), self.class)
        }
    }

    /// The report's record of this attempt; its action is filled in by the decision.
    fn record(&self, number: u32, started: SystemTime) -> AttemptRecord {
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
fn exit_status(ending: &Ending) -> i32 {
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
fn summarize(endings: &[String]) -> String {
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

/// Used by `doctor`: the path of the cache dir for a plan, without locking.
pub fn cache_dir_of(loc: &Option<CacheLocation>) -> Option<PathBuf> {
    match loc {
        Some(CacheLocation::Dir { path, .. }) => Some(path.clone()),
        _ => None,
    }
}
