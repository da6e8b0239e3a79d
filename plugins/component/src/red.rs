//! The WIT `red` interface: the RED recorder resource over core's
//! aggregate.

use std::cell::RefCell;

use uwsgi_red_core::red::aggregate::{Observation, RedAggregate};
use uwsgi_red_core::red::{RedFilterConfig, RedFilterSettings, RequestFacts};

use crate::bindings::exports::uwsgi_red::core::{metrics as wm, red as wred};
use crate::{red_families, u32_of, Component};

/// What a `red.recorder` holds: validated settings plus the core aggregate.
/// WIT methods take `&self`, hence the `RefCell` in [`Recorder`]; a
/// component instance is single-threaded.
#[derive(Debug)]
pub struct RecorderCore {
    settings: RedFilterSettings,
    protocol: &'static str,
    aggregate: RedAggregate,
}

impl RecorderCore {
    pub fn new(options: wred::RecorderOptions) -> Result<Self, wred::ConfigError> {
        let config = RedFilterConfig {
            service: Some(options.service),
            // `route` is given explicitly; there is no host route name.
            use_route_name: false,
            route_patterns: options.route_patterns,
            collapse_ids: options.collapse_ids,
            max_series: options.max_series as usize,
            buckets_seconds: options.buckets_seconds,
            ..RedFilterConfig::default()
        };
        let settings = config.validate().map_err(|e| wred::ConfigError {
            path: e.path,
            message: e.message,
        })?;
        let aggregate = RedAggregate::new(settings.buckets.clone(), settings.max_series);
        Ok(Self {
            settings,
            protocol: protocol_label(options.protocol),
            aggregate,
        })
    }

    pub fn record(&mut self, method: &str, route: &str, status: u16, duration_seconds: f64) {
        let facts = RequestFacts {
            method,
            path: route,
            route_name: None,
            code: status,
            upstream: None,
            upstream_address: None,
        };
        let labels = self.settings.labels(&facts, self.protocol);
        self.aggregate.record(Observation {
            labels,
            duration_seconds,
            ttfb_seconds: None,
        });
    }

    pub fn series_count(&self) -> u32 {
        u32_of(self.aggregate.series_count())
    }

    pub fn dropped(&self) -> u64 {
        self.aggregate.dropped()
    }

    pub fn prometheus_text(&self) -> String {
        self.aggregate.encode_prometheus()
    }

    pub fn families(&self) -> Vec<wm::MetricFamily> {
        red_families::families(&self.aggregate)
    }
}

#[derive(Debug)]
pub struct Recorder(RefCell<RecorderCore>);

fn protocol_label(p: wred::Protocol) -> &'static str {
    match p {
        wred::Protocol::Http => "http",
        wred::Protocol::Uwsgi => uwsgi_red_core::uwsgi::PROTOCOL,
    }
}

impl wred::Guest for Component {
    type Recorder = Recorder;

    fn default_options() -> wred::RecorderOptions {
        let d = RedFilterConfig::default();
        wred::RecorderOptions {
            service: "unknown".to_string(),
            route_patterns: d.route_patterns,
            collapse_ids: d.collapse_ids,
            max_series: u32_of(d.max_series),
            buckets_seconds: d.buckets_seconds,
            protocol: wred::Protocol::Http,
        }
    }
}

impl wred::GuestRecorder for Recorder {
    fn create(options: wred::RecorderOptions) -> Result<wred::Recorder, wred::ConfigError> {
        Ok(wred::Recorder::new(Recorder(RefCell::new(
            RecorderCore::new(options)?,
        ))))
    }

    fn record(&self, method: String, route: String, status: u16, duration_seconds: f64) {
        self.0
            .borrow_mut()
            .record(&method, &route, status, duration_seconds);
    }

    fn series_count(&self) -> u32 {
        self.0.borrow().series_count()
    }

    fn dropped(&self) -> u64 {
        self.0.borrow().dropped()
    }

    fn prometheus_text(&self) -> String {
        self.0.borrow().prometheus_text()
    }

    fn families(&self) -> Vec<wm::MetricFamily> {
        self.0.borrow().families()
    }
}
