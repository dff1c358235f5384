//! `tessera bench`: llama-bench's flags and semantics on the built-in engine. Comma lists
//! form a cartesian product; each configuration gets one warm-up and `-r` timed runs; rows
//! stream out as they finish in md, csv, json or jsonl. The product and each row's starting
//! fields come from [`crate::grid`], shared with `tessera sweep`.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use tessera_engine::affinity::{self, PinPolicy};
use tessera_engine::bench::{TimedHook, run_test_with_hook};
use tessera_engine::numa::NumaPolicy;
use tessera_engine::{Backend, Context, KvType, Model};
use tessera_kernels::{IsaRequest, Kernels, TileConfig};

use crate::cli::{
    BATCH, THREADS, TOKENS, count_in, counts_or, default_threads, kernels_arg, list_or,
};
use crate::counters::{CounterSet, Peaks, Scope};
use crate::export::{OutputFormat, exporter};
use crate::grid::{self, Axis, Point, Test};
use crate::results::{self, BenchRow, KernelUse, Status};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Model file(s) (GGUF); default: the built-in synthetic 150m Q4_0 model.
    #[arg(short = 'm', long = "model")]
    pub model: Vec<String>,
    /// Prompt lengths for pp tests (comma list; 0 disables).
    #[arg(short = 'p', long = "n-prompt")]
    pub n_prompt: Vec<String>,
    /// Generation lengths for tg tests (comma list; 0 disables).
    #[arg(short = 'n', long = "n-gen")]
    pub n_gen: Vec<String>,
    /// Prompt and generation lengths "PP,TG" for a pp+tg test under one timer (repeatable).
    #[arg(long = "pg")]
    pub pg: Vec<String>,
    /// Logical batch sizes (comma list).
    #[arg(short = 'b', long = "batch-size")]
    pub batch: Vec<String>,
    /// Micro-batch sizes (comma list).
    #[arg(long = "ubatch-size", visible_alias = "ub")]
    pub ubatch: Vec<String>,
    /// Timed repetitions per test (1 to 1000000).
    #[arg(short = 'r', long = "repetitions", default_value_t = 5, value_parser = crate::cli::reps_arg)]
    pub reps: usize,
    /// Thread counts (comma list); default: physical cores.
    #[arg(short = 't', long = "threads")]
    pub threads: Vec<String>,
    /// KV cache K types (comma list of f16, f32).
    #[arg(long = "cache-type-k", visible_alias = "ctk")]
    pub ctk: Vec<String>,
    /// KV cache V types (comma list of f16, f32).
    #[arg(long = "cache-type-v", visible_alias = "ctv")]
    pub ctv: Vec<String>,
    /// Kernel ISA: auto or a name (see `tessera kernels --list` once it exists).
    #[arg(long = "isa", default_value = "auto")]
    pub isa: String,
    /// Matmul tile MxNxK; default: the ISA's default.
    #[arg(long = "tile")]
    pub tile: Option<String>,
    /// Output format: md, csv, json, jsonl.
    #[arg(short = 'o', long = "output", default_value = "md")]
    pub output: String,
    /// Seed of the random prompt and generation tokens.
    #[arg(long = "seed", default_value_t = 42)]
    pub seed: u64,
    /// NUMA memory policy for weights and buffers: none, local, interleave, bind:N.
    #[arg(long = "numa", default_value = "none")]
    pub numa: String,
    /// Worker thread pinning: none, compact, scatter, or a CPU list such as 0,2 or 0-3.
    #[arg(long = "pin", default_value = "none")]
    pub pin: String,
    /// Counters over the timed repetitions: none, default, or a comma list (cycles,
    /// instructions, task-clock, ...). Unavailable ones are null with a reason.
    #[arg(long = "counters", default_value = "none")]
    pub counters: String,
    /// Backends (comma list of cpu, cuda). cuda offloads the last -ngl layers to GPU 0; each
    /// cuda configuration runs in a child process, so a GPU fault becomes a `fault` row.
    #[arg(long = "backend", default_value = "cpu")]
    pub backend: Vec<String>,
    /// Layers on the GPU with --backend cuda (comma list; llama.cpp's -ngl): the last N
    /// layers; more than the layer count also offloads the output head; 0 = all on the CPU.
    #[arg(long = "n-gpu-layers", visible_alias = "ngl")]
    pub ngl: Vec<String>,
    /// Run cuda configurations in this process (what the child process itself is given).
    #[arg(long = "no-isolate", hide = true)]
    pub no_isolate: bool,
    /// Sample the timed repetitions with perf_event (cycles, or cpu-clock without a PMU):
    /// top symbols in each row, folded stacks and a flamegraph SVG per row in --profile-dir.
    #[arg(long = "profile")]
    pub profile: bool,
    /// Directory of --profile's files; row paths are relative to it (default:
    /// results/runs/profile-<UTC time>-<pid>).
    #[arg(long = "profile-dir", requires = "profile")]
    pub profile_dir: Option<PathBuf>,
    /// File name (no extension) of the profile of the first row, relative to --profile-dir
    /// (what a sweep gives its child).
    #[arg(long = "profile-name", hide = true, requires = "profile")]
    pub profile_name: Option<String>,
}

