//! One night of the cron job (`tessera nightly --plan PLAN.toml [--baseline NAME|previous]`).
//!
//! 1. The baseline is resolved first, so a misspelt name fails in a second (exit 2) rather
//!    than after an hour of sweeping: `previous` is the newest run of this machine (same
//!    fingerprint) already in the history; a NAME is one recorded by `tessera baseline set`.
//! 2. The plan is swept into `OUT_DIR/RUN_ID` (each point in its own child process, as
//!    `tessera sweep`).
//! 3. Every row goes into the SQLite history under the run id, keyed by machine fingerprint,
//!    the build's commit and the time.
//! 4. The run is compared with the baseline (Welch + bootstrap CI + noise threshold, as
//!    `tessera compare`) and each of its series is searched for change points; a change
//!    point is *new* when the series without tonight's point does not show it.
//! 5. report.md and report.html are written into the run directory, and `nightly.json`
//!    beside them holds the verdict for scripts.
//!
//! A step in the history needs `min_segment` (3) nights on each side before it is
//! significant, so the history flags a slowdown three nights after it landed; the baseline
//! comparison, from raw samples, flags it the same night.
//!
//! The flags are read in `cmd::nightly`, which builds the [`Config`] (the sweep's own
//! config included) and calls [`run`]; its [`Outcome`] decides the exit status.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use serde::Serialize;

use crate::compare::load::{load_run, resolve_side};
use crate::compare::render;
use crate::compare::verdict::Criteria;
use crate::history::{History, Selection, SeriesReport, series_key, series_reports, stored_config};
use crate::report::{Extra, write_report};

/// A night, its flags read and checked.
#[derive(Debug)]
pub struct Config {
    /// Tonight's sweep (run directory, run id, plan).
    pub sweep: crate::sweep::Config,
    /// What tonight is compared with.
    pub baseline: Baseline,
    /// The history database.
    pub db: PathBuf,
    /// Noise threshold of the comparison and the change points, a fraction.
    pub threshold: f64,
}

/// What tonight is compared with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Baseline {
    /// Nothing.
    None,
    /// This machine's newest run in the history.
    Previous,
    /// A baseline recorded by `tessera baseline set NAME RUN`.
    Named(String),
}

/// What the night found; also written as `nightly.json` in the run directory.
#[derive(Debug, Serialize)]
pub struct Outcome {
    pub run: String,
    pub run_dir: PathBuf,
    /// The baseline run's path, when there was one to compare with.
    pub baseline: Option<PathBuf>,
    /// Configurations worse than the baseline (regressed or stopped working).
    pub regressions: Vec<String>,
    /// New slowdown change points in the history: "series: -12.0% at RUN".
    pub history_slowdowns: Vec<String>,
    /// Points of tonight's sweep that did not finish ok.
    pub failed_points: usize,
    pub report: PathBuf,
    pub ok: bool,
}

