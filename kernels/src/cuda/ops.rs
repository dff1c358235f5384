//! Launchers: one method per GPU op, which checks buffer sizes on the host, computes the launch
//! shape (launch.rs), launches on the stream and, when `CUDA_LAUNCH_BLOCKING=1`, synchronises
//! so that an asynchronous fault is reported by the op that caused it. Errors read as
//! llama.cpp's "<OP> failed: <CUDA error string>", the text tessera's fault classifier knows.

use std::fmt;
use std::sync::Arc;

use cudarc::driver::{
    CudaFunction, CudaModule, CudaStream, CudaView, CudaViewMut, DriverError, LaunchConfig,
    PushKernelArg,
};

use super::launch::{self, Launch};
use crate::GgmlType;

/// Every `extern "C"` kernel of kernels.cu; each is looked up when a module is loaded.
pub const KERNEL_NAMES: &[&str] = &[
    "get_rows_f32",
    "get_rows_f16",
    "get_rows_q8_0",
    "get_rows_q4_0",
    "quantize_q8_0",
    "mul_mat_q4_0",
    "mul_mat_q8_0",
    "mul_mat_f16",
    "mul_mat_f32",
    "rms_norm",
    "rope_normal",
    "kv_store_f16",
    "kv_store_f32",
    "swiglu",
    "add",
    "attention_f16_f16",
    "attention_f16_f32",
    "attention_f32_f16",
    "attention_f32_f32",
];

/// A failed GPU op: `op` is ggml's op name (GET_ROWS, MUL_MAT, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpError {
    pub op: &'static str,
    pub message: String,
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed: {}", self.op, self.message)
    }
}

impl std::error::Error for OpError {}

/// The text of a driver error: "an illegal memory access was encountered
/// (CUDA_ERROR_ILLEGAL_ADDRESS, code 700)". Only ever called with the driver loaded (an error
/// can only come from a call into it).
pub fn driver_error_text(e: &DriverError) -> String {
    let code = e.0 as i32;
    let s = e.error_string().map(|c| c.to_string_lossy().into_owned());
    let n = e.error_name().map(|c| c.to_string_lossy().into_owned());
    match (s, n) {
        (Ok(s), Ok(n)) => format!("{s} ({n}, code {code})"),
        _ => format!("CUDA error code {code}"),
    }
}

pub fn op_error(op: &'static str, e: &DriverError) -> OpError {
    OpError {
        op,
        message: driver_error_text(e),
    }
}

fn shape_error(op: &'static str, message: String) -> OpError {
    OpError { op, message }
}

fn cfg(l: Launch) -> LaunchConfig {
    LaunchConfig {
        grid_dim: l.grid,
        block_dim: l.block,
        shared_mem_bytes: l.shared,
    }
}

