//! The data-driven cases: every file of `core/tests/vectors/` through every
//! WIT function that takes bytes or text, plus the targeted cases that
//! reach each error variant. A case is JSON (`call` + `args`) so the same
//! list drives the native run, the wasmtime run and the jco run.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

#[derive(Debug, Clone)]
pub struct Case {
    /// Unique and readable: `call file[detail]`.
    pub id: String,
    /// `interface.function`, as in the WIT.
    pub call: &'static str,
    pub args: Value,
}

pub fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../core/tests/vectors")
}

/// Every vector file name, sorted.
pub fn vector_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .into_string()
                .expect("UTF-8 file name")
        })
        .filter(|n| n != "SOURCES.md")
        .collect();
    v.sort();
    v
}

pub fn read(dir: &Path, file: &str) -> Vec<u8> {
    fs::read(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// `args.file`, cut to `args.prefix` bytes when given.
pub fn input(dir: &Path, args: &Value) -> Vec<u8> {
    let mut b = read(dir, args["file"].as_str().expect("args.file"));
    if let Some(p) = args["prefix"].as_u64() {
        b.truncate(p as usize);
    }
    b
}

/// Line `args.line` of `args.file`, split on `\n` like JavaScript's `split`.
pub fn line(dir: &Path, args: &Value) -> String {
    let text =
        String::from_utf8(read(dir, args["file"].as_str().expect("args.file"))).expect("UTF-8 log");
    let i = args["line"].as_u64().expect("args.line") as usize;
    text.split('\n').nth(i).expect("line index").to_string()
}

fn is_text(name: &str) -> bool {
    name.ends_with(".log") || name.ends_with(".txt")
}

/// Recorder options of the replay cases: a small cap so the overflow
/// series and the dropped counter are exercised by real logs.
pub fn replay_options() -> Value {
    json!({
        "service": "app",
        "routePatterns": ["/objects/{id}"],
        "collapseIds": true,
        "maxSeries": 6,
        "bucketsSeconds": [0.001, 0.01, 0.1, 1.0, 2.5],
        "protocol": "uwsgi",
    })
}

/// The two forms of the head decoder: copies and spans.
pub const HEAD_FORMS: [&str; 2] = ["uwsgi.decode-head", "uwsgi.decode-head-spans"];

pub fn all(dir: &Path) -> Vec<Case> {
    let mut out = Vec::new();
    let mut add = |call: &'static str, detail: String, args: Value| {
        out.push(Case {
            id: format!("{call} {detail}"),
            call,
            args,
        });
    };
    let default_map = json!({ "perCore": false, "uwsgiMetrics": true });
    let wide_map = json!({ "perCore": true, "uwsgiMetrics": false });

    for f in vector_files(dir) {
        let bytes = read(dir, &f);
        // Both forms of the head decoder get every input below.
        for call in HEAD_FORMS {
            add(call, f.clone(), json!({ "file": f, "limit": null }));
        }
        add("uwsgi.response-status", f.clone(), json!({ "file": f }));
        add("stats.decode", f.clone(), json!({ "file": f }));
        add(
            "stats.families",
            f.clone(),
            json!({ "file": f, "target": "t1", "options": default_map }),
        );
        add(
            "stats.prometheus-text",
            f.clone(),
            json!({ "file": f, "target": "t1", "options": default_map }),
        );

        if f.starts_with("pkt_") && f.ends_with(".bin") {
            let half = bytes.len() / 2;
            for call in HEAD_FORMS {
                add(
                    call,
                    format!("{f}[..{half}]"),
                    json!({ "file": f, "prefix": half }),
                );
                add(call, format!("{f}[..2]"), json!({ "file": f, "prefix": 2 }));
                add(
                    call,
                    format!("{f} limit 64"),
                    json!({ "file": f, "limit": 64 }),
                );
            }
            add("uwsgi.encode-head", f.clone(), json!({ "file": f }));
        }
        if f.starts_with("resp_") {
            for p in [0usize, 5, 12] {
                add(
                    "uwsgi.response-status",
                    format!("{f}[..{p}]"),
                    json!({ "file": f, "prefix": p }),
                );
            }
        }
        if f.starts_with("stats_") {
            add(
                "stats.families",
                format!("{f} per-core"),
                json!({ "file": f, "target": "t2", "options": wide_map }),
            );
            add(
                "stats.prometheus-text",
                format!("{f} per-core"),
                json!({ "file": f, "target": "t2", "options": wide_map }),
            );
            if let Some(p) = bytes.len().checked_sub(40) {
                add(
                    "stats.decode",
                    format!("{f}[..{p}]"),
                    json!({ "file": f, "prefix": p }),
                );
            }
        }
        if is_text(&f) {
            let text = String::from_utf8(bytes).unwrap_or_else(|_| panic!("{f} is not UTF-8"));
            for (i, _) in text.split('\n').enumerate() {
                add(
                    "logs.parse-line",
                    format!("{f}:{}", i + 1),
                    json!({ "file": f, "line": i }),
                );
            }
            if f.ends_with(".log") {
                add(
                    "red.replay",
                    f.clone(),
                    json!({ "file": f, "options": replay_options() }),
                );
            }
        }
    }
    add("uwsgi.modifier-name", "0..=255".into(), json!({}));
    add("red.default-options", String::new(), json!({}));
    let mut bad = replay_options();
    bad["maxSeries"] = json!(0);
    add(
        "red.create",
        "max-series 0".into(),
        json!({ "options": bad }),
    );
    let mut bad = replay_options();
    bad["bucketsSeconds"] = json!([2.0, 1.0]);
    add(
        "red.create",
        "buckets not increasing".into(),
        json!({ "options": bad }),
    );
    let mut bad = replay_options();
    bad["routePatterns"] = json!(["/ok", "no-slash"]);
    add(
        "red.create",
        "bad template".into(),
        json!({ "options": bad }),
    );
    let mut bad = replay_options();
    bad["service"] = json!("");
    add(
        "red.create",
        "empty service".into(),
        json!({ "options": bad }),
    );
    out
}

/// Owned `(key, value)` pairs, as `encode-head` takes them.
pub type OwnedVars = Vec<(Vec<u8>, Vec<u8>)>;

/// The vars of a decoded packet, for `encode-head`: `(modifier1, modifier2, vars)`.
pub fn packet_vars(bytes: &[u8]) -> (u8, u8, OwnedVars) {
    use uwsgi_red_core::uwsgi::{decode_head, Progress, DEFAULT_HEAD_LIMIT};
    match decode_head(bytes, DEFAULT_HEAD_LIMIT) {
        Ok(Progress::Head { head, .. }) => (
            head.header.modifier1,
            head.header.modifier2,
            head.vars
                .iter()
                .map(|v| (v.key.to_vec(), v.value.to_vec()))
                .collect(),
        ),
        other => panic!("captured packet does not decode: {other:?}"),
    }
}

/// Arguments of `red.recorder.record` for one parsed log line: the path as
/// route, the duration in seconds (0 when the format logs none).
pub fn record_args(
    method: &str,
    path: &str,
    status: u16,
    duration_us: Option<u64>,
) -> (String, String, u16, f64) {
    (
        method.to_string(),
        path.to_string(),
        status,
        duration_us.map_or(0.0, |us| us as f64 / 1e6),
    )
}
