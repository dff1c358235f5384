//! `tessera sweep`: runs every point of a grid (threads × ISA × tile × NUMA × pinning ×
//! test × batch × ubatch × KV type × model × engine) in its own child process with a time limit,
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
pub mod merge;
mod outcome;
pub mod plan;
mod scheduler;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};

use crate::results::{BenchRow, Status};
use engine::Engine;
use plan::{Plan, Shard};

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

/// What a new (not resumed) run needs besides its plan: where it goes and how it reports.
pub struct NewRun<'a> {
    /// The directory run directories are made in (`results/runs`).
    pub out_dir: &'a Path,
    /// The run's name; a fresh timestamped one when `None`.
    pub run_id: Option<String>,
    pub shard: Option<Shard>,
    pub csv: bool,
    pub measure_probe: bool,
    /// A dry run writes nothing, so an existing run directory is no obstacle.
    pub dry_run: bool,
    /// The command line, recorded in the manifest.
    pub argv: Vec<String>,
}

impl Config {
    /// The run in `dir` again, with its own plan and models from the manifest: only the
    /// settings that do not change points may differ (`timeout` when given, `profile`
    /// turned on), and the plan is checked again as a new run's is.
    pub fn resume(
        dir: &Path,
        timeout: Option<f64>,
        profile: bool,
        csv: bool,
        measure_probe: bool,
        argv: Vec<String>,
    ) -> Result<Config> {
        let m = Manifest::read(dir)?;
        let mut plan = m.plan;
        plan.timeout = timeout.unwrap_or(plan.timeout);
        plan.profile |= profile;
        let (engines, counters) = validate(&plan)?;
        Ok(Config {
            plan,
            models: m.models,
            engines,
            counters,
            dir: dir.to_path_buf(),
            run_id: m.run_id,
            shard: m.shard,
            resume: true,
            csv,
            measure_probe,
            argv,
        })
    }

    /// A new run of `plan`: every axis value checked, the run directory chosen (refused when
    /// it already holds results: that is `--resume`'s job), the models resolved. `tessera
    /// sweep` and `tessera nightly` both start their runs here.
    pub fn new_run(plan: Plan, run: NewRun) -> Result<Config> {
        let (engines, counters) = validate(&plan)?;
        if let Some(id) = &run.run_id
            && (id.is_empty() || id.contains('/') || id.starts_with('.'))
        {
            bail!("--run-id: '{id}' is not valid; give a plain name without '/'");
        }
        let run_id = run.run_id.unwrap_or_else(new_run_id);
        let mut dir = run.out_dir.join(&run_id);
        if let Some(s) = run.shard {
            dir = dir.join(format!("shard-{}-of-{}", s.index, s.count));
        }
        if dir.join("results.jsonl").exists() && !run.dry_run {
            bail!(
                "run directory {} already has results; use --resume {} to continue it",
                dir.display(),
                dir.display()
            );
        }
        let models = resolve_models(&plan)?;
        Ok(Config {
            plan,
            models,
            engines,
            counters,
            dir,
            run_id,
            shard: run.shard,
            resume: false,
            csv: run.csv,
            measure_probe: run.measure_probe,
            argv: run.argv,
        })
    }
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
    // A plan file's batch sizes get the checks `-b` gets when parsed.
    let batch = crate::cli::BATCH;
    if plan.n_batch.is_empty() {
        bail!("--batch: give one or more positive sizes");
    }
    if let Some(b) = plan.n_batch.iter().find(|b| !batch.contains(b)) {
        bail!(
            "--batch: {b} is not valid; give a positive number of tokens, at most {}",
            batch.end()
        );
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

/// Runs the sweep; returns whether every point of this shard was `ok`. A short loop over
/// the [`scheduler`]: everything else (probe, manifest, resume, progress, warm-up,
/// spawning, notices, summary) is one of its helpers.
pub fn run(cfg: &Config, out: &mut dyn Write) -> Result<bool> {
    let mut s = scheduler::Scheduler::prepare(cfg)?;
    while let Some(u) = s.next_unit() {
        let rows = s.run_unit(&u);
        s.record(&rows)?;
    }
    s.finish(out)
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
            "{} t={} isa={} tile={} numa={} pin={}{} ub={} kv={}{}",
            if r.engine.is_empty() { "?" } else { &r.engine },
            r.n_threads,
            if r.isa.is_empty() { "-" } else { &r.isa },
            if r.tile.is_empty() { "-" } else { &r.tile },
            if r.numa.is_empty() { "none" } else { &r.numa },
            if r.pin.is_empty() { "none" } else { &r.pin },
            // Only a batch other than the default (or unknown, 0): the summary of a sweep
            // without a batch axis reads as before.
            match r.n_batch {
                0 | crate::results::LLAMA_BENCH_DEFAULT_N_BATCH => String::new(),
                b => format!(" b={b}"),
            },
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
            // Every list holds at least the row that created it.
            .map(|(d, v)| (d, crate::stats::mean(v).unwrap_or(0.0)))
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
