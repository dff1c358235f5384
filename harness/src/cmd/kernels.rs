//! `tessera kernels`: matmul micro-benchmarks per ISA × tile × weight shape × tokens.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use clap::Parser;
use half::f16;
use serde::Serialize;
use tessera_engine::model::{Store, Weight};
use tessera_engine::pool::{ThreadPool, split_range};
use tessera_engine::rng::Rng;
use tessera_engine::synth::Preset;
use tessera_kernels::quant::{BlockQ4_0, BlockQ8_0, q4_0, q8_0};
use tessera_kernels::{ActBuf, Acts, Isa, IsaRequest, Kernels, OutMat, TileConfig};

use crate::probe::{self, MeasureOpts, roofline::Roofline};

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
    /// Bytes one call touches: the weights in the layout the kernel ran on, the converted
    /// activations and the f32 output. The benchmark repeats the call, so this is what
    /// stays in cache (and what the call reads, for the roofline's flop/byte).
    pub working_set_bytes: u64,
    /// The roofline's rate for this row (`probe::roofline::Roofline::roof`), 1e9 ops/s;
    /// none when emulated or not measured.
    pub roof_gflops: Option<f64>,
    /// `gflops` as % of `roof_gflops`.
    pub roofline_pct: Option<f64>,
    /// What bounds the roof: "compute" or the memory level ("L2", "DRAM", ...).
    pub bound: Option<String>,
    /// The memory level the working set is served from at this thread count.
    pub level: Option<String>,
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

/// The roofline of the probe cached in tessera's cache directory (`probe.json`), measured
/// and written there when absent, so repeated runs share one roof. A cache that cannot be
/// written costs a warning and a measurement of this run's own.
fn roofline() -> Result<Roofline> {
    let here = probe::describe();
    let opts = MeasureOpts::default_for(&here);
    let dir = crate::cache::cache_dir();
    match probe::cached(&dir, opts) {
        Ok(p) => p
            .measured
            .and_then(|m| m.roofline)
            .with_context(|| format!("{}/probe.json has no roofline", dir.display())),
        Err(e) => {
            eprintln!("warning: {e:#}; measuring a roofline for this run only");
            Ok(probe::measure_roofline(&here, opts))
        }
    }
}

/// Bytes of converted activations.
fn act_bytes(a: Acts) -> u64 {
    (match a {
        Acts::F32(v) => std::mem::size_of_val(v),
        Acts::F16(v) => std::mem::size_of_val(v),
        Acts::Q8_0(v) => std::mem::size_of_val(v),
    }) as u64
}

/// Rounds a batch's rows are timed in, all rows in turn per round (see [`run`]).
const ROUNDS: usize = 6;
/// Seconds of timed calls a row gathers at least, over its rounds (within [`MAX_REPS`]): a
/// 10 µs GEMV runs 2000 times (in 6 rounds), enough for its best to be a quiet moment's.
const MIN_TIMED_S: f64 = 0.03;
/// Most timed calls of a row beyond `-r`.
const MAX_REPS: usize = 2000;

/// One row being timed: shape `si` × token count `mi` × table `pi`, the kernel the table
/// chose, and the times so far.
struct Cell {
    si: usize,
    mi: usize,
    pi: usize,
    ran: Isa,
    kname: String,
    kern: tessera_kernels::MatmulKernel,
    times: Vec<f64>,
}

/// One weight shape's operands: the weights, each table's repack of them, and per token
/// count the activations (f32 and converted) and an output.
struct ShapeData {
    name: &'static str,
    w: Weight,
    packs: Vec<tessera_kernels::matrix::Repacked>,
    inputs: Vec<(Vec<f32>, ActBuf)>,
    outs: Vec<Vec<f32>>,
}

/// Bytes the shapes of one batch may hold at once (weights with every table's repack,
/// activations, outputs): every shape of the small presets fits in one batch; a shape
/// larger than this is a batch of its own.
const BATCH_BYTES: u64 = 512 << 20;

