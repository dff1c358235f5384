//! The statistics that fill a row's timing fields from its raw samples, by llama-bench's
//! rules (a rate per sample, the mean of the rates, whole nanoseconds, 0 for no data), over
//! `crate::stats`.

/// Summary statistics of one test's repetitions, computed as llama-bench does:
/// `samples_ts[i] = n_tokens * 1e9 / samples_ns[i]`, `avg_ts` is the mean of
/// `samples_ts` (not `n_tokens / avg_ns`), standard deviations are sample standard
/// deviations (n − 1; 0 for fewer than two samples). `avg_ns` and `stddev_ns` are
/// rounded to the nearest integer (llama-bench truncates in integer arithmetic; the
/// difference is below a nanosecond).
///
/// A 0 ns sample (a broken clock) gives 0 t/s rather than infinity, which JSON cannot
/// carry.
///
/// Returns `(avg_ns, stddev_ns, avg_ts, stddev_ts, samples_ts)`.
pub fn summarize(samples_ns: &[u64], n_tokens: u64) -> (u64, u64, f64, f64, Vec<f64>) {
    let samples_ts: Vec<f64> = samples_ns
        .iter()
        .map(|&ns| {
            if ns == 0 {
                0.0
            } else {
                n_tokens as f64 * 1e9 / ns as f64
            }
        })
        .collect();
    let ns: Vec<f64> = samples_ns.iter().map(|&x| x as f64).collect();
    let (avg_ns, stddev_ns) = mean_stddev(&ns);
    let (avg_ts, stddev_ts) = mean_stddev(&samples_ts);
    (
        round_to_u64(avg_ns),
        round_to_u64(stddev_ns),
        avg_ts,
        stddev_ts,
        samples_ts,
    )
}

/// Mean and sample standard deviation by `crate::stats` (two-pass, so large equal values
/// give exactly 0), with llama-bench's values for too few samples: 0 where there is none.
fn mean_stddev(v: &[f64]) -> (f64, f64) {
    (
        crate::stats::mean(v).unwrap_or(0.0),
        crate::stats::stddev(v).unwrap_or(0.0),
    )
}

fn round_to_u64(x: f64) -> u64 {
    // `as` saturates and maps NaN to 0, so no input can panic here.
    x.round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn summarize_two_samples() {
        // 100 tokens in 1 s and in 2 s: 100 t/s and 50 t/s.
        let (avg_ns, sd_ns, avg_ts, sd_ts, ts) = summarize(&[1_000_000_000, 2_000_000_000], 100);
        assert_eq!(ts, vec![100.0, 50.0]);
        assert_eq!(avg_ns, 1_500_000_000);
        // sqrt((0.5e9² + 0.5e9²) / 1) = 0.5e9·√2 = 707106781.19
        assert_eq!(sd_ns, 707_106_781);
        assert_eq!(avg_ts, 75.0);
        // sqrt((25² + 25²) / 1) = 25·√2
        assert!(close(sd_ts, 25.0 * 2f64.sqrt()), "{sd_ts}");
    }

    #[test]
    fn summarize_three_samples() {
        // 200 tokens in 0.4 s, 0.5 s, 0.8 s: 500, 400, 250 t/s.
        let (avg_ns, sd_ns, avg_ts, sd_ts, ts) =
            summarize(&[400_000_000, 500_000_000, 800_000_000], 200);
        assert_eq!(ts, vec![500.0, 400.0, 250.0]);
        // mean 1150/3 = 383.33..; squared deviations 13611.1 + 277.8 + 17777.8 =
        // 31666.67, / 2 = 15833.33, sqrt = 125.8305739...
        assert!(close(avg_ts, 1150.0 / 3.0), "{avg_ts}");
        assert!(close(sd_ts, (95000.0f64 / 6.0).sqrt()), "{sd_ts}");
        assert!((sd_ts - 125.830_573_9).abs() < 1e-6, "{sd_ts}");
        // mean 1.7e9/3 = 566666666.67 → 566666667; deviations −166.67M, −66.67M,
        // +233.33M; (27777.8 + 4444.4 + 54444.4)e12 / 2 = 43333.3e12 → 208166599.95
        assert_eq!(avg_ns, 566_666_667);
        assert_eq!(sd_ns, 208_166_600);
        // avg_ts is the mean of the rates, not n_tokens / avg_ns (= 352.94).
        assert!((avg_ts - 200.0 * 1e9 / avg_ns as f64).abs() > 1.0);
    }

    #[test]
    fn summarize_edge_cases() {
        assert_eq!(summarize(&[], 512), (0, 0, 0.0, 0.0, vec![]));
        let (avg_ns, sd_ns, avg_ts, sd_ts, ts) = summarize(&[250_000_000], 128);
        assert_eq!((avg_ns, sd_ns, avg_ts, sd_ts), (250_000_000, 0, 512.0, 0.0));
        assert_eq!(ts, vec![512.0]);
        // Equal samples give exactly zero spread; a zero sample gives 0 t/s, not inf.
        let (_, sd_ns, _, sd_ts, _) = summarize(&[u64::MAX / 2, u64::MAX / 2], 1);
        assert_eq!((sd_ns, sd_ts), (0, 0.0));
        let (_, _, avg_ts, _, ts) = summarize(&[0, 1_000_000_000], 10);
        assert_eq!(ts, vec![0.0, 10.0]);
        assert!(avg_ts.is_finite());
    }
}
