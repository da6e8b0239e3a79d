//! Why a stats document could not be used. Every error maps to a short,
//! fixed `reason` so it can label `uwsgi_scrape_errors_total` without
//! unbounded cardinality.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatsError {
    /// Nothing (or only whitespace) was received.
    Empty,
    /// The document is larger than the configured limit.
    TooLarge { size: usize, limit: usize },
    /// An HTTP reply with a status other than 200.
    HttpStatus { status: u16 },
    /// An HTTP reply whose head could not be parsed.
    BadHttp { message: String },
    /// The body does not start like a JSON object.
    NotJson { found: String },
    /// The JSON ended early (a cut connection).
    Truncated { line: usize, column: usize },
    /// Broken JSON that repair could not fix.
    InvalidJson {
        line: usize,
        column: usize,
        message: String,
    },
    /// Valid JSON of the wrong shape: `path` is the JSON path of the bad value,
    /// e.g. `workers[0].requests`.
    Schema { path: String, message: String },
    /// A list with too many entries or a label string too long (see
    /// [`super::limits`]); `path` is where the limit was crossed.
    Limit { path: String, message: String },
}

impl StatsError {
    /// The `reason` label value of `uwsgi_scrape_errors_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::TooLarge { .. } => "too_large",
            Self::HttpStatus { .. } => "http_status",
            Self::BadHttp { .. } => "bad_http",
            Self::NotJson { .. } => "not_json",
            Self::Truncated { .. } => "truncated",
            Self::InvalidJson { .. } => "invalid_json",
            Self::Schema { .. } => "schema",
            Self::Limit { .. } => "limit",
        }
    }
}

impl fmt::Display for StatsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "empty stats reply"),
            Self::TooLarge { size, limit } => {
                write!(
                    f,
                    "stats document of {size} bytes exceeds the limit of {limit} bytes"
                )
            }
            Self::HttpStatus { status } => write!(f, "stats server answered HTTP status {status}"),
            Self::BadHttp { message } => write!(f, "malformed HTTP reply: {message}"),
            Self::NotJson { found } => {
                write!(f, "not a JSON stats document (starts with {found:?})")
            }
            Self::Truncated { line, column } => {
                write!(
                    f,
                    "stats JSON is truncated (ends at line {line} column {column})"
                )
            }
            Self::InvalidJson {
                line,
                column,
                message,
            } => {
                write!(
                    f,
                    "invalid stats JSON at line {line} column {column}: {message}"
                )
            }
            Self::Schema { path, message } => {
                write!(f, "unexpected stats value at `{path}`: {message}")
            }
            Self::Limit { path, message } => {
                write!(f, "stats document over a limit at `{path}`: {message}")
            }
        }
    }
}

impl std::error::Error for StatsError {}