/// `shapes` cut into consecutive batches of at most [`BATCH_BYTES`] of operands each: `ty`
/// weights once plain and once per table's repack, f32 and converted activations, f32
/// outputs.
fn batches<'s>(
    shapes: &'s [(&'static str, usize, usize)],
    ty: &str,
    tokens: &[usize],
    tables: usize,
) -> Vec<&'s [(&'static str, usize, usize)]> {
    let per_weight = match ty {
        "f32" => 4.0,
        "f16" => 2.0,
        "q8_0" => 34.0 / 32.0,
        _ => 18.0 / 32.0,
    };
    let bytes = |&(_, n, k): &(&str, usize, usize)| {
        let w = ((n * k) as f64 * per_weight) as u64 * (tables as u64 + 1);
        w + tokens
            .iter()
            .map(|&m| (m * (k * 6 + n * 4)) as u64)
            .sum::<u64>()
    };
    let mut out = Vec::new();
    let (mut start, mut held) = (0, 0u64);
    for (i, s) in shapes.iter().enumerate() {
        let b = bytes(s);
        if i > start && held + b > BATCH_BYTES {
            out.push(&shapes[start..i]);
            (start, held) = (i, 0);
        }
        held += b;
    }
    if start < shapes.len() {
        out.push(&shapes[start..]);
    }
    out
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
    let roofline = if a.no_measure {
        None
    } else {
        Some(roofline()?)
    };
    let pool = ThreadPool::new(threads).map_err(|e| anyhow::anyhow!("-t {threads}: {e}"))?;
    let mut rng = Rng::new(0x7e55e7a);
    let mut rows = Vec::new();
    for batch in batches(&shapes, &a.ty, &tokens, plans.len()) {
        let mut data = Vec::new();
        for &(name, n, k) in batch {
            let w = make_weight(name, &a.ty, &uniform(&mut rng, n * k), n, k);
            // Each table times the layout the engine would run: its load-time repack, if any.
            let packs = plans
                .iter()
                .map(|(_, _, kern)| kern.repack([w.mat()]))
                .collect();
            let kind = w.mat().act_kind();
            // Per token count: activations, and an output that the tables fill in turn.
            let inputs = tokens
                .iter()
                .map(|&m| {
                    let x = uniform(&mut rng, m * k);
                    let mut act = ActBuf::default();
                    act.convert(kind, &x, k);
                    (x, act)
                })
                .collect();
            let outs = tokens.iter().map(|&m| vec![0.0f32; m * n]).collect();
            data.push(ShapeData {
                name,
                w,
                packs,
                inputs,
                outs,
            });
        }
        // One cell per shape × token count × table, in row order.
        let mut cells = Vec::new();
        for (si, d) in data.iter().enumerate() {
            for (mi, &m) in tokens.iter().enumerate() {
                for (pi, (isa, _, kernels)) in plans.iter().enumerate() {
                    let wm = d.packs[pi].view(d.w.mat());
                    kernels.reset_record();
                    let kern = kernels.matmul("bench", &wm, m);
                    let used = kernels.record().pop();
                    cells.push(Cell {
                        si,
                        mi,
                        pi,
                        ran: used.as_ref().map_or(*isa, |u| u.isa),
                        kname: used.map(|u| u.kernel.to_string()).unwrap_or_default(),
                        kern,
                        times: Vec::new(),
                    });
                }
            }
        }
        let (views, mut outs): (Vec<_>, Vec<_>) = data
            .iter_mut()
            .map(|d| ((d.name, &d.w, &d.packs, &d.inputs), &mut d.outs))
            .unzip();
        let once = |c: &Cell, out: &mut [f32]| {
            let (_, w, packs, inputs) = views[c.si];
            let (m, n) = (tokens[c.mi], w.n);
            let plain = w.mat();
            let (x, act) = &inputs[c.mi];
            let acts = act.view(plain.act_kind(), x);
            let wm = packs[c.pi].view(plain);
            let outm = OutMat::new(out, m, n);
            let (kern, align) = (&c.kern, c.kern.tile.n);
            let t0 = Instant::now();
            pool.run(&|tid, nth| {
                let cols = split_range(n, nth, tid, align);
                // SAFETY: split_range gives each thread a disjoint column range within n;
                // the activations were converted to `act_kind` for m rows.
                unsafe { kern.run(&wm, acts, &outm, cols) };
            });
            t0.elapsed().as_secs_f64()
        };
        // Rounds over all cells of the batch: a row's calls are spread over the whole run,
        // so its best is a quiet moment's even when a neighbour takes the CPUs or the shared
        // cache for a while. Each round: one untimed call for short calls (the cell before
        // evicted this one's weights), then at least its share of `-r`, and short calls
        // until MIN_TIMED_S / ROUNDS is timed.
        let slice = MIN_TIMED_S / ROUNDS as f64;
        for round in 0..ROUNDS {
            let share = a.reps / ROUNDS + usize::from(round < a.reps % ROUNDS);
            for c in cells.iter_mut() {
                let out = &mut outs[c.si][c.mi];
                if c.times.last().is_none_or(|&t| t < slice) {
                    once(c, out);
                }
                let (mut k, mut timed) = (0, 0.0);
                while k < share || (timed < slice && k < MAX_REPS / ROUNDS) {
                    let t = once(c, out);
                    c.times.push(t);
                    timed += t;
                    k += 1;
                }
            }
        }
        for c in &mut cells {
            let (name, w, packs, inputs) = views[c.si];
            let (m, n, k) = (tokens[c.mi], w.n, w.k);
            let (isa, tile, _) = &plans[c.pi];
            let plain = w.mat();
            let packed = &packs[c.pi];
            let wm = packed.view(plain);
            let layout = if packed.is_empty() {
                "plain"
            } else {
                packed.layout().name()
            };
            let (x, act) = &inputs[c.mi];
            let times = &mut c.times;
            times.sort_by(|x, y| x.total_cmp(y));
            let best = times[0].max(1e-9);
            let median = times[times.len() / 2];
            let flop = 2.0 * (m * n * k) as f64;
            let gflops = flop / best / 1e9;
            let w_bytes = plain.ty().row_bytes(k as u64).unwrap_or(0) * n as u64;
            let gbps = w_bytes as f64 / best / 1e9;
            // Only the AMX emulation is emulated; its GEMV runs the real fallback ISA.
            let emulated = c.ran == Isa::AmxEmu;
            let int = matches!(a.ty.as_str(), "q4_0" | "q8_0");
            let working_set =
                wm.bytes() as u64 + act_bytes(act.view(plain.act_kind(), x)) + (m * n * 4) as u64;
            let ran_isa = c.ran.name().to_string();
            // The roof of the ISA whose kernel ran (amx-emu: none).
            let roof = roofline.as_ref().map(|r| {
                r.roof(
                    &ran_isa,
                    int,
                    flop,
                    working_set as f64,
                    working_set,
                    threads,
                )
            });
            let roof_gflops = roof.as_ref().map(|r| r.gflops).filter(|&g| g > 0.0);
            let roofline_pct = roof_gflops.map(|lim| 100.0 * gflops / lim);
            rows.push(Row {
                isa: isa.name().to_string(),
                ran_isa,
                kernel: std::mem::take(&mut c.kname),
                layout: layout.to_string(),
                tile: if m == 1 {
                    c.kern.tile.to_string()
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
                working_set_bytes: working_set,
                roof_gflops,
                roofline_pct,
                bound: roof.as_ref().map(|r| r.bound.clone()),
                level: roof.map(|r| r.level),
            });
        }
    }
    Ok(rows)
}

/// Markdown table of the rows.
pub fn markdown(rows: &[Row]) -> String {
    let mut s = String::from(
        "| isa | kernel | layout | tile | weight | n | k | m | best ms | median ms | GFLOP/s | GB/s | roofline % | bound |\n\
         |---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
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
        let bound = r.bound.as_deref().unwrap_or("-");
        s.push_str(&format!(
            "| {isa} | {} | {} | {} | {} | {} | {} | {} | {:.3} | {:.3} | {:.2} | {:.2} | {pct} | {bound} |\n",
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
