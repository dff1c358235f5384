//! `tessera nightly --plan PLAN.toml [--baseline NAME|previous]`: the flags, read and
//! checked into a [`nightly::Config`], and [`nightly::run`], which does the night.
//!
//! Exit status: 0 when nothing regressed; 1 when the comparison with the baseline found a
//! regression or a configuration that stopped working, when a new change point is a
//! slowdown, or when a point of tonight's sweep did not finish (fault, timeout, error);
//! 2 for bad input (unknown baseline, bad plan), before anything runs.

use std::path::PathBuf;

use anyhow::{Result, bail};

use crate::cli::{Threshold, parse_threshold};
use crate::history::DEFAULT_DB;
use crate::nightly::{self, Baseline, Config};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The sweep plan (TOML, keys as in plans/example.toml; plans/nightly.toml is a start).
    #[arg(long = "plan")]
    pub plan: PathBuf,
    /// What tonight is compared with: `previous` (this machine's newest run in the
    /// history), a baseline NAME (`tessera baseline set NAME RUN`), or `none`.
    #[arg(long = "baseline", default_value = "previous")]
    pub baseline: String,
    /// History database.
    #[arg(long = "db", default_value = DEFAULT_DB)]
    pub db: PathBuf,
    /// Root of run directories.
    #[arg(long = "out-dir", default_value = "results/runs")]
    pub out_dir: PathBuf,
    /// Name of tonight's run directory and history run (default: UTC time and process id).
    #[arg(long = "run-id")]
    pub run_id: Option<String>,
    /// Noise threshold in percent, for the comparison and the change points.
    #[arg(long = "threshold", default_value = "2")]
    pub threshold: String,
    /// Do not measure bandwidth and peaks (the fingerprint is still recorded).
    #[arg(long = "no-probe")]
    pub no_probe: bool,
}

fn parse_baseline(s: &str) -> Result<Baseline> {
    match s.trim() {
        "" => bail!("--baseline: empty; give previous, none, or a baseline name"),
        "none" => Ok(Baseline::None),
        "previous" => Ok(Baseline::Previous),
        name => Ok(Baseline::Named(name.to_string())),
    }
}

// `Config` is the domain's (`nightly::Config`); turning flags into it is this module's job.
impl Config {
    /// --threshold, then --baseline, then the plan: bad input fails before anything runs.
    pub fn from_args(a: &Args) -> Result<Config> {
        let threshold = parse_threshold(&a.threshold, Threshold::Noise)?;
        let baseline = parse_baseline(&a.baseline)?;
        // Tonight's sweep: the plan as written (no axis overrides), CSV beside the JSONL.
        let sweep = crate::sweep::Config::new_run(
            crate::sweep::plan::Plan::from_toml_file(&a.plan)?,
            crate::sweep::NewRun {
                out_dir: &a.out_dir,
                run_id: a.run_id.clone(),
                shard: None,
                csv: true,
                measure_probe: !a.no_probe,
                dry_run: false,
                argv: std::env::args().collect(),
            },
        )?;
        Ok(Config {
            sweep,
            baseline,
            db: a.db.clone(),
            threshold,
        })
    }
}

pub fn run_cli(a: &Args) -> Result<bool> {
    let cfg = Config::from_args(a)?;
    let stdout = std::io::stdout();
    let outcome = nightly::run(&cfg, &mut stdout.lock())?;
    Ok(outcome.ok)
}
