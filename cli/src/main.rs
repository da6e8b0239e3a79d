//! `uwsgi-red`: the project's native command line.
//!
//! ```text
//! uwsgi-red stats <file|tcp://host:port|http://host:port[/path]|unix:///path> [--target NAME] [--exact] [--per-core] [--no-uwsgi-metrics] [--cron-commands] [--upstream-host HOST] [--timeout-ms N]
//! uwsgi-red decode <packet file>
//! uwsgi-red check-config <red-filter|uwsgi-tcp|uwsgi-stats|otel-processor> <file|->
//! uwsgi-red schema <red-filter|uwsgi-tcp|uwsgi-stats|otel-processor> [--kong-meta]
//! uwsgi-red logs <file|-> [--format auto|uwsgi|gunicorn]
//! uwsgi-red statsd <file|-> [--config <otel-processor config file>]
//! ```
//! `stats` prints the `uwsgi_*` families Envoy's `/stats/prometheus` shows
//! after the `uwsgi-stats` plugin polled that document (integer values,
//! microsecond families), or with `--exact` the plugin's admin
//! `/uwsgi/metrics` text (exact floats, seconds); the last three are
//! offline checks to run before a deploy (see `uwsgi-red <command> --help`).
//! Errors are one line on stderr and a non-zero exit: 1 for bad input, 2 for
//! bad usage; `--help` prints to stdout and exits 0. A reader that closes
//! the pipe early (`| head -1`) ends the command quietly with 0.
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

mod commands;
mod packet;
mod source;

use std::io::{ErrorKind, Write};
use std::process::ExitCode;
use std::time::Duration;

use uwsgi_red_core::stats::families::{
    encode_text, host_families, map_document, scrape_families, MapOptions, ScrapeStatus,
};
use uwsgi_red_core::stats::upstream;

const USAGE: &str = "usage: uwsgi-red <stats|decode|check-config|schema|logs|statsd> ... \
(uwsgi-red <command> --help for each)";

const STATS_USAGE: &str =
    "usage: uwsgi-red stats <file|tcp://host:port|http://host:port|unix:///path> \
[--target NAME] [--exact] [--per-core] [--no-uwsgi-metrics] [--cron-commands] [--upstream-host HOST] [--timeout-ms N]
  Prints the uwsgi_* families Envoy's /stats/prometheus shows once the uwsgi-stats plugin
  polled this document: the same names (running and average response time in integer
  microseconds), integer values, and the poller's own uwsgi_stats_repairs_total,
  uwsgi_scrape_last_success_timestamp_seconds (now) and uwsgi_red_dropped_label_sets_total.
  --exact: the plugin's admin /uwsgi/metrics text instead (exact floats, _seconds names).
  --upstream-host: the target's `upstream_host` (uwsgi_upstream_info spells each TCP listen
  socket as HOST:port).";
const DECODE_USAGE: &str = "usage: uwsgi-red decode <packet file>";

pub(crate) enum Failure {
    Usage(String),
    Input(String),
    /// Bad input reported in someone else's exact words (a plugin's log
    /// line): printed as is, without the `uwsgi-red: ` prefix.
    Verbatim(String),
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(out) => write_stdout(&out),
        Err(Failure::Usage(m)) => {
            // Subcommands put their own synopsis in the message.
            if m.contains("usage: ") {
                warn(&format!("uwsgi-red: {m}"));
            } else {
                warn(&format!("uwsgi-red: {m}; {USAGE}"));
            }
            ExitCode::from(2)
        }
        Err(Failure::Verbatim(m)) => {
            warn(&m);
            ExitCode::from(1)
        }
        Err(Failure::Input(m)) => {
            // One line, whatever the message held.
            warn(&format!("uwsgi-red: {}", m.replace('\n', " ")));
            ExitCode::from(1)
        }
    }
}

/// Writes the result. A reader that stopped early (`| head -1`) closes the
/// pipe: that is the reader's choice, not a failure of this command, so a
/// broken pipe ends the command quietly with 0, as ripgrep does and as
/// `set -o pipefail` scripts expect (cat would die of SIGPIPE, status 141,
/// but Rust ignores SIGPIPE and `print!` would panic instead). Any other
/// write error (a full disk) is bad output: one line and 1, as cat does.
fn write_stdout(out: &str) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            warn(&format!("uwsgi-red: write error: {e}"));
            ExitCode::from(1)
        }
    }
}

