//! What steady does after a failed attempt (spec section 3, step 6): stop when retrying cannot
//! help; after cache corruption, clean only what is broken (the named package, and every entry
//! the cache check finds damaged), falling back to one full clean when nothing is named or the
//! same package comes back; lower concurrency after resource exhaustion; apply the hang
//! mitigation after a hang; never clean for a hang, a timeout, a network error or a process
//! limit. Cleans run the installer's own commands, only on a directory that passes the safety
//! checks of `clean::check_cleanable`. A success that installed from damaged entries (uv's
//! silent success) is turned into a corruption failure by `silent_damage`.
//!
//! Foreign writers: an entry of the cache root that vanishes (or is replaced) during an
//! attempt, while steady holds the cache's lock, was removed by someone outside the lock (a
//! `uv cache clean` run without steady): the installer never removes its own buckets during an
//! install. A clean would not help and a full one would only widen the damage, so steady says
//! so, names a process that has the cache open if it finds one, and retries without a clean.

pub mod classify;
pub mod clean;
mod foreign;
pub mod mitigate;
pub mod retry;
pub mod verify;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::attempt;
use crate::failure::Failure;
use crate::installer::locate;
use crate::installer::{FullClean, Installer, Invocation, Layout, PackageClean, Verify};
use crate::recovery::classify::Diagnosis;
use crate::recovery::clean::remove;
use crate::recovery::retry::RetryPolicy;
use crate::sys::SignalPipe;
use crate::ui;
use mitigate::{Applied, Facts, Trigger};

/// How long an installer's own clean command may take (uv's waits on uv's own lock).
const CLEAN_TIMEOUT: Duration = Duration::from_secs(120);
/// The most packages cleaned one by one in a run before a full clean is cheaper.
const MAX_TARGETED: usize = 16;
/// The signature of a success that installed from damaged cache entries (`silent_damage`).
pub const SILENT_DAMAGE: &str = "exit 0, installed from a damaged cache entry";

/// When the cache is cleared before a retry (`--clean`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CleanMode {
    /// Clear the cache once, after the first failure that a clean could fix
    Auto,
    /// Clear the cache before every retry
    Always,
    /// Never clear the cache
    Never,
}

/// The clean that goes before a retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clean {
    None,
    Packages(Vec<String>),
    /// The installer's own repair that its message names (`dpkg --configure -a`).
    Repair(&'static [&'static str]),
    /// The installer's own check of every entry, which evicts the damaged ones.
    Verify,
    Full,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Stop with this attempt's result; the text says why (for `-v` and the report).
    Stop(String),
    Retry {
        clean: Clean,
        mitigations: Vec<Applied>,
    },
}

/// What moves the cache off a filesystem that cannot lock: the installer's own variable for
/// its cache directory (`UV_CACHE_DIR`, `CONDA_PKGS_DIRS`). Printed after `hint: `.
pub fn lock_unsupported_hint(installer: Option<&Installer>) -> String {
    let name = installer.map_or("installer", |i| i.name);
    match installer.and_then(|i| i.cache.dir_env.first()) {
        Some(var) => format!(
            "set {} to a local disk: the {name} cache's filesystem cannot hold {name}'s lock, and retrying cannot change that",
            var.name
        ),
        None => format!(
            "move the {name} cache to a local disk: its filesystem cannot hold {name}'s lock, and retrying cannot change that"
        ),
    }
}

/// What `Recovery::after_failure` does after a failure of this kind, in words, for `doctor
/// --explain-output` (retries are bounded by `--retries` and `--deadline` in every case).
pub fn action_words(failure: Failure) -> &'static str {
    match failure {
        Failure::Deterministic => "stop: retrying cannot fix this failure; the cache is left alone",
        Failure::DiskFull => "stop: the disk is full; free space, then run again",
        Failure::LockUnsupported => {
            "stop: the cache's filesystem cannot hold the installer's lock; move the cache"
        }
        Failure::Stopped => "stop: the command was stopped",
        Failure::NotRunnable => "stop: the command cannot be run",
        Failure::Corruption => {
            "clean the broken entries (the named package, what the cache check finds; else one full clean) or run the repair the installer names, then retry"
        }
        Failure::Network => "retry after a back-off, no clean",
        Failure::Resource => {
            "retry with lower concurrency (the installer's concurrency variable), no clean"
        }
        Failure::InstallerLock => "retry after a back-off, no clean",
        Failure::Hang => "retry with the hang mitigation, no clean",
        Failure::Unknown | Failure::Signal => "one full clean and one retry, then stop",
    }
}

