//! The uWSGI stats server document and its mapping to metric families.
//!
//! Pipeline, each step its own module:
//! 1. [`transport::body`] — accept a raw-TCP reply or an `--stats-http` reply;
//! 2. [`decode`] — parse into the typed [`model::StatsDocument`], falling back
//!    to [`repair::repair`] when uWSGI's unescaped strings broke the JSON;
//! 3. [`families::map_document`] — metric families named as uwsgi_exporter 1.3
//!    names them, ready for [`families::encode_text`] or a host adapter.
//!
//! [`scrape`] is the same pipeline at memory speed for callers that only want
//! Prometheus text: it decodes a borrowed [`view::View`] (strings borrowed
//! from the reply, `vars` and unknown keys skipped without allocating) and
//! maps it straight into the text encoder ([`sink::Text`]).
//!
//! Bounds (document size, list entries, label length, nesting) are in
//! [`limits`]; duplicates are dropped and counted as [`families`] explains.
//!
//! Supporting pieces: [`config`] (the Envoy plugin's settings), [`snapshot`]
//! (the JSON served to the browser viewer), [`error`] (errors with a
//! bounded `reason` and, for wrong types, the JSON path, found from the error position).
//!
//! ```
//! use uwsgi_red_core::stats::{self, families::{map_document, encode_text, MapOptions}};
//! let reply = b"{\"version\":\"2.0.30\",\"workers\":[{\"id\":1,\"requests\":7}]}";
//! let decoded = stats::decode(reply).unwrap();
//! let fams = map_document(&decoded.document, "app1", &MapOptions::default());
//! assert!(encode_text(&fams).contains("uwsgi_worker_requests_total{target=\"app1\",worker_id=\"1\"} 7"));
//! ```

pub mod config;
mod error;
pub mod families;
pub mod limits;
pub mod model;
pub mod nginx;
pub(crate) mod path;
pub mod repair;
pub mod sink;
pub mod snapshot;
pub mod transport;
pub mod upstream;
pub mod view;

pub use config::{
    AdminConfig, PollerConfig, TargetConfig, UwsgiStatsConfig, ADMIN_KEYS,
    DEFAULT_SHARED_DATA_PREFIX, POLLER_KEYS,
};
pub use error::StatsError;
pub use families::{integer_value, map_document, Family, MapOptions, LABEL_NAMES};
pub use model::{Cache, Socket, Spooler, StatsDocument, WorkerStatus};
pub use nginx::{NginxConfig, NGINX_KEYS};
pub use snapshot::{Snapshot, TargetSnapshot};

use serde::Deserialize;
use serde_json::error::Category;

use families::ScrapeStatus;

/// Default upper bound on a document: generous (a 150-process × 256-core
/// server with live vars stays under it) but finite.
pub const DEFAULT_MAX_DOCUMENT_BYTES: usize = 16 * 1024 * 1024;

/// A decoded document and how it was obtained.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub document: StatsDocument,
    /// Strings rewritten by [`repair::repair`]; 0 for valid JSON.
    pub repairs: usize,
    /// Size of the JSON body (after any HTTP head).
    pub body_bytes: usize,
}

/// Decodes a stats reply (raw or HTTP) with [`DEFAULT_MAX_DOCUMENT_BYTES`].
pub fn decode(reply: &[u8]) -> Result<Decoded, StatsError> {
    decode_with_limit(reply, DEFAULT_MAX_DOCUMENT_BYTES)
}

pub fn decode_with_limit(reply: &[u8], max_bytes: usize) -> Result<Decoded, StatsError> {
    let body = checked_body(reply, max_bytes)?;
    let (document, repairs) = with_repair(body, |json, _| parse::<StatsDocument>(json))?;
    Ok(Decoded {
        document,
        repairs,
        body_bytes: body.len(),
    })
}

/// One scrape as Prometheus text: the scrape self-metrics
/// ([`families::scrape_families`]) then the document's families.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scrape {
    pub text: String,
    /// Strings rewritten by [`repair::repair`]; 0 for valid JSON.
    pub repairs: usize,
    /// Size of the JSON body (after any HTTP head).
    pub body_bytes: usize,
    /// Entries dropped as duplicates (see [`families`]).
    pub duplicates: u64,
}

