//! red-filter's configuration: the JSON document ([`RedFilterConfig`]), its key
//! table ([`RED_KEYS`], shared in part with uwsgi-tcp through [`keys`]), its
//! limits, and the validated [`RedFilterSettings`] the filter runs on.
//!
//! Bounds: every list and string the settings keep has a stated limit
//! (`MAX_ROUTE_PATTERNS`, `MAX_ROUTE_PATTERN_BYTES`, `MAX_SERVICE_BYTES`,
//! `MAX_METRICS_PATH_BYTES`, `MAX_BUCKETS`), so settings hold at most a few
//! hundred KiB.

use crate::config::node::{self, choice, Fields, FromNode, Node, Path};
use crate::config::schema::{self, Key, Ty};
use crate::config::ConfigError;
use crate::red::admission::DEFAULT_MAX_SERIES;
use crate::red::histogram::{Buckets, DEFAULT_BUCKETS_SECONDS};
use crate::red::route::{PathTemplate, RouteNormalizer};
use crate::scrape_access::{validate_page_path, ScrapeAccess, ALLOW_CIDRS_KEY, BEARER_TOKEN_KEY};

/// Where RED metrics go (`"host"`, `"self"`, `"both"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Exposition {
    /// The host's metrics API (Envoy `/stats/prometheus`).
    #[default]
    Host,
    /// Served by the plugin itself on `metrics_path`.
    SelfServed,
    Both,
}

impl FromNode for Exposition {
    fn from_node(node: Node, at: Path<'_>) -> Result<Self, ConfigError> {
        choice(
            node,
            at,
            &[
                ("host", Exposition::Host),
                ("self", Exposition::SelfServed),
                ("both", Exposition::Both),
            ],
        )
    }
}

/// Whether and how the HTTP filter stamps the upstream request with
/// `X-Request-Start: t=<µs since the epoch>` (`"off"`, `"keep"`, `"replace"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RequestStart {
    /// Nothing read, nothing added: no work on the request path.
    #[default]
    Off,
    /// Add the header only when the request has none: an outer proxy's
    /// stamp (the earliest moment the request was seen) is kept.
    Keep,
    /// Always set this proxy's stamp, dropping any incoming value.
    Replace,
}

impl FromNode for RequestStart {
    fn from_node(node: Node, at: Path<'_>) -> Result<Self, ConfigError> {
        choice(
            node,
            at,
            &[
                ("off", RequestStart::Off),
                ("keep", RequestStart::Keep),
                ("replace", RequestStart::Replace),
            ],
        )
    }
}

/// The header the stamp travels in (lower case, as proxy-wasm hosts want
/// header names).
pub const REQUEST_START_HEADER: &str = "x-request-start";

impl RequestStart {
    /// The value to send upstream for a request whose headers passed at
    /// `now_ns` (ns since the epoch), given whether it already carries the
    /// header (only asked in `keep` mode); `None`: leave the request as it is.
    pub fn stamp(self, has_incoming: impl FnOnce() -> bool, now_ns: u64) -> Option<String> {
        match self {
            RequestStart::Off => None,
            RequestStart::Keep if has_incoming() => None,
            RequestStart::Keep | RequestStart::Replace => Some(stamp_value(now_ns)),
        }
    }
}

/// `t=<µs since the epoch>`: the unit agents expect when the number has 16
/// digits (they tell seconds, ms and µs apart by magnitude).
pub fn stamp_value(now_ns: u64) -> String {
    format!("t={}", now_ns / 1000)
}

/// The keys red-filter and uwsgi-tcp share, as the schema states them.
pub mod keys {
    use super::schema::{Key, Ty};
    use super::*;

