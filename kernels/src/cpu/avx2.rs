//! AVX2 + FMA + F16C kernels: quantized GEMV/GEMM with `vpmaddubsw`/`vpmaddwd` (on plain
//! Q4_0/Q8_0 rows through the shared loop nest, and on Q4_0 repacked at load eight rows at a
//! time, which is what runs by default), f16 and f32 matmuls, Q8_0 activation
//! quantization, attention over the KV cache and the vectorised element-wise ops.
//!
//! Every function that uses the instructions is a `#[target_feature]` `unsafe fn` reached only
//! through the dispatch table, which checks the CPU first (`cpu::x86::has_avx2`).

// Register tiles are indexed [token][row] in lock step across several arrays; index loops
// say that more plainly than zipped iterators.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;
use std::ops::Range;

use half::f16;

use super::x86::{f16_at, load1};
use super::{TileJob, simd_matmul, store_tile};
use crate::matrix::{Acts, BlockQ4_0x8, OutMat, WeightData, WeightMat};
use crate::quant::{BlockQ4_0, BlockQ8_0, QK};
use crate::tile::TileConfig;

/// Tiled matmul over output columns `cols` (same contract as [`super::scalar::matmul`]):
/// Q4_0 repacked at load ([`BlockQ4_0x8`]) runs its own kernel; everything else the shared
/// loop nest ([`simd_matmul`]) over this file's micro-kernels.
///
/// # Safety
/// The CPU supports AVX2, FMA and F16C; no other thread writes `out` in `cols`; `acts` holds
/// `out.m()` rows of `w.k()` elements in the form `w.act_kind()`; `cols.end <= w.n()`.
pub unsafe fn matmul(
    w: &WeightMat,
    acts: Acts,
    out: &OutMat,
    cols: Range<usize>,
    tile: TileConfig,
) {
    let nb = w.k() / QK;
    match (w.data(), acts) {
        (WeightData::Q4_0x8(wd), Acts::Q8_0(ad)) => {
            assert!(ad.len() >= out.m() * nb && cols.end <= w.n() && wd.len() >= w.n() / 8 * nb);
            // A 4-token register tile runs as two 2-token ones: 4 accumulators next to the 8
            // unpacked weight registers spill on AVX2's 16 (pp512, 150m Q4_0, 2 threads, 4
            // interleaved rounds: fused 4-token tiles 4x8x4096 605.5 t/s, 2x8x4096 636.2;
            // 4x8x1024 566.8, 2x8x1024 609.6).
            // SAFETY: forwarded from the caller; shapes checked just above.
            unsafe {
                match tile.m {
                    1 => matmul_x8::<1>(wd, nb, ad, out, cols, tile),
                    _ => matmul_x8::<2>(wd, nb, ad, out, cols, tile),
                }
            }
        }
        // SAFETY: forwarded from the caller.
        _ => unsafe { simd_matmul::<Avx2>(w, acts, out, cols, tile) },
    }
}

micro_kernels!(Avx2);

/// The 32 nibbles (0..15, the weight plus 8) of the Q4_0 block whose 16 bytes start at
/// `qs`: low nibbles are elements 0..16, high nibbles elements 16..32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn unpack_nibbles(qs: *const u8) -> __m256i {
    // SAFETY: the caller points `qs` at 16 readable bytes.
    let q = _mm256_broadcastsi128_si256(unsafe { _mm_loadu_si128(qs.cast()) });
    // One load into both halves and a per-half shift: no cross-lane shuffle.
    let v = _mm256_srlv_epi32(q, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4));
    _mm256_and_si256(v, _mm256_set1_epi8(0x0F))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

