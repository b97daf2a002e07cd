//! `steady doctor [--] COMMAND…` (spec section 9): explains what steady would do with a
//! command, and why, without running it or taking any lock: the installer and subcommand
//! class, the cache and how it was found, the lock and its scope (and who holds it now, in
//! the `--lock-url` server too), the watchdog settings, the mitigations that would apply, and
//! the facts behind them.

use std::io::Write;
use std::os::unix::fs::MetadataExt;

use crate::exit::Outcome;
use crate::installer::locate::CacheLocation;
use crate::lock;
use crate::lock::holders;
use crate::recovery::mitigate::{self, Facts, MITIGATIONS, Trigger};
use crate::run;
use crate::run::settings::Settings;
use crate::sys;
use crate::ui;

/// One line of doctor's report: its label and what it says.
type Line = (&'static str, String);

pub fn run(settings: &Settings) -> Outcome {
    let plan = match run::plan(settings) {
        Ok(p) => p,
        Err(outcome) => return outcome,
    };
    let signals = match sys::install_signal_handlers() {
        Ok(s) => s,
        Err(e) => {
            ui::error(&format!("cannot set up signal handling: {e}"));
            return Outcome::SteadyFailed;
        }
    };
    let inv = plan.inv.as_ref();
    let mut lines = command_lines(settings, &plan);
    // Only a supervised run looks for its cache, so doctor asks only then too.
    let location = if plan.supervise {
        run::locate_cache(settings, inv, plan.writes, &signals)
    } else {
        None
    };
    lines.push(cache_line(&location));
    if let Some(dir) = run::cache_dir_of(&location) {
        lines.extend(lock_lines(settings, &plan, &dir));
    }
    if plan.supervise {
        lines.push(watchdog_line(settings));
        lines.extend(retry_lines(settings));
        lines.extend(output_lines(settings));
    }
    lines.extend(mitigation_lines(settings, &plan));
    print_lines(lines);
    Outcome::Success
}

/// The command as given, which installer it is, and whether steady supervises it.
fn command_lines(settings: &Settings, plan: &run::Plan) -> Vec<Line> {
    let mut lines = vec![
        ("command", crate::ui::command_line(&settings.command)),
        ("installer", installer_words(plan)),
    ];
    // Said only of rows steady could not check against the installer itself.
    let inv = plan.inv.as_ref();
    if let Some(crate::installer::Verified::FromDocs(sources)) = inv.map(|i| i.installer.verified) {
        lines.push((
            "knowledge",
            format!(
                "from documentation, not verified here ({})",
                sources.join("; ")
            ),
        ));
    }
    lines
}

fn installer_words(plan: &run::Plan) -> String {
    match plan.inv.as_ref() {
        Some(i) if plan.writes => format!(
            "{}: writes the cache or an environment, so steady locks and supervises it",
            i.installer.name
        ),
        Some(i) if plan.supervise => format!(
            "{}: read-only, supervised because a watchdog option was given",
            i.installer.name
        ),
        Some(i) => format!(
            "{}: read-only, so steady execs it unchanged (no lock)",
            i.installer.name
        ),
        None if plan.supervise => {
            "not an installer steady knows; supervised because of the options given".into()
        }
        None => "not an installer steady knows; steady execs it unchanged".into(),
    }
}

fn cache_line(location: &Option<CacheLocation>) -> Line {
    match location {
        Some(CacheLocation::Dir { path, source }) => {
            ("cache", format!("{} ({source})", path.display()))
        }
        Some(CacheLocation::Disabled { reason }) => (
            "cache",
            format!("none shared ({reason}): nothing to lock or clear"),
        ),
        None => ("cache", "none".into()),
    }
}

/// What guards the cache at `dir`: its filesystem, the lock (local, and remote if asked
/// for), and whether steady would clear it after a failure.
fn lock_lines(settings: &Settings, plan: &run::Plan, dir: &std::path::Path) -> Vec<Line> {
    let inv = plan.inv.as_ref();
    let fs = existing_ancestor(dir).and_then(|d| lock::network_filesystem(&d));
    let mut lines = vec![(
        "filesystem",
        match fs {
            Some(net) => format!("{net}: the lock is only as strong as that mount's lock support"),
            None => "local".into(),
        },
    )];
    let own_lock = inv.and_then(|i| i.installer.own_lock_words());
    lines.push((
        "lock",
        own_lock.unwrap_or_else(|| describe_lock(settings, dir)),
    ));
    #[cfg(feature = "postgres")]
    if let Some(server) = settings.lock_server.as_ref().filter(|_| !settings.no_lock) {
        lines.push(("remote lock", describe_remote(server, settings, dir)));
    }
    // Only a run that writes ever clears the cache.
    if let Some(i) = inv.filter(|_| plan.writes) {
        lines.push(("clean", clean_when(i.installer, dir)));
    }
    lines
}

/// When steady would clear the cache at `dir`, or why it never would.
fn clean_when(installer: &crate::installer::Installer, dir: &std::path::Path) -> String {
    match crate::recovery::clean::check_cleanable(installer, dir) {
        Ok(_) => format!("after a failure: {}", clean_words(installer)),
        Err(_) if !dir.exists() && crate::recovery::clean::refused_place(dir).is_err() => {
            let why = crate::recovery::clean::refused_place(dir).unwrap_err();
            format!("never: steady will not clear it, {why}")
        }
        Err(why) if !dir.exists() => format!(
            "after a failure: {} (the cache does not exist yet: {why})",
            clean_words(installer)
        ),
        Err(why) => format!("never: steady will not clear it, {why}"),
    }
}

fn watchdog_line(settings: &Settings) -> Line {
    let w = |d: Option<std::time::Duration>| d.map_or_else(|| "none".to_owned(), ui::human);
    (
        "watchdog",
        format!(
            "timeout {}, stall {}, deadline {}, retries {}, kill after {}, back-off {} to {}",
            w(settings.timeout),
            settings.stall.map_or_else(|| "off".to_owned(), ui::human),
            w(settings.deadline),
            settings.retries,
            ui::human(settings.kill_after),
            ui::human(settings.backoff),
            ui::human(settings.backoff_max)
        ),
    )
}

/// The user's own retry rules (`--retry-on-exit`, `--retry-on-output`) and `--on-retry`.
fn retry_lines(settings: &Settings) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut rules = Vec::new();
    if !settings.retry_on_exit.is_empty() {
        let codes: Vec<String> = settings.retry_on_exit.iter().map(i32::to_string).collect();
        rules.push(format!("exit {}", codes.join(", ")));
    }
    for p in &settings.retry_on_output {
        match crate::recovery::retry::compile_patterns(std::slice::from_ref(p), "") {
            Ok(_) => rules.push(format!("output matching `{p}`")),
            Err(e) => rules.push(format!(
                "output matching `{p}` (which steady would refuse: {})",
                e.rsplit(": ").next().unwrap_or(&e)
            )),
        }
    }
    if !rules.is_empty() {
        lines.push((
            "retry also",
            format!(
                "on {}, even where steady would stop (not after a stop signal or the deadline)",
                rules.join("; ")
            ),
        ));
    }
    if let Some(cmd) = &settings.on_retry {
        lines.push((
            "on retry",
            format!("`{cmd}` after the clean, before each retry (sh -c)"),
        ));
    }
    lines
}

