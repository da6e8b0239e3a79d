#![no_main]
//! Request-log parsers (uWSGI, gunicorn) on arbitrary bytes.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    if let Some(r) = uwsgi_red_core::logs::parse_line(&line) {
        assert!((100..=999).contains(&r.status));
        assert!(line.contains(r.target));
    }
});
