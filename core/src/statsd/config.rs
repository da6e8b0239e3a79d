//! `plugin_config` of the OpenTelemetry Collector processor (JSON; unknown
//! keys are errors that name the key): which StatsD names to rewrite, how
//! request-log lines become RED attributes. Beside the StatsD mapping it
//! configures, so the CLI and the fuzz targets read it without the plugin.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::config::schema::{Key, Ty};
use crate::config::{parse_json, ConfigError};
use crate::red::admission::DEFAULT_MAX_SERIES;
use crate::red::config::MAX_SERIES_LIMIT;
// The same limits as red-filter's `route_patterns` (red::config states why).
pub use crate::red::config::{MAX_ROUTE_PATTERNS, MAX_ROUTE_PATTERN_BYTES};
use crate::red::histogram::{Buckets, DEFAULT_BUCKETS_SECONDS};
use crate::red::route::{PathTemplate, RouteNormalizer};

/// What the number after gunicorn's default access-log fields is: `"M"`,
/// `"D"` (the default, as the recommended format ends in `%(D)s`) or `"L"`.
pub use crate::logs::gunicorn::DurationField as GunicornDurationField;

const ROUTE_PATTERN: Ty = Ty::Str {
    min: 0,
    max_bytes: MAX_ROUTE_PATTERN_BYTES,
    slash: true,
};

/// The processor's keys as `uwsgi-red schema otel-processor` states them.
/// serde reads the struct below; the test `schema_keys_are_the_fields`
/// holds the two to the same key set (serde names every field it expects).
pub const OTEL_KEYS: [Key; 11] = [
    Key::new(
        "uwsgi_prefixes",
        Ty::List {
            item: &Ty::Str {
                min: 1,
                max_bytes: 0,
                slash: false,
            },
            min: 0,
            max: 0,
        },
        "StatsD prefixes of uWSGI --stats-push statsd:HOST:PORT,PREFIX",
    ),
    Key::new(
        "services",
        Ty::StrMap,
        "StatsD prefix -> service.name (default: the prefix, or gunicorn)",
    ),
    Key::new(
        "duration_buckets_seconds",
        Ty::List {
            item: &Ty::Number,
            min: 0,
            max: crate::red::histogram::MAX_BUCKETS,
        },
        "upper bounds (seconds) of http.server.request.duration",
    )
    .beyond("finite, positive, strictly increasing"),
    Key::new(
        "keep_redundant",
        Ty::Bool,
        "keep series that duplicate rewritten ones under their original names",
    ),
    Key::new(
        "rewrite_metrics",
        Ty::Bool,
        "rewrite StatsD metrics to OTel HTTP semantic conventions",
    ),
    Key::new(
        "parse_logs",
        Ty::Bool,
        "turn request-log records into RED attributes",
    ),
    Key::new(
        "route_patterns",
        Ty::List {
            item: &ROUTE_PATTERN,
            min: 0,
            max: MAX_ROUTE_PATTERNS,
        },
        "path templates for http.route on request-log records, first match wins",
    )
    .beyond("template syntax; at most 256 bytes each (the schema counts characters)"),
    Key::new(
        "collapse_ids",
        Ty::Bool,
        "without a template, collapse numeric / UUID / hex segments to `:id`",
    ),
    Key::new(
        "uwsgi_push_period_seconds",
        Ty::Number,
        "uWSGI's --stats-pusher-default-freq: uWSGI counters aggregated over a receiver interval at least this long are refused",
    )
    .beyond("finite, in (0, 86400]"),
    Key::new(
        "gunicorn_duration_field",
        Ty::Choice(&["M", "D", "L"]),
        "the trailing field of gunicorn's access_log_format: %(D)s µs (default), %(M)s ms or %(L)s decimal seconds",
    ),
    Key::new(
        "max_series",
        Ty::UInt {
            min: 1,
            max: MAX_SERIES_LIMIT as u64,
        },
        "request-log label sets (service.name, method, route, status) with a series of their own; later ones fold into one overflow series per status class",
    ),
];

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtelProcessorConfig {
    /// StatsD prefixes used with uWSGI `--stats-push statsd:HOST:PORT,PREFIX`.
    /// uWSGI's metric names are too generic to claim without them.
    pub uwsgi_prefixes: Vec<String>,
    /// StatsD prefix -> `service.name`. Default: the prefix itself, or
    /// `gunicorn` for unprefixed gunicorn metrics.
    pub services: BTreeMap<String, String>,
    /// Upper bounds (seconds) of `http.server.request.duration`.
    pub duration_buckets_seconds: Vec<f64>,
    /// Keep series that duplicate rewritten ones (gunicorn's total
    /// `requests`, uWSGI's aggregate worker 0) under their original names.
    pub keep_redundant: bool,
    pub rewrite_metrics: bool,
    pub parse_logs: bool,
    /// Path templates for `http.route` on request-log records, such as
    /// `/users/{id}` or `/static/{path*}` (red-filter's syntax); first wins.
    pub route_patterns: Vec<String>,
    /// Without a matching template, collapse numeric / UUID / hex segments
    /// of the path to `:id` (as red-filter does).
    pub collapse_ids: bool,
    /// uWSGI's `--stats-pusher-default-freq` (or the pusher's own `freq`):
    /// a statsd receiver interval at least this long may have added several
    /// pushes of a running total together, so such counters are refused.
    pub uwsgi_push_period_seconds: f64,
    /// The trailing field of the gunicorn `access_log_format` in use.
    /// `%(M)s` and `%(D)s` print the same shape and cannot be told apart,
    /// so the default is the recommended format's `%(D)s` (microseconds,
    /// the precise one); a value of another shape is flagged, not read.
    pub gunicorn_duration_field: GunicornDurationField,
    /// Distinct request-log label sets (service, method, route, status)
    /// that get their own series; later ones are folded into one overflow
    /// series per status class (red-filter's `max_series`).
    pub max_series: usize,
    #[serde(skip)]
    pub buckets: Option<Buckets>,
    #[serde(skip)]
    pub templates: Vec<PathTemplate>,
}