/// One `MR × NR` register tile of a Q4_0/Q8_0 × Q8_0 product over blocks `j.k0..j.k1`.
///
/// Each weight block is unpacked once and used for all `MR` tokens. `vpmaddubsw` multiplies
/// unsigned by signed bytes: Q4_0 nibbles enter as they are (`w + 8`, unsigned) and
/// `8 * (a0 + a1)`, computed once per token and block, is subtracted from each 16-bit pair
/// sum; Q8_0 uses the sign trick `|w| * (a * sign(w))`. Both keep every pair sum within
/// i16 for activations in -127..127 (what the Q8_0 quantizer produces). Rows past the valid
/// edge repeat the last valid row, so edges need no separate kernel; their sums are dropped.
///
/// # Safety
/// AVX2/FMA/F16C present; `w` points at weight rows of `wrow` bytes in blocks of 18 (`Q4`) or
/// 34 bytes, with rows `j.n0..j.n0+j.n_valid` and blocks `j.k0..j.k1` inside; `a` at token rows
/// of `nb` blocks with rows `j.m0..j.m0+j.m_valid` inside.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tile_q<const MR: usize, const NR: usize, const Q4: bool>(
    w: *const u8,
    wrow: usize,
    a: *const BlockQ8_0,
    nb: usize,
    out: &OutMat,
    j: TileJob,
) {
    let bs = if Q4 { 18 } else { 34 };
    // SAFETY (pointer arithmetic below): rows are clamped to the valid ones, blocks stay in
    // `j.k0..j.k1`, all inside the slices by the caller's contract.
    let wp: [*const u8; NR] =
        std::array::from_fn(|r| unsafe { w.add((j.n0 + r.min(j.n_valid - 1)) * wrow) });
    let ap: [*const u8; MR] =
        std::array::from_fn(|i| unsafe { a.add((j.m0 + i.min(j.m_valid - 1)) * nb).cast::<u8>() });
    let ones = _mm256_set1_epi16(1);
    let eights = _mm256_set1_epi8(8);
    let mut acc = [[_mm256_setzero_ps(); NR]; MR];
    for b in j.k0..j.k1 {
        let mut wv = [_mm256_setzero_si256(); NR];
        let mut wa = [_mm256_setzero_si256(); NR];
        let mut dw = [0.0f32; NR];
        for r in 0..NR {
            // The next register tile's rows sit right after these NR rows; the hardware
            // prefetchers lose track of NR short interleaved streams, so ask for them one
            // tile ahead (a prefetch never faults, even past the matrix).
            _mm_prefetch::<_MM_HINT_T0>(wp[r].wrapping_add(b * bs + NR * wrow).cast());
            // SAFETY: block b of a valid row (see above).
            unsafe {
                let p = wp[r].add(b * bs);
                dw[r] = f16_at(p);
                if Q4 {
                    wv[r] = unpack_nibbles(p.add(2));
                } else {
                    wv[r] = _mm256_loadu_si256(p.add(2).cast());
                    wa[r] = _mm256_sign_epi8(wv[r], wv[r]);
                }
            }
        }
        for i in 0..MR {
            // SAFETY: block b of a valid token row; qs start 2 bytes in (after the f16 d).
            let (av, da) = unsafe {
                let p = ap[i].add(b * 34);
                (_mm256_loadu_si256(p.add(2).cast()), f16_at(p))
            };
            let corr = if Q4 {
                _mm256_maddubs_epi16(eights, av)
            } else {
                _mm256_setzero_si256()
            };
            for r in 0..NR {
                let prod = if Q4 {
                    _mm256_sub_epi16(_mm256_maddubs_epi16(wv[r], av), corr)
                } else {
                    _mm256_maddubs_epi16(wa[r], _mm256_sign_epi8(av, wv[r]))
                };
                let s = _mm256_cvtepi32_ps(_mm256_madd_epi16(prod, ones));
                acc[i][r] = _mm256_fmadd_ps(s, _mm256_set1_ps(dw[r] * da), acc[i][r]);
            }
        }
    }
    // Plain loops, not closures: a closure borrowing `acc` would pin it to memory.
    let mut sums = [[0.0f32; NR]; MR];
    for i in 0..MR {
        for r in 0..NR {
            sums[i][r] = hsum(acc[i][r]);
        }
    }
    // SAFETY: forwarded from the caller.
    unsafe { store_tile::<MR, NR>(out, j, &sums) }
}

/// How far ahead the repacked kernel prefetches its (contiguous) weight stream: 64 blocks,
/// 9 KiB. The hardware prefetchers alone leave DRAM latency exposed. Measured (AMD EPYC
/// Zen 3, tg128 on 150m Q4_0, 2 threads, 3 interleaved rounds of `-r 3` while two
/// compilers loaded both cores): no prefetch 62.3 t/s, 4 blocks 64.1, 16 69.9, 32 68.2,
/// 64 74.8; one thread on the 32000 × 1024 head (criterion `gemv/q4_0x8`): 0 → 5.9 GiB/s,
/// 4 → 7.0, 16 → 10.9, 32 → 14.9 (two runs; the second ranked them the same way).
const X8_PREFETCH: usize = 64 * std::mem::size_of::<BlockQ4_0x8>();

/// Most blocks per k pass of the repacked kernel (bounds its per-pass activation table).
const X8_MAX_PASS: usize = 128;

thread_local! {
    /// Per (token, block) of the current k pass: the activation scale and `8 * Σ q`, the
    /// correction for the offset-8 nibbles. One per thread, grown once, then reused.
    static X8_PREP: std::cell::RefCell<Vec<(f32, i32)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Sum of the 32 quants at `q` (an activation block's `qs`).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn sum_i8x32(q: *const u8) -> i32 {
    // SAFETY: the caller points `q` at 32 readable bytes.
    let v = unsafe { _mm256_loadu_si256(q.cast()) };
    let s = _mm256_madd_epi16(
        _mm256_maddubs_epi16(_mm256_set1_epi8(1), v),
        _mm256_set1_epi16(1),
    );
    let s = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    let s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32(s, 1)))
}

