//! Overhead of the per-op timers (`KernelUse::ns`), measured side by side: one context on
//! the synthetic 150m Q4_0 model generates tokens in blocks of `BLOCK`, the kernel table's
//! timers switched on and off block by block (ABBA order), so drift and neighbours load
//! both sides alike. Prints ns per token for each side and the ratio on / off, for tg
//! (single-token decode, where the timers cost the most per unit of work) and pp64.
//!
//! `cargo bench -p tessera-engine --bench op_timers` (env: `OP_TIMER_BLOCKS`, default 40;
//! `OP_TIMER_THREADS`, default 2).

use std::time::Instant;

use tessera_engine::context::{Context, ContextParams};
use tessera_engine::model::Model;
use tessera_engine::synth::{Preset, SynthSpec, write_model};
use tessera_kernels::quant::GgmlType;
use tessera_kernels::{IsaRequest, Kernels};

const BLOCK: usize = 16;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&v| v > 0)
        .unwrap_or(default)
}

/// Total ns of `blocks` blocks per side, each block `BLOCK` calls of `step`.
fn alternate(kernels: &Kernels, blocks: usize, mut step: impl FnMut()) -> (f64, f64) {
    let (mut on, mut off) = (0u128, 0u128);
    for b in 0..blocks {
        for timers in if b % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        } {
            kernels.set_timers(timers);
            let t = Instant::now();
            for _ in 0..BLOCK {
                step();
            }
            let ns = t.elapsed().as_nanos();
            if timers { on += ns } else { off += ns }
        }
    }
    let per = (blocks * BLOCK) as f64;
    (on as f64 / per, off as f64 / per)
}

fn main() {
    let blocks = env("OP_TIMER_BLOCKS", 40);
    let threads = env("OP_TIMER_THREADS", 2);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("150m-q4_0.gguf");
    write_model(&path, &SynthSpec::new(Preset::M150, GgmlType::Q4_0, 1)).expect("model");
    let mut model = Model::load(&path).expect("load");
    let kernels = Kernels::new(IsaRequest::Auto, None).expect("kernels");
    let n_layer = model.hp.n_layer;
    model.repack_for(&kernels, n_layer, true);
    let params = ContextParams {
        n_ctx: 4096,
        n_threads: threads,
        ..ContextParams::default()
    };
    let mut ctx = Context::new(&model, &kernels, params).expect("context");
    println!(
        "op timers, {} ({} threads), {blocks} blocks of {BLOCK} per side, ABBA:",
        kernels.isa(),
        threads
    );

    // tg: one token per call, the cache cleared every 128 tokens (as in tg128).
    let mut pos = 0;
    let (on, off) = alternate(&kernels, blocks, || {
        if pos == 128 {
            ctx.clear();
            pos = 0;
        }
        ctx.eval(&[7]).expect("eval");
        pos += 1;
    });
    report("tg", on, off);

    let prompt: Vec<u32> = (0..64).map(|i| 1 + i % 500).collect();
    let (on, off) = alternate(&kernels, blocks.div_ceil(4), || {
        ctx.clear();
        ctx.eval(&prompt).expect("eval");
    });
    report("pp64", on, off);
}

fn report(what: &str, on: f64, off: f64) {
    println!(
        "{what}: timers on {:.1} µs/call, off {:.1} µs/call, on/off = {:.4} ({:+.2}%)",
        on / 1e3,
        off / 1e3,
        on / off,
        100.0 * (on / off - 1.0)
    );
}