pub struct Recovery<'a> {
    inv: Option<&'a Invocation>,
    cache: Option<PathBuf>,
    policy: RetryPolicy,
    /// The machine facts, read only when a mitigation could apply: reading `/proc` costs a
    /// trivial run more than everything else it does.
    facts: Option<Facts>,
    mitigate: bool,
    /// Knobs the user set themselves (environment or `--env`): never overridden.
    user_env: Vec<String>,
    /// Variables steady sets for the next attempts (mitigations).
    pub env: Vec<(String, String)>,
    reinstall: Vec<String>,
    cleaned_packages: Vec<String>,
    full_cleans: u32,
    verified: u32,
    repairs: u32,
    unknown_retries: u32,
    /// The cache root's entries (name, inode) when the running attempt started, taken only
    /// while steady held the cache's lock.
    entries_at_start: Option<Vec<(OsString, u64)>>,
    /// What the last attempt saw vanish from the cache (see [`Recovery::after_attempt`]).
    vanished: Vec<String>,
    /// Failures after which the cache was seen changed by someone outside the lock.
    pub foreign_writes: u32,
    /// Every mitigation applied in this run, in order.
    pub applied: Vec<Applied>,
}

impl<'a> Recovery<'a> {
    pub fn new(
        inv: Option<&'a Invocation>,
        cache: Option<PathBuf>,
        policy: RetryPolicy,
        mitigate: bool,
        envs: &[(String, String)],
    ) -> Self {
        // From the emulator on, when there is one: the emulation check reads argv[0].
        let facts = inv
            .filter(|i| mitigate && i.installer.recovery.concurrency_env.is_some())
            .map(|i| Facts::gather(&i.emulator.clone().unwrap_or_else(|| i.argv())));
        let mut r = Recovery {
            inv,
            cache,
            policy,
            facts,
            mitigate,
            user_env: envs.iter().map(|(k, _)| k.clone()).collect(),
            env: Vec::new(),
            reinstall: Vec::new(),
            cleaned_packages: Vec::new(),
            full_cleans: 0,
            verified: 0,
            repairs: 0,
            unknown_retries: 0,
            entries_at_start: None,
            vanished: Vec::new(),
            foreign_writes: 0,
            applied: Vec::new(),
        };
        for trigger in [Trigger::Emulated, Trigger::LowProcessLimit] {
            if let Some(a) = r.mitigation(trigger) {
                ui::status(&format!("applying {}", a.describe()));
                r.apply(a);
            }
        }
        r
    }

