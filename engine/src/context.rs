//! An inference context: a KV cache, scratch buffers sized once for the largest micro-batch,
//! and the llama forward pass. Prompt processing runs `n_ubatch` tokens per matmul (GEMM);
//! generation runs one token (GEMV). Nothing in `eval` allocates.
//!
//! Sizes: a context holds at most [`MAX_CTX`] positions. A context longer than the model's
//! training context (`llama.context_length`) is allowed, as in llama-bench (positions past
//! it are RoPE-extrapolated). The KV cache and buffers a context needs are computed before
//! anything is allocated and refused when they exceed the memory this process may still
//! allocate ([`crate::memory`]); the big buffers are allocated fallibly, so a failed
//! allocation is an [`EngineError::OutOfMemory`], never an abort.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use half::f16;
use tessera_kernels::matrix::Repacked;
use tessera_kernels::{ActBuf, Acts, Kernels, OutMat, WeightMat};

use crate::error::{EngineError, Result};
use crate::memory::{ensure_available, human, zeroed_vec};
use crate::model::{Hparams, Model, Weight};
use crate::pool::{ThreadPool, split_range};

/// Most positions one context holds: 16,777,216, the most tokens of a prompt or a
/// generation any command takes. It keeps every count inside the u32 fields of a result row
/// and the size arithmetic far from overflow; the memory check below is what usually
/// refuses a long context first.
pub const MAX_CTX: usize = 1 << 24;

/// Element type of the KV cache (llama-bench's `-ctk`/`-ctv`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KvType {
    F16,
    F32,
}

impl KvType {
    pub fn name(self) -> &'static str {
        match self {
            KvType::F16 => "f16",
            KvType::F32 => "f32",
        }
    }

    /// Bytes of one cached element.
    pub fn bytes(self) -> u64 {
        match self {
            KvType::F16 => 2,
            KvType::F32 => 4,
        }
    }
}

impl fmt::Display for KvType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for KvType {
    type Err = EngineError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "f16" => Ok(KvType::F16),
            "f32" => Ok(KvType::F32),
            _ => Err(EngineError::KvType(s.to_string())),
        }
    }
}

#[derive(Clone, Debug)]
pub struct ContextParams {
    /// Positions the KV cache holds.
    pub n_ctx: usize,
    /// Most tokens one `eval` call takes (llama.cpp's logical batch).
    pub n_batch: usize,
    /// Most tokens per forward pass (llama.cpp's physical micro-batch).
    pub n_ubatch: usize,
    pub n_threads: usize,
    pub type_k: KvType,
    pub type_v: KvType,
    /// Compute logits for every token of a call, not only the last.
    pub logits_all: bool,
    /// Where the offloaded layers run (`--backend`); CPU runs everything on the CPU.
    pub backend: crate::cuda::Backend,
    /// With the CUDA backend: how many of the last layers run on the GPU (llama.cpp's `-ngl`;
    /// more than the layer count offloads the output head too; 0 keeps all on the CPU).
    pub n_gpu_layers: usize,
}

/// What a context allocates, in bytes ([`ContextParams::footprint`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Footprint {
    /// K and V of every layer, `n_ctx` positions each.
    pub kv_cache: u64,
    /// Activations of one micro-batch, attention scores and logits.
    pub buffers: u64,
}

impl Footprint {
    pub fn total(&self) -> u64 {
        self.kv_cache.saturating_add(self.buffers)
    }
}

impl ContextParams {
    /// The bytes a context with these parameters allocates on the CPU for `hp` (weights not
    /// included: the model holds them already). Saturates rather than overflows.
    pub fn footprint(&self, hp: &Hparams) -> Footprint {
        let mul = |xs: &[usize]| xs.iter().fold(1u64, |a, &x| a.saturating_mul(x as u64));
        let (e, kv, ff) = (hp.n_embd, hp.n_embd_kv(), hp.n_ff);
        let ub = self.micro_batch();
        let per_layer = mul(&[self.n_ctx, kv])
            .saturating_mul(self.type_k.bytes().saturating_add(self.type_v.bytes()));
        let f32s = [
            mul(&[5, ub, e]),                          // x, xn, q, attn, proj
            mul(&[2, ub, kv]),                         // k, v
            mul(&[2, ub, ff]),                         // gate, up
            mul(&[self.n_threads.max(1), self.n_ctx]), // attention scores
            mul(&[ub, e.max(ff)]),                     // converted activations (at most 4 B each)
            mul(&[self.logit_rows(), hp.n_vocab]),     // logits
        ]
        .iter()
        .fold(0u64, |a, &b| a.saturating_add(b));
        Footprint {
            kv_cache: per_layer.saturating_mul(hp.n_layer as u64),
            buffers: f32s.saturating_mul(4),
        }
    }

