//! Welch's unequal-variance t-test of a sample `b` against a reference `a`, the one t-test of
//! tessera (`compare`'s verdicts, `history`'s change points, bisect's perf steps).
//!
//! Sign convention (see [`crate::stats`]): t = (mean(b) − mean(a)) / se, positive when `b`'s
//! mean is larger, and [`Alternative::Greater`] claims mean(b) > mean(a). The one-sided
//! p-values are the t CDF at t (`Less`) and one minus it (`Greater`), as bisect's test always
//! computed them; the two-sided one is 2·F(−|t|), as `compare`'s did (accurate for tiny p,
//! where 1 − F would cancel).
//!
//! The two copies this replaces differed on non-finite samples: bisect's gave `None`,
//! `compare`'s gave p = 0 (a "certain" difference). `None` is kept: NaN or ∞ is no evidence,
//! and no results file can carry one (serde_json refuses them in JSON and CSV cells alike),
//! so no verdict of `compare` or `history` moves.

use super::sample::{mean, variance};
use super::{Alternative, TestResult, student_t_cdf};

/// Welch's t-test of `b` against `a`, with the Welch–Satterthwaite degrees of freedom.
///
/// `None` when either side has fewer than two values or a mean or variance is not finite
/// (nothing can be said). Two samples without any spread have no t distribution: equal means
/// give p = 1 and t = 0; different means are a certain difference (t = ±∞, p = 0 in the
/// direction of the difference and 1 against it, p = 0 two-sided), with df = n_a + n_b − 2.
pub fn welch_t_test(a: &[f64], b: &[f64], alt: Alternative) -> Option<TestResult> {
    let (ma, mb) = (mean(a)?, mean(b)?);
    let (va, vb) = (variance(a)?, variance(b)?);
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (sa, sb) = (va / na, vb / nb);
    let se2 = sb + sa;
    if !se2.is_finite() || !ma.is_finite() || !mb.is_finite() {
        return None;
    }
    let diff = mb - ma;
    if se2 == 0.0 {
        let p = match alt {
            _ if diff == 0.0 => 1.0,
            Alternative::TwoSided => 0.0,
            Alternative::Greater => f64::from(u8::from(diff < 0.0)),
            Alternative::Less => f64::from(u8::from(diff > 0.0)),
        };
        let statistic = if diff == 0.0 {
            0.0
        } else {
            f64::INFINITY.copysign(diff)
        };
        return Some(TestResult {
            statistic,
            df: na + nb - 2.0,
            p_value: p,
        });
    }
    let t = diff / se2.sqrt();
    let df = se2 * se2 / (sb * sb / (nb - 1.0) + sa * sa / (na - 1.0));
    let p = match alt {
        Alternative::Less => student_t_cdf(t, df),
        Alternative::Greater => 1.0 - student_t_cdf(t, df),
        Alternative::TwoSided => 2.0 * student_t_cdf(-t.abs(), df),
    };
    Some(TestResult {
        statistic: t,
        df,
        p_value: p.clamp(0.0, 1.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    /// From `compare`'s copy, whose convention this is (t > 0: `b` larger).
    #[test]
    fn welch_against_hand_computation() {
        // a: mean 20, var 10/4 = 2.5; b: mean 22, var 2.5. se² = 0.5+0.5 = 1, t = 2,
        // df = 1 / (0.25/4 + 0.25/4) = 8.
        let a = [18.0, 19.0, 20.0, 21.0, 22.0];
        let b = [20.0, 21.0, 22.0, 23.0, 24.0];
        let w = welch_t_test(&a, &b, Alternative::TwoSided).unwrap();
        assert!(close(w.statistic, 2.0, 1e-12));
        assert!(close(w.df, 8.0, 1e-12));
        // Two-sided p for t = 2, df = 8: 0.08051623.
        assert!(close(w.p_value, 0.080_516_2, 1e-6), "{}", w.p_value);
        assert!(welch_t_test(&a[..1], &b, Alternative::TwoSided).is_none());
        let same = welch_t_test(&[5.0, 5.0], &[5.0, 5.0], Alternative::TwoSided).unwrap();
        assert_eq!(same.p_value, 1.0);
        let shifted = welch_t_test(&[5.0, 5.0], &[6.0, 6.0], Alternative::TwoSided).unwrap();
        assert_eq!(shifted.p_value, 0.0);
    }

    // The bisect copy's tests, whose test took (x, y) with t = (mean(x) − mean(y)) / se and
    // its alternative about x: each old call `test(x, y, alt)` is `welch_t_test(y, x, alt)`
    // here, with the same statistic and p-value.

    #[test]
    fn welch_hand_computed_example() {
        // x: mean 20, var 2.5; y: mean 22, var 10; n = 5 each.
        let x = [18.0, 19.0, 20.0, 21.0, 22.0];
        let y = [18.0, 20.0, 22.0, 24.0, 26.0];
        let r = welch_t_test(&y, &x, Alternative::TwoSided).unwrap();
        // t = -2 / sqrt(0.5 + 2) = -1.2649; df = 6.25 / (0.0625 + 1) = 5.882
        assert!(close(r.statistic, -1.264_911, 1e-5), "{r:?}");
        assert!(close(r.df, 5.882_353, 1e-5), "{r:?}");
        // p from the t distribution with 5.88 df: about 0.253.
        assert!(close(r.p_value, 0.2534, 2e-3), "{r:?}");
        let less = welch_t_test(&y, &x, Alternative::Less).unwrap();
        assert!(close(less.p_value * 2.0, r.p_value, 1e-9));
        let greater = welch_t_test(&y, &x, Alternative::Greater).unwrap();
        assert!(close(greater.p_value + less.p_value, 1.0, 1e-9));
        // The other order flips the sign and swaps the one-sided alternatives.
        let r2 = welch_t_test(&x, &y, Alternative::TwoSided).unwrap();
        assert_eq!(
            (r2.statistic, r2.df, r2.p_value),
            (-r.statistic, r.df, r.p_value)
        );
        let greater2 = welch_t_test(&x, &y, Alternative::Greater).unwrap();
        assert!(close(greater2.p_value, less.p_value, 1e-12));
    }

    #[test]
    fn welch_detects_a_clear_shift_and_not_a_null() {
        let a = [100.0, 103.0, 97.0, 101.0, 99.0, 102.0];
        let b: Vec<f64> = a.iter().map(|v| v * 0.6).collect();
        assert!(welch_t_test(&a, &b, Alternative::Less).unwrap().p_value < 1e-6);
        assert!(welch_t_test(&a, &b, Alternative::Greater).unwrap().p_value > 0.99);
        let c = [101.0, 98.0, 100.0, 102.0, 99.0, 100.0];
        assert!(welch_t_test(&a, &c, Alternative::TwoSided).unwrap().p_value > 0.5);
    }

    #[test]
    fn welch_degenerate_inputs() {
        assert!(welch_t_test(&[1.0, 2.0], &[1.0], Alternative::TwoSided).is_none());
        let same = welch_t_test(&[3.0, 3.0], &[3.0, 3.0], Alternative::Less).unwrap();
        assert_eq!(same.p_value, 1.0);
        let lower = welch_t_test(&[3.0, 3.0], &[2.0, 2.0], Alternative::Less).unwrap();
        assert_eq!(lower.p_value, 0.0);
        assert_eq!(lower.statistic, f64::NEG_INFINITY);
        let wrong_way = welch_t_test(&[3.0, 3.0], &[2.0, 2.0], Alternative::Greater).unwrap();
        assert_eq!(wrong_way.p_value, 1.0);
        assert!(welch_t_test(&[1.0, 2.0], &[f64::NAN, 1.0], Alternative::Less).is_none());
        // Non-finite samples are untestable in every direction, on either side.
        for alt in [
            Alternative::Less,
            Alternative::Greater,
            Alternative::TwoSided,
        ] {
            assert!(welch_t_test(&[f64::NAN, 1.0], &[1.0, 2.0], alt).is_none());
            assert!(welch_t_test(&[1.0, 2.0], &[f64::INFINITY, 1.0], alt).is_none());
        }
    }
}
