//! The otelwasm guest ABI, and nothing else: host imports from module
//! `opentelemetry.io/wasm`, the exports the host calls, and the buffer
//! protocol. A new ABI version is a change to this file only.
//!
//! Buffer protocol: `current*`/`getPluginConfig(buf, limit)` copy the payload
//! into `buf` and return its length, or return 0 when it does not fit. An
//! empty payload also reads as 0, so the guest grows its buffer ×4 and
//! retries up to a cap. A 0 at the cap is "empty, or larger than the cap":
//! the guest cannot tell which, so it never answers with an empty batch
//! (that would silently replace a large one); it returns an error status and
//! the host keeps its input.
#![allow(unsafe_code)] // FFI with the host is unsafe by nature; confined here.

use std::cell::Cell;
use std::io::Write;
use std::sync::OnceLock;

use crate::status::{log_line, Counters};
use crate::{
    load_config, process_logs, process_metrics, LoadedConfig, LogSeries, NameBudget, Outcome,
    Refusal,
};

#[link(wasm_import_module = "opentelemetry.io/wasm")]
extern "C" {
    #[link_name = "currentMetrics"]
    fn current_metrics(buf: *mut u8, limit: u32) -> u32;
    #[link_name = "currentLogs"]
    fn current_logs(buf: *mut u8, limit: u32) -> u32;
    #[link_name = "getPluginConfig"]
    fn get_plugin_config(buf: *mut u8, limit: u32) -> u32;
    #[link_name = "setResultMetrics"]
    fn set_result_metrics(buf: *const u8, len: u32);
    #[link_name = "setResultLogs"]
    fn set_result_logs(buf: *const u8, len: u32);
    #[link_name = "setResultStatusReason"]
    fn set_result_status_reason(buf: *const u8, len: u32);
}

type Fetch = unsafe extern "C" fn(*mut u8, u32) -> u32;
type SetResult = unsafe extern "C" fn(*const u8, u32);

const STATUS_OK: u32 = 0;
/// otelwasm: the processor returns its input with an error (logged by the
/// Collector); no result is set, so nothing is replaced.
const STATUS_ERROR: u32 = 1;
const TELEMETRY_METRICS: u32 = 1 << 0;
const TELEMETRY_LOGS: u32 = 1 << 1;

const FIRST_BUFFER: usize = 64 * 1024;
/// Largest batch the guest reads (4× the rewrite limit: those between the
/// two pass through unchanged).
const MAX_READ: usize = 4 * crate::MAX_REWRITE_BYTES;
const MAX_CONFIG: usize = 1024 * 1024;

thread_local! {
    // Kept between calls: the buffer grows to the largest batch seen once.
    static BUFFER: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
    static REFUSALS: Cell<Counters> = Cell::new(Counters::default());
    // The StatsD names this processor rewrites, for its lifetime.
    static NAMES: Cell<NameBudget> = Cell::new(NameBudget::default());
    // Which request-log label sets have a series, for its lifetime.
    static SERIES: Cell<LogSeries> = Cell::new(LogSeries::default());
}

static CONFIG: OnceLock<LoadedConfig> = OnceLock::new();

/// Reads one host payload into `buf` (whose length becomes the payload's),
/// growing it on the "does not fit" 0. Err: not read, and why.
fn read(buf: &mut Vec<u8>, fetch: Fetch, max: usize) -> Result<(), String> {
    buf.clear();
    let mut want = FIRST_BUFFER.min(max).max(buf.capacity().min(max));
    loop {
        if buf.capacity() < want {
            buf.try_reserve_exact(want)
                .map_err(|_| format!("could not allocate a {want}-byte buffer"))?;
        }
        let limit = u32::try_from(buf.capacity()).unwrap_or(u32::MAX);
        // SAFETY: the host writes at most `limit` (= capacity) bytes at the
        // start of `buf`'s allocation.
        let n = unsafe { fetch(buf.as_mut_ptr(), limit) } as usize;
        if n > 0 {
            if n > buf.capacity() {
                return Err(format!("host reported {n} bytes for a {limit}-byte buffer"));
            }
            // SAFETY: the host initialised the first n <= capacity bytes.
            unsafe { buf.set_len(n) };
            return Ok(());
        }
        if want >= max {
            return Err(format!(
                "the host answered 0 bytes up to a {max}-byte buffer: the batch is empty or larger than that"
            ));
        }
        want = want.saturating_mul(4).min(max);
    }
}

