//! The one integration-test binary. Each module drives the real `steady` binary against real
//! processes (and real uv and pip where installed); `common` is the shared harness.

mod common;
/// The committed completion scripts: fresh against `steady completions`, and loading in their
/// shells.
mod completions;
/// Issue 17, the retry rules users already write (`--retry-on-exit`, `--retry-on-output`,
/// `STEADY_ATTEMPT`, `--on-retry`, `--backoff-max`), `--output on-failure`, and JSON Lines
/// reports that keep every run.
mod control;
/// The field corpus of real installer messages replayed through the binary, and `doctor
/// --explain-output` on it.
mod field;
/// Real cache damage for uv, pip, npm, pnpm, yarn and bun, healed through steady with the real
/// installer; uv's silent success (exit 0, files missing) caught after the fact.
mod heal;
/// Every installer row against the real installer: cache resolution, provoked failures, cleans
/// without a command (safe removal), apt's own lock, wrappers.
mod installers;
/// The locks: scope, fallback chain, lock-file safety, errno handling, waiting, nesting,
/// shared mode, `--lock` ordering and `steady status` (requirements R1-R12).
mod lock;
/// The PostgreSQL lock backend (`--lock-url`): two machines on one lock, holder death, a
/// stopped or frozen server, re-taking a lost lock, timeouts naming the holder, shared mode,
/// nesting, password logins and bad URLs (reliability.md R27). Each test starts its own server.
mod pglock;
/// The README's transcripts replayed against the real steady, and `--help`'s examples.
mod readme;
/// Recovery: classification, targeted cleans, cache checks, mitigations, report, doctor.
mod recover;
/// The run pipeline: exit codes, serialization, retry and clean, real uv and pip, exec.
mod run;
/// `steady init`: the scripts in real bash, zsh and fish, where each wrapped call really went.
mod shell;
/// Stall detection that tells quiet work from a hang, and installers waiting on their own
/// lock (issue 15).
mod stall;
/// What the user touches besides a wrapped run: messages naming what was typed, boolean
/// variables, `--help`, `-q`, GitHub Actions annotations, `doctor`'s workarounds.
mod surface;
/// Issue 14, trust under attack: no survivor, no deleted file, no overlap, no silent success;
/// one test per case, each asserting behaviour (pids, files, overlaps, bytes, exit codes).
mod trust;
/// Issue 14, the lock and clean cases: renames, odd paths, nested runs, symlinked and system
/// caches, a lock lost during a clean.
mod trust_lock;
/// Issue 14, the process cases: survivors, piped stdin, timeouts, daemons, leftovers of a
/// killed holder, bounded retries, honest messages.
mod trust_process;
/// The watchdog: tree kill, escapees, stall detection, deadline, signals, PID 1, terminals,
/// byte-exact output, bounded memory, one thread, process limits (requirements R13-R20).
mod watchdog;
