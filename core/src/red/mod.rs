//! RED (Rate, Errors, Duration) aggregation.

pub mod admission;
pub mod aggregate;
pub mod config;
pub mod expose;
pub mod facts;
pub mod histogram;
pub mod host;
pub mod intern;
pub mod kv;
pub mod labels;
mod maps;
pub mod method;
pub mod names;
pub mod route;
pub mod shared;
