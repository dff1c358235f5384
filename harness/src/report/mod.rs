//! The run report: a run's results as report.md and one self-contained report.html
//! (charts inlined as base64 PNG): a summary, the results table, failures, optionally a
//! comparison with a baseline and the history of each series, thread-scaling lines per
//! ISA, tile heatmaps, and where the time goes. `tessera report` ([`crate::cmd::report`],
//! which turns its `Args` into a [`Config`]) and `tessera nightly` (through
//! [`write_report`] with an [`Extra`]) drive it.
//!
//! The report is one list of [`Block`]s, built once (`blocks.rs`: the text and tables;
//! `charts.rs`: the charts and their files) and rendered twice (`markdown.rs`, `html.rs`),
//! so the two files always say the same.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::compare::load::load_run;
use crate::compare::load::side_name;
use crate::compare::render;
use crate::compare::verdict::Criteria;
use crate::history::SeriesReport;

mod blocks;
mod charts;
mod html;
mod markdown;

use blocks::Block;
pub use charts::slug;
use charts::{heatmaps, scaling_charts};
use html::to_html;
use markdown::to_markdown;

use blocks::{
    comparison_table, failures_table, history_blocks, per_op_blocks, results_table, summary,
};
use charts::save_chart;

/// What to report on, resolved: the baseline is a path (a `baseline:NAME` already looked
/// up) and the threshold a fraction.
#[derive(Debug, Clone)]
pub struct Config {
    /// Run directory (holding results.jsonl) or a results file.
    pub run: PathBuf,
    /// Directory for report.md, report.html and charts/; `None`: the run's directory.
    pub out_dir: Option<PathBuf>,
    /// A baseline run to compare with.
    pub baseline: Option<PathBuf>,
    /// Noise threshold of the comparison, as a fraction (0.02 for 2%).
    pub threshold: f64,
}

/// What `report` wrote.
#[derive(Debug, Clone)]
pub struct Written {
    pub markdown: PathBuf,
    pub html: PathBuf,
    pub charts: Vec<PathBuf>,
    /// Whether a baseline comparison found a regression.
    pub regressed: bool,
}

/// Writes the report `cfg` asks for, with nothing added.
pub fn run(cfg: &Config) -> Result<Written> {
    write_report(
        &cfg.run,
        cfg.out_dir.as_deref(),
        cfg.baseline.as_deref(),
        cfg.threshold,
        &Extra::default(),
    )
}

/// What a caller such as `tessera nightly` adds to a run's report.
#[derive(Debug, Default)]
pub struct Extra<'a> {
    /// A paragraph under the title (nightly's verdict).
    pub verdict: Option<String>,
    /// History series to list, with charts for those that have change points.
    pub history: &'a [SeriesReport],
}

/// Builds the report of `run` (and its comparison with `baseline`) into `out_dir`
/// (default: the run directory, or the file's directory for a results file).
pub fn write_report(
    run_path: &Path,
    out_dir: Option<&Path>,
    baseline: Option<&Path>,
    threshold: f64,
    extra: &Extra,
) -> Result<Written> {
    let run = load_run(run_path)?;
    let out = match out_dir {
        Some(d) => d.to_path_buf(),
        None if run_path.is_dir() => run_path.to_path_buf(),
        None => run
            .file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(".")),
    };
    let charts_dir = out.join("charts");
    fs::create_dir_all(&charts_dir)
        .with_context(|| format!("creating '{}'", charts_dir.display()))?;

    let mut blocks = Vec::new();
    let mut charts = Vec::new();
    let mut regressed = false;
    let name = side_name(run_path);
    blocks.push(Block::Heading(format!("tessera report: {name}")));
    if let Some(v) = &extra.verdict {
        blocks.push(Block::Para(v.clone()));
    }
    blocks.push(Block::Para(summary(&run)));
    blocks.push(Block::Heading("Results".into()));
    blocks.push(results_table(&run));
    if let Some(f) = failures_table(&run) {
        blocks.push(Block::Heading("Failures".into()));
        blocks.push(f);
    }

    if let Some(base_path) = baseline {
        let base = load_run(base_path).context("loading the baseline")?;
        let criteria = Criteria {
            threshold,
            ..Criteria::default()
        };
        let c = crate::compare::compare(&base, &run, &criteria, &[]);
        regressed = c.any_bad();
        blocks.push(Block::Heading(format!(
            "Comparison with {}",
            side_name(base_path)
        )));
        blocks.push(comparison_table(&c));
        blocks.push(Block::Para(render::summary(&c)));
        if !c.unmatched.is_empty() {
            blocks.push(Block::Para(format!(
                "Unmatched rows: {}",
                c.unmatched
                    .iter()
                    .map(|u| format!(
                        "{} {} ({}, only in {})",
                        u.test, u.label, u.summary.cell, u.side
                    ))
                    .collect::<Vec<_>>()
                    .join("; ")
            )));
        }
        if !c.lines.is_empty() {
            let bars = render::bar_chart(&c, &side_name(base_path), &name);
            let file = "charts/compare.png".to_string();
            save_chart(&bars, &out, &file, &mut charts)?;
            blocks.push(Block::Image {
                title: "Baseline vs candidate".into(),
                file,
            });
        }
    }

    if !extra.history.is_empty() {
        history_blocks(extra.history, &out, &mut blocks, &mut charts)?;
    }

    let scaling = scaling_charts(&run);
    if !scaling.is_empty() {
        blocks.push(Block::Heading("Thread scaling".into()));
        for (test, chart) in scaling {
            let file = format!("charts/scaling-{}.png", slug(&test));
            save_chart(&chart, &out, &file, &mut charts)?;
            blocks.push(Block::Image {
                title: format!("{test}: tokens/s vs threads"),
                file,
            });
        }
    }
    let heatmaps = heatmaps(&run)?;
    if !heatmaps.is_empty() {
        blocks.push(Block::Heading("Tile sizes".into()));
        for (key, chart) in heatmaps {
            let file = format!("charts/tiles-{}.png", slug(&key));
            save_chart(&chart, &out, &file, &mut charts)?;
            blocks.push(Block::Image {
                title: format!("{key}: tokens/s over tile M×N"),
                file,
            });
        }
    }

    per_op_blocks(&run, &out, &mut blocks, &mut charts)?;

    let markdown = out.join("report.md");
    fs::write(&markdown, to_markdown(&blocks))
        .with_context(|| format!("writing '{}'", markdown.display()))?;
    let html = out.join("report.html");
    fs::write(&html, to_html(&blocks, &out, &name)?)
        .with_context(|| format!("writing '{}'", html.display()))?;
    Ok(Written {
        markdown,
        html,
        charts,
        regressed,
    })
}
