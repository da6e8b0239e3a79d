//! cargo-fuzz entry point; the properties are in `src/` (see `TARGETS`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    uwsgi_red_fuzz::run("envoy_name", data);
});
