//! Configuration of the uwsgi network filter: the RED settings shared with
//! the HTTP filter plus the protocol limits.

use super::decoder::{DEFAULT_HEAD_LIMIT, MIN_HEAD_LIMIT};
use super::response::DEFAULT_RESPONSE_HEAD_LIMIT;
use crate::config::node::{self, Fields, FromNode, Node, Path};
use crate::config::schema::{names, Key, Ty};
use crate::config::ConfigError;
use crate::red::admission::DEFAULT_MAX_SERIES;
use crate::red::config::{keys, RedFilterConfig, RedFilterSettings};

/// Every key is optional (absent means the default); unknown keys are
/// refused by name.
#[derive(Debug, Clone, PartialEq)]
pub struct UwsgiTcpConfig {
    /// Fixed `service` label; when absent SERVER_NAME, then HTTP_HOST.
    pub service: Option<String>,
    /// Path templates such as `/users/{id}`, tried in order on PATH_INFO.
    pub route_patterns: Vec<String>,
    /// Collapse numeric/UUID/hex path segments to `:id` when no template matched.
    pub collapse_ids: bool,
    /// Hard cap on distinct label sets (per Envoy worker); the rest go to
    /// `route="__overflow__"`.
    pub max_series: usize,
    /// Largest request head (4-byte header + vars) decoded; a larger one is
    /// counted as `datasize_too_large` and passed through unmeasured.
    pub head_limit: usize,
    /// Response bytes scanned for a status.
    pub response_head_limit: usize,
}

impl Default for UwsgiTcpConfig {
    fn default() -> Self {
        Self {
            service: None,
            route_patterns: Vec::new(),
            collapse_ids: true,
            max_series: DEFAULT_MAX_SERIES,
            head_limit: DEFAULT_HEAD_LIMIT,
            response_head_limit: DEFAULT_RESPONSE_HEAD_LIMIT,
        }
    }
}

/// uwsgi-tcp's keys: the RED keys it shares with red-filter plus the
/// protocol limits.
pub const UWSGI_TCP_KEYS: [Key; 6] = [
    keys::SERVICE,
    keys::ROUTE_PATTERNS,
    keys::COLLAPSE_IDS,
    keys::MAX_SERIES,
    Key::new(
        "head_limit",
        Ty::UInt {
            min: MIN_HEAD_LIMIT as u64,
            max: DEFAULT_HEAD_LIMIT as u64,
        },
        "largest request head (4-byte header + vars) decoded, in bytes",
    ),
    Key::new(
        "response_head_limit",
        Ty::UInt {
            min: MIN_RESPONSE_HEAD_LIMIT as u64,
            max: MAX_RESPONSE_HEAD_LIMIT as u64,
        },
        "response bytes scanned for a status",
    ),
];

impl FromNode for UwsgiTcpConfig {
    fn from_node(node: Node, at: Path<'_>) -> Result<Self, ConfigError> {
        const NAMES: [&str; UWSGI_TCP_KEYS.len()] = names(&UWSGI_TCP_KEYS);
        let mut f = Fields::new(node, at, &NAMES)?;
        let d = Self::default();
        Ok(Self {
            service: f.take("service")?.unwrap_or(d.service),
            route_patterns: f.take("route_patterns")?.unwrap_or(d.route_patterns),
            collapse_ids: f.take("collapse_ids")?.unwrap_or(d.collapse_ids),
            max_series: f.take("max_series")?.unwrap_or(d.max_series),
            head_limit: f.take("head_limit")?.unwrap_or(d.head_limit),
            response_head_limit: f
                .take("response_head_limit")?
                .unwrap_or(d.response_head_limit),
        })
    }
}

#[derive(Debug, Clone)]
pub struct UwsgiTcpSettings {
    pub red: RedFilterSettings,
    pub head_limit: usize,
    pub response_head_limit: usize,
}

/// Response limits below this cannot hold `HTTP/1.1 200`.
const MIN_RESPONSE_HEAD_LIMIT: usize = 16;
const MAX_RESPONSE_HEAD_LIMIT: usize = 1 << 20;

impl UwsgiTcpConfig {
    pub fn from_json(bytes: &[u8]) -> Result<UwsgiTcpSettings, ConfigError> {
        node::read::<Self>(bytes)?.validate()
    }

    pub fn validate(self) -> Result<UwsgiTcpSettings, ConfigError> {
        if !(MIN_HEAD_LIMIT..=DEFAULT_HEAD_LIMIT).contains(&self.head_limit) {
            return Err(ConfigError::new(
                "head_limit",
                format!(
                    "must be between {MIN_HEAD_LIMIT} and {DEFAULT_HEAD_LIMIT} bytes, got {}",
                    self.head_limit
                ),
            ));
        }
        if !(MIN_RESPONSE_HEAD_LIMIT..=MAX_RESPONSE_HEAD_LIMIT).contains(&self.response_head_limit)
        {
            return Err(ConfigError::new(
                "response_head_limit",
                format!(
                    "must be between {MIN_RESPONSE_HEAD_LIMIT} and {MAX_RESPONSE_HEAD_LIMIT} bytes, got {}",
                    self.response_head_limit
                ),
            ));
        }
        // The shared RED keys are validated exactly as for the HTTP filter.
        let red = RedFilterConfig {
            service: self.service,
            use_route_name: false,
            route_patterns: self.route_patterns,
            collapse_ids: self.collapse_ids,
            max_series: self.max_series,
            ..RedFilterConfig::default()
        }
        .validate()?;
        Ok(UwsgiTcpSettings {
            red,
            head_limit: self.head_limit,
            response_head_limit: self.response_head_limit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let s = UwsgiTcpConfig::from_json(b"").unwrap();
        assert_eq!(s.head_limit, 65539);
        assert_eq!(s.response_head_limit, 16384);
        assert_eq!(s.red.max_series, 1000);
        assert_eq!(s.red.routes.route(None, "/items/42"), "/items/:id");
    }

    #[test]
    fn full_config() {
        let s = UwsgiTcpConfig::from_json(
            br#"{"service":"shop","route_patterns":["/users/{id}"],"collapse_ids":false,
                "max_series":20,"head_limit":8192,"response_head_limit":1024}"#,
        )
        .unwrap();
        assert_eq!(s.red.service.as_deref(), Some("shop"));
        assert_eq!(s.red.routes.route(None, "/users/7"), "/users/{id}");
        assert_eq!(s.red.routes.route(None, "/x/7"), "/x/7");
        assert_eq!(
            (s.head_limit, s.response_head_limit, s.red.max_series),
            (8192, 1024, 20)
        );
    }

    #[test]
    fn errors_name_the_key() {
        let path = |j: &str| UwsgiTcpConfig::from_json(j.as_bytes()).unwrap_err().path;
        assert_eq!(path(r#"{"head_limit":3}"#), "head_limit");
        assert_eq!(path(r#"{"head_limit":70000}"#), "head_limit");
        assert_eq!(path(r#"{"head_limit":"big"}"#), "head_limit");
        assert_eq!(path(r#"{"response_head_limit":2}"#), "response_head_limit");
        assert_eq!(path(r#"{"max_series":0}"#), "max_series");
        assert_eq!(path(r#"{"route_patterns":["x"]}"#), "route_patterns[0]");
        let long = format!(r#"{{"route_patterns":["/ok","/{}"]}}"#, "x".repeat(300));
        assert_eq!(path(&long), "route_patterns[1]");
        assert!(UwsgiTcpConfig::from_json(br#"{"buckets_seconds":[1]}"#)
            .unwrap_err()
            .to_string()
            .contains("buckets_seconds"));
    }
}
