//! `tessera history add|show` and `tessera baseline set|show`: import runs into the
//! SQLite history store, list each configuration's series with its change points (and
//! draw it), and name baselines.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use serde::Serialize;

use crate::chart::{self, LegendCorner, LineChart, Marker, Series};
use crate::cmd::compare::{parse_threshold, side_name};
use crate::compare::load::load_run;
use crate::compare::matching::{display_name, varying_fields};
use crate::history::{ChangePoint, CpParams, History, Point, change_points, mark_new};
use crate::report::slug;

/// Where the history lives unless `--db` says otherwise (ignored by git).
pub const DEFAULT_DB: &str = "results/history.sqlite";

#[derive(clap::Args, Debug)]
pub struct Args {
    /// History database file.
    #[arg(long = "db", default_value = DEFAULT_DB, global = true)]
    pub db: PathBuf,
    #[command(subcommand)]
    pub cmd: HistoryCmd,
}

#[derive(clap::Subcommand, Debug)]
pub enum HistoryCmd {
    /// Import a run (directory with results.jsonl, or a results file).
    Add {
        run: PathBuf,
        /// Name of the run in the history; default: the directory or file name.
        #[arg(long = "name")]
        name: Option<String>,
    },
    /// Every series (one per configuration) with its change points.
    Show(ShowArgs),
}

#[derive(clap::Args, Debug)]
pub struct ShowArgs {
    /// Only series of this test (e.g. pp512).
    #[arg(long = "test")]
    pub test: Option<String>,
    /// Only series whose key contains every FIELD=VALUE given (comma list).
    #[arg(long = "match")]
    pub filter: Vec<String>,
    /// Smallest step that counts as a change, in percent.
    #[arg(long = "threshold", default_value = "2")]
    pub threshold: String,
    /// Draw each series (.png or .svg); several series get "-<series>" before the extension.
    #[arg(long = "chart")]
    pub chart: Option<PathBuf>,
    /// Output: md or json.
    #[arg(short = 'o', long = "output", default_value = "md")]
    pub output: String,
    /// Exit 1 when a series' most recent change point is a slowdown.
    #[arg(long = "fail-on-regression")]
    pub fail_on_regression: bool,
}

#[derive(clap::Args, Debug)]
pub struct BaselineArgs {
    /// History database file.
    #[arg(long = "db", default_value = DEFAULT_DB, global = true)]
    pub db: PathBuf,
    #[command(subcommand)]
    pub cmd: BaselineCmd,
}

#[derive(clap::Subcommand, Debug)]
pub enum BaselineCmd {
    /// Name a run as a baseline, importing it into the history first.
    Set { name: String, run: PathBuf },
    /// List baselines (name, run, path).
    Show,
}

/// One series' report.
#[derive(Debug, Clone, Serialize)]
pub struct SeriesReport {
    pub key: String,
    pub label: String,
    pub points: Vec<Point>,
    pub change_points: Vec<ChangePoint>,
}

pub fn run_cli(a: &Args) -> Result<bool> {
    let mut h = History::open(&a.db)?;
    match &a.cmd {
        HistoryCmd::Add { run, name } => {
            let loaded = load_run(run)?;
            let name = name.clone().unwrap_or_else(|| side_name(run));
            h.import(&loaded, &name)?;
            println!(
                "imported {} rows as run '{name}' into {}",
                loaded.rows.len(),
                a.db.display()
            );
            Ok(true)
        }
        HistoryCmd::Show(s) => show(&h, s),
    }
}

pub fn baseline_cli(a: &BaselineArgs) -> Result<bool> {
    let mut h = History::open(&a.db)?;
    match &a.cmd {
        BaselineCmd::Set { name, run } => {
            let loaded = load_run(run)?;
            let run_name = side_name(run);
            h.import(&loaded, &run_name)?;
            h.set_baseline(name, &run_name)?;
            println!("baseline '{name}' = run '{run_name}' ({})", run.display());
        }
        BaselineCmd::Show => {
            println!("| baseline | run | path |\n| --- | --- | --- |");
            for (name, run, path) in h.baselines()? {
                println!("| {name} | {run} | {path} |");
            }
        }
    }
    Ok(true)
}

