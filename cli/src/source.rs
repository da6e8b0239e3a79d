//! Reading one stats reply from a file, TCP, HTTP or a UNIX socket.
//!
//! The stats server has two modes and users rarely know which one runs
//! (uwsgi_exporter #26): in raw mode it writes as soon as a client connects
//! and never reads; with `--stats-http` it waits for a request. `tcp://` and
//! `unix://` therefore listen briefly first and only send an HTTP request
//! if nothing arrives. `http://` sends the request at once.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// Upper bound on what is read: the core's document limit plus an HTTP head.
const MAX_READ: usize = uwsgi_red_core::stats::DEFAULT_MAX_DOCUMENT_BYTES + 64 * 1024;
/// How long a raw-mode server gets to start writing before we send a request.
const RAW_GRACE: Duration = Duration::from_millis(300);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(String),
    Tcp(String),
    Http { addr: String, path: String },
    Unix(String),
}

impl Source {
    pub fn parse(s: &str) -> Result<Self, String> {
        if let Some(rest) = s.strip_prefix("tcp://") {
            Ok(Self::Tcp(host_port(rest, s)?))
        } else if let Some(rest) = s.strip_prefix("http://") {
            let (addr, path) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, "/"),
            };
            Ok(Self::Http {
                addr: host_port(addr, s)?,
                path: path.to_string(),
            })
        } else if let Some(path) = s.strip_prefix("unix://") {
            if path.is_empty() {
                return Err(format!(
                    "{s:?}: missing socket path (unix:///run/uwsgi/stats.sock)"
                ));
            }
            Ok(Self::Unix(path.to_string()))
        } else if s.contains("://") {
            Err(format!(
                "{s:?}: unsupported scheme (use a file, tcp://, http:// or unix://)"
            ))
        } else {
            Ok(Self::File(s.to_string()))
        }
    }

    pub fn fetch(&self, timeout: Duration) -> Result<Vec<u8>, String> {
        match self {
            Self::File(p) => std::fs::read(p).map_err(|e| format!("{p}: {e}")),
            Self::Tcp(addr) => {
                let s = connect(addr, timeout)?;
                converse(s, addr, None, timeout)
            }
            Self::Http { addr, path } => {
                let s = connect(addr, timeout)?;
                converse(s, addr, Some(path), timeout)
            }
            Self::Unix(path) => {
                let s = UnixStream::connect(path).map_err(|e| format!("unix://{path}: {e}"))?;
                converse(s, "localhost", None, timeout)
            }
        }
    }
}

fn host_port(hp: &str, whole: &str) -> Result<String, String> {
    match hp.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && p.parse::<u16>().is_ok() => Ok(hp.to_string()),
        _ => Err(format!("{whole:?}: expected host:port")),
    }
}

fn connect(addr: &str, timeout: Duration) -> Result<TcpStream, String> {
    let addrs = addr.to_socket_addrs().map_err(|e| format!("{addr}: {e}"))?;
    let mut last = format!("{addr}: no address");
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(s) => return Ok(s),
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    Err(last)
}

trait Conn: Read + Write {
    fn set_read_timeout(&self, d: Option<Duration>) -> std::io::Result<()>;
}
impl Conn for TcpStream {
    fn set_read_timeout(&self, d: Option<Duration>) -> std::io::Result<()> {
        TcpStream::set_read_timeout(self, d)
    }
}
impl Conn for UnixStream {
    fn set_read_timeout(&self, d: Option<Duration>) -> std::io::Result<()> {
        UnixStream::set_read_timeout(self, d)
    }
}

fn request(host: &str, path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: uwsgi-red\r\nAccept: */*\r\n\r\n")
        .into_bytes()
}

fn converse<C: Conn>(
    mut s: C,
    host: &str,
    http_path: Option<&str>,
    timeout: Duration,
) -> Result<Vec<u8>, String> {
    let io = |e: std::io::Error| format!("{host}: {e}");
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    match http_path {
        Some(path) => s.write_all(&request(host, path)).map_err(io)?,
        None => {
            s.set_read_timeout(Some(RAW_GRACE)).map_err(io)?;
            match s.read(&mut buf) {
                Ok(0) => return Err(format!("{host}: connection closed without a reply")),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    s.write_all(&request(host, "/")).map_err(io)?;
                }
                Err(e) => return Err(io(e)),
            }
        }
    }
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "{host}: timed out after {} ms waiting for the stats reply",
                timeout.as_millis()
            ));
        }
        s.set_read_timeout(Some(left)).map_err(io)?;
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.len() > MAX_READ {
                    return Err(format!("{host}: reply larger than {MAX_READ} bytes"));
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io(e)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sources() {
        assert_eq!(
            Source::parse("tcp://127.0.0.1:9191").unwrap(),
            Source::Tcp("127.0.0.1:9191".into())
        );
        assert_eq!(
            Source::parse("http://localhost:1717/stats").unwrap(),
            Source::Http {
                addr: "localhost:1717".into(),
                path: "/stats".into()
            }
        );
        assert_eq!(
            Source::parse("unix:///run/s.sock").unwrap(),
            Source::Unix("/run/s.sock".into())
        );
        assert_eq!(
            Source::parse("doc.json").unwrap(),
            Source::File("doc.json".into())
        );
        assert!(Source::parse("tcp://nohost")
            .unwrap_err()
            .contains("host:port"));
        assert!(Source::parse("ftp://x")
            .unwrap_err()
            .contains("unsupported scheme"));
        assert!(Source::parse("unix://").is_err());
    }
}
