//! What one bisection is given and what it ends with: the validated [`Config`] (the saved
//! [`Spec`] plus what is compiled from it or belongs to this invocation only) and the
//! [`Outcome`]. `cmd::bisect` turns the command line into a `Config`, checking every flag
//! value there; nothing here parses flags.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use regex::Regex;

use super::metric::{Compare, MetricSource};
use super::repo::Repo;
use super::report::BisectResult;
use super::state::{Spec, State};

/// Validated settings of one invocation.
#[derive(Debug)]
pub struct Config {
    pub spec: Spec,
    pub state_dir: PathBuf,
    pub resume: bool,
    pub replay: Option<State>,
    pub max_steps: Option<usize>,
    /// `--budget`, seconds.
    pub budget: Option<f64>,
    /// Compiled `--fault`.
    pub fault: Option<Regex>,
    pub metric: Option<MetricSource>,
    pub compare: Compare,
    pub sanitizer: Option<PathBuf>,
}

impl Config {
    pub fn run_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.spec.timeout_s)
    }

    pub fn build_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.spec.build_timeout_s)
    }
}

/// How a bisection ended.
#[derive(Debug)]
pub enum Outcome {
    /// Found exactly one commit.
    Found(BisectResult),
    /// Skipped commits border the answer: a range.
    Ambiguous(BisectResult),
    /// Stopped by --max-steps or --budget, with the range that is left.
    Stopped(BisectResult),
}

impl Outcome {
    pub fn result(&self) -> &BisectResult {
        match self {
            Outcome::Found(r) | Outcome::Ambiguous(r) | Outcome::Stopped(r) => r,
        }
    }
}

/// Default state dir of a repository: `<git dir>/tessera-bisect`, shared by its worktrees.
pub fn default_state_dir(repo: &Path) -> Result<PathBuf> {
    Ok(Repo::open(repo)?.common_dir().join("tessera-bisect"))
}
