//! The guest logic natively (no Wasm runtime): OTLP fixtures shaped like the
//! Collector's statsd/filelog receivers' output, in and out as protobuf.
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

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, LogsData, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Metric,
    MetricsData, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use otel_processor::{load_config, process_logs, process_metrics, LogSeries, NameBudget};
use prost::Message;

fn kv(k: &str, v: any_value::Value) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

fn delta_sum(name: &str, v: i64) -> Metric {
    Metric {
        name: name.into(),
        data: Some(Data::Sum(Sum {
            data_points: vec![NumberDataPoint {
                value: Some(Value::AsInt(v)),
                start_time_unix_nano: 1,
                time_unix_nano: 2,
                ..Default::default()
            }],
            aggregation_temporality: AggregationTemporality::Delta as i32,
            is_monotonic: true,
        })),
        ..Default::default()
    }
}

fn gauge(name: &str, v: f64) -> Metric {
    Metric {
        name: name.into(),
        data: Some(Data::Gauge(Gauge {
            data_points: vec![NumberDataPoint {
                value: Some(Value::AsDouble(v)),
                time_unix_nano: 2,
                ..Default::default()
            }],
        })),
        ..Default::default()
    }
}

fn timer(name: &str) -> Metric {
    // scale 0: bucket i is (2^i, 2^(i+1)] ms; offset 0 -> (1,2] ms x3, offset 10 -> (1.024,2.048] s x1.
    Metric {
        name: name.into(),
        data: Some(Data::ExponentialHistogram(ExponentialHistogram {
            data_points: vec![ExponentialHistogramDataPoint {
                count: 4,
                sum: Some(1504.5),
                scale: 0,
                zero_count: 0,
                positive: Some(Buckets {
                    offset: 0,
                    bucket_counts: vec![3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                }),
                min: Some(1.5),
                max: Some(1500.0),
                ..Default::default()
            }],
            aggregation_temporality: AggregationTemporality::Delta as i32,
        })),
        ..Default::default()
    }
}

fn batch(metrics: Vec<Metric>) -> MetricsData {
    MetricsData {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![kv("host.name", any_value::Value::StringValue("h1".into()))],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn run(cfg: &str, data: &MetricsData) -> MetricsData {
    let out = process_metrics(
        &load_config(cfg.as_bytes()),
        &mut NameBudget::default(),
        &data.encode_to_vec(),
    );
    assert_eq!(out.status_reason, None);
    MetricsData::decode(&out.payload[..]).expect("valid OTLP out")
}

fn attr<'a>(attrs: &'a [KeyValue], k: &str) -> Option<&'a any_value::Value> {
    attrs
        .iter()
        .find(|a| a.key == k)
        .and_then(|a| a.value.as_ref()?.value.as_ref())
}

fn service(rm: &ResourceMetrics) -> Option<String> {
    match attr(&rm.resource.as_ref()?.attributes, "service.name")? {
        any_value::Value::StringValue(s) => Some(s.clone()),
        _ => None,
    }
}

#[test]
fn gunicorn_metrics_become_semconv_and_others_stay() {
    let input = batch(vec![
        delta_sum("app.gunicorn.request.status.200", 5),
        delta_sum("app.gunicorn.request.status.503", 2),
        delta_sum("app.gunicorn.requests", 7),
        timer("app.gunicorn.request.duration"),
        gauge("app.gunicorn.workers", 2.0),
        delta_sum("app.gunicorn.log.warning", 1),
        gauge("unrelated.thing", 3.0),
    ]);
    let out = run(r#"{"services":{"app":"shop"}}"#, &input);
    assert_eq!(out.resource_metrics.len(), 2);
    let untouched = &out.resource_metrics[0];
    assert_eq!(
        untouched.scope_metrics[0].metrics,
        vec![gauge("unrelated.thing", 3.0)]
    );
    assert_eq!(service(untouched), None);

    let rm = &out.resource_metrics[1];
    assert_eq!(service(rm).as_deref(), Some("shop"));
    assert!(
        attr(&rm.resource.as_ref().unwrap().attributes, "host.name").is_some(),
        "resource kept"
    );
    let scope = &rm.scope_metrics[0];
    assert_eq!(
        scope.scope.as_ref().unwrap().name,
        "uwsgi-red/otel-processor"
    );
    let names: Vec<_> = scope.metrics.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "http.server.request.count",
            "http.server.request.duration",
            "gunicorn.workers",
            "gunicorn.log.records"
        ]
    );

    let Some(Data::Sum(counts)) = &scope.metrics[0].data else {
        panic!()
    };
    assert!(counts.is_monotonic);
    assert_eq!(
        counts.aggregation_temporality,
        AggregationTemporality::Delta as i32
    );
    let by_code: Vec<_> = counts
        .data_points
        .iter()
        .map(|p| {
            (
                attr(&p.attributes, "http.response.status_code").cloned(),
                attr(&p.attributes, "error.type").cloned(),
                p.value,
            )
        })
        .collect();
    assert_eq!(
        by_code,
        vec![
            (
                Some(any_value::Value::IntValue(200)),
                None,
                Some(Value::AsInt(5))
            ),
            (
                Some(any_value::Value::IntValue(503)),
                Some(any_value::Value::StringValue("503".into())),
                Some(Value::AsInt(2))
            ),
        ]
    );

    let Some(Data::Histogram(h)) = &scope.metrics[1].data else {
        panic!("explicit histogram")
    };
    assert_eq!(scope.metrics[1].unit, "s");
    let p = &h.data_points[0];
    assert_eq!(
        (p.count, p.sum, p.min, p.max),
        (4, Some(1.5045), Some(0.0015), Some(1.5))
    );
    assert_eq!(p.explicit_bounds[..3], [0.0005, 0.001, 0.0025]);
    // (1,2] ms -> le 0.0025 s; (1.024,2.048] s -> le 2.5 s.
    assert_eq!(
        p.bucket_counts,
        vec![0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]
    );
}

