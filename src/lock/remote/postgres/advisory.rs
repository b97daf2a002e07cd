//! The session advisory lock: taking it (waiting with `lock_timeout`, naming the holder from
//! `pg_stat_activity`), watching it while the command runs, taking it again after a loss.

use std::fmt;
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use nix::poll::PollFlags;
use postgres_protocol::message::backend::Message;
use postgres_protocol::message::frontend;

use crate::attempt::Watcher;
use crate::lock::{Backend, LockError, Remote, RemoteFailure, RemoteKey};
use crate::ui;

use super::url::*;
use super::wire::*;

/// How long past its `lock_timeout` the server may take to say so before steady stops
/// believing it is there at all.
pub(super) const ANSWER_GRACE: Duration = Duration::from_secs(5);

/// PostgreSQL cuts `application_name` to this many bytes (NAMEDATALEN - 1).
pub(super) const APP_NAME_MAX: usize = 63;

/// The part of `application_name` left for the host name, so that pid and host survive the
/// cut whatever the command.
pub(super) const HOST_MAX: usize = 24;

/// SQLSTATE of `lock_timeout` expiring (lock_not_available).
pub(super) const LOCK_NOT_AVAILABLE: &str = "55P03";

impl Backend for Server {
    fn acquire(
        &self,
        key: &RemoteKey,
        shared: bool,
        give_up: Option<Instant>,
        progress_every: Duration,
    ) -> Result<Box<dyn Remote>, LockError> {
        let mut lock = PgLock {
            server: self.clone(),
            key: advisory_key(&key.identity),
            label: key.label.clone(),
            shared,
            progress_every: progress_every.max(Duration::from_millis(10)),
            conn: None,
            ping_sent: None,
            next_ping: Instant::now(),
            lost: None,
        };
        lock.take(give_up).map_err(|e| lock.lock_error(e))?;
        Ok(Box::new(lock))
    }
}

/// The 64-bit advisory key of a lock identity. Every machine must compute the same key from
/// the same identity, whatever its byte order or steady's version, so this is a fixed hash
/// (FNV-1a), not `std`'s randomized one. A collision only makes two caches wait for each other.
pub fn advisory_key(identity: &str) -> i64 {
    let h = b"steady-lock\0"
        .iter()
        .chain(identity.as_bytes())
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    h as i64
}

/// `steady <pid>@<host> <command>`, printable ASCII only (the server turns anything else into
/// `?`), cut to what the server keeps. pid and host come first and the host is capped, so the
/// cut only ever shortens the command.
pub(super) fn application_name(pid: u32, host: &str, command: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' {
                    c
                } else {
                    '?'
                }
            })
            .collect()
    };
    let host: String = clean(host)
        .replace(' ', "?")
        .chars()
        .take(HOST_MAX)
        .collect();
    let host = if host.is_empty() { "?".into() } else { host };
    let mut name = format!("steady {pid}@{host} {}", clean(command));
    name.truncate(APP_NAME_MAX);
    name.trim_end().to_owned()
}

/// The pid, host and command in an `application_name` that [`application_name`] made.
pub(super) fn parse_application_name(name: &str) -> Option<(u32, &str, &str)> {
    let rest = name.strip_prefix("steady ")?;
    let (who, command) = rest.split_once(' ').unwrap_or((rest, ""));
    let (pid, host) = who.split_once('@')?;
    Some((pid.parse().ok()?, host, command))
}

pub(super) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

/// Who holds advisory key `key` in this database, besides this session: the first holder
/// described, and how many more share it.
pub(super) fn holders(conn: &mut Conn, key: i64) -> Result<Option<String>, PgError> {
    let held: Vec<Session> = sessions(conn, Some(key))?
        .into_iter()
        .filter(|s| s.granted)
        .collect();
    let Some(first) = held.first() else {
        return Ok(None);
    };
    let mut s = first.describe();
    if held.len() > 1 {
        s.push_str(&format!(", and {} other holder(s)", held.len() - 1));
    }
    Ok(Some(s))
}