impl Default for OtelProcessorConfig {
    fn default() -> Self {
        OtelProcessorConfig {
            uwsgi_prefixes: vec!["uwsgi".to_string()],
            services: BTreeMap::new(),
            duration_buckets_seconds: DEFAULT_BUCKETS_SECONDS.to_vec(),
            keep_redundant: false,
            rewrite_metrics: true,
            parse_logs: true,
            route_patterns: Vec::new(),
            collapse_ids: true,
            uwsgi_push_period_seconds: 3.0,
            gunicorn_duration_field: GunicornDurationField::D,
            max_series: DEFAULT_MAX_SERIES,
            buckets: None,
            templates: Vec::new(),
        }
    }
}

impl OtelProcessorConfig {
    /// otelwasm hands over `null` when `plugin_config` is absent.
    pub fn from_json(json: &[u8]) -> Result<Self, ConfigError> {
        let trimmed = json.trim_ascii();
        let mut cfg: OtelProcessorConfig = if trimmed == b"null" {
            Self::default()
        } else {
            parse_json(trimmed)?
        };
        if cfg.uwsgi_prefixes.iter().any(String::is_empty) {
            return Err(ConfigError::new(
                ".uwsgi_prefixes",
                "prefixes must not be empty",
            ));
        }
        let period = cfg.uwsgi_push_period_seconds;
        if !(period.is_finite() && period > 0.0 && period <= 86_400.0) {
            return Err(ConfigError::new(
                ".uwsgi_push_period_seconds",
                "must be a number of seconds in (0, 86400]",
            ));
        }
        if cfg.max_series == 0 || cfg.max_series > MAX_SERIES_LIMIT {
            return Err(ConfigError::new(
                ".max_series",
                format!("must be 1..={MAX_SERIES_LIMIT}"),
            ));
        }
        let buckets = Buckets::new(cfg.duration_buckets_seconds.clone())
            .map_err(|e| ConfigError::new(".duration_buckets_seconds", e.to_string()))?;
        cfg.buckets = Some(buckets);
        if cfg.route_patterns.len() > MAX_ROUTE_PATTERNS {
            return Err(ConfigError::new(
                ".route_patterns",
                format!("at most {MAX_ROUTE_PATTERNS} templates"),
            ));
        }
        let mut templates = Vec::with_capacity(cfg.route_patterns.len());
        for (i, text) in cfg.route_patterns.iter().enumerate() {
            let at = || format!(".route_patterns[{i}]");
            // Paths are cut at MAX_PATH_BYTES before matching: a longer
            // template could never match, so it is refused, not ignored.
            if text.len() > MAX_ROUTE_PATTERN_BYTES {
                return Err(ConfigError::new(
                    &at(),
                    format!("templates are at most {MAX_ROUTE_PATTERN_BYTES} bytes"),
                ));
            }
            templates.push(
                PathTemplate::parse(text).map_err(|e| ConfigError::new(&at(), e.to_string()))?,
            );
        }
        cfg.templates = templates;
        Ok(cfg)
    }

    /// `http.route` rules of this config.
    pub fn routes(&self) -> RouteNormalizer {
        RouteNormalizer::new(self.templates.clone(), self.collapse_ids)
    }

    pub fn bounds(&self) -> &[f64] {
        self.buckets
            .as_ref()
            .map_or(&DEFAULT_BUCKETS_SECONDS, Buckets::bounds)
    }

    /// `uwsgi_push_period_seconds` in nanoseconds (validated in `from_json`).
    pub fn uwsgi_push_period_nanos(&self) -> u64 {
        (self.uwsgi_push_period_seconds * 1e9) as u64
    }

