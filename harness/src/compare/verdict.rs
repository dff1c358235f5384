//! Verdicts: whether a candidate's samples are faster, slower, the same as, or too noisy
//! to compare with a baseline's, by a significance test plus a noise threshold plus a
//! bootstrap interval.
//!
//! The rule (documented in docs/compare.md and tested on synthetic samples):
//! 1. Fewer than [`MIN_SAMPLES`] samples on a side, or a baseline mean that is not
//!    positive: **noisy** (there is nothing to decide with).
//! 2. Welch's t-test p < `alpha` **and** |mean ratio − 1| ≥ `threshold` **and** the
//!    bootstrap CI of the ratio excludes 1: **improved** (ratio > 1) or **regressed**.
//!    A change must be both significant and beyond the threshold.
//! 3. Otherwise, if the CI is wider than 2 × `threshold`: **noisy**: the data could
//!    not tell a change of threshold size from no change.
//! 4. Otherwise: **unchanged**.

use std::fmt;

use serde::Serialize;

use crate::stats::{
    Alternative, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, bootstrap_ratio_ci, mean, welch_t_test,
};

/// Fewest samples per side that a verdict other than noisy needs.
pub const MIN_SAMPLES: usize = 3;

/// The outcome for one matched pair of rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Improved,
    Regressed,
    Unchanged,
    Noisy,
    /// The baseline was ok, the candidate faulted, timed out or errored.
    Failed,
    /// The baseline was not ok, the candidate is.
    Fixed,
    /// Neither side was ok.
    Broken,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Improved => "improved",
            Verdict::Regressed => "regressed",
            Verdict::Unchanged => "unchanged",
            Verdict::Noisy => "noisy",
            Verdict::Failed => "failed",
            Verdict::Fixed => "fixed",
            Verdict::Broken => "broken",
        }
    }

    /// Whether `--fail-on-regression` should fail on this verdict: a slowdown, or a
    /// configuration that worked in the baseline and no longer does.
    pub fn is_bad(self) -> bool {
        matches!(self, Verdict::Regressed | Verdict::Failed)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Decision parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Criteria {
    /// Smallest relative change that counts (0.02 = 2%).
    pub threshold: f64,
    /// Significance level of the t-test.
    pub alpha: f64,
    /// Confidence level of the bootstrap interval.
    pub level: f64,
    pub resamples: usize,
    pub seed: u64,
}

impl Default for Criteria {
    fn default() -> Self {
        Criteria {
            threshold: 0.02,
            alpha: 0.05,
            level: 0.95,
            resamples: BOOTSTRAP_RESAMPLES,
            seed: BOOTSTRAP_SEED,
        }
    }
}

/// The statistics behind a verdict, for tables and JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    pub verdict: Verdict,
    /// mean(candidate) / mean(baseline) − 1; `None` when the baseline mean is not positive.
    pub diff: Option<f64>,
    /// Two-sided Welch p-value; `None` with fewer than two samples on a side.
    pub p_value: Option<f64>,
    /// Bootstrap CI of mean(candidate) / mean(baseline).
    pub ci: Option<(f64, f64)>,
    pub n_base: usize,
    pub n_cand: usize,
    /// Why the verdict is what it is, in a few words.
    pub reason: String,
}

