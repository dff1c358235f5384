//! The dispatch table: which ISA's kernels run, with which tile, and a record of every kernel
//! call so that "was this kernel really used?" has an answer in the data.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;
use std::sync::Mutex;

use half::f16;

use crate::cpu::scalar;
use crate::matrix::{Acts, OutMat, WeightMat};
use crate::tile::TileConfig;

/// An instruction-set family with its own kernel table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Isa {
    Scalar,
}

impl Isa {
    /// Every ISA tessera has kernels for, in order of preference for `auto` (best last).
    pub const ALL: [Isa; 1] = [Isa::Scalar];

    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
        }
    }

    /// Whether this CPU can run the ISA's kernels.
    pub fn is_available(self) -> bool {
        match self {
            Isa::Scalar => true,
        }
    }

    /// ISAs this CPU can run.
    pub fn available() -> Vec<Isa> {
        Self::ALL.into_iter().filter(|i| i.is_available()).collect()
    }

    /// The tile configurations the ISA's matmul kernels accept.
    pub fn valid_tiles(self) -> Vec<TileConfig> {
        match self {
            Isa::Scalar => {
                let mut v = Vec::new();
                for m in [1, 2, 4, 8] {
                    for n in [1, 2, 4, 8] {
                        for k in [256, 1024, 4096] {
                            v.push(TileConfig::new(m, n, k));
                        }
                    }
                }
                v
            }
        }
    }

    /// The tile used when none is asked for. Scalar: 4x4 amortises the loop overhead without
    /// spilling; whole-row `k` (4096 covers every preset's rows but ffn_down of 1b/8b) keeps
    /// the summation order of the reference dot product. Not tuned: the scalar path is the
    /// reference, not a contender.
    pub fn default_tile(self) -> TileConfig {
        match self {
            Isa::Scalar => TileConfig::new(4, 4, 4096),
        }
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DispatchError {
    #[error("unknown ISA '{0}'; valid: auto, {valid}", valid = names(&Isa::ALL))]
    UnknownIsa(String),
    #[error("this CPU cannot run ISA '{0}'; it has: {have}", have = names(&Isa::available()))]
    Unavailable(Isa),
    #[error("tile {tile} is not valid for ISA {isa}; valid tiles: {list}", list = list_tiles(valid))]
    InvalidTile {
        isa: Isa,
        tile: TileConfig,
        valid: Vec<TileConfig>,
    },
}

fn names(isas: &[Isa]) -> String {
    isas.iter().map(|i| i.name()).collect::<Vec<_>>().join(", ")
}

fn list_tiles(t: &[TileConfig]) -> String {
    t.iter()
        .map(|t| t.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl FromStr for Isa {
    type Err = DispatchError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Isa::ALL
            .into_iter()
            .find(|i| i.name() == s)
            .ok_or_else(|| DispatchError::UnknownIsa(s.to_string()))
    }
}

/// `auto` or a named ISA, as given on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IsaRequest {
    Auto,
    Named(Isa),
}

impl FromStr for IsaRequest {
    type Err = DispatchError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "auto" {
            Ok(IsaRequest::Auto)
        } else {
            s.parse().map(IsaRequest::Named)
        }
    }
}

impl fmt::Display for IsaRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IsaRequest::Auto => f.write_str("auto"),
            IsaRequest::Named(i) => i.fmt(f),
        }
    }
}

/// One line of the dispatch record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelUse {
    pub op: &'static str,
    pub isa: Isa,
    pub kernel: &'static str,
    pub tile: Option<TileConfig>,
    pub calls: u64,
}

type MatmulFn = unsafe fn(&WeightMat, Acts, &OutMat, Range<usize>, TileConfig);

/// A matmul kernel chosen for one call, with its tile.
#[derive(Clone, Copy)]
pub struct MatmulKernel {
    f: MatmulFn,
    pub tile: TileConfig,
}

impl MatmulKernel {
    /// Computes the output columns `cols`.
    ///
    /// # Safety
    /// No other thread writes `out` in `cols` concurrently; `acts` has `out.m()` rows in the
    /// form `w.act_kind()`; `cols.end <= w.n()`.
    pub unsafe fn run(&self, w: &WeightMat, acts: Acts, out: &OutMat, cols: Range<usize>) {
        debug_assert!(cols.end <= w.n() && out.n() == w.n());
        // SAFETY: forwarded from the caller.
        unsafe { (self.f)(w, acts, out, cols, self.tile) }
    }
}

/// Element-wise and attention primitives of one ISA.
pub struct Ops {
    pub rms_norm: fn(&[f32], &[f32], f32, &mut [f32]),
    pub rope_normal: fn(&mut [f32], usize, &[f32]),
    pub softmax: fn(&mut [f32]),
    pub swiglu: fn(&mut [f32], &[f32]),
    pub dot_f32: fn(&[f32], &[f32]) -> f32,
    pub dot_f32_f16: fn(&[f32], &[f16]) -> f32,
    pub axpy_f32: fn(&mut [f32], f32, &[f32]),
    pub axpy_f16: fn(&mut [f32], f32, &[f16]),
}

static SCALAR_OPS: Ops = Ops {
    rms_norm: scalar::rms_norm,
    rope_normal: scalar::rope_normal,
    softmax: scalar::softmax,
    swiglu: scalar::swiglu,
    dot_f32: scalar::dot_f32,
    dot_f32_f16: scalar::dot_f32_f16,
    axpy_f32: scalar::axpy_f32,
    axpy_f16: scalar::axpy_f16,
};

