//! Sorts a failed attempt into a class (spec section 3, step 5) from its ending and the tail of
//! its output, through the signature table of its installer plus a few signatures every
//! installer shares (errno texts). Where a message names the broken package, the name is kept.
//! The output is read even when the command died of a signal: uv's thread-pool failure is a
//! panic that ends in SIGABRT.

use crate::attempt::{Ending, StopReason};
use crate::failure::Failure;
use crate::installer::{Installer, Level, Naming, PackageHint, Signature, normalize, sig};

/// Texts every installer prints the same way: errno texts (Rust's `os error N`, Python's
/// `[Errno N]`, Node's and Ruby's `ENOSPC`), and what a runtime prints when it runs out of
/// memory (V8's heap messages, for every Node-based installer). An installer's own signatures
/// outrank these at the same level: apt's `Could not get lock … (11: Resource temporarily
/// unavailable)` is its lock, not a process limit. A full disk is decisive: it explains the
/// misleading lines installers print after it (yarn's "trouble with your network connection",
/// conda's "You probably need to delete and re-download").
const COMMON: &[Signature] = &[
    sig(Failure::Resource, "Resource temporarily unavailable"),
    sig(Failure::Resource, "(os error 11)"),
    sig(Failure::Resource, "[Errno 11]"),
    sig(Failure::Resource, "Too many open files"),
    sig(Failure::Resource, "(os error 24)"),
    sig(Failure::Resource, "[Errno 24]"),
    sig(Failure::Resource, "Cannot allocate memory"),
    // V8's out-of-memory abort (node dies of SIGABRT after it), in its two wordings:
    // "FATAL ERROR: Ineffective mark-compacts near heap limit Allocation failed - JavaScript
    // heap out of memory" and "FATAL ERROR: Reached heap limit Allocation failed - …"
    // (npm/cli#7351, npm/cli#6265).
    sig(Failure::Resource, "JavaScript heap out of memory").decisive(),
    sig(Failure::Resource, "Reached heap limit").decisive(),
    sig(Failure::Resource, "Ineffective mark-compacts").decisive(),
    // strerror(ENOSPC), which libc, Python, Node (`ENOSPC: no space left on device, write`)
    // and Ruby (`Errno::ENOSPC: No space left on device`) spell in either case.
    sig(Failure::DiskFull, "No space left on device")
        .any_case()
        .decisive(),
    sig(Failure::DiskFull, "ENOSPC").decisive(),
    sig(Failure::DiskFull, "(os error 28)").decisive(),
    sig(Failure::DiskFull, "[Errno 28]").decisive(),
];

/// The evidence of an ending with no words: a SIGKILL that steady did not send (its own kills
/// are `Stopped`) is the kernel's OOM killer in practice, as cargo reports it for rustc
/// (`(signal: 9, SIGKILL: kill)`, tests/fixtures/field/cargo/rustc-sigkill-*.txt).
const KILLED: Signature = sig(
    Failure::Resource,
    "killed by SIGKILL, which steady did not send (out of memory)",
)
.decisive();

/// The classification of one failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    pub failure: Failure,
    /// The signature text that decided it, for the summary and the report.
    pub signature: Option<&'static str>,
    /// The broken package, where the output names one (normalized: lowercase, `-`).
    pub package: Option<String>,
    /// The installer's own repair the deciding signature names (`Signature::repair`).
    pub repair: &'static [&'static str],
}

/// Where a signature comes from: the installer's own row outranks the shared table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Origin {
    Common,
    Installer,
    /// How the command ended, not a line of its output.
    Ending,
}

impl Origin {
    pub fn name(self) -> &'static str {
        match self {
            Origin::Common => "shared",
            Origin::Installer => "installer",
            Origin::Ending => "ending",
        }
    }
}

/// Why one match beats another, compared field by field in this order: the signature's level
/// (a decisive cause over a plain one over a wrapper line), its origin (the installer's own
/// over the shared table), the failure kind's weight (`Failure::weight`), and last the line's
/// position (the later line, the innermost cause of a chain, wins a tie).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rank {
    pub level: Level,
    pub origin: Origin,
    pub weight: u8,
    pub line: usize,
}

