//! Baseline vs candidate: load both sides, pair rows on configuration, and decide a
//! verdict for each pair from the raw samples. [`compare`] is pure data in, pure data out;
//! [`run`] loads the two sides a [`Config`] names (`tessera compare` builds it from its
//! flags in `cmd::compare`) and compares them. Printing lives in [`render`], drawing in
//! `crate::chart`.

pub mod load;
pub mod matching;
pub mod render;
pub mod verdict;

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use serde::Serialize;

use crate::results::{BenchRow, Status};
use load::{LoadedRow, Run};
use verdict::{Criteria, Verdict};

/// One side of a matched pair, as tables show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SideSummary {
    /// Mean t/s, for `ok` rows.
    pub avg_ts: Option<f64>,
    pub stddev_ts: Option<f64>,
    /// Number of raw samples.
    pub n: usize,
    pub status: Status,
    /// The table cell: "1160.23 ± 10.11", or the status ("fault: SIGSEGV").
    pub cell: String,
}

impl SideSummary {
    fn of(row: &BenchRow) -> SideSummary {
        let ok = row.status == Status::Ok;
        SideSummary {
            avg_ts: ok.then_some(row.avg_ts),
            stddev_ts: ok.then_some(row.stddev_ts),
            n: row.samples_ts.len(),
            status: row.status,
            cell: row.ts_display(),
        }
    }
}

/// One matched pair and its verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Line {
    /// The key fields either side stated (candidate's value first).
    pub config: BTreeMap<String, String>,
    /// The fields that tell this config from the others, "threads=2, isa=avx512".
    pub label: String,
    pub test: String,
    pub baseline: SideSummary,
    pub candidate: SideSummary,
    /// (candidate / baseline − 1) × 100.
    pub diff_pct: Option<f64>,
    pub p_value: Option<f64>,
    /// Bootstrap CI of the ratio, as percent changes.
    pub ci_low_pct: Option<f64>,
    pub ci_high_pct: Option<f64>,
    pub verdict: Verdict,
    pub reason: String,
}

/// A row with no partner on the other side.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unmatched {
    /// "baseline" or "candidate".
    pub side: &'static str,
    pub config: BTreeMap<String, String>,
    pub label: String,
    pub test: String,
    pub summary: SideSummary,
}

/// Everything `tessera compare` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub baseline: String,
    pub candidate: String,
    pub threshold: f64,
    pub alpha: f64,
    pub level: f64,
    pub lines: Vec<Line>,
    pub unmatched: Vec<Unmatched>,
    /// Lines per verdict name.
    pub counts: BTreeMap<String, usize>,
}

impl Comparison {
    /// Whether anything regressed or stopped working.
    pub fn any_bad(&self) -> bool {
        self.lines.iter().any(|l| l.verdict.is_bad())
    }

    /// When no row matched: one line saying so and what each side had (its tests, and
    /// the key fields where the sides disagree), so the wrong file or flag shows.
    pub fn no_match(&self) -> Option<String> {
        if !self.lines.is_empty() {
            return None;
        }
        type Values = BTreeMap<String, std::collections::BTreeSet<String>>;
        let mut sides: [(usize, Values); 2] = Default::default();
        for u in &self.unmatched {
            let side = &mut sides[usize::from(u.side != "baseline")];
            side.0 += 1;
            for (k, v) in &u.config {
                side.1.entry(k.clone()).or_default().insert(v.clone());
            }
            side.1
                .entry("test".to_string())
                .or_default()
                .insert(u.test.clone());
        }
        let list = |values: Option<&std::collections::BTreeSet<String>>| -> String {
            let Some(values) = values else {
                return "none stated".to_string();
            };
            let mut v: Vec<&str> = values.iter().map(String::as_str).take(6).collect();
            if values.len() > 6 {
                v.push("...");
            }
            v.join(", ")
        };
        let rows = |n: usize| {
            if n == 1 {
                "1 row".to_string()
            } else {
                format!("{n} rows")
            }
        };
        let (b, c) = (&sides[0], &sides[1]);
        let (bt, ct) = (b.1.get("test"), c.1.get("test"));
        let common_test = bt.zip(ct).is_some_and(|(x, y)| !x.is_disjoint(y));
        if !common_test {
            return Some(format!(
                "no test matched: the baseline has {} ({}), the candidate has {} ({}); compare runs of the same tests",
                list(bt),
                rows(b.0),
                list(ct),
                rows(c.0)
            ));
        }
        // Same tests: some key field both sides state with no value in common.
        let differing: Vec<String> = load::KEY_FIELDS
            .iter()
            .filter(|f| **f != "test")
            .filter_map(|f| {
                let (x, y) = (b.1.get(*f)?, c.1.get(*f)?);
                x.is_disjoint(y).then(|| {
                    format!(
                        "{} (baseline {}; candidate {})",
                        f,
                        list(Some(x)),
                        list(Some(y))
                    )
                })
            })
            .collect();
        Some(format!(
            "no test matched: both sides have {} but no configuration agrees{}; give --ignore FIELD to match across a field that differs on purpose",
            list(
                bt.zip(ct)
                    .map(|(x, y)| x.intersection(y).cloned().collect())
                    .as_ref()
            ),
            if differing.is_empty() {
                String::new()
            } else {
                format!(" on {}", differing.join(", "))
            }
        ))
    }
}

