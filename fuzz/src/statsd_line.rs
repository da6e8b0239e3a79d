//! StatsD lines: the CLI's datagram parser round-trips through its
//! canonical form, and every recognised name maps to a bounded OpenTelemetry
//! mapping whose prefix is really the name's prefix.

use uwsgi_red_cli::statsd::line;
use uwsgi_red_core::statsd::{classify, map, Outcome};

pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let prefixes = ["uwsgi", "myapp"];
    for l in text.split('\n') {
        // Names alone (the mapping's input), whatever the rest of the line.
        let name = l.split_once(':').map_or(l, |(n, _)| n);
        if let Some((src, m)) = classify(name, &prefixes) {
            let p = src.prefix();
            assert!(
                p.is_empty() || name.starts_with(&format!("{p}.")),
                "{p:?} {name:?}"
            );
            if let Outcome::Rewrite(mp) = map(&m) {
                assert!(!mp.name.is_empty());
                assert!(mp.name.len() <= name.len() + 64, "{} from {name}", mp.name);
                assert!(mp.attributes.len() <= 4);
                assert!(mp.scale.is_finite() && mp.scale > 0.0);
            }
        }
        // Whole lines: parse -> canonical text -> the same line.
        if let Ok(parsed) = line::parse(l) {
            assert!(!parsed.name.is_empty() && l.starts_with(parsed.name));
            assert!(parsed.value.is_finite());
            assert!(parsed.sample_rate > 0.0 && parsed.sample_rate <= 1.0);
            let canonical = parsed.to_string();
            assert_eq!(line::parse(&canonical).as_ref(), Ok(&parsed), "{canonical}");
        } else {
            let e = line::parse(l).unwrap_err().to_string();
            assert!(e.len() <= 200 && !e.contains('\n'), "{e}");
        }
    }
}
