//! The AMX tiled GEMM for Q4_0/Q8_0 weights × Q8_0 activations, written once against the
//! [`TileUnit`] trait and run on the hardware (inline `asm!`, `amx` ISA) or on the software
//! unit of `amx_emu` (`amx-emu` ISA), so packing, tile configuration and loop structure are
//! tested on every machine.
//!
//! Tile plan (palette 1): C tiles tmm0..tmm3 (16 tokens × 16 weight rows of i32, up to 2×2),
//! A tiles tmm4/tmm5 (16 tokens × one 32-byte activation block, loaded straight from the Q8_0
//! rows), B tiles tmm6/tmm7 (one weight block of 16 rows in VNNI layout: 8 rows of 16×4
//! bytes). K per `tdpbssd` is one block (32), because every block has its own scales: the i32
//! product is stored and scaled per block, `acc += isum * (d_w * d_a)`, the same f32
//! operations in the same order as the scalar reference.
//!
//! Two weight forms reach this file:
//! - the x16 layout (`quant::x16`), packed once at load, which is what runs by default: its
//!   64-byte quant lines are the B tile rows already (Q4_0 at 4 bits, expanded to the int8
//!   tile with one mask/shift/subtract per line and reused for every token tile; Q8_0 with
//!   its sign bit restored), the per-block scales are applied to the stored C tile with
//!   AVX-512 (`cvt`, `mul` by `d_w · d_a`, `fma` per row, accumulators in registers), and
//!   consecutive blocks alternate between two sets of tiles so the TMUL unit works on one
//!   block while the vector unit scales the other. The emulator runs the same loop with a
//!   portable scaler whose f32 operations (`d_w · d_a`, then one fused multiply-add) are the
//!   hardware's, so `amx` and `amx-emu` agree bit for bit;
//! - plain Q4_0/Q8_0 rows (`TESSERA_REPACK=0`, or row counts that are no multiple of 16),
//!   repacked per call one panel of 16 (or 32) rows at a time, scaled with the scalar
//!   reference's operations (bit-identical to it).

use std::ops::Range;

use super::amx_emu::{AmxEmu, TileCfg};
use crate::matrix::{Acts, OutMat, WeightData, WeightMat};
use crate::quant::{BlockQ4_0, BlockQ8_0, GgmlType, Packed16, QK};
use crate::tile::TileConfig;

/// The tile instructions the GEMM uses. Tile numbers are const generics because hardware
/// encodes them in the instruction.
pub trait TileUnit {
    fn ldtilecfg(&mut self, cfg: &TileCfg);
    fn tilezero<const T: u8>(&mut self);
    /// Loads tile `T` from rows at `stride` bytes in `src` (bounds checked against the
    /// configured shape).
    fn tileloadd<const T: u8>(&mut self, src: &[u8], stride: usize);
    fn tdpbssd<const C: u8, const A: u8, const B: u8>(&mut self);
    fn tilestored<const T: u8>(&mut self, dst: &mut [u8], stride: usize);
    fn tilerelease(&mut self);
}

/// The emulator as a tile unit: a fault is a bug in the algorithm, reported like the #UD/#GP
/// it would be on hardware.
impl TileUnit for AmxEmu {
    fn ldtilecfg(&mut self, cfg: &TileCfg) {
        if let Err(e) = AmxEmu::ldtilecfg(self, cfg) {
            panic!("amx-emu: {e}");
        }
    }
    fn tilezero<const T: u8>(&mut self) {
        if let Err(e) = AmxEmu::tilezero(self, T.into()) {
            panic!("amx-emu: {e}");
        }
    }
    fn tileloadd<const T: u8>(&mut self, src: &[u8], stride: usize) {
        if let Err(e) = AmxEmu::tileloadd(self, T.into(), src, stride) {
            panic!("amx-emu: {e}");
        }
    }
    fn tdpbssd<const C: u8, const A: u8, const B: u8>(&mut self) {
        if let Err(e) = AmxEmu::tdpbssd(self, C.into(), A.into(), B.into()) {
            panic!("amx-emu: {e}");
        }
    }
    fn tilestored<const T: u8>(&mut self, dst: &mut [u8], stride: usize) {
        if let Err(e) = AmxEmu::tilestored(self, T.into(), dst, stride) {
            panic!("amx-emu: {e}");
        }
    }
    fn tilerelease(&mut self) {
        AmxEmu::tilerelease(self)
    }
}

/// Real AMX tiles through inline assembly (stable Rust has no AMX intrinsics).
#[cfg(target_arch = "x86_64")]
pub struct AmxHw {
    cfg: TileCfg,
}