/// One session holding or waiting for an advisory lock, as the server shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub key: i64,
    /// Holds the lock; else waits for it.
    pub granted: bool,
    pub exclusive: bool,
    /// The server process serving the session (`pg_stat_activity.pid`).
    pub backend: i32,
    /// Who the session is, when it is a steady's: from its `application_name`.
    pub steady: Option<SteadyClient>,
    pub application_name: String,
    /// Where the session connects from; empty for a Unix socket.
    pub client_addr: String,
    /// How long the session has been connected. steady asks for its lock as soon as it has
    /// connected, so for a steady that waits this is how long it has waited; for a holder it
    /// also counts any wait before the grant. Nothing closer is on the server: the holder's
    /// keep-alive queries move `query_start` and `state_change` every few seconds.
    pub connected_for: Option<Duration>,
}

/// The steady process behind a session, as its `application_name` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SteadyClient {
    pub pid: u32,
    pub host: String,
    /// The command it runs, ending in `…` where the server cut the name; empty when the
    /// name carries none.
    pub command: String,
}

impl Session {
    /// As people want to read it, for a one-line message.
    pub fn describe(&self) -> String {
        describe_holder(
            &self.backend.to_string(),
            &self.application_name,
            &self.client_addr,
            self.connected_for,
        )
    }
}

/// The two halves pg_locks shows a bigint advisory key as: `classid` is the high 32 bits,
/// `objid` the low ones (with `objsubid` 1 for the bigint form).
fn key_halves(key: i64) -> (u32, u32) {
    let k = key as u64;
    ((k >> 32) as u32, k as u32)
}

fn key_from_halves(classid: u32, objid: u32) -> i64 {
    ((u64::from(classid) << 32) | u64::from(objid)) as i64
}

/// The sessions holding or waiting for advisory locks of this database, besides this one:
/// on `key` only, or on every bigint key (the form steady takes). Holders come first, then
/// by key and by how long they have been connected.
fn sessions(conn: &mut Conn, key: Option<i64>) -> Result<Vec<Session>, PgError> {
    let only = key.map_or_else(String::new, |k| {
        let (hi, lo) = key_halves(k);
        format!("AND l.classid = {hi} AND l.objid = {lo} ")
    });
    let rows = conn.query(&format!(
        "SELECT l.classid, l.objid, l.granted, l.mode, l.pid, a.application_name, \
                host(a.client_addr), \
                (extract(epoch FROM now() - a.backend_start) * 1000)::bigint \
         FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND l.objsubid = 1 {only}\
           AND l.pid <> pg_backend_pid() \
           AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         ORDER BY NOT l.granted, l.classid, l.objid, a.backend_start"
    ))?;
    Ok(rows.iter().filter_map(|r| session_of(r)).collect())
}

/// A row of [`sessions`]' query; `None` for a row the server filled in unexpectedly.
fn session_of(row: &[Option<String>]) -> Option<Session> {
    let field = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
    let app = field(5);
    let steady = parse_application_name(&app).map(|(pid, host, command)| SteadyClient {
        pid,
        host: host.to_owned(),
        // A name the server cut says so, rather than show a different command.
        command: if !command.is_empty() && app.len() >= APP_NAME_MAX {
            format!("{command}…")
        } else {
            command.to_owned()
        },
    });
    Some(Session {
        key: key_from_halves(field(0).parse().ok()?, field(1).parse().ok()?),
        granted: field(2) == "t",
        // ExclusiveLock or ShareLock: the only modes of an advisory lock.
        exclusive: field(3) == "ExclusiveLock",
        backend: field(4).parse().ok()?,
        steady,
        application_name: app,
        client_addr: field(6),
        connected_for: field(7).parse().ok().map(Duration::from_millis),
    })
}

/// Why the server could not be asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookFailed {
    pub failure: RemoteFailure,
    /// What happened, naming the server without its password.
    pub message: String,
}

/// Every advisory lock that a steady holds or waits for in the database of `server`, with
/// every session on it (a `psql` holding one of steady's keys among them), over one short
/// connection of its own. It takes no lock.
pub fn steady_locks(server: &Server) -> Result<Vec<Session>, LookFailed> {
    let all = look(server, None)?;
    // Other applications' advisory locks in the same database are none of steady's business.
    let ours: Vec<i64> = all
        .iter()
        .filter(|s| s.steady.is_some())
        .map(|s| s.key)
        .collect();
    Ok(all.into_iter().filter(|s| ours.contains(&s.key)).collect())
}

