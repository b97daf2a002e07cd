//! The process interval timer, whose SIGALRM interrupts a blocking `flock` so that a lock wait
//! can time out and report progress. Needs `unsafe` for `setitimer(2)`, which `nix` does not
//! wrap; its POSIX timers would do, but would add a kernel object created on first use (and
//! so a new way for a lock wait to fail) to the one path that bounds how long steady waits.

use std::time::Duration;

/// Arms (or with `None` disarms) the process interval timer: SIGALRM after `after`, then every
/// 10 ms, so that a blocking call entered just after a tick is still interrupted (flock(1) does
/// the same).
pub fn set_alarm(after: Option<Duration>) {
    // `as _`: the field types (`time_t`, `suseconds_t`) are named differently on glibc and
    // musl, and musl's names are deprecated in the libc crate.
    let to_tv = |d: Duration| libc::timeval {
        tv_sec: d.as_secs() as _,
        tv_usec: d.subsec_micros() as _,
    };
    let (value, interval) = match after {
        Some(d) => (
            to_tv(d.max(Duration::from_micros(1))),
            to_tv(Duration::from_millis(10)),
        ),
        None => (to_tv(Duration::ZERO), to_tv(Duration::ZERO)),
    };
    let timer = libc::itimerval {
        it_interval: interval,
        it_value: value,
    };
    // SAFETY: plain syscall reading one valid struct; the old value is not wanted (null).
    unsafe { libc::setitimer(libc::ITIMER_REAL, &timer, std::ptr::null_mut()) };
}
