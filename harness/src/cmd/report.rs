//! `tessera report RUN_DIR`: the edge of [`crate::report`]. Resolves `Args` (the
//! threshold parsed, a `baseline:NAME` looked up in the history database) into a
//! [`report::Config`], writes the report, prints the two files' paths, and maps a
//! regression to the exit status when `--fail-on-regression` asks.

use std::path::PathBuf;

use anyhow::Result;

use crate::cli::{Threshold, parse_threshold};
use crate::compare::load::resolve_side;
use crate::report::{self, Config};

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

/// The report's configuration from the command line.
pub fn config(a: &Args) -> Result<Config> {
    let threshold = parse_threshold(&a.threshold, Threshold::Noise)?;
    let baseline = match &a.baseline {
        Some(b) => Some(resolve_side(b, &a.db)?),
        None => None,
    };
    Ok(Config {
        run: a.run.clone(),
        out_dir: a.out_dir.clone(),
        baseline,
        threshold,
    })
}

/// The command.
pub fn run_cli(a: &Args) -> Result<bool> {
    let w = report::run(&config(a)?)?;
    println!("{}", w.markdown.display());
    println!("{}", w.html.display());
    Ok(!(a.fail_on_regression && w.regressed))
}
