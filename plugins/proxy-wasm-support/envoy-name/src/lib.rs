//! Envoy stat names that carry labels, and cannot be split wrongly.
//!
//! Envoy has no label API for Wasm metrics: a plugin only names a stat.
//! Labels survive as *tags* when they are written into the name and pulled
//! out again by the bootstrap's `stats_config.stats_tags` regexes. The name
//! of one series is
//!
//! ```text
//! key1=.=value1;.;key2=.=value2;.;…;.;metric_name
//! ```
//!
//! and the rule for a key is [`stats_tag_regex`]: `(key=\.=(.*?);\.;)`.
//!
//! # How Envoy applies the rules
//!
//! Read from Envoy's `TagProducerImpl::produceTags` and
//! `TagExtractorStdRegexImpl::extractTag`: a Wasm metric is named
//! `wasmcustom.<name>`; every configured rule is an ECMAScript `std::regex`
//! run with `regex_search` (leftmost match) over that *whole original*
//! name, independently of the other rules (each sees the untouched name).
//! A match yields one tag (its second capture is the value) and marks its
//! first capture for removal; the tag-extracted name is the original minus
//! the union of all marked ranges. The Prometheus output then strips the
//! `wasmcustom.` namespace, sanitises the name to `[a-zA-Z0-9_:]` and writes
//! the tag values as label values, escaping only `\`, `"` and newline.
//!
//! So a rule takes the *first* `key=.=` anywhere in the name and the value
//! up to the first `;.;` after it. If a value could contain `service=.=`,
//! `;.;`, or a newline (which `.` does not match), a client sending that
//! path would forge or drop labels and move its request out of the metric.
//!
//! # The value encoding
//!
//! Values are bytes (nothing assumes UTF-8). [`escape_value`] writes each of
//! these bytes as `\xHH` (two upper-case hex digits):
//!
//! - `;` `=` and `\` (the escape character itself);
//! - control characters: bytes `0x00`–`0x1F`, `0x7F`, and the C1 controls
//!   U+0080–U+009F (each of their two UTF-8 bytes);
//! - every byte that is not part of valid UTF-8.
//!
//! Everything else, including `.`, `"`, spaces and valid non-ASCII UTF-8,
//! is kept, so `/static/app.js` or `/café` read as they are. `/semi;x`
//! becomes `/semi\x3Bx`, and in Prometheus's text format (which escapes the
//! backslash) `route="/semi\\x3Bx"`; PromQL: `{route="/semi\\x3Bx"}`.
//!
//! Why this is enough, for any values:
//!
//! 1. An encoded value has no `=` and no `;`, so every `=` in a name belongs
//!    to a `=.=` right after a key, and every `;` to a `;.;` terminator.
//!    `key=\.=` therefore matches only right after a key ending in `key`;
//!    no label name in use is a suffix of another (tested over every key the
//!    plugins encode), so it matches exactly at that label.
//! 2. From there `(.*?);\.;` stops at the first `;.;`, which is the label's
//!    own terminator; `.` matches every character of an encoded value (no
//!    line terminators, valid UTF-8, in ECMAScript and RE2 alike).
//! 3. The removed ranges are exactly the labels: what remains is the metric
//!    name, whatever the values.
//! 4. [`unescape_value`] inverts [`escape_value`], and the keys are in a
//!    fixed order, so distinct label sets give distinct names and distinct
//!    Envoy series (`/semi;x` and `/semi_x` stay apart).
//!
//! The rules are unchanged from earlier releases: a bootstrap that already
//! has them keeps working, and only the module changes. They are not
//! anchored (`(?:^|;\.;)` would also have worked): with no `=` or `;` in
//! values there is nothing left for an anchor to exclude, and the
//! suffix-free keys are what keeps a rule on its own label.
//!
//! Length: escaping at most quadruples a value. Routes are capped by the
//! core (256 bytes, so at most 1 KiB encoded); Envoy's `std::regex` needs
//! stack in proportion to a value's length, which the host tests exercise
//! at that size.

#[cfg(any(test, feature = "emulate"))]
pub mod emulate;

#[cfg(test)]
mod extraction_tests;

#[cfg(test)]
mod shipped_tests;

/// Between a key and its value.
pub const KEY_END: &str = "=.=";
/// After a value.
pub const VALUE_END: &str = ";.;";

/// True for the characters [`escape_value`] writes as `\xHH` bytes.
fn escaped(c: char) -> bool {
    matches!(c, ';' | '=' | '\\') || c.is_control()
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn push_escaped_byte(b: u8, out: &mut String) {
    let digit = |n: u8| char::from(HEX.get(usize::from(n & 0x0f)).copied().unwrap_or(b'0'));
    out.push('\\');
    out.push('x');
    out.push(digit(b >> 4));
    out.push(digit(b));
}

/// Printable ASCII that is kept: most values are nothing else.
fn plain_ascii(b: u8) -> bool {
    (0x20..0x7f).contains(&b) && !matches!(b, b';' | b'=' | b'\\')
}

/// Appends `value` in the stat-name encoding described in the module docs.
pub fn escape_value(value: &[u8], out: &mut String) {
    // The plain ASCII prefix (usually the whole value) in one copy; UTF-8
    // decoding only from the first byte that is not plain.
    let plain = value
        .iter()
        .position(|&b| !plain_ascii(b))
        .unwrap_or(value.len());
    let (head, rest) = value.split_at_checked(plain).unwrap_or((value, &[]));
    out.push_str(std::str::from_utf8(head).unwrap_or_default());
    for chunk in rest.utf8_chunks() {
        let valid = chunk.valid();
        // Runs of kept characters are copied at once: most values need no
        // escape at all.
        let mut kept = 0;
        for (i, c) in valid.char_indices() {
            if escaped(c) {
                out.push_str(valid.get(kept..i).unwrap_or_default());
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    push_escaped_byte(b, out);
                }
                kept = i.saturating_add(c.len_utf8());
            }
        }
        out.push_str(valid.get(kept..).unwrap_or_default());
        for &b in chunk.invalid() {
            push_escaped_byte(b, out);
        }
    }
}