/// Q4_0 repacked eight rows at a time ([`BlockQ4_0x8`]) × Q8_0 activations over output
/// columns `cols`, `MR` tokens per register tile.
///
/// Loop nest: k in passes of `tile.k` (the activation scales and corrections of a pass are
/// computed once into a per-thread table), then one 8-row group at a time, then `MR` tokens
/// at a time: a group's unpacked quants are reused for every token tile.
///
/// # Safety
/// AVX2/FMA/F16C present; `w` holds `n / 8 * nb` blocks with `cols.end <= n`, `a` holds
/// `out.m() * nb` blocks; no other thread writes `out` in `cols`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn matmul_x8<const MR: usize>(
    w: &[BlockQ4_0x8],
    nb: usize,
    a: &[BlockQ8_0],
    out: &OutMat,
    cols: Range<usize>,
    tile: TileConfig,
) {
    let m = out.m();
    if cols.is_empty() || m == 0 || nb == 0 {
        return;
    }
    let kp = (tile.k / QK).clamp(1, X8_MAX_PASS).min(nb);
    X8_PREP.with(|prep| {
        let mut prep = prep.borrow_mut();
        if prep.len() < m * kp {
            prep.resize(m * kp, (0.0, 0));
        }
        let mut kb0 = 0;
        while kb0 < nb {
            let kb1 = (kb0 + kp).min(nb);
            for i in 0..m {
                for b in kb0..kb1 {
                    let blk = &a[i * nb + b];
                    // SAFETY: qs is 32 bytes.
                    let s = unsafe { sum_i8x32(blk.qs.as_ptr().cast()) };
                    prep[i * kp + b - kb0] = (blk.d.to_f32(), 8 * s);
                }
            }
            for g in cols.start / 8..cols.end.div_ceil(8) {
                let lanes = cols.start.max(8 * g) - 8 * g..cols.end.min(8 * g + 8) - 8 * g;
                let mut m0 = 0;
                while m0 < m {
                    let m_valid = MR.min(m - m0);
                    // SAFETY: group g < n / 8 and blocks kb0..kb1 < nb are inside `w`;
                    // token rows m0.. (clamped below) and blocks inside `a`; the prep rows
                    // m0.. hold this pass; the lanes are inside `cols`.
                    unsafe {
                        tile_x8::<MR>(
                            w.as_ptr().add(g * nb + kb0),
                            kb1 - kb0,
                            std::array::from_fn(|i| {
                                a.as_ptr().add((m0 + i.min(m_valid - 1)) * nb + kb0).cast()
                            }),
                            std::array::from_fn(|i| {
                                prep.as_ptr().add((m0 + i.min(m_valid - 1)) * kp)
                            }),
                            out,
                            m0,
                            m_valid,
                            8 * g,
                            lanes.clone(),
                            kb0 > 0,
                        )
                    };
                    m0 += m_valid;
                }
            }
            kb0 = kb1;
        }
    });
}