    fn installer(&self) -> Option<&'static Installer> {
        self.inv.map(|i| i.installer)
    }

    fn mitigation(&self, trigger: Trigger) -> Option<Applied> {
        if !self.mitigate {
            return None;
        }
        let installer = self.installer()?;
        let var = installer.recovery.concurrency_env?;
        let user_set = std::env::var_os(var).is_some() || self.user_env.iter().any(|k| k == var);
        let current = self
            .env
            .iter()
            .rev()
            .find(|(k, _)| k == var)
            .and_then(|(_, v)| v.parse().ok());
        mitigate::value_for(trigger, installer, self.facts.as_ref()?, current, user_set)
    }

    fn apply(&mut self, a: Applied) {
        self.env.retain(|(k, _)| k != a.var);
        self.env.push((a.var.to_owned(), a.value.clone()));
        self.applied.push(a);
    }

    /// The command for the next attempt: the user's, plus a reinstall of every package that
    /// may have been installed from a damaged cache entry.
    pub fn argv(&self, command: &[OsString]) -> Vec<OsString> {
        let Some(inv) = self.inv else {
            return command.to_vec();
        };
        let (Some(flag), false) = (
            inv.installer.recovery.reinstall_flag,
            self.reinstall.is_empty(),
        ) else {
            return command.to_vec();
        };
        if !inv.subcommand_in(inv.installer.recovery.reinstall_in) {
            return command.to_vec();
        }
        let mut args = inv.args.clone();
        let at = args.iter().position(|a| a == "--").unwrap_or(args.len());
        let extra = self
            .reinstall
            .iter()
            .flat_map(|p| [OsString::from(flag), OsString::from(p)]);
        args.splice(at..at, extra);
        inv.launcher.iter().cloned().chain(args).collect()
    }

    /// After an attempt that succeeded: whether it installed from damaged cache entries (a
    /// silent success, the worst outcome: uv installs an archive entry with files missing and
    /// exits 0). Runs only where it is needed: a cache layout steady can check, and a command
    /// that installs into an environment and can be told to reinstall. It checks the entries of
    /// the packages the output says were installed (nothing when nothing was), or every entry
    /// when the output cannot say (`-q`). A damaged one makes the attempt a corruption
    /// failure, so `after_failure` evicts every damaged entry and reinstalls them.
    pub fn silent_damage(&self, output: &str) -> Option<Diagnosis> {
        let inv = self.inv?;
        let cache = self.cache.as_deref()?;
        let r = &inv.installer.recovery;
        if r.reinstall_flag.is_none() || !inv.subcommand_in(r.reinstall_in) {
            return None;
        }
        let started = std::time::Instant::now();
        let (damaged, what) = match r.verify {
            Some(Verify::Layout(Layout::UvArchive)) => match verify::uv_installed(output) {
                Some(names) if names.is_empty() => {
                    ui::detail(&format!(
                        "the output says nothing was installed: no cache check ({:.2} ms)",
                        started.elapsed().as_secs_f64() * 1e3
                    ));
                    return None;
                }
                Some(names) => {
                    let (damaged, scanned) = verify::uv_installed_damaged(cache, &names);
                    let how = if scanned == 0 {
                        String::new()
                    } else {
                        format!(
                            " ({scanned} not found through uv's pointers: the cache was scanned)"
                        )
                    };
                    let n = plural(names.len(), "package");
                    (damaged, format!("the {n} installed{how}"))
                }
                None => (verify::uv_archive(cache), "every package".to_owned()),
            },
            _ => return None,
        };
        ui::detail(&format!(
            "checked the cache entries of {what} after the success in {:.2} ms: {}",
            started.elapsed().as_secs_f64() * 1e3,
            if damaged.is_empty() {
                "none damaged".to_owned()
            } else {
                format!("damaged: {}", damaged.join(", "))
            }
        ));
        let first = damaged.first()?.clone();
        ui::warn(&format!(
            "the command exited 0, but installed {} from damaged cache entries (files listed in RECORD are missing): the install is incomplete",
            damaged.join(", ")
        ));
        Some(Diagnosis {
            failure: Failure::Corruption,
            signature: Some(SILENT_DAMAGE),
            package: Some(first),
            repair: &[],
        })
    }

    /// Decides what follows failed attempt number `attempt` (from 1).
    pub fn after_failure(&mut self, diag: &Diagnosis, attempt: u32) -> Step {
        if let Some(why) = self.not_retried(diag, attempt) {
            return Step::Stop(why);
        }
        if self.foreign_writer_seen(diag) {
            return Step::Retry {
                clean: Clean::None,
                mitigations: Vec::new(),
            };
        }
        let mut mitigations = Vec::new();
        let mut clean = match self.clean_for(diag, &mut mitigations) {
            Ok(clean) => clean,
            Err(why) => return Step::Stop(why),
        };
        match self.policy.clean {
            CleanMode::Never => clean = Clean::None,
            CleanMode::Always => clean = Clean::Full,
            CleanMode::Auto => {}
        }
        if self.cache.is_none() || self.inv.is_none() {
            clean = Clean::None;
        }
        for m in &mitigations {
            self.apply(m.clone());
        }
        Step::Retry { clean, mitigations }
    }

    /// Why failed attempt number `attempt` is not retried at all (a failure a retry cannot
    /// fix, or no retries left), if so.
    fn not_retried(&self, diag: &Diagnosis, attempt: u32) -> Option<String> {
        match diag.failure {
            Failure::Deterministic => return Some("retrying cannot fix this failure".into()),
            Failure::DiskFull => {
                return Some("the disk is full; free space, then run again".into());
            }
            Failure::LockUnsupported => {
                ui::hint(&self.lock_unsupported_hint());
                return Some(
                    "the cache's filesystem cannot hold the installer's lock; retrying cannot help"
                        .into(),
                );
            }
            Failure::Stopped => return Some("the command was stopped".into()),
            Failure::NotRunnable => return Some("the command cannot be run".into()),
            _ => {}
        }
        if attempt > self.policy.retries {
            return Some(format!(
                "no retries left (--retries {})",
                self.policy.retries
            ));
        }
        None
    }

    /// The clean that failure `diag` calls for (before `--clean`), and the mitigations it
    /// adds to `mitigations`; `Err` says why it is not retried after all.
    fn clean_for(
        &mut self,
        diag: &Diagnosis,
        mitigations: &mut Vec<Applied>,
    ) -> Result<Clean, String> {
        Ok(match diag.failure {
            // The repair the message names, once; then as any corruption.
            // Counted when chosen: a repair that fails (not root) is not tried again.
            Failure::Corruption if !diag.repair.is_empty() && self.repairs == 0 => {
                self.repairs += 1;
                Clean::Repair(diag.repair)
            }
            Failure::Corruption => self.corruption_clean(diag),
            Failure::Unknown | Failure::Signal => {
                // The field practice: clear the cache and retry once. An unknown failure that
                // comes back is most likely a deterministic one steady has no signature for.
                if self.unknown_retries >= 1 {
                    return Err("an unexplained failure came back after a retry".into());
                }
                self.unknown_retries += 1;
                if self.full_cleans == 0 {
                    Clean::Full
                } else {
                    Clean::None
                }
            }
            Failure::Hang => {
                mitigations.extend(self.mitigation(Trigger::AfterHang));
                Clean::None
            }
            Failure::Resource => {
                mitigations.extend(self.mitigation(Trigger::AfterResource));
                Clean::None
            }
            _ => Clean::None,
        })
    }

    fn lock_unsupported_hint(&self) -> String {
        lock_unsupported_hint(self.installer())
    }

    /// The user's own rules over steady's decision: a failure that `rule` (`--retry-on-exit`,
    /// `--retry-on-output`, see `RetryPolicy::user_rule`) names is retried where steady would
    /// stop, with no clean (steady found nothing a clean would fix), while retries are left.
    /// A command stopped on purpose (a signal to steady, the deadline) or one that cannot be
    /// run is never retried.
    pub fn overrule(
        &self,
        step: Step,
        diag: &Diagnosis,
        ending: &attempt::Ending,
        output: &str,
        attempt: u32,
    ) -> Step {
        let Step::Stop(why) = &step else {
            return step;
        };
        let Some(rule) = self.policy.user_rule(ending, output) else {
            return step;
        };
        if matches!(diag.failure, Failure::Stopped | Failure::NotRunnable)
            || attempt > self.policy.retries
        {
            return step;
        }
        ui::detail(&format!(
            "{rule} retries it, though steady would stop ({why})"
        ));
        Step::Retry {
            clean: Clean::None,
            mitigations: Vec::new(),
        }
    }

    fn corruption_clean(&mut self, diag: &Diagnosis) -> Clean {
        let (Some(installer), Some(cache)) = (self.installer(), self.cache.as_deref()) else {
            return Clean::None;
        };
        let damaged = match installer.recovery.verify {
            Some(Verify::Layout(layout)) => verify::damaged(layout, cache),
            // The installer's own check comes first, once; a corruption after it is cleared.
            Some(Verify::Command(_)) if self.verified == 0 && self.full_cleans == 0 => {
                return Clean::Verify;
            }
            _ => Vec::new(),
        };
        let others: Vec<&str> = damaged
            .iter()
            .filter(|d| Some(*d) != diag.package.as_ref())
            .map(String::as_str)
            .collect();
        if !others.is_empty() {
            ui::status(&format!(
                "the cache check found more damaged entries: {}",
                others.join(", ")
            ));
        }
        for p in &damaged {
            if !self.reinstall.contains(p) {
                self.reinstall.push(p.clone());
            }
        }
        let full = || Clean::Full;
        let came_back = diag
            .package
            .as_ref()
            .is_some_and(|p| self.cleaned_packages.contains(p));
        let mut targets: Vec<String> = diag.package.iter().cloned().collect();
        targets.extend(
            damaged
                .into_iter()
                .filter(|d| Some(d) != diag.package.as_ref()),
        );
        if came_back
            || targets.is_empty()
            || installer.recovery.clean_package.is_none()
            || self.cleaned_packages.len() + targets.len() > MAX_TARGETED
        {
            return if self.full_cleans == 0 {
                full()
            } else {
                Clean::None
            };
        }
        Clean::Packages(targets)
    }

    /// Runs `clean` with the installer's own command, or steady's own removal, under
    /// `watcher` (the lock beyond this machine): when the lock is lost, the clean stops at
    /// once, since another machine may already be using the cache. Returns what was done, for
    /// the summary.
    pub fn clean(
        &mut self,
        clean: &Clean,
        signals: &SignalPipe,
        mut watcher: Option<&mut dyn attempt::Watcher>,
    ) -> Option<String> {
        if let Clean::Repair(words) = clean {
            // Not a clean of the cache: no cache path is touched, so none is checked.
            let argv: Vec<OsString> = words.iter().map(OsString::from).collect();
            return self.run_clean(
                clean,
                &argv,
                format!("ran `{}`, the repair the installer names", words.join(" ")),
                signals,
                watcher,
            );
        }
        let (Some(inv), Some(cache)) = (self.inv, self.cache.clone()) else {
            return None;
        };
        let installer = inv.installer;
        if *clean == Clean::None {
            return None;
        }
        // Decided once, on the resolved path; everything below acts on what was checked:
        // steady's own removal through the open directory, the installer's command on the
        // resolved path (no symlink, no trailing slash).
        let checked = match clean::check_cleanable(installer, &cache) {
            Ok(c) => c,
            Err(why) => {
                ui::warn(&format!(
                    "will not clear `{}`: {why}; retrying without a clean",
                    cache.display()
                ));
                return None;
            }
        };
        let by = match clean {
            Clean::Packages(pkgs) => self.clean_packages(clean, pkgs, inv, &checked, &mut watcher),
            Clean::Verify => match installer.recovery.verify {
                Some(Verify::Command(sub)) => CleanBy::Command(
                    locate::installer_command(inv, &checked.path, sub, &[]),
                    format!("checked the {} cache with its own check", installer.name),
                ),
                _ => CleanBy::Done(None),
            },
            Clean::Full => self.clean_full(clean, inv, &checked, &mut watcher),
            Clean::None | Clean::Repair(_) => return None,
        };
        match by {
            CleanBy::Command(argv, what) => self.run_clean(clean, &argv, what, signals, watcher),
            CleanBy::Done(done) => done,
        }
    }

    /// [`Recovery::clean`] of some packages, in the checked cache: by the installer's own
    /// command, or by steady's removal of their paths.
    fn clean_packages(
        &mut self,
        clean: &Clean,
        pkgs: &[String],
        inv: &Invocation,
        checked: &clean::safety::Cleanable,
        watcher: &mut Option<&mut dyn attempt::Watcher>,
    ) -> CleanBy {
        let installer = inv.installer;
        let cache = &checked.path;
        let what = format!(
            "cleared {} from the {} cache",
            pkgs.join(", "),
            installer.name
        );
        match installer.recovery.clean_package {
            None => CleanBy::Done(None),
            Some(PackageClean::Command(sub)) => {
                let names: Vec<OsString> = pkgs.iter().map(OsString::from).collect();
                CleanBy::Command(locate::installer_command(inv, cache, sub, &names), what)
            }
            Some(PackageClean::Paths(templates)) => {
                let mut guard = lock_guard(watcher);
                CleanBy::Done(self.remove_paths(
                    clean,
                    cache,
                    || remove::remove_packages(&checked.dir, templates, pkgs, &mut guard),
                    what,
                ))
            }
        }
    }

    /// [`Recovery::clean`] of the whole checked cache, the way its installer's row says.
    fn clean_full(
        &mut self,
        clean: &Clean,
        inv: &Invocation,
        checked: &clean::safety::Cleanable,
        watcher: &mut Option<&mut dyn attempt::Watcher>,
    ) -> CleanBy {
        let installer = inv.installer;
        let cache = &checked.path;
        let what = format!("cleared the {} cache", installer.name);
        match installer.cache.clean_full {
            FullClean::Command(_) => match locate::clean_command(inv, cache) {
                Some(argv) => CleanBy::Command(argv, what),
                None => CleanBy::Done(None),
            },
            FullClean::Paths(entries) => {
                let mut guard = lock_guard(watcher);
                CleanBy::Done(self.remove_paths(
                    clean,
                    cache,
                    || remove::clear(&checked.dir, cache, entries, &mut guard),
                    what,
                ))
            }
            FullClean::Markers => {
                let mut guard = lock_guard(watcher);
                let kinds = installer.cache.markers;
                CleanBy::Done(self.remove_paths(
                    clean,
                    cache,
                    || remove::clear_matching(&checked.dir, kinds, &mut guard),
                    what,
                ))
            }
            FullClean::Never => {
                ui::detail(&format!(
                    "not clearing `{}`: it holds more than a cache",
                    cache.display()
                ));
                CleanBy::Done(None)
            }
        }
    }

    /// Runs a clean or repair command with the clean timeout under `watcher` (see
    /// [`Recovery::clean`]); counts it when it succeeds.
    fn run_clean(
        &mut self,
        clean: &Clean,
        argv: &[OsString],
        what: String,
        signals: &SignalPipe,
        watcher: Option<&mut dyn attempt::Watcher>,
    ) -> Option<String> {
        let r = attempt::run_helper_watched(argv, CLEAN_TIMEOUT, watcher, signals);
        match &r.ending {
            attempt::Ending::Stopped(attempt::StopReason::LockLost) => {
                ui::warn(&format!(
                    "lost the lock while `{}` ran, so it was stopped (another machine may be using the cache now); the lock is taken again before the retry",
                    ui::command_line(argv)
                ));
                None
            }
            attempt::Ending::Exited(0) => {
                ui::detail(&format!("ran `{}`", ui::command_line(argv)));
                self.count(clean);
                Some(what)
            }
            attempt::Ending::Stopped(_) => {
                ui::warn(&format!(
                    "`{}` did not finish within {} (another process may hold the installer's own cache lock); retrying without a clean",
                    ui::command_line(argv),
                    ui::human(CLEAN_TIMEOUT)
                ));
                None
            }
            // steady was told to stop: the run ends there, and the caller says so.
            attempt::Ending::Interrupted { signal, .. } => {
                ui::detail(&format!(
                    "`{}` was interrupted by {signal}",
                    ui::command_line(argv)
                ));
                None
            }
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
                    ui::command_line(argv),
                    other.describe()
                ));
                None
            }
        }
    }
}

