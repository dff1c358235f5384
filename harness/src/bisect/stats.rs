//! Two-sample significance tests for perf bisection (Welch's t-test, Mann-Whitney U), as pure
//! functions over samples, so that the verdict of a step depends only on its numbers.
//!
//! Written from the textbook formulas: the Student t CDF through the regularized incomplete
//! beta function (continued fraction, modified Lentz), the normal CDF through `erfc`.

/// Which difference the alternative hypothesis claims, for `x` against `y`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alternative {
    /// `x` tends to be smaller than `y`.
    Less,
    /// `x` tends to be greater than `y`.
    Greater,
    /// `x` and `y` differ in either direction.
    TwoSided,
}

/// The result of a test: its statistic (t or z), degrees of freedom (NaN where the test has
/// none) and p-value in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TestResult {
    pub statistic: f64,
    pub df: f64,
    pub p_value: f64,
}

/// Which two-sample test decides perf steps.
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
    /// Runs this test; `None` when a sample is too small (fewer than two values).
    pub fn test(self, x: &[f64], y: &[f64], alt: Alternative) -> Option<TestResult> {
        match self {
            StatTest::Welch => welch_t_test(x, y, alt),
            StatTest::MannWhitney => mann_whitney_u(x, y, alt),
        }
    }
}

/// Arithmetic mean; `None` for an empty slice.
pub fn mean(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        None
    } else {
        Some(v.iter().sum::<f64>() / v.len() as f64)
    }
}

/// Sample variance (n − 1); `None` for fewer than two values.
pub fn variance(v: &[f64]) -> Option<f64> {
    if v.len() < 2 {
        return None;
    }
    let m = mean(v)?;
    Some(v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (v.len() - 1) as f64)
}

/// Welch's unequal-variance t-test of mean(x) against mean(y).
///
/// Two constant samples have no variance: equal means give p = 1, different means are a
/// certain difference (p = 0 in the direction of the difference, 1 against it).
pub fn welch_t_test(x: &[f64], y: &[f64], alt: Alternative) -> Option<TestResult> {
    let (mx, my) = (mean(x)?, mean(y)?);
    let (vx, vy) = (variance(x)?, variance(y)?);
    let (nx, ny) = (x.len() as f64, y.len() as f64);
    let (sx, sy) = (vx / nx, vy / ny);
    let se2 = sx + sy;
    if !se2.is_finite() || !mx.is_finite() || !my.is_finite() {
        return None;
    }
    if se2 == 0.0 {
        let diff = mx - my;
        let p = match alt {
            _ if diff == 0.0 => 1.0,
            Alternative::TwoSided => 0.0,
            Alternative::Greater => f64::from(u8::from(diff < 0.0)),
            Alternative::Less => f64::from(u8::from(diff > 0.0)),
        };
        let statistic = if diff == 0.0 {
            0.0
        } else {
            diff.signum() * f64::INFINITY
        };
        return Some(TestResult {
            statistic,
            df: nx + ny - 2.0,
            p_value: p,
        });
    }
    let t = (mx - my) / se2.sqrt();
    let df = se2 * se2 / (sx * sx / (nx - 1.0) + sy * sy / (ny - 1.0));
    let cdf = student_t_cdf(t, df);
    let p = match alt {
        Alternative::Less => cdf,
        Alternative::Greater => 1.0 - cdf,
        Alternative::TwoSided => 2.0 * cdf.min(1.0 - cdf),
    };
    Some(TestResult {
        statistic: t,
        df,
        p_value: p.clamp(0.0, 1.0),
    })
}

/// Mann-Whitney U test of x against y with the normal approximation, tie correction and
/// continuity correction. The statistic reported is z.
pub fn mann_whitney_u(x: &[f64], y: &[f64], alt: Alternative) -> Option<TestResult> {
    if x.len() < 2 || y.len() < 2 || x.iter().chain(y).any(|v| !v.is_finite()) {
        return None;
    }
    let (n1, n2) = (x.len() as f64, y.len() as f64);
    let n = n1 + n2;
    let mut all: Vec<(f64, bool)> = x
        .iter()
        .map(|&v| (v, true))
        .chain(y.iter().map(|&v| (v, false)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Average ranks over ties; collect the tie term sum(t^3 - t) for the variance.
    let mut rank_x = 0.0;
    let mut tie_term = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j + 1 < all.len() && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        let t = (j - i + 1) as f64;
        tie_term += t * t * t - t;
        rank_x += all[i..=j].iter().filter(|e| e.1).count() as f64 * avg;
        i = j + 1;
    }
    let u = rank_x - n1 * (n1 + 1.0) / 2.0;
    let mu = n1 * n2 / 2.0;
    let var = n1 * n2 / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)));
    if var <= 0.0 {
        // Every value equal: no evidence of any difference.
        return Some(TestResult {
            statistic: 0.0,
            df: f64::NAN,
            p_value: 1.0,
        });
    }
    let sd = var.sqrt();
    let (z, p) = match alt {
        Alternative::Greater => {
            let z = (u - mu - 0.5) / sd;
            (z, 1.0 - normal_cdf(z))
        }
        Alternative::Less => {
            let z = (u - mu + 0.5) / sd;
            (z, normal_cdf(z))
        }
        Alternative::TwoSided => {
            let d = (u - mu).abs() - 0.5;
            let z = d.max(0.0) / sd;
            (z * (u - mu).signum(), 2.0 * (1.0 - normal_cdf(z)))
        }
    };
    Some(TestResult {
        statistic: z,
        df: f64::NAN,
        p_value: p.clamp(0.0, 1.0),
    })
}

