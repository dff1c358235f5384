//! `tessera compare BASE NEW`: the edge of [`crate::compare`]. The flags become a
//! [`compare::Config`] (format, --alpha, --chart's format, both sides resolved, threshold,
//! --ignore, in that order); [`compare::run`] pairs the rows of the two runs on
//! configuration, and this module prints each pair's change and verdict (md, json or csv),
//! draws the chart, and fails when anything regressed.

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};

use crate::chart;
use crate::cli::{Threshold, parse_threshold};
use crate::compare::load::{parse_ignore, resolve_side, side_name};
use crate::compare::verdict::Criteria;
use crate::compare::{self, Config, Format, render};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Baseline: a run directory (holding results.jsonl), a results .jsonl/.csv file,
    /// llama-bench -o json/jsonl/csv output, or baseline:NAME from the history database.
    pub base: PathBuf,
    /// Candidate, in any of the same forms.
    pub new: PathBuf,
    /// Output format: md, json, csv.
    #[arg(short = 'o', long = "output", default_value = "md")]
    pub output: String,
    /// Noise threshold in percent: smaller changes count as unchanged.
    #[arg(long = "threshold", default_value = "2")]
    pub threshold: String,
    /// Significance level of Welch's t-test.
    #[arg(long = "alpha", default_value_t = 0.05)]
    pub alpha: f64,
    /// Key fields to leave out of matching (comma list), e.g. engine,model.
    #[arg(long = "ignore")]
    pub ignore: Vec<String>,
    /// Also draw a bar chart (.png or .svg).
    #[arg(long = "chart")]
    pub chart: Option<PathBuf>,
    /// Exit with status 1 when any configuration regressed or stopped working.
    #[arg(long = "fail-on-regression")]
    pub fail_on_regression: bool,
    /// History database that `baseline:NAME` sides are looked up in.
    #[arg(long = "db", default_value = crate::history::DEFAULT_DB)]
    pub db: PathBuf,
}

// `Config` is the domain's (`compare::Config`); turning flags into it is this module's job.
impl Config {
    pub fn from_args(a: &Args) -> Result<Config> {
        let format = match a.output.trim().to_ascii_lowercase().as_str() {
            "md" => Format::Md,
            "json" => Format::Json,
            "csv" => Format::Csv,
            _ => bail!(
                "unknown output format '{}': valid formats are md, json, csv",
                a.output
            ),
        };
        if !(a.alpha > 0.0 && a.alpha < 1.0) {
            bail!(
                "bad --alpha {}: give a level between 0 and 1, e.g. 0.05",
                a.alpha
            );
        }
        if let Some(path) = &a.chart {
            chart::ImageFormat::from_path(path)?;
        }
        Ok(Config {
            base: resolve_side(&a.base, &a.db)?,
            new: resolve_side(&a.new, &a.db)?,
            format,
            criteria: Criteria {
                threshold: parse_threshold(&a.threshold, Threshold::Noise)?,
                alpha: a.alpha,
                ..Criteria::default()
            },
            ignore: parse_ignore(&a.ignore)?,
            chart: a.chart.clone(),
            fail_on_regression: a.fail_on_regression,
        })
    }
}

/// The command: prints the comparison, draws the chart; false (exit 1) when
/// `--fail-on-regression` is set and something regressed or failed; an error (exit 2)
/// when no row matched.
pub fn run_cli(a: &Args) -> Result<bool> {
    let cfg = Config::from_args(a)?;
    let c = compare::run(&cfg)?;
    let text = match cfg.format {
        Format::Md => render::markdown(&c),
        Format::Json => render::json(&c)?,
        Format::Csv => render::csv(&c)?,
    };
    print!("{text}");
    // Nothing matched: nothing was compared, so neither "no regression" nor a chart
    // would mean anything. The table above still lists every row as unmatched.
    if let Some(why) = c.no_match() {
        bail!("{why}");
    }
    if let Some(path) = &cfg.chart {
        let bars = render::bar_chart(&c, &side_name(&cfg.base), &side_name(&cfg.new));
        chart::save(&bars, path).with_context(|| format!("drawing '{}'", path.display()))?;
        eprintln!("chart written to {}", path.display());
    }
    Ok(!(cfg.fail_on_regression && c.any_bad()))
}
