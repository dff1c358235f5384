//! `tessera sweep`: flags (or a TOML plan) → a validated [`sweep::Config`] → [`sweep::run`].
//! Axis flags take comma lists and form a cartesian product; `--engine` and `--pin` are
//! repeatable instead, since their values may contain commas.

use std::path::PathBuf;

use anyhow::{Result, bail};

use crate::cli::{BATCH, counts_or, list_or};
use crate::sweep::{self, Config, plan::Plan, plan::Shard};

#[derive(clap::Args, Debug, Default)]
pub struct Args {
    /// TOML plan file (keys as in plans/example.toml); flags override its keys.
    #[arg(long = "plan")]
    pub plan: Option<PathBuf>,
    /// Engine (repeatable): builtin, llama-bench=PATH, cmd='COMMAND {threads} {n_prompt} ...'.
    #[arg(long = "engine")]
    pub engine: Vec<String>,
    /// Model files (comma list); default: the built-in synthetic 150m Q4_0 model.
    #[arg(short = 'm', long = "model")]
    pub model: Vec<String>,
    /// Thread counts (comma list).
    #[arg(short = 't', long = "threads")]
    pub threads: Vec<String>,
    /// Kernel ISAs of the built-in engine (comma list): auto, NAME, all.
    #[arg(long = "isa")]
    pub isa: Vec<String>,
    /// Tiles MxNxK (comma list); default, all.
    #[arg(long = "tile")]
    pub tile: Vec<String>,
    /// NUMA policies (comma list): none, local, interleave, bind:N.
    #[arg(long = "numa")]
    pub numa: Vec<String>,
    /// Pinning (repeatable): none, compact, scatter, or a CPU list such as 0,2 or 0-3.
    #[arg(long = "pin")]
    pub pin: Vec<String>,
    /// Prompt lengths of pp tests (comma list); llama-bench's -p/--n-prompt.
    #[arg(short = 'p', long = "pp", visible_alias = "n-prompt")]
    pub pp: Vec<String>,
    /// Generation lengths of tg tests (comma list); llama-bench's -n/--n-gen.
    #[arg(short = 'n', long = "tg", visible_alias = "n-gen")]
    pub tg: Vec<String>,
    /// A pp+tg test "PP,TG" (repeatable).
    #[arg(long = "pg")]
    pub pg: Vec<String>,
    /// Logical batch sizes (comma list); llama-bench's -b/--batch-size (default 2048).
    #[arg(short = 'b', long = "batch", visible_alias = "batch-size")]
    pub batch: Vec<String>,
    /// Micro-batch sizes (comma list); llama-bench's -ub/--ubatch-size.
    #[arg(long = "ubatch", visible_alias = "ubatch-size")]
    pub ubatch: Vec<String>,
    /// KV cache types (comma list): f16, f32.
    #[arg(long = "kv-type")]
    pub kv_type: Vec<String>,
    /// llama-bench's -ctk: a sweep runs K and V with one type, so -ctk and -ctv, when both
    /// are given, must name the same types; either one sets --kv-type.
    #[arg(long = "cache-type-k")]
    pub cache_type_k: Vec<String>,
    /// llama-bench's -ctv (see --cache-type-k).
    #[arg(long = "cache-type-v")]
    pub cache_type_v: Vec<String>,
    /// Child runs per point, each its own row.
    #[arg(long = "repeat")]
    pub repeat: Option<usize>,
    /// Unrecorded child runs per point before the first repeat.
    #[arg(long = "warmup")]
    pub warmup: Option<usize>,
    /// Timed repetitions inside each child (llama-bench's -r).
    #[arg(short = 'r', long = "reps")]
    pub reps: Option<usize>,
    /// Seconds a point may run before it is killed and recorded as a timeout.
    #[arg(long = "timeout")]
    pub timeout: Option<f64>,
    /// Counters: none, default, or a comma list.
    #[arg(long = "counters")]
    pub counters: Option<String>,
    /// Sample every point with perf_event: top symbols in each row, folded stacks and a
    /// flamegraph per point in RUN/profiles/ (the built-in engine: its timed repetitions;
    /// other engines: the whole process).
    #[arg(long = "profile")]
    pub profile: bool,
    /// Root of run directories.
    #[arg(long = "out-dir", default_value = "results/runs")]
    pub out_dir: PathBuf,
    /// Name of the run directory (default: UTC time and process id). Shards of one sweep
    /// share it.
    #[arg(long = "run-id")]
    pub run_id: Option<String>,
    /// Resume a run: its id under --out-dir, or its directory. Its plan is reused.
    #[arg(long = "resume")]
    pub resume: Option<String>,
    /// Run only shard I of N (1-based); its rows go to RUN/shard-I-of-N.
    #[arg(long = "shard")]
    pub shard: Option<String>,
    /// Also write results.csv at the end.
    #[arg(long = "csv")]
    pub csv: bool,
    /// Do not measure bandwidth and peaks (the fingerprint is still recorded).
    #[arg(long = "no-probe")]
    pub no_probe: bool,
    /// List the points and exit.
    #[arg(long = "dry-run")]
    pub dry_run: bool,
}