/// The sessions holding or waiting for advisory key `key` in the database of `server`,
/// steady's or not.
pub fn sessions_on(server: &Server, key: i64) -> Result<Vec<Session>, LookFailed> {
    look(server, Some(key))
}

fn look(server: &Server, key: Option<i64>) -> Result<Vec<Session>, LookFailed> {
    let at = server.shown();
    Conn::open(server)
        .and_then(|mut c| sessions(&mut c, key))
        .map_err(|e| match e {
            PgError::Refused(why) => LookFailed {
                failure: RemoteFailure::Refused,
                message: format!("PostgreSQL at {at} refused steady's login: {why}"),
            },
            PgError::Query { code, message } => LookFailed {
                failure: RemoteFailure::Refused,
                message: format!(
                    "PostgreSQL at {at} failed the query for its locks: {message} (SQLSTATE {code})"
                ),
            },
            e => LookFailed {
                failure: RemoteFailure::Unreachable,
                message: format!(
                    "cannot reach PostgreSQL at {at}: {}",
                    describe_query_error(&e)
                ),
            },
        })
}

/// A holder as people want to read it: the steady process and its machine where the
/// `application_name` says, else the server's own view of the session.
pub(super) fn describe_holder(
    backend: &str,
    app: &str,
    addr: &str,
    connected: Option<Duration>,
) -> String {
    let mut s = match parse_application_name(app) {
        Some((pid, host, "")) => format!("pid {pid} on {host}"),
        Some((pid, host, command)) => {
            // A name the server cut says so, rather than show a different command.
            let cut = if app.len() >= APP_NAME_MAX { "…" } else { "" };
            format!("pid {pid} on {host} (`{command}{cut}`)")
        }
        None => {
            let from = if addr.is_empty() {
                "a local socket".to_owned()
            } else {
                addr.to_owned()
            };
            let app = if app.is_empty() {
                String::new()
            } else {
                format!("`{app}` ")
            };
            format!("PostgreSQL session {backend} ({app}from {from})")
        }
    };
    if let Some(d) = connected {
        s.push_str(&format!(", connected for {}", ui::human(d)));
    }
    s
}

/// The held (or wanted) advisory lock and its connection.
pub(super) struct PgLock {
    pub(super) server: Server,
    pub(super) key: i64,
    /// What the key stands for (the cache, or a namespace), for messages.
    pub(super) label: String,
    pub(super) shared: bool,
    pub(super) progress_every: Duration,
    pub(super) conn: Option<Conn>,
    /// When the keep-alive query in flight was sent.
    pub(super) ping_sent: Option<Instant>,
    pub(super) next_ping: Instant,
    pub(super) lost: Option<String>,
}

impl fmt::Debug for PgLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgLock")
            .field("server", &self.server)
            .field("key", &self.key)
            .field("label", &self.label)
            .field("lost", &self.lost)
            .finish_non_exhaustive()
    }
}

