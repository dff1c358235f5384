//! `tessera generate`: greedy generation from token ids, optionally writing the logits of
//! every step (the distribution each generated token was chosen from).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use serde::Serialize;
use tessera_engine::bench::argmax;
use tessera_engine::{Context, ContextParams, KvType, Model};

use crate::cli::{default_threads, kernels_arg, parse_tokens};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Model file (GGUF); default: the built-in synthetic 150m Q4_0 model.
    #[arg(short = 'm', long = "model")]
    pub model: Option<PathBuf>,
    /// Prompt token ids, comma separated (e.g. 1,2,3).
    #[arg(long = "prompt-tokens", required = true)]
    pub prompt_tokens: String,
    /// Tokens to generate (0 to 16777216, with the prompt at most 16777216 in all).
    #[arg(short = 'n', long = "n-predict", default_value_t = 16, value_parser = crate::cli::tokens_arg)]
    pub n: usize,
    /// Threads (1 to 1024); default: physical cores.
    #[arg(short = 't', long = "threads", value_parser = crate::cli::threads_arg)]
    pub threads: Option<usize>,
    /// KV cache K type: f16 or f32.
    #[arg(long = "cache-type-k", visible_alias = "ctk", default_value = "f16")]
    pub ctk: String,
    /// KV cache V type: f16 or f32.
    #[arg(long = "cache-type-v", visible_alias = "ctv", default_value = "f16")]
    pub ctv: String,
    /// Kernel ISA: auto or a name.
    #[arg(long = "isa", default_value = "auto")]
    pub isa: String,
    /// Matmul tile MxNxK.
    #[arg(long = "tile")]
    pub tile: Option<String>,
    /// Write the last-position logits of every step to this JSON file.
    #[arg(long = "logits-out")]
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

pub fn run_cli(a: &Args) -> Result<bool> {
    let prompt = parse_tokens(&a.prompt_tokens)?;
    if prompt.is_empty() {
        bail!("--prompt-tokens: give at least one token id");
    }
    let type_k: KvType = a.ctk.parse().map_err(|e| anyhow::anyhow!("-ctk: {e}"))?;
    let type_v: KvType = a.ctv.parse().map_err(|e| anyhow::anyhow!("-ctv: {e}"))?;
    // Validated before the model loads, so a bad ISA or tile fails fast.
    let (isa, tile) = kernels_arg(&a.isa, a.tile.as_deref())?;
    let threads = a.threads.unwrap_or_else(default_threads);
    let path = match &a.model {
        Some(p) => {
            // By stat: a FIFO or device is refused without being opened (an open would block).
            tessera_engine::gguf::check_regular_file(p).map_err(|e| anyhow::anyhow!("-m: {e}"))?;
            p.clone()
        }
        None => crate::cache::default_model()?,
    };
    let model = Model::load(&path).map_err(|e| anyhow::anyhow!("-m: {e}"))?;
    let (kernels, _) = tessera_engine::calibrate::kernels_for(isa, tile, &model, threads)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let params = ContextParams {
        n_ctx: prompt.len().saturating_add(a.n),
        n_batch: prompt.len().max(1),
        n_ubatch: prompt.len().clamp(1, 512),
        n_threads: threads,
        type_k,
        type_v,
        logits_all: false,
        backend: Default::default(),
        n_gpu_layers: 0,
    };
    // Size limit and memory, before anything is allocated.
    params.validate(&model.hp).map_err(|e| {
        anyhow::anyhow!("--prompt-tokens ({} ids) and -n {}: {e}", prompt.len(), a.n)
    })?;
    if a.logits_out.is_some() {
        let bytes = (a.n as u64).saturating_mul(model.hp.n_vocab as u64 * 4);
        tessera_engine::memory::ensure_available(
            || {
                format!(
                    "--logits-out of {} steps x {} logits",
                    a.n, model.hp.n_vocab
                )
            },
            bytes,
        )
        .map_err(|e| anyhow::anyhow!("-n {}: {e}", a.n))?;
    }
    let mut ctx = Context::new(&model, &kernels, params).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut logits = ctx
        .eval(&prompt)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .to_vec();
    let mut generated = Vec::with_capacity(a.n);
    let mut steps = Vec::new();
    for i in 0..a.n {
        let tok = argmax(&logits);
        generated.push(tok);
        if a.logits_out.is_some() {
            steps.push(Step {
                token: tok,
                logits: logits.clone(),
            });
        }
        if i + 1 < a.n {
            logits = ctx
                .eval(&[tok])
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .to_vec();
        }
    }
    let line: Vec<String> = generated.iter().map(|t| t.to_string()).collect();
    println!("{}", line.join(" "));
    if let Some(out) = &a.logits_out {
        let file = LogitsFile {
            model: path.display().to_string(),
            prompt_tokens: &prompt,
            generated: &generated,
            n_vocab: model.hp.n_vocab,
            steps,
        };
        // Streamed: the JSON text (about three times the logits' bytes) is never in memory.
        write_atomically(out, |w| Ok(serde_json::to_writer(w, &file)?))?;
    }
    Ok(true)
}

/// Writes through `write` to `path.tmp` and renames, so an existing file is never left
/// half-written.
pub fn write_atomically(
    path: &std::path::Path,
    write: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let f = std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let mut w = std::io::BufWriter::new(f);
    write(&mut w)
        .and_then(|()| Ok(w.flush()?))
        .with_context(|| format!("writing {}", tmp.display()))?;
    if let Ok(f) = w.into_inner() {
        f.sync_all().ok();
    }
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    Ok(())
}
