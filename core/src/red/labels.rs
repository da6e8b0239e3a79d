use super::method::{normalize_method, OTHER_METHOD};
use super::names::OVERFLOW_ROUTE;

/// The bounded label set of one RED series. Every field is either from a
/// closed set (method, code) or passed through the route normaliser and the
/// cardinality limiter (route, service).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LabelSet {
    pub method: &'static str,
    /// HTTP status code; 0 when the proxy saw no response (reset, timeout).
    pub code: u16,
    pub code_class: &'static str,
    pub route: String,
    pub service: String,
    pub protocol: &'static str,
    /// The backend address that answered (`host:port`), when configured
    /// (red-filter `upstream_label`); `None` leaves the label out.
    pub upstream: Option<String>,
}

/// Every label name a RED series can carry, in export order.
pub const LABEL_NAMES: [&str; 7] = [
    "method",
    "code",
    "code_class",
    "route",
    "service",
    "protocol",
    "upstream",
];

impl LabelSet {
    pub fn new(
        method: &str,
        code: u16,
        route: String,
        service: String,
        protocol: &'static str,
    ) -> Self {
        let code = clamp_code(code);
        Self {
            method: normalize_method(method),
            code,
            code_class: code_class(code),
            route,
            service,
            protocol,
            upstream: None,
        }
    }

    /// The same set with an `upstream` label.
    pub fn with_upstream(self, upstream: Option<String>) -> Self {
        Self { upstream, ..self }
    }

    /// The one series per status class and protocol that absorbs every
    /// label set refused by the cardinality cap. Only the class survives, so
    /// errors stay countable while the series count stays fixed.
    pub fn overflow(&self) -> Self {
        Self {
            method: OTHER_METHOD,
            code: 0,
            code_class: self.code_class,
            route: OVERFLOW_ROUTE.to_string(),
            service: OVERFLOW_ROUTE.to_string(),
            protocol: self.protocol,
            // Same label names as the sets it absorbs.
            upstream: self.upstream.as_ref().map(|_| OVERFLOW_ROUTE.to_string()),
        }
    }

    pub fn is_overflow(&self) -> bool {
        self.route == OVERFLOW_ROUTE && self.service == OVERFLOW_ROUTE
    }

    /// `2xx` … `5xx`; `0xx` for "no response", which is counted as an error.
    pub fn code_class(&self) -> &'static str {
        self.code_class
    }

    pub fn is_error(&self) -> bool {
        matches!(self.code_class, "5xx" | "0xx")
    }

    /// The `code` label: empty on the overflow series, whose codes are mixed.
    pub fn code_label(&self) -> String {
        if self.is_overflow() {
            String::new()
        } else {
            self.code.to_string()
        }
    }

    /// Label pairs in a stable order ([`LABEL_NAMES`]), as exported
    /// everywhere; `upstream` only when the set has one.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::with_capacity(LABEL_NAMES.len());
        p.extend([
            ("method", self.method.to_string()),
            ("code", self.code_label()),
            ("code_class", self.code_class.to_string()),
            ("route", self.route.clone()),
            ("service", self.service.clone()),
            ("protocol", self.protocol.to_string()),
        ]);
        if let Some(u) = &self.upstream {
            p.push(("upstream", u.clone()));
        }
        p
    }
}

/// Codes outside 100..=599 are not HTTP statuses; collapse them to 0 so a
/// misbehaving upstream cannot add series through the code label.
fn clamp_code(code: u16) -> u16 {
    if (100..=599).contains(&code) {
        code
    } else {
        0
    }
}

pub fn code_class(code: u16) -> &'static str {
    match clamp_code(code) {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "0xx",
    }
}

/// Errors in the RED sense: the server failed (5xx) or no response reached
/// the client at all. 4xx are the client's errors and stay out of the rate.
pub fn is_error_code(code: u16) -> bool {
    matches!(clamp_code(code), 0 | 500..=599)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_and_errors() {
        assert_eq!(code_class(204), "2xx");
        assert_eq!(code_class(404), "4xx");
        assert_eq!(code_class(503), "5xx");
        assert_eq!(code_class(0), "0xx");
        assert_eq!(code_class(999), "0xx");
        assert!(is_error_code(500));
        assert!(is_error_code(0));
        assert!(!is_error_code(404));
        assert!(!is_error_code(201));
    }

    #[test]
    fn label_set_normalises_method_and_code() {
        let l = LabelSet::new("BREW", 1000, "/".into(), "s".into(), "http");
        assert_eq!(l.method, "_OTHER");
        assert_eq!(l.code, 0);
        assert!(l.is_error());
        let o = LabelSet::new("GET", 503, "/x".into(), "s".into(), "http").overflow();
        assert!(o.is_error());
        assert_eq!(o.pairs()[1].1, "");
        assert_eq!(o.pairs()[2].1, "5xx");
        assert_eq!(o.route, "__overflow__");
        assert_eq!(o.upstream, None);
    }

    #[test]
    fn upstream_label_is_last_and_folds_into_the_overflow_value() {
        let l = LabelSet::new("GET", 200, "/".into(), "s".into(), "http")
            .with_upstream(Some("10.0.0.1:8001".into()));
        let names: Vec<_> = l.pairs().iter().map(|p| p.0).collect();
        assert_eq!(names, LABEL_NAMES);
        assert_eq!(l.pairs()[6].1, "10.0.0.1:8001");
        let o = l.overflow();
        assert_eq!(o.upstream.as_deref(), Some("__overflow__"));
        assert!(o.is_overflow());
        let plain = LabelSet::new("GET", 200, "/".into(), "s".into(), "http");
        assert_eq!(plain.pairs().len(), 6);
        assert_ne!(plain, l, "a different backend is a different series");
    }
}
