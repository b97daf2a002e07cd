//! One connection to the server, spoken over a plain socket with `postgres-protocol` for the
//! framing and the password exchanges: connect, log in, query, every wait a bounded `poll`.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;
use postgres_protocol::authentication::{md5_hash, sasl};
use postgres_protocol::message::backend::{AuthenticationSaslBody, ErrorResponseBody, Message};
use postgres_protocol::message::frontend;

use crate::sys;
use crate::ui;

use super::url::*;

/// How long connecting and logging in may take, unless the URL says `connect_timeout`.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a short query (try the lock, name its holder) may take to answer.
pub(super) const QUERY_TIMEOUT: Duration = Duration::from_secs(15);

/// Longest single `poll` while waiting: a stop signal that lands just before the call does not
/// interrupt it, so the wait is re-entered at least this often to notice one.
pub(super) const MAX_BLOCK: Duration = Duration::from_secs(1);

/// Why talking to the server failed.
#[derive(Debug)]
pub(super) enum PgError {
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

pub(super) fn protocol(e: io::Error) -> PgError {
    PgError::Net(format!("bad message from the server ({e})"))
}

/// The severity, SQLSTATE and text of an ErrorResponse.
pub(super) fn error_fields(body: &ErrorResponseBody) -> (String, String, String) {
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

pub(super) enum Sock {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Sock {
    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Sock::Tcp(s) => s.as_fd(),
            Sock::Unix(s) => s.as_fd(),
        }
    }
    pub(super) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Sock::Tcp(s) => s.read(buf),
            Sock::Unix(s) => s.read(buf),
        }
    }
    pub(super) fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sock::Tcp(s) => s.write(buf),
            Sock::Unix(s) => s.write(buf),
        }
    }
}