/// One signature found on one line of the output.
#[derive(Debug, Clone)]
pub struct Match {
    pub signature: &'static Signature,
    pub origin: Origin,
    /// 1-based line number in the output read (one past the last line for the ending).
    pub line_no: usize,
    pub line: String,
    pub rank: Rank,
}

/// Every signature of the installer's row and the shared table that matches a line of
/// `output`, plus the ending's own evidence, best first: the first one decides. Pure, for
/// `classify` and for `steady doctor --explain-output`.
pub fn matches(installer: Option<&Installer>, ending: &Ending, output: &str) -> Vec<Match> {
    let own = installer.map_or(&[][..], |i| i.recovery.signatures);
    let tables = [(Origin::Installer, own), (Origin::Common, COMMON)];
    let mut found = Vec::new();
    let mut lines = 0;
    for (n, line) in output.lines().enumerate() {
        lines = n + 1;
        for (origin, table) in tables {
            for s in table.iter().filter(|s| s.matches(line)) {
                found.push(Match {
                    signature: s,
                    origin,
                    line_no: n + 1,
                    line: line.to_owned(),
                    rank: Rank {
                        level: s.level,
                        origin,
                        weight: s.failure.weight(),
                        line: n + 1,
                    },
                });
            }
        }
    }
    if *ending == Ending::Signaled(libc::SIGKILL) {
        found.push(Match {
            signature: &KILLED,
            origin: Origin::Ending,
            line_no: lines + 1,
            line: ending.describe(),
            rank: Rank {
                level: KILLED.level,
                origin: Origin::Ending,
                weight: KILLED.failure.weight(),
                line: lines + 1,
            },
        });
    }
    found.sort_by_key(|m| std::cmp::Reverse(m.rank));
    found
}

/// The class an ending gives by itself, before any output is read (`None`: read the output).
pub fn by_ending(ending: &Ending) -> Option<Failure> {
    match ending {
        Ending::Exited(0) => Some(Failure::Unknown),
        // An installer that waited past --lock-timeout for its own lock: over, as when
        // steady's own lock wait runs out.
        Ending::Stopped(StopReason::Deadline | StopReason::LockWait)
        | Ending::Interrupted { .. } => Some(Failure::Stopped),
        Ending::Stopped(_) => Some(Failure::Hang),
        Ending::NotFound | Ending::NotExecutable(_) | Ending::SpawnFailed(_) => {
            Some(Failure::NotRunnable)
        }
        Ending::NoProcesses => Some(Failure::Resource),
        Ending::Signaled(s) if crate::sys::is_stop_signal(*s) => Some(Failure::Stopped),
        Ending::Exited(_) | Ending::Signaled(_) => None,
    }
}

/// A stall whose last line is the installer saying it waits on its own lock (cargo's `Blocking
/// waiting for file lock on package cache`) is that lock wait, not a hang: the signature that
/// says so, if any.
pub fn stalled_on_own_lock(
    installer: Option<&Installer>,
    ending: &Ending,
    output: &str,
) -> Option<&'static Signature> {
    if *ending != Ending::Stopped(StopReason::Stall) {
        return None;
    }
    let last = output.lines().rev().find(|l| !l.trim().is_empty())?;
    installer?
        .recovery
        .signatures
        .iter()
        .find(|s| s.failure == Failure::InstallerLock && s.matches(last))
}

pub fn classify(installer: Option<&Installer>, ending: &Ending, output: &str) -> Diagnosis {
    if let Some(s) = stalled_on_own_lock(installer, ending, output) {
        return Diagnosis {
            failure: s.failure,
            signature: Some(s.text),
            package: None,
            repair: &[],
        };
    }
    if let Some(failure) = by_ending(ending) {
        return Diagnosis {
            failure,
            signature: None,
            package: None,
            repair: &[],
        };
    }
    let best = matches(installer, ending, output).into_iter().next();
    let package =
        installer.and_then(|i| named_package(i.recovery.package_hints, i.recovery.naming, output));
    match best {
        Some(m) => Diagnosis {
            failure: m.signature.failure,
            signature: Some(m.signature.text),
            package,
            repair: m.signature.repair,
        },
        None if matches!(ending, Ending::Signaled(_)) => Diagnosis {
            failure: Failure::Signal,
            signature: None,
            package,
            repair: &[],
        },
        None => Diagnosis {
            failure: Failure::Unknown,
            signature: None,
            package,
            repair: &[],
        },
    }
}

