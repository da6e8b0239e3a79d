//! Turning a request into a bounded `route` label value.
//!
//! Order of preference: an explicit route name from the host (Envoy's
//! `xds.route_name`), then the first configured path template that matches,
//! then the path with id-like segments collapsed to `:id`.

use std::fmt;

/// Paths longer than this are cut before normalising: label values must stay
/// small whatever a client sends.
pub const MAX_PATH_BYTES: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `{name}`: exactly one segment.
    Param,
    /// `{name*}`: the rest of the path (last segment only).
    Rest,
}

/// One configured template such as `/users/{id}/orders/{order_id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    text: String,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub template: String,
    pub reason: &'static str,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "route template {:?}: {}", self.template, self.reason)
    }
}

impl std::error::Error for TemplateError {}

impl PathTemplate {
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let err = |reason| TemplateError {
            template: text.to_string(),
            reason,
        };
        if !text.starts_with('/') {
            return Err(err("must start with '/'"));
        }
        let parts: Vec<&str> = split_segments(text).collect();
        let mut segments = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            let seg = if let Some(inner) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}'))
            {
                if let Some(name) = inner.strip_suffix('*') {
                    if i.saturating_add(1) != parts.len() {
                        return Err(err("a {name*} parameter must be the last segment"));
                    }
                    if name.is_empty() {
                        return Err(err("empty parameter name"));
                    }
                    Segment::Rest
                } else {
                    if inner.is_empty() {
                        return Err(err("empty parameter name"));
                    }
                    Segment::Param
                }
            } else if part.contains('{') || part.contains('}') {
                return Err(err("a parameter must fill a whole segment, like {id}"));
            } else {
                Segment::Literal((*part).to_string())
            };
            segments.push(seg);
        }
        Ok(Self {
            text: text.to_string(),
            segments,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn matches(&self, path: &str) -> bool {
        let mut parts = split_segments(path);
        for seg in &self.segments {
            match seg {
                Segment::Rest => return true,
                Segment::Param => {
                    if parts.next().is_none() {
                        return false;
                    }
                }
                Segment::Literal(lit) => match parts.next() {
                    Some(p) if p == lit => {}
                    _ => return false,
                },
            }
        }
        parts.next().is_none()
    }
}

fn split_segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

/// Route normalisation rules, built once from the plugin config.
#[derive(Debug, Clone, Default)]
pub struct RouteNormalizer {
    templates: Vec<PathTemplate>,
    collapse_ids: bool,
}

impl RouteNormalizer {
    pub fn new(templates: Vec<PathTemplate>, collapse_ids: bool) -> Self {
        Self {
            templates,
            collapse_ids,
        }
    }

    /// `route_name` is the host's explicit name (empty or `None` when the
    /// host has none); `path` is the raw request path, query included.
    /// The configured templates, whose text is a `route` label value.
    pub fn templates(&self) -> impl Iterator<Item = &str> {
        self.templates.iter().map(PathTemplate::as_str)
    }

    pub fn route(&self, route_name: Option<&str>, path: &str) -> String {
        if let Some(name) = route_name.filter(|n| !n.is_empty()) {
            return truncate(name).to_string();
        }
        let path = strip_query(truncate(path));
        if let Some(t) = self.templates.iter().find(|t| t.matches(path)) {
            return t.text.clone();
        }
        if self.collapse_ids {
            collapse_ids(path)
        } else if path.is_empty() {
            "/".to_string()
        } else {
            path.to_string()
        }
    }
}

fn truncate(s: &str) -> &str {
    if s.len() <= MAX_PATH_BYTES {
        return s;
    }
    let mut end = MAX_PATH_BYTES;
    while !s.is_char_boundary(end) {
        end = end.saturating_sub(1);
    }
    s.get(..end).unwrap_or_default()
}

fn strip_query(path: &str) -> &str {
    let end = path.find(['?', '#']).unwrap_or(path.len());
    path.get(..end).unwrap_or(path)
}

/// `/users/123/orders/5f1c…` → `/users/:id/orders/:id`.
pub fn collapse_ids(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for seg in split_segments(path) {
        out.push('/');
        if is_id_like(seg) {
            out.push_str(":id");
        } else {
            out.push_str(seg);
        }
    }
    if out.is_empty() || path.ends_with('/') && path.len() > 1 {
        out.push('/');
    }
    out
}

/// Numbers, UUIDs and long hex tokens (hashes, object ids) are identifiers,
/// not routes.
pub fn is_id_like(seg: &str) -> bool {
    let b = seg.as_bytes();
    if !b.is_empty() && b.iter().all(u8::is_ascii_digit) {
        return true;
    }
    if is_uuid(b) {
        return true;
    }
    b.len() >= 8 && b.iter().all(u8::is_ascii_hexdigit) && b.iter().any(u8::is_ascii_digit)
}

fn is_uuid(b: &[u8]) -> bool {
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(templates: &[&str]) -> RouteNormalizer {
        RouteNormalizer::new(
            templates
                .iter()
                .map(|t| PathTemplate::parse(t).unwrap())
                .collect(),
            true,
        )
    }

    #[test]
    fn explicit_route_name_wins() {
        let n = norm(&["/users/{id}"]);
        assert_eq!(n.route(Some("users_api"), "/users/1"), "users_api");
        assert_eq!(n.route(Some(""), "/users/1"), "/users/{id}");
        assert_eq!(n.route(None, "/users/1"), "/users/{id}");
    }

    #[test]
    fn templates_match_whole_segments_in_order() {
        let n = norm(&["/users/{id}/orders/{oid}", "/users/{id}", "/static/{path*}"]);
        assert_eq!(
            n.route(None, "/users/7/orders/9?x=1"),
            "/users/{id}/orders/{oid}"
        );
        assert_eq!(n.route(None, "/users/alice"), "/users/{id}");
        assert_eq!(n.route(None, "/static/css/site.css"), "/static/{path*}");
        // no template: collapse fallback
        assert_eq!(n.route(None, "/users/7/friends"), "/users/:id/friends");
    }

    #[test]
    fn collapse_numbers_uuids_and_hex() {
        assert_eq!(collapse_ids("/"), "/");
        assert_eq!(collapse_ids(""), "/");
        assert_eq!(collapse_ids("/items/42"), "/items/:id");
        assert_eq!(
            collapse_ids("/u/3f2504e0-4f89-11d3-9a0c-0305e82c3301/x"),
            "/u/:id/x"
        );
        assert_eq!(
            collapse_ids("/commit/9fceb02d0ae598e95dc970b74767f19372d61af8"),
            "/commit/:id"
        );
        assert_eq!(collapse_ids("/about/"), "/about/");
        assert_eq!(
            collapse_ids("/deadbeef"),
            "/deadbeef",
            "no digit: a word, not an id"
        );
        assert_eq!(collapse_ids("/v2/api"), "/v2/api");
    }

    #[test]
    fn query_is_stripped_and_long_paths_cut() {
        let n = RouteNormalizer::new(vec![], false);
        assert_eq!(n.route(None, "/a?b=1"), "/a");
        let long = format!("/{}", "é".repeat(400));
        assert!(n.route(None, &long).len() <= MAX_PATH_BYTES);
    }

    #[test]
    fn bad_templates_are_rejected() {
        assert!(PathTemplate::parse("users/{id}").is_err());
        assert!(PathTemplate::parse("/a/{}").is_err());
        assert!(PathTemplate::parse("/a/x{id}").is_err());
        assert!(PathTemplate::parse("/a/{p*}/b").is_err());
    }
}