    pub const SERVICE: Key = Key::new(
        "service",
        Ty::OrNull(&Ty::Str {
            min: 1,
            max_bytes: MAX_SERVICE_BYTES,
            slash: false,
        }),
        "fixed `service` label (default: red-filter the upstream cluster name, uwsgi-tcp SERVER_NAME then HTTP_HOST)",
    )
    .beyond("at most 128 bytes (the schema counts characters)");
    const ROUTE_PATTERN: Ty = Ty::Str {
        min: 0,
        max_bytes: MAX_ROUTE_PATTERN_BYTES,
        slash: true,
    };
    pub const ROUTE_PATTERNS: Key = Key::new(
        "route_patterns",
        Ty::List {
            item: &ROUTE_PATTERN,
            min: 0,
            max: MAX_ROUTE_PATTERNS,
        },
        "path templates such as `/users/{id}` or `/static/{path*}`, first match wins",
    )
    .beyond("template syntax; at most 256 bytes each (the schema counts characters)");
    pub const COLLAPSE_IDS: Key = Key::new(
        "collapse_ids",
        Ty::Bool,
        "without a template, collapse numeric / UUID / hex segments to `:id`",
    );
    pub const MAX_SERIES: Key = Key::new(
        "max_series",
        Ty::UInt {
            min: 1,
            max: MAX_SERIES_LIMIT as u64,
        },
        "hard cap on label sets; the rest go to route=\"__overflow__\"",
    );
}

/// red-filter's keys, in the order they are reported.
pub const RED_KEYS: [Key; 15] = [
    keys::SERVICE,
    Key::new(
        "use_route_name",
        Ty::Bool,
        "use Envoy's route name as the route label when the route has one",
    ),
    keys::ROUTE_PATTERNS,
    keys::COLLAPSE_IDS,
    keys::MAX_SERIES,
    Key::new(
        "buckets_seconds",
        Ty::List {
            item: &Ty::Number,
            min: 0,
            max: crate::red::histogram::MAX_BUCKETS,
        },
        "histogram upper bounds in seconds (default: OpenTelemetry's)",
    )
    .beyond("finite, positive, strictly increasing"),
    Key::new(
        "exposition",
        Ty::Choice(&["host", "self", "both"]),
        "host metrics, a self-served endpoint, or both",
    ),
    Key::new(
        "metrics_path",
        Ty::Str {
            min: 1,
            max_bytes: MAX_METRICS_PATH_BYTES,
            slash: true,
        },
        "path the plugin answers in self/both mode",
    )
    .beyond("at most 256 bytes (the schema counts characters); [A-Za-z0-9-._~] segments, no . or .. or //"),
    Key::new(
        "flush_interval_ms",
        Ty::UInt {
            min: *FLUSH_INTERVAL_MS_RANGE.start(),
            max: *FLUSH_INTERVAL_MS_RANGE.end(),
        },
        "self/both mode: how often each VM merges its counts into the shared state",
    ),
    Key::new(
        "time_to_first_byte",
        Ty::Bool,
        "HTTP filter: record time to first byte",
    ),
    Key::new(
        "exemplars",
        Ty::Bool,
        "self/both mode: keep the W3C traceparent trace id of the latest request per duration bucket, shown in OpenMetrics scrapes",
    ),
    ALLOW_CIDRS_KEY,
    BEARER_TOKEN_KEY,
    Key::new(
        "request_start",
        Ty::Choice(&["off", "keep", "replace"]),
        "HTTP filter: send `X-Request-Start: t=<µs since the epoch>` upstream; `keep` leaves an incoming value, `replace` overwrites it",
    ),
    Key::new(
        "upstream_label",
        Ty::Bool,
        "label `upstream` with the backend address (`host:port`) that answered",
    ),
];

/// The JSON document of the HTTP filter. Every key is optional (absent
/// means the default); unknown keys are refused by name.
#[derive(Debug, Clone, PartialEq)]
pub struct RedFilterConfig {
    /// Fixed `service` label; when absent the host's upstream cluster name is used.
    pub service: Option<String>,
    /// Use the host's route name (Envoy `xds.route_name`) when it has one.
    pub use_route_name: bool,
    /// Path templates such as `/users/{id}`, tried in order.
    pub route_patterns: Vec<String>,
    /// Collapse numeric/UUID/hex path segments to `:id` when no template matched.
    pub collapse_ids: bool,
    /// Hard cap on distinct label sets; the rest go to `route="__overflow__"`.
    pub max_series: usize,
    /// Histogram upper bounds in seconds.
    pub buckets_seconds: Vec<f64>,
    pub exposition: Exposition,
    /// Path answered by the plugin in `self`/`both` mode.
    pub metrics_path: String,
    /// `self`/`both` mode: how often each VM merges its local counts into
    /// the shared state; the bound on how stale a scrape can be.
    pub flush_interval_ms: u64,
    /// HTTP-filter form: record time to first byte (two clock reads per
    /// request). Off, the filter reads the clock only where the host gives
    /// no duration of its own.
    pub time_to_first_byte: bool,
    /// `self`/`both` mode: read each request's `traceparent` and keep the
    /// latest trace id per duration bucket as an OpenMetrics exemplar. Off,
    /// nothing is read.
    pub exemplars: bool,
    /// `self`/`both` mode: client ranges allowed to scrape (absent: loopback
    /// only; empty: nobody, the filter measures and never answers).
    pub scrape_allow_cidrs: Option<Vec<String>>,
    /// `self`/`both` mode: when set, a scrape must also carry
    /// `Authorization: Bearer <token>`.
    pub scrape_bearer_token: Option<String>,
    /// HTTP filter: stamp the upstream request with `X-Request-Start`.
    pub request_start: RequestStart,
    /// Add the `upstream` label: the backend address that answered.
    pub upstream_label: bool,
}

