//! A small writer for the Prometheus text format (0.0.4) and OpenMetrics
//! 1.0. Escaping follows the exposition specs: label values escape `\`, `"`
//! and newline; HELP text escapes `\` and newline (and `"` in OpenMetrics).

use std::borrow::Cow;
use std::fmt::Write;

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
    let mut out = String::with_capacity(v.len().saturating_add(8));
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
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                c
            } else {
                '_'
            }
        })
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
    } else if cfg!(feature = "small-float") {
        let mut s = String::new();
        super::float::push_finite(&mut s, v);
        s
    } else {
        format!("{v}")
    }
}

/// Which text exposition to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Prometheus text format 0.0.4.
    #[default]
    Prometheus,
    /// OpenMetrics 1.0 text.
    OpenMetrics,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }

    /// Picks the format for an HTTP `Accept` header: OpenMetrics when the
    /// client ranks it at least as high as plain text (Prometheus itself
    /// sends `application/openmetrics-text;version=1.0.0,...,text/plain;q=0.5`),
    /// Prometheus text otherwise, including when there is no header.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Prometheus;
        };
        let (mut om, mut text) = (0u16, 0u16);
        for range in accept.split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("").to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")))
                .find_map(qvalue_thousandths)
                .unwrap_or(1000);
            match media.as_str() {
                "application/openmetrics-text" => om = om.max(q),
                "text/plain" | "text/*" | "*/*" => text = text.max(q),
                _ => {}
            }
        }
        if om > 0 && om >= text {
            Format::OpenMetrics
        } else {
            Format::Prometheus
        }
    }
}

/// An HTTP weight (RFC 9110 `qvalue`: `0`, `0.5`, `1.000`) in thousandths.
/// Integer arithmetic instead of `str::parse::<f64>`, whose float parser
/// would be linked into the self-mode proxy-wasm module for one header; digits
/// past the third decimal, which the grammar does not allow, are ignored,
/// and a weight above 1 counts as 1.
fn qvalue_thousandths(v: &str) -> Option<u16> {
    let (whole, frac) = v.split_once('.').unwrap_or((v, ""));
    let whole: u16 = match whole {
        "0" => 0,
        "1" => 1000,
        _ => return None,
    };
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut thousandths = 0u16;
    let mut scale = 100u16;
    for b in frac.bytes().take(3) {
        thousandths =
            thousandths.saturating_add(u16::from(b.saturating_sub(b'0')).saturating_mul(scale));
        scale /= 10;
    }
    Some(whole.saturating_add(thousandths).min(1000))
}

/// OpenMetrics wants canonical numbers for `le`: `1.0`, not `1`.
fn format_le(v: f64, format: Format) -> String {
    let s = format_value(v);
    if format == Format::OpenMetrics && v.is_finite() && !s.contains(['.', 'e', 'E']) {
        format!("{s}.0")
    } else {
        s
    }
}

/// The counts of one histogram as the text format writes them. Defined
/// here so the encoder knows no domain's histogram type; a domain
/// implements it for its own.
pub trait HistogramCounts {
    /// One cumulative count per finite bound, then the `+Inf` count.
    fn cumulative(&self) -> impl Iterator<Item = u64> + '_;
    fn sum(&self) -> f64;
    fn count(&self) -> u64;
}

/// An OpenMetrics exemplar as the encoder writes it after a sample:
/// ` # {labels} value timestamp`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TextExemplar<'a> {
    pub labels: &'a [(&'a str, &'a str)],
    pub value: f64,
    /// Seconds since the epoch, already written as text (a float in the
    /// spec; integer arithmetic keeps it exact).
    pub timestamp: Option<&'a str>,
}

/// The OpenMetrics limit on an exemplar's label set: label names and
/// values together, in UTF-8 code points.
pub const MAX_EXEMPLAR_LABEL_CHARS: usize = 128;

