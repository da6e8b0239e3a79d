//! Per-call cost of the component boundary: `uwsgi.decode-head` on one
//! captured nginx packet through the component under wasmtime, against the
//! same implementation called natively. Prints `BENCH` lines (run by
//! bench/component.py). Bounded: a fixed number of calls per round.

use std::hint::black_box;
use std::time::{Duration, Instant};

use uwsgi_red_component::bindings::exports::uwsgi_red::core::uwsgi::Guest;
use uwsgi_red_component::Component;
use uwsgi_red_core::uwsgi::{decode_head, Progress, DEFAULT_HEAD_LIMIT};
use uwsgi_red_wasmtime_host::cases;
use uwsgi_red_wasmtime_host::wasm::{artifact, Host};

const CALLS: u32 = 5_000;
const ROUNDS: u32 = 5;

/// Best (lowest) mean time per call over the rounds.
fn best(mut f: impl FnMut()) -> Duration {
    (0..ROUNDS)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..CALLS {
                f();
            }
            t.elapsed() / CALLS
        })
        .min()
        .expect("ROUNDS > 0")
}

fn main() {
    let file = "pkt_get_query_many_headers.bin";
    let packet = cases::read(&cases::vectors_dir(), file);
    let mut host = Host::load().unwrap_or_else(|e| panic!("{e}"));
    let u = host.api.uwsgi_red_core_uwsgi();

    let wasm = best(|| {
        let r = u
            .call_decode_head(&mut host.store, black_box(&packet), None)
            .expect("wasmtime call");
        black_box(r.expect("captured packet decodes"));
    });
    let native = best(|| {
        black_box(
            Component::decode_head(black_box(packet.clone()), None)
                .expect("captured packet decodes"),
        );
    });
    let zero_copy = best(|| {
        let Ok(Progress::Head { head, .. }) = decode_head(black_box(&packet), DEFAULT_HEAD_LIMIT)
        else {
            panic!("captured packet decodes")
        };
        black_box(head.vars.iter().count());
    });
    let ns = |d: Duration| d.as_secs_f64() * 1e9;
    println!(
        "# {file}: {} bytes; {CALLS} calls x {ROUNDS} rounds, best round",
        packet.len()
    );
    println!("BENCH component_decode_head_ns {:.0} ns", ns(wasm));
    println!("BENCH native_decode_head_owned_ns {:.0} ns", ns(native));
    println!(
        "BENCH native_decode_head_zero_copy_ns {:.0} ns",
        ns(zero_copy)
    );
    println!("BENCH component_call_ratio {:.2} x", ns(wasm) / ns(native));
    let size = std::fs::metadata(artifact()).expect("artifact").len();
    println!("BENCH component_wasm_bytes {size} bytes");
}