impl Default for RedFilterConfig {
    fn default() -> Self {
        Self {
            service: None,
            use_route_name: true,
            route_patterns: Vec::new(),
            collapse_ids: true,
            max_series: DEFAULT_MAX_SERIES,
            buckets_seconds: DEFAULT_BUCKETS_SECONDS.to_vec(),
            exposition: Exposition::Host,
            metrics_path: "/metrics".to_string(),
            flush_interval_ms: DEFAULT_FLUSH_INTERVAL_MS,
            time_to_first_byte: true,
            exemplars: false,
            scrape_allow_cidrs: None,
            scrape_bearer_token: None,
            request_start: RequestStart::Off,
            upstream_label: false,
        }
    }
}

impl FromNode for RedFilterConfig {
    fn from_node(node: Node, at: Path<'_>) -> Result<Self, ConfigError> {
        const NAMES: [&str; RED_KEYS.len()] = schema::names(&RED_KEYS);
        let mut f = Fields::new(node, at, &NAMES)?;
        let d = Self::default();
        Ok(Self {
            service: f.take("service")?.unwrap_or(d.service),
            use_route_name: f.take("use_route_name")?.unwrap_or(d.use_route_name),
            route_patterns: f.take("route_patterns")?.unwrap_or(d.route_patterns),
            collapse_ids: f.take("collapse_ids")?.unwrap_or(d.collapse_ids),
            max_series: f.take("max_series")?.unwrap_or(d.max_series),
            buckets_seconds: f.take("buckets_seconds")?.unwrap_or(d.buckets_seconds),
            exposition: f.take("exposition")?.unwrap_or(d.exposition),
            metrics_path: f.take("metrics_path")?.unwrap_or(d.metrics_path),
            flush_interval_ms: f.take("flush_interval_ms")?.unwrap_or(d.flush_interval_ms),
            time_to_first_byte: f
                .take("time_to_first_byte")?
                .unwrap_or(d.time_to_first_byte),
            exemplars: f.take("exemplars")?.unwrap_or(d.exemplars),
            scrape_allow_cidrs: f.take("scrape_allow_cidrs")?,
            scrape_bearer_token: f.take("scrape_bearer_token")?,
            request_start: f.take("request_start")?.unwrap_or(d.request_start),
            upstream_label: f.take("upstream_label")?.unwrap_or(d.upstream_label),
        })
    }
}

pub const DEFAULT_FLUSH_INTERVAL_MS: u64 = 1000;
/// Below this a tick costs more than it buys; above it scrapes go stale.
pub const FLUSH_INTERVAL_MS_RANGE: std::ops::RangeInclusive<u64> = 10..=60_000;

/// Longest route template, in bytes. The route label of a request is at
/// most `MAX_PATH_BYTES` (paths are cut to it before matching), so a longer
/// template either never matches or would emit a label longer than any
/// other route: refused, naming the entry.
pub const MAX_ROUTE_PATTERN_BYTES: usize = crate::red::route::MAX_PATH_BYTES;

/// Most route templates. Every request is tried against them in order, so
/// this bounds the per-request work (at most this many matches of a path of
/// at most `MAX_PATH_BYTES`) and the configuration's memory (at most
/// 1000 × 256 bytes of template text per VM). The same limit as the
/// otel-processor's `route_patterns`.
pub const MAX_ROUTE_PATTERNS: usize = 1000;