/// Flags resolved and validated together, before anything runs.
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

// llama-bench's defaults.
const DEFAULT_BATCH: usize = grid::DEFAULT_BATCH;
const DEFAULT_UBATCH: usize = 512;
const DEFAULT_NGL: usize = 99;

impl Config {
    pub fn from_args(a: &Args) -> Result<Self> {
        // Cheap checks first: a bad flag must not cost a model synthesis.
        let output: OutputFormat = a.output.parse().map_err(|e| anyhow::anyhow!("-o: {e}"))?;
        // The ISA and tile are checked against this CPU before any work.
        let (isa, tile) = kernels_arg(&a.isa, a.tile.as_deref())?;
        let numa: NumaPolicy = a.numa.parse().map_err(|e| anyhow::anyhow!("--numa: {e}"))?;
        tessera_engine::numa::validate(&numa, &tessera_engine::numa::online_nodes())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let pin: PinPolicy = a.pin.parse().map_err(|e| anyhow::anyhow!("--pin: {e}"))?;
        affinity::plan(&pin, 1, &affinity::topology()).map_err(|e| anyhow::anyhow!("{e}"))?;
        let counters = crate::counters::parse_list(&a.counters)?;
        if let Some(n) = &a.profile_name {
            crate::profile::valid_name(n).map_err(|e| anyhow::anyhow!("--profile-name: {e}"))?;
        }
        let profile = a.profile.then(|| crate::profile::OutDir {
            dir: a
                .profile_dir
                .clone()
                .unwrap_or_else(crate::profile::OutDir::default_dir),
            name: a.profile_name.clone(),
        });
        let mut backends: Vec<Backend> = list_or("--backend", &a.backend, &[Backend::Cpu])?;
        backends.dedup();
        let ngl: Vec<usize> = list_or("-ngl", &a.ngl, &[DEFAULT_NGL])?;
        // A machine without a usable GPU is refused before any work, in one line.
        let gpu_info = if backends.contains(&Backend::Cuda) {
            let p = tessera_engine::cuda::probe()
                .map_err(|r| anyhow::anyhow!("no CUDA device: {r}"))?;
            if p.devices.is_empty() {
                bail!("no CUDA device: the driver reports no CUDA-capable device");
            }
            if let Err(r) = &p.nvrtc {
                bail!("no CUDA device: {r}");
            }
            tessera_engine::cuda::gpu_info_string(&p)
        } else {
            String::new()
        };
        // Counts are bounded at parse time (see `cli`): a row's u32 fields hold them exactly,
        // and a context's size is checked against memory once the model is known (`run`).
        let n_prompt = counts_or("-p", &a.n_prompt, &[512], TOKENS, "tokens")?;
        let n_gen = counts_or("-n", &a.n_gen, &[128], TOKENS, "tokens")?;
        let mut tests = Vec::new();
        tests.extend(n_prompt.iter().filter(|&&p| p > 0).map(|&p| Test {
            n_prompt: p,
            n_gen: 0,
        }));
        tests.extend(n_gen.iter().filter(|&&g| g > 0).map(|&g| Test {
            n_prompt: 0,
            n_gen: g,
        }));
        for pg in &a.pg {
            let bad = |why: String| anyhow::anyhow!("-pg: invalid value '{pg}': {why}");
            let v = pg
                .split(',')
                .map(|x| count_in(x, &TOKENS, "tokens"))
                .collect::<std::result::Result<Vec<usize>, String>>()
                .map_err(bad)?;
            match v[..] {
                [p, g] if p + g > *TOKENS.end() => {
                    return Err(bad(format!(
                        "{} tokens in all; a context holds at most {}",
                        p + g,
                        TOKENS.end()
                    )));
                }
                [p, g] if p > 0 || g > 0 => tests.push(Test {
                    n_prompt: p,
                    n_gen: g,
                }),
                _ => bail!("-pg: '{pg}' is not valid; give two numbers PP,TG such as 512,128"),
            }
        }
        if tests.is_empty() {
            bail!("no tests: -p, -n and -pg are all empty or 0");
        }
        let batch = counts_or("-b", &a.batch, &[DEFAULT_BATCH], BATCH, "tokens")?;
        let ubatch = counts_or("-ub", &a.ubatch, &[DEFAULT_UBATCH], BATCH, "tokens")?;
        let threads = counts_or("-t", &a.threads, &[default_threads()], THREADS, "threads")?;
        let ctk = list_or("-ctk", &a.ctk, &[KvType::F16])?;
        let ctv = list_or("-ctv", &a.ctv, &[KvType::F16])?;
        let models = if a.model.is_empty() {
            vec![crate::cache::default_model()?]
        } else {
            let mut v = Vec::new();
            for m in &a.model {
                for p in m.split(',') {
                    let p = PathBuf::from(p);
                    // By stat: a FIFO or device is refused without being opened.
                    tessera_engine::gguf::check_regular_file(&p)
                        .map_err(|e| anyhow::anyhow!("-m: {e}"))?;
                    v.push(p);
                }
            }
            v
        };
        Ok(Self {
            models,
            tests,
            batch,
            ubatch,
            threads,
            ctk,
            ctv,
            reps: a.reps,
            isa,
            tile,
            output,
            seed: a.seed,
            numa,
            pin,
            counters,
            backends,
            ngl,
            isolate: !a.no_isolate,
            gpu_info,
            profile,
        })
    }

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
                let template = measure_template(cfg, model, &point, &cpu_info, &kernels, None);
                crate::gpu::run_child(&child_args(cfg, &point, seq), &template)
            } else {
                vec![measure(cfg, &mut *model, &point, &cpu_info, seq)]
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

/// The `tessera bench` arguments that measure exactly one point, in a child process; `seq`
/// is the row's place in this run (its profile's name).
fn child_args(cfg: &Config, p: &Point, seq: usize) -> Vec<String> {
    let mut a: Vec<String> = vec!["bench".into(), "-m".into(), p.model.clone()];
    let (np, ng) = (p.test.n_prompt, p.test.n_gen);
    if np > 0 && ng > 0 {
        a.extend([
            "-p".into(),
            "0".into(),
            "-n".into(),
            "0".into(),
            "--pg".into(),
            format!("{np},{ng}"),
        ]);
    } else {
        a.extend(["-p".into(), np.to_string(), "-n".into(), ng.to_string()]);
    }
    a.extend([
        "-b".into(),
        p.n_batch.to_string(),
        "--ubatch-size".into(),
        p.ubatch.to_string(),
        "-t".into(),
        p.threads.to_string(),
        "--cache-type-k".into(),
        p.type_k.name().into(),
        "--cache-type-v".into(),
        p.type_v.name().into(),
        "-r".into(),
        cfg.reps.to_string(),
        "--isa".into(),
        cfg.isa.to_string(),
        "--seed".into(),
        cfg.seed.to_string(),
        "--numa".into(),
        cfg.numa.to_string(),
        "--pin".into(),
        cfg.pin.to_string(),
        "--counters".into(),
        if cfg.counters.is_empty() {
            "none".into()
        } else {
            cfg.counters.join(",")
        },
        "--backend".into(),
        p.backend.name().into(),
        "--n-gpu-layers".into(),
        p.ngl.to_string(),
        "-o".into(),
        "jsonl".into(),
        "--no-isolate".into(),
    ]);
    if let Some(t) = cfg.tile {
        a.extend(["--tile".into(), t.to_string()]);
    }
    if let Some(prof) = &cfg.profile {
        let test = p.test.name();
        a.extend([
            "--profile".into(),
            "--profile-dir".into(),
            prof.dir.display().to_string(),
            "--profile-name".into(),
            prof.name_for(seq, &test, p.threads as u32),
        ]);
    }
    a
}

/// The row of a point before it is measured: the grid's starting row ([`grid::row`]) plus
/// what bench knows beyond the point: the loaded model, the GPUs, the resolved kernels.
fn measure_template(
    cfg: &Config,
    model: &Model,
    p: &Point,
    cpu_info: &str,
    kernels: &Kernels,
    choice: Option<&tessera_engine::calibrate::Choice>,
) -> BenchRow {
    BenchRow {
        gpu_info: if p.backend == Backend::Cuda {
            cfg.gpu_info.clone()
        } else {
            String::new()
        },
        model_type: model.type_name(),
        model_size: model.size_bytes,
        model_n_params: model.n_params,
        isa: kernels.isa().name().to_string(),
        isa_reason: choice.map(|c| c.reason.clone()).unwrap_or_default(),
        tile: kernels.tile().to_string(),
        ..grid::row(p, cpu_info)
    }
}

fn measure(cfg: &Config, model: &mut Model, p: &Point, cpu_info: &str, seq: usize) -> BenchRow {
    // `auto` is resolved by calibration on this model and thread count (cached per machine).
    // The ISA and tile were validated in Config::from_args, so what can fail here is the
    // calibration's thread pool: a row with status error, like a failed context.
    let (kernels, choice) =
        match tessera_engine::calibrate::kernels_for(cfg.isa, cfg.tile, model, p.threads) {
            Ok(k) => k,
            Err(e) => {
                let kernels =
                    Kernels::new(cfg.isa, cfg.tile).expect("validated in Config::from_args");
                let mut row = measure_template(cfg, model, p, cpu_info, &kernels, None);
                row.status = Status::Error;
                row.error = Some(e.to_string());
                return row;
            }
        };
    // CPU points: the weights are repacked in place for this table, resident once. CUDA
    // points keep the plain layout the GPU uploads; their CPU layers are repacked by the
    // context beside the model.
    let n_layer = model.hp.n_layer;
    match p.backend {
        Backend::Cpu => model.repack_for(&kernels, n_layer, true),
        Backend::Cuda => model.repack_for(&kernels, 0, false),
    }
    let model = &*model;
    let mut row = measure_template(cfg, model, p, cpu_info, &kernels, choice.as_ref());
    let topo = affinity::topology();
    let cpus = affinity::plan(&cfg.pin, p.threads, &topo).unwrap_or(None);
    row.pin = cfg.pin.to_string();
    row.cpus = cpus
        .as_ref()
        .map(|c| {
            c.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    tessera_engine::pool::set_default_pinning(cpus);
    // Opened before the context so the pool's threads, created with it, inherit them.
    let mut counters =
        (!cfg.counters.is_empty()).then(|| CounterSet::open(&cfg.counters, Scope::Region));
    // Likewise the sampling events, enabled only during the timed repetitions.
    let session = cfg.profile.as_ref().map(|_| {
        crate::profile::Session::start(
            &crate::profile::Settings::default(),
            crate::profile::Target::This,
        )
    });
    let result = Context::new(model, &kernels, p.context_params()).and_then(|mut ctx| {
        let mut hook = TimedRegion {
            counters: counters.as_mut(),
            profile: session.as_ref().and_then(|s| s.as_ref().ok()),
        };
        run_test_with_hook(&mut ctx, p.test.spec(), cfg.reps, cfg.seed, &mut hook)
    });
    tessera_engine::pool::set_default_pinning(None);
    match result {
        Ok(samples) => {
            let s = results::summarize(&samples, p.test.n_tokens() as u64);
            (
                row.avg_ns,
                row.stddev_ns,
                row.avg_ts,
                row.stddev_ts,
                row.samples_ts,
            ) = s;
            row.samples_ns = samples;
        }
        Err(e) => {
            row.status = Status::Error;
            row.error = Some(e.to_string());
            // A CUDA error ("GET_ROWS failed: ...") is a fault, classified as bisect does.
            crate::gpu::classify_row_error(&mut row);
        }
    }
    row.kernels_used = kernels
        .record()
        .into_iter()
        .map(|u| KernelUse {
            op: u.op.to_string(),
            isa: u.isa.name().to_string(),
            kernel: u.kernel.to_string(),
            tile: u.tile.map(|t| t.to_string()).unwrap_or_default(),
            calls: u.calls,
            ns: u.ns,
            flop: u.flop,
            bytes: u.bytes,
            ..KernelUse::default()
        })
        .collect();
    if let Some(set) = &mut counters {
        row.counters = set.read();
        row.counters_scope = set.scope().name().to_string();
    }
    if let (Some(out), Some(session)) = (&cfg.profile, session) {
        let name = out.name_for(seq, &row.test, row.n_threads);
        let rec = session.map(crate::profile::Session::finish);
        crate::profile::apply(
            &mut row,
            &crate::profile::conclude(rec, &out.dir, &name),
            false,
        );
    }
    row.derived = crate::counters::derive(&row, &Peaks::default());
    row
}

/// Counts and samples exactly the timed repetitions.
struct TimedRegion<'a> {
    counters: Option<&'a mut CounterSet>,
    profile: Option<&'a crate::profile::Session>,
}

impl TimedHook for TimedRegion<'_> {
    fn start(&mut self) {
        if let Some(c) = &mut self.counters {
            c.enable();
        }
        if let Some(p) = self.profile {
            p.enable();
        }
    }
    fn stop(&mut self) {
        if let Some(p) = self.profile {
            p.disable();
        }
        if let Some(c) = &mut self.counters {
            c.disable();
        }
    }
}

pub fn run_cli(a: &Args) -> Result<bool> {
    let cfg = Config::from_args(a)?;
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    run(&cfg, &mut lock)
}