/// The bytes [`escape_value`] encoded; `None` for text it cannot have
/// written (a `\` not starting `\xHH`, or a raw character it escapes).
/// For tools and tests: the plugins only encode.
pub fn unescape_value(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut chars = s.char_indices();
    while let Some((_, c)) = chars.next() {
        if c == '\\' {
            let x = chars.next()?.1;
            let hi = chars.next()?.1.to_digit(16)?;
            let lo = chars.next()?.1.to_digit(16)?;
            if x != 'x' {
                return None;
            }
            out.push(u8::try_from(hi.checked_mul(16)?.checked_add(lo)?).ok()?);
        } else if escaped(c) {
            return None;
        } else {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    Some(out)
}

/// Appends the stat name of `metric` with `labels` (in this order) to `out`.
///
/// Keys must be label names (`[a-z_]+`) none of which is a suffix of another
/// key used in the same Envoy; they are written as they are.
pub fn encode_into<V: AsRef<[u8]>>(out: &mut String, metric: &str, labels: &[(&str, V)]) {
    for (k, v) in labels {
        out.push_str(k);
        out.push_str(KEY_END);
        escape_value(v.as_ref(), out);
        out.push_str(VALUE_END);
    }
    out.push_str(metric);
}

/// The stat name of `metric` with `labels`; see [`encode_into`].
pub fn encode<V: AsRef<[u8]>>(metric: &str, labels: &[(&str, V)]) -> String {
    let guess = labels.iter().fold(metric.len(), |n, (k, v)| {
        n.saturating_add(k.len())
            .saturating_add(v.as_ref().len())
            .saturating_add(KEY_END.len())
            .saturating_add(VALUE_END.len())
    });
    let mut out = String::with_capacity(guess);
    encode_into(&mut out, metric, labels);
    out
}

/// The `stats_tags` regex for `key`, as Envoy reads it (before any YAML or
/// JSON quoting): the one source of every copy in the examples and docs.
pub fn stats_tag_regex(key: &str) -> String {
    format!("({key}=\\.={value};\\.;)", value = "(.*?)")
}

/// `stats_config.stats_tags` entries for `keys`, one YAML flow mapping per
/// line, each line starting with `indent` (for generated configs and docs).
pub fn stats_tags_yaml(keys: &[&str], indent: &str) -> String {
    keys.iter()
        .map(|k| {
            let quoted = stats_tag_regex(k).replace('\\', "\\\\");
            format!("{indent}- {{tag_name: {k}, regex: \"{quoted}\"}}\n")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(v: &[u8]) -> String {
        let mut s = String::new();
        escape_value(v, &mut s);
        s
    }

    #[test]
    fn encodes_labels_before_the_metric_name() {
        assert_eq!(
            encode(
                "uwsgi_red_requests_total",
                &[("method", "GET"), ("route", "/a.b;c")]
            ),
            "method=.=GET;.;route=.=/a.b\\x3Bc;.;uwsgi_red_requests_total"
        );
        assert_eq!(encode::<&str>("x", &[]), "x");
    }

    #[test]
    fn escapes_delimiters_controls_and_invalid_bytes_only() {
        assert_eq!(esc(b"/static/app.js"), "/static/app.js");
        assert_eq!(esc("/café \"q\"".as_bytes()), "/café \"q\"");
        assert_eq!(esc(b"/semi;x"), "/semi\\x3Bx");
        assert_eq!(esc(b"a=.=b;.;c"), "a\\x3D.\\x3Db\\x3B.\\x3Bc");
        assert_eq!(esc(b"\\"), "\\x5C");
        assert_eq!(esc(b"\n\r\t\0\x7f"), "\\x0A\\x0D\\x09\\x00\\x7F");
        assert_eq!(esc("\u{85}".as_bytes()), "\\xC2\\x85");
        assert_eq!(esc(b"caf\xff\xc3"), "caf\\xFF\\xC3");
        assert_eq!(esc(b""), "");
    }

    #[test]
    fn unescape_inverts_and_rejects_what_escape_never_writes() {
        for v in [
            &b"/semi;x"[..],
            b"\\x3B",
            b"\xff\xfe;=\n",
            "é\u{9b}".as_bytes(),
        ] {
            assert_eq!(unescape_value(&esc(v)).unwrap(), v);
        }
        for bad in ["\\", "\\x3", "\\y3B", "a;b", "a=b", "\\xZZ", "\n"] {
            assert_eq!(unescape_value(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn regex_and_yaml_forms() {
        assert_eq!(stats_tag_regex("route"), "(route=\\.=(.*?);\\.;)");
        assert_eq!(
            stats_tags_yaml(&["route"], "  "),
            "  - {tag_name: route, regex: \"(route=\\\\.=(.*?);\\\\.;)\"}\n"
        );
    }
}