/// Output format of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Md,
    Json,
    Csv,
}

/// A comparison, resolved and validated: both sides as paths (a `baseline:NAME` already
/// looked up), the criteria, and what to do with the result.
#[derive(Debug)]
pub struct Config {
    pub base: PathBuf,
    pub new: PathBuf,
    pub format: Format,
    pub criteria: Criteria,
    pub ignore: Vec<String>,
    pub chart: Option<PathBuf>,
    pub fail_on_regression: bool,
}

/// Loads both sides and compares them.
pub fn run(cfg: &Config) -> Result<Comparison> {
    let base = load::load_run(&cfg.base).context("loading the baseline")?;
    let new = load::load_run(&cfg.new).context("loading the candidate")?;
    Ok(compare(&base, &new, &cfg.criteria, &cfg.ignore))
}

/// Compares `cand` against `base`. Fields named in `ignore` take no part in matching.
pub fn compare(base: &Run, cand: &Run, criteria: &Criteria, ignore: &[String]) -> Comparison {
    let base_cfg: Vec<_> = base.rows.iter().map(|r| r.config.clone()).collect();
    let cand_cfg: Vec<_> = cand.rows.iter().map(|r| r.config.clone()).collect();
    let m = matching::match_rows(&base_cfg, &cand_cfg, ignore);
    let fields: Vec<String> = matching::varying_fields(base_cfg.iter().chain(&cand_cfg))
        .into_iter()
        .filter(|f| !ignore.contains(f))
        .collect();

    let mut lines = Vec::new();
    for &(i, j) in &m.pairs {
        let (b, c) = (&base.rows[i], &cand.rows[j]);
        lines.push(line(b, c, &fields, criteria));
    }
    let mut unmatched = Vec::new();
    for (side, run, idx) in [
        ("baseline", base, &m.base_only),
        ("candidate", cand, &m.cand_only),
    ] {
        for &i in idx {
            let r = &run.rows[i];
            unmatched.push(Unmatched {
                side,
                config: r.config.clone(),
                label: matching::label(&[&r.config], &fields, &fallback_label(r)),
                test: r.row.test.clone(),
                summary: SideSummary::of(&r.row),
            });
        }
    }
    let mut counts = BTreeMap::new();
    for l in &lines {
        *counts.entry(l.verdict.as_str().to_string()).or_insert(0) += 1;
    }
    Comparison {
        baseline: base.path.display().to_string(),
        candidate: cand.path.display().to_string(),
        threshold: criteria.threshold,
        alpha: criteria.alpha,
        level: criteria.level,
        lines,
        unmatched,
        counts,
    }
}

fn fallback_label(r: &LoadedRow) -> String {
    r.config
        .get("model")
        .or_else(|| r.config.get("model_type"))
        .cloned()
        .unwrap_or_else(|| "-".to_string())
}

fn line(b: &LoadedRow, c: &LoadedRow, fields: &[String], criteria: &Criteria) -> Line {
    let mut config = b.config.clone();
    config.extend(c.config.clone());
    let label = matching::label(&[&c.config, &b.config], fields, &fallback_label(c));
    let (bo, co) = (b.row.status == Status::Ok, c.row.status == Status::Ok);
    let ts_diff =
        (bo && co && b.row.avg_ts > 0.0).then(|| (c.row.avg_ts / b.row.avg_ts - 1.0) * 100.0);
    let mut out = Line {
        config,
        label,
        test: c.row.test.clone(),
        baseline: SideSummary::of(&b.row),
        candidate: SideSummary::of(&c.row),
        diff_pct: ts_diff,
        p_value: None,
        ci_low_pct: None,
        ci_high_pct: None,
        verdict: Verdict::Noisy,
        reason: String::new(),
    };
    match (bo, co) {
        (true, true) => {
            let ev = verdict::decide(&b.row.samples_ts, &c.row.samples_ts, criteria);
            // Rows without raw samples still show the change of their means.
            out.diff_pct = ev.diff.map(|d| d * 100.0).or(ts_diff);
            out.p_value = ev.p_value;
            out.ci_low_pct = ev.ci.map(|(lo, _)| (lo - 1.0) * 100.0);
            out.ci_high_pct = ev.ci.map(|(_, hi)| (hi - 1.0) * 100.0);
            out.verdict = ev.verdict;
            out.reason = ev.reason;
        }
        (true, false) => {
            out.verdict = Verdict::Failed;
            out.reason = format!("candidate {}", c.row.ts_display());
        }
        (false, true) => {
            out.verdict = Verdict::Fixed;
            out.reason = format!("baseline {}", b.row.ts_display());
        }
        (false, false) => {
            out.verdict = Verdict::Broken;
            out.reason = "neither side ok".to_string();
        }
    }
    out
}
