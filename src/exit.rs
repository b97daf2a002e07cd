//! How a run ends, and the one table that turns it into steady's exit status (spec section 7).
//! Only `main` applies it.

/// The end of a whole run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The command succeeded, possibly after retries.
    Success,
    /// The last attempt exited with this code.
    Command(i32),
    /// The last attempt died of this signal; `reraise` when steady itself was interrupted, so
    /// that steady dies of the same signal.
    Signaled {
        signal: i32,
        reraise: bool,
    },
    /// The watchdog killed the last attempt (timeout, stall, deadline).
    WatchdogKilled,
    /// steady itself failed: bad option or value, unsafe path, I/O error.
    SteadyFailed,
    NotExecutable,
    NotFound,
    /// The lock could not be had within `--lock-timeout`.
    LockTimeout,
}

pub const WATCHDOG_KILLED: u8 = 124;
pub const STEADY_FAILED: u8 = 125;
pub const NOT_EXECUTABLE: u8 = 126;
pub const NOT_FOUND: u8 = 127;
/// EX_TEMPFAIL, as lckdo uses for a lock it could not get.
pub const LOCK_TIMEOUT: u8 = 75;

impl Outcome {
    pub fn code(self) -> u8 {
        match self {
            Outcome::Success => 0,
            // Exit codes are 0..=255 on Linux; anything else cannot come from a real exit.
            Outcome::Command(c) => u8::try_from(c).unwrap_or(1),
            Outcome::Signaled { signal, .. } => u8::try_from(128 + signal).unwrap_or(255),
            Outcome::WatchdogKilled => WATCHDOG_KILLED,
            Outcome::SteadyFailed => STEADY_FAILED,
            Outcome::NotExecutable => NOT_EXECUTABLE,
            Outcome::NotFound => NOT_FOUND,
            Outcome::LockTimeout => LOCK_TIMEOUT,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_code_table() {
        assert_eq!(Outcome::Success.code(), 0);
        assert_eq!(Outcome::Command(3).code(), 3);
        assert_eq!(
            Outcome::Signaled {
                signal: 9,
                reraise: false
            }
            .code(),
            137
        );
        assert_eq!(Outcome::WatchdogKilled.code(), 124);
        assert_eq!(Outcome::SteadyFailed.code(), 125);
        assert_eq!(Outcome::NotExecutable.code(), 126);
        assert_eq!(Outcome::NotFound.code(), 127);
        assert_eq!(Outcome::LockTimeout.code(), 75);
    }
}
