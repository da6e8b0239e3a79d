//! Tag-encoded stat names for Envoy's host metrics.
//!
//! Envoy has no label API for Wasm metrics; labels survive as tags only when
//! they are encoded into the stat name and pulled out again by `stats_tags`
//! regexes in the bootstrap. The encoding is `key=.=value;.;` per label,
//! followed by the metric name; the regex for a key is
//! `(key=\.=(.*?);\.;)` (see `stats_tags_yaml`).

/// Label values may not contain `;` (the terminator is `;.;`) or control
/// characters. Dots are kept: the tag regexes match lazily up to `;.;`, and
/// a route such as `/static/app.js` must reach Prometheus unchanged
/// (asserted by the host tests).
fn clean_value(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            ';' => out.push('_'),
            c if c.is_control() => out.push('_'),
            c => out.push(c),
        }
    }
}

pub fn encode<L: AsRef<str>>(name: &str, labels: &[(&str, L)]) -> String {
    let mut out = String::with_capacity(name.len().saturating_add(labels.len().saturating_mul(24)));
    for (k, v) in labels {
        out.push_str(k);
        out.push_str("=.=");
        clean_value(v.as_ref(), &mut out);
        out.push_str(";.;");
    }
    out.push_str(name);
    out
}

/// The `stats_config.stats_tags` entries for the given label keys, as YAML
/// list items (for generated configs and docs).
pub fn stats_tags_yaml(keys: &[&str]) -> String {
    keys.iter()
        .map(|k| format!("- tag_name: {k}\n  regex: \"({k}=\\\\.=(.*?);\\\\.;)\"\n"))
        .collect()
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::arithmetic_side_effects
)]
mod tests {
    use super::*;

    #[test]
    fn encodes_labels_before_name() {
        assert_eq!(
            encode(
                "uwsgi_red_requests_total",
                &[("method", "GET"), ("route", "/a.b;c")]
            ),
            "method=.=GET;.;route=.=/a.b_c;.;uwsgi_red_requests_total"
        );
        assert_eq!(encode::<&str>("x", &[]), "x");
    }

    #[test]
    fn yaml_regex_escapes_dots() {
        assert_eq!(
            stats_tags_yaml(&["route"]),
            "- tag_name: route\n  regex: \"(route=\\\\.=(.*?);\\\\.;)\"\n"
        );
    }
}
