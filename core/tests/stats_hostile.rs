//! Hostile input for the stats decoder: adversarial documents get exact,
//! de-duplicated output or a clear error naming the bound they crossed; and
//! the fast path (`stats::scrape`) says exactly what the owned path says.

mod stats_paths;
mod stats_support;

use stats_paths::{fast_text, owned_text};
use stats_support::{hostile, with_extra, REPEATED_SOCKETS, SOCKETS, WORKERS};
use uwsgi_red_core::stats::families::{map_document, Family, MapOptions, DUPLICATES_FAMILY};
use uwsgi_red_core::stats::limits::{MAX_ENTRIES, MAX_LABEL_BYTES};
use uwsgi_red_core::stats::{
    decode, decode_with_limit, scrape, StatsError, DEFAULT_MAX_DOCUMENT_BYTES,
};

const ALL: MapOptions = MapOptions {
    per_core: true,
    uwsgi_metrics: true,
    cron_commands: true,
};

fn family<'f>(fams: &'f [Family], name: &str) -> &'f Family {
    fams.iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no family {name}"))
}

fn err(reply: &[u8]) -> StatsError {
    let owned = decode(reply).unwrap_err();
    let fast = scrape(
        reply,
        "app1",
        &MapOptions::default(),
        DEFAULT_MAX_DOCUMENT_BYTES,
    )
    .unwrap_err();
    assert_eq!(owned, fast, "both paths fail the same way");
    owned
}

#[test]
fn fast_path_equals_owned_path_on_every_vector() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !(name.starts_with("stats_") && name.ends_with(".bin")) {
            continue;
        }
        let raw = std::fs::read(&path).unwrap();
        for opts in [MapOptions::default(), ALL] {
            assert_eq!(
                fast_text(&raw, &opts).unwrap(),
                owned_text(&raw, &opts).unwrap(),
                "{name} {opts:?}"
            );
        }
        n += 1;
    }
    assert_eq!(n, 10);
}

#[test]
fn forty_thousand_sockets_and_twenty_thousand_workers_sharing_an_id() {
    let doc = hostile();
    assert!(doc.len() > 9_000_000, "{}", doc.len());
    let d = decode(&doc).unwrap();
    assert_eq!(d.document.sockets.len(), SOCKETS);
    assert_eq!(d.document.workers.len(), WORKERS);
    let fams = map_document(&d.document, "app1", &MapOptions::default());

    // One worker: the first entry of id 1 wins (its requests are 0).
    assert_eq!(family(&fams, "uwsgi_workers").samples[0].value, 1.0);
    let reqs = family(&fams, "uwsgi_worker_requests_total");
    assert_eq!(reqs.samples.len(), 1);
    assert_eq!(reqs.samples[0].value, 0.0);
    assert_eq!(reqs.samples[0].label("worker_id"), Some("1"));
    assert_eq!(
        family(&fams, "uwsgi_worker_app_requests_total")
            .samples
            .len(),
        1
    );
    for name in [
        "uwsgi_socket_queue_length",
        "uwsgi_socket_max_queue_length",
        "uwsgi_socket_shared",
        "uwsgi_socket_can_offload",
    ] {
        assert_eq!(
            family(&fams, name).samples.len(),
            SOCKETS - REPEATED_SOCKETS
        );
    }
    let dups = family(&fams, DUPLICATES_FAMILY);
    assert_eq!(dups.samples.len(), 1);
    assert_eq!(
        dups.samples[0].value,
        (WORKERS - 1 + REPEATED_SOCKETS) as f64
    );

    // The fast path: same page, the count in the summary, output < 2× input.
    let s = scrape(
        &doc,
        "app1",
        &MapOptions::default(),
        DEFAULT_MAX_DOCUMENT_BYTES,
    )
    .unwrap();
    assert_eq!(s.duplicates, (WORKERS - 1 + REPEATED_SOCKETS) as u64);
    assert_eq!(s.text, owned_text(&doc, &MapOptions::default()).unwrap());
    assert!(
        s.text.len() < 2 * doc.len(),
        "{} bytes out of {}",
        s.text.len(),
        doc.len()
    );
    // Exactly one sample line per series: Prometheus would reject repeats.
    let mut lines: Vec<&str> = s
        .text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.rsplit_once(' ').unwrap().0)
        .collect();
    let total = lines.len();
    lines.sort_unstable();
    lines.dedup();
    assert_eq!(lines.len(), total);
}