    /// Tokens per forward pass: `n_ubatch`, at most `n_batch`, and no more than the context
    /// holds (a longer micro-batch could never be filled).
    fn micro_batch(&self) -> usize {
        self.n_ubatch.min(self.n_batch).min(self.n_ctx).max(1)
    }

    /// Rows of the logits buffer: every token of a call with `logits_all`, else the last.
    fn logit_rows(&self) -> usize {
        if self.logits_all {
            self.n_batch.min(self.n_ctx)
        } else {
            1
        }
    }

    /// Checks these parameters for `hp` without allocating: positive sizes, at most
    /// [`MAX_CTX`] positions, at most [`crate::pool::MAX_THREADS`] threads, and a
    /// [`Footprint`] that fits the memory available now.
    /// [`Context::new`] runs the same checks; a caller that creates many contexts can run
    /// them all first, before any work.
    pub fn validate(&self, hp: &Hparams) -> Result<()> {
        if self.n_ctx == 0 || self.n_batch == 0 || self.n_ubatch == 0 {
            return Err(EngineError::Invalid(format!(
                "context size {}, batch {} and micro-batch {} must be positive",
                self.n_ctx, self.n_batch, self.n_ubatch
            )));
        }
        if self.n_ctx > MAX_CTX {
            return Err(EngineError::ContextTooLarge { n_ctx: self.n_ctx });
        }
        if self.n_threads > crate::pool::MAX_THREADS {
            return Err(EngineError::Threads {
                requested: self.n_threads,
                reason: format!("more than the limit of {}", crate::pool::MAX_THREADS),
            });
        }
        let f = self.footprint(hp);
        ensure_available(
            || {
                format!(
                    "a context of {} positions (KV cache {} as K {} + V {}, buffers {})",
                    self.n_ctx,
                    human(f.kv_cache),
                    self.type_k,
                    self.type_v,
                    human(f.buffers)
                )
            },
            f.total(),
        )
    }
}

impl Default for ContextParams {
    fn default() -> Self {
        Self {
            n_ctx: 512,
            n_batch: 2048,
            n_ubatch: 512,
            n_threads: 1,
            type_k: KvType::F16,
            type_v: KvType::F16,
            logits_all: false,
            backend: crate::cuda::Backend::Cpu,
            n_gpu_layers: 0,
        }
    }
}

enum KvStore {
    F16(Vec<f16>),
    F32(Vec<f32>),
}

impl KvStore {
    fn new(ty: KvType, len: usize) -> Result<Self> {
        Ok(match ty {
            KvType::F16 => KvStore::F16(zeroed_vec(len, "the KV cache")?),
            KvType::F32 => KvStore::F32(zeroed_vec(len, "the KV cache")?),
        })
    }

    /// The `cpy` kernel name of a store into this cache, and its element size in bytes.
    fn kind(&self) -> (&'static str, usize) {
        match self {
            KvStore::F16(_) => ("kv_store_f16", 2),
            KvStore::F32(_) => ("kv_store_f32", 4),
        }
    }

    fn store(&mut self, at: usize, src: &[f32]) {
        match self {
            KvStore::F16(v) => {
                for (o, x) in v[at..at + src.len()].iter_mut().zip(src) {
                    *o = f16::from_f32(*x);
                }
            }
            KvStore::F32(v) => v[at..at + src.len()].copy_from_slice(src),
        }
    }
}

struct KvLayer {
    k: KvStore,
    v: KvStore,
}