/// Standard normal CDF.
pub fn normal_cdf(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

/// Complementary error function (Numerical Recipes' Chebyshev fit, relative error < 1.2e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

// The t distribution and its special functions are shared with `tessera compare`.
#[cfg(test)]
use crate::compare::stats::ln_gamma;
pub use crate::compare::stats::student_t_cdf;

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn t_cdf_matches_table_quantiles() {
        // Two-sided 95% critical values from the Student t table.
        for (df, q) in [(1.0, 12.706), (5.0, 2.571), (10.0, 2.228), (30.0, 2.042)] {
            let c = student_t_cdf(q, df);
            assert!(close(c, 0.975, 2e-4), "df {df}: {c}");
            assert!(close(student_t_cdf(-q, df), 0.025, 2e-4));
        }
        assert!(close(student_t_cdf(0.0, 7.0), 0.5, 1e-12));
        // Large df approaches the normal distribution.
        assert!(close(student_t_cdf(1.96, 1e6), 0.975, 1e-3));
    }

    #[test]
    fn normal_cdf_values() {
        assert!(close(normal_cdf(0.0), 0.5, 1e-7));
        assert!(close(normal_cdf(1.959_964), 0.975, 1e-6));
        assert!(close(normal_cdf(-1.644_854), 0.05, 1e-6));
    }

    #[test]
    fn ln_gamma_known_values() {
        assert!(close(ln_gamma(1.0), 0.0, 1e-12));
        assert!(close(ln_gamma(5.0), 24f64.ln(), 1e-10));
        assert!(close(
            ln_gamma(0.5),
            std::f64::consts::PI.sqrt().ln(),
            1e-10
        ));
    }

    #[test]
    fn welch_hand_computed_example() {
        // x: mean 20, var 2.5; y: mean 22, var 10; n = 5 each.
        let x = [18.0, 19.0, 20.0, 21.0, 22.0];
        let y = [18.0, 20.0, 22.0, 24.0, 26.0];
        let r = welch_t_test(&x, &y, Alternative::TwoSided).unwrap();
        // t = -2 / sqrt(0.5 + 2) = -1.2649; df = 6.25 / (0.0625 + 1) = 5.882
        assert!(close(r.statistic, -1.264_911, 1e-5), "{r:?}");
        assert!(close(r.df, 5.882_353, 1e-5), "{r:?}");
        // p from the t distribution with 5.88 df: about 0.253.
        assert!(close(r.p_value, 0.2534, 2e-3), "{r:?}");
        let less = welch_t_test(&x, &y, Alternative::Less).unwrap();
        assert!(close(less.p_value * 2.0, r.p_value, 1e-9));
        let greater = welch_t_test(&x, &y, Alternative::Greater).unwrap();
        assert!(close(greater.p_value + less.p_value, 1.0, 1e-9));
    }

    #[test]
    fn welch_detects_a_clear_shift_and_not_a_null() {
        let a = [100.0, 103.0, 97.0, 101.0, 99.0, 102.0];
        let b: Vec<f64> = a.iter().map(|v| v * 0.6).collect();
        assert!(welch_t_test(&b, &a, Alternative::Less).unwrap().p_value < 1e-6);
        assert!(welch_t_test(&b, &a, Alternative::Greater).unwrap().p_value > 0.99);
        let c = [101.0, 98.0, 100.0, 102.0, 99.0, 100.0];
        assert!(welch_t_test(&c, &a, Alternative::TwoSided).unwrap().p_value > 0.5);
    }

    #[test]
    fn welch_degenerate_inputs() {
        assert!(welch_t_test(&[1.0], &[1.0, 2.0], Alternative::TwoSided).is_none());
        let same = welch_t_test(&[3.0, 3.0], &[3.0, 3.0], Alternative::Less).unwrap();
        assert_eq!(same.p_value, 1.0);
        let lower = welch_t_test(&[2.0, 2.0], &[3.0, 3.0], Alternative::Less).unwrap();
        assert_eq!(lower.p_value, 0.0);
        let wrong_way = welch_t_test(&[2.0, 2.0], &[3.0, 3.0], Alternative::Greater).unwrap();
        assert_eq!(wrong_way.p_value, 1.0);
        assert!(welch_t_test(&[f64::NAN, 1.0], &[1.0, 2.0], Alternative::Less).is_none());
    }

    #[test]
    fn mann_whitney_separated_samples() {
        // Complete separation, n = 5 + 5: U = 0, exact one-sided p = 1/252 = 0.004; the
        // normal approximation with continuity correction gives about 0.006.
        let x = [1.0, 2.0, 3.0, 4.0, 5.0];
        let y = [6.0, 7.0, 8.0, 9.0, 10.0];
        let r = mann_whitney_u(&x, &y, Alternative::Less).unwrap();
        assert!(r.p_value < 0.01 && r.p_value > 0.003, "{r:?}");
        let g = mann_whitney_u(&x, &y, Alternative::Greater).unwrap();
        assert!(g.p_value > 0.99);
        let two = mann_whitney_u(&x, &y, Alternative::TwoSided).unwrap();
        assert!(close(two.p_value, 2.0 * r.p_value, 1e-9));
    }

    #[test]
    fn mann_whitney_ties_and_nulls() {
        let all_same = mann_whitney_u(&[1.0, 1.0], &[1.0, 1.0, 1.0], Alternative::TwoSided);
        assert_eq!(all_same.unwrap().p_value, 1.0);
        let x = [1.0, 3.0, 5.0, 7.0];
        let y = [2.0, 4.0, 6.0, 8.0];
        assert!(
            mann_whitney_u(&x, &y, Alternative::TwoSided)
                .unwrap()
                .p_value
                > 0.5
        );
        assert!(mann_whitney_u(&x, &[1.0], Alternative::Less).is_none());
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
}
