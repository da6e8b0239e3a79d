//! Streaming status parser for what uWSGI sends back on a uwsgi socket.
//!
//! For modifier1 0 uWSGI answers with plain HTTP (`HTTP/1.1 200 OK`, the
//! version copied from the request's SERVER_PROTOCOL); CGI-style apps answer
//! with a header block carrying `Status: 404 Not Found` (and, as nginx
//! reads it, no Status means 302 with a Location header, else 200). The
//! parser is a byte-at-a-time state machine: it keeps no copy of the input,
//! so it behaves the same however the bytes are split.
//!
//! Bounds: O(1) work per byte, at most `limit` bytes read, and a fixed-size
//! state (no allocation at all).
//!
//! Valid codes are 100..=999. RFC 9112's grammar is `3DIGIT` and the first
//! digit is the class; there is no class 0, and code 0 is this crate's "no
//! response" (`code_class` `0xx`), so `000`-`099` are refused as
//! `BadStatus` rather than reported as a code nobody can tell from a missing
//! response. 600..=999 are outside RFC 9110's defined classes but are what
//! the upstream sent: the parser reports them as they are (as the log
//! parsers do) and classification is left to the label layer.

use std::fmt;

/// Bytes scanned for a status before giving up (a CGI header block can put
/// `Status:` after other headers).
pub const DEFAULT_RESPONSE_HEAD_LIMIT: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusSource {
    /// `HTTP/1.x NNN ...`
    StatusLine,
    /// A CGI `Status: NNN` header.
    CgiHeader,
    /// A CGI header block without Status: 302 with Location, else 200.
    CgiDefault,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub code: u16,
    pub source: StatusSource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseError {
    /// Byte `offset` can start neither a status line nor a header line.
    NotHttp { offset: usize },
    /// The status code at `offset` is not three digits from 100 to 999
    /// (`000`-`099` included: no class 0 exists).
    BadStatus { offset: usize },
    /// No status within `limit` bytes.
    TooLarge { limit: usize },
    /// The stream ended `got` bytes in, before a status was known.
    Truncated { got: usize },
}

impl ResponseError {
    /// Closed-set name for the `reason` label.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotHttp { .. } => "response_not_http",
            Self::BadStatus { .. } => "response_bad_status",
            Self::TooLarge { .. } => "response_too_large",
            Self::Truncated { .. } => "response_truncated",
        }
    }
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotHttp { offset } => {
                write!(
                    f,
                    "response byte {offset} starts neither an HTTP status line nor a CGI header"
                )
            }
            Self::BadStatus { offset } => {
                write!(
                    f,
                    "response status at byte {offset} is not a three-digit code from 100 to 999"
                )
            }
            Self::TooLarge { limit } => write!(f, "no response status within {limit} bytes"),
            Self::Truncated { got } => {
                write!(f, "response ended after {got} bytes, before its status")
            }
        }
    }
}

impl std::error::Error for ResponseError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusProgress {
    NeedMore,
    Done(Status),
}

const HTTP_PREFIX: &[u8; 5] = b"HTTP/";
/// Smallest limit: `HTTP/1.1 200` plus a separator.
const MIN_LIMIT: usize = 13;
/// Long enough for `status` and `location`; longer names are neither.
const NAME_CAP: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    /// Matching `HTTP/`; the field is how much matched.
    Prefix(u8),
    Version,
    /// Spaces between the version and the code.
    VersionSpace,
    /// Digits of a code; `cgi` tells which form it came from.
    Code {
        cgi: bool,
    },
    /// After three digits: a separator must follow.
    AfterCode {
        cgi: bool,
    },
    LineStart,
    Name,
    /// Spaces after `name:`.
    ValueSpace,
    SkipLine,
    /// A CR at the start of a line: the blank line ending the headers.
    EndCr,
    Finished(Status),
    Failed(ResponseError),
}

#[derive(Debug, Clone)]
pub struct StatusParser {
    st: St,
    seen: usize,
    limit: usize,
    code: u16,
    digits: u8,
    name: [u8; NAME_CAP],
    name_len: usize,
    location: bool,
}