/// Buffers for one micro-batch of up to `n_ubatch` tokens, token-major.
struct Scratch {
    x: Vec<f32>,
    xn: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    attn: Vec<f32>,
    proj: Vec<f32>,
    gate: Vec<f32>,
    up: Vec<f32>,
    /// `n_threads` rows of `n_ctx` attention scores.
    scores: Vec<f32>,
    act: ActBuf,
}

pub struct Context<'a> {
    model: &'a Model,
    kernels: &'a Kernels,
    pool: ThreadPool,
    /// Weights repacked at creation for this kernel table (none when it has no use for it).
    packed: Repacked,
    params: ContextParams,
    kv: Vec<KvLayer>,
    n_past: usize,
    s: Scratch,
    /// RoPE frequencies `base^(-2i/n_rot)`.
    theta: Vec<f32>,
    logits: Vec<f32>,
    n_logit_rows: usize,
    /// The GPU half of the forward pass (`Backend::Cuda`): the last layers, maybe the head.
    gpu: Option<crate::cuda::Offload>,
}

impl<'a> Context<'a> {
    pub fn new(model: &'a Model, kernels: &'a Kernels, mut params: ContextParams) -> Result<Self> {
        params.validate(&model.hp)?;
        params.n_ubatch = params.micro_batch();
        params.n_threads = params.n_threads.max(1);
        let hp = &model.hp;
        let (e, kv, ff, ub) = (hp.n_embd, hp.n_embd_kv(), hp.n_ff, params.n_ubatch);
        // Validated above: n_ctx <= MAX_CTX, n_threads <= MAX_THREADS and the hyperparameters
        // are at most 2^24 each, so these products fit a usize; allocation failures are
        // errors, not aborts.
        let kv_len = params.n_ctx * kv;
        let kv_layers = (0..hp.n_layer)
            .map(|_| {
                Ok(KvLayer {
                    k: KvStore::new(params.type_k, kv_len)?,
                    v: KvStore::new(params.type_v, kv_len)?,
                })
            })
            .collect::<Result<_>>()?;
        let buf = |len: usize| zeroed_vec::<f32>(len, "the context's buffers");
        let s = Scratch {
            x: buf(ub * e)?,
            xn: buf(ub * e)?,
            q: buf(ub * e)?,
            k: buf(ub * kv)?,
            v: buf(ub * kv)?,
            attn: buf(ub * e)?,
            proj: buf(ub * e)?,
            gate: buf(ub * ff)?,
            up: buf(ub * ff)?,
            scores: buf(params.n_threads * params.n_ctx)?,
            act: ActBuf::with_capacity(ub, e.max(ff)),
        };
        let theta = (0..hp.n_rot / 2)
            .map(|i| (f64::from(hp.rope_freq_base).powf(-2.0 * i as f64 / hp.n_rot as f64)) as f32)
            .collect();
        let logits = buf(params.logit_rows() * hp.n_vocab)?;
        let pool = ThreadPool::new(params.n_threads)?;
        let gpu = match params.backend {
            crate::cuda::Backend::Cpu => None,
            crate::cuda::Backend::Cuda => Some(crate::cuda::Offload::new(model, &params)?),
        };
        // Only what the CPU multiplies is repacked: offloaded layers and head are not.
        let (n_cpu_layers, head_on_cpu) = gpu.as_ref().map_or((hp.n_layer, true), |g| {
            (g.split().first_gpu_layer, !g.split().head_on_gpu)
        });
        let packed = kernels.repack(
            model.layers[..n_cpu_layers]
                .iter()
                .flat_map(|l| [&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down])
                .chain(head_on_cpu.then(|| model.head()))
                .map(Weight::mat),
        );
        Ok(Self {
            gpu,
            model,
            kernels,
            pool,
            packed,
            logits,
            n_logit_rows: 0,
            params,
            kv: kv_layers,
            n_past: 0,
            s,
            theta,
        })
    }

    /// How many weight matrices this context repacked beside the model (0 when the model
    /// was repacked in place with [`Model::repack_for`]).
    pub fn repacked_len(&self) -> usize {
        self.packed.len()
    }

    /// The kernel table this context runs, with its record of calls and op times.
    pub fn kernels(&self) -> &Kernels {
        self.kernels
    }

    pub fn params(&self) -> &ContextParams {
        &self.params
    }