/// Opens the socket, non-blocking and close-on-exec (std's default: the command and any
/// daemon it leaves must never hold the connection, or the lock would outlive steady).
pub(super) fn open_socket(server: &Server, until: Instant) -> Result<Sock, PgError> {
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
pub(super) struct Conn {
    pub(super) sock: Sock,
    pub(super) input: BytesMut,
    pub(super) output: BytesMut,
    /// The server process of this session, as `pg_locks` and `pg_stat_activity` name it.
    pub(super) backend_pid: i32,
    /// The server's major version (15 for 15.4), 0 when it did not say.
    pub(super) major: u32,
    /// The last FATAL message the server sent: why it is about to close the connection.
    pub(super) fatal: Option<String>,
    /// The server closed the connection; what it sent before is still read.
    pub(super) eof: bool,
}

impl Conn {
    /// Connects and logs in, within the server's connect timeout.
    pub(super) fn open(server: &Server) -> Result<Conn, PgError> {
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
    pub(super) fn login(&mut self, server: &Server, until: Instant) -> Result<(), PgError> {
        let mut scram: Option<sasl::ScramSha256> = None;
        loop {
            match self.recv(until)? {
                Message::AuthenticationOk => return Ok(()),
                Message::AuthenticationCleartextPassword => {
                    frontend::password_message(password_for(server)?.as_bytes(), &mut self.output)
                        .map_err(protocol)?;
                }
                Message::AuthenticationMd5Password(body) => {
                    let hash = md5_hash(
                        server.user.as_bytes(),
                        password_for(server)?.as_bytes(),
                        body.salt(),
                    );
                    frontend::password_message(hash.as_bytes(), &mut self.output)
                        .map_err(protocol)?;
                }
                Message::AuthenticationSasl(body) => {
                    scram = Some(self.begin_scram(server, &body)?);
                }
                Message::AuthenticationSaslContinue(body) => {
                    self.continue_scram(scram.as_mut(), body.data())?;
                }
                Message::AuthenticationSaslFinal(body) => {
                    // The last word is the server's: nothing to send back.
                    finish_scram(scram.as_mut(), body.data())?;
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

    /// Picks SCRAM-SHA-256 from the mechanisms the server offers and queues the first
    /// message of the exchange.
    fn begin_scram(
        &mut self,
        server: &Server,
        body: &AuthenticationSaslBody,
    ) -> Result<sasl::ScramSha256, PgError> {
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
            password_for(server)?.as_bytes(),
            sasl::ChannelBinding::unsupported(),
        );
        frontend::sasl_initial_response(sasl::SCRAM_SHA_256, s.message(), &mut self.output)
            .map_err(protocol)?;
        Ok(s)
    }

    fn continue_scram(
        &mut self,
        scram: Option<&mut sasl::ScramSha256>,
        data: &[u8],
    ) -> Result<(), PgError> {
        let s = scram.ok_or_else(|| {
            PgError::Net("the server continued a SCRAM exchange that never began".into())
        })?;
        s.update(data).map_err(protocol)?;
        frontend::sasl_response(s.message(), &mut self.output).map_err(protocol)
    }

    /// Session settings that make the lock behave: no server-side timeouts that would end a
    /// wait or the idle holder early, short TCP keep-alive so the server notices a vanished
    /// steady, and (PostgreSQL 14+) a check of the client's socket while a wait runs, so a
    /// killed waiter leaves the queue at once. A server that refuses one still works.
    pub(super) fn setup(&mut self) {
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
    pub(super) fn query(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>, PgError> {
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
    pub(super) fn send(&mut self, until: Instant) -> Result<(), PgError> {
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
    pub(super) fn send_now(&mut self) -> Result<(), PgError> {
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
    pub(super) fn recv(&mut self, until: Instant) -> Result<Message, PgError> {
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

    pub(super) fn parse(&mut self) -> Result<Option<Message>, PgError> {
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
    pub(super) fn fill(&mut self) -> Result<(), PgError> {
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
    pub(super) fn pump(&mut self) -> Result<Vec<Message>, PgError> {
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

    pub(super) fn closed(&self, e: Option<io::Error>) -> PgError {
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
    pub(super) fn wait(&self, flags: PollFlags, until: Instant) -> Result<(), PgError> {
        loop {
            if let Some(sig) = crate::sys::stop_signal_pending() {
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

/// The password, asked for only when the server wants one: a trust login needs none.
fn password_for(server: &Server) -> Result<&str, PgError> {
    server.password.as_deref().ok_or_else(|| {
        PgError::Refused(format!(
            "the server asks user `{}` for a password; give it in --lock-url or PGPASSWORD",
            server.user
        ))
    })
}

/// Checks the server's proof that it knows the password too.
fn finish_scram(scram: Option<&mut sasl::ScramSha256>, data: &[u8]) -> Result<(), PgError> {
    let s = scram
        .ok_or_else(|| PgError::Net("the server ended a SCRAM exchange that never began".into()))?;
    s.finish(data).map_err(|e| {
        PgError::Refused(format!(
            "the server could not prove it knows the password ({e}); it may \
             not be the server you meant"
        ))
    })
}

/// True when `fd` is ready (or failed: the next read or write says how) before `until`.
pub(super) fn poll_for(fd: BorrowedFd, flags: PollFlags, until: Instant) -> bool {
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

pub(super) fn login_error(body: &ErrorResponseBody) -> PgError {
    let (_, code, message) = error_fields(body);
    // Class 28 (wrong user or password) and 3D (no such database) need the user; anything
    // else at login (too many connections, starting up, shutting down) may pass.
    if code.starts_with("28") || code.starts_with("3D") {
        PgError::Refused(message)
    } else {
        PgError::Net(format!("the server refused the connection: {message}"))
    }
}

pub(super) fn describe_query_error(e: &PgError) -> String {
    match e {
        PgError::Query { code, message } => format!("{message}, SQLSTATE {code}"),
        PgError::Net(m) | PgError::Refused(m) => m.clone(),
        PgError::Contended { .. } => "the lock is held".into(),
        PgError::Stopped(sig) => format!("stopped by {sig}"),
    }
}
