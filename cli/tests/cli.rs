//! The built `uwsgi-red` binary against the project's captured vectors and
//! tiny in-process stats servers (raw TCP, `--stats-http` style, UNIX).
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

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::thread;

fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../core/tests/vectors")
}

fn vector(name: &str) -> String {
    vectors().join(name).to_string_lossy().into_owned()
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_uwsgi-red"))
        .args(args)
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> String {
    let o = run(args);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn fails(args: &[&str], code: i32) -> String {
    let o = run(args);
    assert_eq!(
        o.status.code(),
        Some(code),
        "{args:?}: stdout {}",
        String::from_utf8_lossy(&o.stdout)
    );
    let err = String::from_utf8(o.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "one-line error expected: {err:?}");
    assert!(o.stdout.is_empty());
    err
}

#[test]
fn stats_from_file_prints_exporter_names() {
    let out = ok(&[
        "stats",
        &vector("stats_b_4x4_load_http.bin"),
        "--target",
        "app1",
        "--exact",
    ]);
    assert!(out.contains("# TYPE uwsgi_worker_requests_total counter\n"));
    assert!(
        out.contains("uwsgi_worker_requests_total{target=\"app1\",worker_id=\"1\"} 19\n"),
        "{out}"
    );
    assert!(out.contains(
        "uwsgi_worker_average_response_time_seconds{target=\"app1\",worker_id=\"1\"} 0.000205\n"
    ));
    assert!(out.contains("uwsgi_workers{target=\"app1\"} 4\n"));
    assert!(out.contains("uwsgi_up{target=\"app1\"} 1\n"));
    assert!(!out.contains("uwsgi_worker_core_busy"));
    assert!(!out.contains("session=abc"));
    let per_core = ok(&["stats", &vector("stats_b_4x4_load_http.bin"), "--per-core"]);
    assert!(per_core
        .contains("uwsgi_worker_core_busy{target=\"uwsgi\",worker_id=\"4\",core_id=\"3\"} 1\n"));
}

/// Without `--exact`: what Envoy's /stats/prometheus shows, family for
/// family (host-tests/test_readmes.py compares the names with a live Envoy).
#[test]
fn stats_default_is_the_envoy_page_form() {
    let out = ok(&[
        "stats",
        &vector("stats_b_4x4_load_http.bin"),
        "--target",
        "app1",
    ]);
    assert!(out.contains(
        "uwsgi_worker_average_response_time_microseconds{target=\"app1\",worker_id=\"1\"} 205\n"
    ));
    assert!(!out.contains("running_time_seconds"), "{out}");
    assert!(!out.contains("average_response_time_seconds"), "{out}");
    assert!(out.contains("uwsgi_worker_requests_total{target=\"app1\",worker_id=\"1\"} 19\n"));
    assert!(out.contains(
        "# TYPE uwsgi_stats_repairs_total counter\nuwsgi_stats_repairs_total{target=\"app1\"} 0\n"
    ));
    assert!(out.contains(
        "# TYPE uwsgi_red_dropped_label_sets_total counter\nuwsgi_red_dropped_label_sets_total 0\n"
    ));
    let stamp = out
        .lines()
        .find_map(|l| {
            l.strip_prefix("uwsgi_scrape_last_success_timestamp_seconds{target=\"app1\"} ")
        })
        .expect("last success timestamp");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let stamp: u64 = stamp.parse().unwrap();
    assert!(now - stamp < 60, "{stamp} vs {now}");
    // Every value is an integer, as Envoy stores it.
    for l in out.lines().filter(|l| !l.starts_with('#')) {
        let v = l.rsplit(' ').next().unwrap();
        assert!(v.parse::<u64>().is_ok(), "{l}");
    }
}

#[test]
fn stats_repairs_invalid_capture() {
    let out = ok(&["stats", &vector("stats_k_cwd_backslash_invalid_http.bin")]);
    assert!(
        out.contains("uwsgi_stats_repaired_strings{target=\"uwsgi\"} 1\n"),
        "{out}"
    );
    assert!(out.contains("uwsgi_workers{target=\"uwsgi\"} 2\n"));
}

fn serve_tcp(reply: Vec<u8>, wait_for_request: bool) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        if wait_for_request {
            let mut got = Vec::new();
            let mut b = [0u8; 1024];
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = s.read(&mut b).unwrap();
                if n == 0 {
                    return;
                }
                got.extend_from_slice(&b[..n]);
            }
        }
        s.write_all(&reply).unwrap();
    });
    addr
}

