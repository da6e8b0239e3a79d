//! The offline checks of the built `uwsgi-red` binary: `check-config`,
//! `logs`, `statsd` — exit codes (0 ok, 1 bad input, 2 usage), `--help`,
//! and exact outputs.
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

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn path(rel: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
        .to_string_lossy()
        .into_owned()
}

fn vector(name: &str) -> String {
    path(&format!("core/tests/vectors/{name}"))
}

fn run_with(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_uwsgi-red"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    // A command that fails on its arguments exits without reading stdin:
    // a broken pipe here is that, not a test failure.
    let _ = child.stdin.take().expect("piped stdin").write_all(stdin);
    child.wait_with_output().expect("the binary ends")
}

/// (exit code, stdout, stderr)
fn run(args: &[&str], stdin: &[u8]) -> (i32, String, String) {
    let o = run_with(args, stdin);
    (
        o.status.code().expect("exited"),
        String::from_utf8(o.stdout).expect("UTF-8 stdout"),
        String::from_utf8(o.stderr).expect("UTF-8 stderr"),
    )
}

fn temp_file(name: &str, content: &str) -> String {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let p = dir.join(name);
    std::fs::write(&p, content).expect("temp file written");
    p.to_string_lossy().into_owned()
}

// ---------------------------------------------------------------- check-config

/// The uwsgi-stats configuration the nginx example ships (`"mode": "nginx"`)
/// passes, exactly as the plugin reads it; a typo in it is refused naming the key.
#[test]
fn check_config_reads_the_nginx_example_uwsgi_stats_config() {
    let conf = std::fs::read_to_string(path("examples/nginx-wasm/nginx-uwsgi-stats.conf"))
        .expect("example read");
    let json = conf
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("proxy_wasm uwsgi_stats '")
                .and_then(|r| r.strip_suffix("';"))
        })
        .expect("the example's proxy_wasm uwsgi_stats line");
    assert_eq!(
        run(&["check-config", "uwsgi-stats", "-"], json.as_bytes()),
        (
            0,
            "uwsgi-stats: configuration ok (nginx poller of 2 target(s))\n".to_string(),
            String::new()
        )
    );
    let typo = json.replace("\"interval_ms\"", "\"interval\"");
    let (code, out, err) = run(&["check-config", "uwsgi-stats", "-"], typo.as_bytes());
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(err.contains("interval"), "{err}");
}

#[test]
fn check_config_accepts_the_example_configs() {
    let cases = [
        (
            "red-filter",
            r#"{"route_patterns": ["/users/{id}", "/users/{id}/orders/{order_id}"], "max_series": 1000}"#,
            "red-filter: configuration ok (max_series 1000, exposition Host)\n",
        ),
        (
            "uwsgi-tcp",
            r#"{"route_patterns": ["/items/{id}"], "max_series": 1000}"#,
            "uwsgi-tcp: configuration ok (head_limit 65539, response_head_limit 16384)\n",
        ),
        (
            "uwsgi-stats",
            r#"{"targets": [{"name": "app1", "cluster": "uwsgi_stats_app1"}], "interval_ms": 1000, "timeout_ms": 800}"#,
            "uwsgi-stats: configuration ok (poller of 1 target(s))\n",
        ),
        (
            "uwsgi-stats",
            r#"{"mode": "admin", "snapshot_path": "/uwsgi/snapshot.json", "metrics_path": "/uwsgi/metrics"}"#,
            "uwsgi-stats: configuration ok (admin)\n",
        ),
        (
            "otel-processor",
            r#"{"uwsgi_prefixes": ["uwsgi", "myapp"]}"#,
            "otel-processor: configuration ok (uwsgi_prefixes [\"uwsgi\", \"myapp\"])\n",
        ),
    ];
    for (plugin, json, want) in cases {
        // From stdin and from a file: same verdict.
        assert_eq!(
            run(&["check-config", plugin, "-"], json.as_bytes()),
            (0, want.to_string(), String::new())
        );
        let f = temp_file(&format!("ok-{plugin}.json"), json);
        assert_eq!(
            run(&["check-config", plugin, &f], b""),
            (0, want.to_string(), String::new())
        );
    }
}