/// One group of 8 repacked rows × `MR` tokens over `nblk` blocks; writes (or, when
/// `accumulate`, adds) output columns `col0 + lanes` of rows `m0..m0 + m_valid`.
///
/// Per block the 128 quant bytes are four 32-byte loads; masking and shifting give eight
/// registers, each with four consecutive quants (unsigned, `w + 8`) of all eight rows.
/// `vpmaddubsw` against the matching four activation quants broadcast to every lane, and
/// eight such 16-bit products summed (at most 8 · 2 · 15 · 127 = 30480, within i16), give
/// each row's sum in its lane; `8 · Σa` (the prep table) removes the offset.
///
/// # Safety
/// AVX2/FMA/F16C present; `w` points at `nblk` blocks, each `a[i]` at `nblk` activation
/// blocks, each `prep[i]` at `nblk` entries; the output cells belong to this thread.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tile_x8<const MR: usize>(
    w: *const BlockQ4_0x8,
    nblk: usize,
    a: [*const u8; MR],
    prep: [*const (f32, i32); MR],
    out: &OutMat,
    m0: usize,
    m_valid: usize,
    col0: usize,
    lanes: Range<usize>,
    accumulate: bool,
) {
    let low = _mm256_set1_epi8(0x0F);
    let ones = _mm256_set1_epi16(1);
    let mut acc = [_mm256_setzero_ps(); MR];
    for b in 0..nblk {
        // SAFETY (loads): block b of the group and of each token row, by the contract.
        let p = unsafe { w.add(b) }.cast::<u8>();
        // X8_PREFETCH bytes ahead (a prefetch never faults, even past the end).
        _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(X8_PREFETCH).cast());
        _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(X8_PREFETCH + 64).cast());
        _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(X8_PREFETCH + 128).cast());
        let dw = unsafe { _mm256_cvtph_ps(_mm_loadu_si128(p.cast())) };
        let mut q = [_mm256_setzero_si256(); 8];
        for c in 0..4 {
            let v = unsafe { _mm256_loadu_si256(p.add(16 + 32 * c).cast()) };
            q[c] = _mm256_and_si256(v, low);
            q[4 + c] = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
        }
        for i in 0..MR {
            // Activation quants 4c..4c+4 pair with q[c] (elements 4c..), 16+4c.. with q[4+c].
            let aq = unsafe { a[i].add(b * 34 + 2) };
            let bc = |c: usize| unsafe {
                _mm256_set1_epi32(aq.add(4 * c).cast::<i32>().read_unaligned())
            };
            let s01 = _mm256_add_epi16(
                _mm256_maddubs_epi16(q[0], bc(0)),
                _mm256_maddubs_epi16(q[1], bc(1)),
            );
            let s23 = _mm256_add_epi16(
                _mm256_maddubs_epi16(q[2], bc(2)),
                _mm256_maddubs_epi16(q[3], bc(3)),
            );
            let s45 = _mm256_add_epi16(
                _mm256_maddubs_epi16(q[4], bc(4)),
                _mm256_maddubs_epi16(q[5], bc(5)),
            );
            let s67 = _mm256_add_epi16(
                _mm256_maddubs_epi16(q[6], bc(6)),
                _mm256_maddubs_epi16(q[7], bc(7)),
            );
            let s16 = _mm256_add_epi16(_mm256_add_epi16(s01, s23), _mm256_add_epi16(s45, s67));
            let (da, corr) = unsafe { *prep[i].add(b) };
            let s32 = _mm256_sub_epi32(_mm256_madd_epi16(s16, ones), _mm256_set1_epi32(corr));
            acc[i] = _mm256_fmadd_ps(
                _mm256_cvtepi32_ps(s32),
                _mm256_mul_ps(dw, _mm256_set1_ps(da)),
                acc[i],
            );
        }
    }
    for i in 0..m_valid {
        // SAFETY: row m0+i < m and columns col0+lanes are this thread's (the contract).
        let seg = unsafe { out.segment_mut(m0 + i, col0 + lanes.start..col0 + lanes.end) };
        if lanes.len() == 8 {
            let p = seg.as_mut_ptr();
            // SAFETY: seg holds 8 floats.
            unsafe {
                let v = if accumulate {
                    _mm256_add_ps(_mm256_loadu_ps(p), acc[i])
                } else {
                    acc[i]
                };
                _mm256_storeu_ps(p, v);
            }
        } else {
            let mut t = [0.0f32; 8];
            // SAFETY: 8 lanes into 8 floats.
            unsafe { _mm256_storeu_ps(t.as_mut_ptr(), acc[i]) };
            for (o, v) in seg.iter_mut().zip(&t[lanes.clone()]) {
                if accumulate {
                    *o += v;
                } else {
                    *o = *v;
                }
            }
        }
    }
}

/// 8 elements at `p` as f32: f16 converted with F16C (`H`), or f32 as is.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn load8<const H: bool>(p: *const u8) -> __m256 {
    // SAFETY: the caller points `p` at 8 readable elements.
    unsafe {
        if H {
            _mm256_cvtph_ps(_mm_loadu_si128(p.cast()))
        } else {
            _mm256_loadu_ps(p.cast())
        }
    }
}

