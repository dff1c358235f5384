//! Pure statistics for comparisons: summaries, Welch's t-test (with the Student t
//! distribution through the regularized incomplete beta function), a seeded bootstrap
//! confidence interval of a ratio of means, and the PRNG that drives it.
//!
//! Everything here is a pure function of its inputs: the same samples always give the
//! same p-value and the same interval, so a verdict can be reproduced from a results
//! file alone.

/// Mean of `v`; 0 for an empty slice.
pub fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.iter().sum::<f64>() / v.len() as f64
}

/// Sample variance (n − 1), two-pass; 0 for fewer than two values.
pub fn variance(v: &[f64]) -> f64 {
    if v.len() < 2 {
        return 0.0;
    }
    let m = mean(v);
    v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (v.len() as f64 - 1.0)
}

/// Sample standard deviation (n − 1).
pub fn stddev(v: &[f64]) -> f64 {
    variance(v).sqrt()
}

/// Median; 0 for an empty slice. NaNs sort last.
pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// ln Γ(x) for x > 0, by the Lanczos approximation (g = 7, nine coefficients), with the
/// reflection formula below 0.5. Relative error is around 1e-15 over the range used here.
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const COEF: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Γ(x)Γ(1−x) = π / sin(πx)
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).abs().ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = COEF[0];
    let t = x + G + 0.5;
    for (i, c) in COEF.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The regularized incomplete beta function I_x(a, b) for a, b > 0 and x in [0, 1],
/// evaluated with the continued fraction (modified Lentz), using the symmetry
/// I_x(a, b) = 1 − I_{1−x}(b, a) where the fraction converges slowly.
/// Out-of-range arguments give NaN rather than a panic.
pub fn inc_beta(a: f64, b: f64, x: f64) -> f64 {
    // Written so that NaN arguments fail the test too.
    let valid = a > 0.0 && b > 0.0 && (0.0..=1.0).contains(&x);
    if !valid {
        return f64::NAN;
    }
    if x == 0.0 || x == 1.0 {
        return x;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    let front = ln_front.exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_cf(a, b, x) / a
    } else {
        1.0 - front * beta_cf(b, a, 1.0 - x) / b
    }
}

/// Continued fraction of the incomplete beta function (the standard even/odd-step
/// form), evaluated with the modified Lentz method.
fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    const EPS: f64 = 1e-15;
    let qab = a + b;
    let qap = a + 1.0;
    let qam = a - 1.0;
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=1000 {
        let m = m as f64;
        let m2 = 2.0 * m;
        // Even step.
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        h *= d * c;
        // Odd step.
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < EPS {
            break;
        }
    }
    h
}

/// CDF of Student's t distribution with `df` degrees of freedom (df > 0, may be
/// fractional, as Welch's test needs).
pub fn student_t_cdf(t: f64, df: f64) -> f64 {
    if t.is_nan() || df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    if t.is_infinite() {
        return if t > 0.0 { 1.0 } else { 0.0 };
    }
    let x = df / (df + t * t);
    let tail = 0.5 * inc_beta(df / 2.0, 0.5, x);
    if t > 0.0 { 1.0 - tail } else { tail }
}

/// Result of Welch's unequal-variance t-test of `b` against `a`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Welch {
    /// t statistic of mean(b) − mean(a); positive when b is larger.
    pub t: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub df: f64,
    /// Two-sided p-value.
    pub p: f64,
}

/// Welch's t-test; `None` when either side has fewer than two samples. Two samples
/// without any spread give p = 1 if their means are equal and p = 0 otherwise, since
/// a difference between constant series is certain.
pub fn welch_t_test(a: &[f64], b: &[f64]) -> Option<Welch> {
    if a.len() < 2 || b.len() < 2 {
        return None;
    }
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (va, vb) = (variance(a) / na, variance(b) / nb);
    let diff = mean(b) - mean(a);
    let se2 = va + vb;
    if se2 == 0.0 || !se2.is_finite() {
        let p = if diff == 0.0 { 1.0 } else { 0.0 };
        let t = if diff == 0.0 {
            0.0
        } else {
            f64::INFINITY.copysign(diff)
        };
        return Some(Welch {
            t,
            df: na + nb - 2.0,
            p,
        });
    }
    let t = diff / se2.sqrt();
    let df = se2 * se2 / (va * va / (na - 1.0) + vb * vb / (nb - 1.0));
    let p = 2.0 * student_t_cdf(-t.abs(), df);
    Some(Welch {
        t,
        df,
        p: p.clamp(0.0, 1.0),
    })
}

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
        quantile_sorted(&ratios, alpha),
        quantile_sorted(&ratios, 1.0 - alpha),
    ))
}