#[test]
fn check_config_prints_the_plugins_own_error_naming_the_key() {
    use uwsgi_red_core::red::config::RedFilterConfig;
    use uwsgi_red_core::stats::config::UwsgiStatsConfig;
    use uwsgi_red_core::uwsgi::config::UwsgiTcpConfig;

    let red = br#"{"max_series": 0}"#;
    let tcp = br#"{"head_limit": 2}"#;
    let stats = br#"{"targets": [{"name": "app1", "clustr": "x"}]}"#;
    let otel = br#"{"uwsgi_prefixes": ["uwsgi"], "servces": {}}"#;
    // What each plugin reports (Envoy: its critical on_configure log line;
    // the processor: the status reason of every batch).
    let cases: [(&str, &[u8], String, &str); 4] = [
        (
            "red-filter",
            red,
            format!(
                "red-filter: {}; passing traffic through unmeasured",
                RedFilterConfig::from_json(red).unwrap_err()
            ),
            "max_series",
        ),
        (
            "uwsgi-tcp",
            tcp,
            format!(
                "uwsgi-tcp: {}; passing traffic through unmeasured",
                UwsgiTcpConfig::from_json(tcp).unwrap_err()
            ),
            "head_limit",
        ),
        (
            "uwsgi-stats",
            stats,
            format!(
                "{}; not polling, passing traffic through",
                UwsgiStatsConfig::from_json(stats).unwrap_err()
            ),
            "clustr",
        ),
        (
            "otel-processor",
            otel,
            format!(
                "plugin_config rejected, metrics passed through unchanged: {}",
                otel_processor::load_config(otel).unwrap_err()
            ),
            "servces",
        ),
    ];
    for (plugin, json, logged, key) in cases {
        let (code, out, err) = run(&["check-config", plugin, "-"], json);
        assert_eq!((code, out.as_str()), (1, ""), "{plugin}");
        assert_eq!(err, format!("{logged}\n"), "{plugin}");
        assert!(err.contains(key), "{plugin}: {err}");
    }
    assert_eq!(
        run(&["check-config", "red-filter", "-"], red).2,
        "red-filter: invalid plugin configuration at `max_series`: must be between 1 and 100000, \
got 0; passing traffic through unmeasured\n"
    );
}

/// The scrape access keys go through the plugins' own parsers: accepted,
/// refused naming the entry, and a refused token never echoed.
#[test]
fn check_config_knows_the_scrape_access_keys() {
    let ok = br#"{"exposition": "self", "scrape_allow_cidrs": ["10.0.0.0/8", "::1"], "scrape_bearer_token": "0123456789abcdef0123"}"#;
    assert_eq!(
        run(&["check-config", "red-filter", "-"], ok),
        (
            0,
            "red-filter: configuration ok (max_series 1000, exposition SelfServed)\n".into(),
            String::new()
        )
    );
    let bad = br#"{"exposition": "self", "scrape_allow_cidrs": ["10.0.0.0/8", "10.0.0.1/8"]}"#;
    assert_eq!(
        run(&["check-config", "red-filter", "-"], bad),
        (
            1,
            String::new(),
            "red-filter: invalid plugin configuration at `scrape_allow_cidrs[1]`: host bits set \
(write the network address); passing traffic through unmeasured\n"
                .into()
        )
    );
    let short = br#"{"mode": "admin", "scrape_bearer_token": "hunter2"}"#;
    let (code, _, err) = run(&["check-config", "uwsgi-stats", "-"], short);
    assert_eq!(code, 1);
    assert!(
        err.contains("`scrape_bearer_token`") && !err.contains("hunter2"),
        "{err}"
    );
    let admin = br#"{"mode": "admin", "scrape_allow_cidrs": []}"#;
    assert_eq!(run(&["check-config", "uwsgi-stats", "-"], admin).0, 0);
    let cron = br#"{"targets": [{"name": "a", "cluster": "c"}], "cron_commands": true, "snapshot_process_details": true}"#;
    assert_eq!(run(&["check-config", "uwsgi-stats", "-"], cron).0, 0);
    let typo = br#"{"targets": [{"name": "a", "cluster": "c"}], "cron_command": true}"#;
    assert!(run(&["check-config", "uwsgi-stats", "-"], typo)
        .2
        .contains("`cron_command`"));
}

