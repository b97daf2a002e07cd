//! The cache lock across machines (`--lock-url postgres://…`): a PostgreSQL session advisory
//! lock, held on one connection for the whole run. CI fleets and HPC clusters share one cache
//! over NFS, where flock is node-local or unsupported; the server releases a session's advisory
//! locks the moment its connection dies, which is flock's promise on one machine. The local
//! locks are taken first (`lock::acquire` calls this backend last), so processes on one
//! machine queue in the kernel instead of each holding a connection while they wait.
//!
//! steady stays single-threaded (a fork from a multi-threaded process can deadlock under
//! qemu-user), so this speaks the wire protocol itself over a plain socket, with
//! `postgres-protocol` for message framing and the password exchanges (cleartext, md5,
//! SCRAM-SHA-256); no async runtime, no helper thread. Every wait is a `poll` bounded in time
//! and re-entered at least once a second to notice stop signals. TLS is not spoken.
//!
//! While the command runs, the attempt's poll loop watches the connection ([`Watcher`]): the
//! socket becomes readable when the server closes it, and a keep-alive query every few seconds
//! (plus TCP keep-alive and `TCP_USER_TIMEOUT`) finds a server that vanished without a word.
//! A lost lock no longer keeps anyone out, so the attempt is killed and retried, after the lock
//! is taken again.
//!
//! Three files: `url` (what `--lock-url` says, parsed as libpq does), `wire` (one connection:
//! socket, login, queries, all bounded by `poll`), `advisory` (the advisory lock on it, its
//! holders, and the watch while it is held). `advisory` is also where `steady status` and
//! `doctor` ask the server who holds and waits for steady's locks: all of steady's SQL is there.

mod advisory;
mod url;
mod wire;

pub use advisory::{Session, advisory_key, sessions_on, steady_locks};
pub use url::Server;
