//! RED (Rate, Errors, Duration) aggregation.
//!
//! Panic-free by construction: this code runs inside the user's proxy,
//! built with `panic = "abort"`, where one panic kills the VM and its
//! metrics. Tests may allow these lints.
#![deny(
    clippy::indexing_slicing,
    clippy::string_slice,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

pub mod admission;
pub mod aggregate;
pub mod expose;
pub mod histogram;
pub mod host;
pub mod intern;
pub mod kv;
pub mod labels;
pub mod method;
pub mod names;
pub mod route;
pub mod shared;
