//! Statistics, the one home of every mean, test and interval in tessera: sample summaries,
//! the Student t and normal distributions, Welch's t-test, the Mann–Whitney U test and a
//! seeded bootstrap. Pure functions of their inputs (criterion's `stats/` is the model): no
//! I/O, no formatting, so a verdict can be reproduced from a results file alone.
//!
//! Conventions, the same in every file here:
//!
//! - **Empty or degenerate input gives `None`**, never a panic and never a made-up number: a
//!   mean of nothing, a variance of fewer than two values, a test with fewer than two values
//!   on a side or a non-finite sample. A caller that shows something else for "no data"
//!   (results rows write 0, `compare` shows "n/a") says so where it unwraps.
//! - **Two-sample functions take `(a, b)` = (reference, sample tested against it)**, usually
//!   (baseline, candidate). A statistic is positive when `b` tends to be larger than `a`, and
//!   [`Alternative::Greater`] claims that `b` is greater than `a`. A ratio is `b / a`.
//!
//! The special functions (log-gamma, the regularized incomplete beta function, erfc) come
//! from the `statrs` crate through [`distribution`]; what is written here is what no crate
//! does in this shape: tests with tessera's degenerate-input rules, the ratio bootstrap and
//! its fixed-seed generator ([`bootstrap`] says why the generator is ours).

pub mod bootstrap;
pub mod distribution;
pub mod mannwhitney;
pub mod sample;
pub mod welch;

pub use bootstrap::{BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, SplitMix64, bootstrap_ratio_ci};
pub use distribution::{normal_cdf, student_t_cdf};
pub use mannwhitney::mann_whitney_u;
pub use sample::{mean, median, quantile_sorted, stddev, variance};
pub use welch::welch_t_test;

/// Which difference the alternative hypothesis of a two-sample test claims, for the second
/// sample `b` against the reference `a`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alternative {
    /// `b` tends to be smaller than `a`.
    Less,
    /// `b` tends to be greater than `a`.
    Greater,
    /// `a` and `b` differ in either direction.
    TwoSided,
}

/// The result of a two-sample test: its statistic (t or z, positive when `b` tends to be
/// larger), degrees of freedom (NaN where the test has none) and p-value in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TestResult {
    pub statistic: f64,
    pub df: f64,
    pub p_value: f64,
}
