//! `--lock-url`: a PostgreSQL URL or key=value string, parsed the way libpq does, with the
//! password kept out of every message.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::lock::holders;

use super::advisory::*;
use super::wire::*;

/// Where and how to reach the server, from `--lock-url`.
#[derive(Clone)]
pub struct Server {
    pub(super) addr: Addr,
    pub(super) user: String,
    pub(super) password: Option<String>,
    pub(super) dbname: String,
    pub(super) connect_timeout: Duration,
    /// How often a held lock's connection is checked with a query; a check unanswered for
    /// twice this long means the server is gone.
    pub(super) ping_every: Duration,
    /// Who holds the lock, for anyone who waits for it: `steady <pid>@<host> <command>`.
    pub(super) application_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Addr {
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
        let rest = url
            .strip_prefix("postgresql://")
            .or_else(|| url.strip_prefix("postgres://"))
            .ok_or_else(|| {
                format!("--lock-url must start with postgres:// or postgresql://, got `{shown}`")
            })?;
        Server::from_url_body(rest, ping_every)
            .map_err(|why| format!("--lock-url `{shown}`: {why}"))
    }

    /// Everything after the scheme: the location, then the parameters, which override it
    /// as they do in libpq.
    fn from_url_body(rest: &str, ping_every: Duration) -> Result<Server, String> {
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut given = Given::from_location(rest)?;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            given.apply_param(pair)?;
        }
        given.into_server(ping_every)
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

    pub(super) fn ping_timeout(&self) -> Duration {
        self.ping_every * 2
    }
}

/// What `--lock-url` says, before the defaults fill what it leaves out. Empty values count
/// as left out, as in libpq.
struct Given {
    host: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    password: Option<String>,
    dbname: Option<String>,
    connect_timeout: Duration,
}

impl Given {
    /// `[user[:password]@][host][:port][/dbname]`, percent-decoded.
    fn from_location(rest: &str) -> Result<Given, String> {
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
            user = Some(decode(u)?).filter(|u| !u.is_empty());
            password = p.map(decode).transpose()?;
        }
        let (host, port) = split_host_port(hostport)?;
        let host = Some(decode(host)?).filter(|h| !h.is_empty());
        let port = port.map(|p| parse_port(&p)).transpose()?;
        let dbname = Some(decode(path)?).filter(|d| !d.is_empty());
        Ok(Given {
            host,
            port,
            user,
            password,
            dbname,
            connect_timeout: CONNECT_TIMEOUT,
        })
    }

    /// One `name=value` of the query string.
    fn apply_param(&mut self, pair: &str) -> Result<(), String> {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| format!("`{pair}` is not name=value"))?;
        let v = decode(v)?;
        match k {
            "host" => self.host = Some(v).filter(|h| !h.is_empty()),
            "port" => self.port = Some(parse_port(&v)?),
            "user" => self.user = Some(v).filter(|u| !u.is_empty()),
            "password" => self.password = Some(v),
            "dbname" => self.dbname = Some(v).filter(|d| !d.is_empty()),
            "sslmode" => check_sslmode(&v)?,
            "connect_timeout" => self.connect_timeout = parse_connect_timeout(&v)?,
            _ => {
                return Err(format!(
                    "unknown parameter `{k}` (steady knows host, port, user, password, \
                     dbname, sslmode and connect_timeout)"
                ));
            }
        }
        Ok(())
    }

    /// The server to reach, with libpq's defaults for what the URL left out.
    fn into_server(self, ping_every: Duration) -> Result<Server, String> {
        if self.host.as_deref().is_some_and(|h| h.contains(',')) {
            return Err("several hosts are not supported; name one server".into());
        }
        let addr = address(self.host, self.port.unwrap_or(5432));
        let user = match self.user {
            Some(u) => u,
            None => login_name().ok_or("no user given, and this user has no name")?,
        };
        let password = self
            .password
            .or_else(|| std::env::var(crate::env::PGPASSWORD).ok());
        Ok(Server {
            addr,
            dbname: self.dbname.unwrap_or_else(|| user.clone()),
            user,
            password,
            connect_timeout: self.connect_timeout,
            ping_every: ping_every.max(Duration::from_millis(100)),
            application_name: application_name(std::process::id(), &hostname(), ""),
        })
    }
}

/// A host that starts with `/` is a socket directory; no host means the usual ones.
fn address(host: Option<String>, port: u16) -> Addr {
    match host {
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
    }
}

/// The user libpq would log in as when the URL names none: this process's own.
fn login_name() -> Option<String> {
    nix::unistd::User::from_uid(nix::unistd::geteuid())
        .ok()
        .flatten()
        .map(|u| u.name)
}

/// steady speaks no TLS, so a URL that insists on it must fail rather than go out in clear.
fn check_sslmode(v: &str) -> Result<(), String> {
    match v {
        "disable" | "allow" | "prefer" => Ok(()),
        "require" | "verify-ca" | "verify-full" => Err(format!(
            "sslmode={v} asks for TLS, which steady does not speak; use \
             sslmode=disable on a local network or through a tunnel"
        )),
        _ => Err(format!("unknown sslmode `{v}`")),
    }
}

fn parse_connect_timeout(v: &str) -> Result<Duration, String> {
    let secs: u64 = v
        .parse()
        .ok()
        .filter(|s| *s > 0)
        .ok_or_else(|| format!("connect_timeout `{v}` is not a positive number of seconds"))?;
    Ok(Duration::from_secs(secs))
}

/// The URL with its password (in the user part or as `password=`) replaced by `***`.
pub(super) fn redact(url: &str) -> String {
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
pub(super) fn decode(s: &str) -> Result<String, String> {
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
pub(super) fn split_host_port(s: &str) -> Result<(&str, Option<String>), String> {
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

pub(super) fn parse_port(p: &str) -> Result<u16, String> {
    p.parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("port `{p}` is not a number from 1 to 65535"))
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
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://u:hunter2@h:5/db?password=x&port=5"),
            "postgres://u:***@h:5/db?password=***&port=5"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    }
}
