//! Decode + map of the largest captured stats document in a loop, timed
//! with the WASI clock. Built for wasm32-wasip1 and run under wasmtime by
//! `bench/stats_decode_wasm.py`; it also runs natively for comparison.
//! Prints `iterations=<n> total_ns=<t> doc_bytes=<b>` for the driver.

use std::hint::black_box;
use std::time::Instant;

use uwsgi_red_core::stats::decode;
use uwsgi_red_core::stats::families::{map_document, MapOptions};

const DOC: &[u8] = include_bytes!("../../../core/tests/vectors/stats_b_4x4_load_http.bin");

fn run(n: u32) -> u128 {
    let opts = MapOptions::default();
    let t = Instant::now();
    for _ in 0..n {
        let d = decode(black_box(DOC)).expect("vector decodes");
        black_box(map_document(&d.document, "app1", &opts));
    }
    t.elapsed().as_nanos()
}

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    // Warm-up (JIT tiers, allocator), then the median of 5 rounds: the machine is shared and noisy.
    run(n / 10 + 1);
    let mut rounds: Vec<u128> = (0..5).map(|_| run(n)).collect();
    rounds.sort_unstable();
    println!(
        "iterations={n} total_ns={} doc_bytes={}",
        rounds[2],
        DOC.len()
    );
}
