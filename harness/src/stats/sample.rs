//! Summaries of one sample: mean, variance, standard deviation, median, quantile. `None` for
//! too little data (see the conventions in [`crate::stats`]).
//!
//! Mean and variance are two-pass (mean first, then squared deviations from it), so equal
//! values, however large, give exactly zero spread; results rows rely on that.

/// Arithmetic mean; `None` for an empty slice.
pub fn mean(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        None
    } else {
        Some(v.iter().sum::<f64>() / v.len() as f64)
    }
}

/// Sample variance (n − 1), two-pass; `None` for fewer than two values.
pub fn variance(v: &[f64]) -> Option<f64> {
    if v.len() < 2 {
        return None;
    }
    let m = mean(v)?;
    Some(v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (v.len() as f64 - 1.0))
}

/// Sample standard deviation (n − 1); `None` for fewer than two values.
pub fn stddev(v: &[f64]) -> Option<f64> {
    variance(v).map(f64::sqrt)
}

/// Median (the mean of the middle two for an even count); `None` for an empty slice. NaNs
/// sort last.
pub fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    Some(if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    })
}

/// Linear-interpolated quantile `q` (clamped to [0, 1]) of sorted data (the "type 7"
/// definition); `None` for an empty slice.
pub fn quantile_sorted(s: &[f64], q: f64) -> Option<f64> {
    if s.is_empty() {
        return None;
    }
    let pos = q.clamp(0.0, 1.0) * (s.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    Some(s[lo] + (s[hi] - s[lo]) * (pos - lo as f64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::SplitMix64;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn summaries() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(variance(&[1.0]), None);
        assert!(close(
            stddev(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]).unwrap(),
            2.138_089_935,
            1e-9
        ));
        let mut r = SplitMix64::new(1);
        let xs: Vec<f64> = (0..20000).map(|_| r.normal()).collect();
        assert!(mean(&xs).unwrap().abs() < 0.03 && (stddev(&xs).unwrap() - 1.0).abs() < 0.03);
    }

    #[test]
    fn too_little_data_is_none_and_equal_values_have_no_spread() {
        assert_eq!(mean(&[]), None);
        assert_eq!(mean(&[4.0]), Some(4.0));
        assert_eq!(stddev(&[]), None);
        assert_eq!(stddev(&[4.0]), None);
        let big = u64::MAX as f64 / 2.0;
        assert_eq!(stddev(&[big, big, big]), Some(0.0));
        assert_eq!(quantile_sorted(&[], 0.5), None);
        let s = [1.0, 2.0, 4.0, 8.0];
        assert_eq!(quantile_sorted(&s, 0.0), Some(1.0));
        assert_eq!(quantile_sorted(&s, 1.0), Some(8.0));
        assert_eq!(quantile_sorted(&s, 2.0), Some(8.0));
        // pos = 0.5 * 3 = 1.5: halfway between 2 and 4.
        assert_eq!(quantile_sorted(&s, 0.5), Some(3.0));
    }
}
