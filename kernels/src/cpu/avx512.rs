//! AVX-512 (F/BW/VL) + VNNI kernels: quantized GEMV/GEMM with `vpdpbusd` on weights
//! repacked at load sixteen rows at a time (the x16 layout, `quant::x16`: what runs by
//! default), or on plain rows two blocks per 512-bit register, and 16-wide f16/f32 matmuls. Conversions and element-wise ops are the
//! AVX2 ones (memory-bound; AVX-512 implies AVX2 here). The loop nest around the micro-kernels
//! is the one all SIMD ISAs share (`cpu::simd_matmul`).
//!
//! Every function that uses the instructions is a `#[target_feature]` `unsafe fn` reached only
//! through the dispatch table, which checks the CPU first (`cpu::x86::has_avx512`).

// Register tiles are indexed [token][row] in lock step across several arrays; index loops
// say that more plainly than zipped iterators.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;
use std::ops::Range;

use super::x86::{f16_at, load1};
use super::{TileJob, simd_matmul, store_tile};
use crate::matrix::{Acts, OutMat, WeightData, WeightMat};
use crate::quant::{BlockQ8_0, GgmlType, Packed16, QK};
use crate::tile::TileConfig;

/// Tiled matmul over output columns `cols` (same contract as [`super::scalar::matmul`]):
/// the shared loop nest ([`simd_matmul`]) over this file's micro-kernels.
///
/// # Safety
/// The CPU supports AVX-512 F/BW/VL/VNNI, AVX2, FMA and F16C; no other thread writes `out` in
/// `cols`; `acts` holds `out.m()` rows of `w.k()` elements in the form `w.act_kind()`;
/// `cols.end <= w.n()`.
pub unsafe fn matmul(
    w: &WeightMat,
    acts: Acts,
    out: &OutMat,
    cols: Range<usize>,
    tile: TileConfig,
) {
    match (w.data(), acts) {
        (WeightData::X16(p), Acts::Q8_0(ad)) => {
            assert!(ad.len() >= out.m() * p.nb() && cols.end <= p.n() && p.n() == w.n());
            // SAFETY: forwarded from the caller; shapes checked just above.
            unsafe { matmul_x16(p, ad, out, cols, tile.m) }
        }
        _ => {
            // The plain layouts have register tiles up to 4 × 8 (`cpu::SIMD_TILE_*`); the
            // 8- and 16-wide tiles are for the x16 layout.
            let t = TileConfig::new(tile.m.min(4), tile.n.min(8), tile.k);
            // SAFETY: forwarded from the caller.
            unsafe { simd_matmul::<Avx512>(w, acts, out, cols, t) }
        }
    }
}

