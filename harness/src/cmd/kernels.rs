//! `tessera kernels`: matmul micro-benchmarks per ISA × tile × weight shape × tokens.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, bail};
use clap::Parser;
use half::f16;
use serde::Serialize;
use tessera_engine::model::{Store, Weight};
use tessera_engine::pool::{ThreadPool, split_range};
use tessera_engine::rng::Rng;
use tessera_engine::synth::Preset;
use tessera_kernels::quant::{BlockQ4_0, BlockQ8_0, q4_0, q8_0};
use tessera_kernels::{ActBuf, Isa, IsaRequest, Kernels, OutMat, TileConfig};

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
    /// Timed repetitions per row (best and median reported).
    #[arg(short = 'r', long, default_value_t = 5, value_parser = crate::cli::reps_arg)]
    pub reps: usize,
    /// Output: md or json.
    #[arg(short = 'o', long, default_value = "md")]
    pub output: String,
    /// Threads, 1 to 1024 (default: available parallelism).
    #[arg(short = 't', long, value_parser = crate::cli::threads_arg)]
    pub threads: Option<usize>,
    /// Skip measuring bandwidth and peak rates (no roofline %).
    #[arg(long)]
    pub no_measure: bool,
}

/// One measured row.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub isa: String,
    /// The ISA whose kernel really ran (AMX hands GEMV to its fallback).
    pub ran_isa: String,
    pub kernel: String,
    /// The weight layout the kernel ran on: `plain`, or the layout the table repacks into
    /// at load (`x8`, `x16`), exactly as the engine runs it.
    pub layout: String,
    pub tile: String,
    pub emulated: bool,
    pub weight: String,
    pub ty: String,
    pub n: usize,
    pub k: usize,
    pub m: usize,
    pub threads: usize,
    pub best_s: f64,
    pub median_s: f64,
    /// 2·m·n·k per second at the best time, 1e9 units (GOP/s for integer kernels).
    pub gflops: f64,
    /// Weight bytes per second at the best time, 1e9 units.
    pub gbps: f64,
    /// % of measured read bandwidth (GEMV) or of peak compute (GEMM); none when emulated
    /// or not measured.
    pub roofline_pct: Option<f64>,
}

/// Weight shapes (name, n, k) of one layer plus the output head.
pub fn shapes(
    n_embd: usize,
    n_embd_kv: usize,
    n_ff: usize,
    n_vocab: usize,
) -> Vec<(&'static str, usize, usize)> {
    vec![
        ("attn_q", n_embd, n_embd),
        ("attn_k", n_embd_kv, n_embd),
        ("attn_v", n_embd_kv, n_embd),
        ("attn_o", n_embd, n_embd),
        ("ffn_gate", n_ff, n_embd),
        ("ffn_up", n_ff, n_embd),
        ("ffn_down", n_embd, n_ff),
        ("output", n_vocab, n_embd),
    ]
}

fn model_shapes(a: &Args) -> Result<Vec<(&'static str, usize, usize)>> {
    if let Some(p) = &a.preset {
        let p: Preset = p.parse()?;
        let s = p.shape();
        let kv = s.head_dim() * s.n_head_kv;
        return Ok(shapes(s.n_embd, kv, s.n_ff, s.n_vocab));
    }
    let path = match &a.model {
        Some(p) => {
            // By stat: a FIFO or device is refused without being opened.
            tessera_engine::gguf::check_regular_file(p).map_err(|e| anyhow::anyhow!("-m: {e}"))?;
            p.clone()
        }
        None => crate::cache::default_model()?,
    };
    let m = tessera_engine::Model::load(&path).map_err(|e| anyhow::anyhow!("-m: {e}"))?;
    let h = &m.hp;
    Ok(shapes(h.n_embd, h.n_embd_kv(), h.n_ff, h.n_vocab))
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

/// Most tokens of one micro-benchmark row: activations and output of `m` rows of the
/// widest matrix must fit in memory without a second thought (65536 × 32000 f32 outputs are
/// 8 GiB already).
const MAX_M: usize = 65536;

fn parse_tokens(s: &str) -> Result<Vec<usize>> {
    s.split(',')
        .map(|t| {
            crate::cli::count_in(t, &(1..=MAX_M), "tokens")
                .map_err(|hint| anyhow::anyhow!("--m value '{t}': {hint} (e.g. 1,64,512)"))
        })
        .collect()
}

/// Weights in one of the benchmarked formats.
/// Random weights of type `ty` in the engine's own owned storage.
fn make_weight(name: &str, ty: &str, w: &[f32], n: usize, k: usize) -> Weight {
    let store = match ty {
        "f32" => Store::F32(w.to_vec()),
        "f16" => Store::F16(w.iter().map(|&v| f16::from_f32(v)).collect()),
        "q8_0" => {
            let mut b = vec![BlockQ8_0::default(); w.len() / 32];
            q8_0::quantize_row(w, &mut b);
            Store::Q8_0(b)
        }
        _ => {
            let mut b = vec![BlockQ4_0::default(); w.len() / 32];
            q4_0::quantize_row(w, &mut b);
            Store::Q4_0(b)
        }
    };
    Weight {
        name: name.to_string(),
        store,
        n,
        k,
    }
}

/// `n` uniform values in [-1, 1) from the engine's deterministic generator.
fn uniform(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.next_f32() * 2.0 - 1.0).collect()
}