/// The Envoy plugins' refusal lines, as `check-config` words them, are the
/// ones in the plugins' sources (those crates only build for Wasm hosts, so
/// their `on_configure` cannot run here).
#[test]
fn refusal_wording_matches_the_plugin_sources() {
    for (plugin, wording) in [
        (
            "red-filter",
            r#"format!("red-filter: {e}; passing traffic through unmeasured")"#,
        ),
        (
            "uwsgi-tcp",
            r#"format!("uwsgi-tcp: {e}; passing traffic through unmeasured")"#,
        ),
        (
            "uwsgi-stats",
            r#"format!("{e}; not polling, passing traffic through")"#,
        ),
    ] {
        let src = std::fs::read_to_string(path(&format!("plugins/{plugin}/src/lib.rs")))
            .expect("plugin source");
        assert!(src.contains(wording), "{plugin} no longer logs {wording}");
        assert_eq!(
            uwsgi_red_cli::check_config::envoy_log_line(plugin, "E"),
            wording
                .trim_start_matches("format!(\"")
                .trim_end_matches("\")")
                .replace("{e}", "E")
        );
    }
}

#[test]
fn check_config_usage_and_unreadable_file() {
    let (code, out, err) = run(&["check-config", "nginx", "-"], b"{}");
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(
        err.starts_with("uwsgi-red: unknown plugin \"nginx\"; usage: uwsgi-red check-config "),
        "{err}"
    );
    assert_eq!(run(&["check-config", "red-filter"], b"").0, 2);
    assert_eq!(run(&["check-config", "red-filter", "a", "b"], b"").0, 2);
    let (code, _, err) = run(&["check-config", "red-filter", "/nonexistent/x.json"], b"");
    assert_eq!(code, 1);
    assert!(err.starts_with("uwsgi-red: /nonexistent/x.json: "), "{err}");
    let (code, out, err) = run(&["check-config", "--help"], b"");
    assert_eq!((code, err.as_str()), (0, ""));
    assert!(out.starts_with("usage: uwsgi-red check-config <red-filter|uwsgi-tcp|uwsgi-stats|otel-processor> <file|->\n"));
}

// ------------------------------------------------------------------------ logs

#[test]
fn logs_gunicorn_lines_exact() {
    let path = vector("gunicorn_access_custom_M.log");
    let (code, out, err) = run(&["logs", &path, "--duration-field", "M"], b"");
    assert_eq!((code, err.as_str()), (0, ""));
    let first = out.lines().next().unwrap_or_default();
    assert_eq!(
        first,
        r#"{"client.address":"127.0.0.1","http.request.method":"GET","http.response.body.size":19,"http.response.status_code":200,"http.route":"/","http.server.request.duration":0.0,"network.protocol.version":"1.1","time_unix_nano":1795320756000000000,"url.path":"/","user_agent.original":"curl/7.88.1","uwsgi_red.log.format":"gunicorn_millis","uwsgi_red.log.parsed":true}"#
    );
    assert!(
        out.contains(r#""http.server.request.duration":1.5,"#),
        "{out}"
    );
    let lines = std::fs::read_to_string(vector("gunicorn_access_custom_M.log")).unwrap();
    assert_eq!(
        out.lines().count(),
        lines.lines().filter(|l| !l.trim().is_empty()).count()
    );
}

/// The documented queue-time log-format, captured from uWSGI: every line
/// gets exactly one of the two queue attributes, and stderr counts them.
#[test]
fn logs_uwsgi_queue_attribute_per_line() {
    let (code, out, err) = run(&["logs", &vector("uwsgi_reqlog_queue.log")], b"");
    assert_eq!(code, 0);
    assert_eq!(
        err,
        format!(
            "uwsgi-red: logs: {}: note: queue time on 3 line(s) (mean 0.010137 s); none on 5 \
(stamp missing 3, unparsable 1, skewed 1)\n",
            vector("uwsgi_reqlog_queue.log")
        )
    );
    let got: Vec<(String, serde_json::Value, serde_json::Value)> = out
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["url.path"].as_str().unwrap().to_string(),
                v["uwsgi_red.queue.duration"].clone(),
                v["uwsgi_red.queue.error"].clone(),
            )
        })
        .collect();
    use serde_json::json as j;
    assert_eq!(
        got,
        [
            ("/a".into(), j!(null), j!("missing")),
            ("/b".into(), j!(0.018778), j!(null)),
            ("/c".into(), j!(0.006217), j!(null)),
            ("/d".into(), j!(0.005417), j!(null)),
            ("/e".into(), j!(null), j!("unparsable")),
            ("/f".into(), j!(null), j!("skewed")),
            ("/g".into(), j!(null), j!("missing")),
            ("/h".into(), j!(null), j!("missing")),
        ]
    );
    // No user: `(-)` is not a user name.
    assert!(!out.contains("enduser.id"), "{out}");
    // A line without the queue fields carries neither attribute, and no note.
    let (code, out, err) = run(&["logs", &vector("uwsgi_reqlog_http_socket.log")], b"");
    assert_eq!((code, err.as_str()), (0, ""));
    assert!(!out.contains("uwsgi_red.queue"), "{out}");
}

