//! The supervisor of one wrapped run: holds the lock, runs each attempt under the watchdog,
//! asks recovery what follows a failure (clean, mitigate, back off, retry), keeps the lock
//! while anything of an attempt is alive, and ends with one `Outcome`.

use super::done::{exit_status, summarize};
use super::*;

pub(super) struct Supervisor<'a> {
    pub(super) settings: &'a Settings,
    pub(super) inv: Option<&'a Invocation>,
    pub(super) writes: bool,
    pub(super) signals: &'a SignalPipe,
    /// The attempt's processes, recorded beside the lock while it runs, so that if steady is
    /// killed with SIGKILL the next holder can stop them. Ended before the lock is released.
    pub(super) record: RefCell<Option<lock::leftovers::Record>>,
    /// Where the output goes with `--output on-failure`.
    pub(super) held: Option<&'a Held>,
    /// `--retry-on-output`, compiled.
    pub(super) patterns: Vec<regex::Regex>,
}

impl Supervisor<'_> {
    pub(super) fn run(&self, report: &mut Report) -> Outcome {
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
        // Work that needs no lock is done before it, so that a queue of runs hands the lock
        // on sooner.
        crate::attempt::cgroup::prepare();
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
                    "gave up waiting for the lock on `{}` after {}, held by {who}; the command was not run",
                    path.display(),
                    ui::human(waited)
                ));
                ui::hint("wait longer with --lock-timeout, or stop the holder");
                Outcome::LockTimeout
            }
            LockError::Interrupted(sig) => Outcome::Signaled {
                signal: sig as i32,
                reraise: true,
            },
            LockError::Unsafe(msg) => {
                ui::error(&format!("{msg}; the command was not run"));
                ui::hint("remove it, or choose another place with --lock-dir");
                Outcome::SteadyFailed
            }
            LockError::Unavailable(msg) => {
                ui::error(&format!(
                    "{msg}; the command was not run because STEADY_REQUIRE_LOCK=1"
                ));
                ui::hint(
                    "unset STEADY_REQUIRE_LOCK to run unlocked, or give --lock-dir a place that can be locked",
                );
                Outcome::LockTimeout
            }
            LockError::Remote { failure, message } => {
                remote_failed(failure, &message, "the command was not run")
            }
        }
    }

    /// The attempts, each followed by a decision: stop with the outcome, or act (clean,
    /// mitigate), back off and retry.
    // Just over 80 lines, on purpose: this loop is the spec's step 4 to 6 in order, and every
    // step it calls is already named; cutting it further would pass eight values around.
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
            "wait longer with --lock-timeout, or stop the holder",
            Outcome::LockTimeout,
        ),
        RemoteFailure::Unreachable => (
            "check that the server is up and reachable, or run without --lock-url",
            Outcome::LockTimeout,
        ),
        RemoteFailure::Refused => (
            "fix the user, password or database in --lock-url (or PGPASSWORD)",
            Outcome::SteadyFailed,
        ),
    };
    ui::error(&format!("{message}; {command}"));
    ui::hint(advice);
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
