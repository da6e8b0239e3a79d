//! From what a host knows about one finished request to its bounded label
//! set, under red-filter's settings.

use crate::red::config::{RedFilterSettings, MAX_SERVICE_BYTES, MAX_UPSTREAM_BYTES};
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
    /// The backend address that answered (`host:port`), for the `upstream`
    /// label; read only when `upstream_label` is on.
    pub upstream_address: Option<&'a str>,
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
            (None, Some(u)) if !u.is_empty() => truncate_label(u, MAX_SERVICE_BYTES),
            _ => "unknown".to_string(),
        };
        let l = LabelSet::new(facts.method, facts.code, route, service, protocol);
        if self.upstream_label {
            // No backend (a local reply, a failure before any was chosen):
            // the empty value, which Prometheus reads as no label.
            let a = facts.upstream_address.unwrap_or_default();
            l.with_upstream(Some(truncate_label(a, MAX_UPSTREAM_BYTES)))
        } else {
            l
        }
    }
}

/// The address that answered, from nginx's `$upstream_addr`: every try is
/// listed (`a:1, b:2`, and `c:3 : d:4` across an internal redirect), the
/// last one is the backend whose response the client got.
pub fn last_upstream_addr(v: &[u8]) -> &[u8] {
    let from = last_sep(v);
    trim_spaces(v.get(from..).unwrap_or_default())
}

/// Index just past the last `, ` or ` : ` separator (a `host:port`'s own
/// colon has no space before it).
fn last_sep(v: &[u8]) -> usize {
    let mut from = 0;
    for (i, w) in v.windows(2).enumerate() {
        if w == b", " || w == b" :" {
            from = i.saturating_add(2);
        }
    }
    from
}

fn trim_spaces(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|b| *b != b' ').unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| *b != b' ')
        .map_or(start, |i| i.saturating_add(1));
    v.get(start..end).unwrap_or_default()
}

/// At most `max` bytes of `s`, cut on a character boundary.
fn truncate_label(s: &str, max: usize) -> String {
    let end = s
        .char_indices()
        .map(|(i, c)| i.saturating_add(c.len_utf8()))
        .take_while(|end| *end <= max)
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
                upstream_address: None,
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
                upstream_address: None,
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
                upstream_address: Some("10.0.0.1:80"),
            },
            "http",
        );
        assert_eq!((l.route.as_str(), l.service.as_str()), ("/a/:id", "shop"));
        assert_eq!(l.upstream, None, "upstream_label off: no label");
    }

    #[test]
    fn upstream_label_from_the_address() {
        let s = RedFilterConfig::from_json(br#"{"upstream_label":true}"#).unwrap();
        let mut f = RequestFacts {
            method: "GET",
            path: "/",
            code: 200,
            upstream_address: Some("127.0.0.1:8001"),
            ..RequestFacts::default()
        };
        assert_eq!(
            s.labels(&f, "http").upstream.as_deref(),
            Some("127.0.0.1:8001")
        );
        f.upstream_address = None;
        assert_eq!(s.labels(&f, "http").upstream.as_deref(), Some(""));
        let long = "é".repeat(100);
        f.upstream_address = Some(&long);
        let u = s.labels(&f, "http").upstream.unwrap();
        assert_eq!(u.len(), MAX_UPSTREAM_BYTES);
        assert!(long.starts_with(&u));
    }

    #[test]
    fn last_address_of_nginx_tries() {
        for (v, want) in [
            (&b"127.0.0.1:8001"[..], &b"127.0.0.1:8001"[..]),
            (b"127.0.0.1:8001, 127.0.0.1:8002", b"127.0.0.1:8002"),
            (b"a:1, b:2 : c:3", b"c:3"),
            (b"[::1]:8001", b"[::1]:8001"),
            (b"unix:/run/app.sock", b"unix:/run/app.sock"),
            (b"a:1, ", b""),
            (b"", b""),
            (b"\xff:1, \xfe:2", b"\xfe:2"),
        ] {
            assert_eq!(
                last_upstream_addr(v),
                want,
                "{}",
                String::from_utf8_lossy(v)
            );
        }
    }
}