impl TextExemplar<'_> {
    /// Whether the label set is within [`MAX_EXEMPLAR_LABEL_CHARS`].
    pub fn fits(&self) -> bool {
        self.labels
            .iter()
            .map(|(k, v)| k.chars().count().saturating_add(v.chars().count()))
            .fold(0usize, usize::saturating_add)
            <= MAX_EXEMPLAR_LABEL_CHARS
    }
}

#[derive(Debug, Default)]
pub struct TextEncoder {
    out: String,
    format: Format,
}

impl TextEncoder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_format(format: Format) -> Self {
        Self {
            out: String::new(),
            format,
        }
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// `name` is the sample name; in OpenMetrics a counter family drops its
    /// `_total` suffix in the metadata lines, as that spec requires.
    pub fn family(&mut self, name: &str, help: &str, kind: MetricType) {
        let family = match (self.format, kind) {
            (Format::OpenMetrics, MetricType::Counter) => {
                name.strip_suffix("_total").unwrap_or(name)
            }
            _ => name,
        };
        let help = match self.format {
            Format::Prometheus => escape_help(help),
            Format::OpenMetrics => Cow::Owned(escape_help(help).replace('"', "\\\"")),
        };
        let kind = match (self.format, kind) {
            (Format::OpenMetrics, MetricType::Untyped) => "unknown",
            (_, k) => k.as_str(),
        };
        let _ = writeln!(self.out, "# HELP {family} {help}");
        let _ = writeln!(self.out, "# TYPE {family} {kind}");
    }

    pub fn sample<L: AsRef<str>>(&mut self, name: &str, labels: &[(&str, L)], value: f64) {
        self.sample_with_exemplar(name, labels, value, None);
    }

    /// A sample with an exemplar, written only in OpenMetrics (Prometheus
    /// text has no exemplars) and only when its label set is within the
    /// spec's limit.
    pub fn sample_with_exemplar<L: AsRef<str>>(
        &mut self,
        name: &str,
        labels: &[(&str, L)],
        value: f64,
        exemplar: Option<&TextExemplar<'_>>,
    ) {
        self.out.push_str(name);
        self.write_labels(labels, None);
        self.out.push(' ');
        self.out.push_str(&format_value(value));
        self.write_exemplar(exemplar);
        self.out.push('\n');
    }

