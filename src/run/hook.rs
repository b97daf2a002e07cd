//! `--on-retry CMD`: the one place steady starts a shell, for a command line the user wrote to
//! be run by one, passed to `sh -c` as written. steady's own work (its cleans above all: R25,
//! never a deletion through a shell) runs no shell; the test that checks so allows this file
//! only.

use std::ffi::OsString;

/// The hook's command line: `/bin/sh -c CMD`, the POSIX shell every Linux system has (as
/// `timeout`, `flock -c` and CI runners' `shell: sh` use it).
pub fn argv(cmd: &str) -> Vec<OsString> {
    vec!["/bin/sh".into(), "-c".into(), cmd.into()]
}
