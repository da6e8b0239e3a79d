//! Stats decode + map (+ encode) benches. Criterion groups for the largest
//! captured test vector and the 1 MB bench fixture, then the headline `BENCH`
//! lines, including the adversarial (hostile) document (40 000 sockets, 20 000
//! workers sharing an id) through `stats::scrape` (decode + map + encode).
//! The 1 MB figures against Python's `json.loads` come from
//! `bench/stats_1mb.py`, which times both sides in one run.
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

use criterion::{criterion_group, Criterion, Throughput};
use std::hint::black_box;
use std::time::Instant;
use uwsgi_red_core::stats::families::{encode_text, map_document, MapOptions};
use uwsgi_red_core::stats::{decode, scrape, transport, DEFAULT_MAX_DOCUMENT_BYTES};

use uwsgi_red_testdata::{stats as hostile_stats, vectors, STATS_1MB as MB};

const DOC: &[u8] = vectors::STATS_4X4_LOAD_HTTP;

fn decode_map() -> usize {
    let d = decode(black_box(DOC)).unwrap();
    map_document(&d.document, "app1", &MapOptions::default()).len()
}

fn value_parse() -> usize {
    let body = transport::body(black_box(DOC)).unwrap();
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    v["workers"].as_array().map_or(0, Vec::len)
}

fn scrape_len(doc: &[u8]) -> usize {
    scrape(
        black_box(doc),
        "app1",
        &MapOptions::default(),
        DEFAULT_MAX_DOCUMENT_BYTES,
    )
    .unwrap()
    .text
    .len()
}

fn owned_len(doc: &[u8]) -> usize {
    let d = decode(black_box(doc)).unwrap();
    encode_text(&map_document(&d.document, "app1", &MapOptions::default())).len()
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
            cron_commands: false,
        },
    );
    g.bench_function("encode_text_per_core", |b| {
        b.iter(|| encode_text(black_box(&fams)))
    });
    g.finish();

    let mut g = c.benchmark_group("stats_1mb");
    g.throughput(Throughput::Bytes(MB.len() as u64));
    g.sample_size(20);
    g.bench_function("scrape", |b| b.iter(|| scrape_len(MB)));
    g.bench_function("owned_decode_map_encode", |b| b.iter(|| owned_len(MB)));
    g.finish();
}

/// Fastest of `rounds` timed rounds of `n` calls, in µs per call: on a
/// shared machine a slow round mostly measures other processes.
fn best_us(f: &dyn Fn() -> usize, n: u32, rounds: usize) -> f64 {
    for _ in 0..n.div_ceil(10) {
        black_box(f());
    }
    (0..rounds)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..n {
                black_box(f());
            }
            t.elapsed().as_secs_f64() * 1e6 / f64::from(n)
        })
        .fold(f64::INFINITY, f64::min)
}

fn headline() {
    let native = best_us(&decode_map, 2000, 7);
    let value = best_us(&value_parse, 2000, 7);
    let mb_s = DOC.len() as f64 / native; // bytes per µs == MB/s
    println!("BENCH stats_decode_native_us {native:.2} us");
    println!("BENCH stats_decode_native_mb_s {mb_s:.1} MB/s");
    println!("BENCH stats_value_parse_us {value:.2} us");
    // > 1 means the typed decode + full mapping is faster than merely parsing to a Value.
    println!("BENCH stats_decode_vs_value_ratio {:.2} x", value / native);

    let fast = best_us(&|| scrape_len(MB), 20, 9);
    let owned = best_us(&|| owned_len(MB), 10, 5);
    println!("BENCH stats_1mb_scrape_native_ms {:.3} ms", fast / 1e3);
    println!("BENCH stats_1mb_owned_native_ms {:.3} ms", owned / 1e3);

    let hostile = hostile_stats::hostile();
    let out = scrape_len(&hostile);
    let ms = best_us(&|| scrape_len(&hostile), 1, 5) / 1e3;
    println!("BENCH stats_hostile_40k_sockets_ms {ms:.1} ms");
    println!(
        "BENCH stats_hostile_output_vs_input_ratio {:.3} x",
        out as f64 / hostile.len() as f64
    );
}

criterion_group!(group, benches);

fn main() {
    group();
    Criterion::default().configure_from_args().final_summary();
    headline();
}