/// One `MR × NR` register tile of an f16 × f16 (`H`) or f32 × f32 product over elements
/// `j.k0..j.k1`, accumulated in f32.
///
/// # Safety
/// AVX2/FMA/F16C present; `w` and `a` point at rows of `k` elements (2 bytes each for `H`,
/// else 4) with the tile's rows inside.
#[target_feature(enable = "avx2,fma,f16c")]
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
    let mut acc = [[_mm256_setzero_ps(); NR]; MR];
    let mut e = j.k0;
    while e + 8 <= j.k1 {
        // SAFETY: elements e..e+8 of valid rows.
        let wv: [__m256; NR] = std::array::from_fn(|r| unsafe { load8::<H>(wp[r].add(e * es)) });
        for i in 0..MR {
            let av = unsafe { load8::<H>(ap[i].add(e * es)) };
            for r in 0..NR {
                acc[i][r] = _mm256_fmadd_ps(wv[r], av, acc[i][r]);
            }
        }
        e += 8;
    }
    // Plain loops, not closures: a closure borrowing `acc` would pin it to memory.
    let mut sums = [[0.0f32; NR]; MR];
    for i in 0..MR {
        for r in 0..NR {
            sums[i][r] = hsum(acc[i][r]);
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

/// Q8_0 quantization of `x` into `y`, bit-identical to `quant::q8_0::quantize_row`.
///
/// # Safety
/// The CPU supports AVX2, FMA and F16C; `x.len() == y.len() * 32`.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn quantize_row_q8_0(x: &[f32], y: &mut [BlockQ8_0]) {
    assert_eq!(
        x.len(),
        y.len() * QK,
        "q8_0 row length must be a multiple of 32"
    );
    let abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFF_FFFF));
    let sign_mask = _mm256_castsi256_ps(_mm256_set1_epi32(i32::MIN));
    let (half, one) = (_mm256_set1_ps(0.5), _mm256_set1_ps(1.0));
    for (xb, yb) in x.chunks_exact(QK).zip(y.iter_mut()) {
        // SAFETY: xb has 32 elements.
        let v: [__m256; 4] =
            std::array::from_fn(|c| unsafe { _mm256_loadu_ps(xb.as_ptr().add(8 * c)) });
        let mx = _mm256_max_ps(
            _mm256_max_ps(_mm256_and_ps(v[0], abs_mask), _mm256_and_ps(v[1], abs_mask)),
            _mm256_max_ps(_mm256_and_ps(v[2], abs_mask), _mm256_and_ps(v[3], abs_mask)),
        );
        let m4 = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
        let m2 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        let amax = _mm_cvtss_f32(_mm_max_ss(m2, _mm_movehdup_ps(m2)));
        // Same scalar steps as the reference, so the scale and its inverse are identical.
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        yb.d = f16::from_f32(d);
        let idv = _mm256_set1_ps(id);
        let q: [__m256i; 4] = std::array::from_fn(|c| {
            // Round half away from zero (roundf): truncate, then step away from zero when the
            // exact fractional part is at least one half.
            let t = _mm256_mul_ps(v[c], idv);
            let tr = _mm256_round_ps(t, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
            let frac = _mm256_and_ps(_mm256_sub_ps(t, tr), abs_mask);
            let step = _mm256_or_ps(_mm256_and_ps(t, sign_mask), one);
            let up = _mm256_and_ps(_mm256_cmp_ps(frac, half, _CMP_GE_OQ), step);
            _mm256_cvtps_epi32(_mm256_add_ps(tr, up))
        });
        let p16a = _mm256_packs_epi32(q[0], q[1]);
        let p16b = _mm256_packs_epi32(q[2], q[3]);
        let p8 = _mm256_packs_epi16(p16a, p16b);
        // The packs work within 128-bit lanes; this puts the 4-byte groups back in order.
        let p8 = _mm256_permutevar8x32_epi32(p8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        // SAFETY: qs is 32 bytes.
        unsafe { _mm256_storeu_si256(yb.qs.as_mut_ptr().cast(), p8) };
    }
}

/// f32 → f16 with round-to-nearest-even, as `half::f16::from_f32`.
///
/// # Safety
/// The CPU supports AVX2, FMA and F16C; `x.len() == y.len()`.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn convert_f16(x: &[f32], y: &mut [f16]) {
    assert_eq!(x.len(), y.len());
    let n8 = x.len() / 8 * 8;
    for e in (0..n8).step_by(8) {
        // SAFETY: e + 8 <= len of both.
        unsafe {
            let v = _mm256_loadu_ps(x.as_ptr().add(e));
            let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(v);
            _mm_storeu_si128(y.as_mut_ptr().add(e).cast(), h);
        }
    }
    for e in n8..x.len() {
        y[e] = f16::from_f32(x[e]);
    }
}

/// Dot product of an f32 vector with f32 (`H` false) or f16 (`H` true) elements.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_impl<const H: bool>(a: &[f32], b: *const u8, n: usize) -> f32 {
    let es = if H { 2 } else { 4 };
    let (mut s0, mut s1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let mut e = 0;
    // SAFETY (loads): e + 16 <= n, and both operands hold n elements.
    while e + 16 <= n {
        unsafe {
            s0 = _mm256_fmadd_ps(
                _mm256_loadu_ps(a.as_ptr().add(e)),
                load8::<H>(b.add(e * es)),
                s0,
            );
            s1 = _mm256_fmadd_ps(
                _mm256_loadu_ps(a.as_ptr().add(e + 8)),
                load8::<H>(b.add((e + 8) * es)),
                s1,
            );
        }
        e += 16;
    }
    let mut s = hsum(_mm256_add_ps(s0, s1));
    for t in e..n {
        s += a[t] * unsafe { load1::<H>(b.add(t * es)) };
    }
    s
}

/// `y += alpha * x` with x f32 (`H` false) or f16.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn axpy_impl<const H: bool>(y: &mut [f32], alpha: f32, x: *const u8) {
    let es = if H { 2 } else { 4 };
    let n = y.len();
    let av = _mm256_set1_ps(alpha);
    let mut e = 0;
    while e + 8 <= n {
        // SAFETY: e + 8 <= n and x holds n elements.
        unsafe {
            let p = y.as_mut_ptr().add(e);
            _mm256_storeu_ps(
                p,
                _mm256_fmadd_ps(av, load8::<H>(x.add(e * es)), _mm256_loadu_ps(p)),
            );
        }
        e += 8;
    }
    for t in e..n {
        y[t] += alpha * unsafe { load1::<H>(x.add(t * es)) };
    }
}