/// The first package a message names, by the installer's hints or, for Python packages, by a
/// `.dist-info` directory in a path (`…/alpha-1.0.dist-info/METADATA`).
pub fn named_package(hints: &[PackageHint], naming: Naming, output: &str) -> Option<String> {
    for line in output.lines() {
        for hint in hints {
            if let Some(at) = line.find(hint.after) {
                let rest = &line[at + hint.after.len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| !hint.until.contains(c))
                    .collect();
                // A path up to `…/@v` ends in a slash that is not part of the name.
                let name = if naming == Naming::Verbatim {
                    name.trim_end_matches('/').to_owned()
                } else {
                    name
                };
                if is_package_name(&name, naming) {
                    return Some(spelled(&name, naming));
                }
            }
        }
        if naming == Naming::Python
            && let Some(name) = line
                .split(['/', '`', '\'', '"', ' '])
                .find_map(|seg| seg.strip_suffix(".dist-info"))
            && let Some((n, _version)) = name.rsplit_once('-')
            && is_package_name(n, naming)
        {
            return Some(normalize(n));
        }
    }
    None
}

/// Python names are letters, digits, `-`, `_` and `.`; verbatim ones (crates, Go modules,
/// gems, composer's vendor/package) may also hold `/` and `@` and `+`, but never a path that
/// climbs (`..`) or starts at the root.
fn is_package_name(s: &str, naming: Naming) -> bool {
    let extra: &[char] = match naming {
        Naming::Python => &[],
        Naming::Verbatim => &['/', '@', '+'],
    };
    !s.is_empty()
        && s.len() <= 200
        && !s.starts_with(['/', '.', '-'])
        && !s
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..")
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') || extra.contains(&c)
        })
}

