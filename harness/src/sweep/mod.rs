//! `tessera sweep`: runs every point of a grid (threads × ISA × tile × NUMA × pinning ×
//! test × ubatch × KV type × model × engine) in its own child process with a time limit,
//! appends one row per point to `results/runs/<run-id>/results.jsonl` as soon as it is
//! known, and resumes an interrupted run without measuring anything twice.
//!
//! Why a child per point: a segfault, an abort, a hang or garbage output of one
//! configuration becomes a recorded `fault`, `timeout` or `error` row, and the sweep goes
//! on. Why append-and-flush per point: a sweep killed at any moment keeps every finished
//! point; `--resume` skips the points whose key is in the file (the key hashes the
//! configuration and repeat index).

pub mod child;
pub mod engine;
pub mod plan;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Read as _, Seek as _, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};

use crate::counters::Peaks;
use crate::results::{BenchRow, Fault, Status};
use engine::{Engine, RunSettings};
use plan::{Plan, Shard, Unit};

/// The run manifest, `manifest.json` in the run directory.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub run_id: String,
    pub created: String,
    pub tessera_build: String,
    pub argv: Vec<String>,
    pub plan: Plan,
    /// Resolved model paths (the default model's path when the plan names none).
    pub models: Vec<String>,
    pub fingerprint: String,
    #[serde(default)]
    pub shard: Option<Shard>,
    /// Keys of every unit of the whole plan (all shards), in plan order.
    pub unit_keys: Vec<String>,
}

impl Manifest {
    /// Reads the manifest of the run directory `dir`.
    pub fn read(dir: &Path) -> Result<Manifest> {
        let path = dir.join("manifest.json");
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "'{}' is not a run directory: no manifest.json",
                dir.display()
            )
        })?;
        serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))
    }
}

/// A resolved, validated sweep.
#[derive(Clone, Debug)]
pub struct Config {
    pub plan: Plan,
    pub models: Vec<String>,
    pub engines: BTreeMap<String, Engine>,
    pub counters: Vec<String>,
    pub dir: PathBuf,
    pub run_id: String,
    pub shard: Option<Shard>,
    pub resume: bool,
    pub csv: bool,
    pub measure_probe: bool,
    pub argv: Vec<String>,
}

