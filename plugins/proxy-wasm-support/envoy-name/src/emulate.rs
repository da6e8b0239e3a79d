//! Envoy's tag extraction replayed natively, for the property tests and the
//! fuzz target: the `stats_tags` rules we ship, applied the way Envoy's
//! `TagProducerImpl::produceTags` applies them (see the crate docs).
//!
//! The `regex` crate has RE2's semantics (leftmost-first, lazy `.*?`), which
//! for these rules are also ECMAScript's, with one difference that matters
//! here: ECMAScript's `.` (Envoy's `std::regex`) does not match `\r`, RE2's
//! does. Every rule is therefore run twice, once as RE2 reads it and once in
//! CRLF mode (`.` excludes `\r` and `\n`, as in ECMAScript), and both must
//! agree.

use std::ops::Range;

use regex::{Regex, RegexBuilder};

use crate::stats_tag_regex;

/// The prefix Envoy puts before a Wasm plugin's metric names.
pub const WASM_NAMESPACE: &str = "wasmcustom.";

/// One `stats_tags` entry.
#[derive(Debug, Clone)]
pub struct Rule {
    pub tag: String,
    re2: Regex,
    ecma: Regex,
}

impl Rule {
    /// The rule for `key` as the examples ship it.
    pub fn shipped(key: &str) -> Result<Self, regex::Error> {
        Self::new(key, &stats_tag_regex(key))
    }

    pub fn new(tag: &str, regex: &str) -> Result<Self, regex::Error> {
        Ok(Self {
            tag: tag.to_string(),
            re2: Regex::new(regex)?,
            ecma: RegexBuilder::new(regex).crlf(true).build()?,
        })
    }

    /// Envoy's `extractTag`: the tag value and the range to remove.
    fn extract(re: &Regex, name: &str) -> Option<(String, Range<usize>)> {
        let caps = re.captures(name)?;
        let remove = caps.get(1)?;
        let value = caps.get(2).unwrap_or(remove);
        Some((value.as_str().to_string(), remove.range()))
    }
}

/// What Envoy makes of one stat name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    /// (tag name, value) in rule order.
    pub tags: Vec<(String, String)>,
    /// The tag-extracted name.
    pub name: String,
}

/// The shipped rules for `keys`.
pub fn shipped_rules(keys: &[&str]) -> Result<Vec<Rule>, regex::Error> {
    keys.iter().map(|k| Rule::shipped(k)).collect()
}

/// `produceTags` over `stat_name` (already including [`WASM_NAMESPACE`]):
/// each rule searches the whole original name; the removed ranges are
/// joined at the end. `Err` when the RE2 and ECMAScript readings disagree.
pub fn produce_tags(rules: &[Rule], stat_name: &str) -> Result<Extracted, String> {
    let mut tags = Vec::new();
    let mut removed = Vec::new();
    for r in rules {
        let a = Rule::extract(&r.re2, stat_name);
        let b = Rule::extract(&r.ecma, stat_name);
        if a != b {
            return Err(format!(
                "rule {}: RE2 reads {a:?}, ECMAScript {b:?} in {stat_name:?}",
                r.tag
            ));
        }
        if let Some((value, range)) = a {
            tags.push((r.tag.clone(), value));
            removed.push(range);
        }
    }
    let name = stat_name
        .char_indices()
        .filter(|(i, _)| !removed.iter().any(|r| r.contains(i)))
        .map(|(_, c)| c)
        .collect();
    Ok(Extracted { tags, name })
}
