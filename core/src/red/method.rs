/// Methods OpenTelemetry's HTTP semantic conventions treat as known; anything
/// else becomes `_OTHER` so a client cannot mint label values at will.
pub const KNOWN_METHODS: [&str; 9] = [
    "CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE",
];

pub const OTHER_METHOD: &str = "_OTHER";

/// Returns the canonical label value for a request method. Matching is
/// case-sensitive, as HTTP method names are.
pub fn normalize_method(method: &str) -> &'static str {
    KNOWN_METHODS
        .iter()
        .find(|known| **known == method)
        .copied()
        .unwrap_or(OTHER_METHOD)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_methods_pass_through() {
        for m in KNOWN_METHODS {
            assert_eq!(normalize_method(m), m);
        }
    }

    #[test]
    fn unknown_and_lowercase_methods_are_other() {
        assert_eq!(normalize_method("BREW"), "_OTHER");
        assert_eq!(normalize_method("get"), "_OTHER");
        assert_eq!(normalize_method(""), "_OTHER");
    }
}
