//! The JSON path (`workers[3].requests`) of a serde_json error, found from
//! the error's position instead of a second, path-tracking deserializer.
//!
//! A path-tracking deserializer (serde_path_to_error) is a second
//! monomorphized copy of the whole document decoder, a large share of the
//! uwsgi-stats module, for a path only an error ever needs. serde_json
//! already knows where it stopped: a type or limit error is positioned just
//! after the value it refused (or at the first byte of a refused object or
//! list, which it does not enter), a missing field just after its object's
//! closing brace. Everything before that position is JSON serde_json has
//! already accepted, so a structural walk over it (strings, brackets,
//! commas; no values decoded) ends inside the refused value's key or index.
//!
//! Nothing here is specific to stats documents: any `serde_json::from_slice`
//! error of category `Data` can be named this way (crate-visible for that).
//!
//! Linear in the bytes before the error, and bounded memory: frames deeper
//! than [`MAX_FRAMES`] are counted, not kept (serde_json's typed decoding
//! stops at depth 128, so an error is never deeper than that).

/// serde_json's recursion limit: no typed error lies deeper.
const MAX_FRAMES: usize = 128;

#[derive(Clone, Copy)]
enum Frame {
    /// An object; `key` is the byte range (inside the quotes, escapes as
    /// written) of the key whose value comes next or is being read.
    Object {
        key: Option<(usize, usize)>,
        expect_key: bool,
    },
    /// A list and the index of the element being read.
    List { index: usize },
}

/// The path at serde_json's error position `line`/`column` (1-based line,
/// 0-based byte column, as serde_json reports them for a slice): `.` for
/// the document itself.
pub fn at(json: &[u8], line: usize, column: usize) -> String {
    let frames = walk(json.get(..offset(json, line, column)).unwrap_or(json));
    let mut path = String::new();
    for frame in frames {
        match frame {
            Frame::Object {
                key: Some((start, end)),
                ..
            } => {
                if !path.is_empty() {
                    path.push('.');
                }
                // A label key is at most limits::MAX_LABEL_BYTES; an unknown
                // one is not, but a path has no use for more of it.
                let end = end.min(start.saturating_add(super::limits::MAX_LABEL_BYTES));
                let key = json.get(start..end).unwrap_or_default();
                path.push_str(&String::from_utf8_lossy(key));
            }
            Frame::Object { key: None, .. } => {}
            Frame::List { index } => {
                path.push('[');
                path.push_str(itoa::Buffer::new().format(index));
                path.push(']');
            }
        }
    }
    if path.is_empty() {
        path.push('.');
    }
    path
}

/// Byte offset of `line`/`column`: the column counts bytes from the line's start.
fn offset(json: &[u8], line: usize, column: usize) -> usize {
    let line_start = match line.checked_sub(2) {
        None => 0,
        Some(newlines) => json
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .nth(newlines)
            .map_or(json.len(), |(i, _)| i.saturating_add(1)),
    };
    line_start.saturating_add(column).min(json.len())
}

/// The open objects and lists at the end of `prefix`, outermost first.
fn walk(prefix: &[u8]) -> Vec<Frame> {
    let mut frames: Vec<Frame> = Vec::new();
    // Open levels beyond MAX_FRAMES (inside a skipped deep value).
    let mut hidden = 0usize;
    let mut bytes = prefix.iter().enumerate();
    while let Some((i, b)) = bytes.next() {
        match b {
            b'"' => {
                let start = i.saturating_add(1);
                let mut end = prefix.len();
                while let Some((j, c)) = bytes.next() {
                    match c {
                        b'\\' => {
                            bytes.next();
                        }
                        b'"' => {
                            end = j;
                            break;
                        }
                        _ => {}
                    }
                }
                if hidden == 0 {
                    if let Some(Frame::Object { key, expect_key }) = frames.last_mut() {
                        if *expect_key {
                            *key = Some((start, end));
                            *expect_key = false;
                        }
                    }
                }
            }
            b'{' | b'[' if hidden > 0 || frames.len() >= MAX_FRAMES => {
                hidden = hidden.saturating_add(1);
            }
            b'}' | b']' if hidden > 0 => hidden = hidden.saturating_sub(1),
            b'{' => frames.push(Frame::Object {
                key: None,
                expect_key: true,
            }),
            b'[' => frames.push(Frame::List { index: 0 }),
            b'}' | b']' => {
                frames.pop();
            }
            b',' if hidden == 0 => match frames.last_mut() {
                Some(Frame::Object { key, expect_key }) => {
                    *key = None;
                    *expect_key = true;
                }
                Some(Frame::List { index }) => *index = index.saturating_add(1),
                None => {}
            },
            _ => {}
        }
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::at;

    /// The path at the end of `prefix` (one line, so column = length).
    fn end_of(prefix: &str) -> String {
        at(prefix.as_bytes(), 1, prefix.len())
    }

    #[test]
    fn names_the_key_or_index_being_read() {
        assert_eq!(end_of(""), ".");
        assert_eq!(end_of(r#"{"version":"2.0.30"}"#), ".");
        assert_eq!(end_of(r#"{"version":2"#), "version");
        assert_eq!(
            end_of(r#"{"a":1,"workers":[{"id":1},{"id":2,"requests":-5"#),
            "workers[1].requests"
        );
        // At the first byte of an object or list serde_json did not enter.
        assert_eq!(
            end_of(r#"{"workers":[{"id":1,"status":"#),
            "workers[0].status"
        );
        // Just after the closing brace of an object missing a field.
        assert_eq!(end_of(r#"{"workers":[{"id":1},{"pid":2}"#), "workers[1]");
        // Keys with spaces, escapes (as written) and brackets inside strings.
        assert_eq!(end_of(r#"{"locks":[{"user 0":"x""#), "locks[0].user 0");
        assert_eq!(end_of(r#"{"a\"]}":[1,"],{[",{"k":"#), r#"a\"]}[2].k"#);
        // A list of lists (a struct read from a list).
        assert_eq!(end_of(r#"{"workers":[[1,"#), "workers[0][1]");
        assert_eq!(end_of("[1"), "[0]");
    }

    #[test]
    fn the_position_is_a_line_and_a_byte_column() {
        let doc = "{\n\t\"workers\":[\n\t\t{\"id\":\"x\"}]}";
        // serde_json: line 3, column 11 (after "x").
        assert_eq!(at(doc.as_bytes(), 3, 11), "workers[0].id");
        // A position past the end is the end.
        assert_eq!(at(doc.as_bytes(), 9, 99), ".");
    }

    #[test]
    fn deep_skipped_values_cost_no_frames_and_keep_the_path() {
        let deep = format!("{{\"vars\":{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(end_of(&format!("{deep},\"requests\":-1")), "requests");
        // Inside the depth that is kept, the path is exact.
        assert_eq!(end_of(&format!("{}1", "[".repeat(3))), "[0][0][0]");
    }

    #[test]
    fn long_keys_are_cut() {
        let key = "k".repeat(10_000);
        let path = end_of(&format!("{{\"{key}\":1"));
        assert_eq!(path.len(), super::super::limits::MAX_LABEL_BYTES);
    }
}