thread_local! {
    /// Per (token, block) of the current call: the activation scale and `-c · Σ q`, the
    /// correction for weights stored with offset `c` (8 for Q4_0, 128 for Q8_0). One per
    /// thread, grown once, then reused.
    static X16_PREP: std::cell::RefCell<Vec<(f32, i32)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// How far ahead GEMV prefetches the weight stream, in bytes: the group that far ahead
/// (at least the next one) is fetched into L2 while this one is computed, block by block,
/// its quants and its scales alike. A GEMV streams every weight once from DRAM, and at
/// this kernel's speed the hardware prefetchers and an L1 prefetch 8 KiB ahead (what the
/// avx2 x8 kernel uses) leave DRAM latency exposed: on an AMD EPYC Zen 4 VM, tg128 of the
/// 150m Q4_0 model with 1 thread went from 142 t/s (8 KiB, into L1) to 262 t/s (64 KiB,
/// into L2; avx2 x8: 283 t/s in the same series), and with 2 threads to par with avx2.
/// docs/performance.md, "AVX-512 GEMV from DRAM", has the measurements.
const X16_PREFETCH: usize = 64 << 10;

/// Weights in the x16 layout × Q8_0 activations over output columns `cols`, `mr` tokens per
/// register tile (1, 2, 4 or 8; one token runs the GEMV kernel).
///
/// Loop nest: per 16-row group, per token tile, all blocks: a group's quants (at most
/// `nb · 512` bytes) stay in L1 across token tiles, every accumulator in a register.
///
/// # Safety
/// AVX-512 F/BW/VL/VNNI present; `a` holds `out.m() * p.nb()` blocks, `cols.end <= p.n()`; no
/// other thread writes `out` in `cols`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn matmul_x16(p: &Packed16, a: &[BlockQ8_0], out: &OutMat, cols: Range<usize>, mr: usize) {
    let (m, nb) = (out.m(), p.nb());
    if cols.is_empty() || m == 0 || nb == 0 {
        return;
    }
    let q4 = p.ty() == GgmlType::Q4_0;
    let c = if q4 { 8 } else { 128 };
    X16_PREP.with(|prep| {
        let mut prep = prep.borrow_mut();
        if prep.len() < m * nb {
            prep.resize(m * nb, (0.0, 0));
        }
        for (e, blk) in prep.iter_mut().zip(&a[..m * nb]) {
            // SAFETY: qs is 32 bytes; AVX2 is implied by this function's features.
            let s = unsafe { super::avx2::sum_i8x32(blk.qs.as_ptr().cast()) };
            *e = (blk.d.to_f32(), -c * s);
        }
        let (gs, so) = (p.group_stride(), p.scales_offset());
        // The group `X16_PREFETCH` bytes ahead, whole groups, at least one.
        let ahead = gs * (X16_PREFETCH / gs).max(1);
        for g in cols.start / 16..cols.end.div_ceil(16) {
            let lanes = cols.start.max(16 * g) - 16 * g..cols.end.min(16 * g + 16) - 16 * g;
            // SAFETY: g < n / 16, so the group's bytes are inside the layout.
            let gp = unsafe { p.bytes().as_ptr().add(g * gs) };
            let mut m0 = 0;
            while m0 < m {
                let tile = match (m - m0, mr) {
                    (1, _) | (_, 1) => 1,
                    (_, 2) => 2,
                    (2..4, _) => 2,
                    (_, 4) => 4,
                    (4..8, _) => 4,
                    _ => 8,
                };
                let m_valid = tile.min(m - m0);
                let job = X16Job {
                    ahead,
                    gp,
                    so,
                    nb,
                    m0,
                    m_valid,
                    col0: 16 * g,
                    lanes: lanes.clone(),
                };
                // SAFETY: token rows m0..m0 + m_valid are inside `a` and `prep`; the group
                // is inside the layout; the lanes are this thread's columns.
                unsafe {
                    match (tile, q4) {
                        (1, true) => tile_x16::<1, true>(&job, a, &prep, out),
                        (2, true) => tile_x16::<2, true>(&job, a, &prep, out),
                        (4, true) => tile_x16::<4, true>(&job, a, &prep, out),
                        (_, true) => tile_x16::<8, true>(&job, a, &prep, out),
                        (1, false) => tile_x16::<1, false>(&job, a, &prep, out),
                        (2, false) => tile_x16::<2, false>(&job, a, &prep, out),
                        (4, false) => tile_x16::<4, false>(&job, a, &prep, out),
                        (_, false) => tile_x16::<8, false>(&job, a, &prep, out),
                    }
                }
                m0 += m_valid;
            }
        }
    });
}

/// One 16-row group × up to `MR` tokens of an x16 product.
struct X16Job {
    /// Bytes from this group to the one GEMV prefetches.
    ahead: usize,
    /// The group's first byte.
    gp: *const u8,
    /// Offset of the group's scales.
    so: usize,
    nb: usize,
    m0: usize,
    m_valid: usize,
    col0: usize,
    lanes: Range<usize>,
}

