//! The dispatch table: which ISA's kernels run, with which tile, and a record of every kernel
//! call so that "was this kernel really used?" has an answer in the data.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;
use std::sync::{Mutex, OnceLock};

use half::f16;

use crate::cpu::{amx, scalar};
#[cfg(target_arch = "x86_64")]
use crate::cpu::{avx2, avx512};
use crate::matrix::{ActBuf, ActKind, Acts, OutMat, Repacked, WeightMat};
use crate::quant::{BlockQ8_0, QK};
use crate::tile::TileConfig;

/// An instruction-set family with its own kernel table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Isa {
    Scalar,
    /// AVX2 + FMA + F16C.
    Avx2,
    /// AVX-512 F/BW/VL + VNNI (`vpdpbusd`).
    Avx512,
    /// Intel AMX tiles (AMX-TILE + AMX-INT8) for quantized GEMM; GEMV and float matmuls run
    /// on `avx512`, as llama.cpp does.
    Amx,
    /// The AMX algorithm on a software tile unit: runs everywhere, timings are emulated.
    AmxEmu,
}

impl Isa {
    /// Every ISA tessera has kernels for.
    pub const ALL: [Isa; 5] = [Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Amx, Isa::AmxEmu];

    /// The fixed preference order: what `Kernels::new(IsaRequest::Auto, ..)` resolves to in
    /// this crate, which knows no model. The engine's `calibrate::kernels_for` resolves
    /// `auto` for a model by measuring the available ISAs (AMX included) and uses this order
    /// only under `TESSERA_CALIBRATE=0`. `amx-emu` is a test vehicle, never a contender.
    pub const AUTO_ORDER: [Isa; 3] = [Isa::Avx512, Isa::Avx2, Isa::Scalar];

    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
            Isa::Amx => "amx",
            Isa::AmxEmu => "amx-emu",
        }
    }

    /// Whether this CPU (and OS) can run the ISA's kernels.
    pub fn is_available(self) -> bool {
        self.unavailable_reason().is_none()
    }

    /// Why the ISA cannot run here, or `None` when it can.
    pub fn unavailable_reason(self) -> Option<String> {
        match self {
            Isa::Scalar | Isa::AmxEmu => None,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => (!crate::cpu::x86::has_avx2()).then(|| "CPU lacks AVX2/FMA/F16C".into()),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                (!crate::cpu::x86::has_avx512()).then(|| "CPU lacks AVX-512 F/BW/VL/VNNI".into())
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Amx => match crate::cpu::x86::amx_status() {
                Err(e) => Some(e.clone()),
                // GEMV and float matmuls of the amx table run on avx512.
                Ok(()) if !crate::cpu::x86::has_avx512() => {
                    Some("AMX present but AVX-512 VNNI (its GEMV fallback) is not".into())
                }
                Ok(()) => None,
            },
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx2 | Isa::Avx512 | Isa::Amx => Some("not an x86-64 build".into()),
        }
    }

    /// ISAs this CPU can run.
    pub fn available() -> Vec<Isa> {
        Self::ALL.into_iter().filter(|i| i.is_available()).collect()
    }

    /// The first available ISA of [`Isa::AUTO_ORDER`] (the uncalibrated `auto`).
    pub fn auto() -> Isa {
        Self::AUTO_ORDER
            .into_iter()
            .find(|i| i.is_available())
            .unwrap_or(Isa::Scalar)
    }

    /// The ISA that runs what this one has no kernel for (GEMV and float matmuls on the AMX
    /// tables): the best available of avx512, avx2, scalar. Itself for the others.
    pub fn fallback(self) -> Isa {
        match self {
            // Available only with AVX-512 VNNI (see `unavailable_reason`).
            Isa::Amx => Isa::Avx512,
            Isa::AmxEmu => [Isa::Avx512, Isa::Avx2]
                .into_iter()
                .find(|i| i.is_available())
                .unwrap_or(Isa::Scalar),
            i => i,
        }
    }

    /// The repacked layout this ISA's kernels run fastest on with `tile`, if any: avx2 with
    /// its 8-row register tile takes Q4_0 eight rows at a time; avx512 with a 16-row tile,
    /// and the AMX tables (whose GEMV runs on avx512), take the x16 layout of Q4_0 and Q8_0.
    pub fn repack_layout(self, tile: TileConfig) -> Option<crate::matrix::Layout> {
        use crate::matrix::Layout;
        match self {
            Isa::Avx2 if tile.n == 8 => Some(Layout::X8),
            Isa::Avx512 if tile.n == 16 => Some(Layout::X16),
            Isa::Amx | Isa::AmxEmu => Some(Layout::X16),
            _ => None,
        }
    }

    /// The tile configurations the ISA's matmul kernels accept.
    pub fn valid_tiles(self) -> Vec<TileConfig> {
        use crate::cpu::{SIMD_TILE_MS, SIMD_TILE_NS, TILE_KS};
        let grid = |ms: &[usize], ns: &[usize]| {
            let mut v = Vec::new();
            for &m in ms {
                for &n in ns {
                    for k in TILE_KS {
                        v.push(TileConfig::new(m, n, k));
                    }
                }
            }
            v
        };
        match self {
            Isa::Scalar => grid(&[1, 2, 4, 8], &[1, 2, 4, 8]),
            Isa::Avx2 => grid(&SIMD_TILE_MS, &SIMD_TILE_NS),
            // m = 8 and n = 16 are the x16 layout's register tiles (tokens × one 16-row
            // group); on plain rows they run as 4 × 8.
            Isa::Avx512 => grid(&[1, 2, 4, 8], &[1, 2, 4, 8, 16]),
            // m × n = tokens × weight rows per step in 16-row tiles (1×1 up to 2×2 C
            // tiles). K per tile product is fixed at one block (per-block scales), and rows
            // are always reduced in one pass, so k is only the whole-row marker 4096.
            Isa::Amx | Isa::AmxEmu => {
                let mut v = Vec::new();
                for m in [16, 32] {
                    for n in [16, 32] {
                        v.push(TileConfig::new(m, n, 4096));
                    }
                }
                v
            }
        }
    }

    /// The tile used when none is asked for.
    ///
    /// - scalar: 4x4 amortises the loop overhead without spilling; whole-row `k` keeps the
    ///   summation order of the reference. Not tuned: the scalar path is the reference.
    /// - avx2: 4x8x4096. For plain Q4_0/Q8_0 rows the 4x8 register tile measured fastest,
    ///   and whole-row k (4096) wins for Q4_0 repacked at load, which is what runs by
    ///   default, since ffn_down's 2816-long rows then need no second pass; the n = 8 keeps
    ///   the repack on (`Kernels::repacks`). Measurements: docs/performance.md ("Default
    ///   tiles").
    /// - avx512: 8x16x4096: eight tokens × one 16-row group of the x16 layout (8
    ///   accumulators + 8 weight registers + 2 chains per token fit the 32 zmm), measured
    ///   in docs and `cargo bench -p tessera-kernels --bench tiles`.
    /// - amx, amx-emu: 32x32 (2×2 C tiles, as llama.cpp), whole-row k.
    pub fn default_tile(self) -> TileConfig {
        match self {
            Isa::Scalar => TileConfig::new(4, 4, 4096),
            Isa::Avx2 => TileConfig::new(4, 8, 4096),
            Isa::Avx512 => TileConfig::new(8, 16, 4096),
            Isa::Amx | Isa::AmxEmu => TileConfig::new(32, 32, 4096),
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
    #[error(
        "this CPU cannot run ISA '{0}' ({why}); it has: {have}",
        why = .0.unavailable_reason().unwrap_or_default(),
        have = names(&Isa::available())
    )]
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

