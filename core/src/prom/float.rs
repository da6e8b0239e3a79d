//! `f64` as Rust's `Display` writes it (shortest round-trip digits, fixed
//! point, never an exponent: `1`, `0.005`, `0.0000001`, `-0`), from ryu's
//! shortest digits instead of core::fmt's Grisu/Dragon formatter, whose code
//! and tables were a sizeable part of every proxy-wasm module. Both pick
//! the shortest digits that round-trip, nearest the exact value; the tests
//! compare the two over many values. The layout differs (ryu writes `1.0`
//! and `1e-7`), so its digits are re-laid as fixed point here, and so does
//! an exact tie between two shortest candidates, see [`is_tie_rounded_down`].

/// Appends `v` (finite) to `out` exactly as `format!("{v}")` would.
/// Never inlined: ryu's digit loop would otherwise be copied into every
/// exposition writer that calls it.
#[inline(never)]
pub fn push_finite(out: &mut String, v: f64) {
    let mut buf = ryu::Buffer::new();
    let text = buf.format_finite(v);
    let (text, negative) = match text.strip_prefix('-') {
        Some(rest) => (rest, true),
        None => (text, false),
    };
    let (mantissa, exp) = match text.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (text, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    // Significant digits and where the decimal point falls among them.
    let digits = int.bytes().chain(frac.bytes());
    let mut point = i32::try_from(int.len())
        .unwrap_or(i32::MAX)
        .saturating_add(exp);
    let mut sig: Vec<u8> = Vec::with_capacity(int.len().saturating_add(frac.len()));
    for d in digits {
        if sig.is_empty() && d == b'0' {
            point = point.saturating_sub(1);
        } else {
            sig.push(d);
        }
    }
    while sig.last() == Some(&b'0') {
        sig.pop();
    }
    if is_tie_rounded_down(v, &sig, point) {
        round_up_last(&mut sig, &mut point);
    }
    if negative {
        out.push('-');
    }
    if sig.is_empty() {
        out.push('0');
        return;
    }
    if point <= 0 {
        out.push_str("0.");
        push_zeros(out, point.unsigned_abs());
        push_digits(out, &sig);
        return;
    }
    let point = usize::try_from(point).unwrap_or(usize::MAX);
    let (head, tail) = sig.split_at(point.min(sig.len()));
    push_digits(out, head);
    if tail.is_empty() {
        push_zeros(
            out,
            u32::try_from(point.saturating_sub(sig.len())).unwrap_or(0),
        );
    } else {
        out.push('.');
        push_digits(out, tail);
    }
}

/// Ryu breaks an exact tie between two shortest candidates towards the
/// even digit; core's formatter (Grisu) takes the upper one. True when `v`
/// lies exactly halfway above the candidate `sig`×10^(point−len), i.e.
/// 2·m·2^e = (2D+1)·10^p, checked in exact integer arithmetic.
fn is_tie_rounded_down(v: f64, sig: &[u8], point: i32) -> bool {
    // Two candidates with up to 15 digits never round to the same double.
    if sig.len() < 16 || sig.last().is_none_or(|d| d & 1 == 1) {
        return false;
    }
    let bits = v.abs().to_bits();
    let frac = bits & ((1u64 << 52) - 1);
    let biased = i32::try_from(bits >> 52).unwrap_or(0);
    let (m, e) = if biased == 0 {
        (frac, -1074)
    } else {
        (frac | (1u64 << 52), biased.saturating_sub(1075))
    };
    let d = sig.iter().fold(0u64, |acc, b| {
        acc.saturating_mul(10)
            .saturating_add(u64::from(b.saturating_sub(b'0')))
    });
    let p = point.saturating_sub(i32::try_from(sig.len()).unwrap_or(i32::MAX));
    // m·2^t2·5^t5 = 2D+1 with t2 = e+1−p, t5 = −p; the right side is odd.
    let t2 = e.saturating_add(1).saturating_sub(p);
    if !(-64..=0).contains(&t2) {
        return false;
    }
    let t5 = p.saturating_neg();
    let pow5 = |k: i32| 5u128.checked_pow(u32::try_from(k.max(0)).unwrap_or(u32::MAX));
    let left = pow5(t5).and_then(|f| u128::from(m).checked_mul(f));
    let right = pow5(t5.saturating_neg()).and_then(|f| {
        u128::from(d)
            .checked_mul(2)?
            .checked_add(1)?
            .checked_mul(1u128.checked_shl(t2.unsigned_abs())?)?
            .checked_mul(f)
    });
    matches!((left, right), (Some(l), Some(r)) if l == r)
}

/// Adds one unit in the last digit, carrying (`…999` becomes `1` with the
/// point one further right).
fn round_up_last(sig: &mut Vec<u8>, point: &mut i32) {
    while let Some(last) = sig.pop() {
        if last < b'9' {
            sig.push(last.saturating_add(1));
            return;
        }
    }
    sig.push(b'1');
    *point = point.saturating_add(1);
}

fn push_zeros(out: &mut String, n: u32) {
    for _ in 0..n {
        out.push('0');
    }
}

fn push_digits(out: &mut String, digits: &[u8]) {
    out.extend(digits.iter().map(|&d| char::from(d)));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(v: f64) -> String {
        let mut s = String::new();
        push_finite(&mut s, v);
        s
    }

    #[test]
    fn layout_matches_display() {
        for v in [
            0.0,
            -0.0,
            1.0,
            -1.0,
            10.0,
            0.005,
            0.1,
            0.25,
            2.5,
            10.0,
            1e-7,
            1.5e-7,
            1e15,
            1e16,
            1.5e16,
            1e21,
            1e22,
            1.7976931348623157e308,
            5e-324,
            2.2250738585072014e-308,
            123456.789,
            0.000123,
            9007199254740993.0,
            1234567.0,
            100.0,
            // An exact tie: ryu alone would write …562.2.
            f64::from_bits(0x4317_9085_685d_83c9),
        ] {
            assert_eq!(fixed(v), format!("{v}"), "{v:?}");
        }
    }

    /// xorshift over the whole bit space plus values near seconds and
    /// sums of seconds, the magnitudes metrics carry.
    #[test]
    fn digits_match_display_over_many_values() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for i in 0..300_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = f64::from_bits(x);
            if v.is_finite() {
                assert_eq!(fixed(v), format!("{v}"), "{x:#x}");
            }
            let micros = (x % 10_000_000_000) as f64 / 1e6;
            assert_eq!(fixed(micros), format!("{micros}"), "{micros:?}");
            let small = i as f64 * 0.001;
            assert_eq!(fixed(small), format!("{small}"));
            let ns = (x % 100_000_000_000) as f64 / 1e9;
            assert_eq!(fixed(ns), format!("{ns}"));
            // Magnitudes 2^40..2^60 with few fraction bits, where exact ties
            // between shortest candidates happen.
            let big = f64::from_bits((x % (20u64 << 52)).saturating_add(1063u64 << 52));
            assert_eq!(fixed(big), format!("{big}"), "{:#x}", big.to_bits());
        }
    }
}