#[cfg(target_arch = "x86_64")]
impl AmxHw {
    /// # Safety
    /// `Isa::Amx.is_available()` holds: the CPU has AMX-TILE/INT8, the OS enabled the tile
    /// state and granted this process permission.
    pub unsafe fn new() -> Self {
        Self {
            cfg: TileCfg::default(),
        }
    }

    /// Bytes tile `t` reads or writes at `stride`, so slices can be checked before the
    /// instruction touches memory.
    fn span(&self, t: u8, stride: usize) -> usize {
        let (r, c) = (
            usize::from(self.cfg.rows[usize::from(t)]),
            usize::from(self.cfg.colsb[usize::from(t)]),
        );
        if r == 0 { 0 } else { (r - 1) * stride + c }
    }
}

#[cfg(target_arch = "x86_64")]
impl TileUnit for AmxHw {
    #[inline(always)]
    fn ldtilecfg(&mut self, cfg: &TileCfg) {
        self.cfg = *cfg;
        // SAFETY: AMX is enabled for this process (constructor contract); `cfg` is a valid
        // 64-byte palette-1 configuration (the algorithm's, tested through the emulator).
        unsafe {
            std::arch::asm!("ldtilecfg [{}]", in(reg) &self.cfg as *const TileCfg, options(nostack));
        }
    }
    #[inline(always)]
    fn tilezero<const T: u8>(&mut self) {
        // SAFETY: as in ldtilecfg; tile T is configured.
        unsafe { std::arch::asm!("tilezero tmm{t}", t = const T, options(nostack, nomem)) }
    }
    #[inline(always)]
    fn tileloadd<const T: u8>(&mut self, src: &[u8], stride: usize) {
        assert!(
            self.span(T, stride) <= src.len(),
            "tileloadd past the end of its source"
        );
        // SAFETY: the configured rows × colsb at `stride` lie inside `src` (checked above).
        unsafe {
            std::arch::asm!(
                "tileloadd tmm{t}, [{base} + {stride} * 1]",
                t = const T, base = in(reg) src.as_ptr(), stride = in(reg) stride,
                options(nostack, readonly)
            )
        }
    }
    #[inline(always)]
    fn tdpbssd<const C: u8, const A: u8, const B: u8>(&mut self) {
        // SAFETY: as in ldtilecfg; shapes agree (the same algorithm passes the emulator's
        // checks).
        unsafe {
            std::arch::asm!(
                "tdpbssd tmm{c}, tmm{a}, tmm{b}",
                c = const C, a = const A, b = const B,
                options(nostack, nomem)
            )
        }
    }
    #[inline(always)]
    fn tilestored<const T: u8>(&mut self, dst: &mut [u8], stride: usize) {
        assert!(
            self.span(T, stride) <= dst.len(),
            "tilestored past the end of its target"
        );
        // SAFETY: the configured rows × colsb at `stride` lie inside `dst` (checked above).
        unsafe {
            std::arch::asm!(
                "tilestored [{base} + {stride} * 1], tmm{t}",
                t = const T, base = in(reg) dst.as_mut_ptr(), stride = in(reg) stride,
                options(nostack)
            )
        }
    }
    #[inline(always)]
    fn tilerelease(&mut self) {
        // SAFETY: releasing the tile state is always allowed once AMX is enabled.
        unsafe { std::arch::asm!("tilerelease", options(nostack, nomem)) }
    }
}

/// Quantized GEMM on hardware tiles; anything else goes to the scalar kernel (the dispatch
/// table routes GEMV and float matmuls to the fallback ISA before they get here).
///
/// # Safety
/// `Isa::Amx` is available; otherwise the contract of [`super::scalar::matmul`].
#[cfg(target_arch = "x86_64")]
pub unsafe fn matmul_amx(
    w: &WeightMat,
    acts: Acts,
    out: &OutMat,
    cols: Range<usize>,
    tile: TileConfig,
) {
    if let (WeightData::X16(p), Acts::Q8_0(ad)) = (w.data(), acts) {
        // SAFETY: forwarded from the caller (AMX implies AVX-512 VNNI, `Isa::Amx`).
        return unsafe { gemm_x16_hw(p, ad, out, cols) };
    }
    // SAFETY: forwarded from the caller.
    let mut unit = unsafe { AmxHw::new() };
    unsafe { matmul_on(&mut unit, w, acts, out, cols, tile) }
}

/// The x16 GEMM on hardware tiles, with the AVX-512 scaler.
///
/// # Safety
/// `Isa::Amx` is available; the contract of [`super::scalar::matmul`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn gemm_x16_hw(p: &Packed16, a: &[BlockQ8_0], out: &OutMat, cols: Range<usize>) {
    // SAFETY: forwarded from the caller.
    let mut unit = unsafe { AmxHw::new() };
    X16_BUFS.with(|b| gemm_x16::<AmxHw, HwScale>(&mut unit, p, a, out, cols, &mut b.borrow_mut()))
}

