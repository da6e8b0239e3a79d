//! Every committed copy of the `stats_tags` rules (example bootstraps, the
//! Istio EnvoyFilter, READMEs users copy from, the host-test harness) is
//! exactly what [`stats_tag_regex`] generates, for exactly the keys that
//! bootstrap's plugins encode.

use std::collections::BTreeMap;
use std::path::Path;

use regex::Regex;
use uwsgi_red_core::red::labels::LABEL_NAMES as RED_LABELS;
use uwsgi_red_core::stats::families::LABEL_NAMES;

use crate::stats_tag_regex;

fn red_keys() -> Vec<&'static str> {
    let mut k = RED_LABELS.to_vec();
    k.push("reason");
    k
}

fn read(rel: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..");
    std::fs::read_to_string(root.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// (tag name, regex as Envoy reads it) of every entry, in YAML block or
/// flow style or JSON; the double-quoted scalar is unescaped (`\\`, `\"`).
fn entries(text: &str) -> Vec<(String, String)> {
    let re = Regex::new(
        r#""?tag_name"?\s*:\s*"?([A-Za-z_]+)"?\s*,?\s*"?regex"?\s*:\s*"((?:[^"\\]|\\.)*)""#,
    )
    .unwrap();
    re.captures_iter(text)
        .map(|c| {
            let quoted = &c[2];
            let mut out = String::new();
            let mut it = quoted.chars();
            while let Some(ch) = it.next() {
                out.push(if ch == '\\' { it.next().unwrap() } else { ch });
            }
            (c[1].to_string(), out)
        })
        .collect()
}

fn check(rel: &str, want_keys: &[&str]) {
    let text = read(rel);
    let got = entries(&text);
    // Nothing that looks like a rule escaped the parser.
    assert_eq!(got.len(), text.matches("tag_name").count(), "{rel}");
    let by_key: BTreeMap<_, _> = got.iter().cloned().collect();
    assert_eq!(by_key.len(), got.len(), "{rel}: a key twice");
    let mut keys: Vec<_> = by_key.keys().map(String::as_str).collect();
    let mut want = want_keys.to_vec();
    keys.sort_unstable();
    want.sort_unstable();
    assert_eq!(keys, want, "{rel}: keys");
    for (k, r) in &by_key {
        assert_eq!(*r, stats_tag_regex(k), "{rel}: rule for {k}");
    }
}

#[test]
fn example_bootstraps_and_docs_ship_the_generated_rules() {
    let red = red_keys();
    let mut all = red.clone();
    all.extend(LABEL_NAMES.iter().filter(|k| !red.contains(k)));
    check("examples/envoy-red/envoy.yaml", &red);
    check("examples/nginx-envoy-uwsgi/envoy.yaml", &red);
    check("examples/envoy-uwsgi-stats/envoy.yaml", LABEL_NAMES);
    check("examples/demo/envoy.yaml", &all);
    check("examples/istio/stats-tags.yaml", &all);
    check("plugins/uwsgi-tcp/README.md", &red);
    check("plugins/red-filter/README.md", &red);
}

/// The harness renders its bootstraps from one template line.
#[test]
fn harness_template_is_the_generated_rule() {
    let text = read("host-tests/harness/envoy.py");
    let line = text
        .lines()
        .find(|l| l.starts_with("STATS_TAG_REGEX = r\""))
        .expect("STATS_TAG_REGEX in host-tests/harness/envoy.py");
    let template = line
        .trim_start_matches("STATS_TAG_REGEX = r\"")
        .trim_end_matches('"');
    assert_eq!(template, stats_tag_regex("{k}"));
    assert_eq!(text.matches("=\\.=").count(), 1, "one copy in the harness");
}
