//! Exponential histogram (what the Collector's StatsD receiver makes of
//! timers with `observer_type: histogram`) to explicit bucket counts, with a
//! unit change (ms -> s) on the way.

/// Per-bucket (not cumulative) counts for `bounds` plus the +Inf bucket.
///
/// An exponential bucket `i` holds values in `(base^i, base^(i+1)]` with
/// `base = 2^(2^-scale)`. Each is attributed whole to the explicit bucket of
/// its upper edge, so `le` counts never include a value above their bound
/// (they may miss ones within one exponential bucket below it). Zero and
/// negative observations go to the first bucket.
pub fn to_explicit(
    scale: i32,
    zero_count: u64,
    positive_offset: i32,
    positive: &[u64],
    negative: &[u64],
    unit_scale: f64,
    bounds: &[f64],
) -> Vec<u64> {
    // One slot per bound plus +Inf: the first is `zero_count` and every
    // negative bucket, the last collects what no bound holds.
    let below: u64 = negative
        .iter()
        .fold(zero_count, |a, c| a.saturating_add(*c));
    let mut out: Vec<u64> = std::iter::once(below)
        .chain(bounds.iter().map(|_| 0))
        .collect();
    // 2^-scale, with scale clamped to the range OTLP allows.
    let step = 2f64.powi(scale.clamp(-10, 20)).recip();
    for (k, &count) in positive.iter().enumerate() {
        if count == 0 {
            continue;
        }
        let upper_index = f64::from(positive_offset) + k as f64 + 1.0;
        let upper = (upper_index * step).exp2() * unit_scale;
        // NaN (never expected) lands in +Inf like any too-large value.
        let slot = bounds
            .iter()
            .position(|b| upper <= *b)
            .unwrap_or(bounds.len());
        if let Some(c) = out.get_mut(slot) {
            *c = c.saturating_add(count);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: [f64; 4] = [0.005, 0.01, 1.0, 2.5];

    #[test]
    fn counts_are_preserved_and_placed_by_upper_edge() {
        // scale 0: base 2, bucket i is (2^i, 2^(i+1)] ms.
        // offset 0: (1,2] ms, (2,4] ms ... offset 10: (1024,2048] ms.
        let out = to_explicit(0, 3, 0, &[2, 1], &[], 1e-3, &B);
        assert_eq!(out, vec![6, 0, 0, 0, 0]);
        let out = to_explicit(0, 0, 10, &[4], &[], 1e-3, &B);
        assert_eq!(out, vec![0, 0, 0, 4, 0], "(1.024 s, 2.048 s] is <= 2.5 s");
        let out = to_explicit(0, 0, 12, &[1], &[1], 1e-3, &B);
        assert_eq!(
            out,
            vec![1, 0, 0, 0, 1],
            "(4.096, 8.192] s overflows to +Inf"
        );
    }

    #[test]
    fn fine_scale_and_extremes() {
        // scale 3: base 2^(1/8); index 80 upper edge = 2^(81/8) ms ~ 1.1 s.
        let out = to_explicit(3, 0, 80, &[7], &[], 1e-3, &B);
        assert_eq!(out.iter().sum::<u64>(), 7);
        assert_eq!(out[3], 7);
        let out = to_explicit(
            i32::MAX,
            u64::MAX,
            i32::MIN,
            &[u64::MAX, 1],
            &[u64::MAX],
            f64::MAX,
            &B,
        );
        assert_eq!(out.iter().fold(0u64, |a, c| a.saturating_add(*c)), u64::MAX);
    }
}