/// gunicorn with the documented gunicorn.conf.py (the start stamped by a
/// pre_request hook): the same attributes as uWSGI's lines.
#[test]
fn logs_gunicorn_queue_attribute_per_line() {
    let path = vector("gunicorn_access_queue.log");
    let (code, out, err) = run(&["logs", &path, "--duration-field", "D"], b"");
    assert_eq!(code, 0);
    assert_eq!(
        err,
        format!(
            "uwsgi-red: logs: {path}: note: queue time on 7 line(s) (mean 0.252875 s); none on 1 \
(stamp missing 1, unparsable 0, skewed 0)\n"
        )
    );
    let queue: Vec<serde_json::Value> = out
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["uwsgi_red.log.format"], "gunicorn_micros");
            v.get("uwsgi_red.queue.duration")
                .or(v.get("uwsgi_red.queue.error"))
                .unwrap()
                .clone()
        })
        .collect();
    assert_eq!(
        queue,
        serde_json::json!([
            "missing", 0.223128, 0.180638, 0.195985, 0.174616, 0.247236, 0.348562, 0.399958
        ])
        .as_array()
        .unwrap()
        .clone()
    );
}

#[test]
fn logs_uwsgi_line_and_unrecognised_line() {
    let text = "*** Starting uWSGI 2.0.30 ***\n\
[pid: 23926|app: 0|req: 1/1] 127.0.0.1 () {24 vars in 244 bytes} [Sun Nov 22 04:01:24 2026] POST /a?b=1 => generated 19 bytes in 7 msecs (HTTP/1.1 503) 3 headers in 81 bytes (1 switches on core 2)\n";
    let (code, out, err) = run(&["logs", "-"], text.as_bytes());
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(
        out,
        "{\"uwsgi_red.log.parsed\":false}\n\
{\"client.address\":\"127.0.0.1\",\"error.type\":\"503\",\"http.request.method\":\"POST\",\"http.response.body.size\":19,\"http.response.status_code\":503,\"http.route\":\"/a\",\"http.server.request.duration\":0.007,\"network.protocol.version\":\"1.1\",\"process.pid\":23926,\"url.path\":\"/a\",\"url.query\":\"b=1\",\"uwsgi.core.id\":2,\"uwsgi.request.vars\":24,\"uwsgi.worker.requests\":1,\"uwsgi_red.log.format\":\"uwsgi\",\"uwsgi_red.log.parsed\":true}\n"
    );
    // A forced format turns the other producer's lines into "not parsed".
    let (code, out, _) = run(&["logs", "-", "--format", "uwsgi"], text.as_bytes());
    assert_eq!(code, 0);
    assert_eq!(
        out.lines()
            .filter(|l| l.contains("\"uwsgi_red.log.parsed\":true"))
            .count(),
        1
    );
    let (code, out, err) = run(&["logs", "-", "--format", "gunicorn"], text.as_bytes());
    assert_eq!((code, out.as_str()), (1, ""));
    assert_eq!(err, "uwsgi-red: logs: -: no request line recognised\n");
}

