//! WIT values as JSON in the shape jco gives them to JavaScript, so one
//! canonical form serves both comparisons: wasmtime results vs native
//! results here, and jco results vs the fixture in `host-tests/jco/`.
//!
//! jco's mapping: records are objects with lowerCamelCase keys; variants are
//! `{tag, val}` (`val` absent for a case without payload); enums are their
//! kebab-case name; `option` is the value or undefined (JSON `null` here);
//! a `result` return is the value or a thrown error (`{ok}` / `{err}` here).
//! 64-bit integers are BigInts in JS and decimal strings here, so no
//! precision is lost in JSON; `list<u8>` is an array of numbers.

use serde_json::{json, Map, Value};

pub trait Js {
    fn js(&self) -> Value;
}

macro_rules! js_number {
    ($($t:ty),*) => { $(impl Js for $t { fn js(&self) -> Value { json!(self) } })* };
}
js_number!(u8, u16, u32, f64, bool);

macro_rules! js_bigint {
    ($($t:ty),*) => { $(impl Js for $t { fn js(&self) -> Value { Value::String(self.to_string()) } })* };
}
js_bigint!(u64, i64);

impl Js for String {
    fn js(&self) -> Value {
        Value::String(self.clone())
    }
}

impl<T: Js> Js for Vec<T> {
    fn js(&self) -> Value {
        Value::Array(self.iter().map(Js::js).collect())
    }
}

impl<T: Js> Js for Option<T> {
    fn js(&self) -> Value {
        self.as_ref().map_or(Value::Null, Js::js)
    }
}

impl<A: Js, B: Js> Js for (A, B) {
    fn js(&self) -> Value {
        Value::Array(vec![self.0.js(), self.1.js()])
    }
}

impl<T: Js, E: Js> Js for Result<T, E> {
    fn js(&self) -> Value {
        match self {
            Ok(v) => json!({ "ok": v.js() }),
            Err(e) => json!({ "err": e.js() }),
        }
    }
}

