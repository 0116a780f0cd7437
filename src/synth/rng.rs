//! Fixed pseudo-random functions, written out here rather than taken from a crate: a
//! (seed, index) pair must give the same citizen forever, across releases and machines, and a
//! dependency upgrade may change its streams. Integer arithmetic only, so no platform float
//! differences can creep in either.

/// The golden-ratio increment of SplitMix64: consecutive states are far apart.
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function (Steele, Lea and Flood, 2014): a bijection of u64 in which
/// every input bit affects every output bit, so nearby inputs give unrelated outputs.
pub(super) const fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hashes a key and a counter into one word. Distinct counters under one key give distinct
/// outputs (both steps are bijections), which the Feistel round keys below rely on.
pub(super) const fn hash2(key: u64, counter: u64) -> u64 {
    mix64(mix64(key ^ GOLDEN) ^ counter)
}

/// SplitMix64: a tiny, fast generator whose whole state is one word, so a record's stream can
/// be started from `hash2(seed, index)` without any shared state between threads.
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(state: u64) -> Self {
        Rng(state)
    }

    pub(super) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN);
        mix64(self.0)
    }

    /// Uniform in `0..n` (`n` > 0) by multiply-shift; the bias is below n / 2^64, far under
    /// anything a test or a reader could notice.
    pub(super) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// True with probability `per_10k` / 10,000.
    pub(super) fn chance(&mut self, per_10k: u32) -> bool {
        self.below(10_000) < u64::from(per_10k)
    }

    pub(super) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// One of `items`, each with probability weight / (sum of weights).
    pub(super) fn weighted<'a, T>(&mut self, items: &'a [(T, u32)]) -> &'a T {
        let total: u64 = items.iter().map(|&(_, w)| u64::from(w)).sum();
        let mut x = self.below(total);
        for (item, w) in items {
            let w = u64::from(*w);
            if x < w {
                return item;
            }
            x -= w;
        }
        // Unreachable while `x < total`; the last item keeps this total without a panic path.
        &items[items.len() - 1].0
    }
}

/// A keyed permutation of `0..2^20`: a balanced Feistel network on 10-bit halves. Any round
/// function gives a bijection; four rounds make the output look random.
pub(super) fn permute_2p20(key: u64, x: u32) -> u32 {
    let (mut l, mut r) = (x >> 10 & 0x3FF, x & 0x3FF);
    for round in 0..4u64 {
        let f = (hash2(key, round << 32 | u64::from(r)) & 0x3FF) as u32;
        (l, r) = (r, l ^ f);
    }
    l << 10 | r
}

/// The inverse of [`permute_2p20`]: the seeder uses it to find which indexes of a cycle land in
/// a given slot, so it can write a bucket's records together.
pub(super) fn unpermute_2p20(key: u64, y: u32) -> u32 {
    let (mut l, mut r) = (y >> 10 & 0x3FF, y & 0x3FF);
    for round in (0..4u64).rev() {
        // Undo (l, r) -> (r, l ^ f(r)): the old r is the new l.
        let f = (hash2(key, round << 32 | u64::from(l)) & 0x3FF) as u32;
        (l, r) = (r ^ f, l);
    }
    l << 10 | r
}

/// A keyed permutation of `0..1_000_000`: a Feistel network on base-1000 halves with addition
/// modulo 1000, so it needs no cycle-walking. It turns a rank within an id bucket into the
/// id's six "random" digits without collisions.
pub(super) fn permute_million(key: u64, x: u32) -> u32 {
    let (mut l, mut r) = (x / 1000 % 1000, x % 1000);
    for round in 0..4u64 {
        let f = (hash2(key, round << 32 | u64::from(r)) % 1000) as u32;
        (l, r) = (r, (l + f) % 1000);
    }
    l * 1000 + r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feistel_networks_are_permutations() {
        for key in [0, 1, 0xDEAD_BEEF] {
            let mut seen = vec![false; 1 << 20];
            for x in 0..1u32 << 20 {
                let y = permute_2p20(key, x) as usize;
                assert!(!seen[y], "2^20 collision at {x} key {key}");
                seen[y] = true;
            }
            for x in (0..1u32 << 20).step_by(7) {
                assert_eq!(unpermute_2p20(key, permute_2p20(key, x)), x);
            }
            let mut seen = vec![false; 1_000_000];
            for x in 0..1_000_000 {
                let y = permute_million(key, x) as usize;
                assert!(!seen[y], "million collision at {x} key {key}");
                seen[y] = true;
            }
        }
    }

    #[test]
    fn streams_are_fixed_forever() {
        // Pinned outputs: if these change, every seeded store and benchmark id changes too.
        let mut rng = Rng::new(0);
        assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(rng.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(mix64(1), 0x5692_161D_100B_05E5);
    }

    #[test]
    fn weighted_and_below_stay_in_range() {
        let mut rng = Rng::new(7);
        let items = [("a", 1), ("b", 0), ("c", 3)];
        let mut counts = [0u32; 3];
        for _ in 0..40_000 {
            assert!(rng.below(5) < 5);
            let i = match *rng.weighted(&items) {
                "a" => 0,
                "b" => 1,
                _ => 2,
            };
            counts[i] += 1;
        }
        assert_eq!(counts[1], 0);
        assert!((9_000..11_000).contains(&counts[0]), "{counts:?}");
    }
}
