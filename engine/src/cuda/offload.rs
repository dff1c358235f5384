//! The GPU half of a context's forward pass: the offloaded layers' weights and KV cache on the
//! device, scratch buffers sized once for the largest micro-batch, and the layer loop as the
//! CPU path computes it (RMSNorm, Q/K/V, RoPE, cache store, attention, output projection,
//! residual add, SwiGLU feed-forward, residual add), then the output head when offloaded.
//! Activations cross the bus twice per micro-batch at most: in before the first GPU layer,
//! out after the last one (or only the logits, when the head is offloaded too).

use std::sync::Arc;

use cudarc::driver::{CudaSlice, CudaStream};
use tessera_kernels::GgmlType;
use tessera_kernels::cuda::launch::validate_ids;
use tessera_kernels::cuda::ops::{AttnDims, OpError, op_error};

use super::device::Device;
use super::{INJECT_FAULT_ENV, INJECT_FAULTS, Split};
use crate::context::{ContextParams, KvType};
use crate::error::{EngineError, Result};
use crate::model::{Hparams, Model, Store, Weight};

/// A weight's bytes on the device.
pub(super) struct GpuWeight {
    pub ty: GgmlType,
    pub n: usize,
    pub k: usize,
    pub data: CudaSlice<u8>,
}

pub(super) fn weight_bytes(w: &Weight) -> &[u8] {
    match &w.store {
        Store::F32(v) => bytemuck::cast_slice(v),
        Store::F16(v) => bytemuck::cast_slice(v),
        Store::Q8_0(v) => bytemuck::cast_slice(v),
        Store::Q4_0(v) => bytemuck::cast_slice(v),
        // `Model::repack_for` keeps the layers and head the GPU runs in the plain layout.
        Store::Packed(_) => unreachable!("weights offloaded to the GPU are never repacked"),
    }
}

fn cuda_err(e: OpError) -> EngineError {
    EngineError::Cuda(e.to_string())
}

pub(super) fn upload<T: cudarc::driver::DeviceRepr>(
    s: &Arc<CudaStream>,
    v: &[T],
) -> Result<CudaSlice<T>> {
    s.clone_htod(v).map_err(|e| cuda_err(op_error("CPY", &e)))
}

pub(super) fn zeros<T: cudarc::driver::DeviceRepr + cudarc::driver::ValidAsZeroBits>(
    s: &Arc<CudaStream>,
    n: usize,
) -> Result<CudaSlice<T>> {
    // Never a zero-size allocation: some drivers refuse those.
    s.alloc_zeros(n.max(1))
        .map_err(|e| cuda_err(op_error("ALLOC", &e)))
}

impl GpuWeight {
    pub(super) fn new(s: &Arc<CudaStream>, w: &Weight) -> Result<Self> {
        Ok(GpuWeight {
            ty: w.ty(),
            n: w.n,
            k: w.k,
            data: upload(s, weight_bytes(w))?,
        })
    }
}

struct GpuLayer {
    attn_norm: CudaSlice<f32>,
    ffn_norm: CudaSlice<f32>,
    wq: GpuWeight,
    wk: GpuWeight,
    wv: GpuWeight,
    wo: GpuWeight,
    w_gate: GpuWeight,
    w_up: GpuWeight,
    w_down: GpuWeight,
    k_cache: CudaSlice<u8>,
    v_cache: CudaSlice<u8>,
}

struct Buffers {
    x: CudaSlice<f32>,
    xn: CudaSlice<f32>,
    q: CudaSlice<f32>,
    k: CudaSlice<f32>,
    v: CudaSlice<f32>,
    attn: CudaSlice<f32>,
    proj: CudaSlice<f32>,
    gate: CudaSlice<f32>,
    up: CudaSlice<f32>,
    /// Q8_0 activations for quantized matmuls: up to n_ubatch rows of max(e, ff).
    act_q: CudaSlice<u8>,
    /// Attention scores: n_ubatch * n_head rows of n_ctx.
    scores: CudaSlice<f32>,
    ids: CudaSlice<i32>,
    logits: CudaSlice<f32>,
}

