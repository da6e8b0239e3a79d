//! Argument handling of the offline checks; the work is in the library.

use std::io::Read;

use uwsgi_red_cli::{check_config, logs, statsd};
use uwsgi_red_core::logs::DurationField;

use crate::{wants_help, warn, Failure};

pub const CHECK_CONFIG_USAGE: &str =
    "usage: uwsgi-red check-config <red-filter|uwsgi-tcp|uwsgi-stats|otel-processor> <file|->
  Parses the file (- = stdin) with the plugin's own configuration parser.
  Valid: prints `<plugin>: configuration ok (...)`, exit 0.
  Refused: prints on stderr exactly what the plugin logs (naming the key), exit 1.";

pub const SCHEMA_USAGE: &str =
    "usage: uwsgi-red schema <red-filter|uwsgi-tcp|uwsgi-stats|otel-processor> [--kong-meta]
  Prints the JSON Schema (draft-04) of the plugin's configuration, generated from the
  key tables its parser reads (./build.sh build writes dist/<plugin>.schema.json).
  --kong-meta: the same schema as Kong's <filter>.meta.json ({\"config_schema\": ...}).";

pub const LOGS_USAGE: &str = "usage: uwsgi-red logs <file|-> [--format auto|uwsgi|gunicorn] \
[--config <file>] [--duration-field M|D|L]
  One JSON object per non-empty line: the attributes the otel-processor attaches
  (http.request.method, url.path, http.response.status_code, ...), or
  {\"uwsgi_red.log.parsed\":false} for a line it does not recognise (or of another
  format than --format). --config: the processor's plugin_config JSON (route templates,
  gunicorn_duration_field).
  --duration-field: the request-time field your gunicorn access_log_format ends in:
  D = %(D)s microseconds (the default, as in the recommended format), M = %(M)s
  milliseconds, L = %(L)s decimal seconds; overrides the config's gunicorn_duration_field.
  %(M)s and %(D)s both print an integer and cannot be told apart: when the field is not
  declared, a note on stderr says how many request times were read as %(D)s. A request
  time of another shape (a decimal under D or M, an integer under L) is never guessed:
  its line carries uwsgi_red.log.duration_error and no duration, and the exit is 1.
  uWSGI lines in the documented queue-time log-format (... tmicros=%(tmicros)
  x_request_start=%(var.HTTP_X_REQUEST_START)) also get uwsgi_red.queue.duration (seconds,
  request start minus the proxy's X-Request-Start, clamped at 0) or uwsgi_red.queue.error
  (missing | unparsable | skewed); a note on stderr counts them and gives the mean queue time.
  Exit 1 when no line at all is recognised, on a refused --config, or on such a line.";

pub const STATSD_USAGE: &str = "usage: uwsgi-red statsd <file|-> [--config <file>]
  One StatsD line per line (name:value|type[|@rate][|#tags]), aggregated as one interval
  of the Collector's statsd receiver (examples/otel-collector/config.yaml), then run
  through the otel-processor: one JSON object per data point it emits.
  --config: the processor's plugin_config JSON (default: its defaults, uwsgi_prefixes [\"uwsgi\"]).
  Counters are summed, except uWSGI's: --stats-push sends running totals (worker.N.requests,
  core.total_tx, ...) with |c once per push period (3 s by default). The Collector example's
  statsd receiver (aggregation_interval 2 s, shorter than the push period) hands the processor
  one push per interval, the processor emits each as a cumulative sum, and Prometheus shows the
  latest push. A capture of several push rounds is read the same way: for the counters under a
  uwsgi_prefixes prefix the last value in the file counts, not the sum of the rounds.
  Exit 1 on a malformed line (named by number) or a refused --config.";

/// A usage error: the message and the command's one-line synopsis.
fn usage(msg: impl Into<String>, usage: &str) -> Failure {
    let synopsis = usage.lines().next().unwrap_or_default();
    Failure::Usage(format!("{}; {synopsis}", msg.into()))
}

/// Reads a file, or stdin for `-`.
fn read(path: &str) -> Result<Vec<u8>, Failure> {
    let mut buf = Vec::new();
    let r = if path == "-" {
        std::io::stdin().read_to_end(&mut buf).map(|_| ())
    } else {
        std::fs::read(path).map(|b| buf = b)
    };
    r.map_err(|e| Failure::Input(format!("{path}: {e}")))?;
    Ok(buf)
}

/// Positional arguments, then `(flag, value)` pairs.
type Parsed<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>);

/// Splits `args` into positionals and `--flag value` pairs from `flags`.
fn split<'a>(args: &'a [String], flags: &[&str], usage_text: &str) -> Result<Parsed<'a>, Failure> {
    let mut pos = Vec::new();
    let mut opts = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if flags.contains(&a.as_str()) {
            let v = it
                .next()
                .ok_or_else(|| usage(format!("{a} needs a value"), usage_text))?;
            opts.push((a.as_str(), v.as_str()));
        } else if a.starts_with("--") {
            return Err(usage(format!("unknown option {a:?}"), usage_text));
        } else {
            pos.push(a.as_str());
        }
    }
    Ok((pos, opts))
}