/// One line of the dispatch record: calls, and (charged by the caller that runs the op,
/// see [`Kernels::charge`]) the wall time spent and the work done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelUse {
    pub op: &'static str,
    pub isa: Isa,
    pub kernel: &'static str,
    pub tile: Option<TileConfig>,
    pub calls: u64,
    /// Wall time, ns, summed over the charged calls (0 with op timers off).
    pub ns: u64,
    /// Arithmetic, 2 per multiply-add, counted from the shapes.
    pub flop: u64,
    /// Bytes moved: weights in the layout run, activations in and out, KV cache reads.
    pub bytes: u64,
}

/// Where one op's record line is: returned by [`Kernels::matmul`] and the conversions,
/// passed back to [`Kernels::charge`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UseId(usize);

type MatmulFn = unsafe fn(&WeightMat, Acts, &OutMat, Range<usize>, TileConfig);

/// A matmul kernel chosen for one call, with its tile.
#[derive(Clone, Copy)]
pub struct MatmulKernel {
    f: MatmulFn,
    pub tile: TileConfig,
    /// The record line this call was noted in.
    pub id: UseId,
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
    /// `(q, cache, stride, scale, out)`: `out[t] = scale * q · cache[t*stride..][..q.len()]`.
    pub attn_scores_f16: fn(&[f32], &[f16], usize, f32, &mut [f32]),
    pub attn_scores_f32: fn(&[f32], &[f32], usize, f32, &mut [f32]),
    /// `(p, cache, stride, out)`: `out = Σ_t p[t] * cache[t*stride..][..out.len()]`.
    pub attn_values_f16: fn(&[f32], &[f16], usize, &mut [f32]),
    pub attn_values_f32: fn(&[f32], &[f32], usize, &mut [f32]),
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
    attn_scores_f16: scalar::attn_scores_f16,
    attn_scores_f32: scalar::attn_scores_f32,
    attn_values_f16: scalar::attn_values_f16,
    attn_values_f32: scalar::attn_values_f32,
};

