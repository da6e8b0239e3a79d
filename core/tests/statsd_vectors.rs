//! Every captured gunicorn/uWSGI StatsD datagram name is recognised and
//! mapped to the OpenTelemetry names the plugin emits.
// Not shipped (tests, benches, native tools): the workspace's panic-free
// lints (Cargo.toml [workspace.lints.clippy]) do not apply here.
#![allow(
    clippy::indexing_slicing,
    clippy::string_slice,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

use proptest::prelude::*;
use uwsgi_red_core::statsd::semconv::{
    error_type, HTTP_SERVER_REQUEST_COUNT, HTTP_SERVER_REQUEST_DURATION,
};
use uwsgi_red_core::statsd::{
    classify, map, AttrValue, GunicornMetric, Instrument, Outcome, Source, StatsdMetric,
    UwsgiMetric,
};

fn names(file: &str) -> Vec<String> {
    let path = format!("{}/tests/vectors/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .map(|l| l.split_once(':').expect("name:value").0.to_string())
        .collect()
}

const NO_UWSGI: [&str; 0] = [];

#[test]
fn gunicorn_capture_fully_recognised() {
    let all = names("statsd_gunicorn_prefix_app.txt");
    assert_eq!(all.len(), 82);
    let mut status_counts = std::collections::BTreeMap::new();
    for n in &all {
        let (src, m) = classify(n, &NO_UWSGI).unwrap_or_else(|| panic!("unrecognised {n}"));
        assert_eq!(src, Source::Gunicorn { prefix: "app" });
        match (m, map(&m)) {
            (StatsdMetric::Gunicorn(GunicornMetric::Status(code)), Outcome::Rewrite(mp)) => {
                assert_eq!(mp.name, HTTP_SERVER_REQUEST_COUNT);
                assert_eq!(mp.instrument, Instrument::DeltaCounter);
                assert_eq!(
                    mp.attributes[0],
                    ("http.response.status_code", AttrValue::Int(code.into()))
                );
                let err = mp.attributes.iter().find(|(k, _)| *k == "error.type");
                assert_eq!(err.is_some(), code >= 500, "{code}");
                *status_counts.entry(code).or_insert(0) += 1;
            }
            (StatsdMetric::Gunicorn(GunicornMetric::Duration), Outcome::Rewrite(mp)) => {
                assert_eq!(
                    (mp.name.as_str(), mp.unit, mp.scale),
                    (HTTP_SERVER_REQUEST_DURATION, "s", 1e-3)
                );
                assert_eq!(mp.instrument, Instrument::Duration);
            }
            (StatsdMetric::Gunicorn(GunicornMetric::Requests), o) => {
                assert_eq!(o, Outcome::Redundant)
            }
            (StatsdMetric::Gunicorn(GunicornMetric::Workers), Outcome::Rewrite(mp)) => {
                assert_eq!(
                    (mp.name.as_str(), mp.instrument),
                    ("gunicorn.workers", Instrument::Gauge)
                )
            }
            (StatsdMetric::Gunicorn(GunicornMetric::Log(level)), Outcome::Rewrite(mp)) => {
                assert!(["warning", "exception", "critical"].contains(&level));
                assert_eq!(
                    mp.attributes,
                    vec![("log.level", AttrValue::Str(level.into()))]
                );
            }
            other => panic!("unexpected {n}: {other:?}"),
        }
    }
    let expected: std::collections::BTreeMap<u16, i32> =
        [(200, 19), (204, 1), (302, 1), (404, 1), (500, 3)].into();
    assert_eq!(status_counts, expected);
}

#[test]
fn uwsgi_capture_recognised_only_under_its_prefix() {
    let all = names("statsd_uwsgi_2.0.30_prefix_myapp.txt");
    assert_eq!(all.len(), 340);
    for n in &all {
        assert!(
            classify(n, &NO_UWSGI).is_none(),
            "claimed without a configured prefix: {n}"
        );
        assert!(
            classify(n, &["myap"]).is_none(),
            "prefix must match whole segments: {n}"
        );
        let (src, m) =
            classify(n, &["other", "myapp"]).unwrap_or_else(|| panic!("unrecognised {n}"));
        assert_eq!(src, Source::Uwsgi { prefix: "myapp" });
        let StatsdMetric::Uwsgi(u) = m else {
            panic!("{n}")
        };
        match (u, map(&m)) {
            (UwsgiMetric::Worker { worker: 0, .. }, o) => assert_eq!(o, Outcome::Redundant),
            (
                UwsgiMetric::Worker {
                    worker,
                    name: "requests",
                },
                Outcome::Rewrite(mp),
            ) => {
                assert_eq!(
                    (mp.name.as_str(), mp.instrument),
                    (HTTP_SERVER_REQUEST_COUNT, Instrument::AbsoluteCounter)
                );
                assert_eq!(
                    mp.attributes,
                    vec![("worker.id", AttrValue::Int(worker.into()))]
                );
            }
            (
                UwsgiMetric::Worker {
                    name: "avg_response_time",
                    ..
                },
                Outcome::Rewrite(mp),
            ) => {
                assert_eq!(
                    (mp.unit, mp.scale, mp.instrument),
                    ("s", 1e-6, Instrument::Gauge)
                );
                assert_eq!(mp.attributes[0].0, "worker.id");
            }
            (UwsgiMetric::Core { name }, Outcome::Rewrite(mp)) if name.ends_with("_workers") => {
                assert_eq!(mp.name, "uwsgi.workers");
            }
            (_, Outcome::Rewrite(mp)) => assert!(
                mp.name.starts_with("uwsgi.") || mp.name.starts_with("process.memory."),
                "{n} -> {}",
                mp.name
            ),
            (_, o) => panic!("{n}: {o:?}"),
        }
    }
}

#[test]
fn unrelated_names_are_left_alone() {
    for n in [
        "http.server.request.duration",
        "gunicornish.requests",
        "app.gunicorn.request.status.abc",
        "app.gunicorn.log.",
        "app.gunicorn.request.status.99",
        "myapp",
        "myapp.",
        "myapp.worker.x.requests",
        "myapp.worker.1",
        "myapp.worker.1.core.1.",
        "x.gunicorn.unknown",
    ] {
        assert!(classify(n, &["myapp"]).is_none(), "{n}");
    }
    assert_eq!(
        classify("gunicorn.requests", &NO_UWSGI).map(|(s, _)| s),
        Some(Source::Gunicorn { prefix: "" })
    );
    assert_eq!(error_type(503).as_deref(), Some("503"));
    assert_eq!(error_type(404), None);
}

proptest! {
    #[test]
    fn classify_never_panics(s in "[a-z0-9._]{0,60}") {
        if let Some((src, m)) = classify(&s, &["myapp", ""]) {
            prop_assert!(s.starts_with(src.prefix()));
            let _ = map(&m);
        }
    }
}
