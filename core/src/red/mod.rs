//! RED (Rate, Errors, Duration) aggregation.

pub mod admission;
pub mod aggregate;
pub mod config;
mod expose;
mod facts;
pub mod histogram;
pub mod host;
mod intern;
pub mod kv;
pub mod labels;
mod maps;
mod method;
pub mod names;
pub mod route;
pub mod shared;

// What the plugins use, one level deep: `uwsgi_red_core::red::HostRecorder`.
// The modules stay public for tests, benches and fuzzing; `names` is used
// as a namespace (`red::names::REQUESTS_TOTAL`).
pub use self::admission::{namespace, Admission, Admitter, Decision};
pub use self::aggregate::{Observation, RedAggregate, Series};
pub use self::config::{Exposition, RedFilterConfig, RedFilterSettings, RequestStart, RED_KEYS};
pub use self::facts::{last_upstream_addr, RequestFacts};
pub use self::histogram::{Buckets, Histogram};
pub use self::host::{HostError, HostRecorder, MetricsHost, SeriesNames};
pub use self::intern::Interner;
pub use self::kv::{CasWrite, KvError, KvStore, LocalKv, Versioned};
pub use self::labels::{code_class, LabelSet};
pub use self::method::{normalize_method, OTHER_METHOD};
pub use self::route::RouteNormalizer;
pub use self::shared::{fits_format, Delta, Layout};
