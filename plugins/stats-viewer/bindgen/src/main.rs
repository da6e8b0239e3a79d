//! `stats-viewer-bindgen --target web|nodejs --out-dir <dir> <module.wasm>`:
//! the subset of `wasm-bindgen` the viewer build uses (name and producers
//! sections removed, as `--remove-name-section --remove-producers-section`).

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use wasm_bindgen_cli_support::Bindgen;

struct Args {
    target: String,
    out_dir: String,
    module: String,
}

fn parse(mut it: impl Iterator<Item = String>) -> Result<Args> {
    let (mut target, mut out_dir, mut module) = (None, None, None);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--target" => target = it.next(),
            "--out-dir" => out_dir = it.next(),
            _ if a.starts_with("--") => bail!("unknown option {a}"),
            _ => module = Some(a),
        }
    }
    Ok(Args {
        target: target.context("--target web|nodejs is required")?,
        out_dir: out_dir.context("--out-dir is required")?,
        module: module.context("the module path is required")?,
    })
}

fn run(args: &Args) -> Result<()> {
    let mut b = Bindgen::new();
    // As the CLI sets them: .d.ts files, and for `web` an init() that finds
    // stats_viewer_bg.wasm next to the glue when called without a path.
    b.input_path(&args.module)
        .remove_name_section(true)
        .remove_producers_section(true)
        .typescript(true)
        .omit_default_module_path(false);
    match args.target.as_str() {
        "web" => b.web(true)?,
        "nodejs" => b.nodejs(true)?,
        other => bail!("--target {other}: only web and nodejs are used"),
    };
    b.generate(&args.out_dir).with_context(|| {
        format!(
            "generating bindings for {} into {}",
            args.module, args.out_dir
        )
    })
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("stats-viewer-bindgen: {e:#}\nusage: stats-viewer-bindgen --target web|nodejs --out-dir <dir> <module.wasm>");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stats-viewer-bindgen: {e:#}");
            ExitCode::from(1)
        }
    }
}