fn spelled(name: &str, naming: Naming) -> String {
    match naming {
        Naming::Python => normalize(name),
        Naming::Verbatim => name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::installer::{PIP, UV};

    /// Real messages, from uv 0.13 and pip 26 runs provoked by the tests and from the
    /// installers' sources and issue threads (reference/installers.md).
    #[test]
    fn real_messages() {
        let cases: &[(&Installer, i32, &str, Failure, Option<&str>)] = &[
            (
                &UV,
                2,
                "error: Failed to install: alpha-1.0-py3-none-any.whl (alpha==1.0)\n  cause: failed to open file `/c/archive-v0/uoZu8p/alpha-1.0.dist-info/METADATA`: No such file or directory (os error 2)",
                Failure::Corruption,
                Some("alpha"),
            ),
            (
                &UV,
                2,
                "error: Failed to read from the distribution cache\n  Caused by: No such file or directory (os error 2)",
                Failure::Corruption,
                None,
            ),
            (
                &UV,
                2,
                "error: Failed to download `Typing_Extensions==4.12.2`\n  Caused by: Failed to deserialize cache entry",
                Failure::Corruption,
                Some("typing-extensions"),
            ),
            (
                &UV,
                2,
                "error: Failed to install: six-1.16.0-py2.py3-none-any.whl (six==1.16.0)\n  Caused by: The wheel is invalid: Metadata field Name not found",
                Failure::Corruption,
                Some("six"),
            ),
            (
                &UV,
                1,
                "error: No solution found when resolving dependencies:\n  ╰─▶ Because zeta was not found in the provided package locations and you require zeta, we can conclude that your requirements are unsatisfiable.",
                Failure::Deterministic,
                None,
            ),
            (
                &UV,
                2,
                "error: unexpected argument '--bogus' found\n\nUsage: uv pip install [OPTIONS]",
                Failure::Deterministic,
                None,
            ),
            (
                &UV,
                2,
                "error: File not found: `nonexist.txt`",
                Failure::Deterministic,
                None,
            ),
            (
                &UV,
                134,
                "memory allocation of 1520 bytes failed\nthread 'main' panicked at crates/uv-configuration/src/threading.rs: failed to initialize global rayon pool: ThreadPoolBuildError { kind: IOError(Os { code: 11, kind: WouldBlock, message: \"Resource temporarily unavailable\" }) }",
                Failure::Resource,
                None,
            ),
            (
                &UV,
                2,
                "error: Too many open files (os error 24)",
                Failure::Resource,
                None,
            ),
            (
                &UV,
                2,
                "error: Request failed after 3 retries in 6.2s\n  Caused by: error sending request for url (https://pypi.org/simple/x/)",
                Failure::Network,
                None,
            ),
            (
                &UV,
                2,
                "error: Failed to download distribution due to network timeout. Try increasing UV_HTTP_TIMEOUT (current value: 30s).",
                Failure::Network,
                None,
            ),
            (
                &UV,
                2,
                "error: Timeout (300s) when waiting for lock on `/c` at `/c/.lock`, is another uv process running? You can set `UV_LOCK_TIMEOUT` to increase the timeout.",
                Failure::InstallerLock,
                None,
            ),
            (
                &UV,
                2,
                "error: Failed to write to the distribution cache\n  Caused by: No space left on device (os error 28)",
                Failure::DiskFull,
                None,
            ),
            (
                &PIP,
                1,
                "ERROR: Wheel 'delta' located at /c/wheels/79/cd/delta-1.0-py3-none-any.whl is invalid.",
                Failure::Corruption,
                Some("delta"),
            ),
            (
                &PIP,
                1,
                "ERROR: THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE.",
                Failure::Corruption,
                None,
            ),
            (
                &PIP,
                1,
                "ERROR: Could not find a version that satisfies the requirement zeta (from versions: none)\nERROR: No matching distribution found for zeta",
                Failure::Deterministic,
                None,
            ),
            (
                &PIP,
                1,
                "WARNING: Retrying (Retry(total=4, connect=None, read=None, redirect=None, status=None)) after connection broken by 'NewConnectionError'\nERROR: Could not find a version that satisfies the requirement six\nERROR: No matching distribution found for six",
                Failure::Network,
                None,
            ),
            (
                &PIP,
                2,
                "ERROR: Invalid requirement: 'foo==='",
                Failure::Deterministic,
                None,
            ),
            (
                &PIP,
                1,
                "ERROR: Could not open requirements file: [Errno 2] No such file or directory: 'r.txt'",
                Failure::Deterministic,
                None,
            ),
            (
                &PIP,
                1,
                "ERROR: Could not install packages due to an OSError: [Errno 28] No space left on device",
                Failure::DiskFull,
                None,
            ),
            (
                &PIP,
                1,
                "something nobody has seen before",
                Failure::Unknown,
                None,
            ),
        ];
        for (inst, code, text, want, pkg) in cases {
            let d = classify(Some(inst), &Ending::Exited(*code), text);
            assert_eq!(d.failure, *want, "{}: {text}", inst.name);
            assert_eq!(d.package.as_deref(), *pkg, "{}: {text}", inst.name);
        }
    }

    #[test]
    fn endings_without_output() {
        assert_eq!(
            classify(Some(&UV), &Ending::Stopped(StopReason::Timeout), "").failure,
            Failure::Hang
        );
        assert_eq!(
            classify(Some(&UV), &Ending::Stopped(StopReason::Deadline), "").failure,
            Failure::Stopped
        );
        assert_eq!(
            classify(None, &Ending::Signaled(libc::SIGTERM), "").failure,
            Failure::Stopped
        );
        assert_eq!(
            classify(None, &Ending::Signaled(libc::SIGSEGV), "").failure,
            Failure::Signal
        );
        assert_eq!(
            classify(None, &Ending::NotFound, "").failure,
            Failure::NotRunnable
        );
        // The panic's text decides, not the signal it died of.
        assert_eq!(
            classify(
                Some(&UV),
                &Ending::Signaled(libc::SIGABRT),
                "Os { code: 11 } (os error 11)"
            )
            .failure,
            Failure::Resource
        );
    }

    #[test]
    fn names_are_normalized() {
        assert_eq!(normalize("Typing_Extensions"), "typing-extensions");
        assert_eq!(normalize("zope.interface"), "zope-interface");
        assert_eq!(
            named_package(
                &[],
                Naming::Python,
                "cause: `/c/archive-v0/x/My_Pkg-2.0.dist-info/RECORD`"
            ),
            Some("my-pkg".into())
        );
        assert_eq!(named_package(&[], Naming::Python, "no package here"), None);
        assert_eq!(
            named_package(
                &[],
                Naming::Verbatim,
                "cause: `/c/x/My_Pkg-2.0.dist-info/RECORD`"
            ),
            None,
            "dist-info is Python's"
        );
        let go = [PackageHint {
            after: "verifying ",
            until: &['@', ':'],
        }];
        assert_eq!(
            named_package(
                &go,
                Naming::Verbatim,
                "verifying example.com/Mod@v1.0.0: checksum mismatch"
            ),
            Some("example.com/Mod".into())
        );
        assert_eq!(
            named_package(&go, Naming::Verbatim, "verifying ../../etc@v1: x"),
            None
        );
        assert_eq!(
            named_package(&go, Naming::Verbatim, "verifying /etc@v1: x"),
            None
        );
    }
}

/// The field corpus replayed through `classify`: every real message gets the class the corpus
/// gives it (the integration test `field.rs` does the same through the binary).
#[cfg(test)]
mod field {
    use super::*;
    use crate::installer::{by_name, corpus};

    /// Corpus class names as `Failure::name` spells them.
    pub fn steady_class(corpus_class: &str) -> &'static str {
        match corpus_class {
            "network" => Failure::Network.name(),
            "deterministic" => Failure::Deterministic.name(),
            "corruption" => Failure::Corruption.name(),
            "installer-lock" => Failure::InstallerLock.name(),
            "lock-unsupported" => Failure::LockUnsupported.name(),
            "resource" => Failure::Resource.name(),
            "disk-full" => Failure::DiskFull.name(),
            "hang-signal" => Failure::Hang.name(),
            other => panic!("unknown corpus class {other}"),
        }
    }

    pub fn ending(exit: &str) -> Ending {
        match exit {
            "stall" => Ending::Stopped(StopReason::Stall),
            s if s.starts_with("signal:") => Ending::Signaled(match &s[7..] {
                "ABRT" => libc::SIGABRT,
                "SEGV" => libc::SIGSEGV,
                "KILL" => libc::SIGKILL,
                "BUS" => libc::SIGBUS,
                other => panic!("signal {other}"),
            }),
            n => Ending::Exited(n.parse().expect("exit status")),
        }
    }

    /// The shared table is held to the corpus like a row (`installer::tests`): each text is
    /// found in a real message, except the errno spellings listed here, which the integration
    /// tests provoke for real (a process limit, an fd limit, a full tmpfs).
    #[test]
    fn every_shared_signature_is_exercised_by_the_corpus() {
        const PRE_CORPUS: &[&str] = &[
            "(os error 11)",
            "[Errno 11]",
            "[Errno 24]",
            "Cannot allocate memory",
            "(os error 28)",
        ];
        let all = corpus::load();
        for s in COMMON {
            let seen = all.iter().any(|e| e.body.lines().any(|l| s.matches(l)));
            assert_eq!(
                seen,
                !PRE_CORPUS.contains(&s.text),
                "{}: {}",
                s.text,
                if seen {
                    "exercised now: drop it from PRE_CORPUS"
                } else {
                    "no corpus file holds it"
                }
            );
        }
    }

    #[test]
    fn corpus_replays() {
        let mut misses = Vec::new();
        let all = corpus::load();
        let allowed = corpus::known_misses();
        for (name, _) in &allowed {
            assert!(
                all.iter().any(|e| &e.name == name),
                "{name} is not in the corpus"
            );
        }
        for e in &all {
            let inst = by_name(&e.installer).unwrap_or_else(|| panic!("{}: row", e.name));
            let d = classify(Some(inst), &ending(&e.exit), &e.body);
            let want = steady_class(&e.class);
            let allowed_miss = allowed.iter().any(|(n, _)| *n == e.name);
            if allowed_miss {
                assert_ne!(
                    d.failure.name(),
                    want,
                    "{} is right now: drop it from known-misses.txt",
                    e.name
                );
            } else if d.failure.name() != want {
                misses.push(format!(
                    "{}: want {want}, got {} ({:?})",
                    e.name,
                    d.failure.name(),
                    d.signature
                ));
            }
        }
        let total = all.len();
        assert!(
            misses.is_empty(),
            "{}/{} right; misses:\n{}",
            total - misses.len() - allowed.len(),
            total,
            misses.join("\n")
        );
    }
}
