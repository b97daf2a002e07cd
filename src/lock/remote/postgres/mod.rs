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

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;
use postgres_protocol::authentication::{md5_hash, sasl};
use postgres_protocol::message::backend::{ErrorResponseBody, Message};
use postgres_protocol::message::frontend;

use crate::attempt::Watcher;
use crate::lock::holders;
use crate::lock::{self, Backend, LockError, Remote, RemoteFailure, RemoteKey};
use crate::sys;
use crate::ui;

/// How long connecting and logging in may take, unless the URL says `connect_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a short query (try the lock, name its holder) may take to answer.
const QUERY_TIMEOUT: Duration = Duration::from_secs(15);

/// Longest single `poll` while waiting: a stop signal that lands just before the call does not
/// interrupt it, so the wait is re-entered at least this often to notice one.
const MAX_BLOCK: Duration = Duration::from_secs(1);

/// How long past its `lock_timeout` the server may take to say so before steady stops
/// believing it is there at all.
const ANSWER_GRACE: Duration = Duration::from_secs(5);

/// PostgreSQL cuts `application_name` to this many bytes (NAMEDATALEN - 1).
const APP_NAME_MAX: usize = 63;

/// The part of `application_name` left for the host name, so that pid and host survive the
/// cut whatever the command.
const HOST_MAX: usize = 24;

/// SQLSTATE of `lock_timeout` expiring (lock_not_available).
const LOCK_NOT_AVAILABLE: &str = "55P03";