impl PgLock {
    pub(super) fn mode(&self) -> &'static str {
        if self.shared { "shared" } else { "exclusive" }
    }

    /// Connects and takes the lock, waiting until `give_up` (forever without one).
    pub(super) fn take(&mut self, give_up: Option<Instant>) -> Result<(), PgError> {
        self.conn = None;
        let started = Instant::now();
        let mut conn = Conn::open(&self.server)?;
        ui::detail(&format!(
            "connected to PostgreSQL at {} as `{}` (server {}, session {})",
            self.server.shown(),
            self.server.user,
            conn.major,
            conn.backend_pid
        ));
        let suffix = if self.shared { "_shared" } else { "" };
        let rows = conn.query(&format!(
            "SELECT pg_try_advisory_lock{suffix}({})",
            self.key
        ))?;
        let got = rows.first().and_then(|r| r.first().cloned().flatten()) == Some("t".into());
        if !got {
            // Only words for the message: a server that will not say still grants the lock.
            let holder = holders(&mut conn, self.key).ok().flatten();
            if give_up.is_some_and(|g| Instant::now() >= g) {
                return Err(PgError::Contended {
                    holder,
                    waited: started.elapsed(),
                });
            }
            let how = if self.shared { " (shared)" } else { "" };
            ui::status(&format!(
                "waiting for the lock{how} on {} in PostgreSQL at {}, held by {}",
                self.label,
                self.server.shown(),
                holder.as_deref().unwrap_or("another session")
            ));
            self.wait(&mut conn, give_up, started)?;
            ui::detail(&format!(
                "got the lock on {} in PostgreSQL after {}",
                self.label,
                ui::human(started.elapsed())
            ));
        }
        self.conn = Some(conn);
        self.ping_sent = None;
        self.next_ping = Instant::now() + self.server.ping_every;
        self.lost = None;
        ui::detail(&format!("locked {}", self.describe()));
        Ok(())
    }

    /// Blocks in the server (`pg_advisory_lock`, bounded by `lock_timeout`) until the lock is
    /// granted, saying who holds it every `progress_every`.
    pub(super) fn wait(
        &self,
        conn: &mut Conn,
        give_up: Option<Instant>,
        started: Instant,
    ) -> Result<(), PgError> {
        self.send_blocking_lock(conn, give_up)?;
        let mut next_progress = started + self.progress_every;
        let mut answer = LockAnswer::default();
        loop {
            if let Some(sig) = crate::sys::stop_signal_pending() {
                return Err(PgError::Stopped(sig));
            }
            let now = Instant::now();
            check_answer_due(give_up, now)?;
            if now >= next_progress {
                self.say_still_waiting(now - started);
                next_progress += self.progress_every;
            }
            let mut wake = next_progress.min(now + MAX_BLOCK);
            if let Some(g) = give_up {
                wake = wake.min(g + ANSWER_GRACE);
            }
            if poll_for(conn.sock.fd(), PollFlags::POLLIN, wake) && answer.read(conn)? {
                break;
            }
        }
        answer.outcome(conn, self.key, started)
    }

    /// Queues the blocking lock query, with the server's own `lock_timeout` as the bound so
    /// that the server, not steady, ends a wait that runs out.
    fn send_blocking_lock(&self, conn: &mut Conn, give_up: Option<Instant>) -> Result<(), PgError> {
        let suffix = if self.shared { "_shared" } else { "" };
        // lock_timeout 0 means "no limit" to the server, so the smallest real limit is 1 ms.
        let ms = give_up.map_or(0, |g| {
            g.saturating_duration_since(Instant::now())
                .as_millis()
                .max(1)
        });
        frontend::query(
            &format!(
                "SET lock_timeout = {ms}; SELECT pg_advisory_lock{suffix}({}); SET lock_timeout = 0",
                self.key
            ),
            &mut conn.output,
        )
        .map_err(protocol)?;
        conn.send(Instant::now() + QUERY_TIMEOUT)
    }

    fn say_still_waiting(&self, waited: Duration) {
        // The waiting session is busy; a second one looks who holds the lock now.
        let who = Conn::open(&self.server)
            .and_then(|mut c| holders(&mut c, self.key))
            .ok()
            .flatten()
            .unwrap_or_else(|| "another session".into());
        ui::status(&format!(
            "still waiting for the lock on {} in PostgreSQL after {}, held by {who}",
            self.label,
            ui::human(waited)
        ));
    }

    pub(super) fn lock_error(&self, e: PgError) -> LockError {
        let at = self.server.shown();
        let (failure, message) = match e {
            PgError::Stopped(sig) => return LockError::Interrupted(sig),
            PgError::Contended { holder, waited } => (
                RemoteFailure::TimedOut,
                format!(
                    "gave up waiting for the lock on {} in PostgreSQL at {at} after {}, held by {}",
                    self.label,
                    ui::human(waited),
                    holder.as_deref().unwrap_or("another session")
                ),
            ),
            PgError::Net(why) => (
                RemoteFailure::Unreachable,
                format!(
                    "cannot reach PostgreSQL at {at} for the lock on {}: {why}",
                    self.label
                ),
            ),
            PgError::Refused(why) => (
                RemoteFailure::Refused,
                format!("PostgreSQL at {at} refused steady's login: {why}"),
            ),
            PgError::Query { code, message } => (
                RemoteFailure::Refused,
                format!("PostgreSQL at {at} failed the lock query: {message} (SQLSTATE {code})"),
            ),
        };
        LockError::Remote { failure, message }
    }

    /// Reads what the server sent and keeps the keep-alive query going; `Err` once the
    /// connection is gone or the server stopped answering.
    pub(super) fn look(&mut self, now: Instant) -> Result<(), PgError> {
        let timeout = self.server.ping_timeout();
        let every = self.server.ping_every;
        let Some(conn) = self.conn.as_mut() else {
            return Err(PgError::Net("not connected".into()));
        };
        for m in conn.pump()? {
            if let Message::ReadyForQuery(_) = m {
                self.ping_sent = None;
            }
        }
        if let Some(sent) = self.ping_sent {
            if now >= sent + timeout {
                return Err(PgError::Net(format!(
                    "the server did not answer a keep-alive query for {}",
                    ui::human(timeout)
                )));
            }
        } else if now >= self.next_ping {
            // The empty query is the cheapest round trip through the session: it proves the
            // server process that holds the lock still serves this connection.
            frontend::query("", &mut conn.output).map_err(protocol)?;
            self.ping_sent = Some(now);
            self.next_ping = now + every;
        }
        conn.send_now()
    }
}

