//! `tessera generate`: greedy generation from token ids, optionally writing the logits of
//! every step (the distribution each generated token was chosen from).
//!
//! The flags are read and checked in `cmd::generate`, which builds the [`Config`] (the
//! tokens parsed, the ISA and tile checked against this CPU, the model path resolved) and
//! calls [`run`]; `run` loads the model, checks the context and the logits' memory before
//! allocating, and prints the generated ids on one line of stdout.

use std::path::PathBuf;

use anyhow::Result;
use serde::Serialize;
use tessera_engine::bench::argmax;
use tessera_engine::{Context, ContextParams, KvType, Model};
use tessera_kernels::{IsaRequest, TileConfig};

use crate::fsutil::write_atomically;

/// Flags resolved and validated, before the model loads.
#[derive(Debug)]
pub struct Config {
    /// The model file (checked to be a regular file) or the built-in default model.
    pub model: PathBuf,
    /// Prompt token ids; never empty.
    pub prompt: Vec<u32>,
    /// Tokens to generate.
    pub n: usize,
    pub threads: usize,
    pub type_k: KvType,
    pub type_v: KvType,
    pub isa: IsaRequest,
    pub tile: Option<TileConfig>,
    /// `--logits-out`: where the logits of every step go.
    pub logits_out: Option<PathBuf>,
}

/// The logits file: `steps[i].logits` is the distribution `generated[i]` was chosen from.
#[derive(Serialize)]
struct LogitsFile<'a> {
    model: String,
    prompt_tokens: &'a [u32],
    generated: &'a [u32],
    n_vocab: usize,
    steps: Vec<Step>,
}

#[derive(Serialize)]
struct Step {
    token: u32,
    logits: Vec<f32>,
}

/// Generates `cfg.n` tokens greedily and prints them; writes the logits file when asked.
/// Errors name the flag whose value the engine refused.
pub fn run(cfg: &Config) -> Result<bool> {
    let (path, prompt, threads) = (&cfg.model, &cfg.prompt[..], cfg.threads);
    let model = Model::load(path).map_err(|e| anyhow::anyhow!("-m: {e}"))?;
    let (kernels, _) = tessera_engine::calibrate::kernels_for(cfg.isa, cfg.tile, &model, threads)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let params = ContextParams {
        n_ctx: prompt.len().saturating_add(cfg.n),
        n_batch: prompt.len().max(1),
        n_ubatch: prompt.len().clamp(1, 512),
        n_threads: threads,
        type_k: cfg.type_k,
        type_v: cfg.type_v,
        logits_all: false,
        backend: Default::default(),
        n_gpu_layers: 0,
    };
    // Size limit and memory, before anything is allocated.
    params.validate(&model.hp).map_err(|e| {
        anyhow::anyhow!(
            "--prompt-tokens ({} ids) and -n {}: {e}",
            prompt.len(),
            cfg.n
        )
    })?;
    if cfg.logits_out.is_some() {
        let bytes = (cfg.n as u64).saturating_mul(model.hp.n_vocab as u64 * 4);
        tessera_engine::memory::ensure_available(
            || {
                format!(
                    "--logits-out of {} steps x {} logits",
                    cfg.n, model.hp.n_vocab
                )
            },
            bytes,
        )
        .map_err(|e| anyhow::anyhow!("-n {}: {e}", cfg.n))?;
    }
    let mut ctx = Context::new(&model, &kernels, params).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut logits = ctx
        .eval(prompt)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .to_vec();
    let mut generated = Vec::with_capacity(cfg.n);
    let mut steps = Vec::new();
    for i in 0..cfg.n {
        let tok = argmax(&logits);
        generated.push(tok);
        if cfg.logits_out.is_some() {
            steps.push(Step {
                token: tok,
                logits: logits.clone(),
            });
        }
        if i + 1 < cfg.n {
            logits = ctx
                .eval(&[tok])
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .to_vec();
        }
    }
    let line: Vec<String> = generated.iter().map(|t| t.to_string()).collect();
    println!("{}", line.join(" "));
    if let Some(out) = &cfg.logits_out {
        let file = LogitsFile {
            model: path.display().to_string(),
            prompt_tokens: prompt,
            generated: &generated,
            n_vocab: model.hp.n_vocab,
            steps,
        };
        // Streamed: the JSON text (about three times the logits' bytes) is never in memory.
        write_atomically(out, |w| Ok(serde_json::to_writer(w, &file)?))?;
    }
    Ok(true)
}