/// Sums of four vectors' lanes: `[Σa, Σb, Σc, Σd]`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn hsum4(a: __m256, b: __m256, c: __m256, d: __m256) -> __m128 {
    let ab = _mm256_hadd_ps(a, b);
    let cd = _mm256_hadd_ps(c, d);
    let abcd = _mm256_hadd_ps(ab, cd);
    _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1))
}

/// Attention scores against `out.len()` keys of `hd = q.len()` elements, `stride` elements
/// apart from `k` on: four keys per step (one horizontal reduction for four), the query in
/// registers when `hd` is 64 or less.
///
/// # Safety
/// AVX2/FMA/F16C present; `k` holds `(out.len() - 1) * stride + q.len()` elements when
/// `out` is not empty (2 bytes each for `H`, else 4).
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn attn_scores_impl<const H: bool>(
    q: &[f32],
    k: *const u8,
    stride: usize,
    scale: f32,
    out: &mut [f32],
) {
    let (hd, n) = (q.len(), out.len());
    let es = if H { 2 } else { 4 };
    let h8 = hd / 8 * 8;
    let sv = _mm_set1_ps(scale);
    let mut t = 0;
    while t + 4 <= n {
        let kp: [*const u8; 4] = std::array::from_fn(|i| k.wrapping_add((t + i) * stride * es));
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut e = 0;
        while e < h8 {
            // SAFETY: e + 8 <= hd; key rows t..t+4 are inside `k` (the contract).
            let qv = unsafe { _mm256_loadu_ps(q.as_ptr().add(e)) };
            for i in 0..4 {
                acc[i] = _mm256_fmadd_ps(qv, unsafe { load8::<H>(kp[i].add(e * es)) }, acc[i]);
            }
            e += 8;
        }
        let mut s = [0.0f32; 4];
        // SAFETY: 4 lanes into 4 floats.
        unsafe {
            _mm_storeu_ps(
                s.as_mut_ptr(),
                _mm_mul_ps(hsum4(acc[0], acc[1], acc[2], acc[3]), sv),
            )
        };
        for e in h8..hd {
            for i in 0..4 {
                s[i] += scale * q[e] * unsafe { load1::<H>(kp[i].add(e * es)) };
            }
        }
        out[t..t + 4].copy_from_slice(&s);
        t += 4;
    }
    while t < n {
        // SAFETY: key t is inside `k`.
        out[t] = scale * unsafe { dot_impl::<H>(q, k.add(t * stride * es), hd) };
        t += 1;
    }
}

/// `out[c..c + 8 W] = Σ_t p[t] · value t` for one chunk of `W` registers, kept in registers
/// over all keys.
///
/// # Safety
/// As for `attn_values_impl`, with `c + 8 W <= out.len()`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn attn_values_chunk<const H: bool, const W: usize>(
    p: &[f32],
    v: *const u8,
    stride: usize,
    out: &mut [f32],
    c: usize,
) {
    let es = if H { 2 } else { 4 };
    let mut acc = [_mm256_setzero_ps(); W];
    for (t, &w) in p.iter().enumerate() {
        let wv = _mm256_set1_ps(w);
        let row = v.wrapping_add((t * stride + c) * es);
        for j in 0..W {
            // SAFETY: elements c + 8j.. c + 8j + 8 of value t, inside `v` (the contract).
            acc[j] = _mm256_fmadd_ps(wv, unsafe { load8::<H>(row.add(8 * j * es)) }, acc[j]);
        }
    }
    for j in 0..W {
        // SAFETY: c + 8W <= out.len().
        unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(c + 8 * j), acc[j]) };
    }
}

/// `out = Σ_t p[t] · value t` over `p.len()` values of `out.len()` elements, `stride`
/// elements apart from `v` on: the output in registers, 64 elements at a time.
///
/// # Safety
/// AVX2/FMA/F16C present; `v` holds `(p.len() - 1) * stride + out.len()` elements when `p`
/// is not empty.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn attn_values_impl<const H: bool>(p: &[f32], v: *const u8, stride: usize, out: &mut [f32]) {
    let hd = out.len();
    let es = if H { 2 } else { 4 };
    let mut c = 0;
    // SAFETY (all chunks): c + 8W <= hd, forwarded contract.
    unsafe {
        while c + 64 <= hd {
            attn_values_chunk::<H, 8>(p, v, stride, out, c);
            c += 64;
        }
        if c + 32 <= hd {
            attn_values_chunk::<H, 4>(p, v, stride, out, c);
            c += 32;
        }
        if c + 16 <= hd {
            attn_values_chunk::<H, 2>(p, v, stride, out, c);
            c += 16;
        }
        if c + 8 <= hd {
            attn_values_chunk::<H, 1>(p, v, stride, out, c);
            c += 8;
        }
    }
    for e in c..hd {
        let mut s = 0.0;
        for (t, &w) in p.iter().enumerate() {
            // SAFETY: element e < hd of value t.
            s += w * unsafe { load1::<H>(v.add((t * stride + e) * es)) };
        }
        out[e] = s;
    }
}

