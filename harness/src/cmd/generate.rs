//! `tessera generate`: the flags, read and checked here into a [`generate::Config`] (every
//! message naming its flag; the ISA and tile checked before any model loads, so a bad one
//! fails fast), and [`generate::run`], which generates.

use std::path::PathBuf;

use anyhow::{Result, bail};
use tessera_engine::KvType;

use crate::cli::{default_threads, kernels_arg, parse_tokens};
use crate::generate::{self, Config};

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

impl Config {
    /// Resolves and checks every flag, in the order the messages are tested in.
    pub fn from_args(a: &Args) -> Result<Self> {
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
                tessera_engine::gguf::check_regular_file(p)
                    .map_err(|e| anyhow::anyhow!("-m: {e}"))?;
                p.clone()
            }
            None => crate::cache::default_model()?,
        };
        Ok(Self {
            model: path,
            prompt,
            n: a.n,
            threads,
            type_k,
            type_v,
            isa,
            tile,
            logits_out: a.logits_out.clone(),
        })
    }
}

pub fn run_cli(a: &Args) -> Result<bool> {
    generate::run(&Config::from_args(a)?)
}
