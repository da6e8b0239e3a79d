//! The component under wasmtime, with bindings generated from the same WIT.
//!
//! The component is built for wasm32-wasip2, so Rust's std gives it WASI
//! imports (stdio, environment, exit, random). None is called while a WIT
//! function runs normally except `wasi:random/insecure-seed`, which std's
//! `HashSet` (core's cardinality limiter) asks for when a recorder is
//! created; this host provides that one function and makes every other
//! import a trap, so no WASI implementation (and no wasmtime-wasi) is needed
//! and any unexpected WASI use fails the tests loudly.

use std::hash::{BuildHasher, RandomState};
use std::path::{Path, PathBuf};

use serde_json::Value;
use wasmtime::component::{Component, Linker, ResourceAny};
use wasmtime::{Config, Engine, Store};

use crate::cases::{self, Case};
use crate::js::Js;
use crate::native::replay_summary;

/// wasmtime's host-side types for the WIT package.
#[allow(missing_debug_implementations)]
pub mod wit {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "uwsgi-red",
    });
}

use wit::exports::uwsgi_red::core::{red, stats};

mod host_js {
    use super::wit::exports::uwsgi_red::core as root;
    crate::js::impl_all!();
}

pub fn artifact() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist/uwsgi-red.component.wasm")
}

#[allow(missing_debug_implementations)]
pub struct Host {
    pub store: Store<()>,
    pub api: wit::UwsgiRed,
}

impl Host {
    /// Compiles and instantiates `dist/uwsgi-red.component.wasm`.
    pub fn load() -> wasmtime::Result<Self> {
        let path = artifact();
        if !path.exists() {
            return Err(wasmtime::format_err!(
                "{} is missing: run ./build.sh build first",
                path.display()
            ));
        }
        let engine = Engine::new(&Config::new())?;
        let component = Component::from_file(&engine, &path)?;
        let mut linker: Linker<()> = Linker::new(&engine);
        let seed = component
            .component_type()
            .imports(&engine)
            .map(|(name, _)| name.to_string())
            .find(|n| n.starts_with("wasi:random/insecure-seed@"));
        if let Some(name) = seed {
            linker
                .instance(&name)?
                .func_wrap("insecure-seed", |_, (): ()| {
                    // Only seeds HashSet's hasher; any value works, a random
                    // one keeps HashDoS resistance as on a real WASI host.
                    let s = RandomState::new();
                    Ok(((s.hash_one(1u8), s.hash_one(2u8)),))
                })?;
        }
        linker.define_unknown_imports_as_traps(&component)?;
        let mut store = Store::new(&engine, ());
        let api = wit::UwsgiRed::instantiate(&mut store, &component, &linker)?;
        Ok(Self { store, api })
    }

    /// One case through the component, in the canonical JSON.
    pub fn run(&mut self, dir: &Path, case: &Case) -> wasmtime::Result<Value> {
        let a = &case.args;
        let limit = a["limit"].as_u64().map(|l| l as u32);
        let target = || a["target"].as_str().expect("target").to_string();
        let st = &mut self.store;
        let u = self.api.uwsgi_red_core_uwsgi();
        let s = self.api.uwsgi_red_core_stats();
        let l = self.api.uwsgi_red_core_logs();
        let r = self.api.uwsgi_red_core_red();
        Ok(match case.call {
            "uwsgi.decode-head" => u.call_decode_head(st, &cases::input(dir, a), limit)?.js(),
            "uwsgi.decode-head-spans" => u
                .call_decode_head_spans(st, &cases::input(dir, a), limit)?
                .js(),
            "uwsgi.encode-head" => {
                let (m1, m2, vars) = cases::packet_vars(&cases::input(dir, a));
                u.call_encode_head(st, m1, m2, &vars)?.js()
            }
            "uwsgi.response-status" => u.call_response_status(st, &cases::input(dir, a))?.js(),
            "uwsgi.modifier-name" => {
                let mut names = Vec::new();
                for code in 0..=255u8 {
                    names.push(u.call_modifier_name(&mut *st, code)?);
                }
                names.js()
            }
            "stats.decode" => s.call_decode(st, &cases::input(dir, a))?.js(),
            "stats.families" => s
                .call_families(
                    st,
                    &cases::input(dir, a),
                    &target(),
                    map_options(&a["options"]),
                )?
                .js(),
            "stats.prometheus-text" => s
                .call_prometheus_text(
                    st,
                    &cases::input(dir, a),
                    &target(),
                    map_options(&a["options"]),
                )?
                .js(),
            "logs.parse-line" => l.call_parse_line(st, &cases::line(dir, a))?.js(),
            "red.default-options" => r.call_default_options(st)?.js(),
            "red.create" => match r
                .recorder()
                .call_create(&mut *st, &recorder_options(&a["options"]))?
            {
                Ok(handle) => {
                    handle.resource_drop(&mut *st)?;
                    Ok::<u8, red::ConfigError>(0).js()
                }
                Err(e) => Err::<u8, _>(e).js(),
            },
            "red.replay" => {
                let rec = r.recorder();
                let handle: ResourceAny = rec
                    .call_create(&mut *st, &recorder_options(&a["options"]))?
                    .map_err(|e| wasmtime::format_err!("replay options rejected: {e:?}"))?;
                let text = String::from_utf8(cases::read(dir, a["file"].as_str().expect("file")))?;
                for line in text.split('\n') {
                    if let Some(p) = l.call_parse_line(&mut *st, line)? {
                        let (m, path, code, d) =
                            cases::record_args(&p.method, &p.path, p.status, p.duration_us);
                        rec.call_record(&mut *st, handle, &m, &path, code, d)?;
                    }
                }
                let summary = replay_summary(
                    rec.call_series_count(&mut *st, handle)?,
                    rec.call_dropped(&mut *st, handle)?,
                    rec.call_prometheus_text(&mut *st, handle)?,
                    rec.call_families(&mut *st, handle)?.js(),
                );
                handle.resource_drop(&mut *st)?;
                summary
            }
            other => panic!("unknown call {other}"),
        })
    }
}

fn map_options(v: &Value) -> stats::MapOptions {
    stats::MapOptions {
        per_core: v["perCore"].as_bool().expect("perCore"),
        uwsgi_metrics: v["uwsgiMetrics"].as_bool().expect("uwsgiMetrics"),
    }
}

/// The same options as [`crate::native::recorder_options`], in host types.
fn recorder_options(v: &Value) -> red::RecorderOptions {
    let g = crate::native::recorder_options(v);
    red::RecorderOptions {
        service: g.service,
        route_patterns: g.route_patterns,
        collapse_ids: g.collapse_ids,
        max_series: g.max_series,
        buckets_seconds: g.buckets_seconds,
        protocol: match g.protocol {
            uwsgi_red_component::bindings::exports::uwsgi_red::core::red::Protocol::Http => {
                red::Protocol::Http
            }
            uwsgi_red_component::bindings::exports::uwsgi_red::core::red::Protocol::Uwsgi => {
                red::Protocol::Uwsgi
            }
        },
    }
}