/// Reply → Prometheus text without building the owned document: the same
/// output as `scrape_families` + `map_document` + `encode_text`, and the
/// same errors as [`decode_with_limit`].
pub fn scrape(
    reply: &[u8],
    target: &str,
    opts: &MapOptions,
    max_bytes: usize,
) -> Result<Scrape, StatsError> {
    let body = checked_body(reply, max_bytes)?;
    let ((text, duplicates), repairs) = with_repair(body, |json, repairs| {
        // One allocation for the page in the common case: real pages are
        // 0.15-1.2x their document (1 MB capture: 0.14x; hostile: 1.15x), and
        // a doubling String would peak at 3x its final size mid-copy. The
        // excess is given back below.
        let mut sink = sink::Text::with_capacity(body.len().saturating_add(body.len() / 4));
        let status = ScrapeStatus {
            up: true,
            repairs: repairs as u64,
            document_bytes: body.len() as u64,
        };
        families::scrape_status_into(target, &status, &mut sink);
        let summary = if opts.per_core {
            families::map_view(&parse::<view::View>(json)?, target, opts, &mut sink)
        } else {
            let v = parse::<view::ViewOf<false>>(json)?;
            families::map_view(&v, target, opts, &mut sink)
        };
        let mut text = sink.finish();
        if text.len() < text.capacity() / 2 {
            text.shrink_to_fit();
        }
        Ok((text, summary.duplicates))
    })?;
    Ok(Scrape {
        text,
        repairs,
        body_bytes: body.len(),
        duplicates,
    })
}

/// The JSON body of `reply`, refused before any parsing when over `max_bytes`.
fn checked_body(reply: &[u8], max_bytes: usize) -> Result<&[u8], StatsError> {
    let body = transport::body(reply)?;
    if body.len() > max_bytes {
        return Err(StatsError::TooLarge {
            size: body.len(),
            limit: max_bytes,
        });
    }
    if !matches!(body.first(), Some(b'{' | b'[')) {
        let head = body.get(..16).unwrap_or(body);
        let found = String::from_utf8_lossy(head).into_owned();
        return Err(StatsError::NotJson { found });
    }
    Ok(body)
}

/// Runs `f(body, 0)`; when the JSON is invalid and [`repair::repair`] can
/// fix it, runs `f(repaired, repairs)` once more. Returns `f`'s value and the
/// number of repaired strings. (Valid documents never pay for repair.)
fn with_repair<T>(
    body: &[u8],
    f: impl Fn(&[u8], usize) -> Result<T, StatsError>,
) -> Result<(T, usize), StatsError> {
    match f(body, 0) {
        Ok(v) => Ok((v, 0)),
        Err(first @ StatsError::InvalidJson { .. }) => match repair::repair(body) {
            Some((fixed, repairs)) => f(&fixed, repairs).map(|v| (v, repairs)),
            None => Err(first),
        },
        Err(e) => Err(e),
    }
}

fn parse<'a, T: Deserialize<'a>>(json: &'a [u8]) -> Result<T, StatsError> {
    // One decoder, no path tracking: the JSON path is found from the error's
    // position only when there is an error to report (see path.rs).
    serde_json::from_slice::<T>(json).map_err(|e| {
        let at = match e.classify() {
            Category::Data => path::at(json, e.line(), e.column()),
            _ => String::from("."),
        };
        classify(e, at)
    })
}

fn classify(e: serde_json::Error, path: String) -> StatsError {
    let (line, column) = (e.line(), e.column());
    let message = strip_position(&e);
    match e.classify() {
        Category::Eof => StatsError::Truncated { line, column },
        Category::Data => match message.strip_prefix(limits::LIMIT_TAG) {
            Some(m) => StatsError::Limit {
                path,
                message: m.to_owned(),
            },
            None => StatsError::Schema { path, message },
        },
        Category::Syntax | Category::Io => StatsError::InvalidJson {
            line,
            column,
            message,
        },
    }
}

/// serde_json appends " at line L column C"; our errors carry those separately.
fn strip_position(e: &serde_json::Error) -> String {
    let mut s = e.to_string();
    if let Some(i) = s.rfind(" at line ") {
        s.truncate(i);
    }
    s
}