fn list() -> String {
    let mut s = String::new();
    for isa in Isa::available() {
        let d = isa.default_tile();
        let tiles: Vec<String> = isa
            .valid_tiles()
            .into_iter()
            .map(|t| {
                if t == d {
                    format!("{t}*")
                } else {
                    t.to_string()
                }
            })
            .collect();
        let emu = if isa == Isa::AmxEmu {
            " (emulated)"
        } else {
            ""
        };
        s.push_str(&format!("{}{emu}: {}\n", isa.name(), tiles.join(" ")));
    }
    s.push_str("* = default tile\n");
    s
}

/// Measured roofline inputs: read GB/s and peak int8 / f32 rates at the thread count used.
struct Roof {
    read_gbps: f64,
    int8_gops: f64,
    f32_gflops: f64,
}

fn measure_roof(threads: usize) -> Roof {
    use crate::probe::measure;
    // 4M 8-byte elements per array (32 MiB) is past the last-level cache of common CPUs
    // while keeping the measurement well under a second.
    let bw = measure::bandwidth(4 << 20, 3, &[threads]);
    let read = bw.first().map(|b| b.read_gbps).unwrap_or(0.0);
    let p = measure::peak(threads, 0.25);
    let one = threads <= 1;
    Roof {
        read_gbps: read,
        int8_gops: if one { p.int8_gops_1 } else { p.int8_gops_all },
        f32_gflops: if one {
            p.f32_gflops_1
        } else {
            p.f32_gflops_all
        },
    }
}

