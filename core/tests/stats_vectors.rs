//! Every captured uWSGI 2.0.30 stats document (core/tests/vectors/stats_*),
//! decoded from the exact bytes that came off the socket, with exact values.
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

use std::path::PathBuf;

use uwsgi_red_core::stats::families::{encode_text, map_document, Family, MapOptions};
use uwsgi_red_core::stats::model::WorkerStatus;
use uwsgi_red_core::stats::{decode, Decoded};

fn vector(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn load(name: &str) -> Decoded {
    decode(&vector(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn value(fams: &[Family], name: &str, labels: &[(&str, &str)]) -> f64 {
    let f = fams
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no family {name}"));
    let matching: Vec<_> = f
        .samples
        .iter()
        .filter(|s| labels.iter().all(|(k, v)| s.label(k) == Some(*v)))
        .collect();
    assert_eq!(
        matching.len(),
        1,
        "{name}{labels:?}: {} samples match",
        matching.len()
    );
    matching[0].value
}

fn fams(d: &Decoded, per_core: bool) -> Vec<Family> {
    map_document(
        &d.document,
        "t",
        &MapOptions {
            per_core,
            uwsgi_metrics: true,
            cron_commands: false,
        },
    )
}

#[test]
fn a_idle_raw_and_http_agree() {
    for name in [
        "stats_a_2proc_idle_raw.bin",
        "stats_a_2proc_idle_http.bin",
        "stats_a_2proc_idle_raw.json",
    ] {
        let d = load(name);
        assert_eq!(d.repairs, 0);
        let doc = &d.document;
        assert_eq!(doc.version, "2.0.30");
        assert_eq!(doc.workers.len(), 2);
        assert_eq!(doc.workers[0].respawn_count, 1);
        assert_eq!(doc.workers[0].apps[0].mountpoint, "");
        assert_eq!(doc.locks.len(), 8);
        assert_eq!(doc.locks[0].name, "user 0");
        assert!(doc.caches.is_none() && doc.metrics.is_none() && doc.spoolers.is_none());
        let f = fams(&d, false);
        assert_eq!(value(&f, "uwsgi_workers", &[]), 2.0);
        assert_eq!(value(&f, "uwsgi_worker_idle", &[("worker_id", "2")]), 1.0);
        assert_eq!(value(&f, "uwsgi_worker_busy", &[("worker_id", "2")]), 0.0);
        assert_eq!(
            value(
                &f,
                "uwsgi_socket_max_queue_length",
                &[("name", "127.0.0.1:9101"), ("proto", "http")]
            ),
            100.0
        );
        assert_eq!(
            value(
                &f,
                "uwsgi_worker_respawn_count_total",
                &[("worker_id", "1")]
            ),
            1.0
        );
    }
    assert_eq!(load("stats_a_2proc_idle_raw.bin").document.pid, 16407);
    assert_eq!(load("stats_a_2proc_idle_http.bin").document.pid, 16463);
}

#[test]
fn b_under_load_busy_workers_and_no_vars() {
    let d = load("stats_b_4x4_load_http.bin");
    let w1 = &d.document.workers[0];
    assert_eq!(w1.status, WorkerStatus::Busy);
    assert_eq!(w1.requests, 19);
    assert_eq!(w1.cores.len(), 4);
    assert_eq!(w1.cores[0].in_request, 1);
    assert_eq!(w1.cores[0].req_info.request_start, Some(1795319857));
    let f = fams(&d, false);
    assert_eq!(value(&f, "uwsgi_workers", &[]), 4.0);
    assert_eq!(value(&f, "uwsgi_worker_busy", &[("worker_id", "4")]), 1.0);
    assert_eq!(
        value(&f, "uwsgi_worker_requests_total", &[("worker_id", "1")]),
        19.0
    );
    assert_eq!(
        value(
            &f,
            "uwsgi_worker_transmitted_bytes_total",
            &[("worker_id", "1")]
        ),
        1905.0
    );
    assert_eq!(
        value(
            &f,
            "uwsgi_worker_average_response_time_seconds",
            &[("worker_id", "1")]
        ),
        205e-6
    );
    assert_eq!(
        value(
            &f,
            "uwsgi_worker_running_time_seconds",
            &[("worker_id", "1")]
        ),
        0.005295
    );
    assert_eq!(value(&f, "uwsgi_worker_cores", &[("worker_id", "3")]), 4.0);
    assert_eq!(
        value(
            &f,
            "uwsgi_worker_app_requests_total",
            &[("worker_id", "1"), ("app_id", "0"), ("chdir", "")]
        ),
        22.0
    );
    // Per-core series are opt-in.
    assert!(f.iter().all(|f| !f.name.starts_with("uwsgi_worker_core_")));
    let f = fams(&d, true);
    assert_eq!(
        value(
            &f,
            "uwsgi_worker_core_busy",
            &[("worker_id", "4"), ("core_id", "3")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &f,
            "uwsgi_worker_core_requests_total",
            &[("worker_id", "1"), ("core_id", "0")]
        ),
        6.0
    );
    // vars (cookies) never reach any output.
    let text = encode_text(&f);
    let snapshot = serde_json::to_string(&d.document).unwrap();
    for out in [&text, &snapshot] {
        assert!(!out.contains("session=abc"), "vars leaked");
        assert!(!out.contains("vars"), "vars leaked");
    }
    assert!(snapshot.contains("\"request_start\":1795319857"));
}

#[test]
fn b_after_load_cores_idle_counters_filled() {
    let d = load("stats_b_4x4_after_load_http.bin");
    let f = fams(&d, true);
    assert_eq!(value(&f, "uwsgi_worker_idle", &[("worker_id", "1")]), 1.0);
    assert_eq!(
        value(&f, "uwsgi_worker_requests_total", &[("worker_id", "2")]),
        7.0
    );
    assert_eq!(
        value(
            &f,
            "uwsgi_worker_average_response_time_seconds",
            &[("worker_id", "1")]
        ),
        3.500635
    );
    assert_eq!(
        value(
            &f,
            "uwsgi_worker_running_time_seconds",
            &[("worker_id", "4")]
        ),
        16.005065
    );
    assert_eq!(
        value(
            &f,
            "uwsgi_worker_core_requests_total",
            &[("worker_id", "3"), ("core_id", "2")]
        ),
        3.0
    );
    let busy: f64 = f
        .iter()
        .find(|f| f.name == "uwsgi_worker_core_busy")
        .unwrap()
        .samples
        .iter()
        .map(|s| s.value)
        .sum();
    assert_eq!(busy, 0.0);
    assert!(d
        .document
        .workers
        .iter()
        .flat_map(|w| &w.cores)
        .all(|c| c.req_info.request_start.is_none()));
}

#[test]
fn c_memory_report() {
    let d = load("stats_c_memory_report_raw.bin");
    let f = fams(&d, false);
    assert_eq!(
        value(&f, "uwsgi_worker_rss_bytes", &[("worker_id", "1")]),
        10735616.0
    );
    assert_eq!(
        value(&f, "uwsgi_worker_rss_bytes", &[("worker_id", "2")]),
        10756096.0
    );
    assert_eq!(
        value(
            &f,
            "uwsgi_worker_transmitted_bytes_total",
            &[("worker_id", "1")]
        ),
        800680.0
    );
    assert!(d.document.workers[0].vsz > 0);
}

#[test]
fn d_enable_metrics() {
    let d = load("stats_d_enable_metrics_http.bin");
    let m = d.document.metrics.as_ref().unwrap();
    assert_eq!(m.len(), 68);
    assert_eq!(m["core.idle_workers"].oid, "5.4");
    let f = fams(&d, false);
    assert_eq!(
        value(
            &f,
            "uwsgi_metric_value",
            &[("name", "core.idle_workers"), ("type", "gauge")]
        ),
        2.0
    );
    assert_eq!(
        value(
            &f,
            "uwsgi_metric_value",
            &[("name", "worker.2.requests"), ("type", "counter")]
        ),
        11.0
    );
    let metric_samples = |f: &[Family]| {
        f.iter()
            .find(|f| f.name == "uwsgi_metric_value")
            .unwrap()
            .samples
            .len()
    };
    // 28 of the 68 are per-core and follow the per-core switch.
    assert_eq!(metric_samples(&f), 40);
    let all = fams(&d, true);
    assert_eq!(metric_samples(&all), 68);
    assert_eq!(
        value(
            &all,
            "uwsgi_metric_value",
            &[("name", "worker.2.core.0.requests")]
        ),
        6.0
    );
    let off = map_document(
        &d.document,
        "t",
        &MapOptions {
            per_core: false,
            uwsgi_metrics: false,
            cron_commands: false,
        },
    );
    assert_eq!(metric_samples(&off), 0);
}

#[test]
fn e_cache_spooler_cron() {
    let d = load("stats_e_cache_spooler_cron_raw.bin");
    let f = fams(&d, false);
    let c = [("name", "mycache")];
    assert_eq!(value(&f, "uwsgi_cache_hits", &c), 4.0);
    assert_eq!(value(&f, "uwsgi_cache_misses", &c), 2.0);
    assert_eq!(value(&f, "uwsgi_cache_items", &c), 7.0);
    assert_eq!(value(&f, "uwsgi_cache_max_items", &c), 100.0);
    assert_eq!(
        value(
            &f,
            "uwsgi_spooler_tasks",
            &[("spooler", "/srv/capture-site/spool")]
        ),
        3.0
    );
    // Crons by position only: the command line is not a label by default.
    assert_eq!(value(&f, "uwsgi_cron_running", &[("cron_id", "1")]), 0.0);
    assert!(f
        .iter()
        .flat_map(|x| &x.samples)
        .all(|s| s.labels.iter().all(|(k, _)| *k != "command")));
    let with = map_document(
        &d.document,
        "t",
        &MapOptions {
            cron_commands: true,
            ..MapOptions::default()
        },
    );
    assert_eq!(
        value(
            &with,
            "uwsgi_cron_running",
            &[("cron_id", "1"), ("command", "/bin/echo weekly")]
        ),
        0.0
    );
    let crons = d.document.crons.as_ref().unwrap();
    assert_eq!((crons[1].hour, crons[1].week, crons[1].pid), (3, 1, -1));
    assert_eq!(
        d.document.locks[9].name,
        "spooler on /srv/capture-site/spool"
    );
    assert_eq!(
        value(&f, "uwsgi_worker_requests_total", &[("worker_id", "2")]),
        16.0
    );
}

#[test]
fn f_minified() {
    let d = load("stats_f_minified_raw.bin");
    assert_eq!(d.document.pid, 17930);
    assert_eq!(d.body_bytes, 1387);
    let f = fams(&d, false);
    assert_eq!(
        value(
            &f,
            "uwsgi_worker_last_spawn_time_seconds",
            &[("worker_id", "1")]
        ),
        1795319913.0
    );
    assert_eq!(
        value(&f, "uwsgi_version_info", &[("version", "2.0.30")]),
        1.0
    );
}

#[test]
fn j_exceptions() {
    let d = load("stats_j_exceptions_http.bin");
    let f = fams(&d, false);
    assert_eq!(
        value(&f, "uwsgi_worker_exceptions_total", &[("worker_id", "1")]),
        5.0
    );
    assert_eq!(
        value(
            &f,
            "uwsgi_worker_app_exceptions_total",
            &[("worker_id", "1"), ("app_id", "0")]
        ),
        5.0
    );
    assert_eq!(
        value(&f, "uwsgi_worker_requests_total", &[("worker_id", "1")]),
        9.0
    );
    assert_eq!(
        value(&f, "uwsgi_worker_exceptions_total", &[("worker_id", "2")]),
        0.0
    );
}

#[test]
fn k_invalid_cwd_is_repaired_and_counted() {
    for name in [
        "stats_k_cwd_backslash_invalid_http.bin",
        "stats_k_cwd_backslash_invalid_http.json",
    ] {
        let raw = vector(name);
        let body = uwsgi_red_core::stats::transport::body(&raw).unwrap();
        assert!(
            serde_json::from_slice::<serde_json::Value>(body).is_err(),
            "capture should be invalid JSON"
        );
        let d = load(name);
        assert_eq!(d.repairs, 1);
        assert_eq!(d.document.cwd, "/srv/capture-site/dir\\with\\backslash");
        assert_eq!(d.document.pid, 27059);
        let f = fams(&d, false);
        assert_eq!(value(&f, "uwsgi_workers", &[]), 2.0);
        assert_eq!(
            value(&f, "uwsgi_worker_requests_total", &[("worker_id", "1")]),
            1.0
        );
    }
}

#[test]
fn every_stats_vector_is_covered_and_decodes() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        if name.starts_with("stats_") {
            let d = load(&name);
            assert!(!d.document.workers.is_empty(), "{name}");
            let text = encode_text(&map_document(&d.document, "app1", &MapOptions::default()));
            for line in text.lines().filter(|l| !l.starts_with('#')) {
                assert!(line.contains("target=\"app1\""), "{name}: {line}");
            }
            n += 1;
        }
    }
    assert_eq!(n, 20);
}

#[test]
fn label_names_are_declared_and_suffix_free() {
    use uwsgi_red_core::stats::families::{scrape_families, ScrapeStatus, LABEL_NAMES};
    let mut used = std::collections::BTreeSet::new();
    for name in [
        "stats_b_4x4_load_http.bin",
        "stats_d_enable_metrics_http.bin",
        "stats_e_cache_spooler_cron_raw.bin",
    ] {
        let d = load(name);
        let mut f = fams(&d, true);
        f.extend(scrape_families("t", &ScrapeStatus::default()));
        for fam in &f {
            assert!(
                uwsgi_red_core::prom::text::is_valid_metric_name(fam.name),
                "{}",
                fam.name
            );
            for s in &fam.samples {
                for (k, _) in &s.labels {
                    used.insert(*k);
                }
            }
        }
    }
    for k in &used {
        assert!(LABEL_NAMES.contains(k), "{k} missing from LABEL_NAMES");
    }
    for a in LABEL_NAMES {
        for b in LABEL_NAMES {
            assert!(
                a == b || !a.ends_with(b),
                "{b} is a suffix of {a}: Envoy tag regexes would collide"
            );
        }
    }
}