/// The offloaded part of one context.
pub struct Offload {
    dev: Arc<Device>,
    split: Split,
    hp: Hparams,
    n_ctx: usize,
    k_half: bool,
    v_half: bool,
    layers: Vec<GpuLayer>,
    tok_embd: Option<GpuWeight>,
    output_norm: Option<CudaSlice<f32>>,
    head: Option<GpuWeight>,
    theta: CudaSlice<f32>,
    b: Buffers,
    inject_get_rows: bool,
}

impl Offload {
    /// Opens GPU 0 (a clear `NoCudaDevice` error when there is none), uploads the offloaded
    /// layers (`params.n_gpu_layers`, the last ones) and allocates their cache and buffers.
    pub fn new(model: &Model, params: &ContextParams) -> Result<Self> {
        let inject = match std::env::var(INJECT_FAULT_ENV) {
            Ok(v) if v.is_empty() => None,
            Ok(v) if INJECT_FAULTS.contains(&v.as_str()) => Some(v),
            Ok(v) => {
                return Err(EngineError::Invalid(format!(
                    "{INJECT_FAULT_ENV}='{v}' is not valid; valid: {}",
                    INJECT_FAULTS.join(", ")
                )));
            }
            Err(_) => None,
        };
        let dev = Device::shared(0)?;
        let s = dev.stream().clone();
        let hp = model.hp.clone();
        let split = Split::new(hp.n_layer, params.n_gpu_layers);
        let (e, kvw, ff, ub) = (
            hp.n_embd,
            hp.n_embd_kv(),
            hp.n_ff,
            params.n_ubatch.min(params.n_batch),
        );
        let elem = |t: KvType| if t == KvType::F16 { 2 } else { 4 };
        let kv_elems = params.n_ctx.checked_mul(kvw).ok_or_else(|| {
            EngineError::Invalid(format!(
                "context of {} positions is too large",
                params.n_ctx
            ))
        })?;
        let mut layers = Vec::new();
        for l in split.gpu_layers() {
            let w = &model.layers[l];
            layers.push(GpuLayer {
                attn_norm: upload(&s, &w.attn_norm)?,
                ffn_norm: upload(&s, &w.ffn_norm)?,
                wq: GpuWeight::new(&s, &w.wq)?,
                wk: GpuWeight::new(&s, &w.wk)?,
                wv: GpuWeight::new(&s, &w.wv)?,
                wo: GpuWeight::new(&s, &w.wo)?,
                w_gate: GpuWeight::new(&s, &w.w_gate)?,
                w_up: GpuWeight::new(&s, &w.w_up)?,
                w_down: GpuWeight::new(&s, &w.w_down)?,
                k_cache: zeros(&s, kv_elems * elem(params.type_k))?,
                v_cache: zeros(&s, kv_elems * elem(params.type_v))?,
            });
        }
        let tok_embd = if split.embedding_on_gpu() {
            Some(GpuWeight::new(&s, &model.tok_embd)?)
        } else {
            None
        };
        let (output_norm, head) = if split.head_on_gpu {
            (
                Some(upload(&s, &model.output_norm)?),
                Some(GpuWeight::new(&s, model.head())?),
            )
        } else {
            (None, None)
        };
        let theta: Vec<f32> = (0..hp.n_rot / 2)
            .map(|i| (f64::from(hp.rope_freq_base).powf(-2.0 * i as f64 / hp.n_rot as f64)) as f32)
            .collect();
        let active = !split.is_empty();
        // Buffers only when something runs on the GPU (-ngl 0 still opens the device).
        let n = |len: usize| if active { len } else { 1 };
        let logit_rows = if params.logits_all { ub } else { 1 };
        let b = Buffers {
            x: zeros(&s, n(ub * e))?,
            xn: zeros(&s, n(ub * e))?,
            q: zeros(&s, n(ub * e))?,
            k: zeros(&s, n(ub * kvw))?,
            v: zeros(&s, n(ub * kvw))?,
            attn: zeros(&s, n(ub * e))?,
            proj: zeros(&s, n(ub * e))?,
            gate: zeros(&s, n(ub * ff))?,
            up: zeros(&s, n(ub * ff))?,
            act_q: zeros(&s, n(ub * e.max(ff) / 32 * 34))?,
            scores: zeros(&s, n(ub * hp.n_head * params.n_ctx))?,
            ids: zeros(&s, n(ub))?,
            logits: zeros(
                &s,
                if split.head_on_gpu {
                    logit_rows * hp.n_vocab
                } else {
                    1
                },
            )?,
        };
        Ok(Offload {
            theta: upload(
                &s,
                if theta.is_empty() {
                    &[0.0f32][..]
                } else {
                    &theta
                },
            )?,
            dev,
            split,
            hp,
            n_ctx: params.n_ctx,
            k_half: params.type_k == KvType::F16,
            v_half: params.type_v == KvType::F16,
            layers,
            tok_embd,
            output_norm,
            head,
            b,
            inject_get_rows: inject.is_some(),
        })
    }