/// Runs the benchmark grid described by `a`.
pub fn run(a: &Args) -> Result<Vec<Row>> {
    if !matches!(a.ty.as_str(), "q4_0" | "q8_0" | "f16" | "f32") {
        bail!(
            "--type '{}' is not valid; valid: q4_0, q8_0, f16, f32",
            a.ty
        );
    }
    if a.reps == 0 {
        bail!("-r 0 is not valid; repetitions must be at least 1");
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
    let shapes = model_shapes(a)?;
    for &(name, _, k) in &shapes {
        if k % 32 != 0 {
            bail!("weight {name} has k={k}, not a multiple of 32; cannot benchmark it");
        }
    }
    let roof = (!a.no_measure).then(|| measure_roof(threads));
    let pool = ThreadPool::new(threads).map_err(|e| anyhow::anyhow!("-t {threads}: {e}"))?;
    let mut rng = Rng::new(0x7e55e7a);
    let mut rows = Vec::new();
    for &(name, n, k) in &shapes {
        let w = make_weight(name, &a.ty, &uniform(&mut rng, n * k), n, k);
        let plain = w.mat();
        // Each table times the layout the engine would run: its load-time repack, if any.
        let packs: Vec<_> = plans
            .iter()
            .map(|(_, _, kern)| kern.repack([plain]))
            .collect();
        let w_bytes = plain.ty().row_bytes(k as u64).unwrap_or(0) * n as u64;
        let kind = plain.act_kind();
        for &m in &tokens {
            let x = uniform(&mut rng, m * k);
            let mut act = ActBuf::default();
            act.convert(kind, &x, k);
            let acts = act.view(kind, &x);
            let mut out = vec![0.0f32; m * n];
            for ((isa, tile, kernels), packed) in plans.iter().zip(&packs) {
                let wm = packed.view(plain);
                let layout = if packed.is_empty() {
                    "plain"
                } else {
                    packed.layout().name()
                };
                kernels.reset_record();
                let kern = kernels.matmul("bench", &wm, m);
                let used = kernels.record().pop();
                let ran = used.as_ref().map_or(*isa, |u| u.isa);
                let kname = used.map(|u| u.kernel.to_string()).unwrap_or_default();
                let ran_isa = ran.name().to_string();
                let outm = OutMat::new(&mut out, m, n);
                let align = kern.tile.n;
                let once = || {
                    let t0 = Instant::now();
                    pool.run(&|tid, nth| {
                        let cols = split_range(n, nth, tid, align);
                        // SAFETY: split_range gives each thread a disjoint column range
                        // within n; the activations were converted to `act_kind` for m rows.
                        unsafe { kern.run(&wm, acts, &outm, cols) };
                    });
                    t0.elapsed().as_secs_f64()
                };
                once(); // warm-up: page in weights, wake the pool
                let mut times: Vec<f64> = (0..a.reps).map(|_| once()).collect();
                times.sort_by(|x, y| x.total_cmp(y));
                let best = times[0].max(1e-9);
                let median = times[times.len() / 2];
                let gflops = 2.0 * (m * n * k) as f64 / best / 1e9;
                let gbps = w_bytes as f64 / best / 1e9;
                // Only the AMX emulation is emulated; its GEMV runs the real fallback ISA.
                let emulated = ran == Isa::AmxEmu;
                let int = matches!(a.ty.as_str(), "q4_0" | "q8_0");
                let roofline_pct = match &roof {
                    Some(r) if !emulated => {
                        let (got, lim) = if m == 1 {
                            (gbps, r.read_gbps)
                        } else if int {
                            (gflops, r.int8_gops)
                        } else {
                            (gflops, r.f32_gflops)
                        };
                        (lim > 0.0).then(|| 100.0 * got / lim)
                    }
                    _ => None,
                };
                rows.push(Row {
                    isa: isa.name().to_string(),
                    ran_isa,
                    kernel: kname,
                    layout: layout.to_string(),
                    tile: if m == 1 {
                        kern.tile.to_string()
                    } else {
                        tile.to_string()
                    },
                    emulated,
                    weight: name.to_string(),
                    ty: a.ty.clone(),
                    n,
                    k,
                    m,
                    threads,
                    best_s: best,
                    median_s: median,
                    gflops,
                    gbps,
                    roofline_pct,
                });
            }
        }
    }
    Ok(rows)
}

/// Markdown table of the rows.
pub fn markdown(rows: &[Row]) -> String {
    let mut s = String::from(
        "| isa | kernel | layout | tile | weight | n | k | m | best ms | median ms | GFLOP/s | GB/s | roofline % |\n\
         |---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let isa = if r.emulated {
            format!("{} (emulated)", r.isa)
        } else {
            r.isa.clone()
        };
        let pct = r
            .roofline_pct
            .map_or("-".to_string(), |p| format!("{p:.1}"));
        s.push_str(&format!(
            "| {isa} | {} | {} | {} | {} | {} | {} | {} | {:.3} | {:.3} | {:.2} | {:.2} | {pct} |\n",
            r.kernel,
            r.layout,
            r.tile,
            r.weight,
            r.n,
            r.k,
            r.m,
            r.best_s * 1e3,
            r.median_s * 1e3,
            r.gflops,
            r.gbps
        ));
    }
    s
}

pub fn run_cli(a: &Args) -> Result<bool> {
    if !matches!(a.output.as_str(), "md" | "json") {
        bail!("-o '{}' is not valid; valid: md, json", a.output);
    }
    if a.list {
        print!("{}", list());
        return Ok(true);
    }
    let rows = run(a)?;
    if a.output == "json" {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print!("{}", markdown(&rows));
    }
    Ok(true)
}
