//! The operands of the micro-benchmark: the weight shapes of a model (one layer plus the
//! output head), random weights of the benchmarked type in the engine's own storage,
//! uniform activations, and the batches the shapes are cut into so that one batch's
//! operands fit in memory at once.

use std::path::Path;

use anyhow::Result;
use half::f16;
use tessera_engine::model::{Store, Weight};
use tessera_engine::rng::Rng;
use tessera_engine::synth::Preset;
use tessera_kernels::quant::{BlockQ4_0, BlockQ8_0, q4_0, q8_0};
use tessera_kernels::{ActBuf, Acts};

use super::Table;

/// A weight shape: (name, n, k).
pub type Shape = (&'static str, usize, usize);

/// Weight shapes (name, n, k) of one layer plus the output head.
pub fn shapes(n_embd: usize, n_embd_kv: usize, n_ff: usize, n_vocab: usize) -> Vec<Shape> {
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

/// The weight shapes of a synth preset (`--preset`), else of the model file (`-m`), else of
/// the built-in default model; errors name the flag.
pub fn model_shapes(preset: Option<&str>, model: Option<&Path>) -> Result<Vec<Shape>> {
    if let Some(p) = preset {
        let p: Preset = p.parse()?;
        let s = p.shape();
        let kv = s.head_dim() * s.n_head_kv;
        return Ok(shapes(s.n_embd, kv, s.n_ff, s.n_vocab));
    }
    let path = match model {
        Some(p) => {
            // By stat: a FIFO or device is refused without being opened.
            tessera_engine::gguf::check_regular_file(p).map_err(|e| anyhow::anyhow!("-m: {e}"))?;
            p.to_path_buf()
        }
        None => crate::cache::default_model()?,
    };
    let m = tessera_engine::Model::load(&path).map_err(|e| anyhow::anyhow!("-m: {e}"))?;
    let h = &m.hp;
    Ok(shapes(h.n_embd, h.n_embd_kv(), h.n_ff, h.n_vocab))
}

/// Every weight's k must be a whole number of 32-value quant blocks.
pub fn check_shapes(shapes: &[Shape]) -> Result<()> {
    for &(name, _, k) in shapes {
        if k % 32 != 0 {
            anyhow::bail!("weight {name} has k={k}, not a multiple of 32; cannot benchmark it");
        }
    }
    Ok(())
}

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

/// Bytes of converted activations.
pub(super) fn act_bytes(a: Acts) -> u64 {
    (match a {
        Acts::F32(v) => std::mem::size_of_val(v),
        Acts::F16(v) => std::mem::size_of_val(v),
        Acts::Q8_0(v) => std::mem::size_of_val(v),
    }) as u64
}

/// One weight shape's operands: the weights, each table's repack of them, and per token
/// count the activations (f32 and converted) and an output.
pub(super) struct ShapeData {
    pub name: &'static str,
    pub w: Weight,
    pub packs: Vec<tessera_kernels::matrix::Repacked>,
    pub inputs: Vec<(Vec<f32>, ActBuf)>,
    pub outs: Vec<Vec<f32>>,
}

impl ShapeData {
    /// The operands of weight `name` (n × k) for every table and token count, drawn from
    /// `rng` in a fixed order (the weights, then each token count's activations) so a run
    /// is the same run every time.
    pub(super) fn new(
        name: &'static str,
        n: usize,
        k: usize,
        ty: &str,
        tokens: &[usize],
        plans: &[Table],
        rng: &mut Rng,
    ) -> ShapeData {
        let w = make_weight(name, ty, &uniform(rng, n * k), n, k);
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
                let x = uniform(rng, m * k);
                let mut act = ActBuf::default();
                act.convert(kind, &x, k);
                (x, act)
            })
            .collect();
        let outs = tokens.iter().map(|&m| vec![0.0f32; m * n]).collect();
        ShapeData {
            name,
            w,
            packs,
            inputs,
            outs,
        }
    }
}

/// Bytes the shapes of one batch may hold at once (weights with every table's repack,
/// activations, outputs): every shape of the small presets fits in one batch; a shape
/// larger than this is a batch of its own.
const BATCH_BYTES: u64 = 512 << 20;

/// `shapes` cut into consecutive batches of at most [`BATCH_BYTES`] of operands each: `ty`
/// weights once plain and once per table's repack, f32 and converted activations, f32
/// outputs.
pub(super) fn batches<'s>(
    shapes: &'s [Shape],
    ty: &str,
    tokens: &[usize],
    tables: usize,
) -> Vec<&'s [Shape]> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_shapes_share_a_batch_a_large_one_is_its_own() {
        let small: Vec<Shape> = shapes(256, 64, 512, 1000);
        let b = batches(&small, "q4_0", &[1, 64], 2);
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].len(), small.len());
        // 32768 × 32768 f32 weights are 4 GiB: far above a batch, alone in one.
        let mixed: Vec<Shape> = vec![("a", 256, 256), ("huge", 32768, 32768), ("b", 256, 256)];
        let b = batches(&mixed, "f32", &[1], 1);
        let names: Vec<Vec<&str>> = b.iter().map(|s| s.iter().map(|x| x.0).collect()).collect();
        assert_eq!(names, [vec!["a"], vec!["huge"], vec!["b"]]);
    }

    #[test]
    fn k_must_be_whole_quant_blocks() {
        assert!(check_shapes(&[("w", 64, 64)]).is_ok());
        let e = check_shapes(&[("w", 64, 48)]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "weight w has k=48, not a multiple of 32; cannot benchmark it"
        );
    }
}