/// One group of 16 repacked rows × `MR` tokens over all blocks; writes output columns
/// `col0 + lanes` of rows `m0..m0 + m_valid`.
///
/// Per block: the group's quants are 4 (Q4_0: low and high nibbles make 8) or 8 registers
/// `w[j]`, each holding K values `4j..4j+4` of all 16 rows; `w[j]` pairs with the token's
/// activation bytes `4j..4j+4` broadcast to every lane. Eight `vpdpbusd` in two chains,
/// started from the offset correction `-c·Σa`, give the 16 rows' integer sums in 16 lanes;
/// one conversion and one FMA with `d_w · d_a` accumulate them.
///
/// # Safety
/// As for [`matmul_x16`], with `j` inside the layout, `a` and `prep` as there.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn tile_x16<const MR: usize, const Q4: bool>(
    j: &X16Job,
    a: &[BlockQ8_0],
    prep: &[(f32, i32)],
    out: &OutMat,
) {
    let bb = if Q4 { 256 } else { 512 };
    let low = _mm512_set1_epi8(0x0F);
    let zero = _mm512_setzero_si512();
    let nb = j.nb;
    // SAFETY (pointer arithmetic and loads below): token rows are clamped to the valid ones
    // and blocks stay below nb, inside `a` and `prep`; the group holds nb quant blocks of
    // `bb` bytes, then nb × 32 bytes of scales at `so` (the contract).
    let ap: [*const u8; MR] = std::array::from_fn(|i| unsafe {
        a.as_ptr()
            .add((j.m0 + i.min(j.m_valid - 1)) * nb)
            .cast::<u8>()
            .add(2)
    });
    let pp: [*const (f32, i32); MR] =
        std::array::from_fn(|i| unsafe { prep.as_ptr().add((j.m0 + i.min(j.m_valid - 1)) * nb) });
    let mut acc = [_mm512_setzero_ps(); MR];
    for b in 0..nb {
        let q = unsafe { j.gp.add(b * bb) };
        if MR == 1 {
            // GEMV streams the weights once: block b of the group `ahead` bytes on, quants
            // and (every other block, a 64-byte line of 32 scales) scales, into L2. A
            // prefetch never faults, even past the end.
            for l in 0..bb / 64 {
                _mm_prefetch::<_MM_HINT_T1>(q.wrapping_add(j.ahead + 64 * l).cast());
            }
            if b % 2 == 0 {
                let s = j.gp.wrapping_add(j.ahead + j.so + 32 * b);
                _mm_prefetch::<_MM_HINT_T1>(s.cast());
            }
        }
        let dw = unsafe { _mm512_cvtph_ps(_mm256_loadu_si256(j.gp.add(j.so + 32 * b).cast())) };
        let mut w = [zero; 8];
        for c in 0..(if Q4 { 4 } else { 8 }) {
            let v = unsafe { _mm512_loadu_si512(q.add(64 * c).cast()) };
            if Q4 {
                w[c] = _mm512_and_si512(v, low);
                w[4 + c] = _mm512_and_si512(_mm512_srli_epi16::<4>(v), low);
            } else {
                w[c] = v;
            }
        }
        for i in 0..MR {
            let aq = unsafe { ap[i].add(b * 34) };
            let bc = |c: usize| unsafe {
                _mm512_set1_epi32(aq.add(4 * c).cast::<i32>().read_unaligned())
            };
            let (da, corr) = unsafe { *pp[i].add(b) };
            let mut s0 = _mm512_set1_epi32(corr);
            let mut s1 = zero;
            s0 = _mm512_dpbusd_epi32(s0, w[0], bc(0));
            s1 = _mm512_dpbusd_epi32(s1, w[1], bc(1));
            s0 = _mm512_dpbusd_epi32(s0, w[2], bc(2));
            s1 = _mm512_dpbusd_epi32(s1, w[3], bc(3));
            s0 = _mm512_dpbusd_epi32(s0, w[4], bc(4));
            s1 = _mm512_dpbusd_epi32(s1, w[5], bc(5));
            s0 = _mm512_dpbusd_epi32(s0, w[6], bc(6));
            s1 = _mm512_dpbusd_epi32(s1, w[7], bc(7));
            let s = _mm512_cvtepi32_ps(_mm512_add_epi32(s0, s1));
            acc[i] = _mm512_fmadd_ps(s, _mm512_mul_ps(dw, _mm512_set1_ps(da)), acc[i]);
        }
    }
    for i in 0..j.m_valid {
        // SAFETY: row m0+i < m and columns col0+lanes are this thread's (the contract).
        unsafe { store16(out, j.m0 + i, j.col0, &j.lanes, acc[i]) };
    }
}

/// Writes lanes `lanes` of `v` to row `row`, columns `col0 + lanes`.
///
/// # Safety
/// AVX-512 F present; the cells are inside `out` and this thread's alone.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(crate) unsafe fn store16(
    out: &OutMat,
    row: usize,
    col0: usize,
    lanes: &Range<usize>,
    v: __m512,
) {
    // SAFETY: the contract.
    let seg = unsafe { out.segment_mut(row, col0 + lanes.start..col0 + lanes.end) };
    if lanes.len() == 16 {
        // SAFETY: seg holds 16 floats.
        unsafe { _mm512_storeu_ps(seg.as_mut_ptr(), v) };
    } else {
        let mut t = [0.0f32; 16];
        // SAFETY: 16 lanes into 16 floats.
        unsafe { _mm512_storeu_ps(t.as_mut_ptr(), v) };
        seg.copy_from_slice(&t[lanes.clone()]);
    }
}