#[test]
fn cheaper_slots_repeating_id_zero_are_not_duplicates() {
    let w = |id: u32| format!("{{\"id\":{id},\"requests\":{id},\"status\":\"cheap\"}}");
    let workers = [w(1), w(0), w(0), w(0), w(2)].join(",");
    let doc = with_extra(&workers, "");
    let fams = map_document(
        &decode(&doc).unwrap().document,
        "app1",
        &MapOptions::default(),
    );
    assert_eq!(family(&fams, "uwsgi_workers").samples[0].value, 2.0);
    assert_eq!(family(&fams, DUPLICATES_FAMILY).samples[0].value, 0.0);
    let ids: Vec<_> = family(&fams, "uwsgi_worker_requests_total")
        .samples
        .iter()
        .map(|s| s.label("worker_id").unwrap().to_string())
        .collect();
    assert_eq!(ids, ["1", "2"]);
}

#[test]
fn repeated_apps_cores_caches_spoolers_and_metrics_keep_the_first() {
    let workers = "{\"id\":1,\"apps\":[{\"id\":0,\"requests\":5},{\"id\":0,\"requests\":9}],\
                   \"cores\":[{\"id\":0,\"requests\":1},{\"id\":0,\"requests\":2},{\"id\":1}]}";
    let extra = ",\"caches\":[{\"name\":\"c\",\"hits\":1},{\"name\":\"c\",\"hits\":2}],\
                 \"spoolers\":[{\"dir\":\"/s\",\"tasks\":1},{\"dir\":\"/s\",\"tasks\":2}],\
                 \"metrics\":{\"core.busy_workers\":{\"type\":1,\"value\":3},\
                 \"core.busy_workers\":{\"type\":1,\"value\":4}}";
    let doc = with_extra(workers, extra);
    let fams = map_document(&decode(&doc).unwrap().document, "app1", &ALL);
    let one = |name: &str| {
        let f = family(&fams, name);
        assert_eq!(f.samples.len(), 1, "{name}");
        f.samples[0].value
    };
    assert_eq!(one("uwsgi_worker_app_requests_total"), 5.0);
    assert_eq!(one("uwsgi_cache_hits"), 1.0);
    assert_eq!(one("uwsgi_spooler_tasks"), 1.0);
    assert_eq!(one("uwsgi_metric_value"), 3.0);
    let cores = family(&fams, "uwsgi_worker_core_requests_total");
    assert_eq!(cores.samples.len(), 2);
    assert_eq!(cores.samples[0].value, 1.0);
    // The owned model keeps a repeated metrics{} key once (first wins), so
    // it is not visible to the mapping: app + core + cache + spooler.
    assert_eq!(one(DUPLICATES_FAMILY), 4.0);
    // The fast path sees the repeated metric name too.
    let s = scrape(&doc, "app1", &ALL, DEFAULT_MAX_DOCUMENT_BYTES).unwrap();
    assert_eq!(s.duplicates, 5);
    assert!(s.text.contains(
        "uwsgi_metric_value{target=\"app1\",name=\"core.busy_workers\",type=\"gauge\"} 3\n"
    ));
}

#[test]
fn a_document_over_the_size_limit_is_refused_before_parsing() {
    // 17 MiB of something that is not even JSON past its first byte: the
    // answer is `too_large`, so nothing was parsed.
    let mut doc = b"{\"version\":".to_vec();
    doc.resize(17 << 20, b'x');
    let e = err(&doc);
    assert_eq!(
        e,
        StatsError::TooLarge {
            size: 17 << 20,
            limit: DEFAULT_MAX_DOCUMENT_BYTES
        }
    );
    assert_eq!(e.reason(), "too_large");
    let small = with_extra("", "");
    assert_eq!(
        decode_with_limit(&small, 10).unwrap_err(),
        StatsError::TooLarge {
            size: small.len(),
            limit: 10
        }
    );
}

