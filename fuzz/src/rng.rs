//! A tiny deterministic generator for split points: the input carries the
//! seed, so a crash replays exactly.

#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform-ish in `1..=max` (`max >= 1`).
    pub fn piece(&mut self, max: usize) -> usize {
        (self.next_u64() % max.max(1) as u64) as usize + 1
    }
}

/// Seed from the first 8 bytes (zero-padded) and the rest.
pub fn seed_and_rest(data: &[u8]) -> (u64, &[u8]) {
    let n = data.len().min(8);
    let mut b = [0u8; 8];
    b[..n].copy_from_slice(&data[..n]);
    (u64::from_le_bytes(b), &data[n..])
}

/// Cuts `bytes` into pieces whose sizes the seed picks: mostly small (1..16),
/// sometimes large, so both byte-by-byte and bulk paths are hit.
pub fn pieces(bytes: &[u8], seed: u64) -> Vec<&[u8]> {
    let mut r = SplitMix::new(seed);
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let n = if r.next_u64().is_multiple_of(4) {
            r.piece(rest.len())
        } else {
            r.piece(16)
        }
        .min(rest.len());
        let (a, b) = rest.split_at(n);
        out.push(a);
        rest = b;
    }
    out
}