/// Quantized GEMM on the emulated tile unit.
///
/// # Safety
/// The contract of [`super::scalar::matmul`].
pub unsafe fn matmul_emu(
    w: &WeightMat,
    acts: Acts,
    out: &OutMat,
    cols: Range<usize>,
    tile: TileConfig,
) {
    let mut unit = AmxEmu::new();
    if let (WeightData::X16(p), Acts::Q8_0(ad)) = (w.data(), acts) {
        return X16_BUFS.with(|b| {
            gemm_x16::<AmxEmu, EmuScale>(&mut unit, p, ad, out, cols, &mut b.borrow_mut())
        });
    }
    // SAFETY: forwarded from the caller.
    unsafe { matmul_on(&mut unit, w, acts, out, cols, tile) }
}

/// Per-thread buffers of the x16 GEMM, grown once and reused.
#[derive(Default)]
struct X16Bufs {
    /// The current group's B tiles, one 512-byte int8 tile per block.
    b: Vec<Line>,
    /// The current group's scales as f32, 16 per block.
    dw: Vec<f32>,
    /// `d_a` per (token tile, block, row), 0 for rows past the last token.
    da: Vec<f32>,
    /// The ring of stored C tiles.
    c: Vec<CTile>,
    /// The activations as A tiles: per (token tile, block) 16 rows × 32 quants, contiguous
    /// and line-aligned (rows past the last token zero).
    a: Vec<Line>,
}

thread_local! {
    static X16_BUFS: std::cell::RefCell<X16Bufs> = std::cell::RefCell::new(X16Bufs::default());
}

use crate::quant::x16::{Line, line_bytes as lines, line_bytes_mut as lines_mut};

/// A stored C tile: 16 rows of 16 i32.
#[repr(C, align(64))]
pub struct CTile(pub [[i32; 16]; 16]);

/// Applies one block's scales to its stored C tile: for each row `r` (token) and column `n`
/// (weight row), `acc[r][n] = fma(C[r][n] as f32, dw[n] * da[r], acc[r][n])`.
trait Scale {
    type Acc;
    fn zero() -> Self::Acc;
    fn scale(acc: &mut Self::Acc, c: &CTile, dw: &[f32], da: &[f32]);
    /// Writes rows `0..rows` of the accumulators to `out` rows `m0..`, columns `col0 +
    /// lanes`.
    ///
    /// # Safety
    /// Those cells are inside `out` and this thread's alone.
    unsafe fn store(
        acc: &Self::Acc,
        out: &OutMat,
        m0: usize,
        rows: usize,
        col0: usize,
        lanes: &Range<usize>,
    );
}

/// The portable scaler: `f32::mul_add` is the fused operation `vfmadd` performs.
struct EmuScale;

impl Scale for EmuScale {
    type Acc = [[f32; 16]; 16];
    fn zero() -> Self::Acc {
        [[0.0; 16]; 16]
    }
    #[inline(always)]
    fn scale(acc: &mut Self::Acc, c: &CTile, dw: &[f32], da: &[f32]) {
        for r in 0..16 {
            for n in 0..16 {
                acc[r][n] = (c.0[r][n] as f32).mul_add(dw[n] * da[r], acc[r][n]);
            }
        }
    }
    unsafe fn store(
        acc: &Self::Acc,
        out: &OutMat,
        m0: usize,
        rows: usize,
        col0: usize,
        lanes: &Range<usize>,
    ) {
        for (r, row) in acc.iter().enumerate().take(rows) {
            for n in lanes.clone() {
                // SAFETY: the contract.
                unsafe { out.write(m0 + r, col0 + n, row[n]) };
            }
        }
    }
}

/// The AVX-512 scaler: one accumulator register per token row.
#[cfg(target_arch = "x86_64")]
struct HwScale;

#[cfg(target_arch = "x86_64")]
impl Scale for HwScale {
    type Acc = [std::arch::x86_64::__m512; 16];
    #[inline(always)]
    fn zero() -> Self::Acc {
        // SAFETY: reached only from `gemm_x16_hw`, whose CPU has AVX-512 F.
        unsafe { [std::arch::x86_64::_mm512_setzero_ps(); 16] }
    }
    #[inline(always)]
    fn scale(acc: &mut Self::Acc, c: &CTile, dw: &[f32], da: &[f32]) {
        use std::arch::x86_64::*;
        assert!(dw.len() >= 16 && da.len() >= 16);
        // SAFETY: reached only from `gemm_x16_hw` (AVX-512 F); 16 floats at dw, 16 at da,
        // 16 i32 per C row.
        unsafe {
            let w = _mm512_loadu_ps(dw.as_ptr());
            for ((a, row), &d) in acc.iter_mut().zip(&c.0).zip(&da[..16]) {
                let v = _mm512_cvtepi32_ps(_mm512_load_si512(row.as_ptr().cast()));
                *a = _mm512_fmadd_ps(v, _mm512_mul_ps(w, _mm512_set1_ps(d)), *a);
            }
        }
    }
    #[inline(always)]
    unsafe fn store(
        acc: &Self::Acc,
        out: &OutMat,
        m0: usize,
        rows: usize,
        col0: usize,
        lanes: &Range<usize>,
    ) {
        for (r, v) in acc.iter().enumerate().take(rows) {
            // SAFETY: the contract; AVX-512 as in `scale`.
            unsafe { super::avx512::store16(out, m0 + r, col0, lanes, *v) };
        }
    }
}

