//! Writes the jco fixture (every case with its native expected result) to
//! the path given as the only argument.
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

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: jco-fixture OUT.json");
        std::process::exit(2);
    };
    let text = serde_json::to_string(&uwsgi_red_wasmtime_host::fixture()).expect("JSON");
    if let Err(e) = std::fs::write(&path, text) {
        eprintln!("{path}: {e}");
        std::process::exit(1);
    }
}