const _: () = assert!(QK == 32);

micro_kernels!(Avx512);

/// The 32 weights of the block at `p` as unsigned bytes `w + OFFSET` (see `tile_q`): Q4_0
/// nibbles as they are (offset 8 is built in), Q8_0 bytes with the sign bit flipped
/// (`w ^ 0x80 == w + 128`).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn load_u<const Q4: bool>(p: *const u8) -> __m256i {
    // SAFETY: the caller points `p` at a whole block (18 or 34 bytes); qs start at 2.
    unsafe {
        if Q4 {
            // As avx2::unpack_nibbles: one load into both halves, a per-half shift.
            let q = _mm256_broadcastsi128_si256(_mm_loadu_si128(p.add(2).cast()));
            let v = _mm256_srlv_epi32(q, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4));
            _mm256_and_si256(v, _mm256_set1_epi8(0x0F))
        } else {
            _mm256_xor_si256(
                _mm256_loadu_si256(p.add(2).cast()),
                _mm256_set1_epi8(i8::MIN),
            )
        }
    }
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn join(lo: __m256i, hi: __m256i) -> __m512i {
    _mm512_inserti64x4::<1>(_mm512_castsi256_si512(lo), hi)
}

/// Lanes 0..8 `lo`, lanes 8..16 `hi`: the scale of the block in each half.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn halves(lo: f32, hi: f32) -> __m512 {
    _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(lo), _mm512_set1_ps(hi))
}

/// One `MR × NR` register tile of a Q4_0/Q8_0 × Q8_0 product over blocks `j.k0..j.k1`, two
/// blocks per 512-bit register (the upper half zero for an odd last block).
///
/// `vpdpbusd` multiplies unsigned by signed bytes, so weights enter as `u = w + c` (c = 8
/// for Q4_0 nibbles, 128 for Q8_0) and the accumulator starts at `-c * sum(a)` per 4-byte
/// group, computed once per token and block pair and shared by all `NR` weight rows:
/// `dpbusd(-c·Σa, u, a) = Σ (u - c)·a = Σ w·a`. Rows past the valid edge repeat the last
/// valid row; their sums are dropped.
///
/// # Safety
/// As for `avx2::tile_q`, with AVX-512 F/BW/VL/VNNI present.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn tile_q<const MR: usize, const NR: usize, const Q4: bool>(
    w: *const u8,
    wrow: usize,
    a: *const BlockQ8_0,
    nb: usize,
    out: &OutMat,
    j: TileJob,
) {
    let bs = if Q4 { 18 } else { 34 };
    let c = _mm512_set1_epi8(if Q4 { 8 } else { i8::MIN });
    // SAFETY (pointer arithmetic below): rows are clamped to the valid ones, blocks stay in
    // `j.k0..j.k1`, all inside the slices by the caller's contract.
    let wp: [*const u8; NR] =
        std::array::from_fn(|r| unsafe { w.add((j.n0 + r.min(j.n_valid - 1)) * wrow) });
    let ap: [*const u8; MR] =
        std::array::from_fn(|i| unsafe { a.add((j.m0 + i.min(j.m_valid - 1)) * nb).cast::<u8>() });
    let zero = _mm512_setzero_si512();
    let mut acc = [[_mm512_setzero_ps(); NR]; MR];
    let mut b = j.k0;
    while b < j.k1 {
        let two = b + 1 < j.k1;
        let mut u = [zero; NR];
        let mut dw = [_mm512_setzero_ps(); NR];
        for r in 0..NR {
            // Next register tile's rows, one tile ahead (see avx2::tile_q); never faults.
            let ahead = wp[r].wrapping_add(b * bs + NR * wrow);
            _mm_prefetch::<_MM_HINT_T0>(ahead.cast());
            _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(bs).cast());
            // SAFETY: blocks b (and b+1 when `two`) of a valid row.
            unsafe {
                let p = wp[r].add(b * bs);
                let (u1, d1) = if two {
                    (load_u::<Q4>(p.add(bs)), f16_at(p.add(bs)))
                } else {
                    (_mm256_setzero_si256(), 0.0)
                };
                u[r] = join(load_u::<Q4>(p), u1);
                dw[r] = halves(f16_at(p), d1);
            }
        }
        for i in 0..MR {
            // SAFETY: blocks b (and b+1 when `two`) of a valid token row; qs at offset 2.
            let (av, da) = unsafe {
                let p = ap[i].add(b * 34);
                let (a1, d1) = if two {
                    (_mm256_loadu_si256(p.add(36).cast()), f16_at(p.add(34)))
                } else {
                    (_mm256_setzero_si256(), 0.0)
                };
                (
                    join(_mm256_loadu_si256(p.add(2).cast()), a1),
                    halves(f16_at(p), d1),
                )
            };
            let neg_corr = _mm512_sub_epi32(zero, _mm512_dpbusd_epi32(zero, c, av));
            for r in 0..NR {
                let s = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(neg_corr, u[r], av));
                acc[i][r] = _mm512_fmadd_ps(s, _mm512_mul_ps(dw[r], da), acc[i][r]);
            }
        }
        b += 2;
    }
    // Plain loops, not closures: a closure borrowing `acc` would pin it to memory.
    let mut sums = [[0.0f32; NR]; MR];
    for i in 0..MR {
        for r in 0..NR {
            sums[i][r] = _mm512_reduce_add_ps(acc[i][r]);
        }
    }
    // SAFETY: forwarded from the caller.
    unsafe { store_tile::<MR, NR>(out, j, &sums) }
}