/// Expands block `b` of a group into its int8 B tile (8 rows of 64 bytes) and its 16 scales
/// into f32. Eight bytes at a time in a `u64`: a nibble `n` becomes `n - 8` as
/// `((n + 0x78) ^ 0x80)` per byte (no carry leaves a byte, since `n + 0x78 <= 0x87`), and
/// Q8_0's stored `w ^ 0x80` gets its sign bit back. The same integer operations on every
/// ISA, so hardware and emulator tiles hold the same bytes.
#[inline(always)]
fn unpack_block(q4: bool, quants: &[u8], scales: &[u8], tile: &mut [u8], dw: &mut [f32]) {
    const LOW: u64 = 0x0F0F_0F0F_0F0F_0F0F;
    const BIAS: u64 = 0x7878_7878_7878_7878;
    const SIGN: u64 = 0x8080_8080_8080_8080;
    let word = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes"));
    if q4 {
        let (lo, hi) = tile[..512].split_at_mut(256);
        for ((l, h), q) in lo
            .chunks_exact_mut(8)
            .zip(hi.chunks_exact_mut(8))
            .zip(quants[..256].chunks_exact(8))
        {
            let q = word(q);
            l.copy_from_slice(&(((q & LOW) + BIAS) ^ SIGN).to_le_bytes());
            h.copy_from_slice(&((((q >> 4) & LOW) + BIAS) ^ SIGN).to_le_bytes());
        }
    } else {
        for (t, q) in tile[..512]
            .chunks_exact_mut(8)
            .zip(quants[..512].chunks_exact(8))
        {
            t.copy_from_slice(&(word(q) ^ SIGN).to_le_bytes());
        }
    }
    for (d, s) in dw[..16].iter_mut().zip(scales.chunks_exact(2)) {
        *d = half::f16::from_le_bytes([s[0], s[1]]).to_f32();
    }
}