/// How a clean of the cache is done: by a command still to run, or already (steady's own
/// removal, or nothing to do); with what was done, for the summary.
enum CleanBy {
    Command(Vec<OsString>, String),
    Done(Option<String>),
}

/// A removal's guard from the lock's watcher: looks at the lock when its descriptor says
/// something happened or its next check is due (no cost on the common path), and fails once
/// the lock is lost.
fn lock_guard<'w>(
    watcher: &'w mut Option<&mut dyn attempt::Watcher>,
) -> impl FnMut() -> std::io::Result<()> + 'w {
    move || {
        let Some(w) = watcher.as_deref_mut() else {
            return Ok(());
        };
        let now = std::time::Instant::now();
        let readable = w.fd().is_some_and(|fd| {
            let mut fds = [nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLIN)];
            nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO).unwrap_or(0) > 0
        });
        if readable || w.next_check().is_some_and(|t| now >= t) {
            w.check(now)
                .map_err(|why| std::io::Error::other(format!("lost the lock ({why})")))?;
        }
        Ok(())
    }
}

impl Recovery<'_> {
    fn count(&mut self, clean: &Clean) {
        match clean {
            Clean::Packages(p) => self.cleaned_packages.extend(p.iter().cloned()),
            Clean::Verify => self.verified += 1,
            Clean::Repair(_) => {}
            _ => self.full_cleans += 1,
        }
    }

    /// A clean steady does itself, for installers with no command for it (R24, `remove.rs`).
    fn remove_paths(
        &mut self,
        clean: &Clean,
        cache: &Path,
        run: impl FnOnce() -> std::io::Result<remove::Removed>,
        what: String,
    ) -> Option<String> {
        match run() {
            Ok(done) => {
                ui::detail(&format!(
                    "removed {} under `{}`",
                    done.describe(),
                    cache.display()
                ));
                self.count(clean);
                Some(what)
            }
            Err(e) => {
                ui::warn(&format!(
                    "cannot clear under `{}`: {e}; retrying anyway",
                    cache.display()
                ));
                None
            }
        }
    }
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::attempt::Ending;
    use crate::installer::{PIP, UV, identify};
    use crate::recovery::classify::classify;

    fn policy(clean: CleanMode) -> RetryPolicy {
        RetryPolicy {
            retries: 3,
            backoff: Duration::from_millis(1),
            backoff_max: Duration::from_secs(30),
            clean,
            retry_on_exit: Vec::new(),
            retry_on_output: Vec::new(),
        }
    }

    fn inv(cmd: &[&str]) -> Invocation {
        let argv: Vec<OsString> = cmd.iter().map(OsString::from).collect();
        identify(&argv, None).unwrap()
    }

    #[test]
    fn deterministic_failures_stop() {
        let i = inv(&["uv", "pip", "install", "x"]);
        let mut r = Recovery::new(
            Some(&i),
            Some("/nonexistent".into()),
            policy(CleanMode::Auto),
            false,
            &[],
        );
        let d = classify(
            Some(&UV),
            &Ending::Exited(1),
            "error: No solution found when resolving dependencies",
        );
        assert!(matches!(r.after_failure(&d, 1), Step::Stop(_)));
    }

    #[test]
    fn an_unsupported_lock_stops_and_says_where_to_move_the_cache() {
        let i = inv(&["uv", "pip", "install", "x"]);
        let mut r = Recovery::new(
            Some(&i),
            Some("/c".into()),
            policy(CleanMode::Auto),
            false,
            &[],
        );
        // NERSC/interactEM#532 (tests/fixtures/field/uv/nfs-flock-524.txt).
        let d = classify(
            Some(&UV),
            &Ending::Exited(2),
            "error: Could not acquire lock\n  Caused by: failed to lock `~/.cache/uv/.lock`: Unknown error 524 (os error 524)",
        );
        assert_eq!(d.failure, Failure::LockUnsupported);
        assert!(
            matches!(r.after_failure(&d, 1), Step::Stop(_)),
            "never retried"
        );
        assert!(
            r.lock_unsupported_hint()
                .starts_with("set UV_CACHE_DIR to a local disk")
        );
    }

    #[test]
    fn an_interrupted_dpkg_is_repaired_once_then_cleaned_as_any_corruption() {
        let i = inv(&["apt-get", "install", "-y", "curl"]);
        let mut r = Recovery::new(
            Some(&i),
            Some("/var/cache/apt/archives".into()),
            policy(CleanMode::Auto),
            false,
            &[],
        );
        // openhab/openhabian#952 (tests/fixtures/field/apt/dpkg-was-interrupted.txt).
        let d = classify(
            Some(&crate::installer::APT),
            &Ending::Exited(100),
            "E: dpkg was interrupted, you must manually run 'sudo dpkg --configure -a' to correct the problem. ",
        );
        assert_eq!(d.failure, Failure::Corruption);
        assert_eq!(
            r.after_failure(&d, 1),
            Step::Retry {
                clean: Clean::Repair(&["dpkg", "--configure", "-a"]),
                mitigations: vec![]
            }
        );
        assert_eq!(
            r.after_failure(&d, 2),
            Step::Retry {
                clean: Clean::Full,
                mitigations: vec![]
            },
            "the repair is not repeated"
        );
    }

    #[test]
    fn corruption_cleans_the_named_package_then_everything_when_it_comes_back() {
        let dir = tempfile::tempdir().unwrap();
        let i = inv(&["uv", "pip", "install", "alpha"]);
        let mut r = Recovery::new(
            Some(&i),
            Some(dir.path().into()),
            policy(CleanMode::Auto),
            false,
            &[],
        );
        let d = classify(
            Some(&UV),
            &Ending::Exited(2),
            "error: Failed to install: alpha-1.0-py3-none-any.whl (alpha==1.0)\n cause: /archive-v0/x/alpha-1.0.dist-info/METADATA",
        );
        assert_eq!(
            r.after_failure(&d, 1),
            Step::Retry {
                clean: Clean::Packages(vec!["alpha".into()]),
                mitigations: vec![]
            }
        );
        r.cleaned_packages.push("alpha".into());
        assert_eq!(
            r.after_failure(&d, 2),
            Step::Retry {
                clean: Clean::Full,
                mitigations: vec![]
            }
        );
        r.full_cleans = 1;
        assert_eq!(
            r.after_failure(&d, 3),
            Step::Retry {
                clean: Clean::None,
                mitigations: vec![]
            }
        );
        assert!(
            matches!(r.after_failure(&d, 4), Step::Stop(_)),
            "retries are bounded"
        );
    }

    #[test]
    fn unknown_failures_are_retried_once_with_a_full_clean() {
        let i = inv(&["pip", "install", "x"]);
        let mut r = Recovery::new(
            Some(&i),
            Some("/c".into()),
            policy(CleanMode::Auto),
            false,
            &[],
        );
        let d = classify(Some(&PIP), &Ending::Exited(1), "weird");
        assert_eq!(
            r.after_failure(&d, 1),
            Step::Retry {
                clean: Clean::Full,
                mitigations: vec![]
            }
        );
        assert!(matches!(r.after_failure(&d, 2), Step::Stop(_)));
        let mut never = Recovery::new(
            Some(&i),
            Some("/c".into()),
            policy(CleanMode::Never),
            false,
            &[],
        );
        assert_eq!(
            never.after_failure(&d, 1),
            Step::Retry {
                clean: Clean::None,
                mitigations: vec![]
            }
        );
    }

    #[test]
    fn resource_and_hang_lower_concurrency_and_never_clean() {
        let i = inv(&["uv", "sync"]);
        let mut r = Recovery::new(
            Some(&i),
            Some("/c".into()),
            policy(CleanMode::Auto),
            true,
            &[],
        );
        let d = classify(
            Some(&UV),
            &Ending::Signaled(libc::SIGABRT),
            "ThreadPoolBuildError { code: 11 }",
        );
        let Step::Retry { clean, mitigations } = r.after_failure(&d, 1) else {
            panic!()
        };
        assert_eq!(clean, Clean::None);
        assert_eq!(mitigations.len(), 1);
        assert_eq!(mitigations[0].var, "UV_CONCURRENT_INSTALLS");
        let hang = classify(
            Some(&UV),
            &Ending::Stopped(crate::attempt::StopReason::Timeout),
            "",
        );
        let Step::Retry { clean, .. } = r.after_failure(&hang, 2) else {
            panic!()
        };
        assert_eq!(clean, Clean::None);
        assert_eq!(
            r.env
                .iter()
                .find(|(k, _)| k == "UV_CONCURRENT_INSTALLS")
                .map(|(_, v)| v.as_str()),
            Some("1")
        );
        // A knob the user set is left alone.
        let mine = Recovery::new(
            Some(&i),
            Some("/c".into()),
            policy(CleanMode::Auto),
            true,
            &[("UV_CONCURRENT_INSTALLS".into(), "3".into())],
        );
        assert!(mine.mitigation(Trigger::AfterHang).is_none());
    }

    #[test]
    fn a_success_is_checked_only_where_it_installed_from_a_checkable_cache() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("archive-v0/x");
        let info = root.join("gamma-1.0.dist-info");
        std::fs::create_dir_all(&info).unwrap();
        std::fs::write(info.join("METADATA"), "Name: gamma\n").unwrap();
        std::fs::write(
            info.join("RECORD"),
            "gamma/data.py,,\ngamma-1.0.dist-info/METADATA,,\n",
        )
        .unwrap();
        let said = "Installed 1 package in 3ms\n + gamma==1.0\n";
        let check = |cmd: &[&str], cache: Option<PathBuf>, output: &str| {
            let i = inv(cmd);
            Recovery::new(Some(&i), cache, policy(CleanMode::Auto), false, &[])
                .silent_damage(output)
        };
        let cache = Some(dir.path().to_path_buf());
        let d = check(&["uv", "pip", "install", "gamma"], cache.clone(), said).unwrap();
        assert_eq!(d.failure, Failure::Corruption);
        assert_eq!(d.package.as_deref(), Some("gamma"));
        assert_eq!(d.signature, Some(SILENT_DAMAGE));
        // Quiet: every entry is checked.
        assert!(check(&["uv", "sync", "-q"], cache.clone(), "").is_some());
        // Nothing installed, no environment written, no cache, or a layout steady cannot check.
        let audited = "Audited 1 package in 1ms\n";
        assert!(check(&["uv", "pip", "install", "gamma"], cache.clone(), audited).is_none());
        assert!(check(&["uv", "lock"], cache.clone(), said).is_none());
        assert!(check(&["uv", "pip", "install", "gamma"], None, said).is_none());
        assert!(check(&["npm", "ci"], cache, said).is_none());
    }

    #[test]
    fn reinstall_goes_before_a_double_dash() {
        let i = inv(&["uv", "pip", "install", "a", "--", "b"]);
        let mut r = Recovery::new(Some(&i), None, policy(CleanMode::Auto), false, &[]);
        r.reinstall = vec!["gamma".into()];
        let argv = r.argv(&[]);
        assert_eq!(
            ui::command_line(&argv),
            "uv pip install a --reinstall-package gamma -- b"
        );
        let lock = inv(&["uv", "lock"]);
        let mut r = Recovery::new(Some(&lock), None, policy(CleanMode::Auto), false, &[]);
        r.reinstall = vec!["gamma".into()];
        assert_eq!(
            ui::command_line(&r.argv(&["uv".into(), "lock".into()])),
            "uv lock",
            "uv lock takes no reinstall flag"
        );
    }
}