/// 16 elements at `p` as f32: f16 converted (`H`), or f32 as is.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn load16<const H: bool>(p: *const u8) -> __m512 {
    // SAFETY: the caller points `p` at 16 readable elements.
    unsafe {
        if H {
            _mm512_cvtph_ps(_mm256_loadu_si256(p.cast()))
        } else {
            _mm512_loadu_ps(p.cast())
        }
    }
}

/// One `MR × NR` register tile of an f16 × f16 (`H`) or f32 × f32 product over elements
/// `j.k0..j.k1`, accumulated in f32, 16 at a time.
///
/// # Safety
/// As for `avx2::tile_f`, with AVX-512 F present.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn tile_f<const MR: usize, const NR: usize, const H: bool>(
    w: *const u8,
    a: *const u8,
    k: usize,
    out: &OutMat,
    j: TileJob,
) {
    let es = if H { 2 } else { 4 };
    // SAFETY (pointer arithmetic below): rows clamped to the valid ones, elements in
    // `j.k0..j.k1 <= k`, inside the slices by the caller's contract.
    let wp: [*const u8; NR] =
        std::array::from_fn(|r| unsafe { w.add((j.n0 + r.min(j.n_valid - 1)) * k * es) });
    let ap: [*const u8; MR] =
        std::array::from_fn(|i| unsafe { a.add((j.m0 + i.min(j.m_valid - 1)) * k * es) });
    let mut acc = [[_mm512_setzero_ps(); NR]; MR];
    let mut e = j.k0;
    while e + 16 <= j.k1 {
        // SAFETY: elements e..e+16 of valid rows.
        let wv: [__m512; NR] = std::array::from_fn(|r| unsafe { load16::<H>(wp[r].add(e * es)) });
        for i in 0..MR {
            let av = unsafe { load16::<H>(ap[i].add(e * es)) };
            for r in 0..NR {
                acc[i][r] = _mm512_fmadd_ps(wv[r], av, acc[i][r]);
            }
        }
        e += 16;
    }
    // Plain loops, not closures: a closure borrowing `acc` would pin it to memory.
    let mut sums = [[0.0f32; NR]; MR];
    for i in 0..MR {
        for r in 0..NR {
            sums[i][r] = _mm512_reduce_add_ps(acc[i][r]);
        }
    }
    for t in e..j.k1 {
        for (i, row) in sums.iter_mut().enumerate() {
            // SAFETY: element t < j.k1 of valid rows.
            let av = unsafe { load1::<H>(ap[i].add(t * es)) };
            for (r, s) in row.iter_mut().enumerate() {
                *s += unsafe { load1::<H>(wp[r].add(t * es)) } * av;
            }
        }
    }
    // SAFETY: forwarded from the caller.
    unsafe { store_tile::<MR, NR>(out, j, &sums) }
}