/// The x16 GEMM loop nest, once for both tile units: per 16-row group (expanded once into
/// int8 B tiles), per tile of 16 tokens, per block: load A and B, `tdpbssd` into a zeroed
/// C, store, scale into the accumulators. Even and odd blocks use tiles 0/4/6 and 1/5/7.
#[inline(always)]
fn gemm_x16<U: TileUnit, S: Scale>(
    unit: &mut U,
    p: &Packed16,
    acts: &[BlockQ8_0],
    out: &OutMat,
    cols: Range<usize>,
    bufs: &mut X16Bufs,
) {
    let (m, nb) = (out.m(), p.nb());
    if cols.is_empty() || m == 0 || nb == 0 {
        return;
    }
    assert!(
        acts.len() >= m * nb && cols.end <= p.n(),
        "x16 GEMM operands too short"
    );
    let q4 = p.ty() == GgmlType::Q4_0;
    let tiles = m.div_ceil(16);
    bufs.b.resize(nb * 8, Line([0; 64]));
    bufs.dw.resize(nb * 16, 0.0);
    bufs.da.clear();
    bufs.da.resize(tiles * nb * 16, 0.0);
    for t in 0..m {
        for b in 0..nb {
            bufs.da[((t / 16) * nb + b) * 16 + t % 16] = acts[t * nb + b].d.to_f32();
        }
    }
    // A tiles packed once per call: a tile load then reads 8 whole lines instead of 16
    // rows at a 34-byte block pitch that splits lines.
    bufs.a.clear();
    bufs.a.resize(tiles * nb * B_TILE / 64, Line([0; 64]));
    {
        let ap = lines_mut(&mut bufs.a);
        for t in 0..m {
            for b in 0..nb {
                let at = ((t / 16) * nb + b) * B_TILE + (t % 16) * QK;
                ap[at..at + QK].copy_from_slice(bytemuck::cast_slice(&acts[t * nb + b].qs));
            }
        }
    }
    if bufs.c.len() < RING {
        bufs.c = (0..RING).map(|_| CTile([[0; 16]; 16])).collect();
    }
    let cbuf = &mut bufs.c[..RING];
    let so = p.scales_offset();
    let bb = Packed16::block_bytes(p.ty());
    unit.ldtilecfg(&plan_cfg());
    for g in cols.start / 16..cols.end.div_ceil(16) {
        let lanes = cols.start.max(16 * g) - 16 * g..cols.end.min(16 * g + 16) - 16 * g;
        let grp = p.group(g);
        {
            let tb = lines_mut(&mut bufs.b);
            for b in 0..nb {
                unpack_block(
                    q4,
                    &grp[b * bb..(b + 1) * bb],
                    &grp[so + 32 * b..so + 32 * b + 32],
                    &mut tb[b * B_TILE..(b + 1) * B_TILE],
                    &mut bufs.dw[16 * b..16 * b + 16],
                );
            }
        }
        let tb = lines(&bufs.b);
        let ab = lines(&bufs.a);
        for tt in 0..tiles {
            let at = &ab[tt * nb * B_TILE..(tt + 1) * nb * B_TILE];
            let da = &bufs.da[tt * nb * 16..(tt + 1) * nb * 16];
            let mut acc = S::zero();
            // Blocks go in pairs: two products (C tiles 0 and 1) are issued, then each C
            // tile is stored over the buffer whose previous product (one pair earlier) is
            // scaled just before, so no vector load waits on a tile store in flight.
            // Products are stored into a ring of C buffers and scaled LAG blocks later, so
            // the vector loads read lines whose tile stores retired long ago.
            let mut b = 0;
            while b < nb {
                let two = b + 1 < nb;
                product::<U, 0, 4, 6>(unit, &at[b * B_TILE..], &tb[b * B_TILE..]);
                if two {
                    product::<U, 1, 5, 7>(unit, &at[(b + 1) * B_TILE..], &tb[(b + 1) * B_TILE..]);
                }
                for d in [b, b + 1] {
                    if d >= LAG && d < nb {
                        let e = d - LAG;
                        S::scale(&mut acc, &cbuf[e % RING], &bufs.dw[16 * e..], &da[16 * e..]);
                    }
                }
                unit.tilestored::<0>(ctile_bytes(&mut cbuf[b % RING]), 64);
                if two {
                    unit.tilestored::<1>(ctile_bytes(&mut cbuf[(b + 1) % RING]), 64);
                }
                b += 2;
            }
            for e in nb.saturating_sub(LAG)..nb {
                S::scale(&mut acc, &cbuf[e % RING], &bufs.dw[16 * e..], &da[16 * e..]);
            }
            let rows = 16.min(m - tt * 16);
            // SAFETY: rows tt*16.. < m and columns 16g + lanes inside `cols`, ours alone.
            unsafe { S::store(&acc, out, tt * 16, rows, 16 * g, &lanes) };
        }
    }
    unit.tilerelease();
}

/// Stored C tiles in flight, and how many blocks after its store a product is scaled.
/// Scaling a product right after its tile store (the pair before) made the whole loop 1.5x
/// slower than its parts (tile work alone 14 ns, scaling alone 13 ns, together 42 ns per
/// 16×16×32 product, one thread, `m 512 n 2816 k 1024`): the vector loads wait on tile
/// stores still in flight. With 8 buffers (8 KiB, inside L1 next to the A and B tiles) and
/// a lag of 6 blocks the same loop took 5.1–8.9 ms against 8.6–9.3 ms for the pair scheme
/// (run-to-run spread on the shared VM is ±20%; 16 buffers were slower again).
const RING: usize = 8;
const LAG: usize = 6;

/// `C = A · B` into zeroed tile `C` from an A tile (16 rows of 32 bytes) and a B tile (8
/// rows of 64), both contiguous.
#[inline(always)]
fn product<U: TileUnit, const C: u8, const A: u8, const B: u8>(unit: &mut U, a: &[u8], w: &[u8]) {
    unit.tileloadd::<A>(a, QK);
    unit.tileloadd::<B>(w, 64);
    unit.tilezero::<C>();
    unit.tdpbssd::<C, A, B>();
}

fn ctile_bytes(c: &mut CTile) -> &mut [u8] {
    // SAFETY: a CTile is 1024 plain bytes; the borrow is unique.
    unsafe { std::slice::from_raw_parts_mut((c as *mut CTile).cast(), 1024) }
}