    pub fn split(&self) -> Split {
        self.split
    }

    pub fn device(&self) -> &Arc<Device> {
        &self.dev
    }

    /// Runs the GPU part of one micro-batch of `tokens` at positions `pos0..`. `x` holds the
    /// residual stream after the CPU layers (ignored when the embedding runs on the GPU) and
    /// receives it back when the head stays on the CPU; with the head offloaded, the logits of
    /// the last `rows` tokens go to `logits` and the result is `true`.
    pub fn forward(
        &mut self,
        tokens: &[u32],
        x: &mut [f32],
        pos0: usize,
        logits: &mut [f32],
        rows: usize,
    ) -> Result<bool> {
        if self.split.is_empty() {
            return Ok(false);
        }
        let hp = &self.hp;
        let m = tokens.len();
        let (e, kvw, ff) = (hp.n_embd, hp.n_embd_kv(), hp.n_ff);
        let (hd, n_head, n_head_kv) = (hp.head_dim(), hp.n_head, hp.n_head_kv);
        let dev = self.dev.clone();
        let l = dev.launcher();
        let s = dev.stream();
        let b = &mut self.b;
        let cpy = |e: cudarc::driver::DriverError| cuda_err(op_error("CPY", &e));

        if let Some(embd) = &self.tok_embd {
            let ids = if self.inject_get_rows {
                // Test hook: an id far past the last row, without validation.
                let mut ids: Vec<i32> = tokens.iter().map(|&t| t as i32).collect();
                ids[0] = i32::MAX;
                ids
            } else {
                validate_ids(tokens, embd.n)
                    .map_err(|e| EngineError::Cuda(format!("GET_ROWS failed: {e}")))?
            };
            s.memcpy_htod(&ids, &mut b.ids.slice_mut(..m))
                .map_err(cpy)?;
            l.get_rows(
                embd.ty,
                &embd.data.as_view(),
                e,
                &b.ids.slice(..m),
                &mut b.x.slice_mut(..m * e),
            )
            .map_err(cuda_err)?;
        } else {
            s.memcpy_htod(&x[..m * e], &mut b.x.slice_mut(..m * e))
                .map_err(cpy)?;
        }

        for layer in &mut self.layers {
            l.rms_norm(
                &b.x.slice(..m * e),
                &layer.attn_norm.as_view(),
                &mut b.xn.slice_mut(..m * e),
                m,
                e,
                hp.rms_eps,
            )
            .map_err(cuda_err)?;
            for (w, out, width) in [
                (&layer.wq, &mut b.q, e),
                (&layer.wk, &mut b.k, kvw),
                (&layer.wv, &mut b.v, kvw),
            ] {
                l.mul_mat(
                    w.ty,
                    &w.data.as_view(),
                    w.n,
                    w.k,
                    &b.xn.slice(..m * e),
                    m,
                    &mut b.act_q.as_view_mut(),
                    &mut out.slice_mut(..m * width),
                )
                .map_err(cuda_err)?;
            }
            let theta = self.theta.as_view();
            l.rope(
                &mut b.q.slice_mut(..m * e),
                &theta,
                m,
                e,
                n_head,
                hd,
                hp.n_rot,
                pos0,
            )
            .map_err(cuda_err)?;
            l.rope(
                &mut b.k.slice_mut(..m * kvw),
                &theta,
                m,
                kvw,
                n_head_kv,
                hd,
                hp.n_rot,
                pos0,
            )
            .map_err(cuda_err)?;
            l.kv_store(
                &b.k.slice(..m * kvw),
                &mut layer.k_cache.as_view_mut(),
                self.k_half,
                pos0 * kvw,
            )
            .map_err(cuda_err)?;
            l.kv_store(
                &b.v.slice(..m * kvw),
                &mut layer.v_cache.as_view_mut(),
                self.v_half,
                pos0 * kvw,
            )
            .map_err(cuda_err)?;
            l.attention(
                &b.q.slice(..m * e),
                &layer.k_cache.as_view(),
                self.k_half,
                &layer.v_cache.as_view(),
                self.v_half,
                &mut b.attn.slice_mut(..m * e),
                &mut b.scores.as_view_mut(),
                AttnDims {
                    tokens: m,
                    n_head,
                    n_head_kv,
                    head_dim: hd,
                    pos0,
                    n_ctx: self.n_ctx,
                },
            )
            .map_err(cuda_err)?;
            let w = &layer.wo;
            l.mul_mat(
                w.ty,
                &w.data.as_view(),
                w.n,
                w.k,
                &b.attn.slice(..m * e),
                m,
                &mut b.act_q.as_view_mut(),
                &mut b.proj.slice_mut(..m * e),
            )
            .map_err(cuda_err)?;
            l.add(&mut b.x.slice_mut(..m * e), &b.proj.slice(..m * e))
                .map_err(cuda_err)?;

            l.rms_norm(
                &b.x.slice(..m * e),
                &layer.ffn_norm.as_view(),
                &mut b.xn.slice_mut(..m * e),
                m,
                e,
                hp.rms_eps,
            )
            .map_err(cuda_err)?;
            for (w, out) in [(&layer.w_gate, &mut b.gate), (&layer.w_up, &mut b.up)] {
                l.mul_mat(
                    w.ty,
                    &w.data.as_view(),
                    w.n,
                    w.k,
                    &b.xn.slice(..m * e),
                    m,
                    &mut b.act_q.as_view_mut(),
                    &mut out.slice_mut(..m * ff),
                )
                .map_err(cuda_err)?;
            }
            l.swiglu(&mut b.gate.slice_mut(..m * ff), &b.up.slice(..m * ff))
                .map_err(cuda_err)?;
            let w = &layer.w_down;
            l.mul_mat(
                w.ty,
                &w.data.as_view(),
                w.n,
                w.k,
                &b.gate.slice(..m * ff),
                m,
                &mut b.act_q.as_view_mut(),
                &mut b.proj.slice_mut(..m * e),
            )
            .map_err(cuda_err)?;
            l.add(&mut b.x.slice_mut(..m * e), &b.proj.slice(..m * e))
                .map_err(cuda_err)?;
        }

        if let (Some(norm), Some(head)) = (&self.output_norm, &self.head) {
            if rows == 0 {
                l.synchronize("CPY").map_err(cuda_err)?;
                return Ok(true);
            }
            let first = m - rows;
            l.rms_norm(
                &b.x.slice(first * e..m * e),
                &norm.as_view(),
                &mut b.xn.slice_mut(..rows * e),
                rows,
                e,
                hp.rms_eps,
            )
            .map_err(cuda_err)?;
            let nv = head.n;
            l.mul_mat(
                head.ty,
                &head.data.as_view(),
                head.n,
                head.k,
                &b.xn.slice(..rows * e),
                rows,
                &mut b.act_q.as_view_mut(),
                &mut b.logits.slice_mut(..rows * nv),
            )
            .map_err(cuda_err)?;
            s.memcpy_dtoh(&b.logits.slice(..rows * nv), &mut logits[..rows * nv])
                .map_err(cpy)?;
            l.synchronize("CPY").map_err(cuda_err)?;
            return Ok(true);
        }
        s.memcpy_dtoh(&b.x.slice(..m * e), &mut x[..m * e])
            .map_err(cpy)?;
        l.synchronize("CPY").map_err(cuda_err)?;
        Ok(false)
    }
}
