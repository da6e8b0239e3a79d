//! Metric family names, shared by every plugin so the HTTP filter, the uwsgi
//! network filter and the self-served endpoint export the same families.

pub const REQUESTS_TOTAL: &str = "uwsgi_red_requests_total";
pub const ERRORS_TOTAL: &str = "uwsgi_red_errors_total";
/// Self-served/native exposition: seconds, as Prometheus expects.
pub const DURATION_SECONDS: &str = "uwsgi_red_request_duration_seconds";
pub const TTFB_SECONDS: &str = "uwsgi_red_time_to_first_byte_seconds";
/// Envoy host histograms only take integers, so host mode records
/// microseconds and says so in the name rather than mislabel the unit.
pub const DURATION_MICROSECONDS: &str = "uwsgi_red_request_duration_microseconds";
pub const TTFB_MICROSECONDS: &str = "uwsgi_red_time_to_first_byte_microseconds";
pub const DROPPED_LABEL_SETS_TOTAL: &str = "uwsgi_red_dropped_label_sets_total";
pub const INTERNAL_ERRORS_TOTAL: &str = "uwsgi_red_internal_errors_total";
/// Self-served mode: creation time of the shared state (a reset marker).
pub const STATE_START_TIME_SECONDS: &str = "uwsgi_red_state_start_time_seconds";

/// Route label value of the single series that absorbs label sets beyond
/// the cardinality cap.
pub const OVERFLOW_ROUTE: &str = "__overflow__";

// `reason` label values of `INTERNAL_ERRORS_TOTAL` raised by core, all in
// one place so a dashboard or alert can list them (the plugins add their
// own host-call reasons).

/// The host refused to define a metric.
pub const REASON_DEFINE: &str = "define_metric";
/// The host refused to record into a metric.
pub const REASON_RECORD: &str = "record_metric";
/// A plugin configuration was refused; the plugin passes traffic untouched.
pub const REASON_CONFIG: &str = "config";
/// The shared store refused a call (bad key, no shared data, ...).
pub const REASON_STORE_UNAVAILABLE: &str = "shared_data";
/// The shared store refused a value's size (zone full, value over a limit).
pub const REASON_STORE_TOO_LARGE: &str = "shared_data_too_large";
/// A key that should exist was missing (evicted, or the store was reset).
pub const REASON_STORE_MISSING: &str = "shared_data_missing";
/// An admission value in the store could not be read.
pub const REASON_STORE_CORRUPT: &str = "shared_data_corrupt";
/// Compare-and-swap lost every attempt on one key.
pub const REASON_CAS_CONTENDED: &str = "cas_contended";
/// A stored RED state could not be decoded; it was left as it is.
pub const REASON_UNDECODABLE: &str = "shared_state_undecodable";
/// A label longer than the shared-state format holds was folded into the
/// overflow series.
pub const REASON_LABEL_TOO_LONG: &str = "label_too_long";
/// Self mode with `exemplars` on: a request's `traceparent` header was not
/// a valid W3C trace context (it gets no exemplar and is counted as usual).
pub const REASON_INVALID_TRACEPARENT: &str = "invalid_traceparent";
