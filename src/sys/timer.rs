//! The process interval timer (`setitimer`), whose SIGALRM interrupts a blocking `flock` so a
//! lock wait can time out. Unsafe because `nix` does not wrap `setitimer`.

use std::time::Duration;

/// Arms (or with `None` disarms) the process interval timer: SIGALRM after `after`, then every
/// 10 ms, so that a blocking call entered just after a tick is still interrupted (flock(1) does
/// the same).
pub fn set_alarm(after: Option<Duration>) {
    let to_tv = |d: Duration| libc::timeval {
        tv_sec: d.as_secs() as libc::time_t,
        tv_usec: d.subsec_micros() as libc::suseconds_t,
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
    // SAFETY: plain syscall with a valid struct; the old value is not wanted.
    unsafe { libc::setitimer(libc::ITIMER_REAL, &timer, std::ptr::null_mut()) };
}
