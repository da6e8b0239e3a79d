//! From what a host knows about one finished request to its bounded label
//! set, under red-filter's settings.

use crate::red::config::{RedFilterSettings, MAX_SERVICE_BYTES};
use crate::red::labels::LabelSet;

/// What a host knows about one finished request, borrowed from its buffers.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestFacts<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// The host's own route name, when it has one.
    pub route_name: Option<&'a str>,
    /// Status code; 0 when no response was sent.
    pub code: u16,
    /// Upstream/cluster name, used when the config names no service.
    pub upstream: Option<&'a str>,
}

impl RedFilterSettings {
    /// The bounded label set for one request (before the cardinality cap).
    pub fn labels(&self, facts: &RequestFacts<'_>, protocol: &'static str) -> LabelSet {
        let route_name = if self.use_route_name {
            facts.route_name
        } else {
            None
        };
        let route = self.routes.route(route_name, facts.path);
        let service = match (&self.service, facts.upstream) {
            (Some(s), _) => s.clone(),
            (None, Some(u)) if !u.is_empty() => truncate_label(u),
            _ => "unknown".to_string(),
        };
        LabelSet::new(facts.method, facts.code, route, service, protocol)
    }
}

/// At most `MAX_SERVICE_BYTES` of `s`, cut on a character boundary.
fn truncate_label(s: &str) -> String {
    let end = s
        .char_indices()
        .map(|(i, c)| i.saturating_add(c.len_utf8()))
        .take_while(|end| *end <= MAX_SERVICE_BYTES)
        .last()
        .unwrap_or(0);
    s.get(..end).unwrap_or_default().to_string()
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use super::*;
    use crate::red::config::RedFilterConfig;

    #[test]
    fn labels_from_facts() {
        let s = RedFilterConfig::from_json(br#"{"route_patterns":["/users/{id}"]}"#).unwrap();
        let l = s.labels(
            &RequestFacts {
                method: "GET",
                path: "/users/7?x",
                route_name: None,
                code: 200,
                upstream: Some("app"),
            },
            "http",
        );
        assert_eq!(
            (l.method, l.code, l.route.as_str(), l.service.as_str()),
            ("GET", 200, "/users/{id}", "app")
        );
        let l = s.labels(
            &RequestFacts {
                method: "PURGE",
                path: "/x",
                route_name: Some("named"),
                code: 0,
                upstream: None,
            },
            "http",
        );
        assert_eq!(
            (l.method, l.route.as_str(), l.service.as_str(), l.code_class),
            ("_OTHER", "named", "unknown", "0xx")
        );
        let fixed =
            RedFilterConfig::from_json(br#"{"service":"shop","use_route_name":false}"#).unwrap();
        let l = fixed.labels(
            &RequestFacts {
                method: "GET",
                path: "/a/1",
                route_name: Some("n"),
                code: 201,
                upstream: Some("c"),
            },
            "http",
        );
        assert_eq!((l.route.as_str(), l.service.as_str()), ("/a/:id", "shop"));
    }
}