    pub fn service_for(&self, prefix: &str, server: &str) -> String {
        match self.services.get(prefix) {
            Some(s) => s.clone(),
            None if prefix.is_empty() => server.to_string(),
            None => prefix.to_string(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    #[test]
    fn defaults_for_empty_and_null() {
        for doc in ["", "  ", "null", "{}"] {
            let c = OtelProcessorConfig::from_json(doc.as_bytes()).unwrap();
            assert_eq!(c.uwsgi_prefixes, ["uwsgi"]);
            assert_eq!(c.bounds(), DEFAULT_BUCKETS_SECONDS);
        }
    }

    #[test]
    fn unknown_key_is_named() {
        let e = OtelProcessorConfig::from_json(br#"{"uwsgi_prefixes":["a"],"servces":{}}"#)
            .unwrap_err();
        assert!(e.to_string().contains("servces"), "{e}");
        let e = OtelProcessorConfig::from_json(br#"{"uwsgi_prefixes":[1]}"#).unwrap_err();
        assert!(e.path.starts_with("uwsgi_prefixes"), "{e:?}");
        let e =
            OtelProcessorConfig::from_json(br#"{"duration_buckets_seconds":[1,0.5]}"#).unwrap_err();
        assert_eq!(e.path, ".duration_buckets_seconds");
        assert!(OtelProcessorConfig::from_json(br#"{"uwsgi_prefixes":[""]}"#).is_err());
    }

    #[test]
    fn route_patterns_are_checked_and_named() {
        let c = OtelProcessorConfig::from_json(
            br#"{"route_patterns":["/users/{id}"],"collapse_ids":false}"#,
        )
        .unwrap();
        assert_eq!(c.routes().route(None, "/users/7?x=1"), "/users/{id}");
        assert_eq!(c.routes().route(None, "/orders/7"), "/orders/7");
        let e =
            OtelProcessorConfig::from_json(br#"{"route_patterns":["/a","users"]}"#).unwrap_err();
        assert_eq!(e.path, ".route_patterns[1]");
        let long = format!(
            r#"{{"route_patterns":["/{}"]}}"#,
            "a".repeat(MAX_ROUTE_PATTERN_BYTES)
        );
        let e = OtelProcessorConfig::from_json(long.as_bytes()).unwrap_err();
        assert_eq!(e.path, ".route_patterns[0]");
        for (json, want) in [
            ("{}", GunicornDurationField::D),
            (
                r#"{"gunicorn_duration_field":"D"}"#,
                GunicornDurationField::D,
            ),
            (
                r#"{"gunicorn_duration_field":"M"}"#,
                GunicornDurationField::M,
            ),
            (
                r#"{"gunicorn_duration_field":"L"}"#,
                GunicornDurationField::L,
            ),
        ] {
            let c = OtelProcessorConfig::from_json(json.as_bytes()).unwrap();
            assert_eq!(c.gunicorn_duration_field, want, "{json}");
        }
        // %(T)s (whole seconds) is too coarse for a duration histogram.
        let e = OtelProcessorConfig::from_json(br#"{"gunicorn_duration_field":"T"}"#).unwrap_err();
        assert!(e.to_string().contains("gunicorn_duration_field"), "{e}");
    }

    #[test]
    fn uwsgi_push_period() {
        assert_eq!(
            OtelProcessorConfig::default().uwsgi_push_period_nanos(),
            3_000_000_000
        );
        let c = OtelProcessorConfig::from_json(br#"{"uwsgi_push_period_seconds":10}"#).unwrap();
        assert_eq!(c.uwsgi_push_period_nanos(), 10_000_000_000);
        for bad in ["0", "-1", "1e9", "\"3\""] {
            let json = format!(r#"{{"uwsgi_push_period_seconds":{bad}}}"#);
            let e = OtelProcessorConfig::from_json(json.as_bytes()).unwrap_err();
            assert!(e.to_string().contains("uwsgi_push_period_seconds"), "{e}");
        }
    }

    #[test]
    fn schema_keys_are_the_fields() {
        // serde's unknown-field error lists every field it reads.
        let e = OtelProcessorConfig::from_json(br#"{"?":1}"#).unwrap_err();
        let listed: Vec<&str> = e.message.split('`').skip(3).step_by(2).collect();
        let table: Vec<&str> = OTEL_KEYS.iter().map(|k| k.name).collect();
        assert_eq!(listed, table, "{}", e.message);
    }

    #[test]
    fn max_series_is_bounded() {
        let c = OtelProcessorConfig::from_json(b"{}").unwrap();
        assert_eq!(c.max_series, DEFAULT_MAX_SERIES);
        let c = OtelProcessorConfig::from_json(br#"{"max_series":5}"#).unwrap();
        assert_eq!(c.max_series, 5);
        for bad in [&br#"{"max_series":0}"#[..], br#"{"max_series":100001}"#] {
            let e = OtelProcessorConfig::from_json(bad).unwrap_err();
            assert_eq!(e.path, ".max_series");
        }
    }

    #[test]
    fn services() {
        let c = OtelProcessorConfig::from_json(br#"{"services":{"app":"shop"}}"#).unwrap();
        assert_eq!(c.service_for("app", "gunicorn"), "shop");
        assert_eq!(c.service_for("other", "uwsgi"), "other");
        assert_eq!(c.service_for("", "gunicorn"), "gunicorn");
    }
}
