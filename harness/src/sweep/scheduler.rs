//! The sweep's scheduler (hyperfine's scheduler/executor split): [`Scheduler::prepare`]
//! takes the run directory's lock, probes the machine, writes the manifest, picks this
//! shard's units and those a resumed run still lacks; [`Scheduler::next_unit`] hands them
//! out in plan order; [`Scheduler::run_unit`] warms up, spawns and reads one unit's child;
//! [`Scheduler::record`] prints its notices and appends its rows (flushed, so a sweep killed
//! at any moment keeps every finished unit); [`Scheduler::finish`] writes the summary and
//! CSV. Each job is one helper below; `sweep::run` is only the loop.

use std::collections::{BTreeSet, VecDeque};
use std::io::{IsTerminal, Read as _, Seek as _, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result};

use super::engine::{Engine, RunSettings};
use super::plan::{self, Unit};
use super::{Config, Manifest, child, outcome};
use crate::lockfile::DirLock;
use crate::probe::Probe;
use crate::probe::RowPeaks;
use crate::results::{BenchRow, Status};

/// One sweep in progress.
pub(super) struct Scheduler<'a> {
    cfg: &'a Config,
    /// Held until the sweep ends: one writer per run directory.
    _lock: DirLock,
    fingerprint: String,
    peaks: RowPeaks,
    /// This shard's units, all of them (done or not): what the exit status is about.
    units: Vec<Unit>,
    /// The units still to run, in plan order.
    todo: VecDeque<Unit>,
    results: PathBuf,
    file: std::fs::File,
    bar: indicatif::ProgressBar,
    timeout: Duration,
}