/// Handed out only when `has_avx2()` holds (the entries call AVX2 code). The avx512 table
/// shares it: these ops are memory-bound at the sizes a model has.
#[cfg(target_arch = "x86_64")]
static AVX2_OPS: Ops = Ops {
    rms_norm: avx2::rms_norm,
    rope_normal: scalar::rope_normal,
    softmax: avx2::softmax,
    swiglu: avx2::swiglu,
    dot_f32: avx2::dot_f32,
    dot_f32_f16: avx2::dot_f32_f16,
    axpy_f32: avx2::axpy_f32,
    axpy_f16: avx2::axpy_f16,
    attn_scores_f16: avx2::attn_scores_f16,
    attn_scores_f32: avx2::attn_scores_f32,
    attn_values_f16: avx2::attn_values_f16,
    attn_values_f32: avx2::attn_values_f32,
};

/// The matmul entry of an ISA's table.
fn matmul_fn(isa: Isa) -> MatmulFn {
    match isa {
        Isa::Scalar => scalar::matmul,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => avx2::matmul,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => avx512::matmul,
        #[cfg(target_arch = "x86_64")]
        Isa::Amx => amx::matmul_amx,
        Isa::AmxEmu => amx::matmul_emu,
        // Never available off x86-64, so never chosen; scalar keeps the match total.
        #[cfg(not(target_arch = "x86_64"))]
        Isa::Avx2 | Isa::Avx512 | Isa::Amx => scalar::matmul,
    }
}

