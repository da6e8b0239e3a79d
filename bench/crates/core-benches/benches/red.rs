//! Criterion benches for the RED core: recording one request and encoding
//! 1 000 series. Also prints `BENCH` headline lines.
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

use criterion::{criterion_group, Criterion};
use std::hint::black_box;
use std::time::Instant;
use uwsgi_red_core::red::admission::Decision;
use uwsgi_red_core::red::aggregate::{Observation, RedAggregate};
use uwsgi_red_core::red::histogram::Buckets;
use uwsgi_red_core::red::kv::LocalKv;
use uwsgi_red_core::red::labels::LabelSet;
use uwsgi_red_core::red::route::{PathTemplate, RouteNormalizer};
use uwsgi_red_core::red::shared::{self, Delta, Layout};

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

/// Self mode: one request's flush into a stored state of `n` series
/// (cap = n, so the shards hold ~128 series each as in production). The
/// cost follows the shard the request touches, not the state size.
fn self_flush(n: usize) {
    let b = Buckets::default();
    let layout = Layout::new("bench", n);
    let mut kv = LocalKv::new();
    shared::ensure_created(&mut kv, &layout, &b, 1).unwrap();
    let mut d = Delta::new(b.clone(), layout.clone());
    for i in 0..n {
        let l = LabelSet::new("GET", 200, format!("/r{i}"), "app".into(), "http");
        d.record(l, Decision::Admitted, 0.012, Some(0.004));
    }
    assert!(shared::flush(&mut d, &mut kv, 1).failed.is_none());
    let reps = 200;
    let t = Instant::now();
    for i in 0..reps {
        let l = LabelSet::new("GET", 200, format!("/r{}", i % n), "app".into(), "http");
        d.record(l, Decision::Admitted, 0.012, Some(0.004));
        black_box(shared::flush(&mut d, &mut kv, 1));
    }
    let label = match n {
        1_000 => "1k",
        10_000 => "10k",
        _ => "100k",
    };
    println!(
        "BENCH self_flush_us_{label} {:.1} us",
        t.elapsed().as_micros() as f64 / reps as f64
    );
}

criterion_group!(group, benches);

fn main() {
    group();
    Criterion::default().configure_from_args().final_summary();
    headline();
    for n in [1_000, 10_000, 100_000] {
        self_flush(n);
    }
}
