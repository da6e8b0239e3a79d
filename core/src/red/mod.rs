//! RED (Rate, Errors, Duration) aggregation.

pub mod aggregate;
pub mod cardinality;
pub mod expose;
pub mod histogram;
pub mod labels;
pub mod method;
pub mod names;
pub mod route;
pub mod shared;
