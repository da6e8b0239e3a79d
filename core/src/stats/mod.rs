//! The uWSGI stats server document and its mapping to metric families.
//!
//! Pipeline, each step its own module:
//! 1. [`transport::body`] — accept a raw-TCP reply or an `--stats-http` reply;
//! 2. [`decode`] — parse into the typed [`model::StatsDocument`], falling back
//!    to [`repair::repair`] when uWSGI's unescaped strings broke the JSON;
//! 3. [`families::map_document`] — metric families named as uwsgi_exporter 1.3
//!    names them, ready for [`families::encode_text`] or a host adapter.
//!
//! Supporting pieces: [`config`] (the Envoy plugin's settings), [`snapshot`]
//! (the JSON served to the browser viewer), [`error`] (errors with a
//! bounded `reason` and, for wrong types, the JSON path).
//!
//! ```
//! use uwsgi_red_core::stats::{self, families::{map_document, encode_text, MapOptions}};
//! let reply = b"{\"version\":\"2.0.30\",\"workers\":[{\"id\":1,\"requests\":7}]}";
//! let decoded = stats::decode(reply).unwrap();
//! let fams = map_document(&decoded.document, "app1", &MapOptions::default());
//! assert!(encode_text(&fams).contains("uwsgi_worker_requests_total{target=\"app1\",worker_id=\"1\"} 7"));
//! ```

pub mod config;
pub mod error;
pub mod families;
pub mod model;
pub mod repair;
pub mod snapshot;
pub mod transport;

pub use error::StatsError;
pub use model::StatsDocument;

use serde_json::error::Category;

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
    let body = transport::body(reply)?;
    if body.len() > max_bytes {
        return Err(StatsError::TooLarge {
            size: body.len(),
            limit: max_bytes,
        });
    }
    if !matches!(body.first(), Some(b'{' | b'[')) {
        let found = String::from_utf8_lossy(&body[..body.len().min(16)]).into_owned();
        return Err(StatsError::NotJson { found });
    }
    match parse(body) {
        Ok(document) => Ok(Decoded {
            document,
            repairs: 0,
            body_bytes: body.len(),
        }),
        Err(first) if matches!(first, StatsError::InvalidJson { .. }) => match repair::repair(body)
        {
            Some((fixed, repairs)) => {
                let document = parse(&fixed)?;
                Ok(Decoded {
                    document,
                    repairs,
                    body_bytes: body.len(),
                })
            }
            None => Err(first),
        },
        Err(e) => Err(e),
    }
}

fn parse(json: &[u8]) -> Result<StatsDocument, StatsError> {
    // Fast path without path tracking; the JSON path is only worth its cost
    // when there is an error to report.
    match serde_json::from_slice::<StatsDocument>(json) {
        Ok(doc) => Ok(doc),
        Err(e) if e.classify() == Category::Data => Err(parse_with_path(json)),
        Err(e) => Err(classify(e, String::from("."))),
    }
}

fn parse_with_path(json: &[u8]) -> StatsError {
    let de = &mut serde_json::Deserializer::from_slice(json);
    match serde_path_to_error::deserialize::<_, StatsDocument>(&mut *de) {
        Err(e) => {
            let path = e.path().to_string();
            classify(e.into_inner(), path)
        }
        // Only reached if the two parses disagree, which they cannot.
        Ok(_) => StatsError::Schema {
            path: ".".into(),
            message: "inconsistent document".into(),
        },
    }
}

fn classify(e: serde_json::Error, path: String) -> StatsError {
    let (line, column) = (e.line(), e.column());
    match e.classify() {
        Category::Eof => StatsError::Truncated { line, column },
        Category::Data => StatsError::Schema {
            path,
            message: strip_position(&e),
        },
        Category::Syntax | Category::Io => StatsError::InvalidJson {
            line,
            column,
            message: strip_position(&e),
        },
    }
}

/// serde_json appends " at line L column C"; our errors carry those separately.
fn strip_position(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}
