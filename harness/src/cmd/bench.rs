//! `tessera bench`: llama-bench's flags (names, defaults and help as llama-bench has them),
//! read and checked here into a [`bench::Config`], every message naming its flag, in the
//! order that keeps a bad flag cheap (no model is synthesised before the flags are good);
//! the runner itself is [`bench::run`].

use std::path::PathBuf;

use anyhow::{Result, bail};
use tessera_engine::affinity::{self, PinPolicy};
use tessera_engine::numa::NumaPolicy;
use tessera_engine::{Backend, KvType};

use crate::bench::{self, Config, DEFAULT_BATCH, DEFAULT_NGL, DEFAULT_UBATCH};
use crate::cli::{
    BATCH, THREADS, TOKENS, count_in, counts_or, default_threads, kernels_arg, list_or,
};
use crate::export::OutputFormat;
use crate::grid::Test;

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

impl Config {
    /// Resolves and checks every flag, before any work (see the module doc for the order).
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
}

pub fn run_cli(a: &Args) -> Result<bool> {
    let cfg = Config::from_args(a)?;
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    bench::run(&cfg, &mut lock)
}
