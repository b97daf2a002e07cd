//! Sorts a failed attempt into a class (spec section 3, step 5) from its ending and the tail of
//! its output, through the signature table of its installer plus a few signatures every
//! installer shares (errno texts). Where a message names the broken package, the name is kept.
//! The output is read even when the command died of a signal: uv's thread-pool failure is a
//! panic that ends in SIGABRT.

use crate::attempt::{Ending, StopReason};
use crate::failure::Failure;
use crate::installer::{Installer, Naming, PackageHint, Signature, normalize, sig};

/// errno texts every installer prints the same way (Rust's `os error N`, Python's `[Errno N]`).
const COMMON: &[Signature] = &[
    sig(Failure::Resource, "Resource temporarily unavailable"),
    sig(Failure::Resource, "(os error 11)"),
    sig(Failure::Resource, "[Errno 11]"),
    sig(Failure::Resource, "Too many open files"),
    sig(Failure::Resource, "(os error 24)"),
    sig(Failure::Resource, "[Errno 24]"),
    sig(Failure::Resource, "Cannot allocate memory"),
    sig(Failure::DiskFull, "No space left on device"),
    sig(Failure::DiskFull, "(os error 28)"),
    sig(Failure::DiskFull, "[Errno 28]"),
];

/// The classification of one failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    pub failure: Failure,
    /// The signature text that decided it, for the summary and the report.
    pub signature: Option<&'static str>,
    /// The broken package, where the output names one (normalized: lowercase, `-`).
    pub package: Option<String>,
}

pub fn classify(installer: Option<&Installer>, ending: &Ending, output: &str) -> Diagnosis {
    let plain = |failure| Diagnosis {
        failure,
        signature: None,
        package: None,
    };
    match ending {
        Ending::Exited(0) => return plain(Failure::Unknown),
        // An installer that waited past --lock-timeout for its own lock: over, as when
        // steady's own lock wait runs out.
        Ending::Stopped(StopReason::Deadline | StopReason::LockWait)
        | Ending::Interrupted { .. } => {
            return plain(Failure::Stopped);
        }
        Ending::Stopped(_) => return plain(Failure::Hang),
        Ending::NotFound | Ending::NotExecutable(_) | Ending::SpawnFailed(_) => {
            return plain(Failure::NotRunnable);
        }
        Ending::NoProcesses => return plain(Failure::Resource),
        Ending::Signaled(s)
            if [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT].contains(s) =>
        {
            return plain(Failure::Stopped);
        }
        Ending::Exited(_) | Ending::Signaled(_) => {}
    }
    let own = installer.map_or(&[][..], |i| i.recovery.signatures);
    let best = own
        .iter()
        .chain(COMMON)
        .filter(|s| output.contains(s.text))
        .max_by_key(|s| s.failure.weight());
    let package =
        installer.and_then(|i| named_package(i.recovery.package_hints, i.recovery.naming, output));
    match best {
        Some(s) => Diagnosis {
            failure: s.failure,
            signature: Some(s.text),
            package,
        },
        None if matches!(ending, Ending::Signaled(_)) => Diagnosis {
            failure: Failure::Signal,
            signature: None,
            package,
        },
        None => Diagnosis {
            failure: Failure::Unknown,
            signature: None,
            package,
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
