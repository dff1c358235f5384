//! The kernel micro-benchmark behind `tessera kernels`: each matmul kernel table (ISA ×
//! tile) timed on a model's weight shapes × token counts, as GFLOP/s, GB/s and % of this
//! machine's roofline. `cmd::kernels` turns the flags into a [`Config`] and prints the
//! [`Row`]s (markdown or JSON).
//!
//! Named `microbench`, not `kernels`, so that it does not read like the `tessera_kernels`
//! crate whose tables it times: this module owns no kernel, only the timing harness around
//! them (the operands in [`operands`], the rounds and the roofline here).
//!
//! Each table times the layout the engine would run, its load-time repack included; rows
//! are timed in rounds interleaved with the other rows of their batch (see [`run`]).

pub mod operands;

use std::time::Instant;

use anyhow::{Context as _, Result};
use serde::Serialize;
use tessera_engine::model::Weight;
use tessera_engine::pool::{ThreadPool, split_range};
use tessera_engine::rng::Rng;
use tessera_kernels::matrix::Repacked;
use tessera_kernels::{ActBuf, Isa, Kernels, OutMat, TileConfig};

use crate::probe::{self, MeasureOpts, roofline::Roofline};
use operands::{Shape, ShapeData, act_bytes, batches};

/// The weight types the micro-benchmark makes (random weights of that type).
pub const TYPES: [&str; 4] = ["q4_0", "q8_0", "f16", "f32"];

/// Most tokens of one micro-benchmark row: activations and output of `m` rows of the
/// widest matrix must fit in memory without a second thought (65536 × 32000 f32 outputs are
/// 8 GiB already).
pub const MAX_M: usize = 65536;

/// One kernel table to time: the ISA asked for, its tile, and the table itself.
pub type Table = (Isa, TileConfig, Kernels);

/// A micro-benchmark, resolved and validated (`cmd::kernels` checks the flags in the
/// order --type, -r, --m, -t, --isa × --tile, the model's shapes).
pub struct Config {
    /// Weight type, one of [`TYPES`].
    pub ty: String,
    /// Timed repetitions per row, at least; at least 1.
    pub reps: usize,
    /// Token counts, each 1 to [`MAX_M`] (1 = GEMV).
    pub tokens: Vec<usize>,
    /// Threads of the pool that runs every call.
    pub threads: usize,
    /// The tables, each ISA × tile already built (so valid on this CPU).
    pub plans: Vec<Table>,
    /// Weight shapes, each k a multiple of 32 ([`operands::check_shapes`]).
    pub shapes: Vec<Shape>,
    /// Read (or measure) the roofline for roofline %.
    pub roofline: bool,
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

/// `--list`: each available ISA's valid tiles, the default marked with `*`.
pub fn list() -> String {
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

/// One cell per shape × token count × table, in row order, each with the kernel its
/// table chooses for that shape and token count (and the ISA that kernel really is).
fn cells(data: &[ShapeData], tokens: &[usize], plans: &[Table]) -> Vec<Cell> {
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
    cells
}

/// Runs the benchmark grid of `cfg`: this machine's roofline first (unless off), then
/// the rows batch by batch, in order shape × token count × table.
pub fn run(cfg: &Config) -> Result<Vec<Row>> {
    let (tokens, threads, plans) = (&cfg.tokens, cfg.threads, &cfg.plans);
    let roofline = if cfg.roofline {
        Some(roofline()?)
    } else {
        None
    };
    let pool = ThreadPool::new(threads).map_err(|e| anyhow::anyhow!("-t {threads}: {e}"))?;
    let mut rng = Rng::new(0x7e55e7a);
    let mut rows = Vec::new();
    for batch in batches(&cfg.shapes, &cfg.ty, tokens, plans.len()) {
        let mut data: Vec<ShapeData> = batch
            .iter()
            .map(|&(name, n, k)| ShapeData::new(name, n, k, &cfg.ty, tokens, plans, &mut rng))
            .collect();
        let mut cells = cells(&data, tokens, plans);
        // The operands read-only, the outputs apart: each call writes one output.
        let (views, mut outs): (Vec<_>, Vec<_>) = data
            .iter_mut()
            .map(|d| {
                let view = View {
                    name: d.name,
                    w: &d.w,
                    packs: &d.packs,
                    inputs: &d.inputs,
                };
                (view, &mut d.outs)
            })
            .unzip();
        let once = |c: &Cell, out: &mut [f32]| {
            let v = &views[c.si];
            let (m, n) = (tokens[c.mi], v.w.n);
            let plain = v.w.mat();
            let (x, act) = &v.inputs[c.mi];
            let acts = act.view(plain.act_kind(), x);
            let wm = v.packs[c.pi].view(plain);
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
            let share = cfg.reps / ROUNDS + usize::from(round < cfg.reps % ROUNDS);
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
            rows.push(row(cfg, c, &views[c.si], roofline.as_ref()));
        }
    }
    Ok(rows)
}

/// The operands of one shape as the timed calls read them (its outputs are held apart).
struct View<'d> {
    name: &'static str,
    w: &'d Weight,
    packs: &'d [Repacked],
    inputs: &'d [(Vec<f32>, ActBuf)],
}

/// The row of a timed cell: best and median time, rates, working set, and the roof of the
/// ISA whose kernel ran.
fn row(cfg: &Config, c: &mut Cell, v: &View, roofline: Option<&Roofline>) -> Row {
    let View {
        name,
        w,
        packs,
        inputs,
    } = *v;
    let (m, n, k) = (cfg.tokens[c.mi], w.n, w.k);
    let (isa, tile, _) = &cfg.plans[c.pi];
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
    let int = matches!(cfg.ty.as_str(), "q4_0" | "q8_0");
    let working_set =
        wm.bytes() as u64 + act_bytes(act.view(plain.act_kind(), x)) + (m * n * 4) as u64;
    let ran_isa = c.ran.name().to_string();
    // The roof of the ISA whose kernel ran (amx-emu: none).
    let roof = roofline.map(|r| {
        r.roof(
            &ran_isa,
            int,
            flop,
            working_set as f64,
            working_set,
            cfg.threads,
        )
    });
    let roof_gflops = roof.as_ref().map(|r| r.gflops).filter(|&g| g > 0.0);
    let roofline_pct = roof_gflops.map(|lim| 100.0 * gflops / lim);
    Row {
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
        ty: cfg.ty.clone(),
        n,
        k,
        m,
        threads: cfg.threads,
        best_s: best,
        median_s: median,
        gflops,
        gbps,
        working_set_bytes: working_set,
        roof_gflops,
        roofline_pct,
        bound: roof.as_ref().map(|r| r.bound.clone()),
        level: roof.map(|r| r.level),
    }
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
