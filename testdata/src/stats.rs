//! Generated adversarial stats documents, shared by core's tests and the
//! benches.

use std::fmt::Write as _;

/// Sockets in [`hostile`]: `SOCKETS - REPEATED_SOCKETS` distinct name+proto
/// pairs, then the first `REPEATED_SOCKETS` again.
pub const SOCKETS: usize = 40_000;
pub const REPEATED_SOCKETS: usize = 1_000;
/// Workers in [`hostile`], every one with `"id":1`.
pub const WORKERS: usize = 20_000;

/// The hostile document (~10 MB): 40 000 sockets, 20 000 workers sharing id 1.
pub fn hostile() -> Vec<u8> {
    let mut s = String::with_capacity(11 << 20);
    s.push_str("{\"version\":\"2.0.30\",\"listen_queue\":0,\"load\":3,\"sockets\":[");
    for i in 0..SOCKETS {
        let n = if i < SOCKETS - REPEATED_SOCKETS {
            i
        } else {
            i - (SOCKETS - REPEATED_SOCKETS)
        };
        if i > 0 {
            s.push(',');
        }
        let _ = write!(
            s,
            "{{\"name\":\"/run/uwsgi/app-{n:05}.sock\",\"proto\":\"uwsgi\",\"queue\":{},\"max_queue\":100,\"shared\":0,\"can_offload\":0}}",
            n % 7
        );
    }
    s.push_str("],\"workers\":[");
    for i in 0..WORKERS {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(
            s,
            "{{\"id\":1,\"pid\":{},\"accepting\":1,\"requests\":{i},\"delta_requests\":0,\"exceptions\":0,\"harakiri_count\":0,\"signals\":0,\"signal_queue\":0,\"status\":\"idle\",\"rss\":0,\"vsz\":0,\"running_time\":1000,\"last_spawn\":1700000000,\"respawn_count\":1,\"tx\":0,\"avg_rt\":0,\"apps\":[{{\"id\":0,\"modifier1\":0,\"mountpoint\":\"\",\"startup_time\":0,\"requests\":{i},\"exceptions\":0,\"chdir\":\"\"}}],\"cores\":[{{\"id\":0,\"requests\":0,\"in_request\":0}}]}}",
            1000 + i
        );
    }
    s.push_str("]}");
    s.into_bytes()
}

/// A minimal valid document with `extra` spliced in as the last top-level keys.
pub fn with_extra(workers: &str, extra: &str) -> Vec<u8> {
    format!("{{\"version\":\"2.0.30\",\"workers\":[{workers}]{extra}}}").into_bytes()
}
