//! Where the mapping writes: one trait, two sinks. [`Collect`] builds the
//! neutral [`Family`] list that host adapters (Envoy, WIT) consume;
//! [`Text`] writes Prometheus text directly, so the fast path
//! ([`super::scrape`]) never builds a per-sample label vector.

use super::families::{Family, Meta, Sample};
use crate::prom::text::TextEncoder;

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

/// Prometheus text; a family's HELP/TYPE lines are written with its first
/// sample, so families without samples leave no trace (as [`super::families::encode_text`]).
#[derive(Debug, Default)]
pub struct Text {
    encoder: TextEncoder,
    current: Option<Meta>,
    header_written: bool,
}

impl Text {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn finish(self) -> String {
        self.encoder.finish()
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
        if !self.header_written {
            self.encoder.family(meta.name, meta.help, meta.kind);
            self.header_written = true;
        }
        self.encoder.sample(meta.name, labels, value);
    }
}
