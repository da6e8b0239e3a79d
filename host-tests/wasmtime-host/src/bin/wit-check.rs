//! The two checks test_component.py needs from a component toolchain, built
//! from the crates wasmtime already compiles here instead of a separate
//! `cargo install wasm-tools` (7–8 minutes on a fresh 2-core machine):
//!
//!   wit-check validate <file.wasm>   exit 0 when the module/component validates
//!   wit-check wit <file.wasm|dir>    the WIT of a component or of a WIT directory,
//!                                    main package first, the others nested
//!
//! Exit 1 on invalid input, 2 on usage.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use wasmparser::{Validator, WasmFeatures};
use wit_component::{DecodedWasm, WitPrinter};
use wit_parser::{PackageId, Resolve};

fn validate(path: &Path) -> Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Validator::new_with_features(WasmFeatures::all())
        .validate_all(&bytes)
        .with_context(|| format!("{} does not validate", path.display()))?;
    Ok(())
}

/// The package a component's world lives in, or the package of a WIT dir.
fn load(path: &Path) -> Result<(Resolve, PackageId)> {
    if path.is_dir() {
        let mut resolve = Resolve::default();
        let (pkg, _) = resolve.push_dir(path)?;
        return Ok((resolve, pkg));
    }
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    match wit_component::decode(&bytes)? {
        DecodedWasm::WitPackage(resolve, pkg) => Ok((resolve, pkg)),
        DecodedWasm::Component(resolve, world) => {
            let pkg = resolve.worlds[world]
                .package
                .context("the component's world belongs to no package")?;
            Ok((resolve, pkg))
        }
    }
}

fn wit(path: &Path) -> Result<String> {
    let (resolve, main) = load(path)?;
    // Every other package (interfaces the world exports, WASI imports)
    // printed as nested `package … { }` blocks, so one text holds them all.
    let nested: Vec<PackageId> = resolve
        .packages
        .iter()
        .map(|(id, _)| id)
        .filter(|id| *id != main)
        .collect();
    let mut printer = WitPrinter::default();
    printer.print(&resolve, main, &nested)?;
    Ok(printer.output.to_string())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.as_slice() {
        [cmd, path] if cmd == "validate" => validate(Path::new(path)).map(|()| None),
        [cmd, path] if cmd == "wit" => wit(Path::new(path)).map(Some),
        _ => {
            eprintln!("usage: wit-check validate <file.wasm> | wit-check wit <file.wasm|wit-dir>");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(Some(text)) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Ok(None) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wit-check: {e:#}");
            ExitCode::from(1)
        }
    }
}