/// Longest `metrics_path`, the same bound as any route.
pub const MAX_METRICS_PATH_BYTES: usize = crate::red::route::MAX_PATH_BYTES;

/// Longest `service` label value, in bytes.
pub const MAX_SERVICE_BYTES: usize = 128;

/// Longest `upstream` label value, in bytes: any `host:port` (a DNS name
/// is at most 253 bytes, but hosts report addresses, not names) fits;
/// a longer value is cut like a long cluster name.
pub const MAX_UPSTREAM_BYTES: usize = 128;

// Self mode stores labels in the shared-state format, which holds labels of
// at most `MAX_LABEL_BYTES`: every label a valid configuration can produce
// (a template, a route or route name cut at `MAX_PATH_BYTES`, a service)
// fits it, checked at compile time so no admitted configuration can ever
// produce a label the format refuses.
const _: () = assert!(
    MAX_ROUTE_PATTERN_BYTES <= crate::red::shared::MAX_LABEL_BYTES
        && crate::red::route::MAX_PATH_BYTES <= crate::red::shared::MAX_LABEL_BYTES
        && MAX_SERVICE_BYTES <= crate::red::shared::MAX_LABEL_BYTES
        && MAX_UPSTREAM_BYTES <= crate::red::shared::MAX_LABEL_BYTES
);

/// Upper bound for `max_series`: beyond it one plugin could hold hundreds of
/// MB of label sets, which is never what a metrics plugin should do.
pub const MAX_SERIES_LIMIT: usize = 100_000;

/// Validated, ready-to-use settings.
#[derive(Debug, Clone)]
pub struct RedFilterSettings {
    pub service: Option<String>,
    pub use_route_name: bool,
    pub routes: RouteNormalizer,
    pub max_series: usize,
    pub buckets: Buckets,
    pub exposition: Exposition,
    pub metrics_path: String,
    pub flush_interval_ms: u64,
    pub time_to_first_byte: bool,
    pub exemplars: bool,
    /// Who the self-served page is answered to.
    pub scrape_access: ScrapeAccess,
    pub request_start: RequestStart,
    pub upstream_label: bool,
}

impl RedFilterConfig {
    pub fn from_json(bytes: &[u8]) -> Result<RedFilterSettings, ConfigError> {
        node::read::<RedFilterConfig>(bytes)?.validate()
    }

    pub fn validate(self) -> Result<RedFilterSettings, ConfigError> {
        if self.route_patterns.len() > MAX_ROUTE_PATTERNS {
            return Err(ConfigError::new(
                "route_patterns",
                format!(
                    "at most {MAX_ROUTE_PATTERNS} templates, got {}",
                    self.route_patterns.len()
                ),
            ));
        }
        let templates = self
            .route_patterns
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let key = format!("route_patterns[{i}]");
                if t.len() > MAX_ROUTE_PATTERN_BYTES {
                    return Err(ConfigError::new(
                        &key,
                        format!(
                            "longer than {MAX_ROUTE_PATTERN_BYTES} bytes ({} bytes)",
                            t.len()
                        ),
                    ));
                }
                // The key names the template; quoting it again would take
                // `{:?}`, whose escaping links Unicode tables into every module.
                PathTemplate::parse(t).map_err(|e| ConfigError::new(&key, e.reason))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if self.max_series == 0 || self.max_series > MAX_SERIES_LIMIT {
            return Err(ConfigError::new(
                "max_series",
                format!(
                    "must be between 1 and {MAX_SERIES_LIMIT}, got {}",
                    self.max_series
                ),
            ));
        }
        let buckets = Buckets::new(self.buckets_seconds)
            .map_err(|e| ConfigError::new("buckets_seconds", e.to_string()))?;
        validate_page_path(&self.metrics_path, "metrics_path")?;
        if self.metrics_path.len() > MAX_METRICS_PATH_BYTES {
            return Err(ConfigError::new(
                "metrics_path",
                format!("longer than {MAX_METRICS_PATH_BYTES} bytes"),
            ));
        }
        if !FLUSH_INTERVAL_MS_RANGE.contains(&self.flush_interval_ms) {
            return Err(ConfigError::new(
                "flush_interval_ms",
                format!(
                    "must be between {} and {}, got {}",
                    FLUSH_INTERVAL_MS_RANGE.start(),
                    FLUSH_INTERVAL_MS_RANGE.end(),
                    self.flush_interval_ms
                ),
            ));
        }
        if let Some(s) = &self.service {
            if s.is_empty() || s.len() > MAX_SERVICE_BYTES {
                return Err(ConfigError::new(
                    "service",
                    format!("must be 1 to {MAX_SERVICE_BYTES} bytes"),
                ));
            }
        }
        let scrape_access = ScrapeAccess::from_config(
            self.scrape_allow_cidrs.as_deref(),
            self.scrape_bearer_token.as_deref(),
            "scrape_allow_cidrs",
            "scrape_bearer_token",
        )?;
        Ok(RedFilterSettings {
            service: self.service,
            use_route_name: self.use_route_name,
            routes: RouteNormalizer::new(templates, self.collapse_ids),
            max_series: self.max_series,
            buckets,
            exposition: self.exposition,
            metrics_path: self.metrics_path,
            flush_interval_ms: self.flush_interval_ms,
            time_to_first_byte: self.time_to_first_byte,
            exemplars: self.exemplars,
            scrape_access,
            request_start: self.request_start,
            upstream_label: self.upstream_label,
        })
    }
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use super::*;
    use crate::config::MAX_CONFIG_BYTES;

