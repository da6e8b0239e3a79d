//! Criterion benches for the uwsgi codec over the captured nginx packets:
//! whole-head decode (zero-copy path), byte-split streaming decode, and the
//! response status. Prints the `BENCH uwsgi_decode_native_mbps` headline
//! (head bytes per second: bodies are skipped by arithmetic, never read),
//! and the hostile-input figures: the largest head the format allows fed
//! one byte per callback, and a million distinct StatsD names through
//! classification and the name budget (both should scale linearly).
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

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use criterion::{criterion_group, Criterion, Throughput};
use uwsgi_red_core::statsd::{classify, NameBudget};
use uwsgi_red_core::uwsgi::response::StatusParser;
use uwsgi_red_core::uwsgi::{decode_head, encode_head, HeadDecoder, Progress, DEFAULT_HEAD_LIMIT};

fn packets() -> Vec<Vec<u8>> {
    let dir = Path::new(uwsgi_red_testdata::vectors::DIR);
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("pkt_") && n.ends_with(".bin"))
        .collect();
    names.sort();
    names
        .iter()
        .map(|n| std::fs::read(dir.join(n)).unwrap())
        .collect()
}

/// What the network filter does per request: decode the head, read the
/// vars it labels with. Returns the head length.
fn decode(pkt: &[u8]) -> usize {
    match decode_head(pkt, DEFAULT_HEAD_LIMIT) {
        Ok(Progress::Head { head, consumed }) => {
            let vars = head.request_vars();
            black_box(vars.content_length());
            black_box(vars);
            consumed
        }
        other => panic!("captured packet failed to decode: {other:?}"),
    }
}

fn head_bytes(pkts: &[Vec<u8>]) -> u64 {
    pkts.iter().map(|p| decode(p) as u64).sum()
}

fn benches(c: &mut Criterion) {
    let pkts = packets();
    let bytes = head_bytes(&pkts);
    let mut g = c.benchmark_group("uwsgi");
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function("decode_captured_packets", |b| {
        b.iter(|| {
            for p in &pkts {
                black_box(decode(black_box(p)));
            }
        })
    });
    g.bench_function("decode_captured_packets_split_in_2", |b| {
        b.iter(|| {
            for p in &pkts {
                let mut d = HeadDecoder::default();
                let mid = p.len().min(200) / 2;
                black_box(d.feed(&p[..mid]).is_ok());
                black_box(matches!(d.feed(&p[mid..]), Ok(Progress::Head { .. })));
            }
        })
    });
    g.finish();
    let resp = std::fs::read(
        Path::new(uwsgi_red_testdata::vectors::DIR).join("resp_uwsgi_socket_200.bin"),
    )
    .unwrap();
    c.bench_function("uwsgi_response_status", |b| {
        b.iter(|| {
            let mut p = StatusParser::default();
            black_box(p.feed(black_box(&resp)).ok())
        })
    });
}

fn headline() {
    let pkts = packets();
    let bytes = head_bytes(&pkts) as f64;
    for _ in 0..2000 {
        for p in &pkts {
            black_box(decode(black_box(p)));
        }
    }
    let t = Instant::now();
    let mut rounds = 0u64;
    while t.elapsed().as_secs_f64() < 1.0 {
        for _ in 0..1000 {
            for p in &pkts {
                black_box(decode(black_box(p)));
            }
        }
        rounds += 1000;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "BENCH uwsgi_decode_native_mbps {:.1} MB/s",
        bytes * rounds as f64 / secs / 1e6
    );
    println!(
        "BENCH uwsgi_decode_native_ns_per_packet {:.1} ns",
        secs * 1e9 / (rounds as f64 * pkts.len() as f64)
    );
}

/// Worst cases, one pass each (no criterion: these are sizes, not
/// micro-benchmarks).
fn hostile() {
    let mut p = Vec::new();
    encode_head(0, 0, &[(&b"K"[..], &vec![b'v'; 65_530][..])], &mut p).unwrap();
    let t = Instant::now();
    let mut d = HeadDecoder::default();
    for b in p.chunks(1) {
        black_box(matches!(d.feed(b), Ok(Progress::Head { .. })));
    }
    println!(
        "BENCH uwsgi_decode_64k_head_bytewise_ns_per_byte {:.1} ns",
        t.elapsed().as_secs_f64() * 1e9 / p.len() as f64
    );
    let t = Instant::now();
    let mut budget = NameBudget::default();
    let mut name = String::new();
    for i in 0..1_000_000u32 {
        use std::fmt::Write;
        name.clear();
        let _ = write!(name, "myapp.worker.{}.custom_{i}", i % 7 + 1);
        if classify(&name, &["myapp"]).is_some() {
            black_box(budget.admit(&name));
        }
    }
    println!(
        "BENCH statsd_1m_distinct_names_ms {:.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    println!(
        "BENCH statsd_1m_distinct_names_overflow {} names",
        budget.overflow_total()
    );
}

criterion_group!(group, benches);

fn main() {
    group();
    Criterion::default().configure_from_args().final_summary();
    headline();
    hostile();
}
