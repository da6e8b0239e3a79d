//! The proxy-wasm shared-data keys the poller writes and the admin filter
//! (or nginx's page handler) reads, under the configured
//! `shared_data_prefix`. Host naming, so it lives with the plugin; core
//! validates the prefix with the rest of the configuration.

pub fn snapshot_key(prefix: &str) -> String {
    format!("{prefix}/snapshot.json")
}

pub fn metrics_key(prefix: &str) -> String {
    format!("{prefix}/metrics.txt")
}

#[cfg(test)]
mod tests {
    use super::*;
    use uwsgi_red_core::stats::DEFAULT_SHARED_DATA_PREFIX;

    #[test]
    fn keys_under_the_default_prefix() {
        assert_eq!(
            snapshot_key(DEFAULT_SHARED_DATA_PREFIX),
            "uwsgi_stats/snapshot.json"
        );
        assert_eq!(
            metrics_key(DEFAULT_SHARED_DATA_PREFIX),
            "uwsgi_stats/metrics.txt"
        );
    }
}
