//! The `tessera explain` command in domain terms: its resolved [`Config`], [`run`] (load the
//! sides, pair and explain them, read the roofline) and the machine check that decides
//! whether roof % can be given at all ([`local_roofline`]).

use std::path::PathBuf;

use anyhow::{Result, bail};

use super::{pair, select};
use crate::probe::roofline::Roofline;

/// `tessera explain`, resolved: the flags parsed and checked (filters, `--ignore`, the
/// chart's format), the sides not yet read.
#[derive(Debug, Clone)]
pub struct Config {
    /// Baseline: a run directory, a results file, or FILE:N.
    pub base: PathBuf,
    /// Candidate in the same forms; `None` splits `base` by the filters.
    pub cand: Option<PathBuf>,
    pub base_filter: Vec<select::Filter>,
    pub cand_filter: Vec<select::Filter>,
    /// Key fields left out of pairing.
    pub ignore: Vec<String>,
    /// Whether to give roof % (reading or measuring this machine's probe).
    pub roof: bool,
    /// Where the caller draws the stacked per-op chart (its format already checked).
    pub chart: Option<PathBuf>,
    /// Where the caller writes a differential flamegraph per test ([`super::flame::diff_file`]).
    pub flamegraph: Option<PathBuf>,
}

/// What `tessera explain` found: the explanation, and the roofline its roof % refer to.
pub struct Outcome {
    pub explanation: pair::Explanation,
    pub roofline: Option<Roofline>,
}

/// Loads the sides (the baseline, then the candidate), pairs and explains them, and reads
/// this machine's roofline unless `cfg.roof` is off. Errors (exit 2): a side that cannot be
/// read, no candidate without both filters, filters that select nothing, nothing paired.
pub fn run(cfg: &Config) -> Result<Outcome> {
    let base = select::load_side(&cfg.base)?;
    let cand = match &cfg.cand {
        Some(c) => select::load_side(c)?,
        None if !cfg.base_filter.is_empty() && !cfg.cand_filter.is_empty() => base.clone(),
        None => bail!(
            "give a candidate: a second run or file, or --base KEY=VALUE and --cand KEY=VALUE to split '{}'",
            cfg.base.display()
        ),
    };
    let mut e = pair::explain(
        &base,
        &cand,
        &cfg.base_filter,
        &cfg.cand_filter,
        &cfg.ignore,
    )?;
    let roofline = if cfg.roof {
        let fps: Vec<&str> = e
            .tests
            .iter()
            .flat_map(|t| [t.base.fingerprint.as_str(), t.cand.fingerprint.as_str()])
            .collect();
        local_roofline(&fps, &mut e.notes)
    } else {
        None
    };
    Ok(Outcome {
        explanation: e,
        roofline,
    })
}

/// This machine's roofline (`probe.json` in the cache directory, measured once when absent),
/// if the rows were measured here: a roof of another machine would say nothing about them.
pub fn local_roofline(rows_fingerprints: &[&str], notes: &mut Vec<String>) -> Option<Roofline> {
    let dir = crate::cache::cache_dir();
    let desc = crate::probe::describe();
    let opts = crate::probe::MeasureOpts::default_for(&desc);
    let probe = match crate::probe::cached(&dir, opts) {
        Ok(p) => p,
        Err(e) => {
            notes.push(format!(
                "no roof %: the probe could not be read or measured ({e:#})"
            ));
            return None;
        }
    };
    if let Some(other) = rows_fingerprints
        .iter()
        .find(|f| !f.is_empty() && **f != probe.fingerprint)
    {
        notes.push(format!(
            "no roof %: the rows were measured on machine {other}, this is {}; run explain there",
            probe.fingerprint
        ));
        return None;
    }
    probe.measured.and_then(|m| m.roofline)
}