#[test]
fn logs_config_templates_and_duration_field() {
    let line = "127.0.0.1 - - [22/Nov/2026:04:12:36 +0000] \"GET /users/42?x=1 HTTP/1.1\" 200 19 \"-\" \"curl/7.88.1\" 1500\n";
    let cfg = temp_file(
        "otel-logs.json",
        r#"{"route_patterns": ["/users/{id}"], "gunicorn_duration_field": "D"}"#,
    );
    let (code, out, err) = run(&["logs", "-", "--config", &cfg], line.as_bytes());
    assert_eq!((code, err.as_str()), (0, ""));
    assert!(out.contains(r#""http.route":"/users/{id}""#), "{out}");
    // %(D)s is microseconds: 1500 us.
    assert!(
        out.contains(r#""http.server.request.duration":0.0015,"#),
        "{out}"
    );
    // Without a declaration the recommended format's %(D)s is the default,
    // and stderr says the integer was read as microseconds.
    let (code, out, err) = run(&["logs", "-"], line.as_bytes());
    assert_eq!(code, 0);
    assert!(
        out.contains(r#""http.server.request.duration":0.0015,"#),
        "{out}"
    );
    assert_eq!(
        err,
        "uwsgi-red: logs: -: note: read the request time of 1 gunicorn line(s) as %(D)s, \
microseconds (an integer) (the default); if your access_log_format ends in %(M)s or %(L)s, \
say so with --duration-field M|L\n"
    );
    // Declared %(M)s (flag over config): milliseconds, no note.
    for args in [
        &["logs", "-", "--duration-field", "M"][..],
        &["logs", "-", "--config", &cfg, "--duration-field", "M"],
    ] {
        let (code, out, err) = run(args, line.as_bytes());
        assert_eq!((code, err.as_str()), (0, ""), "{args:?}");
        assert!(
            out.contains(r#""http.server.request.duration":1.5,"#),
            "{out}"
        );
    }
    // %(L)s decimal seconds under the default: not guessed. The line is
    // parsed without a duration, flagged, and the exit is 1.
    let seconds = line.replace(" 1500\n", " 0.001500\n");
    let (code, out, err) = run(&["logs", "-"], seconds.as_bytes());
    assert_eq!(code, 1);
    assert!(!out.contains("http.server.request.duration"), "{out}");
    assert!(out.contains(r#""uwsgi_red.log.duration_error":"request time \"0.001500\" is not a gunicorn %(D)s, microseconds (an integer) value: gunicorn_duration_field is \"D\"""#), "{out}");
    assert_eq!(
        err,
        "uwsgi-red: logs: -: 1 gunicorn request time(s) left unread, first at line 1: request time \
\"0.001500\" is not a gunicorn %(D)s, microseconds (an integer) value: gunicorn_duration_field is \
\"D\"; declare the field your access_log_format ends in with --duration-field M|D|L\n"
    );
    let (code, out, err) = run(&["logs", "-", "--duration-field", "L"], seconds.as_bytes());
    assert_eq!((code, err.as_str()), (0, ""));
    assert!(
        out.contains(r#""http.server.request.duration":0.0015,"#),
        "{out}"
    );
    assert!(
        out.contains(r#""uwsgi_red.log.format":"gunicorn_seconds""#),
        "{out}"
    );
    assert_eq!(
        run(&["logs", "-", "--duration-field", "T"], line.as_bytes()).0,
        2
    );
    let bad = temp_file("otel-logs-bad.json", r#"{"gunicorn_duration_field": "T"}"#);
    let (code, out, err) = run(&["logs", "-", "--config", &bad], line.as_bytes());
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(err.starts_with("uwsgi-red: logs: processor configuration: invalid plugin configuration at `gunicorn_duration_field`"), "{err}");
}

#[test]
fn logs_usage() {
    assert_eq!(run(&["logs"], b"").0, 2);
    assert_eq!(run(&["logs", "-", "--format", "nginx"], b"").0, 2);
    assert_eq!(run(&["logs", "-", "--format"], b"").0, 2);
    assert_eq!(run(&["logs", "-", "--colour"], b"").0, 2);
    let (code, out, _) = run(&["logs", "--help"], b"");
    assert_eq!(code, 0);
    assert!(out.starts_with(
        "usage: uwsgi-red logs <file|-> [--format auto|uwsgi|gunicorn] [--config <file>] [--duration-field M|D|L]\n"
    ));
}

// ---------------------------------------------------------------------- statsd

#[test]
fn statsd_gunicorn_datagrams_exact() {
    let text = "app.gunicorn.request.status.200:1|c|@1.0\n\
app.gunicorn.request.status.200:1|c\n\
app.gunicorn.request.status.503:1|c|@0.5\n\
app.gunicorn.requests:4|c\n\
app.gunicorn.workers:2|g\n\
app.gunicorn.request.duration:20|ms\n\
app.gunicorn.request.duration:3000|ms\n\
other.metric:5|g\n";
    let (code, out, err) = run(&["statsd", "-"], text.as_bytes());
    assert_eq!((code, err.as_str()), (0, ""));
    let want = [
        // Not gunicorn/uWSGI: passed through as the receiver made it.
        r#"{"attributes":{},"name":"other.metric","resource":{},"scope":"","type":"gauge","unit":"","value":5.0}"#,
        r#"{"attributes":{"http.response.status_code":200},"monotonic":true,"name":"http.server.request.count","resource":{"service.name":"app"},"scope":"uwsgi-red/otel-processor","temporality":"delta","type":"sum","unit":"{request}","value":2}"#,
        r#"{"attributes":{"error.type":"503","http.response.status_code":503},"monotonic":true,"name":"http.server.request.count","resource":{"service.name":"app"},"scope":"uwsgi-red/otel-processor","temporality":"delta","type":"sum","unit":"{request}","value":2}"#,
        r#"{"attributes":{},"name":"gunicorn.workers","resource":{"service.name":"app"},"scope":"uwsgi-red/otel-processor","type":"gauge","unit":"{worker}","value":2.0}"#,
        r#"{"attributes":{},"bounds":[0.0005,0.001,0.0025,0.005,0.01,0.025,0.05,0.075,0.1,0.25,0.5,0.75,1.0,2.5,5.0,7.5,10.0],"bucket_counts":[0,0,0,0,0,1,0,0,0,0,0,0,0,0,1,0,0,0],"count":2,"max":3.0,"min":0.02,"name":"http.server.request.duration","resource":{"service.name":"app"},"scope":"uwsgi-red/otel-processor","sum":3.02,"temporality":"delta","type":"histogram","unit":"s"}"#,
    ];
    let got: Vec<&str> = out.lines().collect();
    assert_eq!(got.len(), want.len(), "{out}");
    for w in want {
        assert!(got.contains(&w), "missing {w}\nin\n{out}");
    }
}

#[test]
fn statsd_uwsgi_capture_under_its_prefix() {
    let cfg = temp_file("otel-myapp.json", r#"{"uwsgi_prefixes": ["myapp"]}"#);
    let (code, out, err) = run(
        &[
            "statsd",
            &vector("statsd_uwsgi_2.0.30_prefix_myapp.txt"),
            "--config",
            &cfg,
        ],
        b"",
    );
    assert_eq!((code, err.as_str()), (0, ""));
    assert!(
        out.lines()
            .all(|l| l.contains(r#""resource":{"service.name":"myapp"}"#)),
        "{out}"
    );
    assert!(out.contains(r#"{"attributes":{"uwsgi.worker.state":"idle"},"name":"uwsgi.workers","resource":{"service.name":"myapp"},"scope":"uwsgi-red/otel-processor","type":"gauge","unit":"{worker}","value":2.0}"#), "{out}");
    // Worker 0 is uWSGI's aggregate: dropped as redundant.
    assert!(!out.contains(r#""worker.id":0"#));
    // Five push rounds of running totals (worker 1: 0, 7, 15, 22, 22): the
    // latest push counts, as on the Collector, not the sum (66).
    for w in [
        r#"{"attributes":{"worker.id":1},"monotonic":true,"name":"http.server.request.count","resource":{"service.name":"myapp"},"scope":"uwsgi-red/otel-processor","temporality":"cumulative","type":"sum","unit":"{request}","value":22}"#,
        r#"{"attributes":{"worker.id":2},"monotonic":true,"name":"http.server.request.count","resource":{"service.name":"myapp"},"scope":"uwsgi-red/otel-processor","temporality":"cumulative","type":"sum","unit":"{request}","value":2}"#,
        r#"{"attributes":{},"monotonic":true,"name":"uwsgi.transmitted","resource":{"service.name":"myapp"},"scope":"uwsgi-red/otel-processor","temporality":"cumulative","type":"sum","unit":"By","value":301884}"#,
    ] {
        assert!(out.lines().any(|l| l == w), "missing {w}\nin\n{out}");
    }
    // Without the prefix configured, uWSGI's generic names are not claimed.
    let (code, out, _) = run(
        &["statsd", &vector("statsd_uwsgi_2.0.30_prefix_myapp.txt")],
        b"",
    );
    assert_eq!(code, 0);
    assert!(out.lines().all(|l| l.contains(r#""scope":"""#)), "{out}");
}

#[test]
fn statsd_over_the_name_budget_warns_and_still_prints() {
    // 10 001 distinct uWSGI names: one more than the processor rewrites.
    let text: String = (1..=10_001)
        .map(|w| format!("uwsgi.worker.{w}.requests:1|c\n"))
        .collect();
    let (code, out, err) = run(&["statsd", "-"], text.as_bytes());
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 10_001);
    assert_eq!(
        err,
        "uwsgi-red: statsd: -: 1 metrics with new StatsD names over the 10000-name budget \
passed through unchanged\n"
    );
    // The one over the budget keeps its StatsD name.
    assert_eq!(
        out.matches(r#""name":"uwsgi.worker.10001.requests""#)
            .count(),
        1,
        "{err}"
    );
}

#[test]
fn statsd_bad_input_and_usage() {
    let (code, out, err) = run(
        &["statsd", "-"],
        b"app.gunicorn.workers:2|g\nno-value-here\n",
    );
    assert_eq!((code, out.as_str()), (1, ""));
    assert_eq!(
        err,
        "uwsgi-red: statsd: -: line 2: no ':' between name and value\n"
    );
    let (code, _, err) = run(&["statsd", "-"], b"x:1|s\n");
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "uwsgi-red: statsd: -: line 1: unsupported metric type \"s\"\n"
    );
    let (code, _, err) = run(&["statsd", "-"], b"x:1|c|@2\n");
    assert_eq!(
        (code, err.as_str()),
        (
            1,
            "uwsgi-red: statsd: -: line 1: sample rate is not in (0, 1]\n"
        )
    );
    let bad_cfg = temp_file("otel-bad.json", r#"{"uwsgi_prefixes": [""]}"#);
    let (code, _, err) = run(&["statsd", "-", "--config", &bad_cfg], b"x:1|c\n");
    assert_eq!(code, 1);
    assert!(err.starts_with("uwsgi-red: statsd: -: processor configuration: invalid plugin configuration at `.uwsgi_prefixes`"), "{err}");
    assert_eq!(run(&["statsd"], b"").0, 2);
    assert_eq!(run(&["statsd", "a", "b"], b"").0, 2);
    assert_eq!(run(&["statsd", "-", "--config"], b"").0, 2);
    let (code, out, _) = run(&["statsd", "--help"], b"");
    assert_eq!(code, 0);
    assert!(out.starts_with("usage: uwsgi-red statsd <file|-> [--config <file>]\n"));
}

#[test]
fn help_of_every_command_exits_zero() {
    for cmd in ["stats", "decode", "check-config", "logs", "statsd"] {
        let (code, out, err) = run(&[cmd, "--help"], b"");
        assert_eq!((code, err.as_str()), (0, ""), "{cmd}");
        assert!(
            out.starts_with(&format!("usage: uwsgi-red {cmd}")),
            "{cmd}: {out}"
        );
    }
    let (code, out, _) = run(&["--help"], b"");
    assert_eq!(code, 0);
    assert!(out.contains("check-config") && out.contains("statsd"));
}
