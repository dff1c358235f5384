//! The verdict of a perf or speedup step from its samples. A change in the direction searched
//! for (slower in perf mode, faster in speedup mode) counts when it is both significant and
//! larger than the threshold; "no such change" counts when the commit is significantly on
//! the near side of the threshold; anything else is ambiguous and calls for more runs. Pure,
//! so a verdict depends only on its numbers.

use super::state::PerfMeasure;
use crate::stats::{Alternative, TestResult, mann_whitney_u, mean, welch_t_test};

/// Which two-sample test decides perf steps (`--stat`). The choice and its names are
/// bisect's; the tests are `crate::stats`'.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StatTest {
    Welch,
    MannWhitney,
}

impl std::str::FromStr for StatTest {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "welch" | "t" => Ok(StatTest::Welch),
            "mann-whitney" | "mwu" | "u" => Ok(StatTest::MannWhitney),
            _ => Err(format!(
                "'{s}' is not a known test; valid: welch, mann-whitney"
            )),
        }
    }
}

impl StatTest {
    /// Runs this test of sample `b` against reference `a`, `alt` claiming what `b` does (the
    /// convention of `crate::stats`); `None` when a sample is too small (fewer than two
    /// values) or not finite.
    pub fn test(self, a: &[f64], b: &[f64], alt: Alternative) -> Option<TestResult> {
        match self {
            StatTest::Welch => welch_t_test(a, b, alt),
            StatTest::MannWhitney => mann_whitney_u(a, b, alt),
        }
    }
}

/// Which change a step looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Perf mode: the commit is worse than the baseline.
    Slower,
    /// Speedup mode: the commit is better than the baseline.
    Faster,
}

/// The judgement of one step.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    /// `Some(true)`: changed by more than the threshold; `Some(false)`: significantly less
    /// than that; `None`: cannot be told yet.
    pub changed: Option<bool>,
    pub measure: PerfMeasure,
    /// p-value of the verdict being wrong; `None` when ambiguous.
    pub p_error: Option<f64>,
}

/// The statistical settings of a judgement.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// Relative threshold, a fraction (0.05 = 5%).
    pub threshold: f64,
    pub alpha: f64,
    pub lower_is_better: bool,
    pub stat: StatTest,
    pub direction: Direction,
}

