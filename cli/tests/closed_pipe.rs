//! A reader that stops early (`uwsgi-red logs FILE | head -1`) must not make
//! the command panic: every subcommand ends quietly with exit 0 when its
//! stdout is closed, and a broken stderr is ignored too.
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

use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn vector(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../core/tests/vectors")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn example(rel: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
        .to_string_lossy()
        .into_owned()
}

/// Runs the binary with stdout connected to a socket whose reading end is
/// already closed: the first write fails with EPIPE, deterministically,
/// whatever the output size. Returns (exit code, stderr).
fn with_closed_stdout(args: &[&str]) -> (Option<i32>, String) {
    let (ours, theirs) = UnixStream::pair().expect("socket pair");
    drop(ours);
    let mut child = Command::new(env!("CARGO_BIN_EXE_uwsgi-red"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(OwnedFd::from(theirs)))
        .stderr(Stdio::piped())
        .spawn()
        .expect("uwsgi-red starts");
    let mut err = String::new();
    child
        .stderr
        .take()
        .expect("stderr piped")
        .read_to_string(&mut err)
        .expect("stderr read");
    let status = child.wait().expect("uwsgi-red ends");
    (status.code(), err)
}

#[test]
fn every_subcommand_exits_zero_quietly_on_a_closed_stdout() {
    let gunicorn = vector("gunicorn_access_custom_M.log");
    let statsd = vector("statsd_uwsgi_2.0.30_prefix_myapp.txt");
    let stats = vector("stats_b_4x4_load_http.bin");
    let packet = vector("pkt_get_root.bin");
    let red = example("examples/otel-collector/config.yaml");
    let cases: Vec<Vec<&str>> = vec![
        vec!["stats", &stats, "--target", "app1"],
        vec!["decode", &packet],
        vec!["logs", &gunicorn, "--duration-field", "M"],
        vec!["statsd", &statsd],
        vec!["--help"],
        vec!["stats", "--help"],
        vec!["decode", "--help"],
        vec!["logs", "--help"],
        vec!["statsd", "--help"],
        vec!["check-config", "--help"],
    ];
    for args in &cases {
        let (code, err) = with_closed_stdout(args);
        assert_eq!(code, Some(0), "{args:?}: stderr {err:?}");
        assert_eq!(err, "", "{args:?}: nothing on stderr");
    }
    // Failures still report on stderr with their own exit code.
    let (code, err) = with_closed_stdout(&["check-config", "red-filter", &red]);
    assert_eq!(code, Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn head_of_a_long_output_in_a_real_pipe() {
    // > 1 MB of output: far more than a pipe buffer holds, so the writer is
    // still writing when `head` exits.
    let line = std::fs::read_to_string(vector("gunicorn_access_custom_M.log"))
        .expect("vector read")
        .lines()
        .next()
        .expect("one line")
        .to_string();
    let dir = std::env::temp_dir().join(format!("uwsgi-red-pipe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let big = dir.join("access.log");
    std::fs::write(&big, format!("{line}\n").repeat(5000)).expect("log written");
    let script = format!(
        "set -o pipefail; '{}' logs '{}' --duration-field M | head -1 >/dev/null",
        env!("CARGO_BIN_EXE_uwsgi-red"),
        big.display()
    );
    let out = Command::new("bash")
        .args(["-c", &script])
        .output()
        .expect("bash runs");
    std::fs::remove_dir_all(&dir).expect("temp dir removed");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {err}");
    assert_eq!(err, "");
}
