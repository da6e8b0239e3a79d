//! Decodes the captured nginx packets in a loop and prints the decode
//! throughput. Built for wasm32-wasip1 and run under wasmtime by
//! `bench/uwsgi_decode_wasm.py`; runs natively as well for comparison.
//!
//! Output: `MBPS <v>` and `NS_PER_PACKET <v>` (head bytes only: the body
//! is skipped by arithmetic, never read).
//! Arguments: `[min_seconds]` (default 1.0).
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

use uwsgi_red_core::uwsgi::{decode_head, Progress, DEFAULT_HEAD_LIMIT};

const PACKETS: [&[u8]; 10] = uwsgi_red_testdata::vectors::UWSGI_PACKETS;

/// What the network filter does per request: decode the head and read the
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

fn main() {
    let min_secs: f64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1.0);
    let round_bytes: usize = PACKETS.iter().map(|p| decode(p)).sum();
    // Warm-up, then whole rounds until the time is up.
    for _ in 0..1000 {
        for p in PACKETS {
            black_box(decode(black_box(p)));
        }
    }
    let t = Instant::now();
    let mut rounds = 0u64;
    loop {
        for _ in 0..1000 {
            for p in PACKETS {
                black_box(decode(black_box(p)));
            }
        }
        rounds += 1000;
        if t.elapsed().as_secs_f64() >= min_secs {
            break;
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let bytes = round_bytes as f64 * rounds as f64;
    println!("MBPS {:.1}", bytes / secs / 1e6);
    println!(
        "NS_PER_PACKET {:.1}",
        secs * 1e9 / (rounds as f64 * PACKETS.len() as f64)
    );
}
