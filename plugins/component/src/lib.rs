//! The core decoders as a WebAssembly component (`wit/uwsgi-red.wit`).
//!
//! A thin adapter: each WIT function calls one core function and copies its
//! result into the generated WIT types. No protocol logic lives here; the
//! one addition is [`red_families`], which turns a `RedAggregate` into
//! metric families because core exposes it only as Prometheus text.
//!
//! One module per WIT interface: `uwsgi` (with `head_spans`), `stats`,
//! `logs`, `red` (with `red_families`), and `metrics` for the shared types.

// Runs inside the user's browser page / component host: no input may reach
// a panic: the workspace's panic-free lints (root Cargo.toml) apply.

mod head_spans;
mod logs;
mod metrics;
mod red;
pub mod red_families;
mod stats;
mod uwsgi;

/// Generated ABI glue: lifting and lowering are `unsafe` by nature, so the
/// workspace's `unsafe_code = deny` is lifted for this module only.
#[allow(unsafe_code)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "uwsgi-red",
    });

    // Natively the crate is a library of the same code (the wasmtime test
    // crate uses it for expected results); the C-ABI export symbols, whose
    // names hold `:` and `@`, only make sense in the component.
    #[cfg(target_arch = "wasm32")]
    use super::Component;
    #[cfg(target_arch = "wasm32")]
    export!(Component with_types_in self);
}

/// The implementation of every exported interface. Public so a native host
/// (the wasmtime test crate) can call the same code without Wasm to get the
/// expected results; the `red.recorder` resource needs a component runtime,
/// so natively use [`RecorderCore`].
#[derive(Debug)]
pub struct Component;

pub use red::{Recorder, RecorderCore};

/// WIT lengths are u32; a component's memory is 32-bit, so a core `usize`
/// always fits.
pub(crate) fn u32_of(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

pub(crate) fn u64_of(n: usize) -> u64 {
    n as u64
}
