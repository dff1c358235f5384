//! `tessera history add|show` and `tessera baseline set|show`: the edge of
//! [`crate::history`]. Imports runs into the SQLite history store, lists each
//! configuration's series with its change points (and draws it), and names baselines; the
//! store, the series reports, their renderings and chart file names are the history's,
//! this module reads the flags (`Selection::from_args`) and prints.
//!
//! `history show` checks in this order, as it always has: the database opens, --match,
//! --threshold, the chart's format (charts are drawn), then --output.

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};

use crate::chart;
use crate::cli::{Threshold, parse_threshold};
use crate::compare::load::{load_run, side_name};
use crate::history::{
    DEFAULT_DB, History, Selection, chart_files, history_chart, markdown, newest_step_is_slowdown,
    series_reports,
};

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

/// `--match` lists: FIELD=VALUE pairs.
fn parse_match(filter: &[String]) -> Result<Vec<(String, String)>> {
    let mut wanted = Vec::new();
    for item in filter
        .iter()
        .flat_map(|f| f.split(','))
        .filter(|i| !i.trim().is_empty())
    {
        let Some((k, v)) = item.split_once('=') else {
            bail!("bad --match '{item}': expected FIELD=VALUE, e.g. isa=avx512");
        };
        wanted.push((k.trim().to_string(), v.trim().to_string()));
    }
    Ok(wanted)
}

impl Selection {
    /// The series `history show` lists. --match is checked before --threshold, and both
    /// after the database is opened, as they were when the history read them itself.
    pub fn from_args(s: &ShowArgs) -> Result<Selection> {
        let fields = parse_match(&s.filter)?;
        Ok(Selection {
            test: s.test.clone(),
            fields,
            threshold: parse_threshold(&s.threshold, Threshold::Noise)?,
        })
    }
}

fn show(h: &History, s: &ShowArgs) -> Result<bool> {
    let reports = series_reports(h, &Selection::from_args(s)?)?;
    if let Some(path) = &s.chart {
        chart::ImageFormat::from_path(path)?;
        for (file, r) in chart_files(path, &reports) {
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
    Ok(!(s.fail_on_regression && newest_step_is_slowdown(&reports)))
}
