//! The otelwasm guest ABI, and nothing else: host imports from module
//! `opentelemetry.io/wasm`, the exports the host calls, and the buffer
//! protocol. A new ABI version is a change to this file only.
//!
//! Buffer protocol: `current*`/`getPluginConfig(buf, limit)` copy the payload
//! into `buf` and return its length, or return 0 when it does not fit. An
//! empty payload also reads as 0, so the guest grows its buffer and retries
//! up to a cap, then takes 0 as "empty".
#![allow(unsafe_code)] // FFI with the host is unsafe by nature; confined here.

use std::cell::RefCell;
use std::sync::OnceLock;

use crate::{load_config, process_logs, process_metrics, LoadedConfig, Outcome};

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

const STATUS_OK: u32 = 0;
const TELEMETRY_METRICS: u32 = 1 << 0;
const TELEMETRY_LOGS: u32 = 1 << 1;

const FIRST_BUFFER: usize = 64 * 1024;
/// Past this a payload is taken as empty rather than grown for.
const MAX_PAYLOAD: usize = 64 * 1024 * 1024;
const MAX_CONFIG: usize = 1024 * 1024;

thread_local! {
    // Kept between calls: the buffer grows to the largest batch seen once.
    static BUFFER: RefCell<Vec<u8>> = RefCell::new(vec![0; FIRST_BUFFER]);
}

static CONFIG: OnceLock<LoadedConfig> = OnceLock::new();

/// Reads one host payload, growing the buffer on the "does not fit" 0.
fn read(fetch: unsafe extern "C" fn(*mut u8, u32) -> u32, max: usize) -> Vec<u8> {
    BUFFER.with(|cell| {
        let mut buf = cell.borrow_mut();
        loop {
            let limit = u32::try_from(buf.len()).unwrap_or(u32::MAX);
            // SAFETY: the host writes at most `limit` bytes into `buf`.
            let n = unsafe { fetch(buf.as_mut_ptr(), limit) } as usize;
            if n > 0 {
                return buf[..n.min(buf.len())].to_vec();
            }
            if buf.len() >= max {
                // Taken as empty: give the memory back rather than keep a
                // cap-sized buffer for the plugin's lifetime.
                buf.truncate(FIRST_BUFFER);
                buf.shrink_to_fit();
                return Vec::new();
            }
            let grown = (buf.len() * 4).min(max);
            buf.resize(grown, 0);
        }
    })
}

fn config() -> &'static LoadedConfig {
    CONFIG.get_or_init(|| load_config(&read(get_plugin_config, MAX_CONFIG)))
}

fn answer(out: &Outcome, set: unsafe extern "C" fn(*const u8, u32)) -> u32 {
    // SAFETY: pointers and lengths describe live Rust slices.
    unsafe {
        set(out.payload.as_ptr(), out.payload.len() as u32);
        if let Some(reason) = &out.status_reason {
            set_result_status_reason(reason.as_ptr(), reason.len() as u32);
        }
    }
    STATUS_OK
}

#[no_mangle]
pub extern "C" fn getSupportedTelemetry() -> u32 {
    TELEMETRY_METRICS | TELEMETRY_LOGS
}

#[no_mangle]
pub extern "C" fn processMetrics() -> u32 {
    let input = read(current_metrics, MAX_PAYLOAD);
    answer(&process_metrics(config(), &input), set_result_metrics)
}

#[no_mangle]
pub extern "C" fn processLogs() -> u32 {
    let input = read(current_logs, MAX_PAYLOAD);
    answer(&process_logs(config(), &input), set_result_logs)
}
