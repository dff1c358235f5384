//! `tessera nightly --plan PLAN.toml [--baseline NAME|previous]`: one night of the cron job.
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
//! Exit status: 0 when nothing regressed; 1 when the comparison with the baseline found a
//! regression or a configuration that stopped working, when a new change point is a
//! slowdown, or when a point of tonight's sweep did not finish (fault, timeout, error);
//! 2 for bad input (unknown baseline, bad plan), before anything runs.
//!
//! A step in the history needs `min_segment` (3) nights on each side before it is
//! significant, so the history flags a slowdown three nights after it landed; the baseline
//! comparison, from raw samples, flags it the same night.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use serde::Serialize;

use crate::cmd::compare::{parse_threshold, resolve_side};
use crate::cmd::history::{DEFAULT_DB, SeriesReport, ShowArgs, series_reports};
use crate::compare::load::load_run;
use crate::compare::render;
use crate::compare::verdict::Criteria;
use crate::history::{History, series_key, stored_config};
use crate::report::{Extra, write_report};

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

enum Baseline {
    None,
    Previous,
    Named(String),
}

fn parse_baseline(s: &str) -> Result<Baseline> {
    match s.trim() {
        "" => bail!("--baseline: empty; give previous, none, or a baseline name"),
        "none" => Ok(Baseline::None),
        "previous" => Ok(Baseline::Previous),
        name => Ok(Baseline::Named(name.to_string())),
    }
}

pub fn run_cli(a: &Args) -> Result<bool> {
    let threshold = parse_threshold(&a.threshold)?;
    let wanted = parse_baseline(&a.baseline)?;
    let sweep_args = crate::cmd::sweep::Args {
        plan: Some(a.plan.clone()),
        out_dir: a.out_dir.clone(),
        run_id: a.run_id.clone(),
        no_probe: a.no_probe,
        csv: true,
        ..Default::default()
    };
    let cfg = crate::sweep::Config::from_args(&sweep_args)?;
    let fingerprint = crate::probe::describe().fingerprint;

    // Resolve the baseline before the sweep: bad input fails fast and changes nothing.
    let mut history = History::open(&a.db)?;
    let baseline: Option<PathBuf> = match &wanted {
        Baseline::None => None,
        Baseline::Previous => match history.latest_run(&fingerprint, &cfg.run_id)? {
            Some((_, path)) => Some(PathBuf::from(path)),
            None => {
                eprintln!(
                    "tessera nightly: no earlier run of this machine in '{}'; tonight has nothing to compare with",
                    a.db.display()
                );
                None
            }
        },
        Baseline::Named(name) => Some(resolve_side(Path::new(&format!("baseline:{name}")), &a.db)?),
    };
    if let Some(b) = &baseline
        && !b.exists()
    {
        bail!(
            "the baseline's results '{}' are gone: restore them or name another baseline (`tessera baseline show`)",
            b.display()
        );
    }

    let stdout = std::io::stdout();
    // Its own verdict (every point ok) is `failed_points == 0` below.
    crate::sweep::run(&cfg, &mut stdout.lock())?;

    let run = load_run(&cfg.dir)?;
    history.import(&run, &cfg.run_id)?;
    let failed_points = run
        .rows
        .iter()
        .filter(|r| r.row.status != crate::results::Status::Ok)
        .count();

    let mut regressions = Vec::new();
    if let Some(b) = &baseline {
        let base = load_run(b).context("loading the baseline")?;
        let criteria = Criteria {
            threshold,
            ..Criteria::default()
        };
        let c = crate::compare::compare(&base, &run, &criteria, &[]);
        println!("\ncompared with {}:\n{}", b.display(), render::markdown(&c));
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

    let series = tonight_series(&history, &run, &cfg.run_id, &a.threshold)?;
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
        &cfg.dir,
        None,
        baseline.as_deref(),
        threshold,
        &Extra {
            verdict: Some(verdict.clone()),
            history: &series,
        },
    )?;
    let outcome = Outcome {
        run: cfg.run_id.clone(),
        run_dir: cfg.dir.clone(),
        baseline,
        regressions,
        history_slowdowns,
        failed_points,
        report: written.html.clone(),
        ok,
    };
    let json_path = cfg.dir.join("nightly.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&outcome)?)
        .with_context(|| format!("writing '{}'", json_path.display()))?;
    let mut out = stdout.lock();
    writeln!(out, "\n{verdict}")?;
    writeln!(out, "report: {}", written.html.display())?;
    Ok(ok)
}

/// The history series tonight's rows belong to, with their change points.
fn tonight_series(
    h: &History,
    run: &crate::compare::load::Run,
    run_name: &str,
    threshold: &str,
) -> Result<Vec<SeriesReport>> {
    let keys: BTreeSet<String> = run
        .rows
        .iter()
        .map(|r| series_key(&stored_config(r)))
        .collect();
    let all = series_reports(
        h,
        &ShowArgs {
            test: None,
            filter: Vec::new(),
            threshold: threshold.to_string(),
            chart: None,
            output: "md".into(),
            fail_on_regression: false,
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