/// Checks every axis value before anything runs; errors name the value and the valid ones.
pub fn validate(plan: &Plan) -> Result<(BTreeMap<String, Engine>, Vec<String>)> {
    use tessera_engine::affinity::{self, PinPolicy};
    use tessera_engine::numa::{self, NumaPolicy};
    if plan.engine.is_empty() {
        bail!("--engine: no engine given; valid: builtin, llama-bench=PATH, cmd=TEMPLATE");
    }
    let mut engines = BTreeMap::new();
    for e in &plan.engine {
        engines.insert(
            e.clone(),
            e.parse::<Engine>()
                .map_err(|m| anyhow::anyhow!("--engine: {m}"))?,
        );
    }
    if plan.threads.is_empty() || plan.threads.contains(&0) {
        bail!("--threads: give one or more positive thread counts");
    }
    let max = tessera_engine::pool::MAX_THREADS;
    if let Some(&t) = plan.threads.iter().find(|&&t| t > max) {
        bail!("--threads: {t} is not valid; give at most {max}");
    }
    let nodes = numa::online_nodes();
    for n in &plan.numa {
        let p: NumaPolicy = n.parse().map_err(|e| anyhow::anyhow!("--numa: {e}"))?;
        numa::validate(&p, &nodes).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let topo = affinity::topology();
    for p in &plan.pin {
        let pol: PinPolicy = p.parse().map_err(|e| anyhow::anyhow!("--pin: {e}"))?;
        affinity::plan(&pol, 1, &topo).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    if plan.ubatch.is_empty() || plan.ubatch.contains(&0) {
        bail!("--ubatch: give one or more positive sizes");
    }
    for kv in &plan.kv_type {
        kv.parse::<tessera_engine::KvType>()
            .map_err(|e| anyhow::anyhow!("--kv-type: {e}"))?;
    }
    if plan.reps == 0 {
        bail!("--reps: 0 is not valid; give at least 1");
    }
    if plan.repeat == 0 {
        bail!("--repeat: 0 is not valid; give at least 1");
    }
    if !(plan.timeout > 0.0 && plan.timeout.is_finite()) {
        bail!(
            "--timeout: {} is not valid; give a positive number of seconds",
            plan.timeout
        );
    }
    let counters = crate::counters::parse_list(&plan.counters)?;
    plan::points(plan, &["m".to_string()])?;
    Ok((engines, counters))
}

/// Resolves the models: the plan's, or the default synthetic model when an engine that
/// loads GGUF files needs one; `cmd=` engines alone get an empty `{model}`.
pub fn resolve_models(plan: &Plan) -> Result<Vec<String>> {
    if !plan.model.is_empty() {
        for m in &plan.model {
            // By stat: a FIFO or device is refused without being opened.
            tessera_engine::gguf::check_regular_file(Path::new(m))
                .map_err(|e| anyhow::anyhow!("--model: {e}"))?;
        }
        return Ok(plan.model.clone());
    }
    if plan.engine.iter().all(|e| e.starts_with("cmd=")) {
        return Ok(vec![String::new()]);
    }
    Ok(vec![
        crate::cache::default_model()?
            .to_string_lossy()
            .into_owned(),
    ])
}

/// A new run id: UTC time plus the process id, sortable and unique per machine.
pub fn new_run_id() -> String {
    let t = crate::timefmt::now_rfc3339().replace([':', '-'], "");
    format!("{t}-{:05}", std::process::id() % 100_000)
}

/// The rows already in `results.jsonl` (none when it does not exist yet), read by the
/// shared policy: unreadable lines are skipped with a warning and stay in the file.
pub fn read_existing(path: &Path) -> Result<Vec<BenchRow>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    crate::results::read_jsonl_file(path)
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
    let mut line = serde_json::to_string(row)?;
    line.push('\n');
    file.write_all(line.as_bytes())?;
    file.flush()?;
    Ok(())
}

/// The row describing a point before anything is known about its outcome: the grid's
/// starting row ([`crate::grid::row`]) plus what identifies it in this run.
fn template_row(u: &Unit, cfg: &Config, fingerprint: &str) -> BenchRow {
    BenchRow {
        run_id: cfg.run_id.clone(),
        point_key: u.key.clone(),
        repeat_index: u.repeat as u32,
        fingerprint: fingerprint.to_string(),
        ..crate::grid::row(&u.point, &crate::probe::cpu_info())
    }
}

/// Turns a child's outcome into rows.
fn rows_for(
    u: &Unit,
    cfg: &Config,
    fingerprint: &str,
    peaks: &Peaks,
    outcome: std::io::Result<child::ChildResult>,
) -> Vec<BenchRow> {
    let base = template_row(u, cfg, fingerprint);
    let r = match outcome {
        Ok(r) => r,
        Err(e) => {
            return vec![BenchRow {
                status: Status::Error,
                error: Some(format!("cannot start the engine: {e}")),
                ..base
            }];
        }
    };
    if r.timed_out {
        return vec![BenchRow {
            status: Status::Timeout,
            fault: Some(Fault {
                class: "timeout".into(),
                signal: r.signal,
                exit_code: None,
                message: format!("killed after the {} s time limit", cfg.plan.timeout),
                stderr_tail: r.stderr_tail,
            }),
            ..base
        }];
    }
    // A signal, direct or as a shell reports it (`cmd=` runs under `sh -c`, which exits
    // 128+N when its command was killed by signal N): a crash, even if rows came first.
    let code = r.exit_code.unwrap_or(-1);
    let shell_signal = r.exit_code.and_then(crate::results::signal_of_shell_exit);
    if let Some(sig) = r.signal.or(shell_signal) {
        let name = crate::results::signal_name(sig);
        return vec![BenchRow {
            status: Status::Fault,
            fault: Some(Fault {
                class: "signal".into(),
                signal: Some(sig),
                exit_code: r.exit_code,
                message: match r.exit_code {
                    Some(code) => format!("killed by {name} (shell exit {code})"),
                    None => format!("killed by {name}"),
                },
                stderr_tail: r.stderr_tail,
            }),
            ..base
        }];
    }
    let last_line = r.stderr_tail.lines().last().unwrap_or("").to_string();
    let parsed = engine::parse_rows(&r.stdout);
    // The built-in engine exits 1 when a row it printed is not ok and 2 on a usage or input
    // error; its rows carry their own status.
    let builtin = u.point.is_builtin();
    match parsed {
        Ok(rows) if code == 0 || (builtin && code == 1) => rows
            .into_iter()
            .map(|mut row| {
                row.run_id = base.run_id.clone();
                row.point_key = base.point_key.clone();
                row.repeat_index = base.repeat_index;
                row.fingerprint = base.fingerprint.clone();
                if !builtin {
                    row.engine = base.engine.clone();
                    row.numa = base.numa.clone();
                    row.pin = base.pin.clone();
                    if let Some(c) = &r.counters {
                        row.counters = c.clone();
                        row.counters_scope = crate::counters::Scope::Child.name().into();
                    }
                }
                row.derived = crate::counters::derive(&row, peaks);
                row
            })
            .collect(),
        _ if builtin && code == 2 => vec![BenchRow {
            status: Status::Error,
            error: Some(if last_line.is_empty() {
                "tessera bench exited with code 2".into()
            } else {
                last_line
            }),
            ..base
        }],
        _ if code != 0 => vec![BenchRow {
            status: Status::Fault,
            fault: Some(Fault {
                class: "exit".into(),
                signal: None,
                exit_code: Some(code),
                message: format!(
                    "exited with code {code}{}",
                    if last_line.is_empty() {
                        String::new()
                    } else {
                        format!(": {last_line}")
                    }
                ),
                stderr_tail: r.stderr_tail,
            }),
            ..base
        }],
        Err(e) => vec![BenchRow {
            status: Status::Error,
            error: Some(format!("unparsable engine output: {e:#}")),
            fault: (!r.stderr_tail.is_empty()).then(|| Fault {
                class: "garbage".into(),
                signal: None,
                exit_code: Some(code),
                message: "the engine exited 0 but printed no result rows".into(),
                stderr_tail: r.stderr_tail,
            }),
            ..base
        }],
        Ok(_) => unreachable!("code 0 is handled by the first arm"),
    }
}

/// Runs the sweep; returns whether every point was `ok`.
pub fn run(cfg: &Config, out: &mut dyn Write) -> Result<bool> {
    std::fs::create_dir_all(&cfg.dir)
        .with_context(|| format!("creating run directory {}", cfg.dir.display()))?;
    // One writer per run directory: two sweeps of one run would measure concurrently and
    // both run the points neither had finished.
    let _lock = crate::lockfile::DirLock::acquire(&cfg.dir, "tessera sweep")?;
    let probe = if cfg.measure_probe {
        let d = crate::probe::describe();
        crate::probe::cached(&cfg.dir, crate::probe::MeasureOpts::default_for(&d))?
    } else {
        crate::probe::describe()
    };
    let peaks = probe.peaks();
    let points = plan::points(&cfg.plan, &cfg.models)?;
    let all_units = plan::units(&points, cfg.plan.repeat);
    let manifest_path = cfg.dir.join("manifest.json");
    if !cfg.resume || !manifest_path.exists() {
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
            .with_context(|| format!("writing {}", manifest_path.display()))?;
    }
    let units: Vec<Unit> = all_units
        .into_iter()
        .enumerate()
        .filter(|(i, _)| cfg.shard.is_none_or(|s| s.owns(*i)))
        .map(|(_, u)| u)
        .collect();
    let results = cfg.dir.join("results.jsonl");
    terminate_torn_line(&results)?;
    let existing = read_existing(&results)?;
    let done: BTreeSet<String> = existing.iter().map(|r| r.point_key.clone()).collect();
    let todo: Vec<&Unit> = units.iter().filter(|u| !done.contains(&u.key)).collect();
    if cfg.resume {
        eprintln!(
            "tessera: resuming {}: {} of {} points done, {} to run",
            cfg.run_id,
            units.len() - todo.len(),
            units.len(),
            todo.len()
        );
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&results)
        .with_context(|| format!("opening {}", results.display()))?;
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(todo.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:30} {pos}/{len} [{elapsed_precise}, ETA {eta}] {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let timeout = Duration::from_secs_f64(cfg.plan.timeout);
    for u in todo {
        bar.set_message(u.point.label());
        let engine = &cfg.engines[&u.point.engine];
        if u.repeat == 0 {
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
        let rows = match engine.command(&u.point, &s) {
            Ok((mut c, count_child)) => {
                let counters: &[String] = if count_child { &cfg.counters } else { &[] };
                // The built-in engine samples its own timed repetitions; an external
                // engine is sampled here, whole, from its exec to its exit.
                let sampling = crate::profile::Settings::default();
                let sample = (!u.point.is_builtin() && cfg.plan.profile).then_some(&sampling);
                let program = c.get_program().to_string_lossy().into_owned();
                let mut outcome = child::run_profiled(&mut c, timeout, counters, sample)
                    .map_err(|e| std::io::Error::new(e.kind(), format!("'{program}': {e}")));
                let recording = outcome.as_mut().ok().and_then(|r| r.profile.take());
                let mut rows = rows_for(u, cfg, &probe.fingerprint, &peaks, outcome);
                if let Some(rec) = recording {
                    let p = crate::profile::conclude(rec, &cfg.dir, &profile_name);
                    for row in &mut rows {
                        bar.suspend(|| crate::profile::apply(row, &p, true));
                    }
                }
                rows
            }
            Err(e) => vec![BenchRow {
                status: Status::Error,
                error: Some(format!("{e:#}")),
                ..template_row(u, cfg, &probe.fingerprint)
            }],
        };
        for row in &rows {
            let missing = row
                .counters
                .iter()
                .filter(|(_, v)| v.value.is_none())
                .filter_map(|(n, v)| v.reason.as_deref().map(|why| (n.as_str(), why)));
            bar.suspend(|| crate::counters::notice_missing(missing));
            if let Some(why) = &row.profile_error {
                bar.suspend(|| crate::profile::notice_once(why));
            }
            append(&mut file, row)?;
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    // Only the rows: the warnings about unreadable lines were printed at the start.
    let rows = crate::results::read_jsonl(std::io::BufReader::new(
        std::fs::File::open(&results).with_context(|| format!("reading {}", results.display()))?,
    ))?;
    let summary = summarize(&rows);
    std::fs::write(cfg.dir.join("summary.md"), &summary)?;
    write!(out, "{summary}")?;
    writeln!(out, "\nrun directory: {}", cfg.dir.display())?;
    if cfg.csv {
        let path = cfg.dir.join("results.csv");
        let mut f = std::fs::File::create(&path)?;
        let mut exp = crate::export::exporter(crate::export::OutputFormat::Csv, &[] as &[&str]);
        exp.begin(&mut f)?;
        for r in &rows {
            exp.row(&mut f, r)?;
        }
        exp.end(&mut f)?;
    }
    let mine: BTreeSet<&String> = units.iter().map(|u| &u.key).collect();
    Ok(rows
        .iter()
        .filter(|r| mine.contains(&r.point_key))
        .all(|r| r.status == Status::Ok))
}

/// The end-of-run summary: counts per status, then the best configuration of each test
/// (highest mean t/s over repeats among `ok` rows).
pub fn summarize(rows: &[BenchRow]) -> String {
    let mut s = String::new();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for r in rows {
        *counts.entry(r.status.as_str()).or_default() += 1;
    }
    let c = |k: &str| counts.get(k).copied().unwrap_or(0);
    s.push_str(&format!(
        "{} rows: {} ok, {} fault, {} timeout, {} error\n\n",
        rows.len(),
        c("ok"),
        c("fault"),
        c("timeout"),
        c("error")
    ));
    // test → config description → rates
    let mut by_test: BTreeMap<String, BTreeMap<String, Vec<f64>>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.status == Status::Ok) {
        let desc = format!(
            "{} t={} isa={} tile={} numa={} pin={} ub={} kv={}{}",
            if r.engine.is_empty() { "?" } else { &r.engine },
            r.n_threads,
            if r.isa.is_empty() { "-" } else { &r.isa },
            if r.tile.is_empty() { "-" } else { &r.tile },
            if r.numa.is_empty() { "none" } else { &r.numa },
            if r.pin.is_empty() { "none" } else { &r.pin },
            r.n_ubatch,
            r.type_k,
            if r.model_filename.is_empty() {
                String::new()
            } else {
                format!(
                    " model={}",
                    Path::new(&r.model_filename)
                        .file_name()
                        .map_or(r.model_filename.clone(), |f| f
                            .to_string_lossy()
                            .into_owned())
                )
            },
        );
        by_test
            .entry(r.test.clone())
            .or_default()
            .entry(desc)
            .or_default()
            .push(r.avg_ts);
    }
    if by_test.is_empty() {
        s.push_str("no successful measurements\n");
        return s;
    }
    s.push_str("| test | best t/s | configs | best configuration |\n| --- | ---: | ---: | --- |\n");
    for (test, configs) in &by_test {
        let best = configs
            .iter()
            .map(|(d, v)| (d, v.iter().sum::<f64>() / v.len() as f64))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((d, ts)) = best {
            s.push_str(&format!("| {test} | {ts:.2} | {} | {d} |\n", configs.len()));
        }
    }
    s
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
        let rows = read_existing(&p).unwrap();
        assert_eq!(rows.len(), 1);
        // A whole file is left as it is.
        terminate_torn_line(&p).unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            format!("{row}\n{}\n", &row[..20])
        );
    }

    #[test]
    fn summary_picks_the_best_mean_per_test() {
        let mk = |t: u32, ts: f64, status: Status| BenchRow {
            n_threads: t,
            n_prompt: 64,
            test: "pp64".into(),
            avg_ts: ts,
            status,
            ..BenchRow::default()
        };
        let rows = vec![
            mk(1, 10.0, Status::Ok),
            mk(2, 30.0, Status::Ok),
            mk(2, 10.0, Status::Ok),
            mk(1, 14.0, Status::Ok),
            mk(4, 99.0, Status::Fault),
        ];
        let s = summarize(&rows);
        assert!(
            s.starts_with("5 rows: 4 ok, 1 fault, 0 timeout, 0 error"),
            "{s}"
        );
        // t=2 averages 20, t=1 averages 12; the faulted t=4 is ignored.
        assert!(s.contains("| pp64 | 20.00 | 2 | builtin t=2 "), "{s}");
    }
}
