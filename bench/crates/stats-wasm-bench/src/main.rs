//! Decode + map (+ Prometheus text for the 1 MB document) of a stats document
//! in a loop, timed with the WASI clock. Built for wasm32-wasip1 and run under
//! wasmtime by `bench/stats_decode_wasm.py` and `bench/stats_1mb.py`; the same
//! binary runs natively so both sides come from one code path.
//!
//! `stats-wasm-bench [iterations] [small|1mb|1mb-owned|hostile|hostile-owned]` prints
//! `iterations=<n> total_ns=<t> doc_bytes=<b> out_bytes=<o>` (fastest of 15 rounds).
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
use std::time::Instant;

use uwsgi_red_core::stats::families::{encode_text, map_document, MapOptions};
use uwsgi_red_core::stats::{decode, scrape, DEFAULT_MAX_DOCUMENT_BYTES};
use uwsgi_red_testdata::{stats, vectors, STATS_1MB};

/// The largest captured test vector (4 × 4).
const SMALL: &[u8] = vectors::STATS_4X4_LOAD_HTTP;
const MB: &[u8] = STATS_1MB;

#[derive(Clone, Copy)]
enum Path {
    /// Owned decode + map, no text (the small-vector figure since the start).
    DecodeMap,
    /// Owned decode + `map_document` + `encode_text`.
    Owned,
    /// `stats::scrape`: borrowed view straight into the text encoder.
    Fast,
}

/// One scrape; returns the output size.
fn once(doc: &[u8], path: Path, opts: &MapOptions) -> usize {
    match path {
        Path::Fast => scrape(black_box(doc), "app1", opts, DEFAULT_MAX_DOCUMENT_BYTES)
            .map_or(0, |s| s.text.len()),
        Path::DecodeMap | Path::Owned => {
            let Ok(d) = decode(black_box(doc)) else {
                return 0;
            };
            let fams = map_document(&d.document, "app1", opts);
            match path {
                Path::Owned => encode_text(&fams).len(),
                _ => fams.len(),
            }
        }
    }
}

fn run(doc: &[u8], path: Path, n: u32) -> (u128, usize) {
    let opts = MapOptions::default();
    let mut out = 0;
    let t = Instant::now();
    for _ in 0..n {
        out = black_box(once(doc, path, &opts));
    }
    (t.elapsed().as_nanos(), out)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(2000);
    let mode = args.next();
    // Generated only when asked for: ~10 MB.
    let hostile = match mode.as_deref() {
        Some(m) if m.starts_with("hostile") => stats::hostile(),
        _ => Vec::new(),
    };
    let (doc, path) = match mode.as_deref() {
        Some("1mb") => (MB, Path::Fast),
        Some("1mb-owned") => (MB, Path::Owned),
        Some("hostile") => (hostile.as_slice(), Path::Fast),
        Some("hostile-owned") => (hostile.as_slice(), Path::Owned),
        _ => (SMALL, Path::DecodeMap),
    };
    // Warm-up (JIT tiers, allocator), then the fastest of 15 rounds: on a
    // shared, loaded machine the wall clock of a slow round mostly measures
    // other processes, and the fastest round is the closest to the real cost.
    run(doc, path, n / 10 + 1);
    let (total, out) = (0..15).map(|_| run(doc, path, n)).min().unwrap_or_default();
    println!(
        "iterations={n} total_ns={total} doc_bytes={} out_bytes={out}",
        doc.len()
    );
}