/// Q8_0 quantization of activation rows with the given ISA's kernel (bit-identical on all).
/// `isa` is an available, already resolved (non-AMX) ISA.
fn quantize_with(isa: Isa, x: &[f32], y: &mut [BlockQ8_0]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa` is available (callers pass a table's fallback or the best available
        // ISA), and avx512 implies AVX2.
        Isa::Avx2 | Isa::Avx512 => unsafe { avx2::quantize_row_q8_0(x, y) },
        _ => crate::quant::q8_0::quantize_row(x, y),
    }
}

fn convert_f16_with(isa: Isa, x: &[f32], y: &mut [f16]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in quantize_with.
        Isa::Avx2 | Isa::Avx512 => unsafe { avx2::convert_f16(x, y) },
        _ => {
            for (o, v) in y.iter_mut().zip(x) {
                *o = f16::from_f32(*v);
            }
        }
    }
}

/// `TESSERA_REPACK`: `0`/`off` turns load-time repacking off, `1`/`on` (the default) on. A
/// bad value is reported once on stderr and the default kept (a measuring aid).
fn repack_enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| match std::env::var("TESSERA_REPACK").as_deref() {
        Err(_) | Ok("1" | "on") => true,
        Ok("0" | "off") => false,
        Ok(v) => {
            eprintln!("warning: TESSERA_REPACK '{v}' is not one of 0, off, 1, on; repacking");
            true
        }
    })
}

/// `TESSERA_OP_TIMERS`: `0`/`off` turns the per-op wall-clock timers off (the record then
/// has `ns: 0`), `1`/`on` (the default) on. A measuring aid for their overhead: docs/kernels.md's
/// "Per-op time" section has the side-by-side numbers that keep them on by default.
fn op_timers_enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| match std::env::var("TESSERA_OP_TIMERS").as_deref() {
        Err(_) | Ok("1" | "on") => true,
        Ok("0" | "off") => false,
        Ok(v) => {
            eprintln!("warning: TESSERA_OP_TIMERS '{v}' is not one of 0, off, 1, on; timing");
            true
        }
    })
}

/// The kernels of one ISA, its tiles, and the record of calls.
pub struct Kernels {
    isa: Isa,
    /// `isa.fallback()`, resolved once: detection stays out of the per-call path.
    fallback: Isa,
    request: IsaRequest,
    gemm_tile: TileConfig,
    record: Mutex<Vec<KernelUse>>,
    timers: std::sync::atomic::AtomicBool,
}

impl Kernels {
    /// Resolves `auto` (see [`Isa::AUTO_ORDER`]) and checks the tile against the ISA's list.
    pub fn new(request: IsaRequest, tile: Option<TileConfig>) -> Result<Self, DispatchError> {
        let isa = match request {
            IsaRequest::Auto => Isa::auto(),
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
            fallback: isa.fallback(),
            request,
            gemm_tile,
            record: Mutex::new(Vec::new()),
            timers: op_timers_enabled().into(),
        })
    }

    /// A table for `isa`, chosen by the caller (e.g. a calibration) for `request`: the
    /// record keeps `request` (`auto`) beside the ISA that runs.
    pub fn with_isa(
        request: IsaRequest,
        isa: Isa,
        tile: Option<TileConfig>,
    ) -> Result<Self, DispatchError> {
        let mut k = Self::new(IsaRequest::Named(isa), tile)?;
        k.request = request;
        Ok(k)
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
        match self.fallback {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 | Isa::Avx512 => &AVX2_OPS,
            _ => &SCALAR_OPS,
        }
    }

    /// Q8_0 quantization of activation rows with this table's kernel; bit-identical to
    /// `quant::q8_0::quantize_row`. Not recorded per call (threads share one conversion):
    /// the caller notes the conversion once with [`Kernels::note_quantize`].
    pub fn quantize_q8_0(&self, x: &[f32], y: &mut [BlockQ8_0]) {
        quantize_with(self.fallback, x, y)
    }

    /// Records one conversion of activations to Q8_0 (op `quantize`), under the ISA that
    /// runs [`Kernels::quantize_q8_0`].
    pub fn note_quantize(&self) -> UseId {
        self.note_as("quantize", self.fallback, "quantize_q8_0", None)
    }

    /// Converts `x` (rows of `k`) into `act` as `kind` with this table's kernels —
    /// bit-identical to [`ActBuf::convert`] — and records the call (op `quantize`, kernel
    /// `quantize_q8_0` or `convert_f16`); `None` for F32, which needs no conversion.
    pub fn convert(&self, act: &mut ActBuf, kind: ActKind, x: &[f32], k: usize) -> Option<UseId> {
        match kind {
            ActKind::F32 => None,
            ActKind::F16 => {
                convert_f16_with(self.fallback, x, act.f16_mut(x.len()));
                Some(self.note_as("quantize", self.fallback, "convert_f16", None))
            }
            ActKind::Q8_0 => {
                assert_eq!(k % QK, 0, "quantized activations need rows of whole blocks");
                quantize_with(self.fallback, x, act.q8_mut(x.len() / QK));
                Some(self.note_quantize())
            }
        }
    }

    /// Whether callers should time ops for [`Kernels::charge`] (`TESSERA_OP_TIMERS`).
    pub fn timers(&self) -> bool {
        self.timers.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Turns the op timers on or off from now on (the overhead benchmark alternates them).
    pub fn set_timers(&self, on: bool) {
        self.timers.store(on, std::sync::atomic::Ordering::Relaxed)
    }

    /// Adds wall time and work to a record line (see [`KernelUse`]).
    pub fn charge(&self, id: UseId, ns: u64, flop: u64, bytes: u64) {
        let mut rec = self.record.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(u) = rec.get_mut(id.0) {
            u.ns += ns;
            u.flop += flop;
            u.bytes += bytes;
        }
    }

    /// Chooses the kernel for `op` on `m` tokens (GEMV when `m == 1`) and records the call
    /// under the ISA that really runs it: the AMX tables hand GEMV and float matmuls to
    /// their fallback ISA, with that ISA's default tile.
    pub fn matmul(&self, op: &'static str, w: &WeightMat, m: usize) -> MatmulKernel {
        use crate::quant::GgmlType as T;
        let kind = if m == 1 { "gemv" } else { "gemm" };
        let tiles_do_it = m > 1 && matches!(w.ty(), T::Q4_0 | T::Q8_0);
        let (isa, tile) = match self.isa {
            Isa::Amx | Isa::AmxEmu if !tiles_do_it => (self.fallback, self.fallback.default_tile()),
            i => (i, self.gemm_tile),
        };
        let tile = if m == 1 { tile.for_gemv() } else { tile };
        let id = self.note_as(op, isa, kernel_name(isa, kind, w), Some(tile));
        MatmulKernel {
            f: matmul_fn(isa),
            tile,
            id,
        }
    }

    /// Whether this table runs faster on weights repacked at load ([`Kernels::repack`]):
    /// avx2 with an 8-row register tile (x8), avx512 with a 16-row tile and the AMX tables
    /// (x16), unless `TESSERA_REPACK=0` says no. Measurements are in docs/performance.md's
    /// performance section (Zen 3 for x8, the AMX Xeon for x16).
    pub fn repacks(&self) -> bool {
        self.repack_layout().is_some()
    }

    /// The layout [`Kernels::repack`] repacks into (see [`Isa::repack_layout`]), or `None`
    /// when it does not repack (also with `TESSERA_REPACK=0`).
    pub fn repack_layout(&self) -> Option<crate::matrix::Layout> {
        self.isa
            .repack_layout(self.gemm_tile)
            .filter(|_| repack_enabled())
    }

    /// Repacked copies of those of `mats` this table has a faster layout for (none unless
    /// [`Kernels::repacks`]). Pass each matrix through [`Repacked::view`] before
    /// [`Kernels::matmul`]; the record then names the repacked kernels (`..._q4_0x8_...`).
    pub fn repack<'w>(&self, mats: impl IntoIterator<Item = WeightMat<'w>>) -> Repacked {
        let Some(layout) = self.repack_layout() else {
            return Repacked::default();
        };
        let mut r = Repacked::new(layout);
        for w in mats {
            r.add(&w);
        }
        r
    }

    /// Records one call of a non-matmul `op` that has already run, with its wall time and
    /// work, under one lock.
    pub fn note_charged(
        &self,
        op: &'static str,
        kernel: &'static str,
        ns: u64,
        flop: u64,
        bytes: u64,
    ) {
        self.add(op, self.isa, kernel, None, [ns, flop, bytes]);
    }

    /// Records one call of `op` run by `isa` (which may be a fallback of the table's ISA).
    fn note_as(
        &self,
        op: &'static str,
        isa: Isa,
        kernel: &'static str,
        tile: Option<TileConfig>,
    ) -> UseId {
        self.add(op, isa, kernel, tile, [0; 3])
    }

    /// One more call on the record line of (op, isa, kernel, tile), with `[ns, flop, bytes]`.
    fn add(
        &self,
        op: &'static str,
        isa: Isa,
        kernel: &'static str,
        tile: Option<TileConfig>,
        [ns, flop, bytes]: [u64; 3],
    ) -> UseId {
        let mut rec = self.record.lock().unwrap_or_else(|e| e.into_inner());
        let i = match rec
            .iter()
            .position(|u| u.op == op && u.isa == isa && u.kernel == kernel && u.tile == tile)
        {
            Some(i) => i,
            None => {
                rec.push(KernelUse {
                    op,
                    isa,
                    kernel,
                    tile,
                    calls: 0,
                    ns: 0,
                    flop: 0,
                    bytes: 0,
                });
                rec.len() - 1
            }
        };
        let u = &mut rec[i];
        u.calls += 1;
        u.ns += ns;
        u.flop += flop;
        u.bytes += bytes;
        UseId(i)
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

/// Static kernel names: `<kind>_<weight>_<act>`, with `_amx_emu` on emulated tile kernels so
/// their timings are never mistaken for hardware ones.
fn kernel_name(isa: Isa, kind: &str, w: &WeightMat) -> &'static str {
    use crate::quant::GgmlType as T;
    if let crate::matrix::WeightData::Q4_0x8(_) = w.data() {
        return if kind == "gemv" {
            "gemv_q4_0x8_q8_0"
        } else {
            "gemm_q4_0x8_q8_0"
        };
    }
    if let crate::matrix::WeightData::X16(_) = w.data() {
        return match (isa, kind, w.ty()) {
            (Isa::Amx, "gemm", T::Q4_0) => "gemm_q4_0x16_q8_0_amx",
            (Isa::Amx, "gemm", _) => "gemm_q8_0x16_q8_0_amx",
            (Isa::AmxEmu, "gemm", T::Q4_0) => "gemm_q4_0x16_q8_0_amx_emu",
            (Isa::AmxEmu, "gemm", _) => "gemm_q8_0x16_q8_0_amx_emu",
            (_, "gemv", T::Q4_0) => "gemv_q4_0x16_q8_0",
            (_, "gemv", _) => "gemv_q8_0x16_q8_0",
            (_, _, T::Q4_0) => "gemm_q4_0x16_q8_0",
            _ => "gemm_q8_0x16_q8_0",
        };
    }
    match (isa, kind, w.ty()) {
        (Isa::AmxEmu, "gemm", T::Q8_0) => "gemm_q8_0_q8_0_amx_emu",
        (Isa::AmxEmu, "gemm", T::Q4_0) => "gemm_q4_0_q8_0_amx_emu",
        (_, "gemv", T::F32) => "gemv_f32_f32",
        (_, "gemv", T::F16) => "gemv_f16_f16",
        (_, "gemv", T::Q8_0) => "gemv_q8_0_q8_0",
        (_, "gemv", T::Q4_0) => "gemv_q4_0_q8_0",
        (_, "gemm", T::F32) => "gemm_f32_f32",
        (_, "gemm", T::F16) => "gemm_f16_f16",
        (_, "gemm", T::Q8_0) => "gemm_q8_0_q8_0",
        (_, "gemm", T::Q4_0) => "gemm_q4_0_q8_0",
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
