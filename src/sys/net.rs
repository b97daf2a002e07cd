//! Socket options for the PostgreSQL lock backend's connection.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

/// Turns on TCP keep-alive with short timers on a connected socket (`idle` before the first
/// probe, then every `interval`, `count` probes) and bounds how long sent data may go
/// unacknowledged (`TCP_USER_TIMEOUT`): a peer that vanished without closing the connection (a
/// host down, a cut network) then fails the socket within a known time instead of the kernel's
/// default of two hours or more.
pub fn tcp_keepalive(
    fd: BorrowedFd,
    idle: Duration,
    interval: Duration,
    count: u32,
    user_timeout: Duration,
) -> io::Result<()> {
    let set = |level: libc::c_int, name: libc::c_int, value: libc::c_int| -> io::Result<()> {
        // SAFETY: setsockopt reads one int from a valid pointer, on a socket the caller owns.
        let r = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                level,
                name,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    };
    let secs = |d: Duration| d.as_secs().clamp(1, i32::MAX as u64) as libc::c_int;
    set(libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1)?;
    set(libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, secs(idle))?;
    set(libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, secs(interval))?;
    set(
        libc::IPPROTO_TCP,
        libc::TCP_KEEPCNT,
        count.clamp(1, 127) as libc::c_int,
    )?;
    set(
        libc::IPPROTO_TCP,
        libc::TCP_USER_TIMEOUT,
        user_timeout.as_millis().clamp(1, i32::MAX as u128) as libc::c_int,
    )
}
