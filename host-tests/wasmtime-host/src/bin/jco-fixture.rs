//! Writes the jco fixture (every case with its native expected result) to
//! the path given as the only argument.

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
