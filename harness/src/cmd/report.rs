//! `tessera report RUN_DIR`: turns a run's results into report.md and one
//! self-contained report.html (charts inlined as base64 PNG): a summary, the results
//! table, failures, thread-scaling lines per ISA, tile heatmaps, and optionally a
//! comparison with a baseline run.

use crate::export::md_escape;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::chart::{self, Heatmap, LineChart, Series};
use crate::cli::{Threshold, parse_threshold};
use crate::compare::load::side_name;
use crate::compare::load::{LoadedRow, Run, load_run};
use crate::compare::matching::{label, varying_fields};
use crate::compare::render;
use crate::compare::verdict::Criteria;
use crate::history::{SeriesReport, history_chart};
use crate::results::Status;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Run directory (holding results.jsonl) or a results file.
    pub run: PathBuf,
    /// Directory for report.md, report.html and charts/; default: the run directory.
    #[arg(short = 'o', long = "out-dir")]
    pub out_dir: Option<PathBuf>,
    /// Also compare with this baseline (run directory, results file, or baseline:NAME).
    #[arg(long = "baseline")]
    pub baseline: Option<PathBuf>,
    /// History database that `--baseline baseline:NAME` is looked up in.
    #[arg(long = "db", default_value = crate::history::DEFAULT_DB)]
    pub db: PathBuf,
    /// Noise threshold in percent for the comparison.
    #[arg(long = "threshold", default_value = "2")]
    pub threshold: String,
    /// Exit with status 1 when the comparison with --baseline finds a regression.
    #[arg(long = "fail-on-regression")]
    pub fail_on_regression: bool,
}

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

/// What `report` wrote.
#[derive(Debug, Clone)]
pub struct Written {
    pub markdown: PathBuf,
    pub html: PathBuf,
    pub charts: Vec<PathBuf>,
    /// Whether a baseline comparison found a regression.
    pub regressed: bool,
}