    #[test]
    fn empty_means_defaults() {
        let s = RedFilterConfig::from_json(b"").unwrap();
        assert_eq!(s.max_series, 1000);
        assert_eq!(s.buckets.bounds().len(), 17);
        let s = RedFilterConfig::from_json(b"{}").unwrap();
        assert!(s.use_route_name);
    }

    #[test]
    fn full_config() {
        let s = RedFilterConfig::from_json(
            br#"{"service":"shop","route_patterns":["/users/{id}"],"max_series":50,
                "buckets_seconds":[0.1,1],"exposition":"both","collapse_ids":false}"#,
        )
        .unwrap();
        assert_eq!(s.service.as_deref(), Some("shop"));
        assert_eq!(s.routes.route(None, "/users/9"), "/users/{id}");
        assert_eq!(s.routes.route(None, "/x/9"), "/x/9");
        assert_eq!(s.exposition, Exposition::Both);
        let s = RedFilterConfig::from_json(
            br#"{"exposition":"self","metrics_path":"/m","flush_interval_ms":250}"#,
        )
        .unwrap();
        assert_eq!(
            (s.exposition, s.metrics_path.as_str(), s.flush_interval_ms),
            (Exposition::SelfServed, "/m", 250)
        );
        assert_eq!(
            RedFilterConfig::from_json(b"{}").unwrap().flush_interval_ms,
            DEFAULT_FLUSH_INTERVAL_MS
        );
    }

    #[test]
    fn exemplars_are_off_unless_configured() {
        assert!(!RedFilterConfig::from_json(b"{}").unwrap().exemplars);
        let on = RedFilterConfig::from_json(br#"{"exposition":"self","exemplars":true}"#).unwrap();
        assert!(on.exemplars);
        assert_eq!(
            RedFilterConfig::from_json(br#"{"exemplars":1}"#)
                .unwrap_err()
                .path,
            "exemplars"
        );
    }

    /// Regression: templates over 256 bytes were accepted and
    /// silently never matched; their number was unbounded.
    #[test]
    fn route_pattern_limits_name_the_key() {
        let long = format!("/{}", "a".repeat(MAX_ROUTE_PATTERN_BYTES));
        let doc = format!(r#"{{"route_patterns":["/a","/b","/c",{long:?}]}}"#);
        let e = RedFilterConfig::from_json(doc.as_bytes()).unwrap_err();
        assert_eq!(e.path, "route_patterns[3]");
        assert_eq!(e.message, "longer than 256 bytes (257 bytes)");
        assert_eq!(
            e.to_string(),
            "invalid plugin configuration at `route_patterns[3]`: longer than 256 bytes (257 bytes)"
        );
        // Exactly at the limit is fine, and matches a path of that length.
        let exact = format!("/{}", "a".repeat(MAX_ROUTE_PATTERN_BYTES - 1));
        let doc = format!(r#"{{"route_patterns":[{exact:?}]}}"#);
        let s = RedFilterConfig::from_json(doc.as_bytes()).unwrap();
        assert_eq!(s.routes.route(None, &exact), exact);
        let many: Vec<String> = (0..=MAX_ROUTE_PATTERNS).map(|i| format!("/r{i}")).collect();
        let doc = serde_json::json!({ "route_patterns": many }).to_string();
        let e = RedFilterConfig::from_json(doc.as_bytes()).unwrap_err();
        assert_eq!(
            (e.path.as_str(), e.message.as_str()),
            ("route_patterns", "at most 1000 templates, got 1001")
        );
        let doc = serde_json::json!({ "route_patterns": &many[..MAX_ROUTE_PATTERNS] }).to_string();
        assert!(RedFilterConfig::from_json(doc.as_bytes()).is_ok());
        let e = RedFilterConfig::from_json(
            format!(r#"{{"metrics_path":"/{}"}}"#, "m".repeat(300)).as_bytes(),
        )
        .unwrap_err();
        assert_eq!(e.path, "metrics_path");
    }

    #[test]
    fn oversized_and_deep_documents_are_refused() {
        let mut big = br#"{"service":"x","metrics_path":"/m"}"#.to_vec();
        big.resize(MAX_CONFIG_BYTES + 1, b' ');
        let e = RedFilterConfig::from_json(&big).unwrap_err();
        assert_eq!(e.path, ".");
        assert_eq!(
            e.message,
            "document of 1048577 bytes is over the 1048576-byte limit"
        );
        big.truncate(MAX_CONFIG_BYTES);
        assert!(
            RedFilterConfig::from_json(&big).is_ok(),
            "at the limit is fine"
        );
        let deep = format!(
            r#"{{"route_patterns":{}{}}}"#,
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        let e = RedFilterConfig::from_json(deep.as_bytes()).unwrap_err();
        // The document is parsed before it is read: nesting beyond
        // serde_json's limit is a syntax error of the document, located.
        assert_eq!(
            (e.path.as_str(), e.message.as_str()),
            (".", "recursion limit exceeded at line 1 column 145")
        );
        // Within the limit, refused at the first level that has the wrong
        // type, named.
        let deep = format!(
            r#"{{"route_patterns":{}{}}}"#,
            "[".repeat(100),
            "]".repeat(100)
        );
        let e = RedFilterConfig::from_json(deep.as_bytes()).unwrap_err();
        assert_eq!(
            (e.path.as_str(), e.message.as_str()),
            ("route_patterns[0]", "expected a string, got a list")
        );
    }

    #[test]
    fn request_start_and_upstream_label_keys() {
        let d = RedFilterConfig::from_json(b"{}").unwrap();
        assert_eq!(d.request_start, RequestStart::Off);
        assert!(!d.upstream_label);
        let s = RedFilterConfig::from_json(br#"{"request_start":"keep","upstream_label":true}"#)
            .unwrap();
        assert_eq!(s.request_start, RequestStart::Keep);
        assert!(s.upstream_label);
        let s = RedFilterConfig::from_json(br#"{"request_start":"replace"}"#).unwrap();
        assert_eq!(s.request_start, RequestStart::Replace);
        for (doc, key) in [
            (&br#"{"request_start":"on"}"#[..], "request_start"),
            (br#"{"request_start":true}"#, "request_start"),
            (br#"{"upstream_label":"yes"}"#, "upstream_label"),
        ] {
            let e = RedFilterConfig::from_json(doc).unwrap_err();
            assert_eq!(e.path, key, "{}", String::from_utf8_lossy(doc));
        }
    }

    #[test]
    fn stamp_modes() {
        let now = 1_765_000_000_123_456_789;
        let asked = std::cell::Cell::new(0);
        let has = |v: bool| {
            let asked = &asked;
            move || {
                asked.set(asked.get() + 1);
                v
            }
        };
        assert_eq!(RequestStart::Off.stamp(has(false), now), None);
        assert_eq!(asked.get(), 0, "off reads no header");
        assert_eq!(
            RequestStart::Replace.stamp(has(true), now).as_deref(),
            Some("t=1765000000123456")
        );
        assert_eq!(asked.get(), 0, "replace reads no header");
        assert_eq!(RequestStart::Keep.stamp(has(true), now), None);
        assert_eq!(
            RequestStart::Keep.stamp(has(false), now).as_deref(),
            Some("t=1765000000123456")
        );
        assert_eq!(asked.get(), 2);
        assert_eq!(stamp_value(now).len(), 18, "t= and 16 digits");
    }

    #[test]
    fn unknown_key_is_named() {
        let e = RedFilterConfig::from_json(br#"{"max_seris": 5}"#).unwrap_err();
        assert!(e.to_string().contains("max_seris"), "{e}");
    }

    #[test]
    fn wrong_type_names_the_key() {
        let e = RedFilterConfig::from_json(br#"{"max_series": "lots"}"#).unwrap_err();
        assert_eq!(e.path, "max_series");
        assert!(e.to_string().contains("max_series"), "{e}");
        let e = RedFilterConfig::from_json(br#"{"route_patterns": ["/ok", 5]}"#).unwrap_err();
        assert_eq!(e.path, "route_patterns[1]");
    }

    #[test]
    fn semantic_errors_name_the_key() {
        assert_eq!(
            RedFilterConfig::from_json(br#"{"max_series":0}"#)
                .unwrap_err()
                .path,
            "max_series"
        );
        assert_eq!(
            RedFilterConfig::from_json(br#"{"buckets_seconds":[2,1]}"#)
                .unwrap_err()
                .path,
            "buckets_seconds"
        );
        let e = RedFilterConfig::from_json(br#"{"route_patterns":["/a","nope"]}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid plugin configuration at `route_patterns[1]`: must start with '/'"
        );
        assert!(RedFilterConfig::from_json(b"{").is_err());
        assert_eq!(
            RedFilterConfig::from_json(br#"{"exposition":"x"}"#)
                .unwrap_err()
                .path,
            "exposition"
        );
        assert_eq!(
            RedFilterConfig::from_json(br#"{"flush_interval_ms":0}"#)
                .unwrap_err()
                .path,
            "flush_interval_ms"
        );
        assert_eq!(
            RedFilterConfig::from_json(br#"{"metrics_path":"metrics"}"#)
                .unwrap_err()
                .path,
            "metrics_path"
        );
    }

    /// The scrape access keys: loopback by default, ranges and a token by
    /// name, every refusal naming the key (and never echoing a token).
    #[test]
    fn scrape_access_keys() {
        let d = RedFilterConfig::from_json(b"{}").unwrap().scrape_access;
        assert!(d.source_allowed(Some(b"127.0.0.1:1")) && d.source_allowed(Some(b"[::1]:1")));
        assert!(!d.source_allowed(Some(b"10.1.2.3:1")) && !d.needs_token());
        let s = RedFilterConfig::from_json(
            br#"{"exposition":"both","scrape_allow_cidrs":["10.0.0.0/8"],
                "scrape_bearer_token":"0123456789abcdef"}"#,
        )
        .unwrap()
        .scrape_access;
        assert!(s.source_allowed(Some(b"10.1.2.3:1")) && !s.source_allowed(Some(b"127.0.0.1:1")));
        assert!(s.token_allowed(Some(b"Bearer 0123456789abcdef")) && !s.token_allowed(None));
        assert!(RedFilterConfig::from_json(br#"{"scrape_allow_cidrs":[]}"#)
            .unwrap()
            .scrape_access
            .serves_nobody());
        for (doc, key) in [
            (
                &br#"{"scrape_allow_cidrs":"127.0.0.1"}"#[..],
                "scrape_allow_cidrs",
            ),
            (
                br#"{"scrape_allow_cidrs":["127.0.0.1/40"]}"#,
                "scrape_allow_cidrs[0]",
            ),
            (br#"{"scrape_bearer_token":"short"}"#, "scrape_bearer_token"),
            (br#"{"scrape_bearer_token":7}"#, "scrape_bearer_token"),
            (br#"{"scrape_alow_cidrs":[]}"#, "scrape_alow_cidrs"),
            (br#"{"metrics_path":"/metrics/../x"}"#, "metrics_path"),
            (br#"{"metrics_path":"/metrics%3F"}"#, "metrics_path"),
            (br#"{"metrics_path":"//metrics"}"#, "metrics_path"),
        ] {
            let e = RedFilterConfig::from_json(doc).unwrap_err();
            assert_eq!(e.path, key, "{}", String::from_utf8_lossy(doc));
        }
    }
}