/// Judges a step from baseline (old endpoint) and candidate samples; `None` when the samples
/// cannot be tested (too few, non-finite, zero baseline).
pub fn judge(base: &[f64], cand: &[f64], rule: Rule) -> Option<Judged> {
    let mb = mean(base)?;
    let mc = mean(cand)?;
    if mb == 0.0 || !mb.is_finite() || !mc.is_finite() {
        return None;
    }
    // "Worse" is lower for throughput (t/s), higher for times (ns).
    let (worse, better) = if rule.lower_is_better {
        (Alternative::Greater, Alternative::Less)
    } else {
        (Alternative::Less, Alternative::Greater)
    };
    let regression = if rule.lower_is_better {
        (mc - mb) / mb
    } else {
        (mb - mc) / mb
    };
    // The baseline moved by the threshold in the searched direction: a commit that is not
    // past it on the near side has not changed enough.
    let (toward, away, change, sign) = match rule.direction {
        Direction::Slower => (worse, better, regression, 1.0),
        Direction::Faster => (better, worse, -regression, -1.0),
    };
    let factor = if rule.lower_is_better {
        1.0 + sign * rule.threshold
    } else {
        1.0 - sign * rule.threshold
    };
    // The alternatives say what the candidate does against the (shifted) baseline.
    let p_change = rule.stat.test(base, cand, toward)?.p_value;
    let shifted: Vec<f64> = base.iter().map(|v| v * factor).collect();
    let p_within = rule.stat.test(&shifted, cand, away)?.p_value;
    let (changed, p_error) = if p_change < rule.alpha && change > rule.threshold {
        (Some(true), Some(p_change))
    } else if p_within < rule.alpha {
        (Some(false), Some(p_within))
    } else {
        (None, None)
    };
    Some(Judged {
        changed,
        measure: PerfMeasure {
            baseline: base.to_vec(),
            candidate: cand.to_vec(),
            regression,
            p_change,
            p_within,
        },
        p_error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noisy(mean: f64, n: usize, seed: u64) -> Vec<f64> {
        // Deterministic ±5% spread.
        (0..n)
            .map(|i| {
                let x = ((i as u64 + 1) * 2_654_435_761 + seed * 40_503) % 1000;
                mean * (1.0 + (x as f64 / 1000.0 - 0.5) * 0.1)
            })
            .collect()
    }

    fn rule(stat: StatTest, direction: Direction, lower_is_better: bool) -> Rule {
        Rule {
            threshold: 0.05,
            alpha: 0.05,
            lower_is_better,
            stat,
            direction,
        }
    }

    fn changed(base: &[f64], cand: &[f64], r: Rule) -> Option<bool> {
        judge(base, cand, r).unwrap().changed
    }

    #[test]
    fn slower_verdicts() {
        for stat in [StatTest::Welch, StatTest::MannWhitney] {
            let r = rule(stat, Direction::Slower, false);
            let base = noisy(100.0, 8, 1);
            let j = judge(&base, &noisy(60.0, 8, 2), r).unwrap();
            assert_eq!(j.changed, Some(true), "{stat:?} {j:?}");
            assert!(j.measure.regression > 0.3 && j.p_error.unwrap() < 0.05);
            assert_eq!(changed(&base, &noisy(100.0, 8, 3), r), Some(false));
            // 5% worse against a 5% threshold with 5% noise: cannot be told apart.
            let j = judge(&base, &noisy(95.0, 8, 4), r).unwrap();
            assert_eq!((j.changed, j.p_error), (None, None), "{stat:?}");
            // Faster is never a regression.
            assert_eq!(changed(&base, &noisy(150.0, 8, 5), r), Some(false));
            // Times: higher is worse.
            let times = rule(stat, Direction::Slower, true);
            assert_eq!(changed(&base, &noisy(150.0, 8, 5), times), Some(true));
        }
    }

    #[test]
    fn faster_verdicts() {
        for stat in [StatTest::Welch, StatTest::MannWhitney] {
            let r = rule(stat, Direction::Faster, false);
            let base = noisy(100.0, 8, 1);
            let j = judge(&base, &noisy(140.0, 8, 2), r).unwrap();
            assert_eq!(j.changed, Some(true), "{stat:?} {j:?}");
            assert!(j.measure.regression < -0.3, "{j:?}");
            assert!(j.p_error.unwrap() < 0.05 && j.measure.p_change < 0.05);
            assert_eq!(changed(&base, &noisy(100.0, 8, 3), r), Some(false));
            // Slower is never a speedup.
            assert_eq!(changed(&base, &noisy(60.0, 8, 5), r), Some(false));
            // At the threshold, within the noise: ambiguous.
            let other = noisy(100.0, 8, 4);
            let scale = 1.049 * mean(&base).unwrap() / mean(&other).unwrap();
            let edge: Vec<f64> = other.iter().map(|v| v * scale).collect();
            assert_eq!(changed(&base, &edge, r), None, "{stat:?}");
            // Significantly faster, but by less than the threshold: no speedup.
            let tight = noisy(100.0, 8, 1)
                .iter()
                .map(|v| 100.0 + (v - 100.0) * 0.1)
                .collect::<Vec<_>>();
            let two_pct: Vec<f64> = tight.iter().map(|v| v * 1.02).collect();
            assert_eq!(changed(&tight, &two_pct, r), Some(false), "{stat:?}");
            // Times: lower is better.
            let times = rule(stat, Direction::Faster, true);
            assert_eq!(changed(&base, &noisy(60.0, 8, 5), times), Some(true));
            assert_eq!(changed(&base, &noisy(140.0, 8, 5), times), Some(false));
        }
    }

    /// p-values of the verdicts above as the hand-written statistics computed them before
    /// `crate::stats` (and statrs) took over: Welch's moved by less than 1e-12, Mann–Whitney's
    /// by less than the old erfc's error (1.2e-7), so no decision moved.
    #[test]
    fn p_values_match_the_pre_statrs_tests() {
        let old = [
            (
                StatTest::Welch,
                60.0,
                2,
                1.797_364_213_381_704_2e-12,
                9.999_999_999_971_981e-1,
            ),
            (
                StatTest::Welch,
                100.0,
                3,
                5.152_753_134_928_312e-1,
                2.403_144_344_407_803_8e-3,
            ),
            (
                StatTest::Welch,
                95.0,
                4,
                2.388_984_023_503_525e-3,
                4.762_979_662_855_847_4e-1,
            ),
            (
                StatTest::Welch,
                150.0,
                5,
                9.999_999_999_968_79e-1,
                1.504_685_265_274_474_7e-12,
            ),
            (
                StatTest::MannWhitney,
                60.0,
                2,
                4.695_528_824_195_653_5e-4,
                9.996_789_555_768_807e-1,
            ),
            (
                StatTest::MannWhitney,
                100.0,
                3,
                6.817_487_757_923_404e-1,
                9.064_503_240_169_275e-3,
            ),
            (
                StatTest::MannWhitney,
                95.0,
                4,
                6.793_636_113_015_607e-3,
                5.209_390_780_854_806e-1,
            ),
            (
                StatTest::MannWhitney,
                150.0,
                5,
                9.996_789_555_768_807e-1,
                4.695_528_824_195_660_5e-4,
            ),
        ];
        let base = noisy(100.0, 8, 1);
        for (stat, level, seed, p_change, p_within) in old {
            let tol = if stat == StatTest::Welch {
                1e-12
            } else {
                1.2e-7
            };
            let r = rule(stat, Direction::Slower, false);
            let m = judge(&base, &noisy(level, 8, seed), r).unwrap().measure;
            assert!(
                (m.p_change - p_change).abs() <= tol,
                "{stat:?} {level}: {m:?}"
            );
            assert!(
                (m.p_within - p_within).abs() <= tol,
                "{stat:?} {level}: {m:?}"
            );
        }
    }

    #[test]
    fn stat_test_names_parse() {
        assert_eq!("welch".parse::<StatTest>().unwrap(), StatTest::Welch);
        assert_eq!(
            "mann-whitney".parse::<StatTest>().unwrap(),
            StatTest::MannWhitney
        );
        assert!("ks".parse::<StatTest>().unwrap_err().contains("welch"));
    }

    #[test]
    fn untestable_samples() {
        let r = rule(StatTest::Welch, Direction::Slower, false);
        assert!(judge(&[0.0, 0.0], &[1.0, 1.0], r).is_none());
        assert!(judge(&[1.0], &[1.0, 2.0], r).is_none());
    }
}
