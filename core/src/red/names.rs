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