/// The thread's buffer, lent for one call.
fn with_buffer<R>(f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    BUFFER.with(|cell| {
        let mut buf = cell.take();
        let r = f(&mut buf);
        // Past the rewrite limit the batch only passed through: do not keep
        // a buffer that size for the plugin's lifetime.
        if buf.capacity() > crate::MAX_REWRITE_BYTES {
            buf = Vec::new();
        }
        cell.set(buf);
        r
    })
}

fn config() -> &'static LoadedConfig {
    CONFIG.get_or_init(|| {
        with_buffer(|buf| match read(buf, get_plugin_config, MAX_CONFIG) {
            Ok(()) => load_config(buf),
            Err(e) => Err(format!("plugin_config not read: {e}")),
        })
    })
}

/// Counts `n` refusals of a kind, hands the reason to the host and writes it
/// to stderr (fd 2, which otelwasm connects to the Collector's).
fn report(signal: &str, refusal: Refusal, n: u64, reason: &str) {
    // SAFETY: pointer and length describe a live Rust string.
    unsafe {
        set_result_status_reason(reason.as_ptr(), len32(reason.as_bytes()));
    }
    let (before, count) = REFUSALS.with(|c| {
        let mut counters = c.get();
        let n = counters.record_n(refusal, n);
        c.set(counters);
        n
    });
    if Counters::should_log_range(before, count) {
        // Nowhere to report a failed log write: the batch goes on.
        let _ = writeln!(
            std::io::stderr(),
            "{}",
            log_line(signal, refusal, count, reason)
        );
    }
}

fn len32(b: &[u8]) -> u32 {
    u32::try_from(b.len()).unwrap_or(u32::MAX)
}

fn process(
    signal: &str,
    fetch: Fetch,
    set: SetResult,
    run: impl FnOnce(&LoadedConfig, &[u8]) -> Outcome,
) -> u32 {
    let cfg = config();
    let out = with_buffer(|buf| read(buf, fetch, MAX_READ).map(|()| run(cfg, buf)));
    match out {
        Ok(out) => {
            // SAFETY: pointer and length describe a live Rust vector.
            unsafe { set(out.payload.as_ptr(), len32(&out.payload)) };
            if let (Some(refusal), Some(reason)) = (out.refusal, &out.status_reason) {
                report(signal, refusal, out.refused, reason);
            }
            STATUS_OK
        }
        Err(e) => {
            let reason = format!("{signal} batch not read, left to the host: {e}");
            report(signal, Refusal::Unreadable, 1, &reason);
            STATUS_ERROR
        }
    }
}

#[no_mangle]
pub extern "C" fn getSupportedTelemetry() -> u32 {
    TELEMETRY_METRICS | TELEMETRY_LOGS
}

#[no_mangle]
pub extern "C" fn processMetrics() -> u32 {
    NAMES.with(|cell| {
        let mut names = cell.take();
        let status = process(
            "metrics",
            current_metrics,
            set_result_metrics,
            |cfg, input| process_metrics(cfg, &mut names, input),
        );
        cell.set(names);
        status
    })
}

#[no_mangle]
pub extern "C" fn processLogs() -> u32 {
    SERIES.with(|cell| {
        let mut series = cell.take();
        let status = process("logs", current_logs, set_result_logs, |cfg, input| {
            process_logs(cfg, &mut series, input)
        });
        cell.set(series);
        status
    })
}