/// # Safety
/// The contract of [`super::scalar::matmul`].
unsafe fn matmul_on<U: TileUnit>(
    unit: &mut U,
    w: &WeightMat,
    acts: Acts,
    out: &OutMat,
    cols: Range<usize>,
    tile: TileConfig,
) {
    let mt = (tile.m / 16).clamp(1, 2);
    let nt = (tile.n / 16).clamp(1, 2);
    match (w.data(), acts) {
        (WeightData::Q4_0(wd), Acts::Q8_0(ad)) => {
            // SAFETY: forwarded from the caller.
            unsafe { gemm(unit, &Q4Rows(wd), w.k() / QK, ad, out, cols, mt, nt) }
        }
        (WeightData::Q8_0(wd), Acts::Q8_0(ad)) => {
            // SAFETY: forwarded from the caller.
            unsafe { gemm(unit, &Q8Rows(wd), w.k() / QK, ad, out, cols, mt, nt) }
        }
        // SAFETY: forwarded from the caller.
        _ => unsafe { super::scalar::matmul(w, acts, out, cols, tile) },
    }
}

/// Quantized weights as the packer sees them: a block's scale and its 32 signed values.
trait QuantRows {
    fn scale(&self, block: usize) -> f32;
    fn values(&self, block: usize) -> [i8; QK];
}

struct Q4Rows<'a>(&'a [BlockQ4_0]);
struct Q8Rows<'a>(&'a [BlockQ8_0]);

impl QuantRows for Q4Rows<'_> {
    fn scale(&self, b: usize) -> f32 {
        self.0[b].d.to_f32()
    }
    fn values(&self, b: usize) -> [i8; QK] {
        let q = &self.0[b].qs;
        std::array::from_fn(|j| {
            let nib = if j < QK / 2 {
                q[j] & 15
            } else {
                q[j - QK / 2] >> 4
            };
            nib as i8 - 8
        })
    }
}

impl QuantRows for Q8Rows<'_> {
    fn scale(&self, b: usize) -> f32 {
        self.0[b].d.to_f32()
    }
    fn values(&self, b: usize) -> [i8; QK] {
        self.0[b].qs
    }
}

/// Bytes of one packed B tile: 8 rows (32 K values / 4) of 16 columns × 4 bytes.
const B_TILE: usize = 8 * 64;
/// Bytes per Q8_0 block and offset of its values.
const Q8_BYTES: usize = 34;
const Q8_QS: usize = 2;

/// The tile configuration of the plan in the module docs.
fn plan_cfg() -> TileCfg {
    let mut cfg = TileCfg::default();
    for c in 0..4 {
        cfg.set(c, 16, 64); // C: 16 × 16 i32
    }
    cfg.set(4, 16, 32).set(5, 16, 32); // A: 16 tokens × one block
    cfg.set(6, 8, 64).set(7, 8, 64); // B: one block of 16 rows, VNNI
    cfg
}

/// Packs weight rows `n0..n0+16*nt` (rows past `n_end` zero) into VNNI B tiles, one per
/// (block, 16-row group), and their scales.
fn pack_panel<W: QuantRows>(
    w: &W,
    nb: usize,
    n0: usize,
    n_end: usize,
    nt: usize,
    packed: &mut Vec<u8>,
    scales: &mut Vec<f32>,
) {
    packed.clear();
    packed.resize(nb * nt * B_TILE, 0);
    scales.clear();
    scales.resize(nb * nt * 16, 0.0);
    for s in 0..nt {
        for jj in 0..16 {
            let row = n0 + 16 * s + jj;
            if row >= n_end {
                continue;
            }
            for b in 0..nb {
                let v = w.values(row * nb + b);
                let tile = &mut packed[(b * nt + s) * B_TILE..(b * nt + s + 1) * B_TILE];
                for g in 0..QK / 4 {
                    for q in 0..4 {
                        tile[g * 64 + jj * 4 + q] = v[4 * g + q] as u8;
                    }
                }
                scales[(b * nt + s) * 16 + jj] = w.scale(row * nb + b);
            }
        }
    }
}