#[test]
fn deep_nesting_costs_no_stack_and_has_a_clear_error_where_it_matters() {
    let nest = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
    // 100 000 levels in a key nobody reads are skipped iteratively.
    let ignored = with_extra("{\"id\":1}", &format!(",\"x\":{}", nest(100_000)));
    assert_eq!(decode(&ignored).unwrap().document.workers.len(), 1);
    assert!(fast_text(&ignored, &MapOptions::default()).is_ok());
    // In `vars` (a live request's CGI variables), the same.
    let vars = with_extra(
        &format!(
            "{{\"id\":1,\"cores\":[{{\"id\":0,\"vars\":{}}}]}}",
            nest(100_000)
        ),
        "",
    );
    assert_eq!(decode(&vars).unwrap().document.workers[0].cores.len(), 1);
    assert!(fast_text(&vars, &ALL).is_ok());
    // Where the model expects a worker object, depth is a schema error at its path.
    let e = err(&with_extra(&nest(100_000), ""));
    match &e {
        // (serde reads a struct from a list too, so the error is one level in.)
        StatsError::Schema { path, .. } => assert_eq!(path, "workers[0][0]"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn out_of_range_and_negative_counters_name_the_value() {
    let e = err(&with_extra("{\"id\":1,\"requests\":1e400}", ""));
    assert_eq!(e.reason(), "invalid_json");
    assert!(e.to_string().contains("number out of range"), "{e}");

    let e = err(&with_extra("{\"id\":1,\"requests\":-5}", ""));
    match &e {
        StatsError::Schema { path, message } => {
            assert_eq!(path, "workers[0].requests");
            assert!(message.contains("-5"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let e = err(&with_extra("{\"id\":1}", ",\"listen_queue\":-1"));
    assert!(
        matches!(&e, StatsError::Schema { path, .. } if path == "listen_queue"),
        "{e:?}"
    );
    // A huge number in a key nobody reads costs nothing.
    assert!(decode(&with_extra("{\"id\":1}", ",\"future\":1e400")).is_ok());
    // Signed fields (pid -1 for a cron that is not running) stay signed.
    let d = decode(&with_extra("{\"id\":1,\"pid\":-1}", "")).unwrap();
    assert_eq!(d.document.workers[0].pid, -1);
}

#[test]
fn invalid_utf8_in_a_name_is_repaired_and_counted() {
    let mut doc = b"{\"version\":\"2.0.30\",\"sockets\":[{\"name\":\"/run/caf".to_vec();
    doc.extend_from_slice(&[0xe9, 0xff]); // Latin-1 `é` and a stray byte
    doc.extend_from_slice(b".sock\",\"proto\":\"uwsgi\"}],\"workers\":[{\"id\":1}]}");
    let d = decode(&doc).unwrap();
    assert_eq!(d.repairs, 1);
    assert_eq!(d.document.sockets[0].name, "/run/caf\u{fffd}\u{fffd}.sock");
    let s = scrape(
        &doc,
        "app1",
        &MapOptions::default(),
        DEFAULT_MAX_DOCUMENT_BYTES,
    )
    .unwrap();
    assert_eq!(s.repairs, 1);
    assert_eq!(s.text, owned_text(&doc, &MapOptions::default()).unwrap());
    assert!(s
        .text
        .contains("uwsgi_stats_repaired_strings{target=\"app1\"} 1\n"));
}

#[test]
fn a_label_longer_than_the_bound_is_a_limit_error_with_its_path() {
    let long = "a".repeat(MAX_LABEL_BYTES + 1);
    let ok = "a".repeat(MAX_LABEL_BYTES);
    let doc = |name: &str| {
        with_extra(
            "{\"id\":1}",
            &format!(",\"sockets\":[{{\"name\":\"{name}\"}}]"),
        )
    };
    assert!(decode(&doc(&ok)).is_ok());
    let e = err(&doc(&long));
    assert_eq!(
        e,
        StatsError::Limit {
            path: "sockets[0].name".into(),
            message: format!(
                "string of {} bytes exceeds {MAX_LABEL_BYTES} bytes",
                long.len()
            ),
        }
    );
    assert_eq!(e.reason(), "limit");
    // An escaped (owned) string is bounded the same way.
    let escaped = format!("{}\\n", "a".repeat(MAX_LABEL_BYTES));
    assert_eq!(err(&doc(&escaped)).reason(), "limit");
    // A long metric name too.
    let m = with_extra(
        "{\"id\":1}",
        &format!(",\"metrics\":{{\"{long}\":{{\"value\":1}}}}"),
    );
    assert_eq!(err(&m).reason(), "limit");
}

#[test]
fn a_list_longer_than_the_bound_is_a_limit_error() {
    let at = vec!["{}"; MAX_ENTRIES].join(",");
    assert_eq!(
        decode(&with_extra("{\"id\":1}", &format!(",\"sockets\":[{at}]")))
            .unwrap()
            .document
            .sockets
            .len(),
        MAX_ENTRIES
    );
    let over = vec!["{}"; MAX_ENTRIES + 1].join(",");
    for key in ["sockets", "caches"] {
        let e = err(&with_extra("{\"id\":1}", &format!(",\"{key}\":[{over}]")));
        match &e {
            StatsError::Limit { path, message } => {
                assert!(path.starts_with(key), "{path}");
                assert_eq!(
                    message,
                    &format!("more than {MAX_ENTRIES} entries in one list")
                );
            }
            other => panic!("{other:?}"),
        }
    }
    // One worker's cores, also on the fast path that only counts them.
    let e = err(&with_extra(&format!("{{\"id\":1,\"cores\":[{over}]}}"), ""));
    assert_eq!(e.reason(), "limit");
}