    fn write_exemplar(&mut self, exemplar: Option<&TextExemplar<'_>>) {
        let Some(e) = exemplar else { return };
        if self.format != Format::OpenMetrics || !e.fits() {
            return;
        }
        self.out.push_str(" # ");
        // An exemplar's label set is written even when empty: `{}`.
        self.out.push('{');
        for (i, (k, v)) in e.labels.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            let _ = write!(self.out, "{k}=\"{}\"", escape_label_value(v));
        }
        self.out.push_str("} ");
        self.out.push_str(&format_value(e.value));
        if let Some(t) = e.timestamp {
            self.out.push(' ');
            self.out.push_str(t);
        }
    }

    /// `_bucket` lines (cumulative, with `le`), then `_sum` and `_count`.
    /// `bounds` are the finite upper bounds of `h`.
    pub fn histogram<L: AsRef<str>, H: HistogramCounts>(
        &mut self,
        name: &str,
        labels: &[(&str, L)],
        bounds: &[f64],
        h: &H,
    ) {
        self.histogram_with_exemplars(name, labels, bounds, h, |_, _| {});
    }

    /// [`histogram`](Self::histogram) with an exemplar per bucket line:
    /// `exemplar(i, f)` calls `f` with the exemplar of bucket `i` (`+Inf`
    /// last) when there is one. Exemplars appear only in OpenMetrics.
    pub fn histogram_with_exemplars<L: AsRef<str>, H: HistogramCounts>(
        &mut self,
        name: &str,
        labels: &[(&str, L)],
        bounds: &[f64],
        h: &H,
        mut exemplar: impl FnMut(usize, &mut dyn FnMut(&TextExemplar<'_>)),
    ) {
        // The label text is escaped once and reused by every bucket line:
        // a scrape of 1 000 series writes ~34 000 of them.
        let mut head = String::with_capacity(name.len().saturating_add(128));
        let _ = write!(head, "{name}_bucket{{");
        for (k, v) in labels {
            let _ = write!(head, "{k}=\"{}\",", escape_label_value(v.as_ref()));
        }
        let format = self.format;
        let les = bounds
            .iter()
            .map(|b| format_le(*b, format))
            .chain(["+Inf".to_string()]);
        let openmetrics = format == Format::OpenMetrics;
        for (i, (le, cum)) in les.zip(h.cumulative()).enumerate() {
            self.out.push_str(&head);
            let _ = write!(self.out, "le=\"{le}\"}} {cum}");
            if openmetrics {
                exemplar(i, &mut |e| self.write_exemplar(Some(e)));
            }
            self.out.push('\n');
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

    pub fn finish(mut self) -> String {
        if self.format == Format::OpenMetrics {
            self.out.push_str("# EOF\n");
        }
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(
            escape_label_value(
                r#"a\b"c
d"#
            ),
            r#"a\\b\"c\nd"#
        );
        assert_eq!(escape_help("x\\y\nz"), "x\\\\y\\nz");
        assert!(matches!(escape_label_value("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn names() {
        assert!(is_valid_metric_name("uwsgi_red_requests_total"));
        assert!(!is_valid_metric_name("1abc"));
        assert!(!is_valid_label_name("__name__"));
        assert!(is_valid_label_name("worker_id"));
        assert_eq!(
            sanitize_metric_name("core.busy-workers"),
            "core_busy_workers"
        );
        assert_eq!(sanitize_metric_name("1x"), "_1x");
    }

    /// Cumulative counts and a sum, as a domain's histogram hands them over.
    struct Fixed(Vec<u64>, f64);

    impl HistogramCounts for Fixed {
        fn cumulative(&self) -> impl Iterator<Item = u64> + '_ {
            self.0.iter().copied()
        }
        fn sum(&self) -> f64 {
            self.1
        }
        fn count(&self) -> u64 {
            self.0.last().copied().unwrap_or(0)
        }
    }

    #[test]
    fn encodes_samples_and_histograms() {
        // Observations 0.25 and 2.0 under bounds 0.5 and 1.
        let mut e = TextEncoder::new();
        e.family("x_total", "Things.", MetricType::Counter);
        e.sample("x_total", &[("route", "/a\"b")], 3.0);
        e.family("d_seconds", "Durations.", MetricType::Histogram);
        e.histogram(
            "d_seconds",
            &[("route", "/")],
            &[0.5, 1.0],
            &Fixed(vec![1, 1, 2], 2.25),
        );
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

    #[test]
    fn openmetrics_metadata_le_and_eof() {
        // One observation, 0.25, under bounds 0.5 and 1.
        let mut e = TextEncoder::with_format(Format::OpenMetrics);
        e.family("x_total", "Say \"x\".", MetricType::Counter);
        e.sample("x_total", &[("a", "b")], 1.0);
        e.family("d_seconds", "D.", MetricType::Histogram);
        e.histogram(
            "d_seconds",
            &[("a", "b")],
            &[0.5, 1.0],
            &Fixed(vec![1, 1, 1], 0.25),
        );
        let text = e.finish();
        assert!(
            text.starts_with("# HELP x Say \\\"x\\\".\n# TYPE x counter\nx_total{a=\"b\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("d_seconds_bucket{a=\"b\",le=\"0.5\"} 1\n"));
        assert!(text.contains("d_seconds_bucket{a=\"b\",le=\"1.0\"} 1\n"));
        assert!(text.contains("d_seconds_bucket{a=\"b\",le=\"+Inf\"} 1\n"));
        assert!(text.ends_with("d_seconds_count{a=\"b\"} 1\n# EOF\n"));
    }

    #[test]
    fn exemplars_only_in_openmetrics_and_within_the_label_limit() {
        let id = "a".repeat(32);
        let ok = TextExemplar {
            labels: &[("trace_id", &id)],
            value: 0.25,
            timestamp: Some("1700000000.123"),
        };
        let long = "b".repeat(MAX_EXEMPLAR_LABEL_CHARS - 1);
        let too_long = TextExemplar {
            labels: &[("ab", &long)],
            value: 1.0,
            timestamp: None,
        };
        let at_limit = TextExemplar {
            labels: &[("a", &long)],
            value: 1.0,
            timestamp: None,
        };
        assert!(ok.fits() && at_limit.fits() && !too_long.fits());
        let write = |format| {
            let mut e = TextEncoder::with_format(format);
            e.sample_with_exemplar("x_total", &[("a", "b")], 3.0, Some(&ok));
            e.sample_with_exemplar("y_total", &[] as &[(&str, &str)], 1.0, Some(&too_long));
            e.sample_with_exemplar("z_total", &[] as &[(&str, &str)], 1.0, Some(&at_limit));
            e.histogram_with_exemplars(
                "d",
                &[("a", "b")],
                &[0.5, 1.0],
                &Fixed(vec![1, 1, 2], 2.25),
                |i, f| {
                    if i == 0 {
                        f(&ok);
                    }
                },
            );
            e.finish()
        };
        assert_eq!(
            write(Format::OpenMetrics),
            format!(
                "x_total{{a=\"b\"}} 3 # {{trace_id=\"{id}\"}} 0.25 1700000000.123\n\
                 y_total 1\nz_total 1 # {{a=\"{long}\"}} 1\n\
                 d_bucket{{a=\"b\",le=\"0.5\"}} 1 # {{trace_id=\"{id}\"}} 0.25 1700000000.123\n\
                 d_bucket{{a=\"b\",le=\"1.0\"}} 1\nd_bucket{{a=\"b\",le=\"+Inf\"}} 2\n\
                 d_sum{{a=\"b\"}} 2.25\nd_count{{a=\"b\"}} 2\n# EOF\n"
            )
        );
        assert_eq!(
            write(Format::Prometheus),
            "x_total{a=\"b\"} 3\ny_total 1\nz_total 1\n\
             d_bucket{a=\"b\",le=\"0.5\"} 1\nd_bucket{a=\"b\",le=\"1\"} 1\nd_bucket{a=\"b\",le=\"+Inf\"} 2\n\
             d_sum{a=\"b\"} 2.25\nd_count{a=\"b\"} 2\n"
        );
    }

    #[test]
    fn qvalues_in_thousandths() {
        for (v, want) in [
            ("0", Some(0)),
            ("1", Some(1000)),
            ("0.5", Some(500)),
            ("0.75", Some(750)),
            ("0.001", Some(1)),
            ("1.000", Some(1000)),
            ("0.1239", Some(123)),
            ("1.5", Some(1000)),
            ("0.", Some(0)),
            ("", None),
            (".5", None),
            ("2", None),
            ("0.x", None),
            ("-0.5", None),
            ("5e-1", None),
        ] {
            assert_eq!(qvalue_thousandths(v), want, "{v:?}");
        }
    }

    #[test]
    fn accept_negotiation() {
        assert_eq!(Format::negotiate(None), Format::Prometheus);
        assert_eq!(Format::negotiate(Some("*/*")), Format::Prometheus);
        assert_eq!(
            Format::negotiate(Some("text/plain;version=0.0.4")),
            Format::Prometheus
        );
        // What Prometheus 2.x/3.x sends.
        let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,\
                    text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::negotiate(Some(prom)), Format::OpenMetrics);
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text")),
            Format::OpenMetrics
        );
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text;q=0")),
            Format::Prometheus
        );
        assert_eq!(
            Format::negotiate(Some("text/plain, application/openmetrics-text;q=0.3")),
            Format::Prometheus
        );
        assert!(Format::OpenMetrics
            .content_type()
            .starts_with("application/openmetrics-text"));
    }
}