pub fn check_config(args: &[String]) -> Result<String, Failure> {
    if wants_help(args) {
        return Ok(format!("{CHECK_CONFIG_USAGE}\n"));
    }
    let (pos, _) = split(args, &[], CHECK_CONFIG_USAGE)?;
    let [plugin, path] = pos[..] else {
        return Err(usage(
            "check-config takes a plugin and a file",
            CHECK_CONFIG_USAGE,
        ));
    };
    if !check_config::PLUGINS.contains(&plugin) {
        return Err(usage(
            format!("unknown plugin {plugin:?}"),
            CHECK_CONFIG_USAGE,
        ));
    }
    let bytes = read(path)?;
    match check_config::check(plugin, &bytes) {
        Some(Ok(summary)) => Ok(format!("{plugin}: configuration ok ({summary})\n")),
        Some(Err(logged)) => Err(Failure::Verbatim(logged)),
        None => Err(usage(
            format!("unknown plugin {plugin:?}"),
            CHECK_CONFIG_USAGE,
        )),
    }
}

pub fn schema(args: &[String]) -> Result<String, Failure> {
    if wants_help(args) {
        return Ok(format!("{SCHEMA_USAGE}\n"));
    }
    let kong = args.iter().any(|a| a == "--kong-meta");
    let rest: Vec<String> = args
        .iter()
        .filter(|a| *a != "--kong-meta")
        .cloned()
        .collect();
    let (pos, _) = split(&rest, &[], SCHEMA_USAGE)?;
    let [plugin] = pos[..] else {
        return Err(usage("schema takes a plugin", SCHEMA_USAGE));
    };
    let Some(schema) = check_config::schema(plugin) else {
        return Err(usage(format!("unknown plugin {plugin:?}"), SCHEMA_USAGE));
    };
    let doc = if kong {
        serde_json::json!({ "config_schema": schema })
    } else {
        schema
    };
    serde_json::to_string_pretty(&doc)
        .map(|s| s + "\n")
        .map_err(|e| Failure::Input(e.to_string()))
}

pub fn logs(args: &[String]) -> Result<String, Failure> {
    if wants_help(args) {
        return Ok(format!("{LOGS_USAGE}\n"));
    }
    let (pos, opts) = split(
        args,
        &["--format", "--config", "--duration-field"],
        LOGS_USAGE,
    )?;
    let [path] = pos[..] else {
        return Err(usage("logs takes one file", LOGS_USAGE));
    };
    let mut format = logs::Format::Auto;
    let mut config = b"null".to_vec();
    let mut field = None;
    for (flag, v) in opts {
        match flag {
            "--config" => config = read(v)?,
            "--duration-field" => {
                field =
                    Some(DurationField::from_letter(v).ok_or_else(|| {
                        usage(format!("unknown --duration-field {v:?}"), LOGS_USAGE)
                    })?)
            }
            _ => {
                format = logs::Format::parse(v)
                    .ok_or_else(|| usage(format!("unknown --format {v:?}"), LOGS_USAGE))?
            }
        }
    }
    let mut cfg = otel_processor::load_config(&config)
        .map_err(|e| Failure::Input(format!("logs: processor configuration: {e}")))?;
    let declared = field.is_some() || declares_duration_field(&config);
    if let Some(f) = field {
        cfg.gunicorn_duration_field = f;
    }
    let bytes = read(path)?;
    let (out, sum) = logs::annotate(&cfg, &String::from_utf8_lossy(&bytes), format);
    if sum.parsed == 0 {
        return Err(Failure::Input(format!(
            "logs: {path}: no request line recognised"
        )));
    }
    let field = cfg.gunicorn_duration_field;
    if !declared && sum.gunicorn_times > 0 {
        eprintln!(
            "uwsgi-red: logs: {path}: note: read the request time of {} gunicorn line(s) as {} \
(the default); if your access_log_format ends in %(M)s or %(L)s, say so with --duration-field M|L",
            sum.gunicorn_times,
            field.describe()
        );
    }
    if let Some(note) = sum.queue_note() {
        eprintln!("uwsgi-red: logs: {path}: note: {note}");
    }
    if let Some((line, why)) = sum.first_unread {
        // The JSON lines are still the answer; the exit status says that
        // some durations are missing from it.
        let _ = std::io::Write::write_all(&mut std::io::stdout(), out.as_bytes());
        return Err(Failure::Input(format!(
            "logs: {path}: {} gunicorn request time(s) left unread, first at line {line}: {why}; \
declare the field your access_log_format ends in with --duration-field M|D|L",
            sum.unread_times
        )));
    }
    Ok(out)
}

/// Whether a plugin_config names `gunicorn_duration_field` (not the default).
fn declares_duration_field(config: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(config)
        .ok()
        .is_some_and(|v| v.get("gunicorn_duration_field").is_some())
}

pub fn statsd(args: &[String]) -> Result<String, Failure> {
    if wants_help(args) {
        return Ok(format!("{STATSD_USAGE}\n"));
    }
    let (pos, opts) = split(args, &["--config"], STATSD_USAGE)?;
    let [path] = pos[..] else {
        return Err(usage("statsd takes one file", STATSD_USAGE));
    };
    let mut config = b"null".to_vec();
    for (_, v) in opts {
        config = read(v)?;
    }
    let bytes = read(path)?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|e| Failure::Input(format!("statsd: {path}: not UTF-8: {e}")))?;
    let emitted =
        statsd::run(text, &config).map_err(|e| Failure::Input(format!("statsd: {path}: {e}")))?;
    if let Some(w) = emitted.warning {
        warn(&format!("uwsgi-red: statsd: {path}: {w}"));
    }
    Ok(emitted.lines)
}