/// Where the run's output and its `--report` line would go.
fn output_lines(settings: &Settings) -> Vec<Line> {
    let mut lines = Vec::new();
    if settings.hold_output {
        lines.push((
            "output",
            if sys::is_terminal(1) && sys::is_terminal(2) {
                "live: --output on-failure holds no terminal's output".to_owned()
            } else {
                "held, and shown only if the run fails (--output on-failure)".to_owned()
            },
        ));
    }
    if let Some(path) = &settings.report {
        lines.push((
            "report",
            format!("one JSON line appended to `{}` per run", path.display()),
        ));
    }
    lines
}

/// The mitigations that would apply before the first attempt, those that could apply some
/// day, and the facts they are decided on.
fn mitigation_lines(settings: &Settings, plan: &run::Plan) -> Vec<Line> {
    let inv = plan.inv.as_ref();
    // Under qemu-user the argv from the emulator on is what shows the emulation.
    let facts = Facts::gather(
        inv.and_then(|i| i.emulator.as_deref())
            .unwrap_or(&settings.command),
    );
    let mut apply = Vec::new();
    if let Some(i) = inv.filter(|_| plan.supervise && settings.mitigate) {
        let user_set = |var: &str| {
            std::env::var_os(var).is_some() || settings.envs.iter().any(|(k, _)| k == var)
        };
        for trigger in [Trigger::Emulated, Trigger::LowProcessLimit] {
            let set = i.installer.recovery.concurrency_env.is_some_and(user_set);
            apply.extend(mitigate::value_for(trigger, i.installer, &facts, None, set));
        }
    }
    let applied = if apply.is_empty() {
        "none apply before the first attempt".into()
    } else {
        apply
            .iter()
            .map(|a| a.describe())
            .collect::<Vec<_>>()
            .join("; ")
    };
    vec![
        ("mitigations", applied),
        ("known", known_words(inv.map(|i| i.installer))),
        ("facts", describe_facts(&facts)),
    ]
}