/// Ends a wait whose server went quiet past its own `lock_timeout`: it should have said
/// so by then, so it is gone or cut off.
fn check_answer_due(give_up: Option<Instant>, now: Instant) -> Result<(), PgError> {
    if let Some(g) = give_up
        && now >= g + ANSWER_GRACE
    {
        return Err(PgError::Net(format!(
            "the server did not answer for {} past --lock-timeout",
            ui::human(ANSWER_GRACE)
        )));
    }
    Ok(())
}

/// What the server has said so far about the blocking lock query.
#[derive(Default)]
struct LockAnswer {
    granted: bool,
    /// The first error (SQLSTATE, text): later ones only follow from it.
    failed: Option<(String, String)>,
}

impl LockAnswer {
    /// Takes in every message that has arrived; true once the server is ready again, i.e.
    /// the query is over one way or the other.
    fn read(&mut self, conn: &mut Conn) -> Result<bool, PgError> {
        let mut ready = false;
        for m in conn.pump()? {
            match m {
                Message::DataRow(_) => self.granted = true,
                Message::ErrorResponse(e) => {
                    let (_, code, message) = error_fields(&e);
                    self.failed.get_or_insert((code, message));
                }
                Message::ReadyForQuery(_) => ready = true,
                _ => {}
            }
        }
        Ok(ready)
    }

    fn outcome(self, conn: &mut Conn, key: i64, started: Instant) -> Result<(), PgError> {
        match self.failed {
            Some((code, _)) if code == LOCK_NOT_AVAILABLE => Err(PgError::Contended {
                holder: holders(conn, key).ok().flatten(),
                waited: started.elapsed(),
            }),
            Some((code, message)) => Err(PgError::Query { code, message }),
            None if self.granted => Ok(()),
            None => Err(PgError::Net(
                "the server ended the lock query without an answer".into(),
            )),
        }
    }
}

impl Watcher for PgLock {
    fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.conn.as_ref().map(|c| c.sock.fd())
    }

    fn next_check(&self) -> Option<Instant> {
        self.conn.as_ref()?;
        Some(match self.ping_sent {
            Some(sent) => sent + self.server.ping_timeout(),
            None => self.next_ping,
        })
    }

    fn check(&mut self, now: Instant) -> Result<(), String> {
        if let Some(why) = &self.lost {
            return Err(why.clone());
        }
        match self.look(now) {
            Ok(()) => Ok(()),
            Err(e) => {
                let why = format!(
                    "PostgreSQL at {}: {}",
                    self.server.shown(),
                    describe_query_error(&e)
                );
                // Closing our end tells a live server to release the lock now, rather than
                // when its keep-alive gives up on us.
                self.conn = None;
                self.lost = Some(why.clone());
                Err(why)
            }
        }
    }
}

