//! The uwsgi wire protocol: request heads (streaming decoder, encoder),
//! the response status, the modifier table, and the per-connection
//! exchange tracker the network filter is built on.
//!
//! Bounds, per connection and whatever the peer sends:
//! - work: O(1) per head byte and per scanned response byte; body bytes
//!   are skipped without being fetched or read;
//! - memory: the head decoder copies only a head split across callbacks,
//!   never more than the head limit (≤ 65 539 bytes, the 16-bit datasize
//!   plus the header); the status parser is a fixed-size state machine; an
//!   exchange holds at most 16 + 256 + 255 + 255 bytes of text (method,
//!   path, server name, host, each cut after lossy UTF-8 decoding). So a
//!   connection costs at most the head limit plus about 1 KiB, independent
//!   of how much passes through it;
//! - limits: a head over the limit is `DatasizeTooLarge`, a response with no
//!   status within its limit is `TooLarge`, each counted and the bytes
//!   passed through untouched.

pub mod config;
mod decoder;
mod exchange;
pub mod modifier;
pub mod packet;
pub mod response;

pub use config::{UwsgiTcpConfig, UwsgiTcpSettings, UWSGI_TCP_KEYS};
pub use decoder::{decode_head, DecodeError, HeadDecoder, Progress, DEFAULT_HEAD_LIMIT};
pub use exchange::{ConnectionTracker, Event, Exchange, PROTOCOL};
pub use modifier::Payload;
pub use packet::{
    encode_head, EncodeError, Header, RequestHead, RequestVars, Var, Vars, HEADER_LEN,
};
pub use response::{ResponseError, Status, StatusParser, StatusProgress, StatusSource};

/// Counter of streams the filter could not decode, by `reason`
/// (`DecodeError::reason` / `ResponseError::reason`).
pub const DECODE_ERRORS_TOTAL: &str = "uwsgi_red_decode_errors_total";

/// Every `reason` of [`DECODE_ERRORS_TOTAL`]. A host defines each series at
/// 0 when the filter starts, as Prometheus advises for known label values:
/// the first error is then an increase `rate()` and `> 0` alerts can see,
/// not a series appearing from nowhere.
pub const DECODE_ERROR_REASONS: [&str; 8] = [
    "truncated",
    "var_overrun",
    "datasize_too_large",
    "unknown_modifier",
    "response_not_http",
    "response_bad_status",
    "response_too_large",
    "response_truncated",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_reason_is_in_the_zero_initialised_list() {
        let requests = [
            DecodeError::Truncated { got: 0, needed: 4 },
            DecodeError::VarOverrun { offset: 0 },
            DecodeError::DatasizeTooLarge {
                datasize: 0,
                limit: 0,
            },
            DecodeError::UnknownModifier { modifier1: 71 },
        ];
        let responses = [
            ResponseError::NotHttp { offset: 0 },
            ResponseError::BadStatus { offset: 0 },
            ResponseError::TooLarge { limit: 0 },
            ResponseError::Truncated { got: 0 },
        ];
        let mut got: Vec<&str> = requests.iter().map(DecodeError::reason).collect();
        got.extend(responses.iter().map(ResponseError::reason));
        assert_eq!(got, DECODE_ERROR_REASONS);
    }
}
