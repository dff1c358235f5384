//! AVX-512 (F/BW/VL) + VNNI kernels: quantized GEMV/GEMM with `vpdpbusd`, two blocks per
//! 512-bit register, and 16-wide f16/f32 matmuls. Conversions and element-wise ops are the
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
use crate::matrix::{Acts, OutMat, WeightMat};
use crate::quant::BlockQ8_0;
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
    // SAFETY: forwarded from the caller.
    unsafe { simd_matmul::<Avx512>(w, acts, out, cols, tile) }
}

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