fn axis_overrides(a: &Args, mut plan: Plan) -> Result<Plan> {
    let strings = |given: &[String]| -> Vec<String> {
        given
            .iter()
            .flat_map(|g| g.split(',').map(|s| s.trim().to_string()))
            .filter(|s| !s.is_empty())
            .collect()
    };
    if !a.engine.is_empty() {
        plan.engine = a.engine.clone();
    }
    if !a.model.is_empty() {
        plan.model = strings(&a.model);
    }
    plan.threads = list_or("--threads", &a.threads, &plan.threads)?;
    if !a.isa.is_empty() {
        plan.isa = strings(&a.isa);
    }
    if !a.tile.is_empty() {
        plan.tile = strings(&a.tile);
    }
    if !a.numa.is_empty() {
        plan.numa = strings(&a.numa);
    }
    if !a.pin.is_empty() {
        plan.pin = a.pin.clone();
    }
    // Naming any test flag replaces the plan's whole test list.
    if !a.pp.is_empty() || !a.tg.is_empty() || !a.pg.is_empty() {
        plan.pp = list_or("--pp", &a.pp, &[])?;
        plan.tg = list_or("--tg", &a.tg, &[])?;
        plan.pg = a.pg.clone();
    }
    plan.n_batch = counts_or("--batch", &a.batch, &plan.n_batch, BATCH, "tokens")?;
    plan.ubatch = list_or("--ubatch", &a.ubatch, &plan.ubatch)?;
    let (ctk, ctv) = (strings(&a.cache_type_k), strings(&a.cache_type_v));
    if !ctk.is_empty() && !ctv.is_empty() && ctk != ctv {
        bail!(
            "-ctk {} and -ctv {} differ: a sweep runs K and V with one cache type; give the same list to both, or --kv-type",
            ctk.join(","),
            ctv.join(",")
        );
    }
    let kv = [strings(&a.kv_type), ctk, ctv]
        .into_iter()
        .find(|v| !v.is_empty())
        .unwrap_or_default();
    if !kv.is_empty() {
        plan.kv_type = kv;
    }
    plan.repeat = a.repeat.unwrap_or(plan.repeat);
    plan.warmup = a.warmup.unwrap_or(plan.warmup);
    plan.reps = a.reps.unwrap_or(plan.reps);
    plan.timeout = a.timeout.unwrap_or(plan.timeout);
    if let Some(c) = &a.counters {
        plan.counters = c.clone();
    }
    plan.profile |= a.profile;
    Ok(plan)
}

fn has_axis_flags(a: &Args) -> bool {
    a.plan.is_some()
        || !(a.engine.is_empty()
            && a.model.is_empty()
            && a.threads.is_empty()
            && a.isa.is_empty()
            && a.tile.is_empty()
            && a.numa.is_empty()
            && a.pin.is_empty()
            && a.pp.is_empty()
            && a.tg.is_empty()
            && a.pg.is_empty()
            && a.batch.is_empty()
            && a.ubatch.is_empty()
            && a.kv_type.is_empty()
            && a.cache_type_k.is_empty()
            && a.cache_type_v.is_empty())
}

impl Config {
    pub fn from_args(a: &Args) -> Result<Config> {
        let argv: Vec<String> = std::env::args().collect();
        if let Some(r) = &a.resume {
            if has_axis_flags(a) || a.shard.is_some() || a.run_id.is_some() {
                bail!(
                    "--resume: the run's own plan is reused; drop the axis, --plan, --shard and --run-id flags"
                );
            }
            let as_dir = PathBuf::from(r);
            let dir = if as_dir.join("manifest.json").is_file() {
                as_dir
            } else {
                a.out_dir.join(r)
            };
            return Config::resume(&dir, a.timeout, a.profile, a.csv, !a.no_probe, argv);
        }
        let base = match &a.plan {
            Some(p) => Plan::from_toml_file(p)?,
            None => Plan::default(),
        };
        let plan = axis_overrides(a, base)?;
        let shard = match &a.shard {
            Some(s) => Some(
                s.parse::<Shard>()
                    .map_err(|e| anyhow::anyhow!("--shard: {e}"))?,
            ),
            None => None,
        };
        Config::new_run(
            plan,
            sweep::NewRun {
                out_dir: &a.out_dir,
                run_id: a.run_id.clone(),
                shard,
                csv: a.csv,
                measure_probe: !a.no_probe,
                dry_run: a.dry_run,
                argv,
            },
        )
    }
}

pub fn run_cli(a: &Args) -> Result<bool> {
    let cfg = Config::from_args(a)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if a.dry_run {
        use std::io::Write;
        let points = sweep::plan::points(&cfg.plan, &cfg.models)?;
        let units = sweep::plan::units(&points, cfg.plan.repeat);
        for (i, u) in units.iter().enumerate() {
            if cfg.shard.is_none_or(|s| s.owns(i)) {
                writeln!(out, "{} {} repeat={}", u.key, u.point.label(), u.repeat)?;
            }
        }
        return Ok(true);
    }
    sweep::run(&cfg, &mut out)
}