impl<'a> Scheduler<'a> {
    /// Everything before the first unit runs, in this order (the order of its messages):
    /// the lock, the probe, the manifest, this shard's units, the repair of a torn last
    /// line, the resume state and its notice, the results file and the progress bar.
    pub(super) fn prepare(cfg: &'a Config) -> Result<Self> {
        std::fs::create_dir_all(&cfg.dir)
            .with_context(|| format!("creating run directory {}", cfg.dir.display()))?;
        // One writer per run directory: two sweeps of one run would measure concurrently
        // and both run the points neither had finished.
        let lock = DirLock::acquire(&cfg.dir, "tessera sweep")?;
        let probe = probe_machine(cfg)?;
        let points = plan::points(&cfg.plan, &cfg.models)?;
        let all_units = plan::units(&points, cfg.plan.repeat);
        write_manifest(cfg, &probe, &all_units)?;
        let units = shard_units(cfg, all_units);
        let results = cfg.dir.join("results.jsonl");
        let todo = pending(cfg, &results, &units)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&results)
            .with_context(|| format!("opening {}", results.display()))?;
        Ok(Scheduler {
            cfg,
            _lock: lock,
            peaks: probe.row_peaks(),
            fingerprint: probe.fingerprint,
            bar: progress_bar(todo.len()),
            units,
            todo,
            results,
            file,
            timeout: Duration::from_secs_f64(cfg.plan.timeout),
        })
    }

    /// The next unit to run, or None when all have run.
    pub(super) fn next_unit(&mut self) -> Option<Unit> {
        let u = self.todo.pop_front()?;
        self.bar.set_message(u.point.label());
        Some(u)
    }

    /// Runs one unit: its warm-up runs (before its first repeat), then its child, and
    /// returns its rows. Never fails: what goes wrong is in the rows.
    pub(super) fn run_unit(&self, u: &Unit) -> Vec<BenchRow> {
        let cfg = self.cfg;
        let engine = &cfg.engines[&u.point.engine];
        if u.repeat == 0 {
            warm_up(cfg, engine, u, self.timeout);
        }
        let profile_name = format!("profiles/{}-{}", u.key, u.repeat);
        let s = RunSettings {
            reps: cfg.plan.reps,
            counters: &cfg.counters,
            repeat: u.repeat,
            profile: cfg
                .plan
                .profile
                .then_some((cfg.dir.as_path(), profile_name.as_str())),
        };
        match engine.command(&u.point, &s) {
            Ok((c, count_child)) => self.spawn(u, c, count_child, &profile_name),
            Err(e) => vec![BenchRow {
                status: Status::Error,
                error: Some(format!("{e:#}")),
                ..outcome::template_row(u, cfg, &self.fingerprint)
            }],
        }
    }

    /// Runs one unit's command, counted and sampled as the engine needs, and turns its
    /// outcome into rows.
    fn spawn(
        &self,
        u: &Unit,
        mut c: std::process::Command,
        count_child: bool,
        profile_name: &str,
    ) -> Vec<BenchRow> {
        let cfg = self.cfg;
        let counters: &[String] = if count_child { &cfg.counters } else { &[] };
        // The built-in engine samples its own timed repetitions; an external engine is
        // sampled here, whole, from its exec to its exit.
        let sampling = crate::profile::Settings::default();
        let sample = (!u.point.is_builtin() && cfg.plan.profile).then_some(&sampling);
        let program = c.get_program().to_string_lossy().into_owned();
        let mut result = child::run_profiled(&mut c, self.timeout, counters, sample)
            .map_err(|e| std::io::Error::new(e.kind(), format!("'{program}': {e}")));
        let recording = result.as_mut().ok().and_then(|r| r.profile.take());
        let mut rows = outcome::rows_for(u, cfg, &self.fingerprint, &self.peaks, result);
        if let Some(rec) = recording {
            let p = crate::profile::conclude(rec, &cfg.dir, profile_name);
            for row in &mut rows {
                self.bar.suspend(|| crate::profile::apply(row, &p, true));
            }
        }
        rows
    }

    /// Prints each row's notices (counters unavailable, profiling refused; each once per
    /// process) and appends it to the results file, flushed.
    pub(super) fn record(&mut self, rows: &[BenchRow]) -> Result<()> {
        for row in rows {
            let missing = row
                .counters
                .iter()
                .filter(|(_, v)| v.value.is_none())
                .filter_map(|(n, v)| v.reason.as_deref().map(|why| (n.as_str(), why)));
            self.bar
                .suspend(|| crate::counters::notice_missing(missing));
            if let Some(why) = &row.profile_error {
                self.bar.suspend(|| crate::profile::notice_once(why));
            }
            append(&mut self.file, row)?;
        }
        self.bar.inc(1);
        Ok(())
    }

    /// Clears the bar, writes `summary.md` (also to `out`) and, with `--csv`,
    /// `results.csv`; returns whether every row of this shard's units is `ok`.
    pub(super) fn finish(self, out: &mut dyn Write) -> Result<bool> {
        self.bar.finish_and_clear();
        let cfg = self.cfg;
        // Only the rows: the warnings about unreadable lines were printed at the start.
        let rows = crate::results::read_jsonl(std::io::BufReader::new(
            std::fs::File::open(&self.results)
                .with_context(|| format!("reading {}", self.results.display()))?,
        ))?;
        let summary = super::summarize(&rows);
        std::fs::write(cfg.dir.join("summary.md"), &summary)?;
        write!(out, "{summary}")?;
        writeln!(out, "\nrun directory: {}", cfg.dir.display())?;
        if cfg.csv {
            write_csv(&cfg.dir.join("results.csv"), &rows)?;
        }
        let mine: BTreeSet<&String> = self.units.iter().map(|u| &u.key).collect();
        Ok(rows
            .iter()
            .filter(|r| mine.contains(&r.point_key))
            .all(|r| r.status == Status::Ok))
    }
}

/// The machine's probe: measured (bandwidth, peaks; cached in the run directory by
/// fingerprint) or, with `--no-probe`, only described.
fn probe_machine(cfg: &Config) -> Result<Probe> {
    if cfg.measure_probe {
        let d = crate::probe::describe();
        crate::probe::cached(&cfg.dir, crate::probe::MeasureOpts::default_for(&d))
    } else {
        Ok(crate::probe::describe())
    }
}

/// Writes `manifest.json`, unless a resumed run already has one (its plan made the units).
fn write_manifest(cfg: &Config, probe: &Probe, all_units: &[Unit]) -> Result<()> {
    let manifest_path = cfg.dir.join("manifest.json");
    if cfg.resume && manifest_path.exists() {
        return Ok(());
    }
    let m = Manifest {
        run_id: cfg.run_id.clone(),
        created: crate::timefmt::now_rfc3339(),
        tessera_build: probe.tessera_build.clone(),
        argv: cfg.argv.clone(),
        plan: cfg.plan.clone(),
        models: cfg.models.clone(),
        fingerprint: probe.fingerprint.clone(),
        shard: cfg.shard,
        unit_keys: all_units.iter().map(|u| u.key.clone()).collect(),
    };
    std::fs::write(&manifest_path, serde_json::to_string_pretty(&m)?)
        .with_context(|| format!("writing {}", manifest_path.display()))
}

