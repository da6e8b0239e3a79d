//! `plugin_config` of the processor (JSON; unknown keys are errors that name
//! the key).

use std::collections::BTreeMap;

use serde::Deserialize;
use uwsgi_red_core::config::{parse_json, ConfigError};
use uwsgi_red_core::red::histogram::{Buckets, DEFAULT_BUCKETS_SECONDS};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProcessorConfig {
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
    #[serde(skip)]
    pub buckets: Option<Buckets>,
}

impl Default for ProcessorConfig {
    fn default() -> Self {
        ProcessorConfig {
            uwsgi_prefixes: vec!["uwsgi".to_string()],
            services: BTreeMap::new(),
            duration_buckets_seconds: DEFAULT_BUCKETS_SECONDS.to_vec(),
            keep_redundant: false,
            rewrite_metrics: true,
            parse_logs: true,
            buckets: None,
        }
    }
}

impl ProcessorConfig {
    /// otelwasm hands over `null` when `plugin_config` is absent.
    pub fn from_json(json: &[u8]) -> Result<Self, ConfigError> {
        let trimmed = json.trim_ascii();
        let mut cfg: ProcessorConfig = if trimmed == b"null" {
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
        let buckets = Buckets::new(cfg.duration_buckets_seconds.clone())
            .map_err(|e| ConfigError::new(".duration_buckets_seconds", e.to_string()))?;
        cfg.buckets = Some(buckets);
        Ok(cfg)
    }

    pub fn bounds(&self) -> &[f64] {
        self.buckets
            .as_ref()
            .map_or(&DEFAULT_BUCKETS_SECONDS, Buckets::bounds)
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
mod tests {
    use super::*;

    #[test]
    fn defaults_for_empty_and_null() {
        for doc in ["", "  ", "null", "{}"] {
            let c = ProcessorConfig::from_json(doc.as_bytes()).unwrap();
            assert_eq!(c.uwsgi_prefixes, ["uwsgi"]);
            assert_eq!(c.bounds(), DEFAULT_BUCKETS_SECONDS);
        }
    }

    #[test]
    fn unknown_key_is_named() {
        let e =
            ProcessorConfig::from_json(br#"{"uwsgi_prefixes":["a"],"servces":{}}"#).unwrap_err();
        assert!(e.to_string().contains("servces"), "{e}");
        let e = ProcessorConfig::from_json(br#"{"uwsgi_prefixes":[1]}"#).unwrap_err();
        assert!(e.path.starts_with("uwsgi_prefixes"), "{e:?}");
        let e = ProcessorConfig::from_json(br#"{"duration_buckets_seconds":[1,0.5]}"#).unwrap_err();
        assert_eq!(e.path, ".duration_buckets_seconds");
        assert!(ProcessorConfig::from_json(br#"{"uwsgi_prefixes":[""]}"#).is_err());
    }

    #[test]
    fn services() {
        let c = ProcessorConfig::from_json(br#"{"services":{"app":"shop"}}"#).unwrap();
        assert_eq!(c.service_for("app", "gunicorn"), "shop");
        assert_eq!(c.service_for("other", "uwsgi"), "other");
        assert_eq!(c.service_for("", "gunicorn"), "gunicorn");
    }
}
