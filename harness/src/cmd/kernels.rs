//! `tessera kernels`: the edge of [`crate::microbench`], matmul micro-benchmarks per ISA ×
//! tile × weight shape × tokens. The flags become a [`microbench::Config`], checked in the
//! order -o, (--list lists and stops), --type, -r, --m, -t, --isa × --tile (each table
//! built, so an ISA this CPU lacks or a tile it cannot do fails before any work), the
//! model's shapes; then [`microbench::run`] times and the rows are printed.
//!
//! `--isa`, `--tile` and `--m` keep parsers of their own rather than `cli::parse_list` /
//! `cli::counts_or`: their error texts ("--m value 'x': ... (e.g. 1,64,512)", the ISA's or
//! tile's own message without a flag prefix) differ from those helpers' and are matched by
//! tests and scripts; `--m` shares `cli::count_in` for the range check.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Parser;
use tessera_kernels::{Isa, IsaRequest, Kernels, TileConfig};

use crate::microbench::{self, Config, MAX_M, TYPES, operands};

#[derive(Parser, Debug)]
pub struct Args {
    /// List each available ISA's valid tiles (default marked with `*`) and exit.
    #[arg(long)]
    pub list: bool,
    /// ISAs: all (available ones), auto, or NAME[,NAME].
    #[arg(long, default_value = "auto")]
    pub isa: String,
    /// Tiles: all, default, or MxNxK[,MxNxK].
    #[arg(long, default_value = "default")]
    pub tile: String,
    /// Model file whose weight shapes are benchmarked (default: the built-in model).
    #[arg(short = 'm', long = "model")]
    pub model: Option<PathBuf>,
    /// Take the shapes from a synth preset instead: tiny, 150m, 1b, 8b.
    #[arg(long, conflicts_with = "model")]
    pub preset: Option<String>,
    /// Weight type: q4_0, q8_0, f16, f32 (weights are random).
    #[arg(long = "type", default_value = "q4_0")]
    pub ty: String,
    /// Token counts, comma separated (1 = GEMV), each 1 to 65536.
    #[arg(long = "m", default_value = "1,64,512")]
    pub tokens: String,
    /// Timed repetitions per row, at least (best and median reported); rows of short calls
    /// repeat until 30 ms are timed, in rounds interleaved with the other rows.
    #[arg(short = 'r', long, default_value_t = 5, value_parser = crate::cli::reps_arg)]
    pub reps: usize,
    /// Output: md or json.
    #[arg(short = 'o', long, default_value = "md")]
    pub output: String,
    /// Threads, 1 to 1024 (default: available parallelism).
    #[arg(short = 't', long, value_parser = crate::cli::threads_arg)]
    pub threads: Option<usize>,
    /// No roofline: neither read the cached probe's roofline nor measure one (no roofline %).
    #[arg(long)]
    pub no_measure: bool,
}

fn parse_isas(s: &str) -> Result<Vec<IsaRequest>> {
    match s {
        "all" => Ok(Isa::available()
            .into_iter()
            .map(IsaRequest::Named)
            .collect()),
        _ => s
            .split(',')
            .map(|x| x.trim().parse::<IsaRequest>().map_err(anyhow::Error::from))
            .collect(),
    }
}

fn tiles_for(spec: &str, isa: Isa) -> Result<Vec<TileConfig>> {
    match spec {
        "all" => Ok(isa.valid_tiles()),
        "default" => Ok(vec![isa.default_tile()]),
        _ => spec
            .split(',')
            .map(|t| t.parse::<TileConfig>().map_err(anyhow::Error::from))
            .collect(),
    }
}

fn parse_tokens(s: &str) -> Result<Vec<usize>> {
    s.split(',')
        .map(|t| {
            crate::cli::count_in(t, &(1..=MAX_M), "tokens")
                .map_err(|hint| anyhow::anyhow!("--m value '{t}': {hint} (e.g. 1,64,512)"))
        })
        .collect()
}

// `Config` is the domain's (`microbench::Config`); turning flags into it is this module's job.
impl Config {
    /// Every flag checked before any work, in the order they always were.
    pub fn from_args(a: &Args) -> Result<Config> {
        if !TYPES.contains(&a.ty.as_str()) {
            bail!(
                "--type '{}' is not valid; valid: {}",
                a.ty,
                TYPES.join(", ")
            );
        }
        let tokens = parse_tokens(&a.tokens)?;
        let threads = a.threads.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(tessera_engine::pool::MAX_THREADS)
        });
        // Validate every ISA × tile before any work, so a bad flag fails fast.
        let mut plans = Vec::new();
        for req in parse_isas(&a.isa)? {
            let isa = match req {
                IsaRequest::Auto => Isa::auto(),
                IsaRequest::Named(i) => i,
            };
            for tile in tiles_for(&a.tile, isa)? {
                let k = Kernels::new(req, Some(tile))?;
                plans.push((isa, tile, k));
            }
        }
        let shapes = operands::model_shapes(a.preset.as_deref(), a.model.as_deref())?;
        operands::check_shapes(&shapes)?;
        Ok(Config {
            ty: a.ty.clone(),
            reps: a.reps,
            tokens,
            threads,
            plans,
            shapes,
            roofline: !a.no_measure,
        })
    }
}

pub fn run_cli(a: &Args) -> Result<bool> {
    if !matches!(a.output.as_str(), "md" | "json") {
        bail!("-o '{}' is not valid; valid: md, json", a.output);
    }
    if a.list {
        print!("{}", microbench::list());
        return Ok(true);
    }
    let rows = microbench::run(&Config::from_args(a)?)?;
    if a.output == "json" {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print!("{}", microbench::markdown(&rows));
    }
    Ok(true)
}
