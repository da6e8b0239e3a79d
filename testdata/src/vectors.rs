//! The captured vectors of `core/tests/vectors/` (see SOURCES.md there):
//! the ones the Wasm bench programs embed, and the directory itself.

/// `core/tests/vectors`, for tests that read every file at run time.
pub const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../core/tests/vectors");

/// The largest captured stats document (4 × 4 under load, over HTTP).
pub const STATS_4X4_LOAD_HTTP: &[u8] =
    include_bytes!("../../core/tests/vectors/stats_b_4x4_load_http.bin");

macro_rules! packets {
    ($($name:literal),* $(,)?) => {
        [$(include_bytes!(concat!("../../core/tests/vectors/", $name, ".bin")).as_slice()),*]
    };
}

/// Every captured uwsgi request packet (`pkt_*.bin`), in file-name order.
pub const UWSGI_PACKETS: [&[u8]; 10] = packets!(
    "pkt_get_error",
    "pkt_get_notfound",
    "pkt_get_query_many_headers",
    "pkt_get_root",
    "pkt_head_root",
    "pkt_http10_no_host",
    "pkt_options_cors",
    "pkt_post_10k_form",
    "pkt_post_empty",
    "pkt_post_multipart",
);