    /// The GPU half of the forward pass, with the CUDA backend.
    pub fn gpu(&self) -> Option<&crate::cuda::Offload> {
        self.gpu.as_ref()
    }

    pub fn n_vocab(&self) -> usize {
        self.model.hp.n_vocab
    }

    /// Positions already in the KV cache.
    pub fn n_past(&self) -> usize {
        self.n_past
    }

    /// Empties the KV cache (the next token is at position 0).
    pub fn clear(&mut self) {
        self.n_past = 0;
    }

    /// Runs up to `n_batch` tokens through the model at positions `n_past..`, in micro-batches
    /// of `n_ubatch`, and returns the logits: of the last token, or of every token of this
    /// call (`n_tokens * n_vocab`, token-major) when the context has `logits_all`.
    pub fn eval(&mut self, tokens: &[u32]) -> Result<&[f32]> {
        let n_vocab = self.model.hp.n_vocab;
        if tokens.is_empty() {
            return Err(EngineError::Invalid("eval needs at least one token".into()));
        }
        if tokens.len() > self.params.n_batch {
            return Err(EngineError::Invalid(format!(
                "{} tokens in one call exceed the batch size {}",
                tokens.len(),
                self.params.n_batch
            )));
        }
        // GET_ROWS validation: every id checked before any state changes.
        if let Some((pos, &t)) = tokens
            .iter()
            .enumerate()
            .find(|&(_, &t)| t as usize >= n_vocab)
        {
            return Err(EngineError::TokenOutOfRange {
                token: i64::from(t),
                pos: self.n_past + pos,
                n_vocab,
            });
        }
        let needed = self.n_past + tokens.len();
        if needed > self.params.n_ctx {
            return Err(EngineError::ContextFull {
                needed,
                n_ctx: self.params.n_ctx,
            });
        }
        let ub = self.params.n_ubatch;
        let n_chunks = tokens.len().div_ceil(ub);
        for (c, chunk) in tokens.chunks(ub).enumerate() {
            let out_rows = if self.params.logits_all {
                c * ub..c * ub + chunk.len()
            } else if c + 1 == n_chunks {
                0..1
            } else {
                0..0
            };
            self.forward(chunk, out_rows)?;
        }
        self.n_logit_rows = if self.params.logits_all {
            tokens.len()
        } else {
            1
        };
        Ok(&self.logits[..self.n_logit_rows * n_vocab])
    }