/// One line on stderr; a closed stderr is ignored (`eprintln!` would panic).
pub(crate) fn warn(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
}

/// `--help`/`-h` anywhere among a command's arguments.
pub(crate) fn wants_help(args: &[String]) -> bool {
    args.iter().any(|a| a == "--help" || a == "-h")
}

fn run(args: &[String]) -> Result<String, Failure> {
    let rest = args.get(1..).unwrap_or_default();
    match args.first().map(String::as_str) {
        Some("stats") if wants_help(rest) => Ok(format!("{STATS_USAGE}\n")),
        Some("decode") if wants_help(rest) => Ok(format!("{DECODE_USAGE}\n")),
        Some("check-config") => commands::check_config(rest),
        Some("schema") => commands::schema(rest),
        Some("logs") => commands::logs(rest),
        Some("statsd") => commands::statsd(rest),
        Some("stats") => stats(rest),
        Some("decode") => match rest {
            [path] => {
                let bytes = std::fs::read(path)
                    .map_err(|e| Failure::Input(format!("decode: {path}: {e}")))?;
                packet::describe(&bytes).map_err(|e| Failure::Input(format!("decode: {path}: {e}")))
            }
            _ => Err(Failure::Usage(
                "decode takes exactly one packet file".into(),
            )),
        },
        Some("-h" | "--help" | "help") => Ok(format!("{USAGE}\n")),
        Some(other) => Err(Failure::Usage(format!("unknown command {other:?}"))),
        None => Err(Failure::Usage("missing command".into())),
    }
}

fn stats(args: &[String]) -> Result<String, Failure> {
    let mut src = None;
    let mut target = "uwsgi".to_string();
    let mut opts = MapOptions::default();
    let mut timeout = Duration::from_secs(5);
    let mut exact = false;
    let mut upstream_host: Option<String> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--target" => {
                target = it
                    .next()
                    .ok_or_else(|| Failure::Usage("--target needs a value".into()))?
                    .clone()
            }
            "--per-core" => opts.per_core = true,
            "--upstream-host" => {
                upstream_host = Some(
                    it.next()
                        .filter(|v| !v.is_empty())
                        .ok_or_else(|| Failure::Usage("--upstream-host needs a value".into()))?
                        .clone(),
                )
            }
            "--exact" => exact = true,
            "--no-uwsgi-metrics" => opts.uwsgi_metrics = false,
            "--cron-commands" => opts.cron_commands = true,
            "--timeout-ms" => {
                let v = it
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .filter(|v| *v > 0);
                let v = v.ok_or_else(|| {
                    Failure::Usage("--timeout-ms needs a positive integer".into())
                })?;
                timeout = Duration::from_millis(v);
            }
            s if s.starts_with("--") => {
                return Err(Failure::Usage(format!("unknown option {s:?}")))
            }
            s if src.is_none() => src = Some(s.to_string()),
            s => return Err(Failure::Usage(format!("unexpected argument {s:?}"))),
        }
    }
    let src = src.ok_or_else(|| Failure::Usage("stats needs a source".into()))?;
    let source = source::Source::parse(&src).map_err(|e| Failure::Usage(format!("stats: {e}")))?;
    let reply = source
        .fetch(timeout)
        .map_err(|e| Failure::Input(format!("stats: {e}")))?;
    let decoded = uwsgi_red_core::stats::decode(&reply)
        .map_err(|e| Failure::Input(format!("stats: {src}: {e} (reason {})", e.reason())))?;
    let status = ScrapeStatus {
        up: true,
        repairs: decoded.repairs as u64,
        document_bytes: decoded.body_bytes as u64,
    };
    let mut fams = scrape_families(&target, &status);
    fams.extend(map_document(&decoded.document, &target, &opts));
    let spelling = upstream::Spelling {
        host: upstream_host.as_deref(),
        list: &[],
    };
    fams.push(upstream::upstream_family(
        &decoded.document,
        &target,
        &spelling,
    ));
    if exact {
        return Ok(encode_text(&fams));
    }
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Ok(encode_text(&host_families(
        &fams,
        &target,
        status.repairs,
        now_s,
    )))
}
