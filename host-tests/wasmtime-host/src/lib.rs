//! Host-side checks of `dist/uwsgi-red.component.wasm`.
//!
//! - [`cases`]: every core vector through every WIT function, as JSON cases;
//! - [`native`]: the expected result of each case, from the component
//!   crate's implementation compiled natively over native core;
//! - [`js`]: the canonical JSON (jco's JavaScript shapes) both sides are
//!   compared in, also written as the jco fixture (`bin/jco-fixture`);
//! - `wasm` (feature `host`): the same cases through the component under
//!   wasmtime. The feature keeps wasmtime out of `cargo test --workspace`,
//!   which runs before `dist/` is built; host-tests/test_component.py runs
//!   `cargo test --features host --profile host-test` once it exists.
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

pub mod cases;
pub mod js;
pub mod native;
#[cfg(feature = "host")]
pub mod wasm;

use serde_json::{json, Value};

/// The jco fixture: every case with its native expected result.
pub fn fixture() -> Value {
    let dir = cases::vectors_dir();
    let cases: Vec<Value> = cases::all(&dir)
        .iter()
        .map(|c| json!({ "id": c.id, "call": c.call, "args": c.args, "expected": native::run(&dir, c) }))
        .collect();
    json!({ "vectors": dir.canonicalize().expect("vectors dir").to_string_lossy(), "cases": cases })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_cover_every_vector_and_function() {
        let dir = cases::vectors_dir();
        let all = cases::all(&dir);
        for f in cases::vector_files(&dir) {
            assert!(
                all.iter().any(|c| c.args["file"] == f.as_str()),
                "{f} is in no case"
            );
        }
        let calls: std::collections::BTreeSet<_> = all.iter().map(|c| c.call).collect();
        // Every WIT function; `red.replay` drives every recorder method.
        let every = [
            "logs.parse-line",
            "red.create",
            "red.default-options",
            "red.replay",
            "stats.decode",
            "stats.families",
            "stats.prometheus-text",
            "uwsgi.decode-head",
            "uwsgi.decode-head-spans",
            "uwsgi.encode-head",
            "uwsgi.modifier-name",
            "uwsgi.response-status",
        ];
        assert_eq!(calls, every.into_iter().collect());
        let ids: std::collections::BTreeSet<_> = all.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids.len(), all.len(), "case ids are unique");
    }

    #[test]
    fn native_results_reach_every_variant_kind() {
        // The vectors must exercise successes and errors of each decoder,
        // or the component comparison would prove little.
        let f = fixture();
        let cases = f["cases"].as_array().unwrap();
        let has = |call: &str, pred: &dyn Fn(&Value) -> bool| {
            cases
                .iter()
                .any(|c| c["call"] == call && pred(&c["expected"]))
        };
        for (call, tag) in [
            ("uwsgi.decode-head", "truncated"),
            ("uwsgi.decode-head", "unknown-modifier"),
            ("uwsgi.decode-head", "datasize-too-large"),
            ("stats.decode", "not-json"),
            ("stats.decode", "truncated"),
        ] {
            assert!(
                has(call, &|e| e["err"]["tag"] == tag),
                "{call} never gives {tag}"
            );
        }
        assert!(has("uwsgi.decode-head", &|e| e["ok"]["method"] == "POST"));
        assert!(has("uwsgi.response-status", &|e| e["ok"]["code"] == 404));
        assert!(
            has("stats.decode", &|e| e["ok"]["repairs"] != 0),
            "the backslash cwd is repaired"
        );
        assert!(has("logs.parse-line", &|e| e["format"] == "gunicorn-millis"));
        assert!(has("logs.parse-line", &|e| e["format"] == "uwsgi"));
        assert!(
            has("red.replay", &|e| e["dropped"] != "0"),
            "a replay overflows the cap"
        );
        assert!(has("red.create", &|e| e["err"]["path"] == "max_series"));
    }
}