/// Linear-interpolated quantile of sorted, non-empty data (the "type 7" definition).
pub fn quantile_sorted(s: &[f64], q: f64) -> f64 {
    let pos = q.clamp(0.0, 1.0) * (s.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    s[lo] + (s[hi] - s[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn ln_gamma_known_values() {
        assert!(close(ln_gamma(1.0), 0.0, 1e-13));
        assert!(close(ln_gamma(2.0), 0.0, 1e-13));
        assert!(close(ln_gamma(5.0), 24f64.ln(), 1e-12));
        // Γ(1/2) = √π
        assert!(close(
            ln_gamma(0.5),
            std::f64::consts::PI.sqrt().ln(),
            1e-12
        ));
        assert!(close(ln_gamma(0.1), 9.513_507_698_668_732f64.ln(), 1e-11));
    }

    #[test]
    fn inc_beta_known_values() {
        // I_x(1, 1) = x; I_x(a, 1) = x^a; I_0.5(a, a) = 0.5.
        assert!(close(inc_beta(1.0, 1.0, 0.3), 0.3, 1e-14));
        assert!(close(inc_beta(3.0, 1.0, 0.4), 0.064, 1e-14));
        assert!(close(inc_beta(7.5, 7.5, 0.5), 0.5, 1e-13));
        // I_x(2, 3) = 6x²(1−x)² ... closed form: x²(6 − 8x + 3x²)
        let x: f64 = 0.35;
        assert!(close(
            inc_beta(2.0, 3.0, x),
            x * x * (6.0 - 8.0 * x + 3.0 * x * x),
            1e-13
        ));
        assert!(inc_beta(-1.0, 1.0, 0.5).is_nan());
        assert!(inc_beta(1.0, 1.0, 1.5).is_nan());
    }

    #[test]
    fn t_cdf_matches_tables() {
        assert!(close(student_t_cdf(0.0, 5.0), 0.5, 1e-14));
        // df = 1 is Cauchy: F(t) = 1/2 + atan(t)/π.
        let t: f64 = 1.7;
        assert!(close(
            student_t_cdf(t, 1.0),
            0.5 + t.atan() / std::f64::consts::PI,
            1e-12
        ));
        // Table values: t_{0.975, 10} = 2.228139, t_{0.975, 30} = 2.042272.
        assert!(close(student_t_cdf(2.228_139, 10.0), 0.975, 1e-6));
        assert!(close(student_t_cdf(2.042_272, 30.0), 0.975, 1e-6));
        assert!(close(student_t_cdf(-2.042_272, 30.0), 0.025, 1e-6));
        // Fractional df (Welch): between the neighbours.
        let f = student_t_cdf(2.0, 7.5);
        assert!(f > student_t_cdf(2.0, 7.0) && f < student_t_cdf(2.0, 8.0));
    }

    #[test]
    fn welch_against_hand_computation() {
        // a: mean 20, var 10/4 = 2.5; b: mean 22, var 2.5. se² = 0.5+0.5 = 1, t = 2,
        // df = 1 / (0.25/4 + 0.25/4) = 8.
        let a = [18.0, 19.0, 20.0, 21.0, 22.0];
        let b = [20.0, 21.0, 22.0, 23.0, 24.0];
        let w = welch_t_test(&a, &b).unwrap();
        assert!(close(w.t, 2.0, 1e-12));
        assert!(close(w.df, 8.0, 1e-12));
        // Two-sided p for t = 2, df = 8: 0.08051623.
        assert!(close(w.p, 0.080_516_2, 1e-6), "{}", w.p);
        assert!(welch_t_test(&a[..1], &b).is_none());
        let same = welch_t_test(&[5.0, 5.0], &[5.0, 5.0]).unwrap();
        assert_eq!(same.p, 1.0);
        let shifted = welch_t_test(&[5.0, 5.0], &[6.0, 6.0]).unwrap();
        assert_eq!(shifted.p, 0.0);
    }

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

    #[test]
    fn summaries() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
        assert_eq!(variance(&[1.0]), 0.0);
        assert!(close(
            stddev(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]),
            2.138_089_935,
            1e-9
        ));
        let mut r = SplitMix64::new(1);
        let xs: Vec<f64> = (0..20000).map(|_| r.normal()).collect();
        assert!(mean(&xs).abs() < 0.03 && (stddev(&xs) - 1.0).abs() < 0.03);
    }
}