/// Checks the cache slice covers `n` rows of `len` elements `stride` apart.
fn covers(have: usize, n: usize, stride: usize, len: usize) {
    if n > 0 {
        assert!(
            (n - 1) * stride + len <= have,
            "attention cache slice of {have} elements is shorter than {n} rows of {len} \
             at stride {stride}"
        );
    }
}

pub(crate) fn attn_scores_f16(q: &[f32], k: &[f16], stride: usize, scale: f32, out: &mut [f32]) {
    covers(k.len(), out.len(), stride, q.len());
    // SAFETY: reached only through the AVX2 Ops table (CPU checked); extent checked above.
    unsafe { attn_scores_impl::<true>(q, k.as_ptr().cast(), stride, scale, out) }
}

pub(crate) fn attn_scores_f32(q: &[f32], k: &[f32], stride: usize, scale: f32, out: &mut [f32]) {
    covers(k.len(), out.len(), stride, q.len());
    // SAFETY: as for attn_scores_f16.
    unsafe { attn_scores_impl::<false>(q, k.as_ptr().cast(), stride, scale, out) }
}

pub(crate) fn attn_values_f16(p: &[f32], v: &[f16], stride: usize, out: &mut [f32]) {
    covers(v.len(), p.len(), stride, out.len());
    // SAFETY: as for attn_scores_f16.
    unsafe { attn_values_impl::<true>(p, v.as_ptr().cast(), stride, out) }
}

pub(crate) fn attn_values_f32(p: &[f32], v: &[f32], stride: usize, out: &mut [f32]) {
    covers(v.len(), p.len(), stride, out.len());
    // SAFETY: as for attn_scores_f16.
    unsafe { attn_values_impl::<false>(p, v.as_ptr().cast(), stride, out) }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn rms_norm_impl(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    let n = x.len().min(w.len()).min(out.len());
    // SAFETY: x holds n elements.
    let ss = unsafe { dot_impl::<false>(&x[..n], x.as_ptr().cast(), n) } / x.len() as f32;
    let scale = 1.0 / (ss + eps).sqrt();
    let sv = _mm256_set1_ps(scale);
    let mut e = 0;
    while e + 8 <= n {
        // SAFETY: e + 8 <= n for all three slices.
        unsafe {
            let v = _mm256_mul_ps(_mm256_loadu_ps(x.as_ptr().add(e)), sv);
            let g = _mm256_loadu_ps(w.as_ptr().add(e));
            _mm256_storeu_ps(out.as_mut_ptr().add(e), _mm256_mul_ps(v, g));
        }
        e += 8;
    }
    for t in e..n {
        out[t] = x[t] * scale * w[t];
    }
}

/// e^x for 8 lanes: x = n ln2 + r with |r| <= ln2/2, a degree-6 polynomial for e^r, and 2^n
/// built in the exponent bits. Within 2 ulp of `f32::exp` over [-87, 88]; inputs are clamped
/// there, so large negative inputs give about 1e-38 instead of 0.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn exp8(x: __m256) -> __m256 {
    let x = _mm256_min_ps(
        _mm256_max_ps(x, _mm256_set1_ps(-87.0)),
        _mm256_set1_ps(88.0),
    );
    let n = _mm256_round_ps(
        _mm256_mul_ps(x, _mm256_set1_ps(std::f32::consts::LOG2_E)),
        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC,
    );
    // ln 2 split in two so that n * ln2_hi is exact.
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693_359_4), x);
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.121_944_4e-4), r);
    let mut p = _mm256_set1_ps(1.987_569_1e-4);
    for c in [1.398_2e-3, 8.333_452e-3, 4.166_579_6e-2, 0.166_666_65, 0.5] {
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
    }
    let y = _mm256_fmadd_ps(
        _mm256_mul_ps(p, r),
        r,
        _mm256_add_ps(r, _mm256_set1_ps(1.0)),
    );
    let pow2 = _mm256_slli_epi32(
        _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)),
        23,
    );
    _mm256_mul_ps(y, _mm256_castsi256_ps(pow2))
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn softmax_impl(x: &mut [f32]) {
    let n = x.len();
    let mut e = 0;
    let mut mv = _mm256_set1_ps(f32::NEG_INFINITY);
    while e + 8 <= n {
        // SAFETY: e + 8 <= n.
        mv = _mm256_max_ps(mv, unsafe { _mm256_loadu_ps(x.as_ptr().add(e)) });
        e += 8;
    }
    let mut lanes = [0.0f32; 8];
    // SAFETY: 8 lanes into 8 floats.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), mv) };
    let max = x[e..]
        .iter()
        .chain(&lanes)
        .fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let maxv = _mm256_set1_ps(max);
    let mut sv = _mm256_setzero_ps();
    e = 0;
    while e + 8 <= n {
        // SAFETY: e + 8 <= n.
        unsafe {
            let p = x.as_mut_ptr().add(e);
            let v = exp8(_mm256_sub_ps(_mm256_loadu_ps(p), maxv));
            _mm256_storeu_ps(p, v);
            sv = _mm256_add_ps(sv, v);
        }
        e += 8;
    }
    let mut sum = hsum(sv);
    for v in x[e..].iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    let inv = _mm256_set1_ps(1.0 / sum);
    e = 0;
    while e + 8 <= n {
        // SAFETY: e + 8 <= n.
        unsafe {
            let p = x.as_mut_ptr().add(e);
            _mm256_storeu_ps(p, _mm256_mul_ps(_mm256_loadu_ps(p), inv));
        }
        e += 8;
    }
    for v in x[e..].iter_mut() {
        *v /= sum;
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn swiglu_impl(gate: &mut [f32], up: &[f32]) {
    let n = gate.len().min(up.len());
    let one = _mm256_set1_ps(1.0);
    let neg = _mm256_set1_ps(-0.0);
    let mut e = 0;
    while e + 8 <= n {
        // SAFETY: e + 8 <= n for both slices.
        unsafe {
            let p = gate.as_mut_ptr().add(e);
            let g = _mm256_loadu_ps(p);
            let sig = _mm256_add_ps(one, exp8(_mm256_xor_ps(g, neg)));
            let u = _mm256_loadu_ps(up.as_ptr().add(e));
            _mm256_storeu_ps(p, _mm256_mul_ps(_mm256_div_ps(g, sig), u));
        }
        e += 8;
    }
    for (g, u) in gate[e..n].iter_mut().zip(&up[e..n]) {
        *g = *g / (1.0 + (-*g).exp()) * u;
    }
}

// Safe entries for the `Ops` table. They are private to the crate: the table holding them is
// handed out only after `has_avx2()`, which is what makes the inner calls sound.

pub(crate) fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    // SAFETY: reached only through the AVX2 Ops table (CPU checked); b holds n elements.
    unsafe { dot_impl::<false>(&a[..n], b.as_ptr().cast(), n) }
}

pub(crate) fn dot_f32_f16(a: &[f32], b: &[f16]) -> f32 {
    let n = a.len().min(b.len());
    // SAFETY: as for dot_f32.
    unsafe { dot_impl::<true>(&a[..n], b.as_ptr().cast(), n) }
}

pub(crate) fn axpy_f32(y: &mut [f32], alpha: f32, x: &[f32]) {
    let n = y.len().min(x.len());
    // SAFETY: as for dot_f32; x holds n elements.
    unsafe { axpy_impl::<false>(&mut y[..n], alpha, x.as_ptr().cast()) }
}

pub(crate) fn axpy_f16(y: &mut [f32], alpha: f32, x: &[f16]) {
    let n = y.len().min(x.len());
    // SAFETY: as for axpy_f32.
    unsafe { axpy_impl::<true>(&mut y[..n], alpha, x.as_ptr().cast()) }
}

pub(crate) fn rms_norm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    // SAFETY: reached only through the AVX2 Ops table (CPU checked).
    unsafe { rms_norm_impl(x, w, eps, out) }
}

