//! Recovery from uWSGI's unescaped strings.
//!
//! uWSGI writes `cwd`, socket names, `chdir` and other strings verbatim, so a
//! path holding `\`, `"` or a control character makes the whole document
//! invalid JSON. Rather than lose the scrape, [`repair`] rewrites every
//! string so it is valid JSON that decodes to the bytes uWSGI meant:
//!
//! - a string is *broken* when it holds a `\` that starts no valid JSON
//!   escape, a raw control byte, or a `"` that is not followed (after
//!   whitespace) by `,` `:` `}` `]` or the end of input. uWSGI writes every
//!   string as a key or a value, so a real closing quote is always followed
//!   by one of those;
//! - in a broken string every `\` becomes `\\` and every inner `"` becomes
//!   `\"` (uWSGI escaped nothing, so all of them are literal), raw control
//!   bytes become `\u00XX`; `\"` right before the end of a value is a
//!   trailing backslash followed by the closing quote;
//! - bytes that are not UTF-8 (a Latin-1 path) become U+FFFD in a string
//!   rewritten as above: JSON cannot carry them, and one odd path must not
//!   cost the scrape;
//! - strings that are valid JSON are copied unchanged.
//!
//! Repair is only tried after the document failed to parse, so valid
//! documents pay nothing. Ambiguity remains where no rewrite can decide
//! (a path containing `\n` is already valid JSON and decodes as a newline;
//! a path containing `",` looks like the end of a value): such a document
//! stays invalid and the scrape fails with reason `invalid_json`.

/// Returns the repaired document and the number of strings rewritten, or
/// `None` when no string needed a rewrite (the problem is elsewhere).
pub fn repair(input: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut out = Vec::with_capacity(input.len().saturating_add(64));
    let mut repairs = 0usize;
    let mut i = 0usize;
    while let Some(&b) = input.get(i) {
        out.push(b);
        i = i.saturating_add(1);
        if b != b'"' {
            continue;
        }
        let (end, broken) = scan_string(input, i);
        let content = input.get(i..end).unwrap_or_default();
        if broken || std::str::from_utf8(content).is_err() {
            // uWSGI escapes nothing, so in a string that is visibly raw every
            // backslash is literal too (`dir\with\backslash` holds `\b`,
            // which JSON would read as a backspace). Bytes that are not UTF-8
            // (a Latin-1 path) become U+FFFD: JSON cannot carry them.
            for c in String::from_utf8_lossy(content).bytes() {
                match c {
                    b'\\' => out.extend_from_slice(b"\\\\"),
                    b'"' => out.extend_from_slice(b"\\\""),
                    c if c < 0x20 => out.extend_from_slice(format!("\\u{c:04x}").as_bytes()),
                    c => out.push(c),
                }
            }
            repairs = repairs.saturating_add(1);
        } else {
            out.extend_from_slice(content);
        }
        if end < input.len() {
            out.push(b'"');
        }
        i = end.saturating_add(1);
    }
    (repairs > 0).then_some((out, repairs))
}

/// From the first byte of a string's content: the index of its closing
/// quote (or the input length) and whether the content is not valid JSON.
fn scan_string(input: &[u8], mut i: usize) -> (usize, bool) {
    let mut broken = false;
    while let Some(&c) = input.get(i) {
        let next = i.saturating_add(1);
        match c {
            b'\\' => {
                let valid = match input.get(next) {
                    // A trailing backslash right before the closing quote.
                    Some(b'"') => !closes_value(input, next.saturating_add(1)),
                    Some(b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => true,
                    Some(b'u') => input
                        .get(next.saturating_add(1)..next.saturating_add(5))
                        .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)),
                    _ => false,
                };
                if valid {
                    i = next.saturating_add(1);
                } else {
                    broken = true;
                    i = next;
                }
            }
            b'"' if closes_value(input, next) => return (i, broken),
            b'"' => {
                broken = true;
                i = next;
            }
            c if c < 0x20 => {
                broken = true;
                i = next;
            }
            _ => i = next,
        }
    }
    (input.len(), true)
}

/// Whether a quote ending just before `at` can be the end of a JSON string.
fn closes_value(input: &[u8], at: usize) -> bool {
    let rest = input.get(at..).unwrap_or_default();
    match rest
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
    {
        None => true,
        Some(b) => matches!(b, b',' | b':' | b'}' | b']'),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(s: &str) -> (String, usize) {
        let (v, n) = repair(s.as_bytes()).expect("needs repair");
        (String::from_utf8(v).unwrap(), n)
    }

    #[test]
    fn backslashes_quotes_and_controls() {
        let (s, n) = fixed("{\"cwd\":\"/a\\b\\c\",\n\"x\":\"ok\"}");
        assert_eq!(n, 1);
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["cwd"], "/a\\b\\c");
        assert_eq!(v["x"], "ok");

        let (s, n) = fixed("{\"name\":\"/tmp/a\"b\",\"chdir\":\"/tab\there\\\"}");
        assert_eq!(n, 2);
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["name"], "/tmp/a\"b");
        assert_eq!(v["chdir"], "/tab\there\\");
    }

    #[test]
    fn valid_escapes_are_kept_and_clean_input_needs_nothing() {
        assert!(repair(br#"{"a":"x\n\u00e9\\"}"#).is_none());
        assert!(repair(b"{\"a\":1").is_none());
    }

    #[test]
    fn raw_string_backslashes_are_all_literal() {
        // `\b` alone would be a valid (backspace) escape; the `\w` proves the string raw.
        let (s, n) = fixed(r#"{"cwd":"C:\with\backslash"}"#);
        assert_eq!(n, 1);
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["cwd"], r"C:\with\backslash");
        // An unterminated string is not made valid by guessing.
        assert!(fixed("{\"a\":\"x\\q").0.ends_with("x\\\\q"));
    }
}