/// `max_queue` -> `maxQueue`, as jco names record fields.
pub fn camel(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

pub fn object(fields: Vec<(&str, Value)>) -> Value {
    Value::Object(
        fields
            .into_iter()
            .map(|(k, v)| (camel(k), v))
            .collect::<Map<_, _>>(),
    )
}

pub fn tag(name: &str, val: Option<Value>) -> Value {
    match val {
        Some(v) => json!({ "tag": name, "val": v }),
        None => json!({ "tag": name }),
    }
}

macro_rules! js_record {
    ($t:ty { $($f:ident),* $(,)? }) => {
        impl $crate::js::Js for $t {
            fn js(&self) -> ::serde_json::Value {
                $crate::js::object(vec![$((stringify!($f), $crate::js::Js::js(&self.$f))),*])
            }
        }
    };
}

macro_rules! js_enum {
    ($t:ty { $($case:ident => $name:literal),* $(,)? }) => {
        impl $crate::js::Js for $t {
            fn js(&self) -> ::serde_json::Value {
                ::serde_json::Value::String(match self { $(<$t>::$case => $name),* }.to_string())
            }
        }
    };
}

/// Implements [`Js`] for every type of the WIT package, for the type tree
/// rooted at `root` in the invoking module (the guest bindings of the
/// component crate, or wasmtime's host bindings): both are generated from
/// the same WIT, so their names and fields are the same.
macro_rules! impl_all {
    () => {
        use $crate::js::{tag, Js};
        use root::{logs as l, metrics as m, red as r, stats as s, uwsgi as u};

        $crate::js::js_enum!(m::MetricType { Counter => "counter", Gauge => "gauge", Histogram => "histogram", Untyped => "untyped" });
        $crate::js::js_record!(m::Sample { labels, value });
        $crate::js::js_record!(m::Bucket { upper_bound, cumulative_count });
        $crate::js::js_record!(m::HistogramPoint { labels, buckets, count, sum });
        $crate::js::js_record!(m::IntegerForm { name, factor });
        $crate::js::js_record!(m::MetricFamily { name, help, kind, integer_form, points });
        impl Js for m::Points {
            fn js(&self) -> ::serde_json::Value {
                match self {
                    m::Points::Scalars(v) => tag("scalars", Some(v.js())),
                    m::Points::Histograms(v) => tag("histograms", Some(v.js())),
                }
            }
        }

        impl Js for u::Octets {
            fn js(&self) -> ::serde_json::Value {
                match self {
                    u::Octets::Text(v) => tag("text", Some(v.js())),
                    u::Octets::Bytes(v) => tag("bytes", Some(v.js())),
                }
            }
        }
        $crate::js::js_record!(u::Var { key, value });
        $crate::js::js_enum!(u::PayloadKind { Request => "request", Vars => "vars", Opaque => "opaque" });
        $crate::js::js_record!(u::RequestHead {
            modifier1, modifier2, datasize, modifier_name, kind, head_len, method, path, content_length, vars, payload
        });
        $crate::js::js_record!(u::Span { offset, len });
        $crate::js::js_record!(u::HeadSpans {
            modifier1, modifier2, datasize, kind, head_len, method, path, content_length, vars
        });
        $crate::js::js_record!(u::Truncation { got, needed });
        $crate::js::js_record!(u::Oversize { datasize, limit });
        impl Js for u::DecodeError {
            fn js(&self) -> ::serde_json::Value {
                match self {
                    u::DecodeError::Truncated(v) => tag("truncated", Some(v.js())),
                    u::DecodeError::VarOverrun(v) => tag("var-overrun", Some(v.js())),
                    u::DecodeError::DatasizeTooLarge(v) => tag("datasize-too-large", Some(v.js())),
                    u::DecodeError::UnknownModifier(v) => tag("unknown-modifier", Some(v.js())),
                }
            }
        }
        impl Js for u::EncodeError {
            fn js(&self) -> ::serde_json::Value {
                match self {
                    u::EncodeError::ItemTooLong(v) => tag("item-too-long", Some(v.js())),
                    u::EncodeError::DatasizeTooLarge(v) => tag("datasize-too-large", Some(v.js())),
                }
            }
        }
        $crate::js::js_enum!(u::StatusSource { StatusLine => "status-line", CgiHeader => "cgi-header", CgiDefault => "cgi-default" });
        $crate::js::js_record!(u::Status { code, source });
        impl Js for u::ResponseError {
            fn js(&self) -> ::serde_json::Value {
                match self {
                    u::ResponseError::NotHttp(v) => tag("not-http", Some(v.js())),
                    u::ResponseError::BadStatus(v) => tag("bad-status", Some(v.js())),
                    u::ResponseError::TooLarge(v) => tag("too-large", Some(v.js())),
                    u::ResponseError::Truncated(v) => tag("truncated", Some(v.js())),
                }
            }
        }

        $crate::js::js_record!(s::Lock { name, pid });
        $crate::js::js_record!(s::Socket { name, proto, queue, max_queue, shared, can_offload });
        impl Js for s::WorkerStatus {
            fn js(&self) -> ::serde_json::Value {
                match self {
                    s::WorkerStatus::Idle => tag("idle", None),
                    s::WorkerStatus::Busy => tag("busy", None),
                    s::WorkerStatus::Cheap => tag("cheap", None),
                    s::WorkerStatus::Pause => tag("pause", None),
                    s::WorkerStatus::Signal(n) => tag("signal", Some(n.js())),
                    s::WorkerStatus::Other(t) => tag("other", Some(t.js())),
                }
            }
        }
        $crate::js::js_record!(s::App { id, modifier1, mountpoint, startup_time, requests, exceptions, chdir });
        $crate::js::js_record!(s::WorkerCore {
            id, requests, static_requests, routed_requests, offloaded_requests, write_errors, read_errors,
            in_request, request_start
        });
        $crate::js::js_record!(s::Worker {
            id, pid, accepting, requests, delta_requests, exceptions, harakiri_count, signals, signal_queue,
            status, rss, vsz, running_time, last_spawn, respawn_count, tx, avg_rt, apps, cores
        });
        $crate::js::js_record!(s::Cache {
            name, hash, hashsize, keysize, max_items, blocks, blocksize, items, hits, miss, full, last_modified_at
        });
        $crate::js::js_record!(s::UwsgiMetric { name, kind, oid, value });
        $crate::js::js_record!(s::Spooler { dir, pid, tasks, respawns, running });
        $crate::js::js_record!(s::Cron { minute, hour, day, month, week, command, unique, pid, started_at });
        $crate::js::js_record!(s::Daemon { cmd, pid, respawns });
        $crate::js::js_record!(s::StatsDocument {
            version, listen_queue, listen_queue_errors, signal_queue, load, pid, uid, gid, cwd, locks, sockets,
            workers, caches, metrics, spoolers, crons, daemons
        });
        $crate::js::js_record!(s::Decoded { document, repairs, body_bytes });
        $crate::js::js_record!(s::SizeLimit { size, limit });
        $crate::js::js_record!(s::Position { line, column });
        $crate::js::js_record!(s::SyntaxError { line, column, message });
        $crate::js::js_record!(s::SchemaError { path, message });
        impl Js for s::StatsError {
            fn js(&self) -> ::serde_json::Value {
                match self {
                    s::StatsError::Empty => tag("empty", None),
                    s::StatsError::TooLarge(v) => tag("too-large", Some(v.js())),
                    s::StatsError::HttpStatus(v) => tag("http-status", Some(v.js())),
                    s::StatsError::BadHttp(v) => tag("bad-http", Some(v.js())),
                    s::StatsError::NotJson(v) => tag("not-json", Some(v.js())),
                    s::StatsError::Truncated(v) => tag("truncated", Some(v.js())),
                    s::StatsError::InvalidJson(v) => tag("invalid-json", Some(v.js())),
                    s::StatsError::Schema(v) => tag("schema", Some(v.js())),
                }
            }
        }

        $crate::js::js_enum!(l::LogFormat { Uwsgi => "uwsgi", Gunicorn => "gunicorn", GunicornMillis => "gunicorn-millis" });
        $crate::js::js_record!(l::RequestRecord {
            format, method, target, path, query, protocol, status, duration_us, response_bytes, remote_addr,
            remote_user, referer, user_agent, time, time_unix_nanos, pid, worker_requests, total_requests, core,
            app, vars, vars_bytes, headers, headers_bytes, switches
        });

        $crate::js::js_record!(r::ConfigError { path, message });
        $crate::js::js_enum!(r::Protocol { Http => "http", Uwsgi => "uwsgi" });
        $crate::js::js_record!(r::RecorderOptions { service, route_patterns, collapse_ids, max_series, buckets_seconds, protocol });
    };
}

// Used by path from `wasm` (feature `host`) as well as below.
#[cfg_attr(not(feature = "host"), allow(unused_imports))]
pub(crate) use {impl_all, js_enum, js_record};

/// The guest bindings of the component crate, used natively.
mod guest {
    use uwsgi_red_component::bindings::exports::uwsgi_red::core as root;
    impl_all!();
}