#[test]
fn redundant_series_kept_on_request() {
    let input = batch(vec![delta_sum("app.gunicorn.requests", 7)]);
    let out = run("{}", &input);
    assert!(
        out.resource_metrics.is_empty(),
        "gunicorn's total is dropped by default"
    );
    let out = run(r#"{"keep_redundant":true}"#, &input);
    assert_eq!(out, input);
}

#[test]
fn uwsgi_absolute_counters_become_cumulative() {
    let input = batch(vec![
        delta_sum("myapp.worker.1.requests", 22),
        delta_sum("myapp.worker.2.requests", 2),
        delta_sum("myapp.worker.0.requests", 24),
        gauge("myapp.worker.1.avg_response_time", 63241.0),
        gauge("myapp.core.busy_workers", 1.0),
        delta_sum("uwsgi.worker.1.requests", 3),
    ]);
    let out = run(r#"{"uwsgi_prefixes":["myapp"]}"#, &input);
    // uwsgi.* is not claimed when only myapp is configured.
    assert_eq!(
        out.resource_metrics[0].scope_metrics[0].metrics,
        vec![delta_sum("uwsgi.worker.1.requests", 3)]
    );
    let rm = &out.resource_metrics[1];
    assert_eq!(service(rm).as_deref(), Some("myapp"));
    let m = &rm.scope_metrics[0].metrics;
    assert_eq!(m[0].name, "http.server.request.count");
    let Some(Data::Sum(s)) = &m[0].data else {
        panic!()
    };
    assert_eq!(
        s.aggregation_temporality,
        AggregationTemporality::Cumulative as i32
    );
    let vals: Vec<_> = s
        .data_points
        .iter()
        .map(|p| {
            (
                attr(&p.attributes, "worker.id").cloned(),
                p.value,
                p.start_time_unix_nano,
            )
        })
        .collect();
    assert_eq!(
        vals,
        vec![
            (
                Some(any_value::Value::IntValue(1)),
                Some(Value::AsInt(22)),
                0
            ),
            (
                Some(any_value::Value::IntValue(2)),
                Some(Value::AsInt(2)),
                0
            )
        ]
    );
    assert_eq!(m[1].name, "uwsgi.worker.average_response_time");
    let Some(Data::Gauge(g)) = &m[1].data else {
        panic!()
    };
    assert_eq!(g.data_points[0].value, Some(Value::AsDouble(0.063241)));
    assert_eq!(m[2].name, "uwsgi.workers");
    assert_eq!(m.len(), 3, "worker 0 dropped");
}

#[test]
fn undecodable_input_passes_through_with_reason() {
    let garbage = b"\x0a\xff\xff\xff\xff\x0fnot protobuf".to_vec();
    let out = process_metrics(&load_config(b"{}"), &mut NameBudget::default(), &garbage);
    assert_eq!(out.payload, garbage);
    assert!(out.status_reason.unwrap().contains("passed through"));
    let out = process_logs(&load_config(b"{}"), &mut LogSeries::default(), &garbage);
    assert_eq!(out.payload, garbage);
    assert!(out.status_reason.is_some());
}

#[test]
fn bad_config_passes_through_naming_the_key() {
    let input = batch(vec![delta_sum("app.gunicorn.request.status.200", 1)]).encode_to_vec();
    let out = process_metrics(
        &load_config(br#"{"prefixes":["x"]}"#),
        &mut NameBudget::default(),
        &input,
    );
    assert_eq!(out.payload, input);
    assert!(out.status_reason.unwrap().contains("prefixes"));
}

#[test]
fn empty_payload_is_empty() {
    let out = process_metrics(&load_config(b"null"), &mut NameBudget::default(), &[]);
    assert!(out.payload.is_empty() && out.status_reason.is_none());
}

fn log_batch(lines: &[&str]) -> LogsData {
    LogsData {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: lines
                    .iter()
                    .map(|l| LogRecord {
                        body: Some(AnyValue {
                            value: Some(any_value::Value::StringValue(l.to_string())),
                        }),
                        attributes: vec![kv(
                            "log.file.name",
                            any_value::Value::StringValue("x.log".into()),
                        )],
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[test]
fn log_lines_become_attributes() {
    let vectors = concat!(env!("CARGO_MANIFEST_DIR"), "/../../core/tests/vectors/");
    let uwsgi = std::fs::read_to_string(format!("{vectors}uwsgi_fulllog_logdate.log")).unwrap();
    let gunicorn =
        std::fs::read_to_string(format!("{vectors}gunicorn_access_default.log")).unwrap();
    let lines: Vec<&str> = uwsgi.lines().chain(gunicorn.lines()).collect();
    let input = log_batch(&lines);
    let out = process_logs(
        &load_config(b"{}"),
        &mut LogSeries::default(),
        &input.encode_to_vec(),
    );
    assert_eq!(out.status_reason, None);
    let out = LogsData::decode(&out.payload[..]).unwrap();
    let recs = &out.resource_logs[0].scope_logs[0].log_records;
    assert_eq!(recs.len(), lines.len());
    let mut parsed = 0;
    for (rec, line) in recs.iter().zip(&lines) {
        assert_eq!(
            rec.body.as_ref().unwrap().value,
            Some(any_value::Value::StringValue(line.to_string())),
            "body kept"
        );
        assert!(
            attr(&rec.attributes, "log.file.name").is_some(),
            "receiver attributes kept"
        );
        match attr(&rec.attributes, "uwsgi_red.log.parsed") {
            Some(any_value::Value::BoolValue(true)) => parsed += 1,
            Some(any_value::Value::BoolValue(false)) => {
                assert_eq!(rec.attributes.len(), 2, "{line}")
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(parsed, 7 + 20);
    let raise = recs
        .iter()
        .find(|r| {
            attr(&r.attributes, "url.path") == Some(&any_value::Value::StringValue("/raise".into()))
        })
        .unwrap();
    assert_eq!(
        attr(&raise.attributes, "error.type"),
        Some(&any_value::Value::StringValue("500".into()))
    );
    assert_eq!(
        attr(&raise.attributes, "process.pid"),
        Some(&any_value::Value::IntValue(24264))
    );
}

// Regression: a batch over the rewrite limit was replaced by an empty one.
// It now comes back byte for byte, with the reason and its kind.
#[test]
fn batch_over_rewrite_limit_passes_through_unchanged() {
    use otel_processor::{Refusal, MAX_REWRITE_BYTES};
    let cfg = load_config(b"{}");
    // Valid OTLP (one huge string field) so only the size can refuse it.
    let mut md = MetricsData::default();
    md.resource_metrics.push(ResourceMetrics {
        schema_url: "x".repeat(MAX_REWRITE_BYTES),
        ..Default::default()
    });
    let input = md.encode_to_vec();
    assert!(input.len() > MAX_REWRITE_BYTES);
    let out = process_metrics(&cfg, &mut NameBudget::default(), &input);
    assert!(out.payload == input, "payload changed");
    assert_eq!(out.refusal, Some(Refusal::TooBig));
    let reason = out.status_reason.unwrap_or_default();
    assert!(reason.contains("64 MiB rewrite limit"), "{reason}");
    let logs = process_logs(&cfg, &mut LogSeries::default(), &input);
    assert!(logs.payload == input && logs.refusal == Some(Refusal::TooBig));
    // At the limit it is still rewritten.
    let small = gunicorn_batch_bytes();
    assert_eq!(
        process_metrics(&cfg, &mut NameBudget::default(), &small).refusal,
        None
    );
}

fn gunicorn_batch_bytes() -> Vec<u8> {
    MetricsData {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![delta_sum("app.gunicorn.request.status.200", 1)],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

#[test]
fn refusals_name_their_kind() {
    use otel_processor::Refusal;
    let bad = load_config(br#"{"uwsgi_prefix":["x"]}"#);
    let out = process_metrics(&bad, &mut NameBudget::default(), &gunicorn_batch_bytes());
    assert_eq!(out.refusal, Some(Refusal::ConfigRejected));
    assert!(out
        .status_reason
        .unwrap_or_default()
        .contains("uwsgi_prefix"));
    let out = process_logs(
        &load_config(b"{}"),
        &mut LogSeries::default(),
        b"\x0a\xff\xff\xff\xff\x0f",
    );
    assert_eq!(out.refusal, Some(Refusal::Undecodable));
    let out = process_metrics(
        &load_config(b"{}"),
        &mut NameBudget::default(),
        &gunicorn_batch_bytes(),
    );
    assert_eq!((out.refusal, out.status_reason), (None, None));
}

#[test]
fn gunicorn_micros_and_routes() {
    let lines = [
        r#"127.0.0.1 - - [22/Nov/2026:04:12:31 +0000] "GET /users/42?x=1 HTTP/1.1" 200 2 "-" "curl" 1503"#,
        r#"127.0.0.1 - - [22/Nov/2026:04:12:31 +0000] "POST /orders/5f1c0a9e77 HTTP/1.1" 503 2 "-" "curl" 250000"#,
    ];
    let cfg = load_config(br#"{"route_patterns":["/users/{id}"],"gunicorn_duration_field":"D"}"#);
    let out = process_logs(
        &cfg,
        &mut LogSeries::default(),
        &log_batch(&lines).encode_to_vec(),
    );
    assert_eq!(out.status_reason, None);
    let out = LogsData::decode(&out.payload[..]).unwrap();
    let got: Vec<_> = out.resource_logs[0].scope_logs[0]
        .log_records
        .iter()
        .map(|r| {
            let a = |k| attr(&r.attributes, k).cloned();
            (
                a("http.route"),
                a("http.request.method"),
                a("http.response.status_code"),
                a("http.server.request.duration"),
                a("uwsgi_red.log.format"),
            )
        })
        .collect();
    use any_value::Value::{DoubleValue as D, IntValue as I, StringValue as S};
    assert_eq!(
        got,
        [
            (
                Some(S("/users/{id}".into())),
                Some(S("GET".into())),
                Some(I(200)),
                Some(D(0.001503)),
                Some(S("gunicorn_micros".into()))
            ),
            (
                Some(S("/orders/:id".into())),
                Some(S("POST".into())),
                Some(I(503)),
                Some(D(0.25)),
                Some(S("gunicorn_micros".into()))
            ),
        ]
    );
    // Default: the recommended format's %(D)s, microseconds, as declared
    // above; %(M)s must be declared.
    let duration = |cfg: &[u8], line: &str| {
        let out = process_logs(
            &load_config(cfg),
            &mut LogSeries::default(),
            &log_batch(&[line]).encode_to_vec(),
        );
        let out = LogsData::decode(&out.payload[..]).unwrap();
        let rec = &out.resource_logs[0].scope_logs[0].log_records[0];
        let a = |k| attr(&rec.attributes, k).cloned();
        (
            a("http.server.request.duration"),
            a("uwsgi_red.log.format"),
            a("uwsgi_red.log.duration_error"),
            a("http.route"),
        )
    };
    assert_eq!(
        duration(b"{}", lines[0]),
        (
            Some(D(0.001503)),
            Some(S("gunicorn_micros".into())),
            None,
            Some(S("/users/:id".into()))
        )
    );
    assert_eq!(
        duration(br#"{"gunicorn_duration_field":"M"}"#, lines[0]).0,
        Some(D(1.503))
    );
    // %(L)s: decimal seconds.
    let seconds = lines[0].replace("1503", "0.001503");
    assert_eq!(
        duration(br#"{"gunicorn_duration_field":"L"}"#, &seconds),
        (
            Some(D(0.001503)),
            Some(S("gunicorn_seconds".into())),
            None,
            Some(S("/users/:id".into()))
        )
    );
    // A value of another field's shape is flagged and left unread, never
    // guessed; the request itself is still parsed (method, route, status).
    let flagged = "request time \"0.001503\" is not a gunicorn %(D)s, microseconds (an integer) value: gunicorn_duration_field is \"D\"";
    assert_eq!(
        duration(b"{}", &seconds),
        (
            None,
            Some(S("gunicorn_micros".into())),
            Some(S(flagged.into())),
            Some(S("/users/:id".into()))
        )
    );
    let flagged = "request time \"1503\" is not a gunicorn %(L)s, decimal seconds (such as 0.000321) value: gunicorn_duration_field is \"L\"";
    assert_eq!(
        duration(br#"{"gunicorn_duration_field":"L"}"#, lines[0]).2,
        Some(S(flagged.into()))
    );
}

/// A statsd receiver interval as long as uWSGI's push period may hold two
/// pushes of a running total, which the receiver adds together: such
/// counters are passed through unchanged and counted, never emitted as a
/// request total that is twice the truth. Gauges and gunicorn's increments
/// are not affected.
#[test]
fn uwsgi_counters_over_a_long_receiver_interval_are_refused() {
    use otel_processor::Refusal;
    let over = |name: &str, v: i64, secs: u64| {
        let mut m = delta_sum(name, v);
        if let Some(Data::Sum(s)) = &mut m.data {
            s.data_points[0].start_time_unix_nano = 1_000_000_000;
            s.data_points[0].time_unix_nano = 1_000_000_000 + secs * 1_000_000_000;
        }
        m
    };
    let input = batch(vec![
        over("uwsgi.worker.1.requests", 44, 60),
        over("uwsgi.worker.2.requests", 2, 2),
        over("app.gunicorn.request.status.200", 5, 60),
        gauge("uwsgi.core.busy_workers", 1.0),
    ]);
    let out = process_metrics(
        &load_config(b"{}"),
        &mut NameBudget::default(),
        &input.encode_to_vec(),
    );
    assert_eq!(
        (out.refusal, out.refused),
        (Some(Refusal::UwsgiInterval), 1)
    );
    assert_eq!(
        out.status_reason.as_deref(),
        Some(
            "1 uWSGI counters passed through unchanged: the statsd receiver aggregated them over 60.000 s, \
not shorter than uWSGI's push period (3 s, uwsgi_push_period_seconds), so it may have added several running \
totals together; set the receiver's aggregation_interval below the push period"
        )
    );
    let data = MetricsData::decode(&out.payload[..]).unwrap();
    // Kept as it was, in its own resource.
    assert_eq!(
        data.resource_metrics[0].scope_metrics[0].metrics,
        vec![over("uwsgi.worker.1.requests", 44, 60)]
    );
    let names: Vec<(&str, usize)> = data.resource_metrics[1..]
        .iter()
        .flat_map(|rm| &rm.scope_metrics[0].metrics)
        .map(|m| {
            let n = match &m.data {
                Some(Data::Sum(s)) => s.data_points.len(),
                Some(Data::Gauge(g)) => g.data_points.len(),
                _ => 0,
            };
            (m.name.as_str(), n)
        })
        .collect();
    assert_eq!(
        names,
        [
            ("http.server.request.count", 1),
            ("http.server.request.count", 1),
            ("uwsgi.workers", 1)
        ]
    );
    // A longer declared push period admits the same interval.
    let out = process_metrics(
        &load_config(br#"{"uwsgi_push_period_seconds": 120}"#),
        &mut NameBudget::default(),
        &input.encode_to_vec(),
    );
    assert_eq!((out.refusal, out.status_reason), (None, None));
}

fn gunicorn_line(method: &str, path: &str, status: u16) -> String {
    format!(
        r#"127.0.0.1 - - [22/Nov/2026:04:12:31 +0000] "{method} {path} HTTP/1.1" {status} 2 "-" "curl" 15"#
    )
}

/// (method, route, status code, error.type, overflow flag) of every record.
type Labels = (
    Option<any_value::Value>,
    Option<any_value::Value>,
    Option<any_value::Value>,
    Option<any_value::Value>,
    Option<any_value::Value>,
);

fn labels(out: &[u8]) -> Vec<Labels> {
    let out = LogsData::decode(out).unwrap();
    out.resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .flat_map(|s| &s.log_records)
        .map(|r| {
            let a = |k| attr(&r.attributes, k).cloned();
            (
                a("http.request.method"),
                a("http.route"),
                a("http.response.status_code"),
                a("error.type"),
                a("uwsgi_red.series.overflow"),
            )
        })
        .collect()
}

#[test]
fn unknown_methods_become_other_and_keep_the_original() {
    let lines = [
        gunicorn_line("BREW", "/pot", 418),
        gunicorn_line("get", "/pot", 200),
    ];
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let out = process_logs(
        &load_config(b"{}"),
        &mut LogSeries::default(),
        &log_batch(&lines).encode_to_vec(),
    );
    let out = LogsData::decode(&out.payload[..]).unwrap();
    let recs = &out.resource_logs[0].scope_logs[0].log_records;
    use any_value::Value::StringValue as S;
    for (rec, original) in recs.iter().zip(["BREW", "get"]) {
        assert_eq!(
            attr(&rec.attributes, "http.request.method"),
            Some(&S("_OTHER".into()))
        );
        assert_eq!(
            attr(&rec.attributes, "http.request.method_original"),
            Some(&S(original.into()))
        );
    }
    // A known method has no `_original`.
    let line = gunicorn_line("GET", "/pot", 200);
    let out = process_logs(
        &load_config(b"{}"),
        &mut LogSeries::default(),
        &log_batch(&[&line]).encode_to_vec(),
    );
    let out = LogsData::decode(&out.payload[..]).unwrap();
    let rec = &out.resource_logs[0].scope_logs[0].log_records[0];
    assert_eq!(attr(&rec.attributes, "http.request.method_original"), None);
}

#[test]
fn label_sets_beyond_max_series_fold_into_one_overflow_series_per_class() {
    use any_value::Value::{BoolValue as B, IntValue as I, StringValue as S};
    let cfg = load_config(br#"{"max_series":3,"collapse_ids":false}"#);
    let mut series = LogSeries::default();
    // 3 sets fill the cap in the first batch; the second batch repeats
    // one of them (still admitted) and brings new ones (folded).
    let first: Vec<String> = ["/a", "/b", "/c"]
        .iter()
        .map(|p| gunicorn_line("GET", p, 200))
        .collect();
    let first: Vec<&str> = first.iter().map(String::as_str).collect();
    let out = process_logs(&cfg, &mut series, &log_batch(&first).encode_to_vec());
    assert!(labels(&out.payload).iter().all(|l| l.4.is_none()));
    let second = [
        gunicorn_line("GET", "/b", 200),
        gunicorn_line("GET", "/d", 200),
        gunicorn_line("BREW", "/e", 503),
        gunicorn_line("POST", "/a", 200),
    ];
    let second: Vec<&str> = second.iter().map(String::as_str).collect();
    let out = process_logs(&cfg, &mut series, &log_batch(&second).encode_to_vec());
    let overflow = |class: &str, err: Option<&str>| {
        (
            Some(S("_OTHER".into())),
            Some(S("__overflow__".into())),
            Some(S(class.into())),
            err.map(|e| S(e.into())),
            Some(B(true)),
        )
    };
    assert_eq!(
        labels(&out.payload),
        [
            (
                Some(S("GET".into())),
                Some(S("/b".into())),
                Some(I(200)),
                None,
                None
            ),
            overflow("2xx", None),
            overflow("5xx", Some("_OTHER")),
            // Another method on an admitted route is another label set.
            overflow("2xx", None),
        ]
    );
    assert_eq!(series.folded(), 3);
}

#[test]
fn thousands_of_paths_and_methods_stay_within_cap_plus_overflow() {
    use std::collections::HashMap;
    let cfg = load_config(br#"{"max_series":50}"#);
    let mut series = LogSeries::default();
    let mut per_series: HashMap<String, u64> = HashMap::new();
    let mut sent = 0u64;
    for batch in 0..20 {
        let lines: Vec<String> = (0..500)
            .map(|i| {
                let n = batch * 500 + i;
                let status = [200, 404, 503][n % 3];
                gunicorn_line(&format!("M{}", n % 1000), &format!("/p{n}x"), status)
            })
            .collect();
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        let out = process_logs(&cfg, &mut series, &log_batch(&lines).encode_to_vec());
        for l in labels(&out.payload) {
            *per_series
                .entry(format!("{:?}", (l.0, l.1, l.2)))
                .or_default() += 1;
            sent += 1;
        }
    }
    assert_eq!(sent, 10_000);
    // 50 admitted sets + the 2xx, 4xx and 5xx overflow series.
    assert_eq!(per_series.len(), 53, "{:?}", per_series.keys().take(5));
    assert_eq!(per_series.values().sum::<u64>(), 10_000);
    assert_eq!(series.folded(), 10_000 - 50);
}

/// Queue-time lines through the processor: each record keeps its queue
/// attribute, and past `max_series` its method and route become the
/// overflow series' (the labels of the queue-time histogram too), so the
/// queue histogram is bounded by the same cap as the request histogram.
#[test]
fn queue_time_attributes_and_the_series_cap() {
    use any_value::Value::{DoubleValue as D, StringValue as S};
    let line = |path: &str, stamp: &str| {
        format!(
            "[pid: 7|app: -|req: -/-] 127.0.0.1 (-) {{26 vars in 290 bytes}} [Mon Dec  7 14:13:41 2026] \
GET {path} => generated 3 bytes in 90 micros (HTTP/1.1 200) 1 headers in 45 bytes \
(1 switches on core 0) tmicros=1700000000500000 x_request_start={stamp}"
        )
    };
    let lines = [
        line("/a", "t=1700000000375000"),
        line("/b", "t=1700000000.250"),
        line("/c", "-"),
        line("/d", "t=1700000001"),
    ];
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let cfg = load_config(br#"{"max_series":1}"#);
    let out = process_logs(
        &cfg,
        &mut LogSeries::default(),
        &log_batch(&lines).encode_to_vec(),
    );
    let out = LogsData::decode(&out.payload[..]).unwrap();
    let got: Vec<_> = out.resource_logs[0].scope_logs[0]
        .log_records
        .iter()
        .map(|r| {
            let a = &r.attributes;
            (
                attr(a, "http.route").cloned(),
                attr(a, "uwsgi_red.queue.duration").cloned(),
                attr(a, "uwsgi_red.queue.error").cloned(),
            )
        })
        .collect();
    let overflow = Some(S("__overflow__".into()));
    assert_eq!(
        got,
        [
            (Some(S("/a".into())), Some(D(0.125)), None),
            (overflow.clone(), Some(D(0.25)), None),
            (overflow.clone(), None, Some(S("missing".into()))),
            (overflow, None, Some(S("skewed".into()))),
        ]
    );
}
