//! Every plugin configuration parser: no panic on any bytes; the verdict
//! does not depend on surrounding whitespace (same success, same key path
//! on failure); an error says something and stays bounded in size.

use std::fmt::Debug;

use uwsgi_red_core::config::ConfigError;

fn check<T: Debug>(data: &[u8], parse: fn(&[u8]) -> Result<T, ConfigError>) {
    let plain = parse(data);
    let mut padded = b" \n\t".to_vec();
    padded.extend_from_slice(data);
    padded.extend_from_slice(b"\r\n ");
    let again = parse(&padded);
    match (&plain, &again) {
        (Ok(_), Ok(_)) => {}
        (Err(a), Err(b)) => assert_eq!(a.path, b.path, "{a} / {b}"),
        _ => panic!("whitespace changed the verdict: {plain:?} vs {again:?}"),
    }
    if let Err(e) = &plain {
        let text = e.to_string();
        assert!(
            text.len() <= 4 * data.len() + 1024,
            "{} bytes of error",
            text.len()
        );
        // The path may be empty: `{"": 1}` is an unknown key named "".
        assert!(!e.message.is_empty());
    }
}

pub fn red_filter(data: &[u8]) {
    check(
        data,
        uwsgi_red_core::red::config::RedFilterConfig::from_json,
    );
}

pub fn uwsgi_tcp(data: &[u8]) {
    check(
        data,
        uwsgi_red_core::uwsgi::config::UwsgiTcpConfig::from_json,
    );
}

pub fn uwsgi_stats(data: &[u8]) {
    check(
        data,
        uwsgi_red_core::stats::config::UwsgiStatsConfig::from_json,
    );
}

pub fn otel_processor(data: &[u8]) {
    check(data, otel_processor::OtelProcessorConfig::from_json);
}
