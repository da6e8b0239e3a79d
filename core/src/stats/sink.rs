//! Where the mapping writes: one trait, two sinks. [`Collect`] builds the
//! neutral [`Family`] list that host adapters (Envoy, WIT) consume;
//! [`Text`] writes Prometheus text directly, so the fast path
//! ([`super::scrape`]) never builds a per-sample label vector.

use super::families::{Family, Meta, Sample};
use crate::prom::text::{escape_help, escape_label_value, format_value};

/// Receives families in order, each followed by its samples.
pub trait Sink {
    fn family(&mut self, meta: &Meta);
    /// Labels in order, `target` first; names are fixed by the mapping.
    fn sample(&mut self, labels: &[(&'static str, &str)], value: f64);
}

/// Collects owned [`Family`] values, empty families included (hosts
/// pre-declare them).
#[derive(Debug, Default)]
pub struct Collect {
    pub families: Vec<Family>,
}

impl Sink for Collect {
    fn family(&mut self, meta: &Meta) {
        self.families.push(Family::from_meta(meta));
    }

    fn sample(&mut self, labels: &[(&'static str, &str)], value: f64) {
        if let Some(f) = self.families.last_mut() {
            f.samples.push(Sample {
                labels: labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
                value,
            });
        }
    }
}

/// Prometheus text (format 0.0.4, as [`super::families::encode_text`]
/// writes it through [`crate::prom::text::TextEncoder`], byte for byte); a
/// family's HELP/TYPE lines are written with its first sample, so families
/// without samples leave no trace. Written directly into one buffer: whole
/// numbers (nearly every stats value) through `itoa`, label values escaped
/// only when they hold `\\`, `"` or a newline.
#[derive(Debug, Default)]
pub struct Text {
    out: String,
    current: Option<Meta>,
    header_written: bool,
}

impl Text {
    pub fn new() -> Self {
        Self::default()
    }

    /// With room for `bytes` of output reserved up front.
    pub fn with_capacity(bytes: usize) -> Self {
        Self {
            out: String::with_capacity(bytes),
            ..Self::default()
        }
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// Largest magnitude below which every whole `f64` is an exact integer.
const EXACT_INT: f64 = 9_007_199_254_740_992.0;

fn push_value(out: &mut String, v: f64) {
    if v.fract() == 0.0 && v.abs() < EXACT_INT {
        // Exact by the bound above; `{v}` would print the same digits.
        let i = v as i64;
        out.push_str(itoa::Buffer::new().format(i));
    } else {
        out.push_str(&format_value(v));
    }
}

fn push_label_value(out: &mut String, v: &str) {
    if v.bytes().any(|b| matches!(b, b'\\' | b'"' | b'\n')) {
        out.push_str(&escape_label_value(v));
    } else {
        out.push_str(v);
    }
}

impl Sink for Text {
    fn family(&mut self, meta: &Meta) {
        self.current = Some(*meta);
        self.header_written = false;
    }

    fn sample(&mut self, labels: &[(&'static str, &str)], value: f64) {
        let Some(meta) = self.current else {
            return;
        };
        let out = &mut self.out;
        if !self.header_written {
            self.header_written = true;
            for (what, text) in [
                ("# HELP ", escape_help(meta.help)),
                ("# TYPE ", meta.kind.as_str().into()),
            ] {
                out.push_str(what);
                out.push_str(meta.name);
                out.push(' ');
                out.push_str(&text);
                out.push('\n');
            }
        }
        out.push_str(meta.name);
        if let Some(((k, v), rest)) = labels.split_first() {
            out.push('{');
            out.push_str(k);
            out.push_str("=\"");
            push_label_value(out, v);
            out.push('"');
            for (k, v) in rest {
                out.push(',');
                out.push_str(k);
                out.push_str("=\"");
                push_label_value(out, v);
                out.push('"');
            }
            out.push('}');
        }
        out.push(' ');
        push_value(out, value);
        out.push('\n');
    }
}
