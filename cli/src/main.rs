//! `uwsgi-red`: the project's native command line.
//!
//! ```text
//! uwsgi-red stats <file|tcp://host:port|http://host:port[/path]|unix:///path> [--target NAME] [--per-core] [--no-uwsgi-metrics] [--timeout-ms N]
//! uwsgi-red decode <packet file>
//! ```
//! `stats` prints the Prometheus text the `uwsgi-stats` Envoy plugin would
//! derive from one document (with exact float values). Errors are one line
//! on stderr and a non-zero exit: 1 for bad input, 2 for bad usage.

mod packet;
mod source;

use std::process::ExitCode;
use std::time::Duration;

use uwsgi_red_core::stats::families::{
    encode_text, map_document, scrape_families, MapOptions, ScrapeStatus,
};

const USAGE: &str = "usage: uwsgi-red stats <file|tcp://host:port|http://host:port|unix:///path> \
[--target NAME] [--per-core] [--no-uwsgi-metrics] [--timeout-ms N] | uwsgi-red decode <packet file>";

enum Failure {
    Usage(String),
    Input(String),
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(Failure::Usage(m)) => {
            eprintln!("uwsgi-red: {m}; {USAGE}");
            ExitCode::from(2)
        }
        Err(Failure::Input(m)) => {
            // One line, whatever the message held.
            eprintln!("uwsgi-red: {}", m.replace('\n', " "));
            ExitCode::from(1)
        }
    }
}

fn run(args: &[String]) -> Result<String, Failure> {
    match args.first().map(String::as_str) {
        Some("stats") => stats(&args[1..]),
        Some("decode") => match &args[1..] {
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
            "--no-uwsgi-metrics" => opts.uwsgi_metrics = false,
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
    Ok(encode_text(&fams))
}
