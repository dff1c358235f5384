//! The report's blocks and the sections made of them: the summary, the results,
//! failures and comparison tables, the history section and "where the time goes".

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::charts::{save_chart, slug};
use crate::compare::load::{LoadedRow, Run};
use crate::compare::matching::{label, varying_fields};
use crate::compare::render;
use crate::history::{SeriesReport, history_chart};
use crate::results::Status;

/// A piece of the report, rendered to markdown and to HTML alike.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    Heading(String),
    Para(String),
    Table {
        header: Vec<String>,
        /// Which columns are numbers (right-aligned).
        numeric: Vec<bool>,
        rows: Vec<Vec<String>>,
    },
    /// A chart file, relative to the output directory.
    Image {
        title: String,
        file: String,
    },
}

/// "Where the time goes": per test, the fastest and the slowest configuration's time per
/// token by op (or by symbol, for profiled engines), the difference explained, a stacked
/// chart of both, and each one's kernel table. Rows without per-op times or profiles
/// (llama-bench without `--profile`, older runs) add nothing.
pub(super) fn per_op_blocks(
    run: &Run,
    out: &Path,
    blocks: &mut Vec<Block>,
    charts: &mut Vec<PathBuf>,
) -> Result<()> {
    use crate::explain::report::{best_and_worst, kernel_lines, test_verdict};
    let tests = best_and_worst(run, &row_labels(run));
    if tests.is_empty() {
        return Ok(());
    }
    blocks.push(Block::Heading("Where the time goes".into()));
    blocks.push(Block::Para(
        "Per test, the fastest and the slowest configuration: time per token by op (the \
         built-in engine's per-op timers) or by symbol (sampled profiles). `tessera explain` \
         gives the same split for any two configurations, with roof %."
            .into(),
    ));
    let ms = |v: f64| format!("{v:.4}");
    for t in &tests {
        let e = &t.explained;
        blocks.push(Block::Para(format!("**{}**", test_verdict(t))));
        let rows = e
            .lines
            .iter()
            .map(|l| {
                let kernel = |p: Option<&crate::explain::Part>| {
                    p.and_then(|p| p.main_kernel())
                        .map_or("-".to_string(), |k| k.0.clone())
                };
                vec![
                    l.name.clone(),
                    ms(l.base_ms),
                    ms(l.cand_ms),
                    format!("{:+.4}", l.delta_ms),
                    if e.gap_ms != 0.0 {
                        format!("{:.1}%", 100.0 * l.share)
                    } else {
                        "-".into()
                    },
                    kernel(l.base.as_ref()),
                    kernel(l.cand.as_ref()),
                ]
            })
            .collect();
        blocks.push(Block::Table {
            header: vec![
                "op".into(),
                format!("fastest ({}) ms/token", t.best_label),
                format!("slowest ({}) ms/token", t.worst_label),
                "Δ ms/token".into(),
                "share of gap".into(),
                "fastest's kernel".into(),
                "slowest's kernel".into(),
            ],
            numeric: vec![false, true, true, true, true, false, false],
            rows,
        });
        for (name, side) in [("fastest", &e.base), ("slowest", &e.cand)] {
            if name == "slowest" && t.best_label == t.worst_label {
                break;
            }
            let label = if name == "fastest" {
                &t.best_label
            } else {
                &t.worst_label
            };
            let rows = kernel_lines(side)
                .into_iter()
                .map(|k| {
                    let rate = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.2}"));
                    vec![
                        k.op,
                        k.kernel,
                        k.isa,
                        k.calls.to_string(),
                        ms(k.ms_per_token),
                        format!("{:.1}%", 100.0 * k.share),
                        rate(k.gflops),
                        rate(k.gbps),
                    ]
                })
                .collect();
            blocks.push(Block::Para(format!(
                "Kernels of the {name} configuration, {label}:"
            )));
            blocks.push(Block::Table {
                header: [
                    "op", "kernel", "isa", "calls", "ms/token", "share", "GFLOP/s", "GB/s",
                ]
                .map(String::from)
                .to_vec(),
                numeric: vec![false, false, false, true, true, true, true, true],
                rows,
            });
        }
    }
    let explained: Vec<_> = tests.iter().map(|t| t.explained.clone()).collect();
    let chart = crate::explain::render::chart(&explained, "fastest", "slowest");
    let file = "charts/ops.png".to_string();
    save_chart(&chart, out, &file, charts)?;
    blocks.push(Block::Image {
        title: "Time per token by op: fastest vs slowest configuration of each test".into(),
        file,
    });
    Ok(())
}

