//! `tessera bench`'s runner: llama-bench's semantics on the built-in engine. Comma lists form
//! a cartesian product; each configuration gets one warm-up and `-r` timed runs; rows stream
//! out as they finish in md, csv, json or jsonl. The product and each row's starting fields
//! come from [`crate::grid`], shared with `tessera sweep`.
//!
//! The flags are read and checked in `cmd::bench`, which builds the [`Config`] (every
//! message names its flag) and calls [`run`]. The runner is split by job:
//! - this file: the [`Config`], the order of the points (`points`), the context checks
//!   made before the first row, and the loop that writes the rows;
//! - `measure`: one point measured in this process, the timed region (counters and
//!   profile sampling over exactly the timed repetitions) and the row it fills;
//! - `child`: the `tessera bench` arguments that measure one point in a child process,
//!   how a cuda point runs when isolated (so a GPU fault becomes a `fault` row).

mod child;
mod measure;

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use tessera_engine::affinity::PinPolicy;
use tessera_engine::numa::NumaPolicy;
use tessera_engine::{Backend, KvType, Model};
use tessera_kernels::{IsaRequest, Kernels, TileConfig};

use crate::export::{OutputFormat, exporter};
use crate::grid::{self, Axis, Point, Test};
use crate::results::Status;

/// Flags resolved and validated together, before anything runs (built by
/// `cmd::bench`'s `Config::from_args`).
#[derive(Debug)]
pub struct Config {
    pub models: Vec<PathBuf>,
    pub tests: Vec<Test>,
    pub batch: Vec<usize>,
    pub ubatch: Vec<usize>,
    pub threads: Vec<usize>,
    pub ctk: Vec<KvType>,
    pub ctv: Vec<KvType>,
    pub reps: usize,
    pub isa: IsaRequest,
    pub tile: Option<TileConfig>,
    pub output: OutputFormat,
    pub seed: u64,
    pub numa: NumaPolicy,
    pub pin: PinPolicy,
    pub counters: Vec<String>,
    pub backends: Vec<Backend>,
    /// `-ngl` values (used by cuda configurations only).
    pub ngl: Vec<usize>,
    /// Run each cuda configuration in a child process.
    pub isolate: bool,
    /// Names of the GPUs (llama-bench's `gpu_info`), when a cuda backend is asked for.
    pub gpu_info: String,
    /// `--profile`: where the profiles go.
    pub profile: Option<crate::profile::OutDir>,
}

// llama-bench's defaults: the flags' defaults, and what `extra_columns` compares against.
pub const DEFAULT_BATCH: usize = grid::DEFAULT_BATCH;
pub const DEFAULT_UBATCH: usize = 512;
pub const DEFAULT_NGL: usize = 99;

impl Config {
    /// Columns beyond llama-bench's fixed set: those that vary or differ from its defaults.
    fn extra_columns(&self) -> Vec<&'static str> {
        let mut cols = Vec::new();
        if self.batch != [DEFAULT_BATCH] {
            cols.push("n_batch");
        }
        if self.ubatch != [DEFAULT_UBATCH] {
            cols.push("n_ubatch");
        }
        if self.ctk != [KvType::F16] {
            cols.push("type_k");
        }
        if self.ctv != [KvType::F16] {
            cols.push("type_v");
        }
        cols
    }
}

/// Runs every configuration; returns whether all succeeded. Every model is loaded and
/// every configuration's context checked against it (size limit, memory) before the first
/// row is written, so an input error leaves no partial output; only the writes themselves
/// are reported as "writing results".
pub fn run(cfg: &Config, out: &mut dyn Write) -> Result<bool> {
    // The policy is set before any model is loaded, so weights and buffers follow it.
    let numa = tessera_engine::numa::apply(&cfg.numa).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut models: HashMap<&PathBuf, Model> = HashMap::new();
    for path in &cfg.models {
        if !models.contains_key(path) {
            let m = Model::load(path).map_err(|e| anyhow::anyhow!("-m: {e}"))?;
            models.insert(path, m);
        }
    }
    for path in &cfg.models {
        check_contexts(cfg, path, &models[path])?;
    }
    let cpu_info = crate::probe::cpu_info();
    let mut all_ok = true;
    let mut exp = exporter(cfg.output, &cfg.extra_columns());
    exp.begin(out).context("writing results")?;
    // Rows in order, 1-based: what names each row's profile.
    let mut seq = 0;
    for path in &cfg.models {
        let model = models.get_mut(path).expect("loaded above");
        for point in points(cfg, path) {
            seq += 1;
            let rows = if point.backend == Backend::Cuda && cfg.isolate {
                let kernels =
                    Kernels::new(cfg.isa, cfg.tile).expect("validated in Config::from_args");
                let template =
                    measure::measure_template(cfg, model, &point, &cpu_info, &kernels, None);
                crate::gpu::run_child(&child::child_args(cfg, &point, seq), &template)
            } else {
                vec![measure::measure(cfg, &mut *model, &point, &cpu_info, seq)]
            };
            for mut row in rows {
                row.numa = numa.clone();
                all_ok &= row.status == Status::Ok;
                exp.row(out, &row).context("writing results")?;
                out.flush().context("writing results")?;
            }
        }
    }
    exp.end(out).context("writing results")?;
    out.flush().context("writing results")?;
    if let Some(p) = &cfg.profile
        && p.name.is_none()
        && p.dir.is_dir()
    {
        eprintln!("tessera: profiles in {}", p.dir.display());
    }
    Ok(all_ok)
}

/// Every configuration of one model, in the order rows come out (llama-bench's: batch,
/// ubatch, K type, V type, threads, test, backend; the last varies fastest). The run-level
/// settings (ISA, tile, NUMA, pinning) are the same in every point.
fn points(cfg: &Config, model: &std::path::Path) -> Vec<Point> {
    let base = Point {
        model: model.display().to_string(),
        isa: cfg.isa.to_string(),
        tile: cfg.tile.map(|t| t.to_string()).unwrap_or_default(),
        numa: cfg.numa.to_string(),
        pin: cfg.pin.to_string(),
        ..Point::default()
    };
    grid::expand(
        base,
        &[
            Axis::Batch(cfg.batch.clone()),
            Axis::Ubatch(cfg.ubatch.clone()),
            Axis::TypeK(cfg.ctk.clone()),
            Axis::TypeV(cfg.ctv.clone()),
            Axis::Threads(cfg.threads.clone()),
            Axis::Test(cfg.tests.clone()),
            Axis::Backend(grid::backends(&cfg.backends, &cfg.ngl)),
        ],
    )
}

/// Refuses, before anything runs, a configuration whose context the engine would refuse:
/// longer than the engine's limit or larger than the memory available now. The message
/// names the flag value, the model and the sizes.
fn check_contexts(cfg: &Config, path: &std::path::Path, model: &Model) -> Result<()> {
    for p in points(cfg, path) {
        p.context_params().validate(&model.hp).map_err(|e| {
            let (np, ng) = (p.test.n_prompt, p.test.n_gen);
            let flag = match (np, ng) {
                (0, g) => format!("-n {g}"),
                (p, 0) => format!("-p {p}"),
                (p, g) => format!("-pg {p},{g}"),
            };
            anyhow::anyhow!("{flag} on {}: {e}", path.display())
        })?;
    }
    Ok(())
}