/// Labels padded to one column; a closed stdout (`| head`) ends the report quietly.
fn print_lines(lines: Vec<Line>) {
    let mut out = std::io::stdout().lock();
    for (k, v) in lines {
        if writeln!(out, "{k:<12} {v}").is_err() {
            break;
        }
    }
}

/// The workarounds that could apply to this installer, some day, with their reasons: every
/// row sets the installer's concurrency knob, so an installer without one (pip, npm) has none,
/// and a command steady does not know has none either.
fn known_words(installer: Option<&crate::installer::Installer>) -> String {
    let Some(i) = installer else {
        return "none (not an installer steady knows)".into();
    };
    if i.recovery.concurrency_env.is_none() {
        return format!(
            "none for {} (it has no concurrency setting for steady to lower)",
            i.name
        );
    }
    MITIGATIONS
        .iter()
        .map(|m| {
            format!(
                "{} ({}, {})",
                trigger_words(m.trigger),
                m.reason,
                m.upstream
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The `--lock-url` lock the run would also take, and who holds it now, asked of the server
/// over a short connection of doctor's own (it takes no lock). A server that cannot be asked
/// is said so on the line: doctor explains, it does not fail.
#[cfg(feature = "postgres")]
fn describe_remote(
    server: &crate::lock::remote::postgres::Server,
    settings: &Settings,
    dir: &std::path::Path,
) -> String {
    use crate::lock::remote::postgres;
    let name = match &settings.lock_namespace {
        Some(ns) => format!("namespace `{ns}`"),
        None => "the cache's canonical path".to_owned(),
    };
    let key = postgres::advisory_key(
        &lock::remote_key_of(dir, settings.lock_namespace.as_deref()).identity,
    );
    let now = match postgres::sessions_on(server, key) {
        Ok(sessions) => {
            let waiting = sessions.iter().filter(|s| !s.granted).count();
            let held: Vec<_> = sessions.iter().filter(|s| s.granted).collect();
            match held.first() {
                None if waiting == 0 => "free now".to_owned(),
                None => format!("free now, {waiting} waiting"),
                Some(h) if held.len() > 1 => format!(
                    "held now by {}, and {} other holder(s), {waiting} waiting",
                    h.describe(),
                    held.len() - 1
                ),
                Some(h) => format!("held now by {}, {waiting} waiting", h.describe()),
            }
        }
        Err(f) => format!("who holds it is unknown: {}", f.message),
    };
    format!(
        "{} advisory lock in PostgreSQL at {}, named by {name} (key {key}), taken after the \
         local one; {now}",
        if settings.shared {
            "a shared"
        } else {
            "an exclusive"
        },
        server.shown()
    )
}

fn clean_words(i: &crate::installer::Installer) -> String {
    i.clean_words()
}

fn trigger_words(t: Trigger) -> &'static str {
    match t {
        Trigger::Emulated => "under qemu-user",
        Trigger::LowProcessLimit => "with a low ulimit -u",
        Trigger::AfterHang => "after a hang",
        Trigger::AfterResource => "after running out of threads",
    }
}

fn describe_facts(f: &Facts) -> String {
    let tty = |fd| {
        if sys::is_terminal(fd) {
            "terminal"
        } else {
            "not a terminal"
        }
    };
    format!(
        "emulation: {}; cpus: {}; process limit: {}; stdin {}, stdout {}",
        f.emulated.as_deref().unwrap_or("no"),
        f.cpus,
        match (f.process_limit, f.headroom()) {
            (Some(l), Some(h)) => format!("{l} ({h} free)"),
            _ => "none enforced".into(),
        },
        tty(0),
        tty(1)
    )
}

fn existing_ancestor(p: &std::path::Path) -> Option<std::path::PathBuf> {
    p.ancestors().find(|a| a.exists()).map(|a| a.to_path_buf())
}

/// The lock steady would take, and who holds it now, read from `/proc/locks` (no locking).
fn describe_lock(settings: &Settings, dir: &std::path::Path) -> String {
    if settings.no_lock {
        return "none (--no-lock)".into();
    }
    let Ok(meta) = std::fs::metadata(dir) else {
        return format!(
            "flock on `{}` once created, shared with everyone using this cache",
            dir.display()
        );
    };
    let canonical = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let entries = holders::proc_locks_entries(meta.dev(), meta.ino());
    let now = match entries.iter().find(|e| !e.waiting) {
        Some(h) => {
            let waiting = entries.iter().filter(|e| e.waiting).count();
            format!(
                "held now by {}, {waiting} waiting",
                holders::describe_pid(h.pid).describe()
            )
        }
        None => "free now".into(),
    };
    format!(
        "flock on `{}`, shared with everyone using this cache; {now}",
        canonical.display()
    )
}
