//! Prints a [`Comparison`] as a markdown table (for people and PR comments), JSON (the
//! whole structure, for tools) or CSV (one record per line, unmatched rows included).

use crate::export::md_escape;
use std::fmt::Write as _;

use anyhow::Result;

use super::{Comparison, Line};

/// "+3.21%", or "-" when unknown.
pub fn pct(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:+.2}%"),
        _ => "-".to_string(),
    }
}

/// The markdown report: the table, a summary line, and unmatched rows.
pub fn markdown(c: &Comparison) -> String {
    let mut s = String::new();
    s.push_str("| config | test | baseline t/s | candidate t/s | diff % | verdict |\n");
    s.push_str("| --- | --- | ---: | ---: | ---: | --- |\n");
    for l in &c.lines {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} |",
            md_escape(&l.label),
            md_escape(&l.test),
            md_escape(&l.baseline.cell),
            md_escape(&l.candidate.cell),
            pct(l.diff_pct),
            l.verdict
        );
    }
    s.push('\n');
    s.push_str(&summary(c));
    s.push('\n');
    if !c.unmatched.is_empty() {
        s.push_str("\nUnmatched rows (no row with the same configuration on the other side):\n\n");
        s.push_str("| only in | config | test | t/s |\n| --- | --- | --- | ---: |\n");
        for u in &c.unmatched {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} |",
                u.side,
                md_escape(&u.label),
                md_escape(&u.test),
                md_escape(&u.summary.cell)
            );
        }
    }
    s
}

/// "1 regressed, 2 unchanged; threshold ±2.0%, Welch p < 0.05, 95% bootstrap CI".
pub fn summary(c: &Comparison) -> String {
    let order = [
        "regressed",
        "failed",
        "improved",
        "fixed",
        "unchanged",
        "noisy",
        "broken",
    ];
    let mut parts: Vec<String> = order
        .iter()
        .filter_map(|k| c.counts.get(*k).map(|n| format!("{n} {k}")))
        .collect();
    if !c.unmatched.is_empty() {
        parts.push(format!("{} unmatched", c.unmatched.len()));
    }
    if c.lines.is_empty() {
        parts.insert(0, "no matched rows".to_string());
    }
    format!(
        "{}; threshold ±{:.1}%, Welch p < {}, {:.0}% bootstrap CI of the ratio",
        parts.join(", "),
        c.threshold * 100.0,
        c.alpha,
        c.level * 100.0
    )
}

/// The whole comparison as pretty JSON.
pub fn json(c: &Comparison) -> Result<String> {
    Ok(serde_json::to_string_pretty(c)? + "\n")
}

const CSV_HEADER: &[&str] = &[
    "config",
    "test",
    "baseline_ts",
    "baseline_stddev_ts",
    "baseline_n",
    "baseline_status",
    "candidate_ts",
    "candidate_stddev_ts",
    "candidate_n",
    "candidate_status",
    "diff_pct",
    "ci_low_pct",
    "ci_high_pct",
    "p_value",
    "verdict",
    "reason",
];

fn num(v: Option<f64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn csv_line(l: &Line) -> Vec<String> {
    vec![
        l.label.clone(),
        l.test.clone(),
        num(l.baseline.avg_ts),
        num(l.baseline.stddev_ts),
        l.baseline.n.to_string(),
        l.baseline.status.to_string(),
        num(l.candidate.avg_ts),
        num(l.candidate.stddev_ts),
        l.candidate.n.to_string(),
        l.candidate.status.to_string(),
        num(l.diff_pct),
        num(l.ci_low_pct),
        num(l.ci_high_pct),
        num(l.p_value),
        l.verdict.to_string(),
        l.reason.clone(),
    ]
}

/// One CSV record per matched line, then one per unmatched row (verdict
/// "unmatched", the missing side's cells empty).
pub fn csv(c: &Comparison) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_HEADER)?;
    for l in &c.lines {
        w.write_record(csv_line(l))?;
    }
    for u in &c.unmatched {
        let mut rec = vec![String::new(); CSV_HEADER.len()];
        rec[0] = u.label.clone();
        rec[1] = u.test.clone();
        let col = if u.side == "baseline" { 2 } else { 6 };
        rec[col] = num(u.summary.avg_ts);
        rec[col + 1] = num(u.summary.stddev_ts);
        rec[col + 2] = u.summary.n.to_string();
        rec[col + 3] = u.summary.status.to_string();
        rec[14] = "unmatched".to_string();
        rec[15] = format!("only in {}", u.side);
        w.write_record(rec)?;
    }
    let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(String::from_utf8(bytes)?)
}

/// Most groups a comparison chart shows; beyond that the largest changes are kept.
pub const CHART_MAX_GROUPS: usize = 40;

/// The bar chart of a comparison: one group per matched line (the largest changes
/// first when there are more than [`CHART_MAX_GROUPS`]), diff labels in the verdict's
/// colour.
pub fn bar_chart(c: &Comparison, base_name: &str, cand_name: &str) -> crate::chart::BarChart {
    use super::verdict::Verdict;
    use crate::chart::{BarChart, BarGroup, Tone};
    let mut idx: Vec<usize> = (0..c.lines.len()).collect();
    let mut title = "Throughput: baseline vs candidate".to_string();
    if idx.len() > CHART_MAX_GROUPS {
        let key = |i: &usize| {
            let l = &c.lines[*i];
            (
                !l.verdict.is_bad(),
                -l.diff_pct.map(f64::abs).unwrap_or(0.0),
            )
        };
        idx.sort_by(|a, b| {
            key(a)
                .partial_cmp(&key(b))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        idx.truncate(CHART_MAX_GROUPS);
        idx.sort_unstable();
        title = format!(
            "{title} ({CHART_MAX_GROUPS} largest changes of {})",
            c.lines.len()
        );
    }
    let groups = idx
        .into_iter()
        .map(|i| {
            let l = &c.lines[i];
            let side = |s: &super::SideSummary| s.avg_ts.map(|m| (m, s.stddev_ts.unwrap_or(0.0)));
            let tone = match l.verdict {
                Verdict::Improved | Verdict::Fixed => Tone::Good,
                Verdict::Regressed | Verdict::Failed => Tone::Bad,
                _ => Tone::Neutral,
            };
            let note = match (l.verdict, l.diff_pct) {
                (Verdict::Failed | Verdict::Fixed | Verdict::Broken, _) => l.verdict.to_string(),
                (v, Some(d)) => format!("{d:+.1}% {v}"),
                (v, None) => v.to_string(),
            };
            BarGroup {
                label: l.test.clone(),
                sublabel: l.label.clone(),
                base: side(&l.baseline),
                cand: side(&l.candidate),
                note,
                tone,
            }
        })
        .collect();
    BarChart {
        title,
        y_label: "throughput (tokens/s)".to_string(),
        base_name: format!("baseline: {base_name}"),
        cand_name: format!("candidate: {cand_name}"),
        groups,
    }
}