    /// One micro-batch; writes logits rows `out_rows` (of the logits buffer) for the last
    /// `out_rows.len()` tokens of the chunk.
    ///
    /// Every op is recorded with its wall time and work ([`timed`], [`matmul_shared`]);
    /// what runs outside them (the loop itself, the GPU hook's bookkeeping) is the only
    /// time of an `eval` no op is charged with.
    fn forward(&mut self, tokens: &[u32], out_rows: std::ops::Range<usize>) -> Result<()> {
        let model = self.model;
        let k = self.kernels;
        let ops = k.ops();
        let hp = &model.hp;
        let m = tokens.len();
        let (e, kvw, ff) = (hp.n_embd, hp.n_embd_kv(), hp.n_ff);
        let (hd, n_head, n_head_kv) = (hp.head_dim(), hp.n_head, hp.n_head_kv);
        let pos0 = self.n_past;
        let s = &mut self.s;
        // With the CUDA backend the last layers run on the GPU (hook after the CPU layers).
        let n_cpu_layers = self
            .gpu
            .as_ref()
            .map_or(hp.n_layer, |g| g.split().first_gpu_layer);

        if n_cpu_layers > 0 {
            let embd = model.tok_embd.mat();
            let row_bytes = embd.bytes() / embd.n().max(1);
            let cost = Cost::new(m * e, m * row_bytes + 4 * m * e);
            timed(k, "get_rows", "get_rows_dequant", cost, || {
                for (i, &t) in tokens.iter().enumerate() {
                    embd.get_row(t as usize, &mut s.x[i * e..(i + 1) * e])
                        .expect("token ids were validated");
                }
            });
        }
        // rms_norm of m rows of e: sum of squares, scale, weight (4 flop per value).
        let norm_cost = |rows: usize| Cost::new(4 * rows * e, 4 * (2 * rows * e + e));

        for (l, layer) in model.layers.iter().enumerate().take(n_cpu_layers) {
            // Attention block.
            timed(k, "rms_norm", "rms_norm", norm_cost(m), || {
                for i in 0..m {
                    (ops.rms_norm)(
                        &s.x[i * e..(i + 1) * e],
                        &layer.attn_norm,
                        hp.rms_eps,
                        &mut s.xn[i * e..(i + 1) * e],
                    );
                }
            });
            let xn = &s.xn[..m * e];
            matmul_shared(
                k,
                &self.pool,
                &self.packed,
                &mut s.act,
                xn,
                m,
                &mut [
                    ("attn_q", &layer.wq, &mut s.q[..m * e]),
                    ("attn_k", &layer.wk, &mut s.k[..m * kvw]),
                    ("attn_v", &layer.wv, &mut s.v[..m * kvw]),
                ],
            );
            // Each rotated pair: 4 multiplies and 2 adds, read and written in place.
            let pairs = m * (n_head + n_head_kv) * (hp.n_rot / 2);
            let rope_cost = Cost::new(6 * pairs, 16 * pairs + 4 * self.theta.len());
            timed(k, "rope", "rope_normal", rope_cost, || {
                for i in 0..m {
                    let pos = pos0 + i;
                    for h in 0..n_head {
                        (ops.rope_normal)(
                            &mut s.q[i * e + h * hd..i * e + h * hd + hp.n_rot],
                            pos,
                            &self.theta,
                        );
                    }
                    for h in 0..n_head_kv {
                        (ops.rope_normal)(
                            &mut s.k[i * kvw + h * hd..i * kvw + h * hd + hp.n_rot],
                            pos,
                            &self.theta,
                        );
                    }
                }
            });
            let cache = &mut self.kv[l];
            let (kv_kernel, k_elt) = cache.k.kind();
            let (_, v_elt) = cache.v.kind();
            // Reads the f32 rows and writes them in the cache's types (K and V may differ);
            // the kernel is named after K's store.
            let cpy_cost = Cost::new(0, m * kvw * ((4 + k_elt) + (4 + v_elt)));
            timed(k, "cpy", kv_kernel, cpy_cost, || {
                cache.k.store(pos0 * kvw, &s.k[..m * kvw]);
                cache.v.store(pos0 * kvw, &s.v[..m * kvw]);
            });

            let scale = 1.0 / (hd as f32).sqrt();
            let group = n_head / n_head_kv;
            let n_ctx = self.params.n_ctx;
            let q = &s.q[..m * e];
            let attn = OutMat::new(&mut s.attn[..m * e], m, e);
            let scores = OutMat::new(&mut s.scores, self.params.n_threads, n_ctx);
            let cache = &self.kv[l];
            let attn_cost = attention_cost(cache, m, pos0, n_head, hd, kvw);
            timed(k, "attention", attn_kernel(cache), attn_cost, || {
                // Jobs are dealt round-robin: a causal token's cost grows with its position,
                // so contiguous ranges would give the last thread the most work.
                self.pool.run(&|tid, nth| {
                    for job in (tid..m * n_head).step_by(nth) {
                        let (i, h) = (job / n_head, job % n_head);
                        let n_kv = pos0 + i + 1; // causal: positions 0..=pos
                        let kvh = h / group;
                        let qh = &q[i * e + h * hd..i * e + (h + 1) * hd];
                        // SAFETY: row `tid` of the scores and head `h` of token `i` belong
                        // to this thread alone (jobs are split disjointly).
                        let sc = unsafe { scores.segment_mut(tid, 0..n_kv) };
                        let out = unsafe { attn.segment_mut(i, h * hd..(h + 1) * hd) };
                        attend(ops, cache, qh, kvh * hd, kvw, hd, scale, sc, out);
                    }
                })
            });
            matmul_shared(
                k,
                &self.pool,
                &self.packed,
                &mut s.act,
                &s.attn[..m * e],
                m,
                &mut [("attn_output", &layer.wo, &mut s.proj[..m * e])],
            );
            timed(k, "add", "add", Cost::new(m * e, 3 * 4 * m * e), || {
                for (x, p) in s.x[..m * e].iter_mut().zip(&s.proj[..m * e]) {
                    *x += p;
                }
            });

            // Feed-forward block.
            timed(k, "rms_norm", "rms_norm", norm_cost(m), || {
                for i in 0..m {
                    (ops.rms_norm)(
                        &s.x[i * e..(i + 1) * e],
                        &layer.ffn_norm,
                        hp.rms_eps,
                        &mut s.xn[i * e..(i + 1) * e],
                    );
                }
            });
            matmul_shared(
                k,
                &self.pool,
                &self.packed,
                &mut s.act,
                &s.xn[..m * e],
                m,
                &mut [
                    ("ffn_gate", &layer.w_gate, &mut s.gate[..m * ff]),
                    ("ffn_up", &layer.w_up, &mut s.up[..m * ff]),
                ],
            );
            // silu(g) * u: a negation, an exp, an add, a divide and a multiply per value.
            let swiglu_cost = Cost::new(5 * m * ff, 3 * 4 * m * ff);
            timed(k, "swiglu", "swiglu", swiglu_cost, || {
                let gate = SyncRows::new(&mut s.gate[..m * ff], ff);
                let up = &s.up[..m * ff];
                self.pool.run(&|tid, nth| {
                    let rows = split_range(m, nth, tid, 1);
                    // SAFETY: each thread takes its own rows of `gate`.
                    let g = unsafe { gate.rows(rows.clone()) };
                    (ops.swiglu)(g, &up[rows.start * ff..rows.end * ff]);
                })
            });
            matmul_shared(
                k,
                &self.pool,
                &self.packed,
                &mut s.act,
                &s.gate[..m * ff],
                m,
                &mut [("ffn_down", &layer.w_down, &mut s.proj[..m * e])],
            );
            timed(k, "add", "add", Cost::new(m * e, 3 * 4 * m * e), || {
                for (x, p) in s.x[..m * e].iter_mut().zip(&s.proj[..m * e]) {
                    *x += p;
                }
            });
        }
        let nv = hp.n_vocab;
        let head_on_gpu = match self.gpu.as_mut() {
            Some(g) => g.forward(
                tokens,
                &mut s.x[..m * e],
                pos0,
                &mut self.logits[out_rows.start * nv..out_rows.end * nv],
                out_rows.len(),
            )?,
            None => false,
        };
        self.n_past += m;

        // Output head for the requested rows (the last tokens of the chunk).
        let rows = out_rows.len();
        if rows == 0 || head_on_gpu {
            return Ok(());
        }
        let first = m - rows;
        timed(k, "rms_norm", "rms_norm", norm_cost(rows), || {
            for r in 0..rows {
                let i = first + r;
                (ops.rms_norm)(
                    &s.x[i * e..(i + 1) * e],
                    &model.output_norm,
                    hp.rms_eps,
                    &mut s.xn[r * e..(r + 1) * e],
                );
            }
        });
        matmul_shared(
            k,
            &self.pool,
            &self.packed,
            &mut s.act,
            &s.xn[..rows * e],
            rows,
            &mut [(
                "output",
                model.head(),
                &mut self.logits[out_rows.start * nv..out_rows.end * nv],
            )],
        );
        Ok(())
    }
}

