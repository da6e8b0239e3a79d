//! A small writer for the Prometheus text format. Escaping follows the
//! exposition spec: label values escape `\`, `"` and newline; HELP text
//! escapes `\` and newline.

use std::borrow::Cow;
use std::fmt::Write;

use crate::red::histogram::{Buckets, Histogram};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    Untyped,
}

impl MetricType {
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::Untyped => "untyped",
        }
    }
}

pub fn escape_label_value(v: &str) -> Cow<'_, str> {
    if !v.contains(['\\', '"', '\n']) {
        return Cow::Borrowed(v);
    }
    let mut out = String::with_capacity(v.len() + 8);
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

pub fn escape_help(v: &str) -> Cow<'_, str> {
    if !v.contains(['\\', '\n']) {
        return Cow::Borrowed(v);
    }
    Cow::Owned(v.replace('\\', "\\\\").replace('\n', "\\n"))
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`
pub fn is_valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, and not reserved (`__` prefix).
pub fn is_valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    !name.starts_with("__")
        && matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Replaces every character a metric name may not hold with `_`.
pub fn sanitize_metric_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == ':' { c } else { '_' })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) || out.is_empty() {
        out.insert(0, '_');
    }
    out
}

pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v == f64::INFINITY {
        "+Inf".to_string()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        format!("{v}")
    }
}

#[derive(Debug, Default)]
pub struct TextEncoder {
    out: String,
}

impl TextEncoder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn family(&mut self, name: &str, help: &str, kind: MetricType) {
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {}", kind.as_str());
    }

    pub fn sample<L: AsRef<str>>(&mut self, name: &str, labels: &[(&str, L)], value: f64) {
        self.out.push_str(name);
        self.write_labels(labels, None);
        self.out.push(' ');
        self.out.push_str(&format_value(value));
        self.out.push('\n');
    }

    /// `_bucket` lines (cumulative, with `le`), then `_sum` and `_count`.
    pub fn histogram<L: AsRef<str>>(
        &mut self,
        name: &str,
        labels: &[(&str, L)],
        buckets: &Buckets,
        h: &Histogram,
    ) {
        let bucket_name = format!("{name}_bucket");
        let les = buckets.bounds().iter().map(|b| format_value(*b)).chain(["+Inf".to_string()]);
        for (le, cum) in les.zip(h.cumulative()) {
            self.out.push_str(&bucket_name);
            self.write_labels(labels, Some(&le));
            let _ = writeln!(self.out, " {cum}");
        }
        self.sample(&format!("{name}_sum"), labels, h.sum());
        self.sample(&format!("{name}_count"), labels, h.count() as f64);
    }

    fn write_labels<L: AsRef<str>>(&mut self, labels: &[(&str, L)], le: Option<&str>) {
        if labels.is_empty() && le.is_none() {
            return;
        }
        self.out.push('{');
        let mut first = true;
        for (k, v) in labels {
            if !first {
                self.out.push(',');
            }
            first = false;
            let _ = write!(self.out, "{k}=\"{}\"", escape_label_value(v.as_ref()));
        }
        if let Some(le) = le {
            if !first {
                self.out.push(',');
            }
            let _ = write!(self.out, "le=\"{le}\"");
        }
        self.out.push('}');
    }

    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(escape_label_value(r#"a\b"c
d"#), r#"a\\b\"c\nd"#);
        assert_eq!(escape_help("x\\y\nz"), "x\\\\y\\nz");
        assert!(matches!(escape_label_value("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn names() {
        assert!(is_valid_metric_name("uwsgi_red_requests_total"));
        assert!(!is_valid_metric_name("1abc"));
        assert!(!is_valid_label_name("__name__"));
        assert!(is_valid_label_name("worker_id"));
        assert_eq!(sanitize_metric_name("core.busy-workers"), "core_busy_workers");
        assert_eq!(sanitize_metric_name("1x"), "_1x");
    }

    #[test]
    fn encodes_samples_and_histograms() {
        let b = Buckets::new(vec![0.5, 1.0]).unwrap();
        let mut h = Histogram::new(&b);
        h.observe(&b, 0.25);
        h.observe(&b, 2.0);
        let mut e = TextEncoder::new();
        e.family("x_total", "Things.", MetricType::Counter);
        e.sample("x_total", &[("route", "/a\"b")], 3.0);
        e.family("d_seconds", "Durations.", MetricType::Histogram);
        e.histogram("d_seconds", &[("route", "/")], &b, &h);
        let text = e.finish();
        assert_eq!(
            text,
            "# HELP x_total Things.\n# TYPE x_total counter\nx_total{route=\"/a\\\"b\"} 3\n\
             # HELP d_seconds Durations.\n# TYPE d_seconds histogram\n\
             d_seconds_bucket{route=\"/\",le=\"0.5\"} 1\nd_seconds_bucket{route=\"/\",le=\"1\"} 1\n\
             d_seconds_bucket{route=\"/\",le=\"+Inf\"} 2\nd_seconds_sum{route=\"/\"} 2.25\n\
             d_seconds_count{route=\"/\"} 2\n"
        );
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(0.005), "0.005");
    }
}