#[test]
fn stats_over_raw_tcp_http_and_unix() {
    let raw = std::fs::read(vector("stats_a_2proc_idle_raw.bin")).unwrap();
    let http = std::fs::read(vector("stats_a_2proc_idle_http.bin")).unwrap();

    // Raw server: writes on accept.
    let out = ok(&["stats", &format!("tcp://{}", serve_tcp(raw.clone(), false))]);
    assert!(out.contains("uwsgi_workers{target=\"uwsgi\"} 2\n"), "{out}");
    // --stats-http server behind tcp://: the CLI falls back to sending a request.
    let out = ok(&["stats", &format!("tcp://{}", serve_tcp(http.clone(), true))]);
    assert!(out.contains("uwsgi_socket_max_queue_length{target=\"uwsgi\",name=\"127.0.0.1:9101\",proto=\"http\"} 100\n"));
    let out = ok(&["stats", &format!("http://{}/", serve_tcp(http, true))]);
    assert!(out.contains("uwsgi_worker_idle{target=\"uwsgi\",worker_id=\"1\"} 1\n"));

    let dir = std::env::temp_dir().join(format!("uwsgi-red-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("stats.sock");
    let _ = std::fs::remove_file(&sock);
    let l = UnixListener::bind(&sock).unwrap();
    thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.write_all(&raw).unwrap();
    });
    let out = ok(&["stats", &format!("unix://{}", sock.display())]);
    assert!(out.contains("uwsgi_version_info{target=\"uwsgi\",version=\"2.0.30\"} 1\n"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn stats_bad_input_is_one_line_and_nonzero() {
    let e = fails(&["stats", "/nonexistent/doc.json"], 1);
    assert!(e.contains("/nonexistent/doc.json"), "{e}");
    let garbage = std::env::temp_dir().join(format!("uwsgi-red-garbage-{}", std::process::id()));
    std::fs::write(&garbage, b"\x00\x01not json").unwrap();
    let e = fails(&["stats", garbage.to_str().unwrap()], 1);
    assert!(e.contains("not_json"), "{e}");
    std::fs::write(
        &garbage,
        br#"{"version":"2.0.30","workers":[{"id":"one"}]}"#,
    )
    .unwrap();
    let e = fails(&["stats", garbage.to_str().unwrap()], 1);
    assert!(e.contains("workers[0].id"), "{e}");
    std::fs::write(&garbage, b"{\"version\":\"2.0.30\",\n\"workers\":[").unwrap();
    let e = fails(&["stats", garbage.to_str().unwrap()], 1);
    assert!(e.contains("truncated"), "{e}");
    let _ = std::fs::remove_file(&garbage);

    // Port with nothing listening.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = fails(&["stats", &format!("tcp://127.0.0.1:{port}")], 1);
    assert!(e.contains(&port.to_string()), "{e}");

    assert!(fails(&["stats"], 2).contains("needs a source"));
    assert!(fails(&["stats", "ftp://x"], 2).contains("unsupported scheme"));
    assert!(fails(&["stats", "x", "--bogus"], 2).contains("--bogus"));
    assert!(fails(&["frobnicate"], 2).contains("frobnicate"));
}

#[test]
fn decode_matches_the_captured_description() {
    for name in [
        "pkt_get_root",
        "pkt_get_query_many_headers",
        "pkt_post_10k_form",
        "pkt_options_cors",
    ] {
        let out = ok(&["decode", &vector(&format!("{name}.bin"))]);
        let txt = std::fs::read_to_string(vectors().join(format!("{name}.txt"))).unwrap();
        let expected: Vec<&str> = txt
            .lines()
            .take_while(|l| !l.starts_with("# body_sha256"))
            .collect();
        let got: Vec<&str> = out.lines().collect();
        assert_eq!(got, expected, "{name}");
    }
}

#[test]
fn decode_bad_packets_fail_cleanly() {
    let dir = std::env::temp_dir().join(format!("uwsgi-red-pkt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let full = std::fs::read(vector("pkt_get_root.bin")).unwrap();
    let cut = dir.join("cut.bin");
    std::fs::write(&cut, &full[..100]).unwrap();
    let e = fails(&["decode", cut.to_str().unwrap()], 1);
    assert!(e.contains("truncated"), "{e}");
    let http = dir.join("http.bin");
    std::fs::write(&http, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let e = fails(&["decode", http.to_str().unwrap()], 1);
    assert!(e.contains("modifier"), "{e}");
    assert!(fails(&["decode"], 2).contains("exactly one"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The join series: the listen socket as uWSGI names it, or respelled with
/// `--upstream-host` (a target's `upstream_host`), in both page forms.
#[test]
fn stats_upstream_info_per_listen_socket() {
    let doc = vector("stats_a_2proc_idle_http.bin");
    for exact in [false, true] {
        let mut args = vec!["stats", doc.as_str(), "--target", "app1"];
        if exact {
            args.push("--exact");
        }
        let out = ok(&args);
        assert!(
            out.contains("uwsgi_upstream_info{target=\"app1\",upstream=\"127.0.0.1:9101\"} 1\n"),
            "{out}"
        );
        args.extend(["--upstream-host", "10.0.0.5"]);
        let out = ok(&args);
        assert!(
            out.contains("uwsgi_upstream_info{target=\"app1\",upstream=\"10.0.0.5:9101\"} 1\n"),
            "{out}"
        );
        assert_eq!(out.matches("uwsgi_upstream_info{").count(), 1, "{out}");
    }
    fails(&["stats", &doc, "--upstream-host"], 2);
}