/// The loop nest: per panel of `16*nt` weight rows (packed once), per tile of `16*mt`
/// tokens, per block: load A and B tiles, `tdpbssd` into zeroed C tiles, store, scale.
///
/// # Safety
/// The contract of [`super::scalar::matmul`].
#[allow(clippy::too_many_arguments)]
unsafe fn gemm<U: TileUnit, W: QuantRows>(
    unit: &mut U,
    w: &W,
    nb: usize,
    acts: &[BlockQ8_0],
    out: &OutMat,
    cols: Range<usize>,
    mt: usize,
    nt: usize,
) {
    let m = out.m();
    assert!(acts.len() >= m * nb, "activations hold fewer than m rows");
    let abytes: &[u8] = bytemuck::cast_slice(acts);
    let astride = nb * Q8_BYTES;
    let (mut packed, mut wscale) = (Vec::new(), Vec::new());
    // A padded copy of a partial token tile: 16 rows × nb blocks × 32 bytes.
    let mut apad = vec![0u8; 16 * nb * QK];
    let mut c = vec![0u8; 4 * 16 * 64];
    let mut acc = vec![0.0f32; 32 * 32];
    unit.ldtilecfg(&plan_cfg());
    let mut n0 = cols.start;
    while n0 < cols.end {
        let n_valid = (16 * nt).min(cols.end - n0);
        pack_panel(w, nb, n0, n0 + n_valid, nt, &mut packed, &mut wscale);
        let mut m0 = 0;
        while m0 < m {
            let m_valid = (16 * mt).min(m - m0);
            acc.fill(0.0);
            for b in 0..nb {
                load_b(unit, &packed[b * nt * B_TILE..(b + 1) * nt * B_TILE], nt);
                for t in 0..mt {
                    let r0 = m0 + 16 * t;
                    let rows = 16.min(m.saturating_sub(r0));
                    if rows == 16 {
                        let src = &abytes[r0 * astride + b * Q8_BYTES + Q8_QS..];
                        load_a(unit, t, src, astride);
                    } else {
                        // A partial (or empty) tile reads a zero-padded copy: the hardware
                        // would read past the activations otherwise.
                        apad.fill(0);
                        for r in 0..rows {
                            let at = (r0 + r) * astride + b * Q8_BYTES + Q8_QS;
                            apad[r * QK..(r + 1) * QK].copy_from_slice(&abytes[at..at + QK]);
                        }
                        load_a(unit, t, &apad, QK);
                    }
                }
                products(unit, &mut c, mt, nt);
                for t in 0..mt {
                    for s in 0..nt {
                        let ct = &c[(2 * t + s) * 1024..(2 * t + s + 1) * 1024];
                        for r in 0..16 {
                            let tok = m0 + 16 * t + r;
                            if tok >= m {
                                break;
                            }
                            let da = acts[tok * nb + b].d.to_f32();
                            for jj in 0..16 {
                                let at = r * 64 + jj * 4;
                                let isum = i32::from_le_bytes([
                                    ct[at],
                                    ct[at + 1],
                                    ct[at + 2],
                                    ct[at + 3],
                                ]);
                                let dw = wscale[(b * nt + s) * 16 + jj];
                                acc[(16 * t + r) * 32 + 16 * s + jj] += dw * da * isum as f32;
                            }
                        }
                    }
                }
            }
            for i in 0..m_valid {
                for jn in 0..n_valid {
                    // SAFETY: row < m and column < cols.end, ours alone by the contract.
                    unsafe { out.write(m0 + i, n0 + jn, acc[i * 32 + jn]) };
                }
            }
            m0 += m_valid;
        }
        n0 += n_valid;
    }
    unit.tilerelease();
}

fn load_b<U: TileUnit>(unit: &mut U, tiles: &[u8], nt: usize) {
    unit.tileloadd::<6>(&tiles[..B_TILE], 64);
    if nt == 2 {
        unit.tileloadd::<7>(&tiles[B_TILE..], 64);
    }
}

fn load_a<U: TileUnit>(unit: &mut U, t: usize, src: &[u8], stride: usize) {
    if t == 0 {
        unit.tileloadd::<4>(src, stride)
    } else {
        unit.tileloadd::<5>(src, stride)
    }
}

/// C(t, s) = A_t · B_s for the active tiles, stored to `c` (1 KiB per C tile).
fn products<U: TileUnit>(unit: &mut U, c: &mut [u8], mt: usize, nt: usize) {
    let (c0, rest) = c.split_at_mut(1024);
    let (c1, rest) = rest.split_at_mut(1024);
    let (c2, c3) = rest.split_at_mut(1024);
    unit.tilezero::<0>();
    unit.tdpbssd::<0, 4, 6>();
    unit.tilestored::<0>(c0, 64);
    if nt == 2 {
        unit.tilezero::<1>();
        unit.tdpbssd::<1, 4, 7>();
        unit.tilestored::<1>(c1, 64);
    }
    if mt == 2 {
        unit.tilezero::<2>();
        unit.tdpbssd::<2, 5, 6>();
        unit.tilestored::<2>(c2, 64);
        if nt == 2 {
            unit.tilezero::<3>();
            unit.tdpbssd::<3, 5, 7>();
            unit.tilestored::<3>(c3, 64);
        }
    }
}

/// Multiply-adds in one round of [`tdpbssd_peak_loop`]: four `tdpbssd` on full tiles, each
/// 16 rows × 16 columns × 64 bytes of K.
pub const TDPBSSD_ROUND_MACS: u64 = 4 * 16 * 16 * 64;

/// `rounds` rounds of four independent `tdpbssd` on full tiles (C tmm0..3 += A tmm4/5 · B
/// tmm6/7, A and B all ones), returning the sum of the C tiles: the TMUL unit's peak int8 rate
/// for a roofline, with no memory traffic inside the loop. `None` when this process may not
/// use AMX tiles (see `x86::amx_status`).
pub fn tdpbssd_peak_loop(rounds: usize) -> Option<i64> {
    #[cfg(target_arch = "x86_64")]
    if crate::cpu::x86::amx_status().is_ok() {
        // SAFETY: the CPU has AMX-TILE/INT8, XCR0 enables the tile state and the kernel
        // granted this process the tile data (amx_status checked all three).
        let mut unit = unsafe { AmxHw::new() };
        return Some(tdpbssd_rounds(&mut unit, rounds));
    }
    let _ = rounds;
    None
}

