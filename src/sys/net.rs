//! Socket options for the PostgreSQL lock backend's connection. Needs no `unsafe`: `nix`
//! wraps each option.

use std::io;
use std::os::fd::BorrowedFd;
use std::time::Duration;

use nix::sys::socket::{setsockopt, sockopt};

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
    // The kernel takes ints: seconds from 1, at most 127 probes, milliseconds from 1.
    let secs = |d: Duration| d.as_secs().clamp(1, i32::MAX as u64) as u32;
    setsockopt(&fd, sockopt::KeepAlive, &true)?;
    setsockopt(&fd, sockopt::TcpKeepIdle, &secs(idle))?;
    setsockopt(&fd, sockopt::TcpKeepInterval, &secs(interval))?;
    setsockopt(&fd, sockopt::TcpKeepCount, &count.clamp(1, 127))?;
    let millis = user_timeout.as_millis().clamp(1, i32::MAX as u128) as u32;
    setsockopt(&fd, sockopt::TcpUserTimeout, &millis)?;
    Ok(())
}