/// The kernels of one ISA, its tiles, and the record of calls.
pub struct Kernels {
    isa: Isa,
    request: IsaRequest,
    gemm_tile: TileConfig,
    record: Mutex<Vec<KernelUse>>,
}

impl Kernels {
    /// Resolves `auto` (the best available ISA) and checks the tile against the ISA's list.
    pub fn new(request: IsaRequest, tile: Option<TileConfig>) -> Result<Self, DispatchError> {
        let isa = match request {
            IsaRequest::Auto => *Isa::available().last().unwrap_or(&Isa::Scalar),
            IsaRequest::Named(i) if i.is_available() => i,
            IsaRequest::Named(i) => return Err(DispatchError::Unavailable(i)),
        };
        let gemm_tile = match tile {
            None => isa.default_tile(),
            Some(t) => {
                let valid = isa.valid_tiles();
                if !valid.contains(&t) {
                    return Err(DispatchError::InvalidTile {
                        isa,
                        tile: t,
                        valid,
                    });
                }
                t
            }
        };
        Ok(Self {
            isa,
            request,
            gemm_tile,
            record: Mutex::new(Vec::new()),
        })
    }

    pub fn isa(&self) -> Isa {
        self.isa
    }
    pub fn request(&self) -> IsaRequest {
        self.request
    }
    /// The tile of GEMM calls; GEMV calls use its `1 × n × k` form.
    pub fn tile(&self) -> TileConfig {
        self.gemm_tile
    }

    pub fn ops(&self) -> &'static Ops {
        match self.isa {
            Isa::Scalar => &SCALAR_OPS,
        }
    }

    /// Chooses the kernel for `op` on `m` tokens (GEMV when `m == 1`) and records the call.
    pub fn matmul(&self, op: &'static str, w: &WeightMat, m: usize) -> MatmulKernel {
        let (kernel, tile) = if m == 1 {
            ("gemv", self.gemm_tile.for_gemv())
        } else {
            ("gemm", self.gemm_tile)
        };
        let name = kernel_name(self.isa, kernel, w);
        self.note(op, name, Some(tile));
        let f: MatmulFn = match self.isa {
            Isa::Scalar => scalar::matmul,
        };
        MatmulKernel { f, tile }
    }

    /// Records one call of a non-matmul `op`.
    pub fn note(&self, op: &'static str, kernel: &'static str, tile: Option<TileConfig>) {
        let mut rec = self.record.lock().unwrap_or_else(|e| e.into_inner());
        match rec
            .iter_mut()
            .find(|u| u.op == op && u.kernel == kernel && u.tile == tile)
        {
            Some(u) => u.calls += 1,
            None => rec.push(KernelUse {
                op,
                isa: self.isa,
                kernel,
                tile,
                calls: 1,
            }),
        }
    }

    /// The calls recorded so far, in first-use order.
    pub fn record(&self) -> Vec<KernelUse> {
        self.record
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn reset_record(&self) {
        self.record
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

/// Static kernel names: `<kind>_<weight>_<act>`.
fn kernel_name(_isa: Isa, kind: &str, w: &WeightMat) -> &'static str {
    use crate::quant::GgmlType as T;
    match (kind, w.ty()) {
        ("gemv", T::F32) => "gemv_f32_f32",
        ("gemv", T::F16) => "gemv_f16_f16",
        ("gemv", T::Q8_0) => "gemv_q8_0_q8_0",
        ("gemv", T::Q4_0) => "gemv_q4_0_q8_0",
        ("gemm", T::F32) => "gemm_f32_f32",
        ("gemm", T::F16) => "gemm_f16_f16",
        ("gemm", T::Q8_0) => "gemm_q8_0_q8_0",
        ("gemm", T::Q4_0) => "gemm_q4_0_q8_0",
        _ => "unsupported",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_tile_lists_the_valid_ones() {
        let e = Kernels::new(
            IsaRequest::Named(Isa::Scalar),
            Some(TileConfig::new(3, 3, 7)),
        )
        .err()
        .unwrap();
        let msg = e.to_string();
        assert!(msg.contains("3x3x7") && msg.contains("4x4x4096"), "{msg}");
    }

    #[test]
    fn unknown_isa_names_the_valid_ones() {
        let e = "sse9".parse::<IsaRequest>().unwrap_err().to_string();
        assert!(
            e.contains("sse9") && e.contains("auto") && e.contains("scalar"),
            "{e}"
        );
    }

    #[test]
    fn record_counts_calls_per_op_and_kernel() {
        let k = Kernels::new(IsaRequest::Auto, None).unwrap();
        let data = vec![0.0f32; 64];
        let w = WeightMat::new(crate::matrix::WeightData::F32(&data), 2, 32).unwrap();
        k.matmul("attn_q", &w, 1);
        k.matmul("attn_q", &w, 1);
        k.matmul("attn_q", &w, 4);
        let r = k.record();
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].kernel, r[0].calls), ("gemv_f32_f32", 2));
        assert_eq!(
            (r[1].kernel, r[1].calls, r[1].tile),
            ("gemm_f32_f32", 1, Some(k.tile()))
        );
    }
}
