//! Prometheus text exposition (version 0.0.4).

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

pub mod text;
