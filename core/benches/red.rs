//! Criterion benches for the RED core: recording one request and encoding
//! 1 000 series. Also prints `BENCH` headline lines.

use criterion::{criterion_group, Criterion};
use std::hint::black_box;
use std::time::Instant;
use uwsgi_red_core::red::aggregate::{Observation, RedAggregate};
use uwsgi_red_core::red::histogram::Buckets;
use uwsgi_red_core::red::labels::LabelSet;
use uwsgi_red_core::red::route::{PathTemplate, RouteNormalizer};

fn obs(i: usize) -> Observation {
    Observation {
        labels: LabelSet::new("GET", 200, format!("/r{}", i % 1000), "app".into(), "http"),
        duration_seconds: 0.012,
        ttfb_seconds: Some(0.004),
    }
}

fn benches(c: &mut Criterion) {
    let routes = RouteNormalizer::new(vec![PathTemplate::parse("/users/{id}").unwrap()], true);
    c.bench_function("route_normalise_collapse", |b| {
        b.iter(|| {
            routes.route(
                None,
                black_box("/orders/12345/items/3f2504e0-4f89-11d3-9a0c-0305e82c3301?x=1"),
            )
        })
    });
    let mut agg = RedAggregate::new(Buckets::default(), 1000);
    let o = obs(1);
    c.bench_function("record_one_request", |b| {
        b.iter(|| agg.record(black_box(o.clone())))
    });
    let mut full = RedAggregate::new(Buckets::default(), 1000);
    for i in 0..1000 {
        full.record(obs(i));
    }
    c.bench_function("encode_1000_series", |b| {
        b.iter(|| black_box(full.encode_prometheus()))
    });
}

fn headline() {
    let mut agg = RedAggregate::new(Buckets::default(), 1000);
    let o = obs(7);
    let n = 200_000;
    let t = Instant::now();
    for _ in 0..n {
        agg.record(black_box(o.clone()));
    }
    println!(
        "BENCH core_record_ns {:.1} ns",
        t.elapsed().as_nanos() as f64 / n as f64
    );
    let mut full = RedAggregate::new(Buckets::default(), 1000);
    for i in 0..1000 {
        full.record(obs(i));
    }
    let t = Instant::now();
    let reps = 50;
    for _ in 0..reps {
        black_box(full.encode_prometheus());
    }
    println!(
        "BENCH core_encode_1k_series_us {:.1} us",
        t.elapsed().as_micros() as f64 / reps as f64
    );
}

criterion_group!(group, benches);

fn main() {
    group();
    Criterion::default().configure_from_args().final_summary();
    headline();
}
