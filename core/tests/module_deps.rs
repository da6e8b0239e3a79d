//! The direction of core's top-level modules, checked from the source:
//! every `crate::<module>` path in `core/src/<module>.rs` and
//! `core/src/<module>/**` (code and its unit tests alike, comments aside)
//! must be an edge of `ALLOWED`, and
//! `ALLOWED` itself must have no cycle. A new module or a new dependency is
//! a line in the table, stated on purpose; a cycle cannot be stated.
//!
//! Run alone with `cargo test -p uwsgi-red-core --test module_deps`.
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

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Each top-level module and the modules it may use. `config`, `prom` and
/// `logs` are machinery that knows no domain; the domains (`red`, `stats`,
/// `uwsgi`, `statsd`) build on them.
const ALLOWED: &[(&str, &[&str])] = &[
    ("config", &[]),
    ("prom", &[]),
    ("logs", &[]),
    ("scrape_access", &["config"]),
    ("red", &["config", "prom", "scrape_access"]),
    ("lease", &["red"]),
    ("statsd", &["config", "logs", "red"]),
    ("stats", &["config", "prom", "red", "scrape_access"]),
    ("uwsgi", &["config", "red"]),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("core/src is readable") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`None` for the crate root).
fn owner(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).expect("file under src");
    let first = rel.components().next()?.as_os_str().to_str()?.to_string();
    match first.strip_suffix(".rs") {
        Some("lib") => None,
        Some(stem) => Some(stem.to_string()),
        None => Some(first),
    }
}

/// Top-level modules named by `crate::name` or `crate::{a, b::c}` paths in
/// one line of code.
fn referenced(line: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    found.push(name);
                }
            }
        } else {
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.push(name);
            }
        }
        rest = after;
    }
    found
}

fn edges() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let Some(from) = owner(&src, &file) else {
            continue;
        };
        let text = fs::read_to_string(&file).expect("source is UTF-8");
        let deps = graph.entry(from.clone()).or_default();
        for line in text.lines() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            for to in referenced(code) {
                if to != from {
                    deps.insert(to);
                }
            }
        }
    }
    graph
}

fn allowed() -> BTreeMap<&'static str, BTreeSet<&'static str>> {
    ALLOWED
        .iter()
        .map(|(m, deps)| (*m, deps.iter().copied().collect()))
        .collect()
}

#[test]
fn every_module_uses_only_what_the_table_allows() {
    let table = allowed();
    let mut wrong = Vec::new();
    for (from, deps) in edges() {
        let Some(may) = table.get(from.as_str()) else {
            wrong.push(format!(
                "{from}: not in ALLOWED (add it with its dependencies)"
            ));
            continue;
        };
        for to in deps {
            if !may.contains(to.as_str()) {
                wrong.push(format!("{from} -> {to}"));
            }
        }
    }
    assert!(wrong.is_empty(), "edges outside ALLOWED: {wrong:?}");
}

#[test]
fn the_table_has_no_cycle() {
    let table = allowed();
    // Kahn's algorithm: repeatedly remove modules whose allowed
    // dependencies are all removed; whatever remains sits on a cycle.
    let mut left: BTreeMap<&str, BTreeSet<&str>> = table.clone();
    loop {
        let ready: Vec<&str> = left
            .iter()
            .filter(|(_, deps)| deps.iter().all(|d| !left.contains_key(d)))
            .map(|(m, _)| *m)
            .collect();
        if ready.is_empty() {
            break;
        }
        for m in ready {
            left.remove(m);
        }
    }
    assert!(left.is_empty(), "modules on a cycle: {left:?}");
    for deps in table.values() {
        for d in deps {
            assert!(table.contains_key(d), "`{d}` is allowed but not listed");
        }
    }
}

/// `super::` at the top of a top-level module's file would name the crate
/// root, a path the scan above does not follow: such files name other
/// modules with `crate::` (unit tests' `use super::*` is indented, and
/// names the file's own module).
#[test]
fn top_level_files_name_other_modules_by_crate_paths() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut wrong = Vec::new();
    for entry in fs::read_dir(&src).expect("core/src is readable") {
        let path = entry.expect("directory entry").path();
        if path.extension().is_some_and(|e| e == "rs") {
            let text = fs::read_to_string(&path).expect("source is UTF-8");
            for line in text.lines().filter(|l| l.starts_with("use super::")) {
                wrong.push(format!("{}: {line}", path.display()));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:?}");
}

#[test]
fn the_scanner_sees_both_path_forms() {
    assert_eq!(
        referenced("use crate::red::histogram::{Buckets, Histogram};"),
        ["red"]
    );
    assert_eq!(
        referenced("use crate::{config::ConfigError, prom};"),
        ["config", "prom"]
    );
    assert_eq!(
        referenced("name: crate::red::names::X, b: crate::prom::Y"),
        ["red", "prom"]
    );
}
