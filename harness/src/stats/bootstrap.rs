//! A seeded percentile bootstrap of the ratio of two means (`compare`'s confidence interval)
//! and the generator that drives it.
//!
//! The generator is SplitMix64, written here rather than taken from `rand`: an interval must
//! be the same for the same data and seed on every tessera, and a crate's generator or its
//! sampling of indices may change between versions. It is also the seeded source of synthetic
//! samples in tests.

use super::sample::quantile_sorted;

/// SplitMix64: a tiny, well-mixed, seedable generator. Reproducibility matters more
/// here than statistical strength, and this one has no dependency and no state beyond
/// a u64.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform index in `0..n` (n > 0), by multiply-shift (bias below 2^-32 for the
    /// sample counts seen here).
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal by Box–Muller (for synthetic data in tests and fixtures).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit(); // (0, 1]: ln stays finite
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// The default number of bootstrap resamples.
pub const BOOTSTRAP_RESAMPLES: usize = 5000;
/// The default bootstrap seed; fixed so that the same data give the same interval.
pub const BOOTSTRAP_SEED: u64 = 0x7e55_e7a0_c0ff_ee01;

/// Percentile bootstrap confidence interval of mean(b) / mean(a) at `level` (e.g.
/// 0.95): `resamples` times, draw each side with replacement and take the ratio of the
/// resampled means. `None` when a side is empty, or a resampled baseline mean is not
/// positive (a ratio to zero means nothing).
pub fn bootstrap_ratio_ci(
    a: &[f64],
    b: &[f64],
    level: f64,
    resamples: usize,
    seed: u64,
) -> Option<(f64, f64)> {
    if a.is_empty() || b.is_empty() || resamples == 0 || !(0.0..1.0).contains(&level) {
        return None;
    }
    let mut rng = SplitMix64::new(seed);
    let mut ratios = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        let ma = (0..a.len()).map(|_| a[rng.below(a.len())]).sum::<f64>() / a.len() as f64;
        let mb = (0..b.len()).map(|_| b[rng.below(b.len())]).sum::<f64>() / b.len() as f64;
        if ma.is_nan() || ma <= 0.0 || !mb.is_finite() {
            return None;
        }
        ratios.push(mb / ma);
    }
    ratios.sort_by(f64::total_cmp);
    let alpha = (1.0 - level) / 2.0;
    Some((
        quantile_sorted(&ratios, alpha)?,
        quantile_sorted(&ratios, 1.0 - alpha)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_is_deterministic_and_brackets_the_ratio() {
        let a = [100.0, 101.0, 99.0, 100.5, 99.5];
        let b = [110.0, 111.0, 109.0, 110.5, 109.5];
        let ci = bootstrap_ratio_ci(&a, &b, 0.95, 2000, 7).unwrap();
        assert_eq!(ci, bootstrap_ratio_ci(&a, &b, 0.95, 2000, 7).unwrap());
        assert!(ci.0 < 1.1 && ci.1 > 1.1, "{ci:?}");
        assert!(ci.0 > 1.08 && ci.1 < 1.12, "{ci:?}");
        assert!(bootstrap_ratio_ci(&[], &b, 0.95, 10, 1).is_none());
        assert!(bootstrap_ratio_ci(&[0.0, 0.0], &b, 0.95, 10, 1).is_none());
    }
}