impl Remote for PgLock {
    fn describe(&self) -> String {
        format!(
            "{} in PostgreSQL at {} ({}, advisory key {}), shared with every machine that uses that server",
            self.label,
            self.server.shown(),
            self.mode(),
            self.key
        )
    }

    fn lost(&self) -> Option<String> {
        self.lost.clone()
    }

    fn reacquire(&mut self, give_up: Option<Instant>) -> Result<(), LockError> {
        ui::status(&format!(
            "taking the lock on {} in PostgreSQL at {} again",
            self.label,
            self.server.shown()
        ));
        self.take(give_up).map_err(|e| self.lock_error(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn application_names_fit_and_parse_back() {
        let long = "uv pip install ".to_owned() + &"x".repeat(100);
        let name = application_name(4_194_304, "node-17.cluster.example.org", &long);
        assert!(name.len() <= APP_NAME_MAX, "{name}");
        let (pid, host, command) = parse_application_name(&name).unwrap();
        assert_eq!((pid, host), (4_194_304, "node-17.cluster.example."));
        assert!(command.starts_with("uv pip install xx"), "{command}");
        assert!(describe_holder("1", &name, "", None).ends_with("xx…`)"));

        let name = application_name(7, "h", "pip install 'caf\u{e9}'");
        assert_eq!(name, "steady 7@h pip install 'caf?'");
        assert_eq!(
            parse_application_name(&name),
            Some((7, "h", "pip install 'caf?'"))
        );
        assert_eq!(parse_application_name("psql"), None);
        assert_eq!(
            describe_holder("99", "psql", "10.0.0.5", Some(Duration::from_secs(3))),
            "PostgreSQL session 99 (`psql` from 10.0.0.5), connected for 3s"
        );
        assert_eq!(
            describe_holder("99", "steady 12@n1 uv sync", "", None),
            "pid 12 on n1 (`uv sync`)"
        );
    }

    #[test]
    fn keys_come_back_whole_from_pg_locks_halves() {
        for key in [0, 1, -1, i64::MIN, i64::MAX, advisory_key("namespace:ci")] {
            let (hi, lo) = key_halves(key);
            assert_eq!(key_from_halves(hi, lo), key);
        }
        // What pg_locks shows for pg_advisory_lock(-2): both halves all ones but the last bit.
        assert_eq!(key_halves(-2), (4_294_967_295, 4_294_967_294));
        let cut = application_name(12, "n1", &"x".repeat(100));
        let row = |app: &str, addr: Option<&str>| -> Vec<Option<String>> {
            [
                Some("4294967295"),
                Some("4294967294"),
                Some("f"),
                Some("ShareLock"),
                Some("99"),
                Some(app),
                addr,
                Some("1500"),
            ]
            .iter()
            .map(|f| f.map(str::to_owned))
            .collect()
        };
        let s = session_of(&row(&cut, None)).unwrap();
        assert_eq!(
            (s.key, s.granted, s.exclusive, s.backend),
            (-2, false, false, 99)
        );
        assert_eq!(s.connected_for, Some(Duration::from_millis(1500)));
        let client = s.steady.unwrap();
        assert_eq!((client.pid, client.host.as_str()), (12, "n1"));
        assert!(client.command.ends_with("xx…"), "{}", client.command);
        let s = session_of(&row("psql", Some("10.0.0.5"))).unwrap();
        assert_eq!((s.steady, s.client_addr.as_str()), (None, "10.0.0.5"));
    }

    #[test]
    fn advisory_keys_are_fixed_per_identity() {
        // Machines running different builds must agree: the value is part of the protocol.
        assert_eq!(advisory_key("namespace:ci"), advisory_key("namespace:ci"));
        assert_ne!(advisory_key("namespace:ci"), advisory_key("namespace:cj"));
        assert_eq!(advisory_key(""), -6_774_615_863_444_710_065);
    }
}