/// Runs the night: resolves the baseline, sweeps, imports, compares, searches the history
/// and writes the reports; the sweep's progress, the comparison and the verdict go to `out`.
pub fn run(cfg: &Config, out: &mut dyn Write) -> Result<Outcome> {
    let sweep = &cfg.sweep;
    let fingerprint = crate::probe::describe().fingerprint;

    // Resolve the baseline before the sweep: bad input fails fast and changes nothing.
    let mut history = History::open(&cfg.db)?;
    let baseline: Option<PathBuf> = match &cfg.baseline {
        Baseline::None => None,
        Baseline::Previous => match history.latest_run(&fingerprint, &sweep.run_id)? {
            Some((_, path)) => Some(PathBuf::from(path)),
            None => {
                eprintln!(
                    "tessera nightly: no earlier run of this machine in '{}'; tonight has nothing to compare with",
                    cfg.db.display()
                );
                None
            }
        },
        Baseline::Named(name) => Some(resolve_side(
            Path::new(&format!("baseline:{name}")),
            &cfg.db,
        )?),
    };
    if let Some(b) = &baseline
        && !b.exists()
    {
        bail!(
            "the baseline's results '{}' are gone: restore them or name another baseline (`tessera baseline show`)",
            b.display()
        );
    }

    // Its own verdict (every point ok) is `failed_points == 0` below.
    crate::sweep::run(sweep, out)?;

    let run = load_run(&sweep.dir)?;
    history.import(&run, &sweep.run_id)?;
    let failed_points = run
        .rows
        .iter()
        .filter(|r| r.row.status != crate::results::Status::Ok)
        .count();

    let mut regressions = Vec::new();
    if let Some(b) = &baseline {
        let base = load_run(b).context("loading the baseline")?;
        let criteria = Criteria {
            threshold: cfg.threshold,
            ..Criteria::default()
        };
        let c = crate::compare::compare(&base, &run, &criteria, &[]);
        writeln!(
            out,
            "\ncompared with {}:\n{}",
            b.display(),
            render::markdown(&c)
        )?;
        regressions = c
            .lines
            .iter()
            .filter(|l| l.verdict.is_bad())
            .map(|l| {
                format!(
                    "{} {}: {} ({})",
                    l.test,
                    l.label,
                    l.verdict,
                    render::pct(l.diff_pct)
                )
            })
            .collect();
    }

    let series = tonight_series(&history, &run, &sweep.run_id, cfg.threshold)?;
    let history_slowdowns: Vec<String> = series
        .iter()
        .flat_map(|s| {
            s.change_points
                .iter()
                .filter(|c| c.new && c.change < 0.0)
                .map(move |c| {
                    let at = s.points.get(c.index).map_or("?", |p| p.run.as_str());
                    format!("{}: {:+.1}% at {at}", s.label, c.change * 100.0)
                })
        })
        .collect();

    let ok = regressions.is_empty() && history_slowdowns.is_empty() && failed_points == 0;
    let verdict = verdict_text(
        ok,
        baseline.as_deref(),
        &regressions,
        &history_slowdowns,
        failed_points,
    );
    let written = write_report(
        &sweep.dir,
        None,
        baseline.as_deref(),
        cfg.threshold,
        &Extra {
            verdict: Some(verdict.clone()),
            history: &series,
        },
    )?;
    let outcome = Outcome {
        run: sweep.run_id.clone(),
        run_dir: sweep.dir.clone(),
        baseline,
        regressions,
        history_slowdowns,
        failed_points,
        report: written.html.clone(),
        ok,
    };
    let json_path = sweep.dir.join("nightly.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&outcome)?)
        .with_context(|| format!("writing '{}'", json_path.display()))?;
    writeln!(out, "\n{verdict}")?;
    writeln!(out, "report: {}", written.html.display())?;
    Ok(outcome)
}

/// The history series tonight's rows belong to, with their change points.
fn tonight_series(
    h: &History,
    run: &crate::compare::load::Run,
    run_name: &str,
    threshold: f64,
) -> Result<Vec<SeriesReport>> {
    let keys: BTreeSet<String> = run
        .rows
        .iter()
        .map(|r| series_key(&stored_config(r)))
        .collect();
    let all = series_reports(
        h,
        &Selection {
            test: None,
            fields: Vec::new(),
            threshold,
        },
    )?;
    Ok(all
        .into_iter()
        .filter(|s| keys.contains(&s.key))
        .map(|mut s| {
            // Only a step that tonight's point reveals is new tonight.
            if s.points.last().is_none_or(|p| p.run != run_name) {
                s.change_points.iter_mut().for_each(|c| c.new = false);
            }
            s
        })
        .collect())
}

fn verdict_text(
    ok: bool,
    baseline: Option<&Path>,
    regressions: &[String],
    slowdowns: &[String],
    failed: usize,
) -> String {
    let mut parts = Vec::new();
    match baseline {
        Some(b) if regressions.is_empty() => {
            parts.push(format!("nothing regressed against {}", b.display()))
        }
        Some(b) => parts.push(format!(
            "{} regressed against {}: {}",
            regressions.len(),
            b.display(),
            regressions.join("; ")
        )),
        None => parts.push("no baseline to compare with".into()),
    }
    if slowdowns.is_empty() {
        parts.push("no new slowdown in the history".into());
    } else {
        parts.push(format!(
            "{} new slowdown(s) in the history: {}",
            slowdowns.len(),
            slowdowns.join("; ")
        ));
    }
    if failed > 0 {
        parts.push(format!("{failed} point(s) did not finish"));
    }
    let word = if ok {
        "OK"
    } else if regressions.is_empty() && slowdowns.is_empty() {
        "FAILED"
    } else {
        "REGRESSION"
    };
    format!("nightly: {word} — {}.", parts.join("; "))
}
