//! `tessera merge DIR...`: the edge of [`crate::sweep::merge`]. The flags become a
//! [`merge::Config`] (with the command line for the manifest), the merge runs, and its
//! summary and one line of counts are printed.
//!
//! Exit status: 0 when every point of the plan is in the merged run, 1 when some are
//! missing (shards not given or not finished), 2 for bad input (not one sweep's shards,
//! `--out` one of the inputs, a merge that would lose rows without `--force`).

use std::path::PathBuf;

use anyhow::Result;

use crate::sweep::merge::{self, Config};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Shard run directories (each with manifest.json and results.jsonl).
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Output run directory; default: the shards' common parent directory.
    #[arg(long = "out")]
    pub out: Option<PathBuf>,
    /// Replace an output results.jsonl even when it holds points this merge lacks.
    #[arg(long = "force")]
    pub force: bool,
}

// `Config` is the domain's (`sweep::merge::Config`); turning flags into it is this module's job.
impl Config {
    pub fn from_args(a: &Args) -> Config {
        Config {
            dirs: a.dirs.clone(),
            out: a.out.clone(),
            force: a.force,
            argv: std::env::args().collect(),
        }
    }
}

/// Merges; returns whether every point of the plan is present.
pub fn run_cli(a: &Args) -> Result<bool> {
    let m = merge::run(&Config::from_args(a))?;
    print!("{}", m.summary);
    println!(
        "\nmerged {} shard(s) into {}: {} of {} points{}{}",
        m.shards,
        m.out.display(),
        m.present,
        m.total,
        if m.missing() > 0 {
            format!(", {} missing", m.missing())
        } else {
            String::new()
        },
        if m.duplicates > 0 {
            format!(", {} duplicate rows dropped", m.duplicates)
        } else {
            String::new()
        },
    );
    Ok(m.missing() == 0)
}
