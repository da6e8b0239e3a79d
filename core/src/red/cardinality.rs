//! The cardinality cap is [`super::admission`], one policy for every
//! plugin; this path keeps the default where configuration code imports it.

pub use super::admission::DEFAULT_MAX_SERIES;
