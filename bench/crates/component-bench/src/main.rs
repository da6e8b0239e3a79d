//! Per-call cost of the component boundary: `uwsgi.decode-head-spans` (the
//! recommended form) and `uwsgi.decode-head` (the text form) on one captured
//! nginx packet through the component under wasmtime, each against the same
//! implementation called natively, so each ratio compares like with like:
//! the native side produces the very values the wasmtime host receives.
//! Prints `BENCH` lines (run by bench/component.py). Bounded: a fixed number
//! of calls per round, the variants interleaved round by round so machine
//! load hits them alike.
//!
//! `component-bench --callgrind <variant> <calls>` runs one variant `calls`
//! times inside `cg_window`, for `valgrind --tool=callgrind
//! --toggle-collect=cg_window`: instructions per call, independent of load.

use std::hint::black_box;
use std::time::{Duration, Instant};

use uwsgi_red_component::bindings::exports::uwsgi_red::core::uwsgi::Guest;
use uwsgi_red_component::Component;
use uwsgi_red_core::uwsgi::{decode_head, Progress, DEFAULT_HEAD_LIMIT};
use uwsgi_red_wasmtime_host::cases;
use uwsgi_red_wasmtime_host::wasm::{artifact, Host};

const CALLS: u32 = 5_000;
const ROUNDS: u32 = 5;
const FILE: &str = "pkt_get_query_many_headers.bin";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Variant {
    WasmSpans,
    NativeSpans,
    WasmText,
    NativeText,
    ZeroCopy,
    /// `response-status` of an empty response: no bytes to copy, no work,
    /// a result with nothing in it: the fixed cost of one component call.
    WasmEmpty,
}

const VARIANTS: [(Variant, &str); 6] = [
    (Variant::WasmSpans, "wasm-spans"),
    (Variant::NativeSpans, "native-spans"),
    (Variant::WasmText, "wasm-text"),
    (Variant::NativeText, "native-text"),
    (Variant::ZeroCopy, "zero-copy"),
    (Variant::WasmEmpty, "wasm-empty"),
];

/// One call of `v`; `host` is loaded when a wasm variant runs.
fn call(v: Variant, host: &mut Option<Host>, packet: &[u8]) {
    match v {
        Variant::WasmSpans => {
            let h = host.as_mut().expect("host loaded");
            let r = h
                .api
                .uwsgi_red_core_uwsgi()
                .call_decode_head_spans(&mut h.store, black_box(packet), None)
                .expect("wasmtime call");
            black_box(r.expect("captured packet decodes"));
        }
        Variant::WasmText => {
            let h = host.as_mut().expect("host loaded");
            let r = h
                .api
                .uwsgi_red_core_uwsgi()
                .call_decode_head(&mut h.store, black_box(packet), None)
                .expect("wasmtime call");
            black_box(r.expect("captured packet decodes"));
        }
        Variant::WasmEmpty => {
            let h = host.as_mut().expect("host loaded");
            let r = h
                .api
                .uwsgi_red_core_uwsgi()
                .call_response_status(&mut h.store, black_box(&[]))
                .expect("wasmtime call");
            black_box(r.expect("an empty response is no error"));
        }
        // The component receives its own copy of the packet (the
        // canonical ABI lowers it), so the native side clones it too.
        Variant::NativeSpans => {
            black_box(
                Component::decode_head_spans(black_box(packet.to_vec()), None)
                    .expect("captured packet decodes"),
            );
        }
        Variant::NativeText => {
            black_box(
                Component::decode_head(black_box(packet.to_vec()), None)
                    .expect("captured packet decodes"),
            );
        }
        Variant::ZeroCopy => {
            let Ok(Progress::Head { head, .. }) =
                decode_head(black_box(packet), DEFAULT_HEAD_LIMIT)
            else {
                panic!("captured packet decodes")
            };
            black_box(head.vars.iter().count());
        }
    }
}

/// The measured window of a callgrind run (collection toggles on its entry
/// and exit).
#[inline(never)]
fn cg_window(v: Variant, host: &mut Option<Host>, packet: &[u8], calls: u32) {
    for _ in 0..calls {
        call(v, host, packet);
    }
}

fn load(v: Variant) -> Option<Host> {
    matches!(
        v,
        Variant::WasmSpans | Variant::WasmText | Variant::WasmEmpty
    )
    .then(|| Host::load().unwrap_or_else(|e| panic!("{e}")))
}

fn callgrind(args: &[String]) {
    let [name, calls] = args else {
        panic!("usage: component-bench --callgrind <variant> <calls>")
    };
    let v = VARIANTS
        .iter()
        .find(|(_, n)| n == name)
        .unwrap_or_else(|| panic!("unknown variant {name}"))
        .0;
    let calls: u32 = calls.parse().expect("calls");
    let packet = cases::read(&cases::vectors_dir(), FILE);
    let mut host = load(v);
    // Warm-up outside the window: first-call lazy work is not per call.
    call(v, &mut host, &packet);
    cg_window(v, &mut host, &packet, calls);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--callgrind") {
        return callgrind(&args[1..]);
    }
    let packet = cases::read(&cases::vectors_dir(), FILE);
    let mut host = load(Variant::WasmSpans);
    let mut best = [Duration::MAX; VARIANTS.len()];
    for _ in 0..ROUNDS {
        for (slot, (v, _)) in best.iter_mut().zip(VARIANTS) {
            let t = Instant::now();
            for _ in 0..CALLS {
                call(v, &mut host, &packet);
            }
            *slot = (*slot).min(t.elapsed() / CALLS);
        }
    }
    let ns = |v: Variant| {
        let i = VARIANTS.iter().position(|(x, _)| *x == v).expect("variant");
        best[i].as_secs_f64() * 1e9
    };
    println!(
        "# {FILE}: {} bytes; {CALLS} calls x {ROUNDS} rounds, variants interleaved, best round",
        packet.len()
    );
    println!(
        "BENCH component_decode_head_spans_ns {:.0} ns",
        ns(Variant::WasmSpans)
    );
    println!(
        "BENCH native_decode_head_spans_ns {:.0} ns",
        ns(Variant::NativeSpans)
    );
    println!(
        "BENCH component_decode_head_ns {:.0} ns",
        ns(Variant::WasmText)
    );
    println!(
        "BENCH native_decode_head_owned_ns {:.0} ns",
        ns(Variant::NativeText)
    );
    println!(
        "BENCH native_decode_head_zero_copy_ns {:.0} ns",
        ns(Variant::ZeroCopy)
    );
    println!(
        "BENCH component_empty_call_ns {:.0} ns",
        ns(Variant::WasmEmpty)
    );
    println!(
        "BENCH component_call_ratio {:.2} x",
        ns(Variant::WasmSpans) / ns(Variant::NativeSpans)
    );
    println!(
        "BENCH component_text_call_ratio {:.2} x",
        ns(Variant::WasmText) / ns(Variant::NativeText)
    );
    let size = std::fs::metadata(artifact()).expect("artifact").len();
    println!("BENCH component_wasm_bytes {size} bytes");
}