/// The history section: one table row per series (runs, latest t/s, change points, new
/// ones marked), and a chart for each series with a change point.
pub(super) fn history_blocks(
    series: &[SeriesReport],
    out: &Path,
    blocks: &mut Vec<Block>,
    charts: &mut Vec<PathBuf>,
) -> Result<()> {
    blocks.push(Block::Heading("History".into()));
    let rows = series
        .iter()
        .map(|r| {
            let latest = r
                .points
                .iter()
                .rev()
                .find(|p| p.status == "ok")
                .map_or_else(|| "-".to_string(), |p| format!("{:.2}", p.avg_ts));
            let cps: Vec<String> = r
                .change_points
                .iter()
                .map(|c| {
                    let run = r.points.get(c.index).map_or("?", |p| p.run.as_str());
                    format!(
                        "{:+.1}% at {run}{}",
                        c.change * 100.0,
                        if c.new { " (new)" } else { "" }
                    )
                })
                .collect();
            vec![
                r.label.clone(),
                r.points.len().to_string(),
                latest,
                if cps.is_empty() {
                    "none".into()
                } else {
                    cps.join("; ")
                },
            ]
        })
        .collect();
    blocks.push(Block::Table {
        header: ["series", "runs", "latest t/s", "change points"]
            .map(String::from)
            .to_vec(),
        numeric: vec![false, true, true, false],
        rows,
    });
    for r in series.iter().filter(|r| !r.change_points.is_empty()) {
        let file = format!("charts/history-{}.png", slug(&r.label));
        save_chart(&history_chart(r), out, &file, charts)?;
        blocks.push(Block::Image {
            title: format!("{}: history", r.label),
            file,
        });
    }
    Ok(())
}

fn distinct<'a>(rows: &'a [LoadedRow], f: impl Fn(&'a LoadedRow) -> &'a str) -> Vec<&'a str> {
    let set: BTreeSet<&str> = rows.iter().map(f).filter(|s| !s.is_empty()).collect();
    set.into_iter().collect()
}

pub(super) fn summary(run: &Run) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &run.rows {
        *counts.entry(r.row.status.as_str()).or_default() += 1;
    }
    let statuses: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
    let mut s = format!(
        "{} rows from `{}` ({}).",
        run.rows.len(),
        run.file.display(),
        statuses.join(", ")
    );
    let list = |name: &str, vals: Vec<&str>| -> String {
        if vals.is_empty() {
            String::new()
        } else {
            format!(" {name}: {}.", vals.join(", "))
        }
    };
    s += &list("Machine", distinct(&run.rows, |r| &r.row.cpu_info));
    s += &list("Build", distinct(&run.rows, |r| &r.row.build_commit));
    s += &list("Engine", distinct(&run.rows, |r| &r.row.engine));
    s += &list("Model", distinct(&run.rows, |r| &r.row.model_type));
    let times = distinct(&run.rows, |r| &r.row.test_time);
    if let (Some(first), Some(last)) = (times.first(), times.last()) {
        let _ = write!(s, " Measured {first} to {last}.");
    }
    s
}

fn row_labels(run: &Run) -> Vec<String> {
    let fields = varying_fields(run.rows.iter().map(|r| &r.config));
    run.rows
        .iter()
        .map(|r| {
            label(
                &[&r.config],
                &fields,
                r.config.get("model").map(String::as_str).unwrap_or("-"),
            )
        })
        .collect()
}

pub(super) fn results_table(run: &Run) -> Block {
    let labels = row_labels(run);
    let rows = run
        .rows
        .iter()
        .zip(labels)
        .map(|(r, l)| {
            vec![
                l,
                r.row.test.clone(),
                r.row.ts_display(),
                r.row.samples_ts.len().to_string(),
                r.row.status.to_string(),
            ]
        })
        .collect();
    Block::Table {
        header: ["config", "test", "t/s", "samples", "status"]
            .map(String::from)
            .to_vec(),
        numeric: vec![false, false, true, true, false],
        rows,
    }
}

pub(super) fn failures_table(run: &Run) -> Option<Block> {
    let labels = row_labels(run);
    let rows: Vec<Vec<String>> = run
        .rows
        .iter()
        .zip(labels)
        .filter(|(r, _)| r.row.status != Status::Ok)
        .map(|(r, l)| {
            let detail = match (&r.row.fault, &r.row.error) {
                (Some(f), _) if !f.message.is_empty() => format!("{}: {}", f.label(), f.message),
                (Some(f), _) => f.label(),
                (None, Some(e)) => e.clone(),
                (None, None) => String::new(),
            };
            vec![l, r.row.test.clone(), r.row.status.to_string(), detail]
        })
        .collect();
    (!rows.is_empty()).then(|| Block::Table {
        header: ["config", "test", "status", "detail"]
            .map(String::from)
            .to_vec(),
        numeric: vec![false; 4],
        rows,
    })
}

pub(super) fn comparison_table(c: &crate::compare::Comparison) -> Block {
    let rows = c
        .lines
        .iter()
        .map(|l| {
            vec![
                l.label.clone(),
                l.test.clone(),
                l.baseline.cell.clone(),
                l.candidate.cell.clone(),
                render::pct(l.diff_pct),
                l.verdict.to_string(),
            ]
        })
        .collect();
    Block::Table {
        header: [
            "config",
            "test",
            "baseline t/s",
            "candidate t/s",
            "diff %",
            "verdict",
        ]
        .map(String::from)
        .to_vec(),
        numeric: vec![false, false, true, true, true, false],
        rows,
    }
}
