//! The only module with `unsafe` code: every call into the OS that `nix` or std does not make
//! safe lives here, split by OS area, behind safe functions. steady is single-threaded on
//! purpose (a fork from a multi-threaded process can deadlock under qemu-user), so all waiting
//! is done here with signals, a self-pipe and `poll`.
//!
//! `Cargo.toml` denies `unsafe_code` everywhere; the allowances below are the only ones, one
//! per file that still needs it (each file's opening comment says why). Prefer `nix` or std
//! for a new call; add an `unsafe` block only where neither has it.
//!
//! Callers use the names re-exported below (`sys::flock`, `sys::take_signals`, ...), not the
//! files, so the split stays an internal matter.

#[allow(unsafe_code)]
mod dir;
#[allow(unsafe_code)]
mod fs;
#[cfg(feature = "postgres")]
mod net;
#[allow(unsafe_code)]
mod pipe;
#[allow(unsafe_code)]
mod process;
#[allow(unsafe_code)]
mod signal;
#[allow(unsafe_code)]
mod spawn;
#[allow(unsafe_code)]
mod term;
#[allow(unsafe_code)]
mod timer;

pub use dir::{
    list_dir, lstat_at, make_dir_writable, mkdir_at, open_dir_at, open_dir_nofollow,
    rename_noreplace, unlink_at,
};
pub use fs::{
    filesystem_magic, flock, fstat, named_marker, open_lock_file_at, open_lock_target, stat_at,
};
#[cfg(feature = "postgres")]
pub use net::tcp_keepalive;
pub use pipe::{
    bytes_readable, dup_stdio, pipe_size, read_into, set_pipe_size, splice, status_flags, tee,
};
pub use process::{
    Ended, become_subreaper, clock_ticks, euid, exit_status_keep, kill, kill_group, pid_exists,
    reap, reap_any, reraise,
};
pub use signal::{
    Arrived, HANDLED, STOP_SIGNALS, SignalPipe, install_signal_handlers, is_pending,
    is_stop_signal, repost, stop_signal_pending, take_signals,
};
pub use spawn::{ChildIo, SpawnSpec, exec, spawn};
pub use term::{is_terminal, owns_foreground_terminal, set_window_size, window_size};
pub use timer::set_alarm;
