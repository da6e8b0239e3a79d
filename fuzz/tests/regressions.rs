//! Replays the seed corpus (`corpus/<target>/`) and every committed crasher
//! (`regressions/<target>/`) through the targets' properties on stable
//! Rust, without libFuzzer: a fixed bug stays fixed in `cargo test`.

use std::path::Path;

fn replay(dir: &str) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut n = 0;
    let mut failed = Vec::new();
    for (name, check) in uwsgi_red_fuzz::TARGETS {
        let Ok(entries) = std::fs::read_dir(root.join(name)) else {
            continue;
        };
        for e in entries {
            let path = e.expect("readable dir entry").path();
            let data = std::fs::read(&path).expect("readable input");
            if std::panic::catch_unwind(|| check(&data)).is_err() {
                failed.push(format!("{name}: {}", path.display()));
            }
            n += 1;
        }
    }
    assert!(
        failed.is_empty(),
        "{} inputs fail:\n{}",
        failed.len(),
        failed.join("\n")
    );
    n
}

/// `build.sh fuzz` runs the names in `targets.txt`: every target, each with
/// its entry point and `[[bin]]`.
#[test]
fn build_script_runs_every_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let listed = std::fs::read_to_string(root.join("targets.txt")).expect("targets.txt");
    let listed: Vec<&str> = listed.lines().filter(|l| !l.is_empty()).collect();
    let known: Vec<&str> = uwsgi_red_fuzz::TARGETS.iter().map(|(n, _)| *n).collect();
    assert_eq!(listed, known);
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).expect("Cargo.toml");
    for t in known {
        assert!(
            root.join("fuzz_targets").join(format!("{t}.rs")).is_file(),
            "{t}"
        );
        assert!(
            manifest.contains(&format!("name = \"{t}\"\npath = \"fuzz_targets/{t}.rs\"")),
            "{t}"
        );
    }
}

#[test]
fn every_target_has_a_seed_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (name, _) in uwsgi_red_fuzz::TARGETS {
        let dir = root.join("corpus").join(name);
        let n = std::fs::read_dir(&dir).map_or(0, |d| d.count());
        assert!(n > 0, "no seeds in {}", dir.display());
        assert!(
            n <= 64,
            "{n} seeds in {}: keep the corpus in git small",
            dir.display()
        );
        assert!(
            root.join("dict").join(format!("{name}.dict")).is_file(),
            "no dict for {name}"
        );
    }
}

#[test]
fn seed_corpus_holds_every_property() {
    assert!(replay("corpus") > 0);
}

#[test]
fn committed_crashers_stay_fixed() {
    replay("regressions");
}