/// The units of this shard (all of them without `--shard`), in plan order.
fn shard_units(cfg: &Config, all_units: Vec<Unit>) -> Vec<Unit> {
    all_units
        .into_iter()
        .enumerate()
        .filter(|(i, _)| cfg.shard.is_none_or(|s| s.owns(*i)))
        .map(|(_, u)| u)
        .collect()
}

/// The resume state: repairs a torn last line, then returns the units whose key has no
/// row in `results` yet; a resumed run says how many are done.
fn pending(cfg: &Config, results: &Path, units: &[Unit]) -> Result<VecDeque<Unit>> {
    terminate_torn_line(results)?;
    let existing = super::read_existing(results)?;
    let done: BTreeSet<String> = existing.iter().map(|r| r.point_key.clone()).collect();
    let todo: VecDeque<Unit> = units
        .iter()
        .filter(|u| !done.contains(&u.key))
        .cloned()
        .collect();
    if cfg.resume {
        eprintln!(
            "tessera: resuming {}: {} of {} points done, {} to run",
            cfg.run_id,
            units.len() - todo.len(),
            units.len(),
            todo.len()
        );
    }
    Ok(todo)
}

/// A progress bar with ETA on stderr, hidden when stderr is not a terminal.
fn progress_bar(len: usize) -> indicatif::ProgressBar {
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(len as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:30} {pos}/{len} [{elapsed_precise}, ETA {eta}] {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

/// The plan's unrecorded warm-up runs of one unit: their outcome is ignored.
fn warm_up(cfg: &Config, engine: &Engine, u: &Unit, timeout: Duration) {
    for w in 0..cfg.plan.warmup {
        let s = RunSettings {
            reps: cfg.plan.reps,
            counters: &[],
            repeat: w,
            profile: None,
        };
        if let Ok((mut c, _)) = engine.command(&u.point, &s) {
            let _ = child::run(&mut c, timeout, &[]);
        }
    }
}

/// `results.csv`: every row of the run directory.
fn write_csv(path: &Path, rows: &[BenchRow]) -> Result<()> {
    let mut f = std::fs::File::create(path)?;
    let mut exp = crate::export::exporter(crate::export::OutputFormat::Csv, &[] as &[&str]);
    exp.begin(&mut f)?;
    for r in rows {
        exp.row(&mut f, r)?;
    }
    exp.end(&mut f)?;
    Ok(())
}

/// Ends the file with a newline when its last line is torn (the sweep was killed while
/// writing it), so the next row starts on a line of its own. The torn text stays: it is
/// an unreadable line like any other, skipped with a warning by every reader, and its
/// point has no row, so the resumed sweep measures it again.
fn terminate_torn_line(path: &Path) -> Result<()> {
    let Ok(mut f) = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .open(path)
    else {
        return Ok(());
    };
    let len = f.metadata()?.len();
    if len == 0 {
        return Ok(());
    }
    let mut last = [0u8; 1];
    f.seek(SeekFrom::Start(len - 1))?;
    f.read_exact(&mut last)?;
    if last[0] != b'\n' {
        f.write_all(b"\n")
            .with_context(|| format!("repairing {}", path.display()))?;
        eprintln!(
            "tessera: warning: {}: the last line was torn (the sweep was killed while writing it); \
             kept, ended with a newline, and its point runs again",
            path.display()
        );
    }
    Ok(())
}

/// Appends one row as one line and flushes it to the kernel.
fn append(file: &mut std::fs::File, row: &BenchRow) -> Result<()> {
    Ok(crate::results::write_row(file, row)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_last_line_is_kept_and_ended_so_the_next_row_starts_fresh() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("results.jsonl");
        let row = serde_json::to_string(&BenchRow {
            point_key: "k1".into(),
            ..BenchRow::default()
        })
        .unwrap();
        std::fs::write(&p, format!("{row}\n{}", &row[..20])).unwrap();
        terminate_torn_line(&p).unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            format!("{row}\n{}\n", &row[..20])
        );
        let rows = super::super::read_existing(&p).unwrap();
        assert_eq!(rows.len(), 1);
        // A whole file is left as it is.
        terminate_torn_line(&p).unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            format!("{row}\n{}\n", &row[..20])
        );
    }
}