/// The loop of [`tdpbssd_peak_loop`] on any tile unit (the emulator in tests).
fn tdpbssd_rounds<U: TileUnit>(unit: &mut U, rounds: usize) -> i64 {
    let mut cfg = TileCfg::default();
    for t in 0..8 {
        cfg.set(t, 16, 64);
    }
    let ones = [1u8; 16 * 64];
    unit.ldtilecfg(&cfg);
    unit.tilezero::<0>();
    unit.tilezero::<1>();
    unit.tilezero::<2>();
    unit.tilezero::<3>();
    unit.tileloadd::<4>(&ones, 64);
    unit.tileloadd::<5>(&ones, 64);
    unit.tileloadd::<6>(&ones, 64);
    unit.tileloadd::<7>(&ones, 64);
    for _ in 0..rounds {
        unit.tdpbssd::<0, 4, 6>();
        unit.tdpbssd::<1, 4, 7>();
        unit.tdpbssd::<2, 5, 6>();
        unit.tdpbssd::<3, 5, 7>();
    }
    let mut c = [0u8; 16 * 64];
    let mut sum = 0i64;
    let mut add = |c: &[u8]| {
        for w in c.chunks_exact(4) {
            sum += i64::from(i32::from_le_bytes([w[0], w[1], w[2], w[3]]));
        }
    };
    unit.tilestored::<0>(&mut c, 64);
    add(&c);
    unit.tilestored::<1>(&mut c, 64);
    add(&c);
    unit.tilestored::<2>(&mut c, 64);
    add(&c);
    unit.tilestored::<3>(&mut c, 64);
    add(&c);
    unit.tilerelease();
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_loop_does_every_multiply_add_of_its_rounds() {
        // All ones: every C element gains 64 per tdpbssd, so the sum counts the MACs.
        let mut unit = AmxEmu::new();
        assert_eq!(tdpbssd_rounds(&mut unit, 3), 3 * TDPBSSD_ROUND_MACS as i64);
        assert_eq!(tdpbssd_rounds(&mut unit, 0), 0);
        // The hardware loop runs only where AMX is usable, and agrees with the emulator.
        let hw = tdpbssd_peak_loop(2);
        #[cfg(target_arch = "x86_64")]
        assert_eq!(hw.is_some(), crate::cpu::x86::amx_status().is_ok());
        if let Some(sum) = hw {
            assert_eq!(sum, 2 * TDPBSSD_ROUND_MACS as i64);
        }
    }

    #[test]
    fn packing_puts_four_k_values_of_one_column_together() {
        let mut blocks = vec![BlockQ8_0::default(); 3];
        for (r, b) in blocks.iter_mut().enumerate() {
            b.qs = std::array::from_fn(|j| (r * 40 + j) as i8);
            b.d = half::f16::from_f32(r as f32 + 1.0);
        }
        let (mut p, mut s) = (Vec::new(), Vec::new());
        // 3 rows of one block; rows 3..16 are padding.
        pack_panel(&Q8Rows(&blocks), 1, 0, 3, 1, &mut p, &mut s);
        assert_eq!(p.len(), B_TILE);
        // Row g of the tile, column jj: K values 4g..4g+4 of weight row jj.
        let at = 64 * 2 + 4; // tile row 2 (K 8..12), column 1 (weight row 1)
        assert_eq!(&p[at..at + 4], &[48, 49, 50, 51]);
        assert_eq!(p[64 * 7 + 4 * 2 + 3], 80 + 31);
        assert!(p[64 * 7 + 4 * 3..64 * 8].iter().all(|&b| b == 0));
        assert_eq!(&s[..4], &[1.0, 2.0, 3.0, 0.0]);
    }

    #[test]
    fn q4_values_are_signed_nibbles_in_element_order() {
        let b = BlockQ4_0 {
            d: half::f16::ONE,
            qs: std::array::from_fn(|j| (j as u8) | ((15 - j as u8) << 4)),
        };
        let v = Q4Rows(std::slice::from_ref(&b)).values(0);
        assert_eq!(v[0], -8);
        assert_eq!(v[15], 7);
        assert_eq!(v[16], 7);
        assert_eq!(v[31], -8);
    }

    #[test]
    fn the_plan_is_a_valid_configuration() {
        AmxEmu::new().ldtilecfg(&plan_cfg()).unwrap();
    }
}