/// The command.
pub fn run_cli(a: &Args) -> Result<bool> {
    let threshold = parse_threshold(&a.threshold, Threshold::Noise)?;
    let baseline = match &a.baseline {
        Some(b) => Some(crate::compare::load::resolve_side(b, &a.db)?),
        None => None,
    };
    let w = write_report(
        &a.run,
        a.out_dir.as_deref(),
        baseline.as_deref(),
        threshold,
        &Extra::default(),
    )?;
    println!("{}", w.markdown.display());
    println!("{}", w.html.display());
    Ok(!(a.fail_on_regression && w.regressed))
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

/// "Where the time goes": per test, the fastest and the slowest configuration's time per
/// token by op (or by symbol, for profiled engines), the difference explained, a stacked
/// chart of both, and each one's kernel table. Rows without per-op times or profiles
/// (llama-bench without `--profile`, older runs) add nothing.
fn per_op_blocks(
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

fn save_chart(
    chart: &impl chart::Chart,
    out: &Path,
    file: &str,
    all: &mut Vec<PathBuf>,
) -> Result<()> {
    let path = out.join(file);
    chart::save(chart, &path).with_context(|| format!("drawing '{}'", path.display()))?;
    all.push(path);
    Ok(())
}

/// The history section: one table row per series (runs, latest t/s, change points, new
/// ones marked), and a chart for each series with a change point.
fn history_blocks(
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

/// A file-name-safe form of a label: "pp512 @ d512" → "pp512-d512".
pub fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

fn distinct<'a>(rows: &'a [LoadedRow], f: impl Fn(&'a LoadedRow) -> &'a str) -> Vec<&'a str> {
    let set: BTreeSet<&str> = rows.iter().map(f).filter(|s| !s.is_empty()).collect();
    set.into_iter().collect()
}

fn summary(run: &Run) -> String {
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

fn results_table(run: &Run) -> Block {
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

fn failures_table(run: &Run) -> Option<Block> {
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

fn comparison_table(c: &crate::compare::Comparison) -> Block {
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

/// One chart per test whose ok rows span at least two thread counts: a line per ISA
/// (or engine when no ISA is recorded), each point the best row at that thread count
/// (other axes such as tile vary within it).
pub fn scaling_charts(run: &Run) -> Vec<(String, LineChart)> {
    let mut by_test: BTreeMap<&str, Vec<&LoadedRow>> = BTreeMap::new();
    for r in run.rows.iter().filter(|r| r.row.status == Status::Ok) {
        by_test.entry(r.row.test.as_str()).or_default().push(r);
    }
    let mut out = Vec::new();
    for (test, rows) in by_test {
        let threads: BTreeSet<u32> = rows.iter().map(|r| r.row.n_threads).collect();
        if threads.len() < 2 {
            continue;
        }
        let mut best: BTreeMap<String, BTreeMap<u32, (f64, f64)>> = BTreeMap::new();
        for r in rows {
            let name = series_name(r);
            let e = best
                .entry(name)
                .or_default()
                .entry(r.row.n_threads)
                .or_insert((f64::MIN, 0.0));
            if r.row.avg_ts > e.0 {
                *e = (r.row.avg_ts, r.row.stddev_ts);
            }
        }
        let series = best
            .into_iter()
            .map(|(name, pts)| Series {
                name,
                points: pts
                    .into_iter()
                    .map(|(t, (m, s))| (t as f64, m, s))
                    .collect(),
            })
            .collect();
        out.push((
            test.to_string(),
            LineChart {
                title: format!("{test}: throughput vs threads"),
                x_label: "threads".into(),
                y_label: "throughput (tokens/s)".into(),
                series,
                markers: Vec::new(),
                x_ticks: Vec::new(),
                integer_x: true,
                legend: chart::LegendCorner::UpperLeft,
            },
        ));
    }
    out
}

fn series_name(r: &LoadedRow) -> String {
    if !r.row.isa.is_empty() {
        r.row.isa.clone()
    } else if !r.row.engine.is_empty() {
        r.row.engine.clone()
    } else {
        "default".into()
    }
}

/// One heatmap per configuration-except-the-tile (test, ISA, threads, ...) whose ok
/// rows cover at least two tile shapes, so that every cell differs only in its tile.
pub fn heatmaps(run: &Run) -> Result<Vec<(String, Heatmap)>> {
    let fields: Vec<String> = varying_fields(run.rows.iter().map(|r| &r.config))
        .into_iter()
        .filter(|f| f != "tile")
        .collect();
    let mut groups: BTreeMap<(String, String), Vec<(String, f64)>> = BTreeMap::new();
    for r in run
        .rows
        .iter()
        .filter(|r| r.row.status == Status::Ok && !r.row.tile.is_empty())
    {
        let mut rest = r.config.clone();
        rest.remove("tile");
        let name = label(&[&rest], &fields, &series_name(r));
        groups
            .entry((r.row.test.clone(), name))
            .or_default()
            .push((r.row.tile.clone(), r.row.avg_ts));
    }
    let mut out = Vec::new();
    for ((test, name), pts) in groups {
        let tiles: BTreeSet<&str> = pts.iter().map(|p| p.0.as_str()).collect();
        if tiles.len() < 2 {
            continue;
        }
        let key = format!("{test} {name}");
        let h = Heatmap::from_tiles(
            &format!("{test} by tile: {name}"),
            "throughput (tokens/s)",
            &pts,
        )
        .with_context(|| format!("tiles of {key}"))?;
        out.push((key, h));
    }
    Ok(out)
}

/// The report as markdown; images are linked by their relative path.
pub fn to_markdown(blocks: &[Block]) -> String {
    let mut s = String::new();
    for (i, b) in blocks.iter().enumerate() {
        match b {
            Block::Heading(t) if i == 0 => {
                let _ = writeln!(s, "# {t}\n");
            }
            Block::Heading(t) => {
                let _ = writeln!(s, "## {t}\n");
            }
            Block::Para(t) => {
                let _ = writeln!(s, "{t}\n");
            }
            Block::Table {
                header,
                numeric,
                rows,
            } => {
                let _ = writeln!(
                    s,
                    "| {} |",
                    header
                        .iter()
                        .map(|h| md_escape(h))
                        .collect::<Vec<_>>()
                        .join(" | ")
                );
                let align: Vec<&str> = numeric
                    .iter()
                    .map(|n| if *n { "---:" } else { "---" })
                    .collect();
                let _ = writeln!(s, "| {} |", align.join(" | "));
                for r in rows {
                    let _ = writeln!(
                        s,
                        "| {} |",
                        r.iter()
                            .map(|c| md_escape(c))
                            .collect::<Vec<_>>()
                            .join(" | ")
                    );
                }
                s.push('\n');
            }
            Block::Image { title, file } => {
                let _ = writeln!(s, "![{title}]({file})\n");
            }
        }
    }
    s
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The report as one HTML file with every chart inlined as a base64 PNG, so it can
/// be mailed or archived alone.
pub fn to_html(blocks: &[Block], dir: &Path, title: &str) -> Result<String> {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>\n\
         body {{ font-family: sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}\n\
         table {{ border-collapse: collapse; margin: 1em 0; }}\n\
         th, td {{ border: 1px solid #ccc; padding: 4px 10px; }}\n\
         th {{ background: #f2f2f2; }}\n td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}\n\
         img {{ max-width: 100%; border: 1px solid #ddd; }}\n\
         figure {{ margin: 1.5em 0; }}\n</style>\n</head>\n<body>\n",
        esc(&format!("tessera report: {title}"))
    );
    for (i, b) in blocks.iter().enumerate() {
        match b {
            Block::Heading(t) => {
                let h = if i == 0 { "h1" } else { "h2" };
                let _ = writeln!(s, "<{h}>{}</{h}>", esc(t));
            }
            Block::Para(t) => {
                let _ = writeln!(s, "<p>{}</p>", esc(&t.replace('`', "")));
            }
            Block::Table {
                header,
                numeric,
                rows,
            } => {
                s.push_str("<table>\n<tr>");
                for h in header {
                    let _ = write!(s, "<th>{}</th>", esc(h));
                }
                s.push_str("</tr>\n");
                for r in rows {
                    s.push_str("<tr>");
                    for (j, c) in r.iter().enumerate() {
                        let class = if numeric.get(j).copied().unwrap_or(false) {
                            " class=\"num\""
                        } else {
                            ""
                        };
                        let _ = write!(s, "<td{class}>{}</td>", esc(c));
                    }
                    s.push_str("</tr>\n");
                }
                s.push_str("</table>\n");
            }
            Block::Image { title, file } => {
                let path = dir.join(file);
                let bytes =
                    fs::read(&path).with_context(|| format!("reading '{}'", path.display()))?;
                let _ = writeln!(
                    s,
                    "<figure><img alt=\"{}\" src=\"data:image/png;base64,{}\"><figcaption>{}</figcaption></figure>",
                    esc(title),
                    base64(&bytes),
                    esc(title)
                );
            }
        }
    }
    s.push_str("</body>\n</html>\n");
    Ok(s)
}

/// Standard base64 (RFC 4648, with padding), by the `base64` crate.
pub fn base64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), want);
        }
    }

    #[test]
    fn slugs_are_file_safe() {
        assert_eq!(slug("pp512 @ d512"), "pp512-d512");
        assert_eq!(slug("tg128 amx-emu"), "tg128-amx-emu");
        assert_eq!(slug("a/b\\c"), "a-b-c");
    }
}
