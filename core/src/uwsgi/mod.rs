//! The uwsgi wire protocol: request heads (streaming decoder, encoder),
//! the response status, the modifier table, and the per-connection
//! exchange tracker the network filter is built on.

// Panic-free by construction: no indexing, slicing, unwrapping or
// overflowing arithmetic on input-driven values (tests opt out).
#![deny(
    clippy::indexing_slicing,
    clippy::string_slice,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

pub mod config;
pub mod decoder;
pub mod exchange;
pub mod modifier;
pub mod packet;
pub mod response;

pub use decoder::{decode_head, DecodeError, HeadDecoder, Progress, DEFAULT_HEAD_LIMIT};
pub use exchange::{ConnectionTracker, Event, Exchange, PROTOCOL};
pub use packet::{encode_head, Header, RequestHead, Var, Vars, HEADER_LEN};
pub use response::{ResponseError, Status, StatusParser, StatusProgress};

/// Counter of streams the filter could not decode, by `reason`
/// (`DecodeError::reason` / `ResponseError::reason`).
pub const DECODE_ERRORS_TOTAL: &str = "uwsgi_red_decode_errors_total";
