//! Which citizens a load asks about: an index drawn from a distribution over `0..citizens`,
//! turned into an id with [`popgate::synth::citizen_id_at`] (no store read, no table).
//!
//! A fresh draw per request, not a pre-built pool: a pool of K ids would repeat every K
//! requests and make the reuse cache look better than it is on a large population.

use std::fmt;
use std::str::FromStr;

/// A small, fast generator (SplitMix64); statistical quality is ample for picking keys.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0); the multiply-shift bias is below 2^-32 for our n.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// How request keys are spread over the population.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KeyDist {
    /// Every citizen equally likely: the cache's worst case.
    Uniform,
    /// Zipf with exponent `s`: index 0 is the most asked-about citizen. Real traffic is
    /// skewed like this (a few people are looked up by many agencies).
    Zipf(f64),
}

impl fmt::Display for KeyDist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyDist::Uniform => f.write_str("uniform"),
            KeyDist::Zipf(s) => write!(f, "zipf:{s}"),
        }
    }
}

impl FromStr for KeyDist {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "uniform" {
            return Ok(KeyDist::Uniform);
        }
        if let Some(exp) = s.strip_prefix("zipf:") {
            let exp: f64 = exp
                .parse()
                .map_err(|_| format!("zipf:S needs a number for S, got {exp:?}"))?;
            if !(exp > 0.0 && exp <= 10.0) {
                return Err(format!("zipf:S needs 0 < S <= 10, got {exp}"));
            }
            return Ok(KeyDist::Zipf(exp));
        }
        Err(format!(
            "expected uniform or zipf:S (e.g. zipf:1.0), got {s:?}"
        ))
    }
}

/// Draws indexes in `0..n` from a [`KeyDist`].
#[derive(Debug, Clone)]
pub enum KeySampler {
    Uniform(u64),
    Zipf(Zipf),
}

impl KeySampler {
    pub fn new(dist: KeyDist, n: u64) -> KeySampler {
        match dist {
            KeyDist::Uniform => KeySampler::Uniform(n.max(1)),
            KeyDist::Zipf(s) => KeySampler::Zipf(Zipf::new(n.max(1), s)),
        }
    }

    pub fn sample(&self, rng: &mut Rng) -> u64 {
        match self {
            KeySampler::Uniform(n) => rng.below(*n),
            KeySampler::Zipf(z) => z.sample(rng) - 1,
        }
    }
}

/// Zipf over `1..=n` by rejection-inversion (Hörmann & Derflinger 1996): O(1) per draw and
/// no table, so 10 million keys cost nothing to set up.
#[derive(Debug, Clone)]
pub struct Zipf {
    n: f64,
    s: f64,
    h_integral_x1: f64,
    h_integral_n: f64,
    cut: f64,
}

impl Zipf {
    pub fn new(n: u64, s: f64) -> Zipf {
        let mut z = Zipf {
            n: n as f64,
            s,
            h_integral_x1: 0.0,
            h_integral_n: 0.0,
            cut: 0.0,
        };
        z.h_integral_x1 = z.h_integral(1.5) - 1.0;
        z.h_integral_n = z.h_integral(z.n + 0.5);
        z.cut = 2.0 - z.h_integral_inverse(z.h_integral(2.5) - z.h(2.0));
        z
    }

    /// A rank in `1..=n`.
    pub fn sample(&self, rng: &mut Rng) -> u64 {
        loop {
            let u = self.h_integral_n + rng.unit() * (self.h_integral_x1 - self.h_integral_n);
            let x = self.h_integral_inverse(u);
            let k = (x + 0.5).floor().clamp(1.0, self.n);
            if k - x <= self.cut || u >= self.h_integral(k + 0.5) - self.h(k) {
                return k as u64;
            }
        }
    }

    fn h(&self, x: f64) -> f64 {
        (-self.s * x.ln()).exp()
    }

    fn h_integral(&self, x: f64) -> f64 {
        let log_x = x.ln();
        helper2((1.0 - self.s) * log_x) * log_x
    }

    fn h_integral_inverse(&self, x: f64) -> f64 {
        let t = (x * (1.0 - self.s)).max(-1.0);
        (helper1(t) * x).exp()
    }
}

/// ln(1 + x) / x, accurate near 0.
fn helper1(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.ln_1p() / x
    } else {
        1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))
    }
}

/// (e^x − 1) / x, accurate near 0.
fn helper2(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.exp_m1() / x
    } else {
        1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + 0.25 * x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_one_matches_the_harmonic_shares() {
        let n = 1000;
        let z = Zipf::new(n, 1.0);
        let mut rng = Rng::new(7);
        let draws = 400_000;
        let mut counts = vec![0u32; n as usize + 1];
        for _ in 0..draws {
            let k = z.sample(&mut rng);
            assert!((1..=n).contains(&k));
            counts[k as usize] += 1;
        }
        let harmonic: f64 = (1..=n).map(|k| 1.0 / k as f64).sum();
        for k in [1usize, 2, 10] {
            let want = 1.0 / (k as f64 * harmonic);
            let got = f64::from(counts[k]) / f64::from(draws);
            assert!(
                (got - want).abs() / want < 0.05,
                "rank {k}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn uniform_stays_in_range_and_parses() {
        let s = KeySampler::new("uniform".parse().unwrap(), 10);
        let mut rng = Rng::new(1);
        assert!((0..1000).all(|_| s.sample(&mut rng) < 10));
        assert_eq!("zipf:1.2".parse::<KeyDist>(), Ok(KeyDist::Zipf(1.2)));
        assert!("zipf:x".parse::<KeyDist>().is_err());
        assert!("normal".parse::<KeyDist>().is_err());
    }
}