/// Builds the series reports selected by `s`.
pub fn series_reports(h: &History, s: &ShowArgs) -> Result<Vec<SeriesReport>> {
    let mut wanted = Vec::new();
    for item in s
        .filter
        .iter()
        .flat_map(|f| f.split(','))
        .filter(|i| !i.trim().is_empty())
    {
        let Some((k, v)) = item.split_once('=') else {
            bail!("bad --match '{item}': expected FIELD=VALUE, e.g. isa=avx512");
        };
        wanted.push((k.trim().to_string(), v.trim().to_string()));
    }
    let params = CpParams {
        threshold: parse_threshold(&s.threshold)?,
        ..CpParams::default()
    };
    let all = h.series()?;
    let selected: Vec<_> = all
        .iter()
        .filter(|(_, c)| s.test.as_ref().is_none_or(|t| c.get("test") == Some(t)))
        .filter(|(_, c)| wanted.iter().all(|(k, v)| c.get(k) == Some(v)))
        .collect();
    let fields = varying_fields(selected.iter().map(|(_, c)| *c));
    let mut out = Vec::new();
    for (key, config) in selected {
        let points: Vec<Point> = h.points(key)?;
        let ok: Vec<&Point> = points.iter().filter(|p| p.status == "ok").collect();
        let values: Vec<f64> = ok.iter().map(|p| p.avg_ts).collect();
        let mut cps = change_points(&values, &params);
        if points.last().is_some_and(|p| p.status == "ok") {
            mark_new(&values, &mut cps, &params);
        }
        let mut label = config.get("test").cloned().unwrap_or_default();
        for f in &fields {
            if let Some(v) = config.get(f) {
                label.push_str(&format!(" {}={v}", display_name(f)));
            }
        }
        // Change-point indices refer to the ok points; map them to all points.
        let ok_index: Vec<usize> = points
            .iter()
            .enumerate()
            .filter(|(_, p)| p.status == "ok")
            .map(|(i, _)| i)
            .collect();
        let cps = cps
            .into_iter()
            .map(|mut c| {
                c.index = ok_index.get(c.index).copied().unwrap_or(c.index);
                c
            })
            .collect();
        out.push(SeriesReport {
            key: key.clone(),
            label,
            points,
            change_points: cps,
        });
    }
    Ok(out)
}

fn show(h: &History, s: &ShowArgs) -> Result<bool> {
    let reports = series_reports(h, s)?;
    if let Some(path) = &s.chart {
        chart::ImageFormat::from_path(path)?;
        for r in &reports {
            let file = if reports.len() == 1 {
                path.clone()
            } else {
                suffixed(path, &slug(&r.label))
            };
            chart::save(&history_chart(r), &file)
                .with_context(|| format!("drawing '{}'", file.display()))?;
            eprintln!("chart written to {}", file.display());
        }
    }
    match s.output.trim() {
        "json" => println!("{}", serde_json::to_string_pretty(&reports)?),
        "md" => print!("{}", markdown(&reports)),
        other => bail!("unknown output format '{other}': valid formats are md, json"),
    }
    let bad = reports
        .iter()
        .any(|r| r.change_points.last().is_some_and(|c| c.change < 0.0));
    Ok(!(s.fail_on_regression && bad))
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = path
        .extension()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!("{stem}-{suffix}.{ext}"))
}

/// The markdown listing: one line per series, then its change points.
pub fn markdown(reports: &[SeriesReport]) -> String {
    let mut s = String::from(
        "| series | runs | latest t/s | change points |\n| --- | ---: | ---: | --- |\n",
    );
    for r in reports {
        let latest = r
            .points
            .iter()
            .rev()
            .find(|p| p.status == "ok")
            .map(|p| format!("{:.2}", p.avg_ts))
            .unwrap_or_else(|| "-".into());
        let cps: Vec<String> = r
            .change_points
            .iter()
            .map(|c| {
                let run = r.points.get(c.index).map(|p| p.run.as_str()).unwrap_or("?");
                format!(
                    "{:+.1}% at {run} ({:.2} → {:.2}){}",
                    c.change * 100.0,
                    c.before,
                    c.after,
                    if c.new { " **new**" } else { "" }
                )
            })
            .collect();
        let cps = if cps.is_empty() {
            "none".to_string()
        } else {
            cps.join("; ")
        };
        s.push_str(&format!(
            "| {} | {} | {latest} | {cps} |\n",
            r.label,
            r.points.len()
        ));
    }
    s
}

/// The chart of one series: t/s per run with ±stddev, change points as dashed lines.
pub fn history_chart(r: &SeriesReport) -> LineChart {
    let points = r
        .points
        .iter()
        .enumerate()
        .filter(|(_, p)| p.status == "ok")
        .map(|(i, p)| (i as f64, p.avg_ts, p.stddev_ts))
        .collect();
    LineChart {
        title: format!("{}: history", r.label),
        x_label: "run (oldest to newest)".into(),
        y_label: "throughput (tokens/s)".into(),
        series: vec![Series {
            name: r.label.clone(),
            points,
        }],
        markers: r
            .change_points
            .iter()
            .map(|c| Marker {
                x: c.index as f64 - 0.5,
                label: format!("{:+.1}%", c.change * 100.0),
                good: c.change > 0.0,
            })
            .collect(),
        x_ticks: Vec::new(),
        integer_x: true,
        legend: LegendCorner::LowerLeft,
    }
}