/// The work of one op call, counted from its shapes (see `KernelUse::flop`/`bytes`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Cost {
    flop: u64,
    bytes: u64,
}

impl Cost {
    fn new(flop: usize, bytes: usize) -> Self {
        Cost {
            flop: flop as u64,
            bytes: bytes as u64,
        }
    }
}

fn elapsed_ns(t: Instant) -> u64 {
    u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Runs `f` as one call of `op` with kernel `kernel`: records the call and charges it
/// with `cost` and, with the op timers on ([`Kernels::timers`]), its wall time.
fn timed<R>(
    k: &Kernels,
    op: &'static str,
    kernel: &'static str,
    cost: Cost,
    f: impl FnOnce() -> R,
) -> R {
    let t0 = k.timers().then(Instant::now);
    let r = f();
    k.note_charged(op, kernel, t0.map_or(0, elapsed_ns), cost.flop, cost.bytes);
    r
}

/// Causal attention of `m` tokens from position `pos0` over `n_head` heads of `hd`: per
/// query head and token of `n_kv` visible positions, `2·hd·n_kv` flop for the scores, as
/// many for the weighted values and 4 per score for the softmax. Bytes are what the call
/// must move: the K and V rows of the `pos0 + m` positions once (the query heads of a
/// group and the tokens of a batch read them again, from cache), the queries and the
/// output — so `bytes` per call is also the call's working set.
fn attention_cost(
    cache: &KvLayer,
    m: usize,
    pos0: usize,
    n_head: usize,
    hd: usize,
    kvw: usize,
) -> Cost {
    let (_, elt) = cache.k.kind();
    let (_, elt_v) = cache.v.kind();
    // Σ over tokens of the positions each one sees: m·pos0 + m(m+1)/2.
    let seen = m * pos0 + m * (m + 1) / 2;
    Cost::new(
        n_head * seen * (4 * hd + 4),
        (pos0 + m) * kvw * (elt + elt_v) + 2 * 4 * m * n_head * hd,
    )
}

fn attn_kernel(c: &KvLayer) -> &'static str {
    match (&c.k, &c.v) {
        (KvStore::F16(_), KvStore::F16(_)) => "attn_kv_f16",
        (KvStore::F32(_), KvStore::F32(_)) => "attn_kv_f32",
        _ => "attn_kv_mixed",
    }
}

