//! AVX2 + FMA + F16C kernels: quantized GEMV/GEMM with `vpmaddubsw`/`vpmaddwd`, f16 and f32
//! matmuls, Q8_0 activation quantization and the vectorised element-wise ops.
//!
//! Every function that uses the instructions is a `#[target_feature]` `unsafe fn` reached only
//! through the dispatch table, which checks the CPU first (`cpu::x86::has_avx2`).

// Register tiles are indexed [token][row] in lock step across several arrays; index loops
// say that more plainly than zipped iterators.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;
use std::ops::Range;

use half::f16;

use super::{TileJob, drive, scalar};
use crate::matrix::{Acts, OutMat, WeightData, WeightMat};
use crate::quant::{BlockQ4_0, BlockQ8_0, QK};
use crate::tile::TileConfig;

/// Tiled matmul over output columns `cols` (same contract as [`scalar::matmul`]).
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
    let (m, k) = (out.m(), w.k());
    let nb = k / QK;
    let fallback = || unsafe { scalar::matmul(w, acts, out, cols.clone(), tile) };
    match (w.data(), acts) {
        (WeightData::Q4_0(wd), Acts::Q8_0(ad)) => {
            assert!(ad.len() >= m * nb && cols.end <= w.n());
            let wp = wd.as_ptr().cast::<u8>();
            by_tile!(
                tile,
                drive(m, cols.clone(), nb, tile.k / QK, MR, NR, |j| unsafe {
                    tile_q::<MR, NR, true>(wp, nb * 18, ad.as_ptr(), nb, out, j)
                }),
                fallback()
            )
        }
        (WeightData::Q8_0(wd), Acts::Q8_0(ad)) => {
            assert!(ad.len() >= m * nb && cols.end <= w.n());
            let wp = wd.as_ptr().cast::<u8>();
            by_tile!(
                tile,
                drive(m, cols.clone(), nb, tile.k / QK, MR, NR, |j| unsafe {
                    tile_q::<MR, NR, false>(wp, nb * 34, ad.as_ptr(), nb, out, j)
                }),
                fallback()
            )
        }
        (WeightData::F16(wd), Acts::F16(ad)) => {
            assert!(ad.len() >= m * k && cols.end <= w.n());
            let (wp, ap) = (wd.as_ptr().cast::<u8>(), ad.as_ptr().cast::<u8>());
            by_tile!(
                tile,
                drive(m, cols.clone(), k, tile.k, MR, NR, |j| unsafe {
                    tile_f::<MR, NR, true>(wp, ap, k, out, j)
                }),
                fallback()
            )
        }
        (WeightData::F32(wd), Acts::F32(ad)) => {
            assert!(ad.len() >= m * k && cols.end <= w.n());
            let (wp, ap) = (wd.as_ptr().cast::<u8>(), ad.as_ptr().cast::<u8>());
            by_tile!(
                tile,
                drive(m, cols.clone(), k, tile.k, MR, NR, |j| unsafe {
                    tile_f::<MR, NR, false>(wp, ap, k, out, j)
                }),
                fallback()
            )
        }
        _ => fallback(),
    }
}

/// An f16 stored (unaligned) at `p`, converted with F16C.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn f16_at(p: *const u8) -> f32 {
    // SAFETY: the caller points `p` at two readable bytes.
    let bits = unsafe { p.cast::<u16>().read_unaligned() };
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(bits))))
}

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

/// Writes (first k pass) or adds (later passes) one tile's sums.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn store_tile<const MR: usize, const NR: usize>(
    out: &OutMat,
    j: TileJob,
    sums: &[[f32; NR]; MR],
) {
    for (i, row) in sums.iter().enumerate().take(j.m_valid) {
        for (r, &v) in row.iter().enumerate().take(j.n_valid) {
            // SAFETY: the cell is inside this call's rows and columns, which belong to this
            // thread alone (the caller's contract).
            unsafe {
                if j.accumulate {
                    out.add(j.m0 + i, j.n0 + r, v)
                } else {
                    out.write(j.m0 + i, j.n0 + r, v)
                }
            }
        }
    }
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

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn load1<const H: bool>(p: *const u8) -> f32 {
    // SAFETY: the caller points `p` at one readable element.
    unsafe {
        if H {
            f16_at(p)
        } else {
            p.cast::<f32>().read_unaligned()
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
