//! Unicode-aware field generators for structure-aware targets.

use arbitrary::{Result, Unstructured};

/// Characters a field may hold besides ASCII letters and digits: punctuation
/// the formats do not use as delimiters, and multibyte characters of every
/// UTF-8 length (2, 3 and 4 bytes).
const EXTRA: &[char] = &[
    '-', '_', '.', '~', '%', 'é', 'ß', '€', '中', '😀', '\u{200b}',
];

/// A non-empty field of at most `max` chars, none of them in `forbidden`
/// or whitespace.
pub fn field(u: &mut Unstructured<'_>, max: usize, forbidden: &[char]) -> Result<String> {
    let n = u.int_in_range(1..=max.max(1))?;
    let mut s = String::new();
    for _ in 0..n {
        let c = match u.int_in_range(0u8..=3)? {
            0 => char::from(u.int_in_range(b'a'..=b'z')?),
            1 => char::from(u.int_in_range(b'0'..=b'9')?),
            2 => *u.choose(EXTRA)?,
            _ => u.arbitrary::<char>()?,
        };
        if !c.is_whitespace() && !c.is_control() && !forbidden.contains(&c) {
            s.push(c);
        }
    }
    if s.is_empty() {
        s.push('x');
    }
    Ok(s)
}
