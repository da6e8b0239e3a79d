//! Decode + map of the largest captured stats document (uWSGI 2.0.30,
//! 4 busy workers × 4 cores with live vars), against parsing the same
//! document into `serde_json::Value` (the naive approach, which also keeps
//! every var). Prints the `BENCH` headline lines.

use criterion::{criterion_group, Criterion, Throughput};
use std::hint::black_box;
use std::time::Instant;
use uwsgi_red_core::stats::families::{encode_text, map_document, MapOptions};
use uwsgi_red_core::stats::{decode, transport};

const DOC: &[u8] = include_bytes!("../tests/vectors/stats_b_4x4_load_http.bin");

fn decode_map() -> usize {
    let d = decode(black_box(DOC)).unwrap();
    map_document(&d.document, "app1", &MapOptions::default()).len()
}

fn value_parse() -> usize {
    let body = transport::body(black_box(DOC)).unwrap();
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    v["workers"].as_array().map_or(0, Vec::len)
}

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("stats");
    g.throughput(Throughput::Bytes(DOC.len() as u64));
    g.bench_function("decode_map_largest_vector", |b| b.iter(decode_map));
    g.bench_function("serde_json_value_same_document", |b| b.iter(value_parse));
    let d = decode(DOC).unwrap();
    let fams = map_document(
        &d.document,
        "app1",
        &MapOptions {
            per_core: true,
            uwsgi_metrics: true,
        },
    );
    g.bench_function("encode_text_per_core", |b| {
        b.iter(|| encode_text(black_box(&fams)))
    });
    g.finish();
}

/// Median of 7 timed rounds, in µs per call.
fn median_us(f: fn() -> usize, n: u32) -> f64 {
    for _ in 0..n / 10 {
        black_box(f());
    }
    let mut rounds: Vec<f64> = (0..7)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..n {
                black_box(f());
            }
            t.elapsed().as_secs_f64() * 1e6 / f64::from(n)
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    rounds[3]
}

fn headline() {
    let native = median_us(decode_map, 2000);
    let value = median_us(value_parse, 2000);
    let mb_s = DOC.len() as f64 / native; // bytes per µs == MB/s
    println!("BENCH stats_decode_native_us {native:.2} us");
    println!("BENCH stats_decode_native_mb_s {mb_s:.1} MB/s");
    println!("BENCH stats_value_parse_us {value:.2} us");
    // > 1 means the typed decode + full mapping is faster than merely parsing to a Value.
    println!("BENCH stats_decode_vs_value_ratio {:.2} x", value / native);
}

criterion_group!(group, benches);

fn main() {
    group();
    Criterion::default().configure_from_args().final_summary();
    headline();
}