/// Causal attention of one query head over the cache: `out = softmax(q·K^T * scale) · V`.
#[allow(clippy::too_many_arguments)]
fn attend(
    ops: &tessera_kernels::Ops,
    cache: &KvLayer,
    q: &[f32],
    off: usize,
    stride: usize,
    hd: usize,
    scale: f32,
    scores: &mut [f32],
    out: &mut [f32],
) {
    debug_assert_eq!((q.len(), out.len()), (hd, hd));
    // One kernel call per head over all positions (keys `stride` apart from `off` on).
    match &cache.k {
        KvStore::F16(kc) => (ops.attn_scores_f16)(q, &kc[off..], stride, scale, scores),
        KvStore::F32(kc) => (ops.attn_scores_f32)(q, &kc[off..], stride, scale, scores),
    }
    (ops.softmax)(scores);
    match &cache.v {
        KvStore::F16(vc) => (ops.attn_values_f16)(scores, &vc[off..], stride, out),
        KvStore::F32(vc) => (ops.attn_values_f32)(scores, &vc[off..], stride, out),
    }
}

/// A row-major buffer whose disjoint row ranges threads of one `pool.run` fill.
struct SyncRows<T> {
    ptr: *mut T,
    rows: usize,
    row_len: usize,
}

// SAFETY: only `rows` hands out access, and its contract requires disjoint ranges.
unsafe impl<T: Send> Sync for SyncRows<T> {}

impl<T> SyncRows<T> {
    fn new(data: &mut [T], row_len: usize) -> Self {
        Self {
            ptr: data.as_mut_ptr(),
            rows: data.len() / row_len.max(1),
            row_len,
        }
    }

    /// Rows `r` of the buffer.
    ///
    /// # Safety
    /// No other reference to these rows exists while the slice lives (threads take
    /// disjoint ranges), and the buffer outlives it.
    #[allow(clippy::mut_from_ref)]
    unsafe fn rows(&self, r: std::ops::Range<usize>) -> &mut [T] {
        assert!(r.start <= r.end && r.end <= self.rows, "rows out of range");
        // SAFETY: in bounds (checked); exclusive by the contract.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.ptr.add(r.start * self.row_len),
                r.len() * self.row_len,
            )
        }
    }
}