/// Where and how to reach the server, from `--lock-url`.
#[derive(Clone)]
pub struct Server {
    addr: Addr,
    user: String,
    password: Option<String>,
    dbname: String,
    connect_timeout: Duration,
    /// How often a held lock's connection is checked with a query; a check unanswered for
    /// twice this long means the server is gone.
    ping_every: Duration,
    /// Who holds the lock, for anyone who waits for it: `steady <pid>@<host> <command>`.
    application_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Addr {
    Tcp {
        host: String,
        port: u16,
    },
    /// Socket directories to try in order: the one the URL names with `host=/dir`, or the
    /// usual ones when it names no host.
    Unix {
        dirs: Vec<PathBuf>,
        port: u16,
    },
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // No password: Debug output ends up in logs.
        f.debug_struct("Server")
            .field("at", &self.shown())
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Parses a libpq-style URL: `postgres[ql]://[user[:password]@][host][:port][/dbname]
    /// [?param=value&…]`, with `host=/dir` for a Unix socket directory. The password may come
    /// from `PGPASSWORD` instead, which keeps it out of `ps`.
    pub fn parse(url: &str, ping_every: Duration) -> Result<Server, String> {
        let shown = redact(url);
        let bad = |why: String| format!("--lock-url `{shown}`: {why}");
        let rest = url
            .strip_prefix("postgresql://")
            .or_else(|| url.strip_prefix("postgres://"))
            .ok_or_else(|| {
                format!("--lock-url must start with postgres:// or postgresql://, got `{shown}`")
            })?;
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let mut user = None;
        let mut password = None;
        if let Some(info) = userinfo {
            let (u, p) = match info.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (info, None),
            };
            user = Some(decode(u).map_err(bad)?).filter(|u| !u.is_empty());
            password = p.map(decode).transpose().map_err(bad)?;
        }
        let (host, port) = split_host_port(hostport).map_err(bad)?;
        let mut host = Some(decode(host).map_err(bad)?).filter(|h| !h.is_empty());
        let mut port = port.map(|p| parse_port(&p)).transpose().map_err(bad)?;
        let mut dbname = Some(decode(path).map_err(bad)?).filter(|d| !d.is_empty());
        let mut connect_timeout = CONNECT_TIMEOUT;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| bad(format!("`{pair}` is not name=value")))?;
            let v = decode(v).map_err(bad)?;
            match k {
                "host" => host = Some(v).filter(|h| !h.is_empty()),
                "port" => port = Some(parse_port(&v).map_err(bad)?),
                "user" => user = Some(v).filter(|u| !u.is_empty()),
                "password" => password = Some(v),
                "dbname" => dbname = Some(v).filter(|d| !d.is_empty()),
                "sslmode" => match v.as_str() {
                    "disable" | "allow" | "prefer" => {}
                    "require" | "verify-ca" | "verify-full" => {
                        return Err(bad(format!(
                            "sslmode={v} asks for TLS, which steady does not speak; use \
                             sslmode=disable on a local network or through a tunnel"
                        )));
                    }
                    _ => return Err(bad(format!("unknown sslmode `{v}`"))),
                },
                "connect_timeout" => {
                    let secs: u64 = v.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                        bad(format!(
                            "connect_timeout `{v}` is not a positive number of seconds"
                        ))
                    })?;
                    connect_timeout = Duration::from_secs(secs);
                }
                _ => {
                    return Err(bad(format!(
                        "unknown parameter `{k}` (steady knows host, port, user, password, \
                         dbname, sslmode and connect_timeout)"
                    )));
                }
            }
        }
        if host.as_deref().is_some_and(|h| h.contains(',')) {
            return Err(bad(
                "several hosts are not supported; name one server".into()
            ));
        }
        let port = port.unwrap_or(5432);
        let addr = match host {
            Some(h) if h.starts_with('/') => Addr::Unix {
                dirs: vec![PathBuf::from(h)],
                port,
            },
            Some(h) => Addr::Tcp { host: h, port },
            None => Addr::Unix {
                dirs: ["/run/postgresql", "/var/run/postgresql", "/tmp"]
                    .iter()
                    .map(PathBuf::from)
                    .collect(),
                port,
            },
        };
        let user = match user {
            Some(u) => u,
            None => nix::unistd::User::from_uid(nix::unistd::geteuid())
                .ok()
                .flatten()
                .map(|u| u.name)
                .ok_or_else(|| bad("no user given, and this user has no name".into()))?,
        };
        let password = password.or_else(|| std::env::var(crate::env::PGPASSWORD).ok());
        Ok(Server {
            addr,
            dbname: dbname.unwrap_or_else(|| user.clone()),
            user,
            password,
            connect_timeout,
            ping_every: ping_every.max(Duration::from_millis(100)),
            application_name: application_name(std::process::id(), &hostname(), ""),
        })
    }

    /// Names `argv` as the command of the lock's holder, for anyone who waits for it.
    pub fn for_command(mut self, argv: &[std::ffi::OsString]) -> Server {
        let words: Vec<String> = argv
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        // Every session of the server can read application_name: no passwords in it.
        self.application_name = application_name(
            std::process::id(),
            &hostname(),
            &holders::hide_url_passwords(&shell_words::join(words)),
        );
        self
    }

    /// Where the server is, for messages: never the password.
    pub fn shown(&self) -> String {
        match &self.addr {
            Addr::Tcp { host, port } if host.contains(':') => {
                format!("[{host}]:{port}/{}", self.dbname)
            }
            Addr::Tcp { host, port } => format!("{host}:{port}/{}", self.dbname),
            Addr::Unix { dirs, port } if dirs.len() == 1 => format!(
                "{}/.s.PGSQL.{port} (database {})",
                dirs[0].display(),
                self.dbname
            ),
            Addr::Unix { port, .. } => {
                format!(
                    "the local socket .s.PGSQL.{port} (database {})",
                    self.dbname
                )
            }
        }
    }

    fn ping_timeout(&self) -> Duration {
        self.ping_every * 2
    }
}

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
fn application_name(pid: u32, host: &str, command: &str) -> String {
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
fn parse_application_name(name: &str) -> Option<(u32, &str, &str)> {
    let rest = name.strip_prefix("steady ")?;
    let (who, command) = rest.split_once(' ').unwrap_or((rest, ""));
    let (pid, host) = who.split_once('@')?;
    Some((pid.parse().ok()?, host, command))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

/// The URL with its password (in the user part or as `password=`) replaced by `***`.
fn redact(url: &str) -> String {
    let mut out = holders::hide_url_passwords(url);
    if let Some(q) = out.find('?') {
        let params: Vec<String> = out[q + 1..]
            .split('&')
            .map(|p| match p.split_once('=') {
                Some(("password", _)) => "password=***".to_owned(),
                _ => p.to_owned(),
            })
            .collect();
        out = format!("{}?{}", &out[..q], params.join("&"));
    }
    out
}

/// Percent-decoding, as URLs need for `@`, `:` or `/` in a user, password or socket path.
fn decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent-escape in `{s}`"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("`{s}` does not decode to UTF-8"))
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`.
fn split_host_port(s: &str) -> Result<(&str, Option<String>), String> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("`{s}`: unclosed `[`"))?;
        return match after {
            "" => Ok((host, None)),
            _ => match after.strip_prefix(':') {
                Some(p) => Ok((host, Some(p.to_owned()))),
                None => Err(format!("`{s}`: junk after `]`")),
            },
        };
    }
    Ok(match s.split_once(':') {
        Some((h, p)) => (h, Some(p.to_owned())),
        None => (s, None),
    })
}

fn parse_port(p: &str) -> Result<u16, String> {
    p.parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("port `{p}` is not a number from 1 to 65535"))
}

/// Why talking to the server failed.
#[derive(Debug)]
enum PgError {
    /// The server cannot be reached, or went away: a later run may succeed.
    Net(String),
    /// The server refused steady (login, database, unsupported authentication): the user
    /// must fix the URL or the server.
    Refused(String),
    /// A query failed.
    Query { code: String, message: String },
    /// The lock is held and the wait is over.
    Contended {
        holder: Option<String>,
        waited: Duration,
    },
    /// steady was told to stop.
    Stopped(Signal),
}

fn protocol(e: io::Error) -> PgError {
    PgError::Net(format!("bad message from the server ({e})"))
}

/// The severity, SQLSTATE and text of an ErrorResponse.
fn error_fields(body: &ErrorResponseBody) -> (String, String, String) {
    let (mut severity, mut code, mut message) = (String::new(), String::new(), String::new());
    let mut fields = body.fields();
    while let Ok(Some(f)) = fields.next() {
        let value = || String::from_utf8_lossy(f.value_bytes()).into_owned();
        match f.type_() {
            b'V' => severity = value(),
            b'S' if severity.is_empty() => severity = value(),
            b'C' => code = value(),
            b'M' => message = value(),
            _ => {}
        }
    }
    (severity, code, message)
}

enum Sock {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Sock {
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Sock::Tcp(s) => s.as_fd(),
            Sock::Unix(s) => s.as_fd(),
        }
    }
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Sock::Tcp(s) => s.read(buf),
            Sock::Unix(s) => s.read(buf),
        }
    }
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sock::Tcp(s) => s.write(buf),
            Sock::Unix(s) => s.write(buf),
        }
    }
}

/// Opens the socket, non-blocking and close-on-exec (std's default: the command and any
/// daemon it leaves must never hold the connection, or the lock would outlive steady).
fn open_socket(server: &Server, until: Instant) -> Result<Sock, PgError> {
    let sock = match &server.addr {
        Addr::Tcp { host, port } => {
            let addrs: Vec<_> = (host.as_str(), *port)
                .to_socket_addrs()
                .map_err(|e| PgError::Net(format!("cannot resolve `{host}` ({e})")))?
                .collect();
            let mut last = format!("`{host}` has no address");
            let mut found = None;
            for a in addrs {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    last = format!(
                        "connecting timed out after {}",
                        ui::human(server.connect_timeout)
                    );
                    break;
                }
                match TcpStream::connect_timeout(&a, left) {
                    Ok(s) => {
                        found = Some(s);
                        break;
                    }
                    Err(e) => last = e.to_string(),
                }
            }
            let s = found.ok_or(PgError::Net(last))?;
            let _ = s.set_nodelay(true);
            let every = server.ping_every;
            if let Err(e) = sys::tcp_keepalive(
                s.as_fd(),
                every,
                (every / 2).max(Duration::from_secs(1)),
                3,
                server.ping_timeout(),
            ) {
                ui::detail(&format!(
                    "cannot set TCP keep-alive on the PostgreSQL connection ({e}); a vanished \
                     server is noticed by the keep-alive query alone"
                ));
            }
            Sock::Tcp(s)
        }
        Addr::Unix { dirs, port } => {
            let name = format!(".s.PGSQL.{port}");
            let path = dirs
                .iter()
                .map(|d| d.join(&name))
                .find(|p| p.exists())
                .unwrap_or_else(|| dirs[0].join(&name));
            let s = UnixStream::connect(&path).map_err(|e| {
                PgError::Net(format!("cannot connect to `{}` ({e})", path.display()))
            })?;
            Sock::Unix(s)
        }
    };
    let nonblocking = match &sock {
        Sock::Tcp(s) => s.set_nonblocking(true),
        Sock::Unix(s) => s.set_nonblocking(true),
    };
    nonblocking.map_err(|e| PgError::Net(e.to_string()))?;
    Ok(sock)
}

/// One logged-in session.
struct Conn {
    sock: Sock,
    input: BytesMut,
    output: BytesMut,
    /// The server process of this session, as `pg_locks` and `pg_stat_activity` name it.
    backend_pid: i32,
    /// The server's major version (15 for 15.4), 0 when it did not say.
    major: u32,
    /// The last FATAL message the server sent: why it is about to close the connection.
    fatal: Option<String>,
    /// The server closed the connection; what it sent before is still read.
    eof: bool,
}

impl Conn {
    /// Connects and logs in, within the server's connect timeout.
    fn open(server: &Server) -> Result<Conn, PgError> {
        let until = Instant::now() + server.connect_timeout;
        let mut conn = Conn {
            sock: open_socket(server, until)?,
            input: BytesMut::with_capacity(8192),
            output: BytesMut::with_capacity(1024),
            backend_pid: 0,
            major: 0,
            fatal: None,
            eof: false,
        };
        frontend::startup_message(
            [
                ("user", server.user.as_str()),
                ("database", server.dbname.as_str()),
                ("application_name", server.application_name.as_str()),
                ("client_encoding", "UTF8"),
            ],
            &mut conn.output,
        )
        .map_err(protocol)?;
        conn.send(until)?;
        conn.login(server, until)?;
        loop {
            match conn.recv(until)? {
                Message::ParameterStatus(p) if p.name().ok() == Some("server_version") => {
                    conn.major = p
                        .value()
                        .ok()
                        .and_then(|v| v.split(|c: char| !c.is_ascii_digit()).next())
                        .and_then(|m| m.parse().ok())
                        .unwrap_or(0);
                }
                Message::BackendKeyData(k) => conn.backend_pid = k.process_id(),
                Message::ReadyForQuery(_) => break,
                Message::ErrorResponse(e) => return Err(login_error(&e)),
                _ => {}
            }
        }
        conn.setup();
        Ok(conn)
    }

    /// Answers the server's authentication request: trust, cleartext, md5 or SCRAM-SHA-256.
    fn login(&mut self, server: &Server, until: Instant) -> Result<(), PgError> {
        let password = || {
            server.password.as_deref().ok_or_else(|| {
                PgError::Refused(format!(
                    "the server asks user `{}` for a password; give it in --lock-url or PGPASSWORD",
                    server.user
                ))
            })
        };
        let mut scram: Option<sasl::ScramSha256> = None;
        loop {
            match self.recv(until)? {
                Message::AuthenticationOk => return Ok(()),
                Message::AuthenticationCleartextPassword => {
                    frontend::password_message(password()?.as_bytes(), &mut self.output)
                        .map_err(protocol)?;
                }
                Message::AuthenticationMd5Password(body) => {
                    let hash =
                        md5_hash(server.user.as_bytes(), password()?.as_bytes(), body.salt());
                    frontend::password_message(hash.as_bytes(), &mut self.output)
                        .map_err(protocol)?;
                }
                Message::AuthenticationSasl(body) => {
                    let offered: Vec<String> = body
                        .mechanisms()
                        .map(|m| Ok(m.to_owned()))
                        .collect()
                        .map_err(protocol)?;
                    if !offered.iter().any(|m| m == sasl::SCRAM_SHA_256) {
                        return Err(PgError::Refused(format!(
                            "the server offers only {} authentication, which steady does not \
                             speak (it speaks SCRAM-SHA-256 without TLS)",
                            offered.join(", ")
                        )));
                    }
                    let s = sasl::ScramSha256::new(
                        password()?.as_bytes(),
                        sasl::ChannelBinding::unsupported(),
                    );
                    frontend::sasl_initial_response(
                        sasl::SCRAM_SHA_256,
                        s.message(),
                        &mut self.output,
                    )
                    .map_err(protocol)?;
                    scram = Some(s);
                }
                Message::AuthenticationSaslContinue(body) => {
                    let s = scram.as_mut().ok_or_else(|| {
                        PgError::Net(
                            "the server continued a SCRAM exchange that never began".into(),
                        )
                    })?;
                    s.update(body.data()).map_err(protocol)?;
                    frontend::sasl_response(s.message(), &mut self.output).map_err(protocol)?;
                }
                Message::AuthenticationSaslFinal(body) => {
                    let s = scram.as_mut().ok_or_else(|| {
                        PgError::Net("the server ended a SCRAM exchange that never began".into())
                    })?;
                    s.finish(body.data()).map_err(|e| {
                        PgError::Refused(format!(
                            "the server could not prove it knows the password ({e}); it may \
                             not be the server you meant"
                        ))
                    })?;
                    continue;
                }
                Message::ErrorResponse(e) => return Err(login_error(&e)),
                Message::AuthenticationGss
                | Message::AuthenticationGssContinue(_)
                | Message::AuthenticationKerberosV5
                | Message::AuthenticationScmCredential
                | Message::AuthenticationSspi => {
                    return Err(PgError::Refused(
                        "the server asks for GSSAPI, Kerberos or SSPI authentication; steady \
                         speaks trust, password, md5 and scram-sha-256"
                            .into(),
                    ));
                }
                _ => continue,
            }
            self.send(until)?;
        }
    }

    /// Session settings that make the lock behave: no server-side timeouts that would end a
    /// wait or the idle holder early, short TCP keep-alive so the server notices a vanished
    /// steady, and (PostgreSQL 14+) a check of the client's socket while a wait runs, so a
    /// killed waiter leaves the queue at once. A server that refuses one still works.
    fn setup(&mut self) {
        let mut sql = String::from(
            "SET statement_timeout = 0; SET lock_timeout = 0; \
             SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; \
             SET tcp_keepalives_count = 3",
        );
        if self.major >= 14 {
            sql.push_str(
                "; SET idle_session_timeout = 0; SET client_connection_check_interval = 1000",
            );
        }
        if let Err(e) = self.query(&sql) {
            ui::detail(&format!(
                "PostgreSQL refused a session setting ({}); going on without it",
                describe_query_error(&e)
            ));
        }
    }

    /// Runs one simple query; its rows as text, NULL as `None`.
    fn query(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>, PgError> {
        let until = Instant::now() + QUERY_TIMEOUT;
        frontend::query(sql, &mut self.output).map_err(protocol)?;
        self.send(until)?;
        let mut rows = Vec::new();
        let mut failed = None;
        loop {
            match self.recv(until)? {
                Message::DataRow(row) => {
                    let buf = row.buffer();
                    let fields: Vec<Option<String>> = row
                        .ranges()
                        .map(|r| Ok(r.map(|r| String::from_utf8_lossy(&buf[r]).into_owned())))
                        .collect()
                        .map_err(protocol)?;
                    rows.push(fields);
                }
                Message::ErrorResponse(e) => {
                    let (_, code, message) = error_fields(&e);
                    failed = Some(PgError::Query { code, message });
                }
                Message::ReadyForQuery(_) => break,
                _ => {}
            }
        }
        failed.map_or(Ok(rows), Err)
    }

    /// Writes everything queued, waiting for room until `until`.
    fn send(&mut self, until: Instant) -> Result<(), PgError> {
        while !self.output.is_empty() {
            match self.sock.write(&self.output) {
                Ok(0) => return Err(PgError::Net("the connection closed".into())),
                Ok(n) => {
                    let _ = self.output.split_to(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.wait(PollFlags::POLLOUT, until)?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.closed(Some(e))),
            }
        }
        Ok(())
    }

    /// Writes what the socket takes now; the rest stays queued for the next call.
    fn send_now(&mut self) -> Result<(), PgError> {
        while !self.output.is_empty() {
            match self.sock.write(&self.output) {
                Ok(0) => return Err(self.closed(None)),
                Ok(n) => {
                    let _ = self.output.split_to(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.closed(Some(e))),
            }
        }
        Ok(())
    }

    /// The next message, waiting for it until `until`.
    fn recv(&mut self, until: Instant) -> Result<Message, PgError> {
        loop {
            if let Some(m) = self.parse()? {
                return Ok(m);
            }
            if self.eof {
                return Err(self.closed(None));
            }
            self.wait(PollFlags::POLLIN, until)?;
            self.fill()?;
        }
    }

    fn parse(&mut self) -> Result<Option<Message>, PgError> {
        let m = Message::parse(&mut self.input).map_err(protocol)?;
        if let Some(Message::ErrorResponse(e)) = &m {
            let (severity, _, message) = error_fields(e);
            if severity == "FATAL" || severity == "PANIC" {
                self.fatal = Some(format!("{severity}: {message}"));
            }
        }
        Ok(m)
    }

    /// Reads what has arrived, without blocking.
    fn fill(&mut self) -> Result<(), PgError> {
        let mut buf = [0u8; 8192];
        loop {
            match self.sock.read(&mut buf) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => self.input.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.closed(Some(e))),
            }
        }
    }

    /// Every message that has arrived, without blocking.
    fn pump(&mut self) -> Result<Vec<Message>, PgError> {
        let read = self.fill();
        let mut out = Vec::new();
        while let Some(m) = self.parse()? {
            out.push(m);
        }
        // Messages that came before a close still count: the FATAL that says why.
        read?;
        if self.eof {
            return Err(self.closed(None));
        }
        Ok(out)
    }

    fn closed(&self, e: Option<io::Error>) -> PgError {
        let mut why = match e {
            Some(e) => format!("the connection failed ({e})"),
            None => "the server closed the connection".to_owned(),
        };
        if let Some(f) = &self.fatal {
            why.push_str(&format!(": {f}"));
        }
        PgError::Net(why)
    }

    /// Waits until the socket is ready for `flags`, up to `until`; a stop signal ends the
    /// wait.
    fn wait(&self, flags: PollFlags, until: Instant) -> Result<(), PgError> {
        loop {
            if let Some(sig) = lock::stop_signal_arrived() {
                return Err(PgError::Stopped(sig));
            }
            let now = Instant::now();
            if now >= until {
                return Err(PgError::Net("the server did not answer in time".into()));
            }
            if poll_for(self.sock.fd(), flags, until.min(now + MAX_BLOCK)) {
                return Ok(());
            }
        }
    }
}

/// True when `fd` is ready (or failed: the next read or write says how) before `until`.
fn poll_for(fd: BorrowedFd, flags: PollFlags, until: Instant) -> bool {
    let ms = until
        .saturating_duration_since(Instant::now())
        .as_millis()
        .clamp(0, i32::MAX as u128) as i32;
    let mut fds = [PollFd::new(fd, flags)];
    matches!(
        poll(&mut fds, PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)),
        Ok(n) if n > 0
    )
}

fn login_error(body: &ErrorResponseBody) -> PgError {
    let (_, code, message) = error_fields(body);
    // Class 28 (wrong user or password) and 3D (no such database) need the user; anything
    // else at login (too many connections, starting up, shutting down) may pass.
    if code.starts_with("28") || code.starts_with("3D") {
        PgError::Refused(message)
    } else {
        PgError::Net(format!("the server refused the connection: {message}"))
    }
}

fn describe_query_error(e: &PgError) -> String {
    match e {
        PgError::Query { code, message } => format!("{message}, SQLSTATE {code}"),
        PgError::Net(m) | PgError::Refused(m) => m.clone(),
        PgError::Contended { .. } => "the lock is held".into(),
        PgError::Stopped(sig) => format!("stopped by {sig}"),
    }
}

/// Who holds advisory key `key` in this database, besides this session: the first holder
/// described, and how many more share it.
fn holders(conn: &mut Conn, key: i64) -> Result<Option<String>, PgError> {
    // pg_locks shows a bigint key as two oids: the high and the low 32 bits.
    let k = key as u64;
    let (hi, lo) = (k >> 32, k & 0xffff_ffff);
    let rows = conn.query(&format!(
        "SELECT l.pid, a.application_name, host(a.client_addr), \
                extract(epoch FROM now() - a.backend_start)::bigint \
         FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 \
           AND l.classid = {hi} AND l.objid = {lo} AND l.pid <> pg_backend_pid() \
           AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         ORDER BY a.backend_start"
    ))?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let field = |i: usize| first.get(i).cloned().flatten().unwrap_or_default();
    let mut s = describe_holder(
        &field(0),
        &field(1),
        &field(2),
        field(3).parse().ok().map(Duration::from_secs),
    );
    if rows.len() > 1 {
        s.push_str(&format!(", and {} other holder(s)", rows.len() - 1));
    }
    Ok(Some(s))
}

/// A holder as people want to read it: the steady process and its machine where the
/// `application_name` says, else the server's own view of the session.
fn describe_holder(backend: &str, app: &str, addr: &str, connected: Option<Duration>) -> String {
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
struct PgLock {
    server: Server,
    key: i64,
    /// What the key stands for (the cache, or a namespace), for messages.
    label: String,
    shared: bool,
    progress_every: Duration,
    conn: Option<Conn>,
    /// When the keep-alive query in flight was sent.
    ping_sent: Option<Instant>,
    next_ping: Instant,
    lost: Option<String>,
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
    fn mode(&self) -> &'static str {
        if self.shared { "shared" } else { "exclusive" }
    }

    /// Connects and takes the lock, waiting until `give_up` (forever without one).
    fn take(&mut self, give_up: Option<Instant>) -> Result<(), PgError> {
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
    fn wait(
        &self,
        conn: &mut Conn,
        give_up: Option<Instant>,
        started: Instant,
    ) -> Result<(), PgError> {
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
        conn.send(Instant::now() + QUERY_TIMEOUT)?;
        let mut next_progress = started + self.progress_every;
        let mut granted = false;
        let mut failed = None;
        loop {
            if let Some(sig) = lock::stop_signal_arrived() {
                return Err(PgError::Stopped(sig));
            }
            let now = Instant::now();
            if let Some(g) = give_up
                && now >= g + ANSWER_GRACE
            {
                return Err(PgError::Net(format!(
                    "the server did not answer for {} past --lock-timeout",
                    ui::human(ANSWER_GRACE)
                )));
            }
            if now >= next_progress {
                // The waiting session is busy; a second one looks who holds the lock now.
                let who = Conn::open(&self.server)
                    .and_then(|mut c| holders(&mut c, self.key))
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| "another session".into());
                ui::status(&format!(
                    "still waiting for the lock on {} in PostgreSQL after {}, held by {who}",
                    self.label,
                    ui::human(now - started)
                ));
                next_progress += self.progress_every;
            }
            let mut wake = next_progress.min(now + MAX_BLOCK);
            if let Some(g) = give_up {
                wake = wake.min(g + ANSWER_GRACE);
            }
            if !poll_for(conn.sock.fd(), PollFlags::POLLIN, wake) {
                continue;
            }
            let mut ready = false;
            for m in conn.pump()? {
                match m {
                    Message::DataRow(_) => granted = true,
                    Message::ErrorResponse(e) => {
                        let (_, code, message) = error_fields(&e);
                        failed.get_or_insert((code, message));
                    }
                    Message::ReadyForQuery(_) => ready = true,
                    _ => {}
                }
            }
            if ready {
                break;
            }
        }
        match failed {
            Some((code, _)) if code == LOCK_NOT_AVAILABLE => Err(PgError::Contended {
                holder: holders(conn, self.key).ok().flatten(),
                waited: started.elapsed(),
            }),
            Some((code, message)) => Err(PgError::Query { code, message }),
            None if granted => Ok(()),
            None => Err(PgError::Net(
                "the server ended the lock query without an answer".into(),
            )),
        }
    }

    fn lock_error(&self, e: PgError) -> LockError {
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
    fn look(&mut self, now: Instant) -> Result<(), PgError> {
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

    fn parse(url: &str) -> Result<Server, String> {
        Server::parse(url, Duration::from_secs(5))
    }

    #[test]
    fn urls_parse_like_libpq() {
        let s = parse(
            "postgres://al%40ice:p%3Ass@db.example:6543/my%20db?sslmode=disable&connect_timeout=3",
        )
        .unwrap();
        assert_eq!(
            s.addr,
            Addr::Tcp {
                host: "db.example".into(),
                port: 6543
            }
        );
        assert_eq!((s.user.as_str(), s.dbname.as_str()), ("al@ice", "my db"));
        assert_eq!(s.password.as_deref(), Some("p:ss"));
        assert_eq!(s.connect_timeout, Duration::from_secs(3));

        let s = parse("postgresql://u@[::1]/x").unwrap();
        assert_eq!(
            s.addr,
            Addr::Tcp {
                host: "::1".into(),
                port: 5432
            }
        );
        assert_eq!(s.shown(), "[::1]:5432/x");

        let s = parse("postgres:///lockdb?host=%2Fsrv%2Fpg&port=7000&user=u").unwrap();
        assert_eq!(
            s.addr,
            Addr::Unix {
                dirs: vec![PathBuf::from("/srv/pg")],
                port: 7000
            }
        );
        assert_eq!((s.user.as_str(), s.dbname.as_str()), ("u", "lockdb"));
        assert_eq!(s.shown(), "/srv/pg/.s.PGSQL.7000 (database lockdb)");

        // No database: the user's name, as libpq does.
        assert_eq!(parse("postgres://bob@h").unwrap().dbname, "bob");
    }

    #[test]
    fn bad_urls_say_why_without_the_password() {
        for (url, says) in [
            ("mysql://u:secret@h/db", "must start with postgres://"),
            ("postgres://u:secret@h:99999/db", "port `99999`"),
            ("postgres://u:secret@h:x/db", "port `x`"),
            ("postgres://u:secret@h/db?sslmode=require", "TLS"),
            (
                "postgres://u:secret@h/db?frobnicate=1",
                "unknown parameter `frobnicate`",
            ),
            ("postgres://u:secret@h1,h2/db", "several hosts"),
            (
                "postgres://u:secret@h/db?connect_timeout=0",
                "connect_timeout",
            ),
            ("postgres://u:secret@h/d%zzb", "percent-escape"),
            (
                "postgres://u@h/db?password=secret&x",
                "`x` is not name=value",
            ),
        ] {
            let e = parse(url).unwrap_err();
            assert!(e.contains(says), "{url}: {e}");
            assert!(!e.contains("secret"), "{url} leaks its password: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }

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
    fn advisory_keys_are_fixed_per_identity() {
        // Machines running different builds must agree: the value is part of the protocol.
        assert_eq!(advisory_key("namespace:ci"), advisory_key("namespace:ci"));
        assert_ne!(advisory_key("namespace:ci"), advisory_key("namespace:cj"));
        assert_eq!(advisory_key(""), -6_774_615_863_444_710_065);
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://u:hunter2@h:5/db?password=x&port=5"),
            "postgres://u:***@h:5/db?password=***&port=5"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    }
}