impl Default for StatusParser {
    fn default() -> Self {
        Self::new(DEFAULT_RESPONSE_HEAD_LIMIT)
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

impl StatusParser {
    pub fn new(limit: usize) -> Self {
        Self {
            st: St::Prefix(0),
            seen: 0,
            limit: limit.max(MIN_LIMIT),
            code: 0,
            digits: 0,
            name: [0; NAME_CAP],
            name_len: 0,
            location: false,
        }
    }

    /// Ready for the next response on the same stream.
    pub fn reset(&mut self) {
        *self = Self::new(self.limit);
    }

    /// Bytes consumed so far (the parser stops consuming once it has a status).
    pub fn seen(&self) -> usize {
        self.seen
    }

    pub fn result(&self) -> Option<Result<Status, ResponseError>> {
        match self.st {
            St::Finished(s) => Some(Ok(s)),
            St::Failed(e) => Some(Err(e)),
            _ => None,
        }
    }

    pub fn feed(&mut self, chunk: &[u8]) -> Result<StatusProgress, ResponseError> {
        for &b in chunk {
            if let Some(r) = self.result() {
                return r.map(StatusProgress::Done);
            }
            if self.seen >= self.limit {
                self.st = St::Failed(ResponseError::TooLarge { limit: self.limit });
                break;
            }
            self.step(b);
            self.seen = self.seen.saturating_add(1);
        }
        match self.result() {
            Some(r) => r.map(StatusProgress::Done),
            None => Ok(StatusProgress::NeedMore),
        }
    }

    /// The stream ended. `None` when nothing at all was received (no
    /// response, not a malformed one).
    pub fn finish(&mut self) -> Option<Result<Status, ResponseError>> {
        if let Some(r) = self.result() {
            return Some(r);
        }
        if self.seen == 0 {
            return None;
        }
        // A status line cut right after its code still says the code.
        let r = match self.st {
            St::AfterCode { cgi: false } => Ok(Status {
                code: self.code,
                source: StatusSource::StatusLine,
            }),
            St::AfterCode { cgi: true } => Ok(Status {
                code: self.code,
                source: StatusSource::CgiHeader,
            }),
            _ => Err(ResponseError::Truncated { got: self.seen }),
        };
        self.st = match r {
            Ok(s) => St::Finished(s),
            Err(e) => St::Failed(e),
        };
        Some(r)
    }

    fn fail_not_http(&mut self) {
        self.st = St::Failed(ResponseError::NotHttp { offset: self.seen });
    }

    fn step(&mut self, b: u8) {
        match self.st {
            St::Prefix(n) => {
                let next = n.saturating_add(1);
                if HTTP_PREFIX.get(usize::from(n)) == Some(&b) {
                    self.st = if usize::from(next) == HTTP_PREFIX.len() {
                        St::Version
                    } else {
                        St::Prefix(next)
                    };
                } else {
                    // Not a status line: the bytes so far begin a CGI header
                    // name instead; replay them (they are all name chars).
                    self.st = St::LineStart;
                    for &p in HTTP_PREFIX.iter().take(usize::from(n)) {
                        self.cgi_step(p);
                    }
                    self.cgi_step(b);
                }
            }
            St::Version => match b {
                b'0'..=b'9' | b'.' => {}
                b' ' => self.st = St::VersionSpace,
                _ => self.fail_not_http(),
            },
            St::VersionSpace => match b {
                b' ' => {}
                _ => {
                    self.st = St::Code { cgi: false };
                    self.code_step(b, false);
                }
            },
            St::Code { cgi } | St::AfterCode { cgi } => self.code_step(b, cgi),
            _ => self.cgi_step(b),
        }
    }

    fn code_step(&mut self, b: u8, cgi: bool) {
        match (self.st, b) {
            // A first digit 0 would make a code 000-099: no such class.
            (St::Code { .. }, b'0') if self.digits == 0 => {
                self.st = St::Failed(ResponseError::BadStatus { offset: self.seen });
            }
            (St::Code { .. }, b'0'..=b'9') => {
                // At most three digits: never above 999.
                self.code = self
                    .code
                    .saturating_mul(10)
                    .saturating_add(u16::from(b.saturating_sub(b'0')));
                self.digits = self.digits.saturating_add(1);
                if self.digits == 3 {
                    self.st = St::AfterCode { cgi };
                }
            }
            (St::AfterCode { .. }, b' ' | b'\t' | b'\r' | b'\n') => {
                let source = if cgi {
                    StatusSource::CgiHeader
                } else {
                    StatusSource::StatusLine
                };
                self.st = St::Finished(Status {
                    code: self.code,
                    source,
                });
            }
            _ => {
                let offset = self.seen.saturating_sub(usize::from(self.digits));
                self.st = St::Failed(ResponseError::BadStatus { offset });
            }
        }
    }

    fn cgi_step(&mut self, b: u8) {
        match self.st {
            St::LineStart => match b {
                b'\r' => self.st = St::EndCr,
                b'\n' => self.end_of_headers(),
                _ if is_tchar(b) => {
                    self.name_len = 0;
                    self.st = St::Name;
                    self.push_name(b);
                }
                _ => self.fail_not_http(),
            },
            St::Name => match b {
                b':' => self.st = St::ValueSpace,
                _ if is_tchar(b) => self.push_name(b),
                _ => self.fail_not_http(),
            },
            St::ValueSpace => match b {
                b' ' | b'\t' => {}
                _ if self.name_is(b"status") => {
                    self.code = 0;
                    self.digits = 0;
                    self.st = St::Code { cgi: true };
                    self.code_step(b, true);
                }
                _ => {
                    if self.name_is(b"location") {
                        self.location = true;
                    }
                    self.st = if b == b'\n' {
                        St::LineStart
                    } else {
                        St::SkipLine
                    };
                }
            },
            St::SkipLine if b == b'\n' => self.st = St::LineStart,
            St::EndCr => match b {
                b'\n' => self.end_of_headers(),
                _ => self.fail_not_http(),
            },
            // Status-line states are handled in `step`; terminal states
            // never reach here.
            _ => {}
        }
    }

    fn push_name(&mut self, b: u8) {
        // Names longer than NAME_CAP are neither `status` nor `location`:
        // only their length keeps counting.
        if let Some(slot) = self.name.get_mut(self.name_len) {
            *slot = b.to_ascii_lowercase();
        }
        self.name_len = self.name_len.saturating_add(1);
    }

    fn name_is(&self, lower: &[u8]) -> bool {
        self.name_len == lower.len() && self.name.get(..lower.len()) == Some(lower)
    }

    fn end_of_headers(&mut self) {
        let code = if self.location { 302 } else { 200 };
        self.st = St::Finished(Status {
            code,
            source: StatusSource::CgiDefault,
        });
    }
}

/// Parses a whole response prefix at once (tests, tools).
pub fn parse_status(bytes: &[u8]) -> Result<Option<Status>, ResponseError> {
    let mut p = StatusParser::default();
    match p.feed(bytes)? {
        StatusProgress::Done(s) => Ok(Some(s)),
        StatusProgress::NeedMore => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: `000`-`099` were accepted, and code 0 is
    /// indistinguishable from "no response".
    #[test]
    fn codes_below_100_are_refused() {
        for (bytes, offset) in [
            (&b"HTTP/1.1 000 X\r\n"[..], 9),
            (b"HTTP/1.1 099 X\r\n", 9),
            (b"HTTP/1.0 0", 9),
            (b"Status: 000\r\n", 8),
            (b"X: y\r\nStatus: 042 Odd\r\n", 14),
        ] {
            assert_eq!(
                code(bytes),
                Err(ResponseError::BadStatus { offset }),
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
        // Split byte by byte: the same answer, and `finish` keeps it.
        let mut p = StatusParser::default();
        for b in b"Status: 0".chunks(1) {
            let _ = p.feed(b);
        }
        assert_eq!(
            p.finish(),
            Some(Err(ResponseError::BadStatus { offset: 8 }))
        );
        assert_eq!(code(b"HTTP/1.1 100 Continue\r\n"), Ok(Some(100)));
        assert_eq!(code(b"HTTP/1.1 999 Odd\r\n"), Ok(Some(999)));
        assert!(ResponseError::BadStatus { offset: 9 }
            .to_string()
            .contains("from 100 to 999"));
    }

    fn code(bytes: &[u8]) -> Result<Option<u16>, ResponseError> {
        parse_status(bytes).map(|s| s.map(|s| s.code))
    }

    #[test]
    fn status_lines() {
        assert_eq!(code(b"HTTP/1.1 200 OK\r\n"), Ok(Some(200)));
        assert_eq!(code(b"HTTP/1.0 404 Not Found\r\n"), Ok(Some(404)));
        assert_eq!(code(b"HTTP/1.1 500\r\n"), Ok(Some(500)));
        assert_eq!(code(b"HTTP/1.1 20"), Ok(None));
        assert_eq!(
            code(b"HTTP/1.1 2x0 OK"),
            Err(ResponseError::BadStatus { offset: 9 })
        );
        assert_eq!(
            code(b"HTTP/1.1 2000 OK"),
            Err(ResponseError::BadStatus { offset: 9 })
        );
        assert_eq!(code(b"HTTP/x"), Err(ResponseError::NotHttp { offset: 5 }));
    }

    #[test]
    fn cgi_headers() {
        assert_eq!(
            code(b"Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\n"),
            Ok(Some(404))
        );
        assert_eq!(
            code(b"Content-Type: text/plain\r\nstatus:503\r\n\r\n"),
            Ok(Some(503))
        );
        assert_eq!(code(b"Content-Type: text/plain\r\n\r\nbody"), Ok(Some(200)));
        assert_eq!(code(b"Location: /x\r\n\r\n"), Ok(Some(302)));
        assert_eq!(code(b"Content-Type: x\n\n"), Ok(Some(200)));
        // A name that merely starts like the HTTP prefix.
        assert_eq!(code(b"HTTP-Thing: 1\r\nStatus: 201\r\n"), Ok(Some(201)));
        assert_eq!(code(b"HTT: 1\r\nStatus: 201\r\n"), Ok(Some(201)));
        assert_eq!(code(b"Statuses: 1\r\n"), Ok(None));
        assert_eq!(
            code(b"Status: OK\r\n"),
            Err(ResponseError::BadStatus { offset: 8 })
        );
    }

    #[test]
    fn not_http() {
        assert_eq!(
            code(b"\x00\x01garbage"),
            Err(ResponseError::NotHttp { offset: 0 })
        );
        assert_eq!(
            code(b"hello world"),
            Err(ResponseError::NotHttp { offset: 5 })
        );
        assert_eq!(code(b"\r\r"), Err(ResponseError::NotHttp { offset: 1 }));
    }

    #[test]
    fn limit_and_truncation() {
        let mut p = StatusParser::new(64);
        let long = [b"X-Long: ".as_slice(), &[b'a'; 100]].concat();
        assert_eq!(p.feed(&long), Err(ResponseError::TooLarge { limit: 64 }));
        assert_eq!(p.seen(), 64, "stops reading at the limit");
        let mut p = StatusParser::default();
        assert_eq!(p.finish(), None, "no bytes: no response, not an error");
        assert_eq!(p.feed(b"HTTP/1.1 2"), Ok(StatusProgress::NeedMore));
        assert_eq!(p.finish(), Some(Err(ResponseError::Truncated { got: 10 })));
        let mut p = StatusParser::default();
        p.feed(b"HTTP/1.1 204").unwrap();
        assert_eq!(p.finish().unwrap().unwrap().code, 204);
    }

    #[test]
    fn reset_starts_over_and_done_is_sticky() {
        let mut p = StatusParser::default();
        assert!(matches!(
            p.feed(b"HTTP/1.1 200 OK\r\n"),
            Ok(StatusProgress::Done(_))
        ));
        let seen = p.seen();
        assert!(matches!(p.feed(b"garbage"), Ok(StatusProgress::Done(s)) if s.code == 200));
        assert_eq!(p.seen(), seen, "bytes after the status are not consumed");
        p.reset();
        assert_eq!(
            p.feed(b"HTTP/1.1 503 x").unwrap(),
            StatusProgress::Done(Status {
                code: 503,
                source: StatusSource::StatusLine
            })
        );
    }
}
