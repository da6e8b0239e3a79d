//! Argument handling of the offline checks; the work is in the library.

use std::io::Read;

use uwsgi_red_cli::{check_config, logs, statsd};

use crate::{wants_help, Failure};

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

pub const LOGS_USAGE: &str =
    "usage: uwsgi-red logs <file|-> [--format auto|uwsgi|gunicorn] [--config <file>]
  One JSON object per non-empty line: the attributes the otel-processor attaches
  (http.request.method, url.path, http.response.status_code, ...), or
  {\"uwsgi_red.log.parsed\":false} for a line it does not recognise (or of another
  format than --format). --config: the processor's plugin_config JSON (route templates,
  gunicorn duration field). Exit 1 when no line at all is recognised, or on a refused --config.";

pub const STATSD_USAGE: &str = "usage: uwsgi-red statsd <file|-> [--config <file>]
  One StatsD line per line (name:value|type[|@rate][|#tags]), aggregated as one interval
  of the Collector's statsd receiver (examples/otel-collector/config.yaml), then run
  through the otel-processor: one JSON object per data point it emits.
  --config: the processor's plugin_config JSON (default: its defaults, uwsgi_prefixes [\"uwsgi\"]).
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
    let (pos, opts) = split(args, &["--format", "--config"], LOGS_USAGE)?;
    let [path] = pos[..] else {
        return Err(usage("logs takes one file", LOGS_USAGE));
    };
    let mut format = logs::Format::Auto;
    let mut config = b"null".to_vec();
    for (flag, v) in opts {
        if flag == "--config" {
            config = read(v)?;
            continue;
        }
        format = logs::Format::parse(v)
            .ok_or_else(|| usage(format!("unknown --format {v:?}"), LOGS_USAGE))?;
    }
    let cfg = otel_processor::load_config(&config)
        .map_err(|e| Failure::Input(format!("logs: processor configuration: {e}")))?;
    let bytes = read(path)?;
    let (out, parsed) = logs::annotate(&cfg, &String::from_utf8_lossy(&bytes), format);
    if parsed == 0 {
        return Err(Failure::Input(format!(
            "logs: {path}: no request line recognised"
        )));
    }
    Ok(out)
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
        eprintln!("uwsgi-red: statsd: {path}: {w}");
    }
    Ok(emitted.lines)
}