// The kernels address blocks as raw bytes: d at offset 0, qs at offset 2.
const _: () = assert!(std::mem::size_of::<BlockQ4_0>() == 18);
const _: () = assert!(std::mem::size_of::<BlockQ8_0>() == 34);
const _: () = assert!(std::mem::offset_of!(BlockQ8_0, qs) == 2);
const _: () = assert!(std::mem::offset_of!(BlockQ4_0, qs) == 2);

pub(crate) fn softmax(x: &mut [f32]) {
    // SAFETY: reached only through the AVX2 Ops table (CPU checked).
    unsafe { softmax_impl(x) }
}

pub(crate) fn swiglu(gate: &mut [f32], up: &[f32]) {
    // SAFETY: reached only through the AVX2 Ops table (CPU checked).
    unsafe { swiglu_impl(gate, up) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp8_is_within_a_few_ulp_of_std() {
        if !super::super::x86::has_avx2() {
            eprintln!("skipped: no AVX2");
            return;
        }
        let mut worst = 0.0f32;
        let mut x = -87.0f32;
        while x < 87.9 {
            let xs: [f32; 8] = std::array::from_fn(|i| x + i as f32 * 0.001_37);
            let mut got = [0.0f32; 8];
            // SAFETY: AVX2 checked above; 8 lanes in and out.
            unsafe { _mm256_storeu_ps(got.as_mut_ptr(), exp8(_mm256_loadu_ps(xs.as_ptr()))) };
            for (g, v) in got.iter().zip(xs) {
                let want = v.exp();
                worst = worst.max(((g - want) / want).abs());
            }
            x += 0.0173;
        }
        assert!(worst < 4e-7, "worst relative error {worst}");
    }
}
