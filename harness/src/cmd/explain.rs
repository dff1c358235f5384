//! `tessera explain BASE CAND`: for each test both sides ran, where the time per token
//! goes on each side (ops of the built-in engine, symbols of a profiled engine), which
//! parts make the difference, and a verdict in words. See [`crate::explain`].
//!
//! Sides: two run directories or result files (rows paired on configuration as
//! `tessera compare` pairs them), one row each (`FILE:N`, the N-th readable row), or one
//! run split by `--base KEY=VALUE... --cand KEY=VALUE...` (e.g. `--base isa=avx2 --cand
//! isa=amx`): the rows each filter selects, paired on every other field.
//!
//! This module is the edge: the flags become an [`explain::Config`] (--base filters,
//! --cand filters, --ignore, the chart's format, in that order), [`explain::run`] loads,
//! pairs and explains, and the markdown, the chart and the flamegraphs are written here.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context as _, Result};

use crate::explain::select::parse_filters;
use crate::explain::{self, Config, render};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Baseline: a run directory, a results .jsonl/.csv file, or FILE:N for its N-th row.
    pub base: PathBuf,
    /// Candidate, in the same forms; leave it out to split BASE with --base/--cand.
    pub cand: Option<PathBuf>,
    /// Rows of the baseline side: KEY=VALUE (repeatable), e.g. isa=avx2.
    #[arg(long = "base", value_name = "KEY=VALUE")]
    pub base_filter: Vec<String>,
    /// Rows of the candidate side: KEY=VALUE (repeatable), e.g. isa=amx.
    #[arg(long = "cand", value_name = "KEY=VALUE")]
    pub cand_filter: Vec<String>,
    /// Key fields to leave out of pairing (comma list), e.g. engine,model.
    #[arg(long = "ignore")]
    pub ignore: Vec<String>,
    /// Also draw stacked per-op bars, both sides per test (.png or .svg).
    #[arg(long = "chart")]
    pub chart: Option<PathBuf>,
    /// Where both sides were run with --profile: write a differential flamegraph per test
    /// into this directory (`<test>-diff.svg`).
    #[arg(long = "flamegraph", value_name = "DIR")]
    pub flamegraph: Option<PathBuf>,
    /// Leave out roof % (no probe is read or measured).
    #[arg(long = "no-roof")]
    pub no_roof: bool,
}

// `Config` is the domain's (`explain::Config`); turning flags into it is this module's job.
impl Config {
    pub fn from_args(a: &Args) -> Result<Config> {
        let base_filter = parse_filters(&a.base_filter, "--base")?;
        let cand_filter = parse_filters(&a.cand_filter, "--cand")?;
        let ignore = crate::compare::load::parse_ignore(&a.ignore)?;
        if let Some(c) = &a.chart {
            crate::chart::ImageFormat::from_path(c)?;
        }
        Ok(Config {
            base: a.base.clone(),
            cand: a.cand.clone(),
            base_filter,
            cand_filter,
            ignore,
            roof: !a.no_roof,
            chart: a.chart.clone(),
            flamegraph: a.flamegraph.clone(),
        })
    }
}

pub fn run_cli(a: &Args) -> Result<bool> {
    let cfg = Config::from_args(a)?;
    let explain::Outcome {
        explanation: e,
        roofline,
    } = explain::run(&cfg)?;
    let md = render::markdown(
        &e.tests,
        &e.base_name,
        &e.cand_name,
        roofline.as_ref(),
        &e.notes,
    );
    let mut out = std::io::stdout().lock();
    out.write_all(md.as_bytes())?;
    out.flush()?;
    if let Some(path) = &cfg.chart {
        let chart = render::chart(&e.tests, &e.base_name, &e.cand_name);
        crate::chart::save(&chart, path)
            .with_context(|| format!("drawing the chart '{}'", path.display()))?;
        eprintln!("tessera: chart written to {}", path.display());
    }
    if let Some(dir) = &cfg.flamegraph {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the flamegraph directory '{}'", dir.display()))?;
        for (t, (bf, cf)) in e.tests.iter().zip(&e.folded) {
            let out = explain::flame::diff_file(dir, &t.test);
            let title = format!("{}: {} vs {}", t.test, t.cand_label, t.base_label);
            match explain::flame::write(bf, cf, &title, &out) {
                Ok(()) => eprintln!(
                    "tessera: differential flamegraph written to {}",
                    out.display()
                ),
                Err(err) => eprintln!("tessera: {}: no differential flamegraph: {err:#}", t.test),
            }
        }
    }
    Ok(true)
}