/// Multiplies `x` (`m` rows) by each weight, converting the activations once for all
/// weights that take the same form (Q, K and V share one quantization of `x`).
///
/// Timing: the conversion is charged to op `quantize`. The weights of one `pool.run`
/// share its wall time by each one's share of the threads' busy time in it, so the
/// charged times add up to the region's wall time, barrier waits included.
fn matmul_shared(
    kernels: &Kernels,
    pool: &ThreadPool,
    packed: &Repacked,
    act: &mut ActBuf,
    x: &[f32],
    m: usize,
    jobs: &mut [(&'static str, &Weight, &mut [f32])],
) {
    use tessera_kernels::ActKind;
    let timers = kernels.timers();
    // Consecutive weights that take the same activation form share one conversion and one
    // `pool.run` (Q, K and V; gate and up): fewer barriers per token.
    let mut rest = &mut jobs[..];
    while !rest.is_empty() {
        let kind = packed.view(rest[0].1.mat()).act_kind();
        let same = rest
            .iter()
            .take_while(|j| j.1.mat().act_kind() == kind)
            .count();
        let (group, tail) = rest.split_at_mut(same);
        rest = tail;
        let k = group[0].1.k;
        // Bytes of one activation row in the form the kernels read.
        let act_row = match kind {
            ActKind::F32 => 4 * k,
            ActKind::F16 => 2 * k,
            ActKind::Q8_0 => {
                k / tessera_kernels::quant::QK
                    * std::mem::size_of::<tessera_kernels::quant::BlockQ8_0>()
            }
        };
        let t0 = timers.then(Instant::now);
        let conv = match kind {
            ActKind::Q8_0 if m > 1 => {
                // Prompt batches quantize their rows in parallel, with the table's own
                // kernel (bit-identical to one pass).
                let nb = k / tessera_kernels::quant::QK;
                let q8 = SyncRows::new(act.q8_mut(m * nb), nb);
                pool.run(&|tid, nth| {
                    let rows = split_range(m, nth, tid, 1);
                    // SAFETY: each thread takes its own rows of the quantized buffer.
                    let y = unsafe { q8.rows(rows.clone()) };
                    kernels.quantize_q8_0(&x[rows.start * k..rows.end * k], y);
                });
                Some(kernels.note_quantize())
            }
            _ => kernels.convert(act, kind, x, k),
        };
        if let Some(id) = conv {
            // Max-abs, scale and round per value; reads f32 rows, writes the converted ones.
            let cost = Cost::new(3 * m * k, m * (4 * k + act_row));
            kernels.charge(id, t0.map_or(0, elapsed_ns), cost.flop, cost.bytes);
        }
        let acts: Acts = act.view(kind, x);
        // Up to 4 matmuls per run, on the stack (`eval` does not allocate).
        for chunk in group.chunks_mut(4) {
            let mut work: [Option<(WeightMat, tessera_kernels::MatmulKernel, OutMat)>; 4] =
                std::array::from_fn(|_| None);
            for ((op, w, out), slot) in chunk.iter_mut().zip(work.iter_mut()) {
                let wm: WeightMat = packed.view(w.mat());
                let kern = kernels.matmul(op, &wm, m);
                let n = wm.n();
                *slot = Some((wm, kern, OutMat::new(out, m, n)));
            }
            let busy: [AtomicU64; 4] = std::array::from_fn(|_| AtomicU64::new(0));
            let t0 = timers.then(Instant::now);
            pool.run(&|tid, nth| {
                for ((wm, kern, out), busy) in work.iter().flatten().zip(&busy) {
                    let cols = split_range(wm.n(), nth, tid, kern.tile.n);
                    let t = timers.then(Instant::now);
                    // SAFETY: split_range gives each thread a disjoint column range within
                    // n; the activations were converted to `w.act_kind()` for `m` rows of k.
                    unsafe { kern.run(wm, acts, out, cols) };
                    if let Some(t) = t {
                        busy.fetch_add(elapsed_ns(t), Ordering::Relaxed);
                    }
                }
            });
            let wall = t0.map_or(0, elapsed_ns);
            let busy = busy.map(AtomicU64::into_inner);
            let total: u64 = busy.iter().sum();
            let n_work = work.iter().flatten().count() as u64;
            for ((wm, kern, _), b) in work.iter().flatten().zip(busy) {
                // A share of the wall time by busy time (evenly if no thread measured any).
                let ns = if total > 0 {
                    (u128::from(wall) * u128::from(b) / u128::from(total)) as u64
                } else {
                    wall / n_work.max(1)
                };
                let cost = Cost::new(
                    2 * m * wm.n() * wm.k(),
                    wm.bytes() + m * act_row + 4 * m * wm.n(),
                );
                kernels.charge(kern.id, ns, cost.flop, cost.bytes);
            }
        }
    }
}