/// Decides the verdict for t/s samples `base` and `cand` (higher is better).
pub fn decide(base: &[f64], cand: &[f64], c: &Criteria) -> Evidence {
    // An empty side counts as mean 0: "too few samples" below, never a ratio.
    let (mb, mc) = (mean(base).unwrap_or(0.0), mean(cand).unwrap_or(0.0));
    let diff = (mb > 0.0 && !base.is_empty() && !cand.is_empty()).then(|| mc / mb - 1.0);
    let welch = welch_t_test(base, cand, Alternative::TwoSided);
    let ci = bootstrap_ratio_ci(base, cand, c.level, c.resamples, c.seed);
    let mut ev = Evidence {
        verdict: Verdict::Noisy,
        diff,
        p_value: welch.map(|w| w.p_value),
        ci,
        n_base: base.len(),
        n_cand: cand.len(),
        reason: String::new(),
    };
    let (Some(diff), Some(welch), Some((lo, hi))) = (diff, welch, ci) else {
        ev.reason = if mb <= 0.0 && !base.is_empty() {
            "baseline mean is not positive".into()
        } else {
            format!("too few samples ({} vs {})", base.len(), cand.len())
        };
        return ev;
    };
    if base.len() < MIN_SAMPLES || cand.len() < MIN_SAMPLES {
        ev.reason = format!(
            "too few samples ({} vs {}, need {MIN_SAMPLES})",
            base.len(),
            cand.len()
        );
        return ev;
    }
    let significant = welch.p_value < c.alpha;
    let beyond = diff.abs() >= c.threshold;
    let excludes_one = lo > 1.0 || hi < 1.0;
    if significant && beyond && excludes_one {
        ev.verdict = if diff > 0.0 {
            Verdict::Improved
        } else {
            Verdict::Regressed
        };
        ev.reason = format!(
            "p = {:.2e}, beyond ±{:.1}%",
            welch.p_value,
            c.threshold * 100.0
        );
    } else if hi - lo > 2.0 * c.threshold {
        ev.verdict = Verdict::Noisy;
        ev.reason = format!(
            "CI {:+.1}%..{:+.1}% wider than ±{:.1}%",
            (lo - 1.0) * 100.0,
            (hi - 1.0) * 100.0,
            c.threshold * 100.0
        );
    } else {
        ev.verdict = Verdict::Unchanged;
        ev.reason = if significant && !beyond {
            format!("significant but within ±{:.1}%", c.threshold * 100.0)
        } else {
            format!("not significant (p = {:.2})", welch.p_value)
        };
    }
    ev
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::SplitMix64;

    /// `n` samples around `mean` with relative noise `noise` (normal, seeded).
    fn samples(seed: u64, n: usize, mean: f64, noise: f64) -> Vec<f64> {
        let mut r = SplitMix64::new(seed);
        (0..n).map(|_| mean * (1.0 + noise * r.normal())).collect()
    }

    #[test]
    fn ten_percent_shift_at_one_percent_noise_regresses() {
        for seed in 0..20 {
            let base = samples(seed, 5, 1000.0, 0.01);
            let cand = samples(seed + 100, 5, 900.0, 0.01);
            let ev = decide(&base, &cand, &Criteria::default());
            assert_eq!(ev.verdict, Verdict::Regressed, "seed {seed}: {ev:?}");
            let ev = decide(&cand, &base, &Criteria::default());
            assert_eq!(ev.verdict, Verdict::Improved, "seed {seed}: {ev:?}");
        }
    }

    #[test]
    fn one_percent_shift_is_unchanged() {
        for seed in 0..20 {
            let base = samples(seed, 10, 1000.0, 0.01);
            let cand = samples(seed + 100, 10, 990.0, 0.01);
            let ev = decide(&base, &cand, &Criteria::default());
            assert_eq!(ev.verdict, Verdict::Unchanged, "seed {seed}: {ev:?}");
        }
    }

    /// `n` evenly spaced samples around `mean` whose relative sample stddev is exactly
    /// `noise`: a typical draw, without the luck of a random one.
    fn spread(n: usize, mean: f64, noise: f64) -> Vec<f64> {
        let z: Vec<f64> = (0..n).map(|i| i as f64 - (n - 1) as f64 / 2.0).collect();
        let sd = crate::stats::stddev(&z).unwrap();
        z.iter().map(|z| mean * (1.0 + noise * z / sd)).collect()
    }

    #[test]
    fn known_shifts_on_typical_samples() {
        let c = Criteria::default();
        let base = spread(5, 1000.0, 0.01);
        assert_eq!(
            decide(&base, &spread(5, 900.0, 0.01), &c).verdict,
            Verdict::Regressed
        );
        assert_eq!(
            decide(&base, &spread(5, 1100.0, 0.01), &c).verdict,
            Verdict::Improved
        );
        assert_eq!(
            decide(&base, &spread(5, 990.0, 0.01), &c).verdict,
            Verdict::Unchanged
        );
        let ev = decide(&spread(5, 1000.0, 0.2), &spread(5, 900.0, 0.2), &c);
        assert_eq!(ev.verdict, Verdict::Noisy, "{ev:?}");
        assert!(ev.p_value.unwrap() > 0.3, "{ev:?}");
    }

    #[test]
    fn ten_percent_shift_at_twenty_percent_noise_is_rarely_a_regression() {
        // A 10% shift under 20% noise with 5 samples a side is below what the test can
        // resolve: most random draws must come out noisy, none improved. (A rare
        // extreme draw does look like a significant drop; that is the test's 5% risk
        // plus its small power, not a bug.)
        let (mut noisy, mut regressed) = (0, 0);
        for seed in 0..50 {
            let base = samples(seed, 5, 1000.0, 0.20);
            let cand = samples(seed + 100, 5, 900.0, 0.20);
            match decide(&base, &cand, &Criteria::default()).verdict {
                Verdict::Noisy => noisy += 1,
                Verdict::Regressed => regressed += 1,
                v => panic!("seed {seed}: {v}"),
            }
        }
        assert!(noisy >= 40, "{noisy} noisy, {regressed} regressed");
    }

    #[test]
    fn threshold_decides_small_but_significant_changes() {
        // 1.5% shift with almost no noise: significant; below a 2% threshold it is
        // unchanged, above a 1% threshold it is a regression.
        let base = samples(1, 10, 1000.0, 0.001);
        let cand = samples(2, 10, 985.0, 0.001);
        assert_eq!(
            decide(&base, &cand, &Criteria::default()).verdict,
            Verdict::Unchanged
        );
        let strict = Criteria {
            threshold: 0.01,
            ..Criteria::default()
        };
        assert_eq!(decide(&base, &cand, &strict).verdict, Verdict::Regressed);
    }

    #[test]
    fn too_few_samples_is_noisy() {
        let ev = decide(&[1000.0, 1001.0], &[500.0, 501.0], &Criteria::default());
        assert_eq!(ev.verdict, Verdict::Noisy);
        assert!(ev.reason.contains("too few"), "{}", ev.reason);
        let ev = decide(&[], &[500.0, 501.0, 502.0], &Criteria::default());
        assert_eq!(ev.verdict, Verdict::Noisy);
        assert_eq!(ev.diff, None);
        let ev = decide(&[0.0, 0.0, 0.0], &[1.0, 1.0, 1.0], &Criteria::default());
        assert_eq!(ev.verdict, Verdict::Noisy);
    }

    #[test]
    fn identical_constant_samples_are_unchanged() {
        let s = [100.0; 5];
        let ev = decide(&s, &s, &Criteria::default());
        assert_eq!(ev.verdict, Verdict::Unchanged);
        assert_eq!(ev.diff, Some(0.0));
    }
}
