//! Cost of naming one RED series for Envoy (the four names a new label set
//! defines). The plugins name a series once, when its label set is first
//! seen; a known series is a map lookup, so this is not per request.
//! Prints `BENCH envoy_name_series_ns` for a typical set and one whose
//! route needs escaping.

use criterion::{criterion_group, Criterion};
use std::hint::black_box;
use std::time::Instant;
use uwsgi_red_envoy_name::encode;

const METRICS: [&str; 4] = [
    "uwsgi_red_requests_total",
    "uwsgi_red_errors_total",
    "uwsgi_red_request_duration_microseconds",
    "uwsgi_red_time_to_first_byte_microseconds",
];

fn labels(route: &str) -> [(&'static str, String); 6] {
    [
        ("method", "GET".into()),
        ("code", "503".into()),
        ("code_class", "5xx".into()),
        ("route", route.into()),
        ("service", "uwsgi_app".into()),
        ("protocol", "http".into()),
    ]
}

fn name_series(l: &[(&str, String)]) -> usize {
    METRICS.iter().map(|m| encode(m, l).len()).sum()
}

fn benches(c: &mut Criterion) {
    for (what, route) in [
        ("plain", "/users/{id}/orders/{order_id}"),
        ("escaped", "/u;service=.=x/%3B;.;\\\u{7f}"),
    ] {
        let l = labels(route);
        c.bench_function(&format!("envoy_name_series_{what}"), |b| {
            b.iter(|| name_series(black_box(&l)))
        });
        let n = 200_000u32;
        let t = Instant::now();
        for _ in 0..n {
            black_box(name_series(black_box(&l)));
        }
        println!(
            "BENCH envoy_name_series_{what}_ns {:.0} ns",
            t.elapsed().as_nanos() as f64 / f64::from(n)
        );
    }
}

criterion_group!(group, benches);

fn main() {
    group();
    Criterion::default().configure_from_args().final_summary();
}
