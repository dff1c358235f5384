//! Single GPU ops on host data: upload the inputs, run one launcher, download the result.
//! They exist for the GPU-vs-CPU equivalence tests (engine/tests/cuda_ops.rs), which check each
//! op of the forward pass on its own before the whole pass is compared.

use tessera_kernels::cuda::launch::validate_ids;
use tessera_kernels::cuda::ops::{AttnDims, op_error};

use super::device::Device;
use super::offload::{GpuWeight, upload, zeros};
use crate::context::KvType;
use crate::error::{EngineError, Result};
use crate::model::Weight;

fn cuda_err(e: tessera_kernels::cuda::ops::OpError) -> EngineError {
    EngineError::Cuda(e.to_string())
}

impl Device {
    fn download(&self, d: &cudarc::driver::CudaSlice<f32>, n: usize) -> Result<Vec<f32>> {
        let mut out = vec![0.0f32; n];
        self.stream()
            .memcpy_dtoh(&d.slice(..n), &mut out[..])
            .map_err(|e| cuda_err(op_error("CPY", &e)))?;
        self.launcher().synchronize("CPY").map_err(cuda_err)?;
        Ok(out)
    }

    /// GET_ROWS: the rows `ids` of `w`, dequantized, row after row. Ids are validated first.
    pub fn get_rows(&self, w: &Weight, ids: &[u32]) -> Result<Vec<f32>> {
        let ids = validate_ids(ids, w.n)
            .map_err(|e| EngineError::Cuda(format!("GET_ROWS failed: {e}")))?;
        let s = self.stream();
        let gw = GpuWeight::new(s, w)?;
        let d_ids = upload(s, if ids.is_empty() { &[0i32][..] } else { &ids })?;
        let n = ids.len() * w.k;
        let mut out = zeros::<f32>(s, n)?;
        self.launcher()
            .get_rows(
                gw.ty,
                &gw.data.as_view(),
                w.k,
                &d_ids.slice(..ids.len()),
                &mut out.slice_mut(..n),
            )
            .map_err(cuda_err)?;
        self.download(&out, n)
    }

    /// MUL_MAT: `m` rows of activations `x` (each `w.k` long) times `w`; `m * w.n` outputs,
    /// token-major.
    pub fn mul_mat(&self, w: &Weight, x: &[f32], m: usize) -> Result<Vec<f32>> {
        if x.len() != m * w.k {
            return Err(EngineError::Invalid(format!(
                "{} activations are not {m} rows of {}",
                x.len(),
                w.k
            )));
        }
        let s = self.stream();
        let gw = GpuWeight::new(s, w)?;
        let dx = upload(s, x)?;
        let mut act = zeros::<u8>(s, m * w.k / 32 * 34)?;
        let mut out = zeros::<f32>(s, m * w.n)?;
        self.launcher()
            .mul_mat(
                gw.ty,
                &gw.data.as_view(),
                gw.n,
                gw.k,
                &dx.as_view(),
                m,
                &mut act.as_view_mut(),
                &mut out.as_view_mut(),
            )
            .map_err(cuda_err)?;
        self.download(&out, m * w.n)
    }

    /// RMS_NORM of each row of `x` (rows of `w.len()`).
    pub fn rms_norm(&self, x: &[f32], w: &[f32], eps: f32) -> Result<Vec<f32>> {
        let s = self.stream();
        let rows = x.len() / w.len().max(1);
        let (dx, dw) = (upload(s, x)?, upload(s, w)?);
        let mut out = zeros::<f32>(s, x.len())?;
        self.launcher()
            .rms_norm(
                &dx.as_view(),
                &dw.as_view(),
                &mut out.as_view_mut(),
                rows,
                w.len(),
                eps,
            )
            .map_err(cuda_err)?;
        self.download(&out, x.len())
    }

    /// ROPE ("normal") of `tokens` rows of `n_heads * head_dim` at positions `pos0..`.
    #[allow(clippy::too_many_arguments)]
    pub fn rope(
        &self,
        x: &[f32],
        theta: &[f32],
        tokens: usize,
        n_heads: usize,
        head_dim: usize,
        n_rot: usize,
        pos0: usize,
    ) -> Result<Vec<f32>> {
        let s = self.stream();
        let mut dx = upload(s, x)?;
        let dt = upload(
            s,
            if theta.is_empty() {
                &[0.0f32][..]
            } else {
                theta
            },
        )?;
        self.launcher()
            .rope(
                &mut dx.as_view_mut(),
                &dt.as_view(),
                tokens,
                n_heads * head_dim,
                n_heads,
                head_dim,
                n_rot,
                pos0,
            )
            .map_err(cuda_err)?;
        self.download(&dx, x.len())
    }

    /// GLU (SwiGLU): `silu(gate) * up`.
    pub fn swiglu(&self, gate: &[f32], up: &[f32]) -> Result<Vec<f32>> {
        let s = self.stream();
        let (mut g, u) = (upload(s, gate)?, upload(s, up)?);
        self.launcher()
            .swiglu(&mut g.as_view_mut(), &u.as_view())
            .map_err(cuda_err)?;
        self.download(&g, gate.len())
    }

    /// ADD: `x + y`.
    pub fn add(&self, x: &[f32], y: &[f32]) -> Result<Vec<f32>> {
        let s = self.stream();
        let (mut dx, dy) = (upload(s, x)?, upload(s, y)?);
        self.launcher()
            .add(&mut dx.as_view_mut(), &dy.as_view())
            .map_err(cuda_err)?;
        self.download(&dx, x.len())
    }

    /// Attention of `dims.tokens` queries over K/V caches of `dims.pos0 + dims.tokens`
    /// positions given in f32 and stored on the device as `kv` (through the SET_ROWS kernel).
    pub fn attention(
        &self,
        q: &[f32],
        k: &[f32],
        v: &[f32],
        kv: KvType,
        dims: AttnDims,
    ) -> Result<Vec<f32>> {
        let s = self.stream();
        let half = kv == KvType::F16;
        let elem = if half { 2 } else { 4 };
        let kv_len = dims.n_ctx * dims.n_head_kv * dims.head_dim;
        let (dk, dv) = (upload(s, k)?, upload(s, v)?);
        let mut kc = zeros::<u8>(s, kv_len * elem)?;
        let mut vc = zeros::<u8>(s, kv_len * elem)?;
        let l = self.launcher();
        l.kv_store(&dk.as_view(), &mut kc.as_view_mut(), half, 0)
            .map_err(cuda_err)?;
        l.kv_store(&dv.as_view(), &mut vc.as_view_mut(), half, 0)
            .map_err(cuda_err)?;
        let dq = upload(s, q)?;
        let mut out = zeros::<f32>(s, q.len())?;
        let mut scores = zeros::<f32>(s, dims.tokens * dims.n_head * dims.n_ctx)?;
        l.attention(
            &dq.as_view(),
            &kc.as_view(),
            half,
            &vc.as_view(),
            half,
            &mut out.as_view_mut(),
            &mut scores.as_view_mut(),
            dims,
        )
        .map_err(cuda_err)?;
        self.download(&out, q.len())
    }
}