/// The kernels of one loaded module on one stream.
pub struct Launcher {
    stream: Arc<CudaStream>,
    funcs: Vec<(&'static str, CudaFunction)>,
    sync_each: bool,
}

type R = Result<(), OpError>;

impl Launcher {
    /// Looks up every kernel of [`KERNEL_NAMES`]. `sync_each`: synchronise after every launch
    /// (set from `CUDA_LAUNCH_BLOCKING=1`).
    pub fn new(
        stream: Arc<CudaStream>,
        module: &Arc<CudaModule>,
        sync_each: bool,
    ) -> Result<Self, OpError> {
        let funcs = KERNEL_NAMES
            .iter()
            .map(|&n| {
                module.load_function(n).map(|f| (n, f)).map_err(|e| {
                    shape_error("LOAD", format!("kernel '{n}': {}", driver_error_text(&e)))
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            stream,
            funcs,
            sync_each,
        })
    }

    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    pub fn sync_each(&self) -> bool {
        self.sync_each
    }

    fn func(&self, name: &str) -> &CudaFunction {
        &self
            .funcs
            .iter()
            .find(|(n, _)| *n == name)
            .expect("every name in KERNEL_NAMES was loaded")
            .1
    }

    fn done(&self, op: &'static str, r: Result<(), DriverError>) -> R {
        r.map_err(|e| op_error(op, &e))?;
        if self.sync_each {
            self.stream.synchronize().map_err(|e| op_error(op, &e))?;
        }
        Ok(())
    }

    fn need<T>(op: &'static str, what: &str, have: usize, need: u64) -> R {
        if (have as u64) < need {
            return Err(shape_error(
                op,
                format!(
                    "{what} buffer of {have} {} is smaller than the {need} the launch needs",
                    std::any::type_name::<T>()
                ),
            ));
        }
        Ok(())
    }

    /// `dst[i, :] = dequant(src row ids[i])` for `ids.len()` ids; the caller validated the ids
    /// ([`launch::validate_ids`]) unless it means to fault.
    pub fn get_rows(
        &self,
        ty: GgmlType,
        src: &CudaView<u8>,
        ncols: usize,
        ids: &CudaView<i32>,
        dst: &mut CudaViewMut<f32>,
    ) -> R {
        const OP: &str = "GET_ROWS";
        let (name, row_bytes) = match ty {
            GgmlType::F32 => ("get_rows_f32", ncols as u64 * 4),
            GgmlType::F16 => ("get_rows_f16", ncols as u64 * 2),
            GgmlType::Q8_0 => ("get_rows_q8_0", ncols as u64 / 32 * 34),
            GgmlType::Q4_0 => ("get_rows_q4_0", ncols as u64 / 32 * 18),
            t => {
                return Err(shape_error(
                    OP,
                    format!("type {t} is not supported on the GPU"),
                ));
            }
        };
        let n_ids = ids.len() as u64;
        let total = n_ids * ncols as u64;
        Self::need::<f32>(OP, "destination", dst.len(), total)?;
        if n_ids == 0 {
            return Ok(());
        }
        let l = launch::elementwise(total).map_err(|e| shape_error(OP, e.0))?;
        let (nc, rb, ni) = (ncols as i64, row_bytes as i64, n_ids as i64);
        let f = self.func(name);
        let mut b = self.stream.launch_builder(f);
        b.arg(src).arg(ids).arg(dst).arg(&ni).arg(&nc).arg(&rb);
        // SAFETY: argument types match the kernel signature (u8*, i32*, f32*, 3 x i64); the
        // destination holds n_ids*ncols floats (checked); ids index rows of `src` (validated by
        // the caller).
        self.done(OP, unsafe { b.launch(cfg(l)) }.map(|_| ()))
    }

    /// Q8_0 quantization of `x` (a multiple of 32 values) into `out` (34 bytes per block).
    fn quantize_q8_0(
        &self,
        op: &'static str,
        x: &CudaView<f32>,
        n: u64,
        out: &mut CudaViewMut<u8>,
    ) -> R {
        let blocks = n / 32;
        Self::need::<u8>(op, "Q8_0 activation", out.len(), blocks * 34)?;
        Self::need::<f32>(op, "activation", x.len(), n)?;
        let l = launch::per_block32(blocks).map_err(|e| shape_error(op, e.0))?;
        let nb = blocks as i64;
        let mut b = self.stream.launch_builder(self.func("quantize_q8_0"));
        b.arg(x).arg(out).arg(&nb);
        // SAFETY: x holds 32*blocks floats, out 34*blocks bytes (checked).
        self.done(op, unsafe { b.launch(cfg(l)) }.map(|_| ()))
    }

    /// `out[t, j] = dot(W row j, x row t)` for `m` tokens, W = `n` rows of `k` in type `ty`.
    /// Q4_0/Q8_0 weights quantize `x` to Q8_0 into `act_q` first, as the CPU path does.
    #[allow(clippy::too_many_arguments)]
    pub fn mul_mat(
        &self,
        ty: GgmlType,
        w: &CudaView<u8>,
        n: usize,
        k: usize,
        x: &CudaView<f32>,
        m: usize,
        act_q: &mut CudaViewMut<u8>,
        out: &mut CudaViewMut<f32>,
    ) -> R {
        const OP: &str = "MUL_MAT";
        let (n64, k64, m64) = (n as u64, k as u64, m as u64);
        Self::need::<f32>(OP, "activation", x.len(), m64 * k64)?;
        Self::need::<f32>(OP, "output", out.len(), m64 * n64)?;
        let wbytes = match ty {
            GgmlType::F32 => n64 * k64 * 4,
            GgmlType::F16 => n64 * k64 * 2,
            GgmlType::Q8_0 => n64 * (k64 / 32) * 34,
            GgmlType::Q4_0 => n64 * (k64 / 32) * 18,
            t => {
                return Err(shape_error(
                    OP,
                    format!("type {t} is not supported on the GPU"),
                ));
            }
        };
        Self::need::<u8>(OP, "weight", w.len(), wbytes)?;
        if m == 0 || n == 0 {
            return Ok(());
        }
        let l = launch::mul_mat(n64, m64).map_err(|e| shape_error(OP, e.0))?;
        let (ni, ki, mi) = (n as i64, k as i64, m as i64);
        let name = match ty {
            GgmlType::Q4_0 | GgmlType::Q8_0 => {
                if !k.is_multiple_of(32) {
                    return Err(shape_error(
                        OP,
                        format!("row length {k} is not a multiple of 32"),
                    ));
                }
                self.quantize_q8_0(OP, x, m64 * k64, act_q)?;
                if ty == GgmlType::Q4_0 {
                    "mul_mat_q4_0"
                } else {
                    "mul_mat_q8_0"
                }
            }
            GgmlType::F16 => "mul_mat_f16",
            _ => "mul_mat_f32",
        };
        let mut b = self.stream.launch_builder(self.func(name));
        b.arg(w);
        let act_view = act_q.as_view();
        if matches!(ty, GgmlType::Q4_0 | GgmlType::Q8_0) {
            b.arg(&act_view);
        } else {
            b.arg(x);
        }
        b.arg(out).arg(&ni).arg(&ki).arg(&mi);
        // SAFETY: weight, activation and output sizes were checked above against n, k, m.
        self.done(OP, unsafe { b.launch(cfg(l)) }.map(|_| ()))
    }

    /// `y[r] = rms_norm(x[r]) * w` for `rows` rows of `ncols`.
    pub fn rms_norm(
        &self,
        x: &CudaView<f32>,
        w: &CudaView<f32>,
        y: &mut CudaViewMut<f32>,
        rows: usize,
        ncols: usize,
        eps: f32,
    ) -> R {
        const OP: &str = "RMS_NORM";
        let total = rows as u64 * ncols as u64;
        Self::need::<f32>(OP, "input", x.len(), total)?;
        Self::need::<f32>(OP, "output", y.len(), total)?;
        Self::need::<f32>(OP, "weight", w.len(), ncols as u64)?;
        let l = launch::per_row(rows as u64).map_err(|e| shape_error(OP, e.0))?;
        let (r, c) = (rows as i64, ncols as i64);
        let mut b = self.stream.launch_builder(self.func("rms_norm"));
        b.arg(x).arg(w).arg(y).arg(&r).arg(&c).arg(&eps);
        // SAFETY: sizes checked above.
        self.done(OP, unsafe { b.launch(cfg(l)) }.map(|_| ()))
    }

    /// RoPE ("normal" mode) in place on `tokens` rows of `row_len` holding `n_heads` heads.
    #[allow(clippy::too_many_arguments)]
    pub fn rope(
        &self,
        x: &mut CudaViewMut<f32>,
        theta: &CudaView<f32>,
        tokens: usize,
        row_len: usize,
        n_heads: usize,
        head_dim: usize,
        n_rot: usize,
        pos0: usize,
    ) -> R {
        const OP: &str = "ROPE";
        Self::need::<f32>(OP, "input", x.len(), tokens as u64 * row_len as u64)?;
        Self::need::<f32>(OP, "theta", theta.len(), n_rot as u64 / 2)?;
        if n_heads * head_dim > row_len || n_rot > head_dim {
            return Err(shape_error(
                OP,
                format!("{n_heads} heads of {head_dim} (rot {n_rot}) do not fit rows of {row_len}"),
            ));
        }
        let pairs = tokens as u64 * n_heads as u64 * (n_rot as u64 / 2);
        if pairs == 0 {
            return Ok(());
        }
        let l = launch::elementwise(pairs).map_err(|e| shape_error(OP, e.0))?;
        let a = [tokens, row_len, n_heads, head_dim, n_rot, pos0].map(|v| v as i64);
        let mut b = self.stream.launch_builder(self.func("rope_normal"));
        b.arg(x)
            .arg(theta)
            .arg(&a[0])
            .arg(&a[1])
            .arg(&a[2])
            .arg(&a[3])
            .arg(&a[4])
            .arg(&a[5]);
        // SAFETY: sizes checked above.
        self.done(OP, unsafe { b.launch(cfg(l)) }.map(|_| ()))
    }

    /// Stores `src` into a KV cache (f16 or f32 elements as raw bytes) at element `at`.
    pub fn kv_store(
        &self,
        src: &CudaView<f32>,
        cache: &mut CudaViewMut<u8>,
        half: bool,
        at: usize,
    ) -> R {
        const OP: &str = "SET_ROWS";
        let n = src.len() as u64;
        let elem = if half { 2 } else { 4 };
        Self::need::<u8>(OP, "cache", cache.len(), (at as u64 + n) * elem)?;
        let l = launch::elementwise(n).map_err(|e| shape_error(OP, e.0))?;
        let (a, ni) = (at as i64, n as i64);
        let mut b = self.stream.launch_builder(self.func(if half {
            "kv_store_f16"
        } else {
            "kv_store_f32"
        }));
        b.arg(src).arg(cache).arg(&a).arg(&ni);
        // SAFETY: the cache holds at+n elements (checked).
        self.done(OP, unsafe { b.launch(cfg(l)) }.map(|_| ()))
    }

    /// `gate = silu(gate) * up` over `gate.len()` values.
    pub fn swiglu(&self, gate: &mut CudaViewMut<f32>, up: &CudaView<f32>) -> R {
        const OP: &str = "GLU";
        let n = gate.len() as u64;
        Self::need::<f32>(OP, "up", up.len(), n)?;
        let l = launch::elementwise(n).map_err(|e| shape_error(OP, e.0))?;
        let ni = n as i64;
        let mut b = self.stream.launch_builder(self.func("swiglu"));
        b.arg(gate).arg(up).arg(&ni);
        // SAFETY: both hold n floats (checked).
        self.done(OP, unsafe { b.launch(cfg(l)) }.map(|_| ()))
    }

    /// `x += y` over `x.len()` values.
    pub fn add(&self, x: &mut CudaViewMut<f32>, y: &CudaView<f32>) -> R {
        const OP: &str = "ADD";
        let n = x.len() as u64;
        Self::need::<f32>(OP, "addend", y.len(), n)?;
        let l = launch::elementwise(n).map_err(|e| shape_error(OP, e.0))?;
        let ni = n as i64;
        let mut b = self.stream.launch_builder(self.func("add"));
        b.arg(x).arg(y).arg(&ni);
        // SAFETY: both hold n floats (checked).
        self.done(OP, unsafe { b.launch(cfg(l)) }.map(|_| ()))
    }

    /// Causal GQA attention of `tokens` queries at positions `pos0..` over the cache;
    /// `scores` is scratch of `tokens * n_head * n_ctx` floats.
    #[allow(clippy::too_many_arguments)]
    pub fn attention(
        &self,
        q: &CudaView<f32>,
        k_cache: &CudaView<u8>,
        k_half: bool,
        v_cache: &CudaView<u8>,
        v_half: bool,
        out: &mut CudaViewMut<f32>,
        scores: &mut CudaViewMut<f32>,
        dims: AttnDims,
    ) -> R {
        const OP: &str = "FLASH_ATTN_EXT";
        let d = dims;
        if d.n_head == 0 || d.n_head_kv == 0 || !d.n_head.is_multiple_of(d.n_head_kv) {
            return Err(shape_error(
                OP,
                format!("{} heads cannot share {} KV heads", d.n_head, d.n_head_kv),
            ));
        }
        let kv_w = d.n_head_kv as u64 * d.head_dim as u64;
        let q_len = d.tokens as u64 * d.n_head as u64 * d.head_dim as u64;
        let n_kv = (d.pos0 + d.tokens) as u64;
        if n_kv > d.n_ctx as u64 {
            return Err(shape_error(
                OP,
                format!("{n_kv} positions exceed the context of {}", d.n_ctx),
            ));
        }
        Self::need::<f32>(OP, "query", q.len(), q_len)?;
        Self::need::<f32>(OP, "output", out.len(), q_len)?;
        Self::need::<f32>(
            OP,
            "score",
            scores.len(),
            d.tokens as u64 * d.n_head as u64 * d.n_ctx as u64,
        )?;
        Self::need::<u8>(
            OP,
            "K cache",
            k_cache.len(),
            n_kv * kv_w * if k_half { 2 } else { 4 },
        )?;
        Self::need::<u8>(
            OP,
            "V cache",
            v_cache.len(),
            n_kv * kv_w * if v_half { 2 } else { 4 },
        )?;
        let jobs = d.tokens as u64 * d.n_head as u64;
        if jobs == 0 {
            return Ok(());
        }
        let l = launch::attention(jobs, d.head_dim as u64).map_err(|e| shape_error(OP, e.0))?;
        let name = match (k_half, v_half) {
            (true, true) => "attention_f16_f16",
            (true, false) => "attention_f16_f32",
            (false, true) => "attention_f32_f16",
            (false, false) => "attention_f32_f32",
        };
        let a = [
            d.tokens,
            d.n_head,
            d.n_head_kv,
            d.head_dim,
            kv_w as usize,
            d.pos0,
            d.n_ctx,
        ]
        .map(|v| v as i64);
        let scale = 1.0f32 / (d.head_dim as f32).sqrt();
        let mut b = self.stream.launch_builder(self.func(name));
        b.arg(q).arg(k_cache).arg(v_cache).arg(out).arg(scores);
        for v in &a {
            b.arg(v);
        }
        b.arg(&scale);
        // SAFETY: every buffer was checked above against the positions the kernel reads.
        self.done(OP, unsafe { b.launch(cfg(l)) }.map(|_| ()))
    }

    /// Waits for the stream; an asynchronous fault surfaces here, named `op`.
    pub fn synchronize(&self, op: &'static str) -> R {
        self.stream.synchronize().map_err(|e| op_error(op, &e))
    }
}

/// Shape of one attention call.
#[derive(Clone, Copy, Debug)]
pub struct AttnDims {
    pub tokens: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
    pub pos0: usize,
    pub n_ctx: usize,
}
